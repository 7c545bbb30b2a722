from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

# No community pays more than this in commission, both levels together (percent of the order).
COMMISSION_RATE_HARD_CEILING = Decimal("50")


class User(AbstractUser):
    """A person: logs in to the mini-program (member) or the admin (owner, finance)."""

    nickname = models.CharField(_("nickname"), max_length=64, blank=True)
    wechat_openid = models.CharField(
        _("WeChat openid"), max_length=64, unique=True, null=True, blank=True, editable=False
    )
    # The same person across the platform's mini-programs and official accounts (when WeChat gives it).
    wechat_unionid = models.CharField(
        _("WeChat unionid"), max_length=64, unique=True, null=True, blank=True, editable=False
    )

    # From WeChat's getPhoneNumber (the member agreed); shown to owners only on their delivery orders.
    phone = models.CharField(_("phone"), max_length=20, blank=True, default="", db_default="")
    phone_verified_at = models.DateTimeField(_("phone verified at"), null=True, blank=True)

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.nickname or self.username

    @property
    def interest_tags(self) -> list[str]:
        return [interest.tag for interest in self.interests.all()]


class UserInterest(models.Model):
    """A tag a user declares on their profile; the scorer counts them per community."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="interests", verbose_name=_("user"))
    tag = models.CharField(_("tag"), max_length=32)

    class Meta:
        verbose_name = _("interest")
        verbose_name_plural = _("interests")
        constraints = [models.UniqueConstraint(fields=["user", "tag"], name="uniq_user_interest")]
        indexes = [models.Index(fields=["tag"])]

    def __str__(self) -> str:
        return self.tag


class Community(models.Model):
    """A 社群: people held together by shared attributes, a mission and a threshold."""

    class EntryType(models.TextChoices):
        FREE = "free", _("Free")
        PAID = "paid", _("Paid")
        APPROVAL = "approval", _("Approval")
        INVITE = "invite", _("Invite only")

    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    mission = models.CharField(_("mission"), max_length=500, blank=True)
    description = models.TextField(_("description"), max_length=5000, blank=True)
    rules = models.TextField(_("rules"), max_length=5000, blank=True)
    owner = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="owned_communities", verbose_name=_("owner")
    )
    entry_type = models.CharField(
        _("entry type"), max_length=16, choices=EntryType.choices, default=EntryType.FREE
    )
    # Referral and points settings, edited by the owner (contract: PATCH owner community).
    referral_level1_percent = models.DecimalField(
        _("level 1 commission (%)"), max_digits=5, decimal_places=2, default=0
    )
    referral_level2_percent = models.DecimalField(
        _("level 2 commission (%)"), max_digits=5, decimal_places=2, default=0
    )
    return_window_days = models.PositiveSmallIntegerField(_("return window (days)"), default=7)
    return_address = models.TextField(
        _("return address"),
        max_length=1000,
        blank=True,
        default="",
        db_default="",
        help_text=_("Where members send goods back (name, phone, address): shown on approved returns."),
    )
    commission_on_entry_orders = models.BooleanField(
        _("commission on entry fees"),
        default=False,
        help_text=_("Off by default: commissions on entry fees are what anti-pyramid rules forbid."),
    )
    points_per_yuan = models.DecimalField(
        _("points per yuan spent"), max_digits=6, decimal_places=2, default=1
    )
    # How members pay: "" = the deployment's default (WeChat Pay whenever it is configured).
    payment_provider = models.CharField(
        _("payment provider"),
        max_length=20,
        blank=True,
        default="",
        db_default="",
        choices=[("wechatpay", _("WeChat Pay")), ("stripe", "Stripe"), ("sandbox", _("Sandbox (demo)"))],
    )
    # WeChat Pay partner mode: the owner's own sub-merchant, where their takings land.
    wechatpay_sub_mchid = models.CharField(
        _("WeChat Pay sub-merchant id"),
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text=_("Partner mode only: the owner's sub-merchant number (子商户号) from WeChat Pay."),
    )
    # Active memberships (status active), kept by the membership services as statuses move, so lists
    # never count memberships per request. Memberships past expires_at leave it when the expiry job runs.
    member_count = models.PositiveIntegerField(_("active members"), default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("community")
        verbose_name_plural = _("communities")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(referral_level1_percent__gte=0, referral_level1_percent__lte=50)
                & models.Q(referral_level2_percent__gte=0, referral_level2_percent__lte=50),
                name="community_commission_percent_range",
            ),
            # The hard cap of both levels together; COMMISSION_RATE_CEILING (at most this) is the
            # deployment's own, lower ceiling, enforced by community_settings_check.
            models.CheckConstraint(
                condition=models.Q(
                    referral_level1_percent__lte=models.Value(COMMISSION_RATE_HARD_CEILING)
                    - models.F("referral_level2_percent")
                ),
                name="community_commission_total_ceiling",
                violation_error_message=_("Both commission levels together may be at most 50 percent."),
            ),
            models.CheckConstraint(
                condition=models.Q(points_per_yuan__gte=0), name="community_points_rate_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def attribute_tags(self) -> list[str]:
        return [attribute.tag for attribute in self.attributes.all()]


class CommunityAttribute(models.Model):
    """One of a community's declared shared attributes (共同属性), a free-text tag."""

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="attributes", verbose_name=_("community")
    )
    tag = models.CharField(_("tag"), max_length=32)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("attribute")
        verbose_name_plural = _("attributes")
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["community", "tag"], name="uniq_community_attribute")]
        indexes = [models.Index(fields=["tag"])]

    def __str__(self) -> str:
        return self.tag


class EntryPlan(models.Model):
    """A way to pay for entry: one-off (lifetime) or periodic (e.g. yearly)."""

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="plans", verbose_name=_("community")
    )
    name = models.CharField(_("name"), max_length=64)
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    period_days = models.PositiveIntegerField(
        _("period (days)"), null=True, blank=True, help_text=_("Empty for lifetime membership.")
    )
    trial_days = models.PositiveSmallIntegerField(_("free trial (days)"), default=0)
    refund_window_days = models.PositiveSmallIntegerField(_("unconditional refund window (days)"), default=3)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("entry plan")
        verbose_name_plural = _("entry plans")
        ordering = ["price", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="entry_plan_price_gte_0"),
            models.CheckConstraint(condition=models.Q(period_days__gt=0), name="entry_plan_period_gt_0"),
            # ISO 4217-shaped; which codes are supported is a setting, checked by the plan services.
            models.CheckConstraint(
                condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="entry_plan_currency_iso4217"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ¥{self.price}"


class Tier(models.Model):
    """A level (等级) reached by points, with benefits: a goods discount and tier-only goods."""

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("community")
    )
    name = models.CharField(_("name"), max_length=32)
    level = models.PositiveSmallIntegerField(_("level"))
    points_threshold = models.PositiveIntegerField(_("points threshold"))
    discount_percent = models.DecimalField(_("goods discount (%)"), max_digits=5, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["community", "level"]
        constraints = [
            models.UniqueConstraint(fields=["community", "level"], name="uniq_tier_level"),
            models.UniqueConstraint(fields=["community", "points_threshold"], name="uniq_tier_threshold"),
            models.CheckConstraint(
                condition=models.Q(discount_percent__gte=0, discount_percent__lte=100),
                name="tier_discount_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (L{self.level})"


class Membership(models.Model):
    """A user in a community: role, status, tier, points and place in the referral tree."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        OPERATOR = "operator", _("Operator")
        KOL = "kol", _("KOL")
        MEMBER = "member", _("Member")

    class Status(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("Pending payment")
        PENDING_APPROVAL = "pending_approval", _("Pending approval")
        ACTIVE = "active", _("Active")
        EXPIRED = "expired", _("Expired")
        LEFT = "left", _("Left")
        BANNED = "banned", _("Banned")

    MANAGER_ROLES = (Role.OWNER, Role.OPERATOR)

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("user")
    )
    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("community")
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.MEMBER)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, db_index=True)
    tier = models.ForeignKey(
        Tier,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="memberships",
        verbose_name=_("tier"),
    )
    points = models.IntegerField(
        _("points"), default=0, help_text=_("Balance: the sum of the points ledger.")
    )
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True)
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
    )
    plan = models.ForeignKey(
        EntryPlan,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="memberships",
        verbose_name=_("entry plan"),
    )
    joined_at = models.DateTimeField(_("joined at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "community"], name="uniq_membership_user_community"),
            models.CheckConstraint(
                condition=~models.Q(referred_by=models.F("id")), name="membership_not_self_referred"
            ),
        ]
        indexes = [models.Index(fields=["community", "status"])]

    def __str__(self) -> str:
        return f"{self.user} @ {self.community}"

    @property
    def is_manager(self) -> bool:
        return self.role in self.MANAGER_ROLES and self.status == self.Status.ACTIVE


class InviteCode(models.Model):
    """A code that admits people to an invite-only community: single- or multi-use, may expire."""

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="invite_codes", verbose_name=_("community")
    )
    code = models.CharField(_("code"), max_length=32, unique=True)
    max_uses = models.PositiveIntegerField(
        _("maximum uses"), default=1, help_text=_("1 for a single-use code.")
    )
    uses = models.PositiveIntegerField(_("uses"), default=0)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(uses__lte=models.F("max_uses")), name="invite_uses_lte_max"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class PointsEntry(models.Model):
    """An append-only line of the points ledger (积分). The balance is their sum."""

    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="points_entries", verbose_name=_("membership")
    )
    delta = models.IntegerField(_("points"))
    reason = models.CharField(_("reason"), max_length=200)
    idempotency_key = models.CharField(_("idempotency key"), max_length=100)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points ledger")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "idempotency_key"], name="uniq_points_idempotency_key"
            ),
            models.CheckConstraint(condition=~models.Q(delta=0), name="points_entry_delta_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.reason}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("The points ledger is append-only: add a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("The points ledger is append-only: add a correcting entry instead.")


class Address(models.Model):
    """A member's own delivery address (收货地址); at most one default. Orders copy it when placed."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="addresses", verbose_name=_("user"))
    name = models.CharField(_("receiver"), max_length=50)
    phone = models.CharField(_("phone"), max_length=20)
    province = models.CharField(_("province"), max_length=50)
    city = models.CharField(_("city"), max_length=50)
    district = models.CharField(_("district"), max_length=50, blank=True)
    detail = models.CharField(_("detailed address"), max_length=200)
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    COPIED_FIELDS = ("name", "phone", "province", "city", "district", "detail")

    class Meta:
        verbose_name = _("address")
        verbose_name_plural = _("addresses")
        ordering = ["-is_default", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(is_default=True), name="uniq_address_default_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.province}{self.city}{self.district}"

    def as_copy(self) -> dict:
        """What an order keeps of it (frozen at order time)."""
        return {field: getattr(self, field) for field in self.COPIED_FIELDS}
