"""Write a report's rows as CSV (UTF-8 with BOM) or XLSX (openpyxl write-only), with the same totals row.

Both writers consume the same row iterator and the same ``Totals``, so the
two formats of one export hold the same rows and the same sums. Neither
keeps rows in memory: CSV writes through, the XLSX worksheet streams to a
temporary file inside openpyxl's write-only mode.
"""

import codecs
import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from commerce.reports.columns import CellType, Report
from shequn_backend.calendar import business_time

XLSX_MAX_ROWS = 1_048_576  # Excel's limit per sheet; longer exports continue on another sheet
NUMBER_FORMATS = {
    CellType.MONEY: "#,##0.00",
    CellType.INTEGER: "0",
    CellType.PERCENT: "0.00",
    CellType.DATETIME: "yyyy-mm-dd hh:mm:ss",
    CellType.DATE: "yyyy-mm-dd",
}
ProgressCallback = Callable[[int], None]


@dataclass
class Totals:
    """Sums of the totalled columns per currency, gathered as rows stream past."""

    report: Report
    by_currency: dict[str, list] = field(default_factory=dict)
    rows: int = 0

    def __post_init__(self):
        self.indexes = [i for i, column in enumerate(self.report.columns) if column.total]
        self.currency_index = self.report.currency_index
        rule = self.report.total_rule
        keys = [column.key for column in self.report.columns]
        self.rule_index = keys.index(rule.key) if rule is not None else None
        self.rule_values = rule.values() if rule is not None and rule.values is not None else None

    def counts(self, row) -> bool:
        """Whether the totals row adds this row (the report's rule: e.g. paid orders only)."""
        if self.rule_index is None:
            return True
        value = row[self.rule_index]
        if self.rule_values is None:
            return value is not None and value != ""
        return value in self.rule_values

    def add(self, row: tuple) -> None:
        self.rows += 1
        if not self.counts(row):
            return
        sums = self.by_currency.get(row[self.currency_index])
        if sums is None:
            sums = self.by_currency[row[self.currency_index]] = [
                Decimal("0.00") if self.report.columns[i].type == CellType.MONEY else 0 for i in self.indexes
            ]
        for position, index in enumerate(self.indexes):
            value = row[index]
            if value is not None:
                sums[position] += value

    def as_dict(self) -> dict[str, dict[str, Decimal | int]]:
        keys = [self.report.columns[i].key for i in self.indexes]
        return {currency: dict(zip(keys, sums, strict=True)) for currency, sums in self.by_currency.items()}

    def total_rows(self) -> list[list]:
        """One totals row per currency (an empty report still gets a row of zeros)."""
        by_currency = self.by_currency or {"CNY": [0 for _ in self.indexes]}
        rows = []
        for currency in sorted(by_currency):
            row: list = [None] * len(self.report.columns)
            rule = self.report.total_rule
            row[0] = str(rule.label) if rule is not None else _("Total")
            row[self.currency_index] = currency
            for position, index in enumerate(self.indexes):
                row[index] = by_currency[currency][position]
            rows.append(row)
        return rows


@dataclass(frozen=True)
class ExportResult:
    rows: int
    totals: dict[str, dict[str, Decimal | int]]


def _counted(rows: Iterable[tuple], totals: Totals, on_progress: ProgressCallback | None, every: int):
    """Pass rows through, adding them to ``totals`` (inlined: this loop runs once per exported row)."""
    by_currency, report, currency_index = totals.by_currency, totals.report, totals.currency_index
    pairs = list(enumerate(totals.indexes))
    count = totals.rows
    ruled = totals.rule_index is not None
    for row in rows:
        count += 1
        if not ruled or totals.counts(row):
            sums = by_currency.get(row[currency_index])
            if sums is None:
                sums = by_currency[row[currency_index]] = [
                    Decimal("0.00") if report.columns[i].type == CellType.MONEY else 0 for i in totals.indexes
                ]
            for position, index in pairs:
                value = row[index]
                if value is not None:
                    sums[position] += value
        if on_progress is not None and count % every == 0:
            totals.rows = count
            on_progress(count)
        yield row
    totals.rows = count


def _local_times(rows: Iterable[tuple], times: list[int]) -> Iterable[tuple]:
    """Aware datetimes (databases other than PostgreSQL) to local wall-clock time; naive ones already are."""
    if not times:
        yield from rows
        return
    for row in rows:
        for i in times:
            value = row[i]
            if value is not None and value.tzinfo is not None:
                row = list(row)
                row[i] = business_time(value).replace(tzinfo=None, microsecond=0)
        yield row


def write_csv(
    *,
    report: Report,
    rows: Iterable[tuple],
    stream: BinaryIO,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 10_000,
) -> ExportResult:
    """CSV with a BOM (Excel and WPS then read UTF-8 Chinese correctly); times as local text."""
    stream.write(codecs.BOM_UTF8)
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=False)
    writer = csv.writer(text)
    writer.writerow([str(column.label) for column in report.columns])
    times = [i for i, column in enumerate(report.columns) if column.type == CellType.DATETIME]
    totals = Totals(report)
    try:
        writer.writerows(_local_times(_counted(rows, totals, on_progress, progress_every), times))
        writer.writerows(totals.total_rows())
    finally:
        text.flush()
        text.detach()
    return ExportResult(rows=totals.rows, totals=totals.as_dict())


def _sheet_title(title: str, number: int) -> str:
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return clean[:31] if number == 1 else f"{clean[:25]} ({number})"


class _XlsxSheets:
    """Write-only sheets: header, frozen top row, widths, typed cells; a new sheet past the row limit."""

    def __init__(self, workbook: Workbook, report: Report, max_rows: int):
        self.workbook, self.report, self.max_rows = workbook, report, max_rows
        self.number, self.used = 0, 0
        self.times = {i for i, c in enumerate(report.columns) if c.type == CellType.DATETIME}
        self._open()

    def _open(self) -> None:
        self.number += 1
        sheet = self.workbook.create_sheet(_sheet_title(str(self.report.title), self.number))
        sheet.freeze_panes = "A2"
        for index, column in enumerate(self.report.columns, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = column.width + 2
        bold = Font(bold=True)
        header = []
        for column in self.report.columns:
            cell = WriteOnlyCell(sheet, value=str(column.label))
            cell.font, cell.alignment = bold, Alignment(wrap_text=True, vertical="top")
            header.append(cell)
        sheet.append(header)
        # One styled cell per column, its value replaced row by row: openpyxl writes it out on append.
        self.cells = []
        for column in self.report.columns:
            cell = WriteOnlyCell(sheet)
            if column.type in NUMBER_FORMATS:
                cell.number_format = NUMBER_FORMATS[column.type]
            self.cells.append(cell)
        self.sheet, self.used = sheet, 1

    def append(self, row, *, bold: bool = False) -> None:
        if self.used >= self.max_rows:
            self._open()
        cells = self.cells
        for i, value in enumerate(row):
            if i in self.times and isinstance(value, datetime) and value.tzinfo is not None:
                value = business_time(value).replace(tzinfo=None, microsecond=0)
            cells[i].value = value
            if bold:
                cells[i].font = Font(bold=True)
        self.sheet.append(cells)
        if bold:
            for cell in cells:
                cell.font = Font()
        self.used += 1


def write_xlsx(
    *,
    report: Report,
    rows: Iterable[tuple],
    stream: BinaryIO,
    filters_summary: list[tuple[str, str]] = (),
    on_progress: ProgressCallback | None = None,
    progress_every: int = 10_000,
    max_rows: int = XLSX_MAX_ROWS,
) -> ExportResult:
    """XLSX: numbers as numbers, times as Asia/Shanghai datetimes (naive, as Excel has no zones).

    A second sheet states the filters and the report's notes.
    """
    workbook = Workbook(write_only=True)
    sheets = _XlsxSheets(workbook, report, max_rows)
    totals = Totals(report)
    for row in _counted(rows, totals, on_progress, progress_every):
        sheets.append(row)
    total_rows = totals.total_rows()
    if sheets.used + len(total_rows) > max_rows:
        sheets._open()
    for row in total_rows:
        sheets.append(row, bold=True)
    about = workbook.create_sheet(_("About")[:31])
    about.column_dimensions["A"].width = 24
    about.column_dimensions["B"].width = 80
    about.append([str(report.title), ""])
    for label, value in filters_summary:
        about.append([label, value])
    about.append([_("Generated at"), business_time(timezone.now()).isoformat(" ", "seconds")])
    for note in report.notes:
        about.append([_("Note"), str(note)])
    workbook.save(stream)
    return ExportResult(rows=totals.rows, totals=totals.as_dict())


__all__ = ["ExportResult", "Totals", "write_csv", "write_xlsx"]
