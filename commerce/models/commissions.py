"""Referral commissions (分佣) and the per-beneficiary ledger of what is payable."""

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY
from commerce.models.orders import Order
from members.models import Community, Membership


class Commission(models.Model):
    """What one referrer earns on one paid order, at level 1 or 2 (never deeper).

    ``amount`` is fixed when the order is paid; ``amount_reversed`` follows the
    order's confirmed refunds (proportionally), so ``amount - amount_reversed``
    is what the referrer keeps. Only ``settled`` money reaches the ledger.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending (return window open)")
        SETTLED = "settled", _("Settled (payable)")
        REVERSED = "reversed", _("Reversed")

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="commissions", verbose_name=_("order")
    )
    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="commissions", verbose_name=_("community")
    )
    beneficiary = models.ForeignKey(
        Membership, on_delete=models.PROTECT, related_name="commissions", verbose_name=_("beneficiary")
    )
    level = models.PositiveSmallIntegerField(_("level"))
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    base_amount = models.DecimalField(_("order amount"), max_digits=12, decimal_places=2)
    rate_percent = models.DecimalField(_("rate (%)"), max_digits=5, decimal_places=2)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    amount_reversed = models.DecimalField(
        _("amount reversed"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    settle_after = models.DateTimeField(_("settles after"))
    # Not due whatever ``settle_after`` says: goods not delivered yet, or an after-sale request open.
    held = models.BooleanField(_("held"), default=False, db_default=False)
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("commission")
        verbose_name_plural = _("commissions")
        ordering = ["-created_at", "-id"]
        indexes = [
            # The settle job's keyset scan: pending rows only, in (due time, id) order.
            models.Index(
                fields=["settle_after", "id"],
                name="commission_pending_due_id_idx",
                condition=Q(status="pending"),
            ),
            models.Index(fields=["beneficiary", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["order", "level"], name="uniq_commission_order_level"),
            models.CheckConstraint(condition=Q(level__in=[1, 2]), name="commission_level_1_or_2"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="commission_amount_gte_0"),
            models.CheckConstraint(
                condition=Q(amount_reversed__gte=0) & Q(amount_reversed__lte=F("amount")),
                name="commission_reversed_within_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"L{self.level} ¥{self.amount} #{self.order_id}"

    @property
    def net_amount(self) -> Decimal:
        return self.amount - self.amount_reversed


class CommissionEntry(models.Model):
    """An append-only line of a beneficiary's payable balance: settlements, adjustments, payouts.

    The balance is the sum of the entries; a reversal after payout drives it
    below zero and it stays there until later settlements cover it.
    """

    class Kind(models.TextChoices):
        SETTLEMENT = "settlement", _("Settlement")
        ADJUSTMENT = "adjustment", _("Refund adjustment")
        PAYOUT = "payout", _("Payout")
        RETURNED = "returned", _("Payout returned")

    beneficiary = models.ForeignKey(
        Membership, on_delete=models.PROTECT, related_name="commission_entries", verbose_name=_("beneficiary")
    )
    commission = models.ForeignKey(
        Commission,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("commission"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    # The withdrawal a payout or its return belongs to (null: settlements, adjustments, manual payouts).
    withdrawal = models.ForeignKey(
        "commerce.Withdrawal",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        verbose_name=_("withdrawal"),
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("commission ledger entry")
        verbose_name_plural = _("commission ledger")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["beneficiary", "idempotency_key"], name="uniq_commission_entry_idempotency_key"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="commission_entry_amount_nonzero"),
            # A payout takes money out of the balance, its return puts it back.
            models.CheckConstraint(
                condition=~Q(kind="payout") | Q(amount__lt=0), name="commission_entry_payout_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind="returned") | (Q(amount__gt=0) & Q(withdrawal__isnull=False)),
                name="commission_entry_return_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ¥{self.amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The commission ledger is append-only: add a correcting entry instead.")
        super().save(*args, **kwargs)
