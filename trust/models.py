"""The scorer's knowledge (domains, terms, category audiences), community content and fit assessments.

The knowledge tables mirror ``trust/data/lexicon.json`` (loaded by a data
migration) and are edited by operators in the admin.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from commerce.models import Category, Product
from members.models import Community


class Domain(models.Model):
    """A field where audiences gather and trust is earned: finance, running, tea, ..."""

    key = models.SlugField(_("key"), max_length=40, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=32)
    name_en = models.CharField(_("English name"), max_length=64)
    universal = models.BooleanField(
        _("universal"),
        default=False,
        help_text=_("Bought by every community's audience (its own events, memberships): never a mismatch."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("domain")
        verbose_name_plural = _("domains")
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.name_zh} ({self.key})"


class DomainTerm(models.Model):
    """A word or phrase (Chinese or English) that signals a domain.

    A brand is a term of the domains of its goods (a brand shared by two trades is a term of
    both); a merchandise word (T恤, tote) belongs to the universal domain and marks goods that
    carry the community's own name as its own merchandise.
    """

    class Kind(models.TextChoices):
        SYNONYM = "synonym", _("Synonym")
        RELATED = "related", _("Related word")
        BRAND = "brand", _("Brand")  # belongs to the domains of its goods
        MERCH = "merch", _("Merchandise word")  # with the community's name: its own goods

    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="terms", verbose_name=_("domain")
    )
    term = models.CharField(_("term"), max_length=64)
    lang = models.CharField(_("language"), max_length=2, choices=[("zh", "中文"), ("en", "English")])
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices, default=Kind.SYNONYM)
    weight = models.FloatField(_("weight"), default=1.0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("domain term")
        verbose_name_plural = _("domain terms")
        ordering = ["domain", "-weight", "term"]
        constraints = [
            models.UniqueConstraint(fields=["domain", "term"], name="uniq_domain_term"),
            models.CheckConstraint(
                condition=models.Q(weight__gt=0, weight__lte=2), name="domain_term_weight_range"
            ),
        ]

    def __str__(self) -> str:
        return self.term


class CategoryAudience(models.Model):
    """Which domains' audiences buy a catalog category, and how strongly."""

    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, related_name="audiences", verbose_name=_("category")
    )
    domain = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="categories", verbose_name=_("domain")
    )
    weight = models.FloatField(_("weight"), default=1.0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("category audience")
        verbose_name_plural = _("category audiences")
        ordering = ["category", "-weight"]
        constraints = [
            models.UniqueConstraint(fields=["category", "domain"], name="uniq_category_audience"),
            models.CheckConstraint(
                condition=models.Q(weight__gt=0, weight__lte=1), name="category_audience_weight"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category} → {self.domain.key}"


class DomainRelation(models.Model):
    """An audience of ``source`` also buys from ``target`` (runners buy sports nutrition)."""

    source = models.ForeignKey(
        Domain, on_delete=models.CASCADE, related_name="relations", verbose_name=_("source")
    )
    target = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="+", verbose_name=_("target"))
    weight = models.FloatField(_("weight"), default=0.5)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("domain relation")
        verbose_name_plural = _("domain relations")
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="uniq_domain_relation"),
            models.CheckConstraint(
                condition=~models.Q(source=models.F("target")), name="domain_relation_not_self"
            ),
            models.CheckConstraint(
                condition=models.Q(weight__gt=0, weight__lte=1), name="domain_relation_weight"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source.key} → {self.target.key}"


class ContentPost(models.Model):
    """Professional content a community published (article, course, talk): evidence of domain trust."""

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="posts", verbose_name=_("community")
    )
    title = models.CharField(_("title"), max_length=200)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    published_at = models.DateTimeField(_("published at"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("content post")
        verbose_name_plural = _("content posts")
        ordering = ["-published_at", "-id"]
        indexes = [models.Index(fields=["community", "-published_at"])]

    def __str__(self) -> str:
        return self.title


class FitAssessment(models.Model):
    """The scorer's verdict on one product in its community, kept current by trust itself."""

    class Level(models.TextChoices):
        FIT = "fit", _("Fits")
        CAUTION = "caution", _("Caution")
        MISMATCH = "mismatch", _("Mismatch")

    product = models.OneToOneField(
        Product, on_delete=models.CASCADE, primary_key=True, related_name="fit", verbose_name=_("product")
    )
    audience_match = models.FloatField(_("audience match"))
    trust = models.FloatField(_("trust"))
    score = models.FloatField(_("score"))
    level = models.CharField(_("fit"), max_length=8, choices=Level.choices, db_index=True)
    warning = models.BooleanField(_("warning"))
    reasons_zh = models.JSONField(_("reasons (Chinese)"), default=list)
    reasons_en = models.JSONField(_("reasons (English)"), default=list)
    product_domains = models.JSONField(_("product domains"), default=dict)
    assessed_at = models.DateTimeField(_("assessed at"), auto_now=True)

    class Meta:
        verbose_name = _("fit assessment")
        verbose_name_plural = _("fit assessments")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    score__gte=0,
                    score__lte=1,
                    audience_match__gte=0,
                    audience_match__lte=1,
                    trust__gte=0,
                    trust__lte=1,
                ),
                name="fit_scores_in_unit_range",
            ),
            models.CheckConstraint(
                condition=models.Q(warning=True) | models.Q(level="fit"), name="fit_warning_unless_fit"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.get_level_display()}"

    @property
    def reasons(self) -> list[str]:
        """Reasons in the active language (Chinese unless the request asked for English)."""
        return self.reasons_en if (get_language() or "").startswith("en") else self.reasons_zh


class CommunityAudience(models.Model):
    """A community's audience profile, and whether its products need re-scoring.

    Changes that move the profile (attributes, interests, content, sales) mark
    ``stale_since``; the ``rescore_fit`` job scans for stale rows, so a missed
    or crashed task is caught by the next scan.
    """

    community = models.OneToOneField(
        Community,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="audience",
        verbose_name=_("community"),
    )
    domains = models.JSONField(_("audience domains"), default=dict)
    trust = models.JSONField(_("trust by domain"), default=dict)
    profile = models.JSONField(
        _("audience profile"),
        default=dict,
        blank=True,
        help_text=_("The whole profile of the last re-score: new listings are scored against it."),
    )
    stale_since = models.DateTimeField(_("stale since"), null=True, blank=True, db_index=True)
    scored_at = models.DateTimeField(_("scored at"), null=True, blank=True)

    class Meta:
        verbose_name = _("community audience")
        verbose_name_plural = _("community audiences")

    def __str__(self) -> str:
        return str(self.community)


class ActivityDay(models.Model):
    """A member was active in a community on a (local, Asia/Shanghai) day: one row per user and day.

    Written by ``trust.middleware.ActivityMiddleware`` for community-scoped API
    requests and by trust's order receiver for paid orders, always as an
    insert that ignores the unique-constraint conflict, so recording is
    idempotent and safe from any number of processes.
    """

    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="activity_days", verbose_name=_("community")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="activity_days",
        verbose_name=_("user"),
    )
    day = models.DateField(_("day"))

    class Meta:
        verbose_name = _("activity day")
        verbose_name_plural = _("activity days")
        constraints = [
            models.UniqueConstraint(fields=["community", "user", "day"], name="uniq_activity_day"),
        ]
        indexes = [models.Index(fields=["community", "day"])]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.community_id} {self.day}"


class MembershipExit(models.Model):
    """When a membership stopped being active (left, banned, expired): the churn figures count these.

    Members owns no status-change time, so trust records one when it sees a
    membership saved in an exited status, and drops it when the member returns.
    """

    membership = models.OneToOneField(
        "members.Membership",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="exit",
        verbose_name=_("membership"),
    )
    community = models.ForeignKey(
        Community, on_delete=models.CASCADE, related_name="membership_exits", verbose_name=_("community")
    )
    status = models.CharField(_("status"), max_length=20)
    exited_at = models.DateTimeField(_("exited at"))

    class Meta:
        verbose_name = _("membership exit")
        verbose_name_plural = _("membership exits")
        indexes = [models.Index(fields=["community", "exited_at"])]

    def __str__(self) -> str:
        return f"{self.membership_id} {self.status} {self.exited_at:%Y-%m-%d}"
