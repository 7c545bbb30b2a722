"""Trust's admin: the scorer's knowledge, content posts, assessments, and the fit on commerce's products.

Commerce knows nothing of fit: trust re-registers the product admin with
``ProductFitAdminMixin`` (a column, a filter and the warning on save).
"""

import logging
import re

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from commerce.admin import ProductAdmin
from commerce.models import Product
from members.admin_scoping import CommunityScopedAdminMixin
from trust import (
    admin_dashboard,  # noqa: F401 - the community admin, with its dashboard
    services,
)
from trust.models import CategoryAudience, ContentPost, Domain, DomainRelation, DomainTerm, FitAssessment

logger = logging.getLogger(__name__)


# The scorer ends its reasons with the figures ("匹配度 0.31, 信任度 0.50: 建议谨慎"); owners read the words.
FIGURES_PREFIX = re.compile(r"^(?:匹配度|Audience match) [\d.]+, (?:信任度|trust) [\d.]+: ")
VERDICTS = {
    FitAssessment.Level.FIT: _("This product suits your community."),
    FitAssessment.Level.CAUTION: _("This product only partly suits your community: list it with care."),
    FitAssessment.Level.MISMATCH: _(
        "This product does not suit your community: it may sell a little, but expect no repurchase."
    ),
}


def owner_reasons(fit: FitAssessment) -> list[str]:
    """The scorer's reasons in the active language, without the figures (those are shown apart)."""
    return [FIGURES_PREFIX.sub("", reason).strip() for reason in fit.reasons if reason.strip()]


class ProductFitAdminMixin:
    """The fit of each product in commerce's product admin: a column, a filter, the verdict on its page."""

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        at = columns.index("is_active") if "is_active" in columns else len(columns)
        return [*columns[:at], "fit_level", *columns[at:]]

    def get_list_filter(self, request):
        return ["fit__level", *super().get_list_filter(request)]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("fit")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "fit_verdict"] if obj is not None else fields

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is None:
            return fieldsets
        return [*fieldsets, (_("Fit with the community"), {"fields": ["fit_verdict"]})]

    @admin.display(description=_("verdict"))
    def fit_verdict(self, obj):
        """The verdict in words, the reasons as a list, the scores apart (for those who want them)."""
        fit = FitAssessment.objects.filter(product=obj).first()
        if fit is None:
            return _("Not assessed yet: save the product to assess it.")
        reasons = format_html_join("", "<li>{}</li>", ((reason,) for reason in owner_reasons(fit)))
        figures = _(
            "Scores: overall %(score).2f, audience match %(match).2f, trust %(trust).2f (0 to 1)."
        ) % {
            "score": fit.score,
            "match": fit.audience_match,
            "trust": fit.trust,
        }
        return format_html(
            '<div class="fit-verdict" data-level="{}"><p><strong>{}</strong></p><ul>{}</ul>'
            '<p class="help">{}</p></div>',
            fit.level,
            VERDICTS.get(fit.level, fit.get_level_display()),
            reasons,
            figures,
        )

    @admin.display(description=_("fit"), ordering="fit__score")
    def fit_level(self, obj):
        fit = getattr(obj, "fit", None)
        return fit.get_level_display() if fit is not None else "-"

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.instance.pk is not None:
            self._warn_if_misfit(request, form.instance)

    def _warn_if_misfit(self, request, product):
        """Assess now, so the owner hears why right where they act (the on-commit event assesses again).

        A scorer error is logged and never fails the owner's save.
        """
        try:
            with transaction.atomic():
                fit = services.product_assess(product_id=product.pk)
        except Exception:
            logger.exception("Could not assess product %s on save", product.pk)
            return
        if fit.warning:
            self.message_user(
                request,
                _("%(verdict)s Why: %(reasons)s The sale is not blocked; you decide.")
                % {
                    "verdict": VERDICTS.get(fit.level, fit.get_level_display()),
                    "reasons": gettext("; ").join(owner_reasons(fit)) + gettext("."),
                },
                messages.WARNING,
            )


class TrustProductAdmin(ProductFitAdminMixin, ProductAdmin):
    pass


admin.site.unregister(Product)
admin.site.register(Product, TrustProductAdmin)


class LexiconAdminMixin:
    """Operators' edits of the scorer's knowledge, and of its inlines, go through the audited services."""

    def save_model(self, request, obj, form, change):
        services.lexicon_entry_save(entry=obj, actor=request.user)

    def delete_model(self, request, obj):
        services.lexicon_entry_delete(entry=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.lexicon_entry_delete(entry=entry, actor=request.user)

    def save_formset(self, request, form, formset, change):
        for entry in formset.save(commit=False):
            services.lexicon_entry_save(entry=entry, actor=request.user)
        for entry in formset.deleted_objects:
            services.lexicon_entry_delete(entry=entry, actor=request.user)
        formset.save_m2m()


class DomainTermInline(admin.TabularInline):
    model = DomainTerm
    extra = 1
    fields = ["term", "lang", "kind", "weight"]


class DomainRelationInline(admin.TabularInline):
    model = DomainRelation
    fk_name = "source"
    extra = 0
    fields = ["target", "weight"]


@admin.register(Domain)
class DomainAdmin(LexiconAdminMixin, admin.ModelAdmin):
    """The scorer's knowledge: platform operators (superusers or granted staff) extend it here."""

    list_display = ["key", "name_zh", "name_en", "universal", "term_count"]
    list_filter = ["universal"]
    search_fields = ["key", "name_zh", "name_en", "terms__term"]
    inlines = [DomainTermInline, DomainRelationInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(term_count=Count("terms"))

    @admin.display(description=_("terms"), ordering="term_count")
    def term_count(self, obj):
        return obj.term_count


@admin.register(DomainTerm)
class DomainTermAdmin(LexiconAdminMixin, admin.ModelAdmin):
    """All terms in one list: brands and merchandise words (kind) are found and edited here."""

    list_display = ["term", "domain", "kind", "lang", "weight"]
    list_filter = ["kind", "lang", "domain"]
    search_fields = ["term", "domain__key", "domain__name_zh"]
    list_select_related = ["domain"]
    fields = ["domain", "term", "lang", "kind", "weight"]


@admin.register(CategoryAudience)
class CategoryAudienceAdmin(LexiconAdminMixin, admin.ModelAdmin):
    list_display = ["category", "domain", "weight"]
    list_filter = ["domain"]
    search_fields = ["category__path", "domain__key", "domain__name_zh"]
    list_select_related = ["category", "domain"]


@admin.register(ContentPost)
class ContentPostAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    scoped_foreign_keys = {"community": "self"}
    list_display = ["title", "community", "published_at"]
    list_filter = ["community", "published_at"]
    search_fields = ["title"]
    fields = ["community", "title", "tags", "published_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["community"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        """Through trust's services: an audit row, and the community's products re-scored."""
        data = {key: form.cleaned_data[key] for key in ("title", "tags", "published_at")}
        if change:
            saved = services.content_post_update(post_id=obj.pk, actor=request.user, **data)
        else:
            saved = services.content_post_create(
                community=form.cleaned_data["community"], actor=request.user, **data
            )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.content_post_delete(post_id=obj.pk, actor=request.user)

    def delete_queryset(self, request, queryset):
        for post_id in queryset.values_list("pk", flat=True):
            services.content_post_delete(post_id=post_id, actor=request.user)


@admin.register(FitAssessment)
class FitAssessmentAdmin(CommunityScopedAdminMixin, admin.ModelAdmin):
    """Read-only: the scorer writes these whenever a product or its community changes."""

    community_field = "product__community"
    list_display = ["product", "level", "score", "audience_match", "trust", "assessed_at"]
    list_filter = ["level", "product__community"]
    search_fields = ["product__title"]
    list_select_related = ["product"]
    readonly_fields = ["reason_list"]
    fields = ["product", "level", "score", "audience_match", "trust", "reason_list", "assessed_at"]

    @admin.display(description=_("reasons"))
    def reason_list(self, obj):
        return "\n".join(obj.reasons)

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
