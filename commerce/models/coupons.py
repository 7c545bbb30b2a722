"""Coupons (优惠券) of a community and the coupons members hold.

A ``Coupon`` is the owner's offer: amount off over a minimum spend (满减) or
percent off with a cap, for one kind of order or any, valid between two
times, limited in total (how many are given out) and per member. A
``MemberCoupon`` is one coupon a member holds; it pays for one order:
reserved when the order is placed, used when it is paid, returned when an
unpaid order is cancelled or its hold expires.
"""

from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import CURRENCY_CNY
from members.models import Community, Membership


class Coupon(models.Model):
    class Kind(models.TextChoices):
        AMOUNT = "amount", _("Amount off over a minimum spend")
        PERCENT = "percent", _("Percent off with a cap")

    class Scope(models.TextChoices):
        ANY = "any", _("Any order")
        GOODS = "goods", _("Goods")
        EVENT = "event", _("Event tickets")
        ENTRY = "entry", _("Entry plans (join or renew)")

    class Trigger(models.TextChoices):
        MANUAL = "manual", _("Issued by the owner or claimed with a code")
        JOIN = "join", _("On joining")
        RENEWAL = "renewal", _("After a paid renewal")
        REFERRAL = "referral", _("To the referrer of a new member")
        RENEWAL_REMINDER = "renewal_reminder", _("With the renewal reminder")

    community = models.ForeignKey(
        Community, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("community")
    )
    name = models.CharField(_("name"), max_length=60)
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.AMOUNT)
    amount_off = models.DecimalField(_("amount off"), max_digits=10, decimal_places=2, null=True, blank=True)
    percent_off = models.DecimalField(
        _("percent off"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("50 means half price."),
    )
    max_discount = models.DecimalField(
        _("discount cap"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    min_spend = models.DecimalField(
        _("minimum spend"), max_digits=10, decimal_places=2, default=Decimal("0.00")
    )
    currency = models.CharField(_("currency"), max_length=3, default=CURRENCY_CNY)
    scope = models.CharField(_("applies to"), max_length=8, choices=Scope.choices, default=Scope.ANY)
    valid_from = models.DateTimeField(_("valid from"), default=timezone.now)
    valid_until = models.DateTimeField(_("valid until"))
    total_limit = models.PositiveIntegerField(
        _("total limit"), null=True, blank=True, help_text=_("How many may be given out; empty: no limit.")
    )
    per_member_limit = models.PositiveIntegerField(_("limit per member"), default=1)
    issued_count = models.PositiveIntegerField(_("given out"), default=0)
    trigger = models.CharField(_("given"), max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    code = models.CharField(
        _("claim code"), max_length=32, blank=True, help_text=_("Members claim the coupon with this code.")
    )
    return_on_refund = models.BooleanField(
        _("returned when refunded"),
        default=False,
        help_text=_("Give the coupon back to the member when the order it paid for is fully refunded."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["community", "code"], condition=~Q(code=""), name="uniq_coupon_code_per_community"
            ),
            models.CheckConstraint(
                condition=Q(kind="amount", amount_off__gt=0, percent_off__isnull=True)
                | Q(kind="percent", percent_off__gt=0, percent_off__lt=100, amount_off__isnull=True),
                name="coupon_kind_values",
            ),
            models.CheckConstraint(
                condition=Q(max_discount__isnull=True) | Q(max_discount__gt=0), name="coupon_cap_gt_0"
            ),
            models.CheckConstraint(condition=Q(min_spend__gte=0), name="coupon_min_spend_gte_0"),
            models.CheckConstraint(condition=Q(per_member_limit__gte=1), name="coupon_per_member_gte_1"),
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True) | Q(issued_count__lte=F("total_limit")),
                name="coupon_issued_lte_total_limit",
            ),
            models.CheckConstraint(condition=Q(valid_until__gt=F("valid_from")), name="coupon_valid_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def usable_at(self, now) -> bool:
        return self.is_active and self.valid_from <= now < self.valid_until


class MemberCoupon(models.Model):
    """One coupon a member holds; it pays for at most one order at a time."""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        RESERVED = "reserved", _("Reserved by an unpaid order")
        USED = "used", _("Used")
        REVOKED = "revoked", _("Revoked")

    class Source(models.TextChoices):
        ISSUED = "issued", _("Issued by the owner")
        CLAIMED = "claimed", _("Claimed with a code")
        JOIN = "join", _("On joining")
        RENEWAL = "renewal", _("After a renewal")
        REFERRAL = "referral", _("For a referral")
        RENEWAL_REMINDER = "renewal_reminder", _("With the renewal reminder")

    coupon = models.ForeignKey(
        Coupon, on_delete=models.PROTECT, related_name="grants", verbose_name=_("coupon")
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="coupons", verbose_name=_("member")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    # What gave it (a join, a referral, a reminder, an issue run): the same key never gives twice.
    source_key = models.CharField(_("source key"), max_length=80, blank=True)
    # The order holding it (reserved) or paid with it (used).
    order = models.ForeignKey(
        "commerce.Order",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("order"),
    )
    issued_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("member coupon")
        verbose_name_plural = _("member coupons")
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["membership", "status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "membership", "source_key"],
                condition=~Q(source_key=""),
                name="uniq_member_coupon_source_key",
            ),
            models.UniqueConstraint(
                fields=["order"], condition=Q(order__isnull=False), name="uniq_member_coupon_order"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["reserved", "used"], order__isnull=False)
                | Q(status__in=["available", "revoked"], order__isnull=True),
                name="member_coupon_order_matches_status",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.coupon} ({self.get_status_display()})"
