"""Term kinds "brand" and "merch"; load the shipped lexicon's version-2 rows (brands, senses of words
with several meanings, merchandise words) into the admin-edited tables.

Only rows marked ``"since": 2`` in trust/data/lexicon.json are added (an operator's deletion of an
older term stays deleted); existing (domain, term) pairs are left as the operators edited them.
"""

from django.db import migrations, models

from trust.lexicon_versions import lexicon_version_load, lexicon_version_unload

VERSION = 2


def load(apps, schema_editor):
    lexicon_version_load(apps, version=VERSION)


def unload(apps, schema_editor):
    lexicon_version_unload(apps, version=VERSION)


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
