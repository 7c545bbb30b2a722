"""After-sale requests (售后): refund only, or return and refund, of some units of an order's lines."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY
from commerce.models.orders import Order, OrderLine


class AfterSale(models.Model):
    """A member's request to get money back for units of an order's lines.

    ``refund_only``: approved, the refund goes out at once. ``return_refund``:
    approved, the member ships the goods back to ``return_address`` and posts
    the tracking number; the owner's ``receive`` issues the refund. The
    request's refund (``Refund.after_sale``) is one per request.
    """

    class Type(models.TextChoices):
        REFUND_ONLY = "refund_only", _("Refund only")
        RETURN_REFUND = "return_refund", _("Return and refund")

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved, refund under way")
        REJECTED = "rejected", _("Rejected")
        AWAITING_RETURN = "awaiting_return", _("Waiting for the goods to come back")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled by the member")

    # Requests still to be decided or finished: they hold their units and the order's commissions.
    OPEN_STATUSES = (Status.REQUESTED, Status.APPROVED, Status.AWAITING_RETURN)

    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="after_sales", verbose_name=_("order")
    )
    type = models.CharField(_("type"), max_length=16, choices=Type.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.REQUESTED, db_index=True
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    reason = models.CharField(_("reason"), max_length=500)
    decision_reason = models.CharField(_("owner's reason"), max_length=500, blank=True)
    return_address = models.TextField(_("return address"), max_length=1000, blank=True)
    carrier = models.CharField(_("return carrier"), max_length=20, blank=True)
    tracking_no = models.CharField(_("return tracking number"), max_length=64, blank=True)
    restocked = models.BooleanField(_("goods put back into stock"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="after_sales",
        verbose_name=_("requested by"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    returned_at = models.DateTimeField(_("goods sent back at"), null=True, blank=True)
    received_at = models.DateTimeField(_("goods received at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("after-sale request")
        verbose_name_plural = _("after-sale requests")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["requested_by", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="uniq_after_sale_requester_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="after_sale_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(type__in=["refund_only", "return_refund"]), name="after_sale_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "requested",
                        "approved",
                        "rejected",
                        "awaiting_return",
                        "refunded",
                        "cancelled",
                    ]
                ),
                name="after_sale_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(type="return_refund") | ~Q(status="awaiting_return"),
                name="after_sale_only_returns_await",
            ),
            models.CheckConstraint(
                condition=Q(received_at__isnull=True) | Q(type="return_refund"),
                name="after_sale_only_returns_received",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_type_display()} ¥{self.amount}"


class AfterSaleLine(models.Model):
    """Units of one order line in a request, and the part of the request's amount they account for."""

    after_sale = models.ForeignKey(
        AfterSale, on_delete=models.CASCADE, related_name="lines", verbose_name=_("after-sale request")
    )
    line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="after_sale_lines", verbose_name=_("order line")
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("after-sale line")
        verbose_name_plural = _("after-sale lines")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["after_sale", "line"], name="uniq_after_sale_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="after_sale_line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="after_sale_line_amount_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.line_id} × {self.quantity}"
