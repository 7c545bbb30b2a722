"""Finance reports: every total agrees with the ledger, CSV and XLSX agree with each other."""

import io
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone, translation

from commerce.models import Commission, CommissionEntry, Order, Payment, Refund
from commerce.reports.errors import ReportRangeInvalid
from commerce.reports.filters import ReportFilters
from commerce.reports.registry import REPORTS
from commerce.reports.roles import finance_user_grant
from commerce.reports.services import report_export
from commerce.reports.settlement import settlement_figures
from commerce.reports.writers import write_xlsx
from tests.commerce.reports_world import build_ledger, column, read_csv
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = Decimal


@pytest.fixture
def ledger(stripe):
    return build_ledger(stripe)


def today() -> date:
    return timezone.localtime(timezone.now(), SHANGHAI).date()


def month(**kwargs) -> ReportFilters:
    return ReportFilters(date_from=today() - timedelta(days=30), date_to=today(), **kwargs)


def export(report: str, filters: ReportFilters | None = None, fmt: str = "csv", language: str = "en"):
    stream = io.BytesIO()
    result = report_export(
        report_name=report, filters=filters or month(), fmt=fmt, stream=stream, language=language
    )
    return stream.getvalue(), result


def money(values) -> Decimal:
    return sum((D(value) for value in values if value), D("0.00"))


def succeeded_payments(**filters) -> Decimal:
    return Payment.objects.filter(status="succeeded", **filters).aggregate(s=Sum("amount_received"))["s"]


def succeeded_refunds(**filters) -> Decimal:
    return Refund.objects.filter(status="succeeded", **filters).aggregate(s=Sum("amount"))["s"]


def test_order_lines_add_up_to_order_totals_and_net_is_paid_minus_refunded(ledger):
    header, rows, [totals] = read_csv(export("orders")[0])
    line_header, lines, [line_totals] = read_csv(export("order_lines")[0])

    assert money(column(line_header, lines, "Line total")) == money(column(header, rows, "Order total"))
    assert totals[header.index("Order total")] == line_totals[line_header.index("Line total")]
    assert D(totals[header.index("Amount paid")]) == succeeded_payments()
    assert D(totals[header.index("Amount refunded")]) == succeeded_refunds() == D("20.00")
    assert D(totals[header.index("Net")]) == succeeded_payments() - succeeded_refunds()
    assert len(rows) == Order.objects.count() and totals[header.index("Currency")] == "CNY"


def test_payments_and_refunds_reports_total_the_succeeded_money(ledger):
    header, rows, [totals] = read_csv(export("payments", month(status="succeeded"))[0])
    r_header, refunds, [r_totals] = read_csv(export("refunds", month(status="succeeded"))[0])

    assert D(totals[header.index("Amount received")]) == succeeded_payments()
    assert len(rows) == Payment.objects.filter(status="succeeded").count()
    assert D(r_totals[r_header.index("Amount")]) == D("20.00") and len(refunds) == 1
    assert set(column(header, rows, "Stripe fee (not recorded)")) == {""}


def test_settlement_splits_each_community_and_agrees_with_payments_refunds_and_ledger(ledger):
    figures = settlement_figures(filters=month())
    a, b = figures[(ledger["a"].pk, "CNY")], figures[(ledger["b"].pk, "CNY")]

    assert a["gross"] == succeeded_payments(order__community=ledger["a"])
    assert a["refunds"] == D("20.00")
    assert a["entry_in_window"] == D("199.00") and a["entry_drawable"] == D("199.00")
    payable = CommissionEntry.objects.filter(beneficiary__community=ledger["a"]).aggregate(s=Sum("amount"))[
        "s"
    ]
    assert a["commissions_payable"] == payable > 0
    assert b["gross"] == D("99.00") and b["refunds"] == 0 and b["commissions_payable"] == 0

    header, rows, [totals] = read_csv(export("settlement")[0])
    assert column(header, rows, "Community slug") == ["jia", "yi"]
    assert D(totals[header.index("Net")]) == succeeded_payments() - succeeded_refunds()
    assert set(column(header, rows, "Stripe fees (not recorded)")) == {""}


def test_entry_fees_are_split_by_whether_their_refund_window_is_still_open(ledger):
    header, rows, [totals] = read_csv(export("entry_fees")[0])

    by_order = {int(row[0]): row for row in rows}
    fresh, old = by_order[ledger["entry_new"].pk], by_order[ledger["entry_old"].pk]
    assert fresh[header.index("Net still inside refund window")] == "199.00"
    assert fresh[header.index("Net past refund window (drawable)")] == "0.00"
    assert old[header.index("Net past refund window (drawable)")] == "199.00"
    assert totals[header.index("Net")] == "398.00"


def test_commissions_report_totals_each_status_like_the_commission_rows(ledger):
    for status in ("pending", "settled", "reversed"):
        header, rows, [totals] = read_csv(export("commissions", month(status=status))[0])
        expected = Commission.objects.filter(status=status).aggregate(s=Sum("amount"))["s"] or D("0.00")

        assert D(totals[header.index("Commission")]) == expected
        assert len(rows) == Commission.objects.filter(status=status).count()
    assert Commission.objects.filter(status="settled").exists()


def test_csv_and_xlsx_hold_the_same_rows_and_totals(ledger):
    for report in REPORTS:
        _csv, csv_result = export(report)
        xlsx_bytes, xlsx_result = export(report, fmt="xlsx")

        assert csv_result == xlsx_result, report
        sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes)).worksheets[0]
        assert sheet.max_row == 1 + csv_result.rows + max(1, len(csv_result.totals)), report


def test_xlsx_cells_are_typed_numbers_and_shanghai_datetimes_with_a_frozen_header(ledger):
    xlsx_bytes, result = export("orders", fmt="xlsx")

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes)).worksheets[0]
    header = [cell.value for cell in sheet[1]]
    assert sheet.freeze_panes == "A2" and sheet.column_dimensions["B"].width > 10
    rows = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    order = Order.objects.get(pk=ledger["two_lines"].pk)
    row = rows[order.pk]
    assert isinstance(row[header.index("Order total")], float | int)
    assert row[header.index("Order total")] == pytest.approx(float(order.total))
    paid_at = row[header.index("Paid at")]
    assert isinstance(paid_at, datetime) and paid_at.tzinfo is None
    assert paid_at == timezone.localtime(order.paid_at, SHANGHAI).replace(tzinfo=None, microsecond=0)
    totals = rows["Total (paid orders only)"]
    assert D(str(totals[header.index("Net")])) == result.totals["CNY"]["net"]
    assert sheet.cell(row=2, column=header.index("Order total") + 1).number_format == "#,##0.00"


def test_xlsx_past_the_row_limit_continues_on_another_sheet_with_the_header():
    report = REPORTS["orders"]
    base = datetime(2026, 1, 1, tzinfo=SHANGHAI)
    rows = [
        (
            i,
            "甲",
            "jia",
            "u",
            "商品",
            "已付款",
            "CNY",
            D("1.00"),
            D("0.00"),
            D("1.00"),
            D("1.00"),
            D("0.00"),
            D("1.00"),
            base,
            base,
            "",
        )
        for i in range(5)
    ]
    stream = io.BytesIO()

    with translation.override("en"):
        result = write_xlsx(report=report, rows=rows, stream=stream, max_rows=4)

    sheets = openpyxl.load_workbook(io.BytesIO(stream.getvalue())).worksheets
    data = [row for sheet in sheets[:-1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert len(sheets) == 3 and result.rows == 5  # two data sheets (header repeated), then "About"
    assert [c.value for c in sheets[1][1]] == [c.value for c in sheets[0][1]]
    assert [row[0] for row in data] == [0, 1, 2, 3, 4, "Total (paid orders only)"]


def test_csv_starts_with_a_bom_and_every_header_has_a_chinese_translation(ledger):
    for name, report in REPORTS.items():
        data, _result = export(name, language="zh-hans")
        header = data.decode("utf-8-sig").splitlines()[0]

        assert data.startswith(b"\xef\xbb\xbf")
        with translation.override("zh-hans"):
            assert header.split(",") == [str(c.label) for c in report.columns]
        with translation.override("en"):
            english = [str(c.label) for c in report.columns]
        pairs = zip(english, header.split(","), strict=True)
        untranslated = [en for en, zh in pairs if en == zh and en.isascii()]
        assert not untranslated, (name, untranslated)  # the compiled catalogue has every header


def test_headers_are_in_english_when_asked(ledger):
    data, _result = export("orders", language="en")

    assert data.decode("utf-8-sig").splitlines()[0].startswith("Order no.,Community,Community slug,Buyer")


def shanghai(day: date, hour: int, minute: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def test_the_range_is_shanghai_calendar_days_from_and_to_inclusive(ledger):
    last = date(2026, 3, 31)
    inside_late = ledger["two_lines"]
    outside_next = ledger["refunded"]
    inside_early = ledger["b_order"]
    Order.objects.filter(pk=inside_late.pk).update(paid_at=shanghai(last, 23, 30))
    Order.objects.filter(pk=outside_next.pk).update(paid_at=shanghai(last + timedelta(days=1), 0, 10))
    Order.objects.filter(pk=inside_early.pk).update(paid_at=shanghai(date(2026, 3, 1), 0, 0))
    filters = ReportFilters(date_from=date(2026, 3, 1), date_to=last)

    header, rows, _totals = read_csv(export("orders", filters)[0])

    assert sorted(int(pk) for pk in column(header, rows, "Order no.")) == sorted(
        [inside_late.pk, inside_early.pk]
    )
    assert filters.bounds == (
        datetime(2026, 2, 28, 16, 0, tzinfo=ZoneInfo("UTC")),
        datetime(2026, 3, 31, 16, 0, tzinfo=ZoneInfo("UTC")),
    )


def test_status_kind_and_community_filters_narrow_the_rows(ledger):
    _h, entry_rows, _t = read_csv(export("orders", month(kind="entry"))[0])
    _h, unpaid_rows, _t = read_csv(export("orders", month(status="pending_payment"))[0])
    _h, b_rows, _t = read_csv(export("orders", month(community_ids=frozenset({ledger["b"].pk})))[0])

    assert {int(r[0]) for r in entry_rows} == {ledger["entry_new"].pk, ledger["entry_old"].pk}
    assert [int(r[0]) for r in unpaid_rows] == [ledger["unpaid"].pk]
    assert [int(r[0]) for r in b_rows] == [ledger["b_order"].pk]


def test_the_command_writes_the_report_for_one_community(ledger, tmp_path):
    output = tmp_path / "lines.xlsx"
    start, end = (today() - timedelta(days=30)).isoformat(), today().isoformat()

    call_command(
        "export_report",
        "order_lines",
        "--format",
        "xlsx",
        "--from",
        start,
        "--to",
        end,
        "--community",
        "yi",
        "--output",
        str(output),
        "--lang",
        "en",
    )

    sheet = openpyxl.load_workbook(output).worksheets[0]
    values = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [row[1] for row in values[:-1]] == [ledger["b_order"].pk] and values[-1][
        0
    ] == "Total (paid orders only)"


def test_the_command_respects_an_owners_scope_with_as_user(ledger, tmp_path):
    start, end = (today() - timedelta(days=30)).isoformat(), today().isoformat()
    args = ["export_report", "orders", "--from", start, "--to", end, "--output", str(tmp_path / "o.csv")]

    call_command(*args, "--as-user", ledger["b"].owner.username, "--lang", "en")
    _h, rows, _t = read_csv((tmp_path / "o.csv").read_bytes())
    assert [int(r[0]) for r in rows] == [ledger["b_order"].pk]
    with pytest.raises(CommandError):
        call_command(*args, "--as-user", ledger["b"].owner.username, "--community", "jia")
    with pytest.raises(CommandError):
        call_command(*args, "--as-user", ledger["buyer"].user.username)


# --- Extreme dates --------------------------------------------------------------------------------

EXTREME_RANGES = [
    ("0001-01-01", "0001-01-31"),
    ("0001-01-01", "2026-01-31"),
    ("2026-01-01", "9999-12-31"),
    ("9999-12-01", "9999-12-31"),
]


@pytest.mark.parametrize(("start", "end"), EXTREME_RANGES)
def test_the_command_refuses_days_outside_the_reportable_range_clearly(ledger, tmp_path, start, end):
    args = ["export_report", "orders", "--from", start, "--to", end, "--output", str(tmp_path / "o.csv")]

    with pytest.raises(CommandError, match=r"2000-01-01.*2099-12-31"):
        call_command(*args)


@pytest.mark.parametrize(("start", "end"), EXTREME_RANGES)
def test_the_export_screen_refuses_days_outside_the_reportable_range(client, ledger, start, end):
    client.force_login(finance_user_grant(user=UserFactory()))
    form = {"report": "orders", "date_from": start, "date_to": end, "fmt": "csv", "language": "en"}

    response = client.post(reverse("admin:commerce_exportjob_add"), form)

    assert response.status_code == 200
    assert "2000-01-01" in response.content.decode() and "2099-12-31" in response.content.decode()


@pytest.mark.parametrize(("start", "end"), EXTREME_RANGES)
def test_the_reconciliation_page_clamps_extreme_days(client, ledger, start, end):
    client.force_login(finance_user_grant(user=UserFactory()))

    response = client.get(reverse("admin:commerce_exportjob_reconciliation"), {"from": start, "to": end})

    assert response.status_code == 200
    assert 'id="no-mismatch"' in response.content.decode()


def test_report_filters_refuse_extreme_days_and_keep_the_first_and_last_reportable_ones():
    with pytest.raises(ReportRangeInvalid):
        ReportFilters(date_from=date(1, 1, 1), date_to=date(2026, 1, 1))
    with pytest.raises(ReportRangeInvalid):
        ReportFilters(date_from=date(2026, 1, 1), date_to=date(9999, 12, 31))
    assert ReportFilters(date_from=date(2000, 1, 1), date_to=date(2099, 12, 31)).bounds == (
        datetime(1999, 12, 31, 16, 0, tzinfo=ZoneInfo("UTC")),
        datetime(2099, 12, 31, 16, 0, tzinfo=ZoneInfo("UTC")),
    )


def test_order_totals_add_paid_orders_only_and_say_so(ledger):
    cancelled = Order.objects.get(pk=ledger["unpaid"].pk)
    paid_total = Order.objects.filter(paid_at__isnull=False).aggregate(s=Sum("total"))["s"]

    header, rows, [totals] = read_csv(export("orders", language="zh-hans")[0])
    line_header, lines, [line_totals] = read_csv(export("order_lines", language="zh-hans")[0])

    assert any(row[0] == str(cancelled.pk) for row in rows)  # listed ...
    assert D(totals[header.index("订单金额")]) == paid_total  # ... but not summed
    assert D(line_totals[line_header.index("小计")]) == paid_total
    paid_units = sum(int(r[line_header.index("数量")]) for r in lines if r[line_header.index("付款时间")])
    assert int(line_totals[line_header.index("数量")]) == paid_units
    assert totals[0] == line_totals[0] == "合计（仅已付款订单）"


def test_booleans_are_yes_or_no_never_blank(ledger):
    header, rows, _totals = read_csv(export("orders", language="zh-hans")[0])

    assert {row[header.index("需复核")] for row in rows} <= {"是", "否"}
    assert "否" in {row[header.index("需复核")] for row in rows}


def test_payment_and_refund_totals_add_succeeded_ones_only(ledger):
    header, rows, [totals] = read_csv(export("payments")[0])
    r_header, _refunds, [r_totals] = read_csv(export("refunds")[0])

    assert D(totals[header.index("Amount received")]) == succeeded_payments()
    assert D(totals[header.index("Amount asked")]) == money(
        row[header.index("Amount asked")] for row in rows if row[header.index("Status")] == "Succeeded"
    )
    assert D(r_totals[r_header.index("Amount")]) == succeeded_refunds()
    assert totals[0] == "Total (succeeded payments only)" and r_totals[0] == "Total (succeeded refunds only)"


def test_the_export_screen_starts_with_dates_a_date_input_accepts(client):
    finance = UserFactory()
    finance_user_grant(user=finance)
    client.force_login(finance)

    content = client.get(
        reverse("admin:commerce_exportjob_add"), HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()

    assert f'type="date" name="date_to" value="{today().isoformat()}"' in content


def test_the_shipments_report_lists_each_line_in_each_package_and_refunds_name_their_after_sale(stripe):
    from commerce.models import AfterSale
    from commerce.services.shipments import LineQuantity, order_confirm_receipt, shipment_create
    from tests.commerce.test_after_sales import ask, decide, lines_of, make_shop, paid_express

    shop = make_shop()
    order = paid_express(shop, stripe)  # berries 3 × 10.00, jam 2 × 5.00
    berries, jam = lines_of(order)
    first = shipment_create(
        actor=shop["owner"],
        order_id=order.pk,
        carrier="SF",
        tracking_no="SF0001",
        lines=[LineQuantity(berries, 2)],
    )
    second = shipment_create(actor=shop["owner"], order_id=order.pk, carrier="ZTO", tracking_no="ZT0002")
    order_confirm_receipt(actor=shop["user"], order_id=order.pk)
    request = ask(shop["user"], order.pk, lines=[(jam, 1)], reason="漏发一瓶").json()
    decide(shop["owner"], request["id"], "approve")
    scoped = month(community_ids=frozenset({shop["community"].pk}))

    header, rows, [totals] = read_csv(export("shipments", scoped)[0])
    r_header, refunds, _totals = read_csv(export("refunds", scoped)[0])
    _xlsx, result = export("shipments", scoped, fmt="xlsx")

    def cell(row, label):
        return row[header.index(label)]

    assert [(cell(r, "Shipment no."), cell(r, "Tracking number"), cell(r, "Quantity")) for r in rows] == [
        (str(first.pk), "SF0001", "2"),
        (str(second.pk), "ZT0002", "1"),
        (str(second.pk), "ZT0002", "2"),
    ]
    assert [cell(r, "Value shipped") for r in rows] == ["20.00", "10.00", "10.00"]
    assert all(cell(r, "Receipt confirmed at") and cell(r, "Community") == "果园" for r in rows)
    assert totals[header.index("Quantity")] == "5" and totals[header.index("Value shipped")] == "40.00"
    assert result.rows == 3 and result.totals["CNY"]["value"] == D("40.00")
    [refund] = refunds
    assert refund[r_header.index("After-sale no.")] == str(AfterSale.objects.get().pk)
    assert "漏发一瓶" in refund[r_header.index("Reason")] and refund[r_header.index("Amount")] == "5.00"
    assert refund[r_header.index("Source")] == "After-sale request"
    unconfirmed = read_csv(export("shipments", month(status="unconfirmed"))[0])[1]
    assert unconfirmed == []


def test_csv_money_keeps_two_decimals_whatever_the_database_computes():
    """SQLite (the embedded default) hands a computed difference back as ``Decimal("199")``."""
    from commerce.reports.columns import CellType
    from commerce.reports.writers import write_csv

    report = REPORTS["order_lines"]
    row = [
        Decimal("199") if c.type == CellType.MONEY else ("CNY" if c.key == "currency" else None)
        for c in report.columns
    ]
    stream = io.BytesIO()

    write_csv(report=report, rows=[tuple(row)], stream=stream)

    text = stream.getvalue().decode("utf-8-sig")
    money_cells = [
        cell
        for line in text.splitlines()[1:]
        for c, cell in zip(report.columns, line.split(","), strict=False)
        if c.type == CellType.MONEY and cell
    ]
    assert money_cells and all(cell.endswith(".00") for cell in money_cells), text
