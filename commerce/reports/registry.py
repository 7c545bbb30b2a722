"""Every report by its contract name (``export_report REPORT``)."""

from commerce.reports.columns import Report
from commerce.reports.errors import UnknownReport
from commerce.reports.queries import REPORT_DEFINITIONS
from commerce.reports.reconciliation import RECONCILIATION
from commerce.reports.settlement import SETTLEMENT

REPORTS: dict[str, Report] = {
    **REPORT_DEFINITIONS,
    "settlement": SETTLEMENT,
    "reconciliation": RECONCILIATION,
}


def report_get(*, name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        raise UnknownReport() from None
