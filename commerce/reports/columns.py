"""Columns of a report: a label in the reader's language, a cell type, a width, and whether it is totalled."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from django.db.models import QuerySet
from django.utils.functional import Promise

from commerce.reports.filters import ReportFilters


class CellType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"
    PERCENT = "percent"
    DATETIME = "datetime"
    DATE = "date"


@dataclass(frozen=True)
class Column:
    key: str
    label: Promise
    type: CellType = CellType.TEXT
    width: int = 12
    total: bool = False


@dataclass(frozen=True)
class TotalRule:
    """Which rows the totals row adds: those whose ``key`` column is filled (or, given ``values``, in them).

    ``values`` returns the accepted cells (labels in the active language), asked once per export.
    ``label`` heads the totals row, saying what it includes, e.g. "Total (paid orders only)".
    """

    key: str
    label: Promise
    values: Callable[[], set] | None = None


@dataclass(frozen=True)
class Report:
    """A report: its columns and two functions over the same filtered query.

    ``rows`` yields tuples in column order (money as ``Decimal``, times as
    aware datetimes) from a server-side cursor; ``count`` is its row count,
    for progress. ``statuses`` / ``kinds`` are the filter choices it accepts.
    """

    name: str
    title: Promise
    columns: tuple[Column, ...]
    rows: Callable[[ReportFilters], Iterator[tuple]]
    count: Callable[[ReportFilters], int]
    statuses: tuple[tuple[str, Promise], ...] = ()
    kinds: tuple[tuple[str, Promise], ...] = ()
    notes: tuple[Promise, ...] = field(default=())
    total_rule: TotalRule | None = None
    # The rows as one values queryset whose cells are exactly the CSV's (labels, local times): the CSV
    # then streams from PostgreSQL's COPY with no Python per row. None: rows go through ``rows``.
    copy_query: Callable[[ReportFilters], QuerySet] | None = None

    @property
    def currency_index(self) -> int:
        return [column.key for column in self.columns].index("currency")
