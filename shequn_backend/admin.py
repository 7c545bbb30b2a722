"""The audit trail in the admin: read-only; owners see their communities' history, finance sees all."""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from commerce.admin import ReadOnlyMixin
from commerce.admin_reports import FinanceReadOnlyMixin
from members.admin_scoping import CommunityScopedAdminMixin, ManagedCommunityFilter
from shequn_backend.audit_labels import action_label, actor_text, changes_text, target_type_label
from shequn_backend.models import AuditEntry


class CodeFilter(admin.SimpleListFilter):
    """A filter over a code column, offering the codes in use by their names."""

    label = staticmethod(str)

    def lookups(self, request, model_admin):
        codes = model_admin.get_queryset(request).order_by().values_list(self.parameter_name, flat=True)
        return sorted(((code, self.label(code)) for code in set(codes)), key=lambda pair: pair[1])

    def queryset(self, request, queryset):
        return queryset.filter(**{self.parameter_name: self.value()}) if self.value() else queryset


class ActionFilter(CodeFilter):
    title, parameter_name = _("action"), "action"
    label = staticmethod(action_label)


class TargetTypeFilter(CodeFilter):
    title, parameter_name = _("object type"), "target_type"
    label = staticmethod(target_type_label)


@admin.register(AuditEntry)
class AuditEntryAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "who",
        "action_name",
        "target_name",
        "target_id",
        "community",
        "change_summary",
    ]
    list_filter = [ActionFilter, TargetTypeFilter, ManagedCommunityFilter, "created_at"]
    search_fields = ["=target_id", "action", "actor__username", "actor__nickname", "actor_label", "note"]
    list_select_related = ["actor", "community"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "who",
        "action_name",
        "target_name",
        "target_id",
        "community",
        "changes_in_words",
        "pretty_changes",
        "note",
    ]
    readonly_fields = fields

    @admin.display(description=_("actor"), ordering="actor_label")
    def who(self, obj: AuditEntry) -> str:
        return str(obj.actor) if obj.actor_id else actor_text(obj.actor_label)

    @admin.display(description=_("what changed"))
    def changes_in_words(self, obj: AuditEntry) -> str:
        return changes_text(target_type=obj.target_type, changes=obj.changes) or "-"

    @admin.display(description=_("object type"), ordering="target_type")
    def target_name(self, obj: AuditEntry) -> str:
        return target_type_label(obj.target_type)

    @admin.display(description=_("action"), ordering="action")
    def action_name(self, obj: AuditEntry) -> str:
        return action_label(obj.action)

    @admin.display(description=_("changes"))
    def change_summary(self, obj: AuditEntry) -> str:
        """The first few changes, with field labels and choice names (the full record is on its page)."""
        items = dict(list(obj.changes.items())[:4]) if isinstance(obj.changes, dict) else {}
        return changes_text(target_type=obj.target_type, changes=items)

    @admin.display(description=_("as stored"))
    def pretty_changes(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, ensure_ascii=False, indent=2))
