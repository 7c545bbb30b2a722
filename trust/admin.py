from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from members.admin_scoping import CommunityScopedAdminMixin
from trust import admin_dashboard  # noqa: F401 - the community admin, with its dashboard
from trust.models import CategoryAudience, ContentPost, Domain, DomainRelation, DomainTerm, FitAssessment


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
class DomainAdmin(admin.ModelAdmin):
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


@admin.register(CategoryAudience)
class CategoryAudienceAdmin(admin.ModelAdmin):
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
    exclude = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


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
