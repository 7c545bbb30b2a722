"""Admin for finance: read-only access to every community's money pages, the export screen and reconciliation.

Finance staff (the 财务 group, see ``commerce.reports.roles``) read every
community's orders, payments and refunds here and change nothing: no add,
change, delete or action. Owners keep their scoped pages and export their
own communities only. The views are thin: selectors decide the scope,
services write the files.
"""

import tempfile
from datetime import date, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import BaseModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commerce.models import BillDifference, BillReconciliation, Commission, ExportJob, Order, Payment, Refund
from commerce.reports.errors import ReportNotAllowed, ReportRangeInvalid
from commerce.reports.filters import ReportFilters, report_day_clamp, report_range_check
from commerce.reports.reconciliation import RECONCILIATION
from commerce.reports.registry import REPORTS
from commerce.reports.roles import user_is_finance
from commerce.reports.selectors import (
    community_list_for_reports,
    export_job_get_for_user,
    export_job_list_for_user,
    report_scope_for_user,
    user_may_export,
)
from commerce.reports.services import (
    export_filename,
    export_job_create,
    report_count,
    report_export,
    report_snapshot,
)
from commerce.services.reconciliation import trade_bill_reconcile
from members.admin_scoping import CommunityScopedAdminMixin
from shequn_backend.calendar import business_day

DEFAULT_DIRECT_MAX_ROWS = 20_000
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def finance_reads_all(request) -> bool:
    """Finance staff who are not superusers: they read everything and change nothing. Cached per request."""
    if not hasattr(request, "_finance_reads_all"):
        user = request.user
        request._finance_reads_all = not user.is_superuser and user_is_finance(user=user)
    return request._finance_reads_all


class FinanceReadOnlyMixin:
    """Put before ``CommunityScopedAdminMixin`` on money pages: finance sees every community, read-only."""

    def get_queryset(self, request):
        if finance_reads_all(request):
            return BaseModelAdmin.get_queryset(self, request)
        return super().get_queryset(request)

    def has_module_permission(self, request):
        return finance_reads_all(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return finance_reads_all(request) or super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return not finance_reads_all(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return not finance_reads_all(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not finance_reads_all(request) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        """Actions (refunds, status changes) act on whatever the page shows: none for finance."""
        if finance_reads_all(request):
            return {}
        return super().get_actions(request)


def _status_choices():
    groups = [("", gettext_lazy("All"))]
    for title, choices in (
        (gettext_lazy("Orders"), Order.Status.choices),
        (gettext_lazy("Payments"), Payment.Status.choices),
        (gettext_lazy("Refunds"), Refund.Status.choices),
        (gettext_lazy("Commissions"), Commission.Status.choices),
    ):
        groups.append((title, choices))
    return groups


class ExportForm(forms.Form):
    report = forms.ChoiceField(label=gettext_lazy("Report"))
    # <input type="date"> takes ISO dates only, whatever the page's language.
    date_from = forms.DateField(
        label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=gettext_lazy("Asia/Shanghai calendar days, both inclusive."),
    )
    community = forms.ModelChoiceField(
        label=gettext_lazy("Community"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("All my communities"),
    )
    fmt = forms.ChoiceField(label=gettext_lazy("Format"), choices=ExportJob.Format.choices)
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=_status_choices, required=False)
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"), choices=[("", gettext_lazy("All")), *Order.Kind.choices], required=False
    )
    language = forms.ChoiceField(label=gettext_lazy("Column language"), choices=settings.LANGUAGES)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["report"].choices = [(name, report.title) for name, report in REPORTS.items()]
        self.fields["community"].queryset = community_list_for_reports(user=user)
        if user.is_superuser or user_is_finance(user=user):
            self.fields["community"].empty_label = gettext_lazy("All communities")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end:
            try:
                report_range_check(date_from=start, date_to=end)
            except ReportRangeInvalid as exc:
                self.add_error(None, exc.message)
            else:
                if end < start:
                    self.add_error("date_to", _("The end date is before the start date."))
        return cleaned


def _today():
    return business_day(timezone.now())


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    """The export screen (the "add" page), the list of one's background exports, downloads, reconciliation."""

    list_display = [
        "id",
        "report_title",
        "format",
        "date_from",
        "date_to",
        "community",
        "status",
        "progress_bar",
        "download_link",
        "created_at",
    ]
    list_filter = ["status", "format"]
    change_list_template = "admin/commerce/exportjob/change_list.html"
    fields = [
        "report",
        "format",
        "language",
        "date_from",
        "date_to",
        "community",
        "status_filter",
        "kind_filter",
        "status",
        "progress",
        "rows_total",
        "rows_written",
        "error",
        "created_at",
        "finished_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return export_job_list_for_user(user=request.user)

    def has_module_permission(self, request):
        return user_may_export(user=request.user)

    def has_view_permission(self, request, obj=None):
        if not user_may_export(user=request.user):
            return False
        return obj is None or request.user.is_superuser or obj.requested_by_id == request.user.pk

    def has_add_permission(self, request):
        return user_may_export(user=request.user)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=gettext_lazy("report"))
    def report_title(self, obj):
        report = REPORTS.get(obj.report)
        return report.title if report else obj.report

    @admin.display(description=gettext_lazy("progress"), ordering="progress")
    def progress_bar(self, obj):
        return format_html('<progress max="100" value="{}"></progress> {}%', obj.progress, obj.progress)

    @admin.display(description=gettext_lazy("file"))
    def download_link(self, obj):
        if obj.status != ExportJob.Status.DONE:
            return "-"
        url = reverse("admin:commerce_exportjob_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Download"))

    def get_urls(self):
        custom = [
            path(
                "<int:job_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name="commerce_exportjob_download",
            ),
            path(
                "reconciliation/",
                self.admin_site.admin_view(self.reconciliation_view),
                name="commerce_exportjob_reconciliation",
            ),
        ]
        return custom + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        running = (
            self.get_queryset(request)
            .filter(status__in=[ExportJob.Status.QUEUED, ExportJob.Status.RUNNING])
            .exists()
        )
        extra = {"refresh_seconds": 3 if running else None, **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def add_view(self, request, form_url="", extra_context=None):
        """Pick report, range, community and format: small exports download at once, large ones queue."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        today = _today()
        initial = {
            "date_from": today.replace(day=1),
            "date_to": today,
            "language": translation.get_language(),
        }
        form = ExportForm(request.POST or None, user=request.user, initial=initial)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                scope = report_scope_for_user(user=request.user, community=data["community"])
            except ReportNotAllowed as exc:
                raise PermissionDenied(str(exc.message)) from exc
            filters = ReportFilters(
                date_from=data["date_from"],
                date_to=data["date_to"],
                community_ids=scope,
                status=data["status"],
                kind=data["kind"],
            )
            limit = getattr(settings, "REPORTS_DIRECT_MAX_ROWS", DEFAULT_DIRECT_MAX_ROWS)
            with report_snapshot():
                rows = report_count(report_name=data["report"], filters=filters)
            if rows <= limit:
                return self._download_now(data, filters)
            job = export_job_create(
                user=request.user,
                report_name=data["report"],
                fmt=data["fmt"],
                date_from=data["date_from"],
                date_to=data["date_to"],
                community=data["community"],
                status=data["status"],
                kind=data["kind"],
                language=data["language"],
            )
            self.message_user(
                request,
                _(
                    "%(rows)d rows: the export runs in the background (job #%(id)d). This page shows its "
                    "progress; download it here when it reaches 100%%."
                )
                % {"rows": rows, "id": job.pk},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:commerce_exportjob_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Export a finance report"),
            "form": form,
            "reconciliation_url": reverse("admin:commerce_exportjob_reconciliation"),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/commerce/exportjob/export_form.html", context)

    def _download_now(self, data, filters):
        handle = tempfile.TemporaryFile()  # noqa: SIM115 - FileResponse closes it once sent
        report_export(
            report_name=data["report"],
            filters=filters,
            fmt=data["fmt"],
            stream=handle,
            language=data["language"],
        )
        handle.seek(0)
        name = export_filename(
            report_name=data["report"], date_from=data["date_from"], date_to=data["date_to"], fmt=data["fmt"]
        )
        return FileResponse(
            handle, as_attachment=True, filename=name, content_type=CONTENT_TYPES[data["fmt"]]
        )

    def download_view(self, request, job_id: int):
        """The job's file, for the user who asked for it (and still may export) once it is ready."""
        if not user_may_export(user=request.user):
            raise PermissionDenied
        try:
            job = export_job_get_for_user(user=request.user, job_id=job_id)
        except ExportJob.DoesNotExist:
            raise Http404(_("No such export.")) from None
        if job.status != ExportJob.Status.DONE or not job.file:
            self.message_user(request, _("This export is not ready yet."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:commerce_exportjob_changelist"))
        name = export_filename(
            report_name=job.report, date_from=job.date_from, date_to=job.date_to, fmt=job.format
        )
        return FileResponse(
            job.file.open("rb"), as_attachment=True, filename=name, content_type=CONTENT_TYPES[job.format]
        )

    def reconciliation_view(self, request):
        """The admin check: mismatches between orders and payments in a range (empty when consistent)."""
        if not user_may_export(user=request.user):
            raise PermissionDenied
        today = _today()
        start = report_day_clamp(_parse_day(request.GET.get("from")) or today - timedelta(days=30))
        end = report_day_clamp(_parse_day(request.GET.get("to")) or today)
        scope = report_scope_for_user(user=request.user)
        filters = ReportFilters(date_from=min(start, end), date_to=end, community_ids=scope)
        shown = getattr(settings, "REPORTS_RECONCILIATION_SHOWN", 500)
        rows = []
        with report_snapshot():
            for row in RECONCILIATION.rows(filters):
                rows.append(row)
                if len(rows) >= shown:
                    break
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Reconciliation: orders against payments"),
            "columns": [column.label for column in RECONCILIATION.columns],
            "rows": rows,
            "truncated": len(rows) >= shown,
            "date_from": filters.date_from,
            "date_to": filters.date_to,
            "export_url": reverse("admin:commerce_exportjob_add"),
            # Merchant-wide bill totals: for finance and superusers only (owners see their rows above).
            "bill_runs": _bill_runs(filters) if scope is None else None,
        }
        return TemplateResponse(request, "admin/commerce/exportjob/reconciliation.html", context)


def _bill_runs(filters: ReportFilters) -> list[BillReconciliation]:
    """The trade bill reconciliation runs of the days shown, newest first."""
    runs = BillReconciliation.objects.filter(day__gte=filters.date_from, day__lte=filters.date_to)
    return list(runs.order_by("-day", "merchant")[:200])


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


class _ReadOnly:
    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class BillDifferenceInline(_ReadOnly, admin.TabularInline):
    model = BillDifference
    extra = 0
    fields = [
        "kind",
        "trade",
        "reference",
        "provider_ref",
        "order",
        "community",
        "their_amount",
        "our_amount",
        "their_status",
        "our_status",
        "occurred_at",
    ]
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or finance_reads_all(request)


@admin.register(BillReconciliation)
class BillReconciliationAdmin(_ReadOnly, admin.ModelAdmin):
    """Each trade bill day and merchant, both sides' totals and the differences: finance and superusers."""

    list_display = [
        "day",
        "merchant",
        "status",
        "bill_exists",
        "their_count",
        "their_paid",
        "their_refunded",
        "our_count",
        "our_paid",
        "our_refunded",
        "difference_count",
        "attempts",
        "checked_at",
    ]
    list_filter = ["status", "provider", "day"]
    search_fields = ["merchant", "differences__reference", "differences__provider_ref"]
    date_hierarchy = "day"
    inlines = [BillDifferenceInline]
    readonly_fields = [field.name for field in BillReconciliation._meta.fields]

    actions = ["reconcile_again"]

    def has_module_permission(self, request):
        return request.user.is_superuser or finance_reads_all(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser or finance_reads_all(request)

    def get_actions(self, request):
        """Finance reads; a superuser may download and compare a day again (after fixing our side)."""
        return super().get_actions(request) if request.user.is_superuser else {}

    @admin.action(description=gettext_lazy("Download and compare these bills again"))
    def reconcile_again(self, request, queryset):
        for chosen in queryset.order_by("day", "merchant"):
            run = trade_bill_reconcile(
                day=chosen.day, merchant=chosen.merchant, now=timezone.now(), actor=request.user
            )
            level = messages.WARNING if run.status == BillReconciliation.Status.PENDING else messages.SUCCESS
            self.message_user(request, f"{run}: {run.get_status_display()} {run.last_error}".strip(), level)


@admin.register(BillDifference)
class BillDifferenceAdmin(FinanceReadOnlyMixin, _ReadOnly, CommunityScopedAdminMixin, admin.ModelAdmin):
    """The differences one by one: owners see those of their communities, finance all, read-only."""

    list_display = [
        "run",
        "kind",
        "trade",
        "reference",
        "provider_ref",
        "order",
        "their_amount",
        "our_amount",
        "their_status",
        "our_status",
        "occurred_at",
    ]
    list_filter = ["kind", "trade", "run__day"]
    search_fields = ["reference", "provider_ref", "=order__id"]
    list_select_related = ["run", "order"]
    readonly_fields = [field.name for field in BillDifference._meta.fields]
