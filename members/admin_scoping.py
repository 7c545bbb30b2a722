"""Scope admin pages to the communities the signed-in owner or operator manages.

Superusers see everything. Owners and operators (staff users with an active
owner/operator membership) see, change and act on rows of their own
communities only: querysets, object permissions, foreign-key choices and
actions are all filtered. Anyone else sees nothing.
"""

from django.contrib import admin

from members.models import Community
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
        """On the parent's add page (no parent yet) the rows belong to what the user may add there.

        A new owner has no community yet, so without this the entry plans of
        their first community could not be entered on the page that creates it.
        """
        if obj is None:
            parent_admin = self.admin_site._registry.get(self.parent_model)
            if parent_admin is not None:
                return parent_admin.has_add_permission(request)
        return super()._may(request, obj)
