"""What a report is asked for: a range of Asia/Shanghai calendar days, communities, status and kind."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from commerce.reports.errors import ReportRangeInvalid

REPORT_TIME_ZONE = "Asia/Shanghai"
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


def report_zone() -> ZoneInfo:
    """Reports speak the business's calendar (Asia/Shanghai unless TIME_ZONE says otherwise)."""
    return ZoneInfo(getattr(settings, "REPORTS_TIME_ZONE", REPORT_TIME_ZONE))


def day_bounds_utc(*, date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the local calendar days ``date_from`` to ``date_to`` inclusive."""
    zone = report_zone()
    start = datetime.combine(date_from, time.min, tzinfo=zone)
    end = datetime.combine(date_to + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


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
        return day_bounds_utc(date_from=self.date_from, date_to=self.date_to)
