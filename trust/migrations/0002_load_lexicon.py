"""Load the shipped lexicon (trust/data/lexicon.json) into the admin-edited tables."""

import json
from pathlib import Path

from django.db import migrations

LEXICON = Path(__file__).resolve().parents[1] / "data" / "lexicon.json"


def load(apps, schema_editor):
    Domain = apps.get_model("trust", "Domain")
    DomainTerm = apps.get_model("trust", "DomainTerm")
    DomainRelation = apps.get_model("trust", "DomainRelation")
    CategoryAudience = apps.get_model("trust", "CategoryAudience")
    Category = apps.get_model("commerce", "Category")
    data = json.loads(LEXICON.read_text(encoding="utf-8"))

    domains = {}
    for row in data["domains"]:
        domains[row["key"]], _ = Domain.objects.update_or_create(
            key=row["key"],
            defaults={"name_zh": row["name_zh"], "name_en": row["name_en"], "universal": row.get("universal", False)},
        )
    terms = {}
    for row in data["domains"]:
        for term in row["terms"]:
            terms[(row["key"], term["term"])] = DomainTerm(
                domain=domains[row["key"]], term=term["term"], lang=term["lang"], kind=term["kind"],
                weight=term["weight"],
            )
    DomainTerm.objects.bulk_create(terms.values(), ignore_conflicts=True, batch_size=1000)
    DomainRelation.objects.bulk_create(
        [
            DomainRelation(source=domains[r["source"]], target=domains[r["target"]], weight=r["weight"])
            for r in data.get("relations", [])
            if r["source"] in domains and r["target"] in domains and r["source"] != r["target"]
        ],
        ignore_conflicts=True,
    )
    categories = {c.path: c for c in Category.objects.all()}
    CategoryAudience.objects.bulk_create(
        [
            CategoryAudience(category=categories[row["path"]], domain=domains[d["domain"]], weight=d["weight"])
            for row in data["categories"]
            if row["path"] in categories
            for d in row["domains"]
            if d["domain"] in domains
        ],
        ignore_conflicts=True,
    )


def unload(apps, schema_editor):
    apps.get_model("trust", "Domain").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0001_initial"),
        ("commerce", "0002_default_categories"),
    ]

    operations = [migrations.RunPython(load, unload)]
