"""Adding (and taking back) the shipped lexicon's rows of one version, for the data migrations.

Both take the migration's ``apps`` registry (historical models) and read trust/data/lexicon.json as
it ships. Only rows marked ``"since": <version>`` are added; existing (domain, term) pairs stay as
the operators edited them, and an operator's deletion of an older term stays deleted.
"""

import json
from pathlib import Path

LEXICON = Path(__file__).resolve().parent / "data" / "lexicon.json"


def _rows(version: int):
    data = json.loads(LEXICON.read_text(encoding="utf-8"))
    for domain in data["domains"]:
        for term in domain["terms"]:
            if term.get("since") == version:
                yield domain["key"], term


def lexicon_version_load(apps, *, version: int) -> None:
    Domain = apps.get_model("trust", "Domain")
    DomainTerm = apps.get_model("trust", "DomainTerm")
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
            for key, term in _rows(version)
            if key in domains
        ],
        ignore_conflicts=True,
        batch_size=1000,
    )


def lexicon_version_unload(apps, *, version: int) -> None:
    DomainTerm = apps.get_model("trust", "DomainTerm")
    for key, term in _rows(version):
        DomainTerm.objects.filter(domain__key=key, term=term["term"]).delete()
