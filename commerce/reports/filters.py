"""What a report is asked for: a range of business days (Asia/Shanghai), communities, status and kind."""

from dataclasses import dataclass
from datetime import date, datetime

from shequn_backend.calendar import days_bounds


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
        """``[start, end)`` in UTC of the business days asked for."""
        return days_bounds(self.date_from, self.date_to)
