import uuid

from django.db import migrations, models


def fill_provider_keys(apps, schema_editor):
    """One random key per existing refund (a default would give them all the same one)."""
    Refund = apps.get_model("commerce", "Refund")
    for pk in Refund.objects.values_list("pk", flat=True).iterator():
        Refund.objects.filter(pk=pk).update(provider_key=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0012_fulfilment"),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="provider_key",
            field=models.UUIDField(null=True, editable=False, verbose_name="provider idempotency key"),
        ),
        migrations.RunPython(fill_provider_keys, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="refund",
            name="provider_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, verbose_name="provider idempotency key"),
        ),
        migrations.AlterField(
            model_name="refund",
            name="source",
            field=models.CharField(
                choices=[
                    ("owner", "Owner or operator"),
                    ("admin", "Admin"),
                    ("buyer", "Buyer (refund window)"),
                    ("provider", "Made at the provider"),
                    ("dispute", "Taken back by a dispute"),
                    ("demo", "Demo data"),
                ],
                default="owner",
                max_length=10,
                verbose_name="source",
            ),
        ),
    ]
