"""API tokens moved from DRF's authtoken to django-rest-knox: drop the old table where it exists.

Left in place, its foreign key to the user table would make deleting a user
fail on PostgreSQL (Django no longer knows to delete its rows first).
"""

from django.db import migrations


def drop_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        schema_editor.execute("DROP TABLE authtoken_token")


class Migration(migrations.Migration):
    dependencies = [("members", "0003_entry_plan_currency_iso4217")]

    operations = [migrations.RunPython(drop_legacy_tokens, migrations.RunPython.noop)]
