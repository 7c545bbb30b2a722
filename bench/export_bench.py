"""Export ~1,000,000 order lines as CSV and XLSX; time and peak memory beside ``COPY (same query) TO STDOUT``.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale DEBUG=1 \\
        .venv/bin/python manage.py seed_demo --scale --members 100000 --orders 1000000 --seed 1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/shequn_scale \\
        .venv/bin/python bench/export_bench.py [--lines 1000000] [--modes copy csv xlsxwriter xlsx] [--runs 3]

The date range is the widest run of Asia/Shanghai days, starting at the first
paid order, that holds at most ``--lines`` order lines. Each mode runs in a
fresh child process, so its peak memory is its own (``VmHWM``, Django loaded
included: see ``bench/peak.py``). Floors, like for like:

* ``copy``: ``COPY (<the SQL the export's queryset compiles to>) TO STDOUT``
  as CSV into a file, by psycopg: the floor of ``csv``;
* ``xlsxwriter``: the same rows from a psycopg server-side cursor written by
  XlsxWriter in ``constant_memory`` mode with ``write_row`` and one date
  format: the floor of ``xlsx``.

Ratios are per run (each run's modes back to back), then the median.
Read-only: safe on data shared with other benchmarks, and repeatable.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shequn_backend.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shequn_scale")
os.environ["LOG_LEVEL"] = "WARNING"
OUT = Path(os.environ.get("EXPORT_BENCH_DIR", "/tmp/export_bench"))  # noqa: S108 - scratch output


def setup():
    import django

    django.setup()


def pick_range(lines: int) -> tuple[date, date, int]:
    """First paid day onwards, as many whole Shanghai days as fit in ``lines``."""
    from django.db import connection

    sql = """
        SELECT d, SUM(n) OVER (ORDER BY d) FROM (
            SELECT (COALESCE(o.paid_at, o.created_at) AT TIME ZONE 'Asia/Shanghai')::date AS d, COUNT(*) AS n
            FROM commerce_orderline l JOIN commerce_order o ON o.id = l.order_id GROUP BY 1) per_day
        ORDER BY d"""
    with connection.cursor() as cursor:
        cursor.execute(sql)
        days = cursor.fetchall()
    first, last, total = days[0][0], days[0][0], 0
    for day, cumulative in days:
        if cumulative > lines:
            break
        last, total = day, int(cumulative)
    return first, last, total


def xlsxwriter_floor(filters, stream) -> int:
    """The same rows, fetched raw, written by XlsxWriter (constant_memory) with ``write_row``."""
    import xlsxwriter
    from django.db import connection, transaction

    from commerce.reports.queries import order_lines_values

    sql, params = order_lines_values(filters=filters).query.sql_with_params()
    workbook = xlsxwriter.Workbook(
        stream, {"constant_memory": True, "default_date_format": "yyyy-mm-dd hh:mm:ss"}
    )
    sheet = workbook.add_worksheet()
    rows = 0
    with transaction.atomic():
        with connection.cursor() as setup:
            setup.execute("SET LOCAL cursor_tuple_fraction = 1.0")  # plan for all rows
        with connection.connection.cursor(name="floor") as cursor:
            cursor.itersize = 10_000
            cursor.execute(sql, params)
            for rows, row in enumerate(cursor, start=1):
                sheet.write_row(rows, 0, row)
    workbook.close()
    return rows


def child(mode: str, date_from: str, date_to: str) -> dict:
    setup()
    from django.db import connection

    from bench.peak import peak_rss_mib
    from commerce.reports.filters import ReportFilters
    from commerce.reports.queries import order_lines_values
    from commerce.reports.services import report_export

    filters = ReportFilters(date_from=date.fromisoformat(date_from), date_to=date.fromisoformat(date_to))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"order_lines.{ {'copy': 'copy.csv', 'xlsxwriter': 'floor.xlsx'}.get(mode, mode) }"
    started = time.perf_counter()
    rows = 0
    with open(path, "wb") as stream:
        if mode == "xlsxwriter":
            rows = xlsxwriter_floor(filters, stream)
        elif mode == "copy":
            sql, params = order_lines_values(filters=filters).query.sql_with_params()
            with connection.cursor() as cursor:
                raw = cursor.cursor
                with raw.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params) as copy:
                    for block in copy:
                        stream.write(block)
            rows = -1
        else:
            rows = report_export(report_name="order_lines", filters=filters, fmt=mode, stream=stream).rows
    seconds = time.perf_counter() - started
    peak_mb = peak_rss_mib()
    return {
        "mode": mode,
        "seconds": round(seconds, 2),
        "peak_mb": round(peak_mb, 1),
        "rows": rows,
        "bytes": path.stat().st_size,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["copy", "csv", "xlsxwriter", "xlsx"],
        choices=["copy", "csv", "xlsxwriter", "xlsx"],
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FROM", "TO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    setup()
    date_from, date_to, lines = pick_range(args.lines)
    print(f"order lines {lines:,} paid/placed {date_from} .. {date_to} (Asia/Shanghai)")
    runs: list[dict] = []
    for run in range(args.runs):
        results = {}
        for mode in args.modes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, date_from.isoformat(), date_to.isoformat()],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[mode] = result
            print(
                f"run {run + 1} {mode:10} {result['seconds']:8.2f} s  peak {result['peak_mb']:7.1f} MiB  "
                f"rows {result['rows']:>9}  {result['bytes'] / 1e6:8.1f} MB written"
            )
        runs.append(results)
    for mode, floor in (("csv", "copy"), ("xlsx", "xlsxwriter")):
        ratios = [r[mode]["seconds"] / r[floor]["seconds"] for r in runs if mode in r and floor in r]
        if ratios:
            listed = " / ".join(f"{ratio:.2f}" for ratio in ratios)
            print(f"ratio {mode}/{floor}: {listed}, median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
