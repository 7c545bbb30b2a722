"""Load the shipped lexicon's version-4 rows: water sports and other everyday hobbies (swimming,
sailing, rowing, martial arts, chess, ...), group merchandise (团服, 会徽, 团扇, ...) and event words
(游园会, 雅集, ...), hair professions, wall switches and kids' scooters as their own senses.

Like 0006: only rows marked ``"since": 4`` in trust/data/lexicon.json are added; existing (domain,
term) pairs stay as the operators edited them, and an operator's deletion of an older term stays
deleted.
"""

import json
from pathlib import Path

from django.db import migrations

LEXICON = Path(__file__).resolve().parents[1] / "data" / "lexicon.json"
VERSION = 4


def rows(data):
    for domain in data["domains"]:
        for term in domain["terms"]:
            if term.get("since") == VERSION:
                yield domain["key"], term


def load(apps, schema_editor):
    Domain = apps.get_model("trust", "Domain")
    DomainTerm = apps.get_model("trust", "DomainTerm")
    data = json.loads(LEXICON.read_text(encoding="utf-8"))
    domains = {domain.key: domain for domain in Domain.objects.all()}
    DomainTerm.objects.bulk_create(
        [
            DomainTerm(
                domain=domains[key],
                term=term["term"],
                lang=term["lang"],
                kind=term["kind"],
                weight=term["weight"],
            )
            for key, term in rows(data)
            if key in domains
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def unload(apps, schema_editor):
    DomainTerm = apps.get_model("trust", "DomainTerm")
    data = json.loads(LEXICON.read_text(encoding="utf-8"))
    for key, term in rows(data):
        DomainTerm.objects.filter(domain__key=key, term=term["term"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0006_lexicon_senses_v3"),
    ]

    operations = [migrations.RunPython(load, unload)]
