"""Event tickets: one per seat bought, with an unguessable code that operators check in (核销) once."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import Product
from commerce.models.orders import Order, OrderLine
from members.models import Community


class Ticket(models.Model):
    """One seat of a paid event order line. Issued on payment, refunded with its seat, checked in once."""

    class Status(models.TextChoices):
        VALID = "valid", _("Valid")
        CHECKED_IN = "checked_in", _("Checked in")
        REFUNDED = "refunded", _("Refunded")

    code = models.CharField(_("ticket code"), max_length=32, unique=True, editable=False)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("order")
    )
    line = models.ForeignKey(
        OrderLine, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("order line")
    )
    # The seat's number within its line (1..quantity): a line never gets two tickets for one seat.
    seat = models.PositiveIntegerField(_("seat"))
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("product")
    )
    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("community")
    )
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("buyer")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.VALID)
    checked_in_at = models.DateTimeField(_("checked in at"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("checked in by"),
    )
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["buyer", "-created_at"]),
            models.Index(fields=["community", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["line", "seat"], name="uniq_ticket_line_seat"),
            models.CheckConstraint(condition=Q(seat__gt=0), name="ticket_seat_gt_0"),
            models.CheckConstraint(
                condition=~Q(status="checked_in") | Q(checked_in_at__isnull=False),
                name="ticket_checked_in_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.code
