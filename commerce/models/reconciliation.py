"""The daily trade bill compared with our payments and refunds: one run per day and merchant."""

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from commerce.models.orders import Order
from commerce.models.payments import Payment, Refund


class BillReconciliation(models.Model):
    """One provider bill day of one merchant (partner mode: a sub-merchant; direct mode: "").

    Totals are kept for both sides; each difference is a ``BillDifference`` row.
    A run stays ``pending`` while the bill cannot be had (not made yet, a
    download that failed or did not match its hash) and is tried again later.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the bill")
        RECONCILED = "reconciled", _("Reconciled")
        DIFFERENCES = "differences", _("Differences found")

    provider = models.CharField(_("provider"), max_length=20, default="wechatpay")
    day = models.DateField(_("bill day"))
    merchant = models.CharField(_("merchant"), max_length=32, blank=True, default="")
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.PENDING)
    bill_exists = models.BooleanField(_("bill exists"), default=False)
    bill_sha1 = models.CharField(_("bill SHA1"), max_length=40, blank=True, default="")
    their_count = models.PositiveIntegerField(_("their trades"), default=0)
    their_paid = models.DecimalField(_("their payments"), max_digits=14, decimal_places=2, default=0)
    their_refunded = models.DecimalField(_("their refunds"), max_digits=14, decimal_places=2, default=0)
    their_fees = models.DecimalField(_("their fees"), max_digits=14, decimal_places=5, default=0)
    our_count = models.PositiveIntegerField(_("our trades"), default=0)
    our_paid = models.DecimalField(_("our payments"), max_digits=14, decimal_places=2, default=0)
    our_refunded = models.DecimalField(_("our refunds"), max_digits=14, decimal_places=2, default=0)
    difference_count = models.PositiveIntegerField(_("differences"), default=0)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("trade bill reconciliation")
        verbose_name_plural = _("trade bill reconciliations")
        ordering = ["-day", "merchant"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "day", "merchant"], name="uniq_bill_run_day_merchant"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.day} {self.merchant or '-'}"


class BillDifference(models.Model):
    """One place where the bill and our books disagree."""

    class Kind(models.TextChoices):
        MISSING_OURS = "missing_ours", _("In the bill, missing on our side")
        MISSING_THEIRS = "missing_theirs", _("On our side, missing in the bill")
        AMOUNT = "amount", _("Amounts differ")
        STATUS = "status", _("Statuses differ")

    class Trade(models.TextChoices):
        PAYMENT = "payment", pgettext_lazy("trade bill", "Payment")
        REFUND = "refund", pgettext_lazy("trade bill", "Refund")

    run = models.ForeignKey(
        BillReconciliation, on_delete=models.CASCADE, related_name="differences", verbose_name=_("run")
    )
    kind = models.CharField(_("kind"), max_length=15, choices=Kind.choices)
    trade = models.CharField(_("trade"), max_length=8, choices=Trade.choices)
    reference = models.CharField(_("our trade or refund reference"), max_length=64)
    provider_ref = models.CharField(_("provider reference"), max_length=64, blank=True, default="")
    order = models.ForeignKey(
        Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("order")
    )
    community = models.ForeignKey(
        "members.Community",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("community"),
    )
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    our_amount = models.DecimalField(_("our amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    their_amount = models.DecimalField(
        _("their amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    our_status = models.CharField(_("our status"), max_length=20, blank=True, default="")
    their_status = models.CharField(_("their status"), max_length=20, blank=True, default="")
    occurred_at = models.DateTimeField(_("trade time"), null=True, blank=True)

    class Meta:
        verbose_name = _("trade bill difference")
        verbose_name_plural = _("trade bill differences")
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "trade", "reference"], name="uniq_bill_difference_trade"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"

    @property
    def our_status_label(self) -> str:
        """Our payment's or refund's status in words ("-" when we have none)."""
        statuses = Payment.Status if self.trade == self.Trade.PAYMENT else Refund.Status
        return str(dict(statuses.choices).get(self.our_status, self.our_status or "-"))
