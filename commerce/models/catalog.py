"""What is sold: the category tree, products per community and their SKUs."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from members.models import Community

CURRENCY_CNY = "CNY"


class Category(models.Model):
    """A node of the category tree, e.g. ``生鲜/水果``. The default tree ships as data."""

    path = models.CharField(_("path"), max_length=200, unique=True, help_text=_("For example 生鲜/水果."))
    name_zh = models.CharField(_("Chinese name"), max_length=64)
    name_en = models.CharField(_("English name"), max_length=64)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent"),
    )
    position = models.PositiveIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["position", "path"]

    def __str__(self) -> str:
        return self.path


class Product(models.Model):
    """Goods or an event (活动) listed in one community."""

    class Kind(models.TextChoices):
        GOODS = "goods", _("Goods")
        EVENT = "event", _("Event")

    class Delivery(models.TextChoices):
        """How it reaches the member: shipped (express or self-pickup), virtual, or a ticket."""

        SHIPPED = "shipped", _("Shipped goods")
        VIRTUAL = "virtual", _("Virtual (courses, services)")
        TICKET = "ticket", _("Event ticket")

    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="products", verbose_name=_("community")
    )
    title = models.CharField(_("title"), max_length=120)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    # A JSON list of short strings: the scorer and search read them; no query joins on them.
    tags = models.JSONField(_("tags"), default=list, blank=True)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.GOODS)
    # Goods ship unless marked virtual; events are tickets (``delivery_for_kind``).
    delivery_kind = models.CharField(
        _("delivery"), max_length=8, choices=Delivery.choices, default=Delivery.SHIPPED, db_default="shipped"
    )
    min_tier = models.PositiveSmallIntegerField(
        _("minimum tier level"),
        null=True,
        blank=True,
        help_text=_("Tier-only goods: hidden from members below this tier level. Empty for everyone."),
    )
    repurchase_cycle_days = models.PositiveIntegerField(
        _("repurchase cycle (days)"),
        null=True,
        blank=True,
        help_text=_("How long the goods usually last; members are reminded to buy again after it."),
    )
    return_window_days = models.PositiveSmallIntegerField(
        _("return window (days)"),
        null=True,
        blank=True,
        help_text=_("Empty to use the community's return window."),
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    location = models.CharField(_("location"), max_length=200, blank=True)
    capacity = models.PositiveIntegerField(
        _("capacity"),
        null=True,
        blank=True,
        help_text=_("Events: the head-count limit. Seats are the ticket SKUs' stock and never oversell."),
    )
    is_active = models.BooleanField(_("on sale"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["community", "is_active", "-created_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind="goods") | models.Q(starts_at__isnull=False),
                name="product_event_has_start",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="event") | models.Q(delivery_kind__in=["shipped", "virtual"]),
                name="product_goods_delivery",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def delivery(self) -> str:
        """How it reaches the member; an event is always a ticket (whatever wrote the row)."""
        return delivery_for_kind(self.kind, self.delivery_kind)


def delivery_for_kind(kind: str, delivery_kind: str | None = None) -> str:
    """A product's delivery: events are tickets; goods ship unless said to be virtual."""
    if kind == Product.Kind.EVENT:
        return Product.Delivery.TICKET
    return delivery_kind if delivery_kind == Product.Delivery.VIRTUAL else Product.Delivery.SHIPPED


class Sku(models.Model):
    """A buyable variant with its list price and stock (for an event: a ticket type and its seats)."""

    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="skus", verbose_name=_("product")
    )
    name = models.CharField(_("name"), max_length=64)
    price = models.DecimalField(_("list price"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY, editable=False)
    stock = models.IntegerField(_("stock"), default=0, help_text=_("Units (or seats) still available."))
    is_active = models.BooleanField(_("on sale"), default=True)

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(stock__gte=0), name="sku_stock_gte_0"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="sku_price_gte_0"),
        ]

    def __str__(self) -> str:
        return f"{self.product.title} / {self.name}" if self.product_id else self.name
