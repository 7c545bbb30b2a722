"""Orders and their lines: prices frozen at order time, stock reserved until paid or released."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY, Product, Sku
from members.models import Community, EntryPlan, Membership


class Order(models.Model):
    """What a member buys in one community: goods, event tickets or paid entry.

    Money columns hold the confirmed state: ``amount_paid`` once the provider
    confirms the payment, ``amount_refunded`` once it confirms refunds, so
    ``amount_paid - amount_refunded`` is the net the community keeps.
    """

    class Kind(models.TextChoices):
        GOODS = "goods", _("Goods")
        EVENT = "event", _("Event")
        ENTRY = "entry", _("Paid entry")

    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Pending payment")
        PAID = "paid", _("Payment received")
        FULFILLED = "fulfilled", _("Fulfilled")
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")
        REFUNDED = "refunded", _("Refunded")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")

    # Paid and money (some or all of it) kept.
    PAID_STATUSES = (Status.PAID, Status.FULFILLED, Status.COMPLETED, Status.PARTIALLY_REFUNDED)
    # Paid at some point, refunds included: what purchase history and reconciliation count.
    EVER_PAID_STATUSES = (*PAID_STATUSES, Status.REFUNDED)

    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="orders", verbose_name=_("community")
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders", verbose_name=_("buyer")
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.GOODS)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING_PAYMENT, db_index=True
    )
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    amount_paid = models.DecimalField(_("amount paid"), max_digits=12, decimal_places=2, default=Decimal("0"))
    amount_refunded = models.DecimalField(
        _("amount refunded"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    referrer = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referred_orders",
        verbose_name=_("referrer"),
    )
    # Paid entry: the membership being activated or renewed, and the plan paid for.
    membership = models.ForeignKey(
        Membership,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="entry_orders",
        verbose_name=_("membership"),
    )
    plan = models.ForeignKey(
        EntryPlan,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("entry plan"),
    )
    idempotency_key = models.CharField(_("idempotency key"), max_length=100, blank=True, default="")
    request_fingerprint = models.CharField(_("request fingerprint"), max_length=64, blank=True)
    hold_expires_at = models.DateTimeField(_("hold expires at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancel_reason = models.CharField(_("cancel reason"), max_length=200, blank=True)
    needs_review = models.BooleanField(_("needs review"), default=False, db_index=True)
    review_reason = models.CharField(_("review reason"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["buyer", "-created_at"]),
            models.Index(fields=["community", "status", "-created_at"]),
            models.Index(
                fields=["hold_expires_at"],
                name="order_pending_hold_idx",
                condition=Q(status="pending_payment"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["buyer", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="uniq_order_buyer_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(total__gte=0), name="order_total_gte_0"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="order_paid_gte_0"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0), name="order_refunded_gte_0"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_paid")), name="order_refunded_lte_paid"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} ¥{self.total}"

    @property
    def net_amount(self) -> Decimal:
        return self.amount_paid - self.amount_refunded


class OrderLine(models.Model):
    """One line of an order, its price frozen when the order was placed."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    sku = models.ForeignKey(
        Sku,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_lines",
        verbose_name=_("SKU"),
    )
    product = models.ForeignKey(
        Product,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order_lines",
        verbose_name=_("product"),
    )
    title = models.CharField(_("title"), max_length=200)
    quantity = models.PositiveIntegerField(_("quantity"))
    list_price = models.DecimalField(_("list price"), max_digits=10, decimal_places=2)
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)
    line_total = models.DecimalField(_("line total"), max_digits=12, decimal_places=2)
    # Units given back to stock (cancelled, hold expired, tickets refunded): never more than bought.
    quantity_released = models.PositiveIntegerField(_("quantity released"), default=0)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_unit_price_gte_0"),
            models.CheckConstraint(condition=Q(line_total__gte=0), name="order_line_total_gte_0"),
            models.CheckConstraint(
                condition=Q(quantity_released__lte=F("quantity")), name="order_line_released_lte_quantity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} × {self.quantity}"
