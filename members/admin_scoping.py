"""Scope admin pages to the communities the signed-in owner or operator manages.

Superusers see everything. Owners and operators (staff users with an active
owner/operator membership) see, change and act on rows of their own
communities only: querysets, object permissions, foreign-key choices and
actions are all filtered. Anyone else sees nothing.
"""

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from members.models import Community, Tier
from members.selectors import community_ids_managed_by


def managed_community_ids(request) -> set[int]:
    """Cached per request: several admin hooks ask within one page."""
    if not hasattr(request, "_managed_community_ids"):
        request._managed_community_ids = community_ids_managed_by(user=request.user)
    return request._managed_community_ids


class CommunityScopedAdminMixin:
    """Scope a ModelAdmin by ``community_field``: the lookup from the model to its community.

    For example "community" or "order__community"; "self" on the Community admin.
    """

    community_field = "community"
    # Foreign keys whose choices are scoped, mapped to the lookup from *that* model to the community.
    scoped_foreign_keys: dict[str, str] = {}

    def _community_ids_of(self, obj) -> set[int]:
        value = obj
        for part in self.community_field.split("__"):
            value = getattr(value, part)
        return {value.pk if hasattr(value, "pk") else value}

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        lookup = "id__in" if self.community_field == "self" else f"{self.community_field}__in"
        return queryset.filter(**{lookup: managed_community_ids(request)})

    def get_list_display(self, request):
        """Lists fit a laptop: no community column for someone who runs exactly one community."""
        columns = list(super().get_list_display(request))
        if (
            "community" in columns
            and not request.user.is_superuser
            and len(managed_community_ids(request)) == 1
        ):
            columns.remove("community")
        return columns

    def has_module_permission(self, request):
        return request.user.is_superuser or bool(managed_community_ids(request))

    def _may(self, request, obj) -> bool:
        if request.user.is_superuser:
            return True
        managed = managed_community_ids(request)
        if not managed:
            return False
        if obj is None:
            return True
        ids = {obj.pk} if self.community_field == "self" else self._community_ids_of(obj)
        return ids <= managed

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request, *args):
        return self._may(request, None)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            lookup = self.scoped_foreign_keys.get(db_field.name)
            if lookup is not None:
                model = db_field.remote_field.model
                key = "id__in" if lookup == "self" else f"{lookup}__in"
                kwargs["queryset"] = model._default_manager.filter(**{key: managed_community_ids(request)})
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ScopedInline(CommunityScopedAdminMixin, admin.TabularInline):
    """An inline whose rows and choices are scoped like its parent page."""

    extra = 0

    def _community_ids_of(self, obj):
        """Django passes inlines' permission hooks the *parent* object (the community on its own page)."""
        if isinstance(obj, self.model):
            return super()._community_ids_of(obj)
        community = obj if isinstance(obj, Community) else obj.community
        return {community.pk}

    def _may(self, request, obj) -> bool:
        """Without a parent object: anyone who manages a community, else whoever may add the parent.

        Django asks this (no object) before listing an inline's rows, so a
        read-only parent (an order) must not decide it by its add permission.

        A new owner has no community yet, so without this the entry plans of
        their first community could not be entered on the page that creates it.
        """
        if obj is None and not super()._may(request, None):
            parent_admin = self.admin_site._registry.get(self.parent_model)
            return parent_admin is not None and parent_admin.has_add_permission(request)
        return super()._may(request, obj)


def communities_visible_in(request, model_admin, community_lookup: str) -> QuerySet[Community]:
    """Communities that have rows on this admin page for this user: never another owner's names.

    Superusers see all; anyone else sees the communities of the rows the page's
    own (scoped) queryset lets them read, e.g. every community for finance staff
    on the money pages, their own for an owner.
    """
    communities = Community.objects.order_by("name")
    if request.user.is_superuser:
        return communities
    rows = model_admin.get_queryset(request).filter(**{community_lookup: OuterRef("pk")})
    return communities.filter(Exists(rows))


class ManagedCommunityFilter(admin.SimpleListFilter):
    """Filter by community, offering only the communities the user may see (not every name)."""

    title = _("community")
    parameter_name = "community"
    community_lookup = "community_id"

    def lookups(self, request, model_admin):
        return [
            (str(c.pk), c.name) for c in communities_visible_in(request, model_admin, self.community_lookup)
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(**{self.community_lookup: self.value()})


class ManagedTierFilter(admin.SimpleListFilter):
    """Filter by tier, offering only the tiers of communities the user may see, named with their community."""

    title = _("tier")
    parameter_name = "tier"
    tier_lookup = "tier_id"
    community_lookup = "community_id"

    def lookups(self, request, model_admin):
        communities = communities_visible_in(request, model_admin, self.community_lookup)
        tiers = Tier.objects.filter(community__in=communities).select_related("community")
        return [
            (str(t.pk), f"{t.community.name} · {t.name}") for t in tiers.order_by("community__name", "level")
        ]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(**{self.tier_lookup: self.value()})
