"""Notifications in the admin: the outbox of the owner's communities, dead letters and re-sending.

Rows are read-only; the action re-queues dead letters through ``notification_resend``.
"""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.admin import ReadOnlyMixin
from commerce.models import Notification
from commerce.services.notifications import notification_resend
from members.admin_scoping import CommunityScopedAdminMixin, ManagedCommunityFilter


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, CommunityScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "created",
        "user",
        "community",
        "kind",
        "status",
        "attempts",
        "last_error",
        "sent_at",
    ]
    list_filter = ["status", "kind", "created_at", ManagedCommunityFilter]
    search_fields = ["=id", "user__username", "user__nickname"]
    list_select_related = ["user", "community"]
    date_hierarchy = "created_at"
    actions = ["resend_selected"]
    fields = [
        "user",
        "community",
        "kind",
        "status",
        "title",
        "body",
        "data",
        "template_id",
        "consent_spent",
        "msgid",
        "attempts",
        "last_error",
        "available_at",
        "sent_at",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, notification):
        return timezone.localtime(notification.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.action(description=_("Re-send the selected failed notifications"))
    def resend_selected(self, request, queryset):
        """The changelist's queryset is scoped already: only the owner's communities' rows."""
        chosen = list(queryset.values_list("pk", flat=True))
        done = notification_resend(actor=request.user, notification_ids=chosen)
        if done:
            message = ngettext(
                "%(count)d notification queued again; it is sent within a few minutes.",
                "%(count)d notifications queued again; they are sent within a few minutes.",
                done,
            )
            self.message_user(request, message % {"count": done}, messages.SUCCESS)
        if done < len(chosen):
            self.message_user(
                request,
                _(
                    "Only failed notifications can be re-sent. Filter the list by status "
                    "“Failed” and choose among those."
                ),
                messages.WARNING,
            )
