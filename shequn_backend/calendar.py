"""The business calendar: the days that health, activity, reminders and reports all count in.

Times are stored in UTC; a business day is ``[00:00, next 00:00)`` on the
wall clock of one zone, ``BUSINESS_TIME_ZONE`` if set, else ``TIME_ZONE``
(Asia/Shanghai). The zone is read when asked, never at import, and never
follows a zone activated for a request: a community's day is the same for
every reader.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def business_zone() -> ZoneInfo:
    return ZoneInfo(getattr(settings, "BUSINESS_TIME_ZONE", None) or settings.TIME_ZONE)


def business_time(moment: datetime) -> datetime:
    """``moment`` (aware) on the business zone's wall clock, clamped to the representable range."""
    zone = business_zone()
    try:
        return moment.astimezone(zone)
    except OverflowError:  # within hours of year 1 or 9999
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=zone)


def business_day(moment: datetime) -> date:
    """The business day ``moment`` (aware) falls on."""
    return business_time(moment).date()


def _day_start(day: date) -> datetime:
    """The UTC instant ``day`` begins, clamped: the zone's year 1 begins before UTC can say."""
    try:
        return datetime.combine(day, time.min, tzinfo=business_zone()).astimezone(UTC)
    except OverflowError:
        return EARLIEST


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the business day ``day``, in UTC."""
    return days_bounds(day, day)


def days_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the business days ``first`` to ``last``, both inclusive."""
    end = LATEST if last == date.max else _day_start(last + timedelta(days=1))
    return _day_start(first), end
