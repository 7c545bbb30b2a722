"""Orders and their lines: prices frozen at order time, stock reserved until paid or released."""

from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from commerce.models.catalog import CURRENCY_CNY, Product, Sku
from members.models import Community, EntryPlan, Membership


def summary_status(payment_status: str, fulfilment_status: str) -> str:
    """The one-word ``Order.status`` old clients read, derived from the two states.

    Money news wins (unpaid, cancelled, refunded, partially refunded); a paid
    order then shows how far it was fulfilled.
    """
    if payment_status == "paid":
        return {"unfulfilled": "paid", "completed": "completed"}.get(fulfilment_status, "fulfilled")
    return {"unpaid": "pending_payment"}.get(payment_status, payment_status)


# The split of each summary status, for rows written before the split (migration 0010, scale data).
STATUS_SPLIT = {
    "pending_payment": ("unpaid", "unfulfilled"),
    "paid": ("paid", "unfulfilled"),
    "fulfilled": ("paid", "delivered"),
    "completed": ("paid", "completed"),
    "cancelled": ("cancelled", "unfulfilled"),
    "refunded": ("refunded", "unfulfilled"),
    "partially_refunded": ("partially_refunded", "unfulfilled"),
}

PAYMENT_STATES = ["unpaid", "paid", "partially_refunded", "refunded", "cancelled"]
FULFILMENT_STATES = ["unfulfilled", "partially_shipped", "shipped", "delivered", "completed"]
SUMMARY_CONDITION = (
    Q(payment_status="unpaid", status="pending_payment")
    | Q(payment_status="cancelled", status="cancelled")
    | Q(payment_status="refunded", status="refunded")
    | Q(payment_status="partially_refunded", status="partially_refunded")
    | Q(payment_status="paid", fulfilment_status="unfulfilled", status="paid")
    | Q(
        payment_status="paid",
        fulfilment_status__in=["partially_shipped", "shipped", "delivered"],
        status="fulfilled",
    )
    | Q(payment_status="paid", fulfilment_status="completed", status="completed")
)


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

    class PaymentStatus(models.TextChoices):
        UNPAID = "unpaid", _("Unpaid")
        PAID = "paid", pgettext_lazy("payment status", "Paid")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")
        CANCELLED = "cancelled", _("Cancelled")

    class FulfilmentStatus(models.TextChoices):
        UNFULFILLED = "unfulfilled", _("Unfulfilled")
        PARTIALLY_SHIPPED = "partially_shipped", _("Partially shipped")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        COMPLETED = "completed", _("Completed")

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
    # The money state and the fulfilment state move apart (commerce.services.order_states);
    # ``status`` is their summary for old clients, kept in step by the same services.
    payment_status = models.CharField(
        _("payment status"), max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID
    )
    fulfilment_status = models.CharField(
        _("fulfilment status"),
        max_length=20,
        choices=FulfilmentStatus.choices,
        default=FulfilmentStatus.UNFULFILLED,
    )

    class Delivery(models.TextChoices):
        NONE = "", _("Nothing to deliver")
        EXPRESS = "express", _("Express")
        PICKUP = "pickup", _("Self-pickup")

    class ShippingInfo(models.TextChoices):
        """Where WeChat's shipping information (发货信息) of a WeChat Pay order stands."""

        NOT_NEEDED = "", _("Not needed")
        PENDING = "pending", _("Waiting to upload")
        PARTIAL = "partial", _("Uploaded in part")
        UPLOADED = "uploaded", _("Uploaded")
        FAILED = "failed", _("Upload failed")

    delivery = models.CharField(
        _("delivery"), max_length=8, choices=Delivery.choices, blank=True, default="", db_default=""
    )
    # The buyer's address as it was when the order was placed (name, phone, province, city, district, detail).
    address = models.JSONField(_("address"), null=True, blank=True)
    shipping_info_status = models.CharField(
        _("WeChat shipping info"),
        max_length=8,
        choices=ShippingInfo.choices,
        blank=True,
        default="",
        db_default="",
    )
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    # What the buyer pays: the lines' totals less the coupon's discount.
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    discount_total = models.DecimalField(
        _("discount"), max_digits=12, decimal_places=2, default=Decimal("0.00"), db_default=Decimal("0.00")
    )
    coupon = models.ForeignKey(
        "commerce.MemberCoupon",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders",
        verbose_name=_("coupon"),
    )
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
    # When the goods were all handed over (the fulfilment became delivered): after-sales run from it.
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
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
            models.CheckConstraint(condition=Q(discount_total__gte=0), name="order_discount_gte_0"),
            models.CheckConstraint(condition=Q(amount_paid__gte=0), name="order_paid_gte_0"),
            models.CheckConstraint(condition=Q(amount_refunded__gte=0), name="order_refunded_gte_0"),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=F("amount_paid")), name="order_refunded_lte_paid"
            ),
            models.CheckConstraint(
                condition=Q(payment_status__in=PAYMENT_STATES), name="order_payment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(fulfilment_status__in=FULFILMENT_STATES), name="order_fulfilment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(fulfilment_status="unfulfilled")
                | Q(payment_status__in=["paid", "partially_refunded", "refunded"]),
                name="order_fulfilled_only_paid",
            ),
            models.CheckConstraint(condition=SUMMARY_CONDITION, name="order_status_summarises_states"),
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
    # The order's coupon discount allocated to this line (to the fen; the lines add up to the order's).
    discount = models.DecimalField(
        _("discount"), max_digits=12, decimal_places=2, default=Decimal("0.00"), db_default=Decimal("0.00")
    )
    # Units given back to stock (cancelled, hold expired, tickets refunded): never more than bought.
    quantity_released = models.PositiveIntegerField(_("quantity released"), default=0)
    # Units in shipments: with the released ones never more than bought.
    quantity_shipped = models.PositiveIntegerField(_("quantity shipped"), default=0, db_default=0)
    # Units refunded through after-sale requests (unshipped ones among them are also released).
    quantity_refunded = models.PositiveIntegerField(_("quantity refunded"), default=0, db_default=0)

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_gt_0"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="order_line_unit_price_gte_0"),
            models.CheckConstraint(condition=Q(line_total__gte=0), name="order_line_total_gte_0"),
            models.CheckConstraint(
                condition=Q(discount__gte=0, discount__lte=F("line_total")), name="order_line_discount_range"
            ),
            models.CheckConstraint(
                condition=Q(quantity_released__lte=F("quantity")), name="order_line_released_lte_quantity"
            ),
            models.CheckConstraint(
                condition=Q(quantity_shipped__lte=F("quantity") - F("quantity_released")),
                name="order_line_shipped_lte_kept",
            ),
            models.CheckConstraint(
                condition=Q(quantity_refunded__lte=F("quantity")), name="order_line_refunded_lte_quantity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} × {self.quantity}"

    @property
    def paid_amount(self) -> Decimal:
        """What the buyer pays for this line: its total less its share of the coupon discount.

        The one figure refunds, commissions, points and reports use per line.
        """
        return self.line_total - self.discount

    def paid_for_units(self, quantity: int) -> Decimal:
        """What ``quantity`` of this line's units were paid: all of them give ``paid_amount`` exactly,
        fewer their share rounded down to the fen (so parts never add up to more than was paid)."""
        if quantity >= self.quantity:
            return self.paid_amount
        share = self.paid_amount * quantity / self.quantity
        return share.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
