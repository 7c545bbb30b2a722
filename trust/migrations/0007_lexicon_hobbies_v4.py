"""Load the shipped lexicon's version-4 rows: water sports and other everyday hobbies (swimming,
sailing, rowing, martial arts, chess, ...), group merchandise (团服, 会徽, 团扇, ...) and event words
(游园会, 雅集, ...), hair professions, wall switches and kids' scooters as their own senses.

Like 0006: only rows marked ``"since": 4`` in trust/data/lexicon.json are added; existing (domain,
term) pairs stay as the operators edited them, and an operator's deletion of an older term stays
deleted.
"""

from django.db import migrations

from trust.lexicon_versions import lexicon_version_load, lexicon_version_unload

VERSION = 4


def load(apps, schema_editor):
    lexicon_version_load(apps, version=VERSION)


def unload(apps, schema_editor):
    lexicon_version_unload(apps, version=VERSION)


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0006_lexicon_senses_v3"),
    ]

    operations = [migrations.RunPython(load, unload)]
