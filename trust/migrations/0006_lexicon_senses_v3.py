"""Load the shipped lexicon's version-3 rows: sportswear and other brands as terms of every domain
their goods reach, more senses of words with several meanings (bass, rust, mug, 烘焙 as roasting,
pitch, cast, bow, ...) and everyday English words of each domain.

Like 0005: only rows marked ``"since": 3`` in trust/data/lexicon.json are added; existing (domain,
term) pairs stay as the operators edited them, and an operator's deletion of an older term stays
deleted.
"""

from django.db import migrations

from trust.lexicon_versions import lexicon_version_load, lexicon_version_unload

VERSION = 3


def load(apps, schema_editor):
    lexicon_version_load(apps, version=VERSION)


def unload(apps, schema_editor):
    lexicon_version_unload(apps, version=VERSION)


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0005_lexicon_brands_and_senses"),
    ]

    operations = [migrations.RunPython(load, unload)]
