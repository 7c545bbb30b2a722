"""Payments become attempts with our own references (WeChat Pay's out_trade_no / out_refund_no),
random provider idempotency keys and provider-shaped client data (issue 14)."""

import secrets
import uuid

from django.db import migrations, models
from django.db.models import Q

import commerce.models.payments


def fill_references(apps, schema_editor):
    Payment = apps.get_model("commerce", "Payment")
    Refund = apps.get_model("commerce", "Refund")
    for payment in Payment.objects.filter(reference__isnull=True).only("pk", "client_secret").iterator():
        client = {"client_secret": payment.client_secret} if payment.client_secret else {}
        Payment.objects.filter(pk=payment.pk).update(
            reference=f"P{secrets.token_hex(12)}", idempotency_key=uuid.uuid4(), client_data=client
        )
    for refund_id in Refund.objects.filter(reference__isnull=True).values_list("pk", flat=True).iterator():
        Refund.objects.filter(pk=refund_id).update(reference=f"R{secrets.token_hex(12)}")


class Migration(migrations.Migration):
    dependencies = [("commerce", "0006_refund_idempotency_per_requester")]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="reference",
            field=models.CharField(max_length=32, null=True, editable=False, verbose_name="our reference"),
        ),
        migrations.AddField(
            model_name="payment",
            name="idempotency_key",
            field=models.UUIDField(null=True, editable=False, verbose_name="provider idempotency key"),
        ),
        migrations.AddField(
            model_name="payment",
            name="client_data",
            field=models.JSONField(blank=True, default=dict, editable=False, verbose_name="client data"),
        ),
        migrations.AddField(
            model_name="payment",
            name="sub_merchant",
            field=models.CharField(blank=True, default="", max_length=32, verbose_name="sub-merchant"),
        ),
        migrations.AddField(
            model_name="refund",
            name="reference",
            field=models.CharField(max_length=32, null=True, editable=False, verbose_name="our reference"),
        ),
        migrations.RunPython(fill_references, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="payment",
            name="reference",
            field=models.CharField(
                default=commerce.models.payments.new_payment_reference,
                editable=False,
                max_length=32,
                unique=True,
                verbose_name="our reference",
            ),
        ),
        migrations.AlterField(
            model_name="payment",
            name="idempotency_key",
            field=models.UUIDField(default=uuid.uuid4, editable=False, verbose_name="provider idempotency key"),
        ),
        migrations.AlterField(
            model_name="refund",
            name="reference",
            field=models.CharField(
                default=commerce.models.payments.new_refund_reference,
                editable=False,
                max_length=32,
                unique=True,
                verbose_name="our reference",
            ),
        ),
        migrations.RemoveField(model_name="payment", name="client_secret"),
        migrations.RemoveConstraint(model_name="payment", name="uniq_payment_order_provider"),
        migrations.AddConstraint(
            model_name="payment",
            constraint=models.UniqueConstraint(
                condition=Q(status__in=["creating", "pending", "failed"]),
                fields=("order", "provider"),
                name="uniq_payment_live_attempt",
            ),
        ),
    ]
