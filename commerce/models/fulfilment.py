"""Shipments of an order's goods and the shipping information uploaded to WeChat for them."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.orders import Order, OrderLine

MAX_SHIPMENTS = 15  # WeChat's split delivery takes at most 15 packages


class Shipment(models.Model):
    """A package sent by express: its carrier (WeChat's delivery id) and tracking number."""

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="shipments", verbose_name=_("order")
    )
    carrier = models.CharField(
        _("carrier"), max_length=20, help_text=_("WeChat's delivery id: SF, ZTO, YTO, JTSD ...")
    )
    tracking_no = models.CharField(_("tracking number"), max_length=64)
    shipped_at = models.DateTimeField(_("shipped at"), db_index=True)
    confirmed_at = models.DateTimeField(_("receipt confirmed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("shipped by"),
    )

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["order", "shipped_at", "id"]
        indexes = [
            models.Index(
                fields=["shipped_at"], name="shipment_unconfirmed_idx", condition=Q(confirmed_at__isnull=True)
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(carrier="") & ~Q(tracking_no=""), name="shipment_has_tracking"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_no}"


class ShipmentLine(models.Model):
    """How many units of an order line went into a shipment."""

    shipment = models.ForeignKey(
        Shipment, on_delete=models.CASCADE, related_name="lines", verbose_name=_("shipment")
    )
    line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="shipped_in", verbose_name=_("order line")
    )
    quantity = models.PositiveIntegerField(_("quantity"))

    class Meta:
        verbose_name = _("shipment line")
        verbose_name_plural = _("shipment lines")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["shipment", "line"], name="uniq_shipment_line"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="shipment_line_quantity_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.line_id} × {self.quantity}"


class ShippingUpload(models.Model):
    """One upload of shipping information to WeChat: per shipment (express), or one per order
    (self-pickup, virtual goods). Retried until WeChat takes it; never sent twice once taken."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to upload")
        UPLOADED = "uploaded", _("Uploaded")
        FAILED = "failed", _("Upload failed")

    class Logistics(models.IntegerChoices):
        EXPRESS = 1, _("Express")
        VIRTUAL = 3, _("Virtual goods")
        PICKUP = 4, _("Self-pickup")

    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="shipping_uploads", verbose_name=_("order")
    )
    shipment = models.OneToOneField(
        Shipment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="shipping_upload",
        verbose_name=_("shipment"),
    )
    logistics_type = models.PositiveSmallIntegerField(_("logistics type"), choices=Logistics.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    uploaded_at = models.DateTimeField(_("uploaded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("WeChat shipping upload")
        verbose_name_plural = _("WeChat shipping uploads")
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order"], condition=Q(shipment__isnull=True), name="uniq_shipping_upload_whole_order"
            ),
            models.CheckConstraint(
                condition=Q(shipment__isnull=True, logistics_type__in=[3, 4])
                | Q(shipment__isnull=False, logistics_type=1),
                name="shipping_upload_kind_fits",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.order_id} {self.get_logistics_type_display()} {self.get_status_display()}"
