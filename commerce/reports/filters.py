"""What a report is asked for: a range of Asia/Shanghai calendar days, communities, status and kind."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

REPORT_TIME_ZONE = "Asia/Shanghai"


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
        if self.date_to < self.date_from:
            raise ValueError("date_to is before date_from")

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return day_bounds_utc(date_from=self.date_from, date_to=self.date_to)
