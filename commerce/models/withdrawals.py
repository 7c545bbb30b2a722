"""Withdrawals (提现): a KOL draws settled commission, paid by WeChat Pay's merchant transfer."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY

OUT_BILL_NO_PATTERN = r"^[A-Za-z0-9]{5,32}$"


class Withdrawal(models.Model):
    """One request to draw ``amount`` of the member's settled commission (all their communities).

    The commission ledger is debited when the request is made (one ``payout``
    entry per community drawn from), so the balance never counts the same
    money twice; a rejected, failed or cancelled withdrawal writes the
    ``returned`` entries that credit it back. ``fee`` stays with the platform:
    the transfer is ``amount - fee``.
    """

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested (awaiting finance review)")
        APPROVED = "approved", _("Approved (transfer to start)")
        REJECTED = "rejected", _("Rejected")
        TRANSFERRING = "transferring", _("Transferring")
        AWAITING_CONFIRMATION = "awaiting_confirmation", _("Awaiting the member's confirmation")
        PAID = "paid", _("Paid")
        FAILED = "failed", _("Transfer failed")
        CANCELLED = "cancelled", _("Transfer cancelled")

    FINAL = (Status.REJECTED, Status.PAID, Status.FAILED, Status.CANCELLED)
    RETURNED = (Status.REJECTED, Status.FAILED, Status.CANCELLED)
    IN_FLIGHT = (Status.TRANSFERRING, Status.AWAITING_CONFIRMATION)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="withdrawals",
        verbose_name=_("member"),
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    fee = models.DecimalField(_("fee"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    status = models.CharField(
        _("status"), max_length=24, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    out_bill_no = models.CharField(_("transfer bill no. (ours)"), max_length=32, unique=True)
    openid = models.CharField(_("payee openid"), max_length=64)
    real_name = models.CharField(_("payee real name"), max_length=64, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, blank=True)
    transfer_bill_no = models.CharField(_("WeChat transfer bill no."), max_length=64, blank=True)
    wechat_state = models.CharField(_("WeChat state"), max_length=32, blank=True)
    package_info = models.TextField(_("package info"), blank=True)
    fail_reason = models.CharField(_("failure reason"), max_length=200, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    review_note = models.CharField(_("review note"), max_length=200, blank=True)
    transfer_started_at = models.DateTimeField(_("transfer started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("withdrawal")
        verbose_name_plural = _("withdrawals")
        ordering = ["-created_at", "-id"]
        permissions = [("review_withdrawal", _("Can approve or reject withdrawals"))]
        indexes = [models.Index(fields=["status", "updated_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="withdrawal_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(fee__gte=0) & Q(fee__lt=F("amount")), name="withdrawal_fee_below_amount"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "requested",
                        "approved",
                        "rejected",
                        "transferring",
                        "awaiting_confirmation",
                        "paid",
                        "failed",
                        "cancelled",
                    ]
                ),
                name="withdrawal_status_known",
            ),
            models.CheckConstraint(
                condition=Q(out_bill_no__regex=OUT_BILL_NO_PATTERN), name="withdrawal_out_bill_no_format"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "paid", "failed", "cancelled"])
                | Q(finished_at__isnull=False),
                name="withdrawal_final_has_finished_at",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="uniq_withdrawal_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.out_bill_no} ¥{self.amount}"

    @property
    def transfer_amount(self) -> Decimal:
        return self.amount - self.fee
