"""The sandbox payment provider's own ledger: what a real provider keeps on its side.

The sandbox (``commerce.payments.sandbox``) plays a provider inside our
deployment for the demo and local runs. These rows are *its* records, kept
apart from our ``Payment`` and ``Refund`` rows exactly as WeChat Pay's are:
our side learns of a payment, a refund or a transfer only through a signed notification
or by querying the sandbox, never by reading these tables.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class SandboxTrade(models.Model):
    """A payment at the sandbox (WeChat Pay's JSAPI order): NOTPAY until the payer pays it."""

    class State(models.TextChoices):
        NOTPAY = "NOTPAY", _("Not paid")
        SUCCESS = "SUCCESS", _("Paid")
        CLOSED = "CLOSED", _("Closed")

    out_trade_no = models.CharField(_("our reference"), max_length=32, unique=True)
    prepay_id = models.CharField(_("prepay id"), max_length=64, unique=True)
    transaction_id = models.CharField(_("sandbox transaction id"), max_length=64, blank=True, default="")
    order_id = models.PositiveBigIntegerField(_("order id"))
    payer_id = models.PositiveBigIntegerField(_("payer's user id"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    description = models.CharField(_("description"), max_length=127, blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.NOTPAY)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox payment")
        verbose_name_plural = _("sandbox payments")
        constraints = [
            models.UniqueConstraint(
                fields=["transaction_id"], condition=~models.Q(transaction_id=""), name="uniq_sandbox_txn"
            )
        ]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.state}"


class SandboxRefund(models.Model):
    """A refund at the sandbox: PROCESSING when asked, SUCCESS when the sandbox settles it."""

    class State(models.TextChoices):
        PROCESSING = "PROCESSING", _("Processing")
        SUCCESS = "SUCCESS", _("Refunded")

    trade = models.ForeignKey(SandboxTrade, on_delete=models.CASCADE, related_name="refunds")
    out_refund_no = models.CharField(_("our refund reference"), max_length=64, unique=True)
    refund_id = models.CharField(_("sandbox refund id"), max_length=64, unique=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PROCESSING)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    succeeded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("sandbox refund")
        verbose_name_plural = _("sandbox refunds")
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="sandbox_refund_gt_0")]

    def __str__(self) -> str:
        return f"{self.out_refund_no} {self.state}"


class SandboxTransfer(models.Model):
    """A transfer at the sandbox (WeChat Pay 商家转账): WAIT_USER_CONFIRM until the payee confirms."""

    class State(models.TextChoices):
        WAIT_USER_CONFIRM = "WAIT_USER_CONFIRM", _("Waiting for the payee")
        SUCCESS = "SUCCESS", _("Transferred")
        CANCELLED = "CANCELLED", _("Cancelled")

    out_bill_no = models.CharField(_("our reference"), max_length=32, unique=True)
    transfer_bill_no = models.CharField(_("sandbox transfer bill"), max_length=64, unique=True)
    package_info = models.CharField(_("package info"), max_length=64, unique=True)
    openid = models.CharField(_("payee's openid"), max_length=128)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    state = models.CharField(
        _("state"), max_length=20, choices=State.choices, default=State.WAIT_USER_CONFIRM
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("sandbox transfer")
        verbose_name_plural = _("sandbox transfers")
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="sandbox_transfer_gt_0")]

    def __str__(self) -> str:
        return f"{self.out_bill_no} {self.state}"
