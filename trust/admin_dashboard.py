"""The community dashboard in the admin: health figures, lifecycle stage, charts and fit warnings.

Trust reads members, so it extends the community admin (members knows
nothing of trust): the same scoped page, plus a dashboard link on the list
and change pages and the dashboard view itself. The view is thin; the figures
come from ``trust.health`` and the warnings from ``trust.selectors``.
"""

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from commerce.selectors import notification_delivery_report
from members.admin import CommunityAdmin
from members.models import Community
from members.selectors import community_list_for_manager
from shequn_backend.db import reading_from_replica
from trust.health import community_health, community_health_series
from trust.selectors import fit_warnings_for_community

# Django 5.2's own Chinese catalogue lacks these strings of the admin's app list; ours supplies them.
gettext_noop("Change or view list link")
gettext_noop("Model name")
gettext_noop("Add link")

CHART_COLOURS = {
    "members": "#417690",
    "weekly_active": "#5b8c3a",
    "orders": "#c9831a",
    "revenue": "#ba2121",
    "repurchase": "#7a4fa3",
}

COUNT_CHARTS = {"members", "weekly_active", "orders"}
DELIVERY_REPORT_DAYS = 30


def chart_data(series) -> dict:
    """What ``trust/dashboard.js`` draws: one chart per weekly figure, labelled in the active language."""
    charts = [
        ("members", "line", gettext("Active members"), series.members),
        ("weekly_active", "line", gettext("Weekly active members"), series.weekly_active),
        ("orders", "bar", gettext("Paid orders"), series.orders),
        ("revenue", "bar", gettext("Revenue (¥)"), [float(value) for value in series.revenue]),
        ("repurchase", "line", gettext("Repurchase (%)"), [round(v * 100, 1) for v in series.repurchase]),
    ]
    return {
        "labels": [formats.date_format(day, "MONTH_DAY_FORMAT") for day in series.week_ends],
        "charts": [
            {
                "id": f"chart-{key}",
                "type": kind,
                "label": label,
                "values": values,
                "colour": CHART_COLOURS[key],
                "integer": key in COUNT_CHARTS,  # whole ticks: no "0.2 orders"
            }
            for key, kind, label, values in charts
        ],
    }


class CommunityDashboardAdmin(CommunityAdmin):
    list_display = [*CommunityAdmin.list_display, "dashboard_link"]
    change_form_template = "admin/trust/community/change_form.html"

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_dashboard"
        dashboard = path(
            "<path:object_id>/dashboard/", self.admin_site.admin_view(self.dashboard_view), name=name
        )
        return [dashboard, *super().get_urls()]

    @admin.display(description=_("dashboard"))
    def dashboard_link(self, obj):
        url = reverse("admin:members_community_dashboard", args=[obj.pk])
        return format_html('<a class="dashboard-link" href="{}">{}</a>', url, gettext("Dashboard"))

    def dashboard_view(self, request, object_id):
        """Scoped like the change page: another owner's community does not exist (404)."""
        community = self.get_object(request, unquote(object_id))
        if community is None:
            raise Http404
        if not self.has_view_permission(request, community):
            raise PermissionDenied
        with reading_from_replica():  # figures only: a few seconds of replica lag is fine
            health = community_health(community=community)
            series = chart_data(community_health_series(community=community, now=health.as_of))
            delivery_report = notification_delivery_report(
                community=community, since=health.as_of - timedelta(days=DELIVERY_REPORT_DAYS)
            )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Dashboard: %(name)s") % {"name": community.name},
            "opts": self.opts,
            "original": community,
            "health": health,
            "chart_data": series,
            "fit_warnings": fit_warnings_for_community(community=community),
            "delivery_report": delivery_report,
            "delivery_report_days": DELIVERY_REPORT_DAYS,
            "notifications_url": reverse("admin:commerce_notification_changelist"),
        }
        return TemplateResponse(request, "admin/trust/community_dashboard.html", context)


admin.site.unregister(Community)
admin.site.register(Community, CommunityDashboardAdmin)

# The owner's home: the admin index opens with their communities' dashboards (``owner_dashboards``).
admin.site.index_template = "admin/trust/index.html"
HOME_DASHBOARDS = 6


def _health_from_replica(community):
    with reading_from_replica():
        return community_health(community=community)


def owner_home_cards(*, user) -> list[dict]:
    """Dashboard summaries of the first few communities ``user`` owns or operates, by name."""
    communities = community_list_for_manager(user=user).order_by("name")[:HOME_DASHBOARDS]
    cards = []
    for community in communities:
        cards.append(
            {
                "community": community,
                "health": _health_from_replica(community),
                "fit_warnings": fit_warnings_for_community(community=community).count(),
                "url": reverse("admin:members_community_dashboard", args=[community.pk]),
            }
        )
    return cards
