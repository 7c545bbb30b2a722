"""The fast export paths write what the row-by-row writers write: COPY for CSV, XlsxWriter for XLSX."""

import io
from decimal import Decimal

import openpyxl
import pytest
from django.utils import translation

from commerce.reports import services
from commerce.reports.registry import REPORTS
from commerce.reports.services import report_export, report_snapshot
from commerce.reports.writers import write_csv, write_csv_copy
from tests.commerce.reports_world import build_ledger, read_csv
from tests.commerce.test_reports import month

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(stripe):
    return build_ledger(stripe)


def both_csvs(language: str):
    report, filters = REPORTS["order_lines"], month()
    copied, python = io.BytesIO(), io.BytesIO()
    progress: list[int] = []
    with translation.override(language), report_snapshot():
        copy_result = write_csv_copy(
            report=report,
            queryset=report.copy_query(filters),
            stream=copied,
            on_progress=progress.append,
            progress_every=1,
        )
        python_result = write_csv(report=report, rows=report.rows(filters), stream=python)
    return copied.getvalue(), copy_result, python.getvalue(), python_result, progress


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_copy_csv_holds_the_same_cells_rows_and_totals_as_the_python_writer(ledger, language):
    copied, copy_result, python, python_result, progress = both_csvs(language)

    assert copy_result == python_result and copy_result.rows >= 3
    assert read_csv(copied) == read_csv(python)  # header, every cell as text, the totals rows
    assert progress and progress[-1] == copy_result.rows
    assert copy_result.totals["CNY"]["line_total"] > Decimal("0")


def test_the_order_lines_csv_export_goes_through_copy(ledger, monkeypatch):
    def row_by_row(**kwargs):
        raise AssertionError("order lines must not be written row by row on PostgreSQL")

    monkeypatch.setattr(services, "write_csv", row_by_row)
    stream = io.BytesIO()
    result = services.report_export(
        report_name="order_lines", filters=month(), fmt="csv", stream=stream, language="en"
    )
    header, rows, totals = read_csv(stream.getvalue())
    assert header[0] and len(rows) == result.rows and totals[0][0] == "Total (paid orders only)"


def test_the_xlsx_cells_match_the_csv_cells_typed(ledger):
    csv_stream, xlsx_stream = io.BytesIO(), io.BytesIO()
    for fmt, stream in (("csv", csv_stream), ("xlsx", xlsx_stream)):
        report_export(report_name="order_lines", filters=month(), fmt=fmt, stream=stream, language="en")
    header, rows, totals = read_csv(csv_stream.getvalue())
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_stream.getvalue())).worksheets[0]
    cells = list(sheet.iter_rows(values_only=True))

    assert list(cells[0]) == header and len(cells) == 1 + len(rows) + len(totals)
    money = [i for i, name in enumerate(header) if name in {"List price", "Unit price", "Line total"}]
    for csv_row, xlsx_row in zip(rows, cells[1:], strict=False):
        assert str(xlsx_row[0]) == csv_row[0]
        for i in money:
            assert Decimal(str(xlsx_row[i])).quantize(Decimal("0.01")) == Decimal(csv_row[i])
    assert sheet.freeze_panes == "A2"
