"""Write a report's rows as CSV (UTF-8 with BOM) or XLSX (XlsxWriter, constant memory), with a totals row.

Both writers consume the same row iterator and the same ``Totals``, so the
two formats of one export hold the same rows and the same sums. Neither
keeps rows in memory: CSV writes through, XlsxWriter's ``constant_memory``
mode writes each row out as it comes. A report with a ``copy_query`` on
PostgreSQL writes its CSV with ``COPY ... TO STDOUT`` (``write_csv_copy``)
and its totals with one aggregate over the same query, in the same snapshot.
"""

import codecs
import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import BinaryIO

import xlsxwriter
from django.db import connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.reports.columns import CellType, Report
from shequn_backend.calendar import business_time

CENT = Decimal("0.01")
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
        columns = self.report.columns
        zeros = [Decimal("0.00") if columns[i].type == CellType.MONEY else 0 for i in self.indexes]
        by_currency = self.by_currency or {"CNY": zeros}
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
            if isinstance(value, datetime) and value.tzinfo is not None:
                row = list(row)
                row[i] = business_time(value).replace(tzinfo=None, microsecond=0)
        yield row


def _fen(rows: Iterable[tuple], money: list[int]) -> Iterable[tuple]:
    """Money as yuan with two decimals: a difference computed by SQLite arrives as ``Decimal("199")``."""
    for row in rows:
        if any(isinstance(row[i], Decimal) and row[i].as_tuple().exponent != -2 for i in money):
            row = [
                row[i].quantize(CENT) if i in money and isinstance(row[i], Decimal) else value
                for i, value in enumerate(row)
            ]
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
    money = [i for i, column in enumerate(report.columns) if column.type == CellType.MONEY]
    totals = Totals(report)
    try:
        counted = _counted(rows, totals, on_progress, progress_every)
        writer.writerows(_fen(_local_times(counted, times), money))
        writer.writerows(_fen(totals.total_rows(), money))
    finally:
        text.flush()
        text.detach()
    return ExportResult(rows=totals.rows, totals=totals.as_dict())


def _csv_line(row) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue().encode("utf-8")


def _copy_totals(report: Report, queryset: QuerySet, totals: Totals) -> None:
    """Fill ``totals`` with one aggregate over the export's own query (same snapshot, same rule)."""
    sql, params = queryset.order_by().query.sql_with_params()
    names = [f"c{i}" for i in range(len(report.columns))]
    where, rule_params = "", []
    if totals.rule_index is not None:
        key = names[totals.rule_index]
        if totals.rule_values is None:
            where = f"WHERE {key} IS NOT NULL AND {key}::text <> ''"
        else:
            where, rule_params = f"WHERE {key}::text = ANY(%s)", [sorted(totals.rule_values)]
    sums = ", ".join(f"SUM({names[i]})" for i in totals.indexes)
    currency = names[totals.currency_index]
    columns = ", ".join(names)
    # Every name here is generated (c0, c1, ...); values travel as parameters.
    aggregate = f"SELECT {currency}, {sums} FROM ({sql}) AS r({columns}) {where} GROUP BY {currency}"  # noqa: S608
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(aggregate, [*params, *rule_params])
        for currency_value, *values in cursor.fetchall():
            totals.by_currency[currency_value] = [
                (value if value is not None else 0)
                if report.columns[i].type != CellType.MONEY
                else (value if value is not None else Decimal("0.00"))
                for i, value in zip(totals.indexes, values, strict=True)
            ]


def write_csv_copy(
    *,
    report: Report,
    queryset: QuerySet,
    stream: BinaryIO,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 10_000,
) -> ExportResult:
    """The CSV straight from PostgreSQL: ``COPY (<the report query>) TO STDOUT`` streamed to ``stream``.

    No Python per row: the query already computes labels and local times as text the same as
    ``write_csv`` writes them. Call inside ``report_snapshot`` so the rows and totals agree.
    """
    stream.write(codecs.BOM_UTF8)
    stream.write(_csv_line([str(column.label) for column in report.columns]))
    sql, params = queryset.query.sql_with_params()
    connection = connections[queryset.db]
    lines, reported = 0, 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
            for chunk in copy:
                stream.write(chunk)
                if on_progress is not None:
                    lines += bytes(chunk).count(b"\n")
                    if lines - reported >= progress_every:
                        reported = lines
                        on_progress(lines)
        rows = raw.rowcount
    totals = Totals(report)
    totals.rows = rows
    _copy_totals(report, queryset, totals)
    for row in totals.total_rows():
        stream.write(_csv_line(row))
    return ExportResult(rows=totals.rows, totals=totals.as_dict())


def _sheet_title(title: str, number: int) -> str:
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)
    return clean[:31] if number == 1 else f"{clean[:25]} ({number})"


class _XlsxSheets:
    """Constant-memory sheets: header, frozen top row, widths, typed cells; a new sheet past the row limit."""

    def __init__(self, workbook, report: Report, max_rows: int):
        self.workbook, self.report, self.max_rows = workbook, report, max_rows
        self.number, self.used = 0, 0
        self.header_format = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        self.formats, self.bold_formats = [], []
        for column in report.columns:
            number_format = NUMBER_FORMATS.get(column.type)
            self.formats.append(workbook.add_format({"num_format": number_format}) if number_format else None)
            bold = {"bold": True, "num_format": number_format} if number_format else {"bold": True}
            self.bold_formats.append(workbook.add_format(bold))
        self.times = [i for i, c in enumerate(report.columns) if c.type == CellType.DATETIME]
        self._open()

    def _open(self) -> None:
        self.number += 1
        sheet = self.workbook.add_worksheet(_sheet_title(str(self.report.title), self.number))
        sheet.freeze_panes(1, 0)
        for index, column in enumerate(self.report.columns):
            sheet.set_column(index, index, column.width + 2)
        for index, column in enumerate(self.report.columns):
            sheet.write_string(0, index, str(column.label), self.header_format)
        self.sheet, self.used = sheet, 1
        # One writer per column, chosen once: the per-cell work is one call with its format. The
        # undecorated writers of XlsxWriter (pinned): the public ones parse "A1" notation per call.
        self.writers = []
        for column in self.report.columns:
            if column.type in (CellType.MONEY, CellType.INTEGER, CellType.PERCENT):
                self.writers.append(sheet._write_number)
            elif column.type in (CellType.DATETIME, CellType.DATE):
                self.writers.append(sheet._write_datetime)
            else:
                self.writers.append(sheet._write)
        self.write_string = sheet._write_string

    def append(self, row, *, bold: bool = False) -> None:
        if self.used >= self.max_rows:
            self._open()
        number, formats = self.used, self.bold_formats if bold else self.formats
        for i in self.times:
            value = row[i]
            if isinstance(value, datetime) and value.tzinfo is not None:
                row = list(row)
                row[i] = business_time(value).replace(tzinfo=None, microsecond=0)
        writers, write_string = self.writers, self.write_string
        for i, value in enumerate(row):
            if value is not None and value != "":
                if isinstance(value, str):
                    write_string(number, i, value, formats[i])
                else:
                    writers[i](number, i, value, formats[i])
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

    XlsxWriter in ``constant_memory`` mode: each row is written out as it
    comes, so memory stays flat at any length. Text is never read as a
    formula or a link. A last sheet states the filters and the report's notes.
    """
    workbook = xlsxwriter.Workbook(
        stream,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
        },
    )
    sheets = _XlsxSheets(workbook, report, max_rows)
    totals = Totals(report)
    for row in _counted(rows, totals, on_progress, progress_every):
        sheets.append(row)
    total_rows = totals.total_rows()
    if sheets.used + len(total_rows) > max_rows:
        sheets._open()
    for row in total_rows:
        sheets.append(row, bold=True)
    about = workbook.add_worksheet(_("About")[:31])
    about.set_column(0, 0, 24)
    about.set_column(1, 1, 80)
    lines = [(str(report.title), "")]
    lines += list(filters_summary)
    lines.append((_("Generated at"), business_time(timezone.now()).isoformat(" ", "seconds")))
    lines += [(_("Note"), str(note)) for note in report.notes]
    for number, (label, value) in enumerate(lines):
        about.write_string(number, 0, str(label))
        about.write_string(number, 1, str(value))
    workbook.close()
    return ExportResult(rows=totals.rows, totals=totals.as_dict())


__all__ = ["ExportResult", "Totals", "write_csv", "write_csv_copy", "write_xlsx"]
