"""Provider-neutral money movements: payments, refunds and the raw webhook deliveries."""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY
from commerce.models.orders import Order


def new_payment_reference() -> str:
    """Our reference for a payment attempt (WeChat Pay's out_trade_no: 6-32 of [0-9A-Za-z_-])."""
    return f"P{secrets.token_hex(12)}"


def new_refund_reference() -> str:
    """Our reference for a refund (WeChat Pay's out_refund_no)."""
    return f"R{secrets.token_hex(12)}"


class Payment(models.Model):
    """One attempt to pay an order at one provider (a PaymentIntent, a WeChat Pay order).

    ``amount`` is what was asked for; ``amount_received`` what the provider
    confirmed. Only ``succeeded`` payments count towards ``Order.amount_paid``.
    An order has at most one live attempt per provider; a cancelled or closed
    one is kept, and the next attempt is a new row with a new reference.
    """

    LIVE_STATUSES = ("creating", "pending", "failed")

    class Status(models.TextChoices):
        CREATING = "creating", _("Being created at the provider")
        PENDING = "pending", _("Waiting for the customer")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Cancelled")
        MISMATCH = "mismatch", _("Received, but amount or currency differs: review")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="payments", verbose_name=_("order")
    )
    provider = models.CharField(_("provider"), max_length=20)
    reference = models.CharField(
        _("our reference"), max_length=32, unique=True, default=new_payment_reference, editable=False
    )
    provider_ref = models.CharField(_("provider reference"), max_length=100, blank=True, default="")
    idempotency_key = models.UUIDField(_("provider idempotency key"), default=uuid.uuid4, editable=False)
    sub_merchant = models.CharField(_("sub-merchant"), max_length=32, blank=True, default="")
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.CREATING)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    amount_received = models.DecimalField(_("amount received"), max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    # What the client needs to pay, as the provider shapes it (never shown in the admin).
    client_data = models.JSONField(_("client data"), default=dict, blank=True, editable=False)
    failure_code = models.CharField(_("failure code"), max_length=100, blank=True)
    failure_message = models.CharField(_("failure message"), max_length=500, blank=True)
    raw = models.JSONField(_("provider data"), default=dict, blank=True)
    succeeded_at = models.DateTimeField(_("succeeded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "provider"],
                condition=Q(status__in=["creating", "pending", "failed"]),
                name="uniq_payment_live_attempt",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="uniq_payment_provider_ref",
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_gte_0"),
            models.CheckConstraint(condition=Q(amount_received__gte=0), name="payment_received_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_ref or '-'} ¥{self.amount}"


class Refund(models.Model):
    """Money given back on an order, through the order's payment provider.

    A refund counts towards ``Order.amount_refunded`` only once the provider
    confirms it (``succeeded``); while ``pending`` it still reserves its
    amount, so that requests together never exceed what was paid. Money a
    dispute took back is a refund with source ``dispute`` (its provider
    reference is the dispute's), cancelled if the dispute gives it back.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Cancelled")

    class Source(models.TextChoices):
        OWNER = "owner", _("Owner or operator")
        ADMIN = "admin", _("Admin")
        BUYER = "buyer", _("Buyer (refund window)")
        PROVIDER = "provider", _("Made at the provider")
        DISPUTE = "dispute", _("Taken back by a dispute")
        AFTER_SALE = "after_sale", _("After-sale request")
        DEMO = "demo", _("Demo data")

    OPEN_STATUSES = (Status.PENDING, Status.SUCCEEDED)

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order")
    )
    payment = models.ForeignKey(
        Payment, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("payment")
    )
    provider = models.CharField(_("provider"), max_length=20)
    reference = models.CharField(
        _("our reference"), max_length=32, unique=True, default=new_refund_reference, editable=False
    )
    provider_ref = models.CharField(_("provider reference"), max_length=100, blank=True, default="")
    # The provider's idempotency key for sending it; a new one when the provider kept an answer under it.
    provider_key = models.UUIDField(_("provider idempotency key"), default=uuid.uuid4, editable=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.OWNER)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    # The after-sale request this refund pays out: one refund per request.
    after_sale = models.OneToOneField(
        "commerce.AfterSale",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="refund",
        verbose_name=_("after-sale request"),
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("requested by"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, blank=True, default="")
    failure_reason = models.CharField(_("failure reason"), max_length=500, blank=True)
    raw = models.JSONField(_("provider data"), default=dict, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="uniq_refund_provider_ref",
            ),
            # The same key from the same requester is one refund (system requests: no requester).
            models.UniqueConstraint(
                fields=["order", "requested_by", "idempotency_key"],
                condition=~Q(idempotency_key="") & Q(requested_by__isnull=False),
                name="uniq_refund_requester_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["order", "idempotency_key"],
                condition=~Q(idempotency_key="") & Q(requested_by__isnull=True),
                name="uniq_refund_system_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.provider_ref or '-'} ¥{self.amount}"


class WebhookEvent(models.Model):
    """Every delivery from a provider, stored raw for audit and replay; processed once per event id."""

    class Outcome(models.TextChoices):
        PENDING = "", _("Not processed yet")
        APPLIED = "applied", _("Applied")
        IGNORED = "ignored", _("Ignored (not ours or not handled)")

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event id"), max_length=100)
    type = models.CharField(_("type"), max_length=100)
    payload = models.JSONField(_("payload"))
    order = models.ForeignKey(
        Order,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_events",
        verbose_name=_("order"),
    )
    delivery_count = models.PositiveIntegerField(_("deliveries"), default=1)
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices, blank=True, default="")
    note = models.CharField(_("note"), max_length=500, blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    last_delivered_at = models.DateTimeField(_("last delivered at"), auto_now=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="uniq_webhook_event_id"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.type} {self.event_id}"
