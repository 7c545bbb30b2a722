"""Errors of the finance reports."""

from django.utils.translation import gettext_lazy as _

from shequn_backend.errors import ApplicationError, NotFound, PermissionDenied


class UnknownReport(NotFound):
    code = "unknown_report"
    message = _("No such report. Choose one of the listed reports.")


class ReportNotAllowed(PermissionDenied):
    code = "report_not_allowed"
    message = _("You may export only the communities you own or operate.")


class ExportNotReady(ApplicationError):
    code = "export_not_ready"
    message = _("This export is not ready yet. Wait until its progress reaches 100%.")
    http_status = 409


class ReportRangeInvalid(ApplicationError):
    code = "report_range_invalid"
    http_status = 400

    def __init__(self, *, first, last):
        super().__init__(
            _("Reports cover the days from %(first)s to %(last)s. Choose dates in that range.")
            % {"first": first.isoformat(), "last": last.isoformat()}
        )
