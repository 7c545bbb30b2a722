"""The audit trail in the admin: read-only; owners see their communities' history, finance sees all."""

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from commerce.admin import ReadOnlyMixin
from commerce.admin_reports import FinanceReadOnlyMixin
from members.admin_scoping import CommunityScopedAdminMixin, ManagedCommunityFilter
from shequn_backend.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(FinanceReadOnlyMixin, ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "who", "action", "target_type", "target_id", "community", "change_summary"]
    list_filter = ["action", "target_type", ManagedCommunityFilter, "created_at"]
    search_fields = ["=target_id", "action", "actor__username", "actor__nickname", "actor_label", "note"]
    list_select_related = ["actor", "community"]
    date_hierarchy = "created_at"
    fields = [
        "created_at",
        "actor",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "community",
        "pretty_changes",
        "note",
    ]
    readonly_fields = fields

    @admin.display(description=_("actor"), ordering="actor_label")
    def who(self, obj: AuditEntry) -> str:
        return str(obj.actor) if obj.actor_id else obj.actor_label

    @admin.display(description=_("changes"))
    def change_summary(self, obj: AuditEntry) -> str:
        items = list(obj.changes.items())[:4] if isinstance(obj.changes, dict) else []
        pairs = (
            (key, f"{value[0]} → {value[1]}" if isinstance(value, list) and len(value) == 2 else value)
            for key, value in items
        )
        return "; ".join(f"{key}: {value}" for key, value in pairs)

    @admin.display(description=_("changes"))
    def pretty_changes(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.changes, ensure_ascii=False, indent=2))
