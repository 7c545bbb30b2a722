"""Term kinds "brand" and "merch"; load the shipped lexicon's version-2 rows (brands, senses of words
with several meanings, merchandise words) into the admin-edited tables.

Only rows marked ``"since": 2`` in trust/data/lexicon.json are added (an operator's deletion of an
older term stays deleted); existing (domain, term) pairs are left as the operators edited them.
"""

import json
from pathlib import Path

from django.db import migrations, models

LEXICON = Path(__file__).resolve().parents[1] / "data" / "lexicon.json"
VERSION = 2


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
                domain=domains[key], term=term["term"], lang=term["lang"], kind=term["kind"], weight=term["weight"]
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
        ("trust", "0004_communityaudience_profile"),
    ]

    operations = [
        migrations.AlterField(
            model_name="domainterm",
            name="kind",
            field=models.CharField(
                choices=[
                    ("synonym", "Synonym"),
                    ("related", "Related word"),
                    ("brand", "Brand"),
                    ("merch", "Merchandise word"),
                ],
                default="synonym",
                max_length=8,
                verbose_name="kind",
            ),
        ),
        migrations.RunPython(load, unload),
    ]
