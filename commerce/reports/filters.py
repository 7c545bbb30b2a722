"""What a report is asked for: a range of business days (Asia/Shanghai), communities, status and kind."""

from dataclasses import dataclass
from datetime import date, datetime

from commerce.reports.errors import ReportRangeInvalid
from shequn_backend.calendar import days_bounds

# The days a report may cover. Nothing was booked before the first; and the calendar arithmetic
# (local midnight to UTC, the day after the last) overflows near the years 1 and 9999.
FIRST_REPORT_DAY = date(2000, 1, 1)
LAST_REPORT_DAY = date(2099, 12, 31)


def report_range_check(*, date_from: date, date_to: date) -> None:
    """Refuse days outside the reportable range with a message that names it."""
    if not all(FIRST_REPORT_DAY <= day <= LAST_REPORT_DAY for day in (date_from, date_to)):
        raise ReportRangeInvalid(first=FIRST_REPORT_DAY, last=LAST_REPORT_DAY)


def report_day_clamp(day: date) -> date:
    """The nearest reportable day (for pages that take a day from the address bar)."""
    return min(max(day, FIRST_REPORT_DAY), LAST_REPORT_DAY)


@dataclass(frozen=True)
class ReportFilters:
    """``community_ids`` None means every community: only finance, superusers and the shell get that."""

    date_from: date
    date_to: date
    community_ids: frozenset[int] | None = None
    status: str = ""
    kind: str = ""

    def __post_init__(self):
        report_range_check(date_from=self.date_from, date_to=self.date_to)
        if self.date_to < self.date_from:
            raise ValueError("date_to is before date_from")

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        """``[start, end)`` in UTC of the business days asked for."""
        return days_bounds(self.date_from, self.date_to)
