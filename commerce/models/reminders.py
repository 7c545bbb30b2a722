"""Repurchase and renewal reminders, the notification outbox, and stored repurchase rates."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
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
    """The outbox: a message waiting for the sender, sent once through the configured transport.

    With WeChat configured it goes out as a subscription message (订阅消息): the
    template of its ``kind``, fields filled from ``data``, one of the member's
    consents spent (``consent_spent``). ``failed`` rows are dead letters: staff
    re-send them from the admin.
    """

    class Kind(models.TextChoices):
        REPURCHASE = "repurchase", _("Repurchase")
        RENEWAL = "renewal", _("Renewal")
        SHIPPED = "shipped", _("Shipped")
        PAYOUT = "payout", _("Payout")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        NO_CONSENT = "no_consent", _("No consent")
        SKIPPED = "skipped", _("Not sendable")
        FAILED = "failed", _("Failed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notifications",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, db_default="")
    community = models.ForeignKey(
        Community,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("community"),
    )
    reminder = models.OneToOneField(
        Reminder,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notification",
        verbose_name=_("reminder"),
    )
    # What the message is about, once: e.g. "shipment:12"; a second queue with the same key adds nothing.
    key = models.CharField(_("key"), max_length=64, blank=True, default="", db_default="", editable=False)
    channel = models.CharField(_("channel"), max_length=20, default="wechat")
    title = models.CharField(_("title"), max_length=100)
    body = models.CharField(_("body"), max_length=500)
    # The values the template's fields are filled from (``WECHAT_TEMPLATE_FIELDS``).
    data = models.JSONField(_("data"), default=dict, db_default=Value({}, output_field=models.JSONField()))
    template_id = models.CharField(_("template"), max_length=64, blank=True, db_default="")
    consent_spent = models.BooleanField(_("consent spent"), default=False, db_default=False)
    msgid = models.CharField(_("WeChat message id"), max_length=32, blank=True, db_default="")
    # The business day this message took one of the member's daily messages (``NOTIFICATION_DAILY_CAP``).
    quota_day = models.DateField(_("counted on"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
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
                fields=["available_at", "id"], name="notification_pending_idx", condition=Q(status="pending")
            ),
            models.Index(fields=["community", "created_at"], name="notification_community_idx"),
            models.Index(fields=["user", "sent_at"], name="notification_user_sent_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["key"], condition=~Q(key=""), name="uniq_notification_key"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "no_consent", "skipped", "failed"]),
                name="notification_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class SubscriptionConsent(models.Model):
    """The ledger of a member's unused one-time consents (一次性订阅) for one template.

    The mini-program reports each accept (one more) or ban (none left); every
    message sent spends one, by a conditional UPDATE that never goes below zero.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="subscription_consents",
        verbose_name=_("user"),
    )
    template_id = models.CharField(_("template"), max_length=64)
    remaining = models.PositiveIntegerField(_("unused consents"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("subscription consent")
        verbose_name_plural = _("subscription consents")
        constraints = [
            models.UniqueConstraint(fields=["user", "template_id"], name="uniq_subscription_consent"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="subscription_consent_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.template_id}: {self.remaining}"


class NotificationQuota(models.Model):
    """How many messages a member was sent on one business day (the daily cap counts here)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    day = models.DateField(_("day"))
    used = models.PositiveIntegerField(_("messages"), default=0)

    class Meta:
        verbose_name = _("daily message count")
        verbose_name_plural = _("daily message counts")
        constraints = [
            models.UniqueConstraint(fields=["user", "day"], name="uniq_notification_quota_day"),
            models.CheckConstraint(condition=Q(used__gte=0), name="notification_quota_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.used}"


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
