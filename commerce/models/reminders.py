"""Repurchase and renewal reminders, the notification outbox, and stored repurchase rates."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import Category, Product
from members.models import Community, Membership


class Reminder(models.Model):
    """One reminder per due cycle: a product to buy again, or a membership to renew.

    ``due_on`` is the cycle's key (the due date, or the expiry date for a
    renewal); the unique constraints make a second run create nothing.
    """

    class Kind(models.TextChoices):
        REPURCHASE = "repurchase", _("Repurchase")
        RENEWAL = "renewal", _("Renewal")

    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("membership")
    )
    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("community")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    product = models.ForeignKey(
        Product,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="reminders",
        verbose_name=_("product"),
    )
    due_on = models.DateField(_("due on"))
    due_at = models.DateTimeField(_("due at"))
    message = models.CharField(_("message"), max_length=300)
    # A renewal offer (e.g. renew at half price): the coupon given with this reminder.
    coupon = models.ForeignKey(
        "commerce.MemberCoupon",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coupon"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        ordering = ["-due_at", "-id"]
        indexes = [models.Index(fields=["membership", "-due_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "product", "due_on"],
                condition=Q(kind="repurchase"),
                name="uniq_reminder_repurchase_cycle",
            ),
            models.UniqueConstraint(
                fields=["membership", "due_on"],
                condition=Q(kind="renewal"),
                name="uniq_reminder_renewal_expiry",
            ),
            models.CheckConstraint(
                condition=Q(kind="renewal") | Q(product__isnull=False), name="reminder_repurchase_has_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.due_on}"


class Notification(models.Model):
    """The outbox: a message waiting for the sender task, sent once through the configured transport."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("user"),
    )
    reminder = models.OneToOneField(
        Reminder,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notification",
        verbose_name=_("reminder"),
    )
    channel = models.CharField(_("channel"), max_length=20, default="wechat")
    title = models.CharField(_("title"), max_length=100)
    body = models.CharField(_("body"), max_length=500)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    available_at = models.DateTimeField(_("send after"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["available_at"], name="notification_pending_idx", condition=Q(status="pending")
            )
        ]

    def __str__(self) -> str:
        return self.title


class RepurchaseRate(models.Model):
    """Share of a scope's buyers who bought again, recomputed by the repurchase job; trust reads it.

    Scope is the whole community, one product, or one category within a community.
    """

    class Scope(models.TextChoices):
        COMMUNITY = "community", _("Community")
        PRODUCT = "product", _("Product")
        CATEGORY = "category", _("Category")

    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices)
    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="repurchase_rates", verbose_name=_("community")
    )
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("product")
    )
    category = models.ForeignKey(
        Category,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("category"),
    )
    buyers = models.PositiveIntegerField(_("buyers"))
    repeat_buyers = models.PositiveIntegerField(_("repeat buyers"))
    rate = models.DecimalField(_("repurchase rate"), max_digits=5, decimal_places=4, default=Decimal("0"))
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("repurchase rate")
        verbose_name_plural = _("repurchase rates")
        ordering = ["community", "scope", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["community"], condition=Q(scope="community"), name="uniq_repurchase_rate_community"
            ),
            models.UniqueConstraint(
                fields=["community", "product"],
                condition=Q(scope="product"),
                name="uniq_repurchase_rate_product",
            ),
            models.UniqueConstraint(
                fields=["community", "category"],
                condition=Q(scope="category"),
                name="uniq_repurchase_rate_category",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.rate}"
