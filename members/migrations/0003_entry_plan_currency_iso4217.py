import re

from django.db import migrations, models


def repair_currencies(apps, schema_editor):
    """Upper-case codes that only differed by case; withdraw plans with no code at all.

    A plan whose currency is not a code could charge but never admit; it is
    deactivated and marked "XXX" (ISO 4217: no currency) for its owner to fix.
    """
    EntryPlan = apps.get_model("members", "EntryPlan")
    for plan in EntryPlan.objects.exclude(currency__regex=r"^[A-Z]{3}$"):
        code = (plan.currency or "").strip().upper()
        if re.fullmatch(r"[A-Z]{3}", code):
            plan.currency = code
        else:
            plan.currency, plan.is_active = "XXX", False
        plan.save(update_fields=["currency", "is_active"])


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0002_communities"),
    ]

    operations = [
        migrations.RunPython(repair_currencies, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="entryplan",
            constraint=models.CheckConstraint(
                condition=models.Q(("currency__regex", "^[A-Z]{3}$")), name="entry_plan_currency_iso4217"
            ),
        ),
    ]
