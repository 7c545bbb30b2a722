"""The daily WeChat Pay trade bill, downloaded from the local WeChat Pay server and reconciled.

WeChat's side is made on the server (paid orders, refunds); ours is written as the services leave
it (consistent orders, so the suite's money check holds). The bill of a day exists from 10:00 the
next day: the server's clock is moved there once the day's trades are made.
"""

import gzip
import time
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from commerce.models import BillDifference, BillReconciliation, Order, OrderLine, Payment, Refund
from commerce.payments.wechatpay.bill import BillInvalid, parse_trade_bill
from commerce.reports.filters import ReportFilters
from commerce.reports.reconciliation import KINDS, RECONCILIATION
from commerce.reports.roles import finance_user_grant
from commerce.services.reconciliation import payments_reconcile, trade_bill_reconcile
from commerce.services.sync import payments_sync
from shequn_backend.audit import job_actor
from shequn_backend.calendar import business_day, business_zone
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.members.factories import CommunityFactory, UserFactory
from tests.wechat.fixtures import NOTIFY_URL
from tests.wechat.wechatpay_server import Order as WxOrder
from tests.wechat.wechatpay_server import Refund as WxRefund

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _one_day_back(settings):
    """The job looks back this many bill days: one keeps these tests to the day they make."""
    settings.WECHATPAY_RECONCILE_DAYS = 1


ACTOR = job_actor("reconcile_payments")
Kind = BillDifference.Kind


def bill_day() -> tuple:
    """Today (Asia/Shanghai) and a moment when its bill exists (11:00 the next day)."""
    day = business_day(timezone.now())
    return day, datetime.combine(day + timedelta(days=1), datetime.min.time(), business_zone()) + timedelta(
        hours=11
    )


def at_wechat(server, moment: datetime) -> None:
    server.clock = lambda: moment.timestamp()


def wx_pay(server, reference: str, amount: Decimal, *, sub_mchid=None, openid="o-buyer") -> WxOrder:
    """A member pays a mini-program order at WeChat (no notification reaches us)."""
    server.notify_mode = "drop"
    request = {
        "description": "测试社群 商品",
        "out_trade_no": reference,
        "notify_url": NOTIFY_URL,
        "amount": {"total": int(amount * 100), "currency": "CNY"},
    }
    if sub_mchid:
        request |= {"sp_appid": server.config.sp_appid, "sp_mchid": server.config.mchid}
        request |= {"sub_mchid": sub_mchid, "sub_appid": server.config.appid, "payer": {"sub_openid": openid}}
    else:
        request |= {"appid": server.config.appid, "mchid": server.config.mchid, "payer": {"openid": openid}}
    order = WxOrder(server.config.mchid, sub_mchid, reference, request, f"wx{reference}", server.now())
    server.orders[(sub_mchid, reference)] = order
    return server.pay(reference, sub_mchid=sub_mchid)


def wx_refund(server, order: WxOrder, reference: str, amount: Decimal, status="SUCCESS") -> WxRefund:
    request = {"out_refund_no": reference, "notify_url": NOTIFY_URL}
    fen = int(amount * 100)
    refund = WxRefund(order, reference, f"50{time.time_ns()}", fen, request, server.now())
    server.refunds[(order.sub_mchid, reference)] = refund
    if status != "PROCESSING":
        server.settle_refund(reference, status, sub_mchid=order.sub_mchid)
    return refund


def our_order(community, *, price=None, paid=True, sub_merchant="") -> tuple[Order, Payment]:
    """An order of ours paid by WeChat Pay (or still waiting), as the services leave it."""
    price = price or D("99.00")
    sku = SkuFactory(product=ProductFactory(community=community), price=price)
    now = timezone.now()
    order = Order.objects.create(
        community=community,
        buyer=UserFactory(),
        total=price,
        status=Order.Status.PAID if paid else Order.Status.PENDING_PAYMENT,
        payment_status=Order.PaymentStatus.PAID if paid else Order.PaymentStatus.UNPAID,
        amount_paid=price if paid else D("0"),
        paid_at=now if paid else None,
    )
    OrderLine.objects.create(
        order=order,
        sku=sku,
        product=sku.product,
        title=sku.product.title,
        quantity=1,
        list_price=price,
        unit_price=price,
        line_total=price,
    )
    payment = Payment.objects.create(
        order=order,
        provider="wechatpay",
        amount=price,
        amount_received=price if paid else D("0"),
        status=Payment.Status.SUCCEEDED if paid else Payment.Status.PENDING,
        succeeded_at=now if paid else None,
        sub_merchant=sub_merchant,
        client_data={"prepay_id": "wx-prepay"},
    )
    return order, payment


def our_refund(order: Order, payment: Payment, amount: Decimal, *, status=Refund.Status.SUCCEEDED) -> Refund:
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        provider="wechatpay",
        provider_ref=f"50{time.time_ns()}",
        amount=amount,
        status=status,
        confirmed_at=timezone.now() if status == Refund.Status.SUCCEEDED else None,
    )
    if status == Refund.Status.SUCCEEDED:
        order.amount_refunded += amount
        order.status = order.payment_status = Order.Status.PARTIALLY_REFUNDED
        order.save()
    return refund


def bill_rows(day, community_ids=None) -> list[tuple]:
    labels = {str(KINDS[kind]) for kind in KINDS if kind.startswith("bill_")}
    rows = RECONCILIATION.rows(ReportFilters(date_from=day, date_to=day, community_ids=community_ids))
    return [row for row in rows if row[0] in labels]


def test_a_day_with_payments_and_a_partial_refund_reconciles(wechatpay_server):
    community = CommunityFactory()
    first, first_payment = our_order(community, price=D("99.00"))
    _, second_payment = our_order(community, price=D("35.50"))
    wx_first = wx_pay(wechatpay_server, first_payment.reference, D("99.00"))
    wx_pay(wechatpay_server, second_payment.reference, D("35.50"))
    refund = our_refund(first, first_payment, D("20.00"))
    wx_refund(wechatpay_server, wx_first, refund.reference, D("20.00"))
    day, later = bill_day()
    at_wechat(wechatpay_server, later)

    run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)

    assert run.status == BillReconciliation.Status.RECONCILED and run.bill_exists
    assert (run.their_count, run.their_paid, run.their_refunded) == (3, D("134.50"), D("20.00"))
    assert (run.our_count, run.our_paid, run.our_refunded) == (3, D("134.50"), D("20.00"))
    assert run.their_fees > 0 and run.difference_count == 0 and not run.differences.exists()
    assert bill_rows(day) == []
    assert AuditEntry.objects.filter(action="bill.reconciled", actor_label=ACTOR).count() == 1


def test_each_kind_of_difference_is_stored_and_reported(wechatpay_server, client):
    community, other = CommunityFactory(), CommunityFactory()
    wx_pay(wechatpay_server, "Pstranger0001", D("12.00"))  # money we never heard of
    _, unbilled = our_order(community, price=D("40.00"))  # paid on our side, not at WeChat
    _, cheaper = our_order(community, price=D("99.00"))
    wx_pay(wechatpay_server, cheaper.reference, D("98.00"))
    _, lost = our_order(other, paid=False)  # its success notification never arrived
    wx_pay(wechatpay_server, lost.reference, D("99.00"))
    day, later = bill_day()
    at_wechat(wechatpay_server, later)

    run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)

    found = {(d.kind, d.reference): d for d in run.differences.all()}
    assert run.status == BillReconciliation.Status.DIFFERENCES and run.difference_count == 4
    assert set(found) == {
        (Kind.MISSING_OURS, "Pstranger0001"),
        (Kind.MISSING_THEIRS, unbilled.reference),
        (Kind.AMOUNT, cheaper.reference),
        (Kind.STATUS, lost.reference),
    }
    assert found[(Kind.AMOUNT, cheaper.reference)].their_amount == D("98.00")
    assert found[(Kind.AMOUNT, cheaper.reference)].our_amount == D("99.00")
    status = found[(Kind.STATUS, lost.reference)]
    assert (status.our_status, status.their_status, status.community_id) == ("pending", "SUCCESS", other.pk)
    assert found[(Kind.MISSING_OURS, "Pstranger0001")].community_id is None
    assert (run.their_count, run.their_paid) == (3, D("209.00"))
    assert (run.our_count, run.our_paid) == (2, D("139.00"))
    # The report: finance sees all four; an owner only their community's; the screen lists them.
    assert len(bill_rows(day)) == 4
    assert {row[9] for row in bill_rows(day, frozenset({other.pk}))} == {lost.reference}
    client.force_login(finance_user_grant(user=UserFactory()))
    page = client.get(reverse("admin:commerce_exportjob_reconciliation"), {"from": day, "to": day})
    text = page.content.decode()
    assert page.status_code == 200 and text.count('class="mismatch"') == 4
    assert 'class="bill-run bill-differences"' in text and cheaper.reference in text


def test_the_job_reconciles_the_days_it_looks_back_on_once(wechatpay_server, settings):
    settings.WECHATPAY_RECONCILE_DAYS = 2
    community = CommunityFactory()
    _, payment = our_order(community)
    wx_pay(wechatpay_server, payment.reference, D("99.00"))
    day, later = bill_day()
    at_wechat(wechatpay_server, later)

    assert payments_reconcile(now=later) == 2
    asked = len(wechatpay_server.requests)
    assert payments_reconcile(now=later) == 0  # done days are not downloaded again

    runs = list(
        BillReconciliation.objects.order_by("day").values_list("day", "status", "bill_exists", "attempts")
    )
    assert runs == [(day - timedelta(days=1), "reconciled", False, 1), (day, "reconciled", True, 1)]
    assert len(wechatpay_server.requests) == asked


def test_a_bill_that_does_not_match_its_hash_is_refused_and_retried(wechatpay_server):
    community = CommunityFactory()
    _, payment = our_order(community)
    wx_pay(wechatpay_server, payment.reference, D("99.00"))
    day, later = bill_day()
    at_wechat(wechatpay_server, later)
    honest = wechatpay_server._trade_bill

    def tampered(**kwargs):
        answer = honest(**kwargs)
        token = parse_qs(urlsplit(answer.payload["download_url"]).query)["token"][0]
        content = gzip.decompress(wechatpay_server._bills[token]).replace(b"`99.00", b"`9.90")
        wechatpay_server._bills[token] = gzip.compress(content)
        return answer

    wechatpay_server._trade_bill = tampered
    refused = trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    wechatpay_server._trade_bill = honest
    retried = payments_reconcile(now=later)

    assert refused.status == BillReconciliation.Status.PENDING and "hash" in refused.last_error
    run = BillReconciliation.objects.get()
    assert retried == 1 and run.status == "reconciled" and run.attempts == 2 and run.last_error == ""


def test_a_bill_still_being_made_is_retried_by_a_later_run(wechatpay_server):
    community = CommunityFactory()
    _, payment = our_order(community)
    wx_pay(wechatpay_server, payment.reference, D("99.00"))
    _, later = bill_day()
    at_wechat(wechatpay_server, later - timedelta(hours=2))  # 09:00 at WeChat: STATEMENT_CREATING

    assert payments_reconcile(now=later) == 0
    pending = BillReconciliation.objects.get()
    assert pending.status == "pending" and "STATEMENT_CREATING" in pending.last_error

    at_wechat(wechatpay_server, later)
    assert payments_reconcile(now=later + timedelta(hours=1)) == 1
    assert BillReconciliation.objects.get().status == "reconciled"


def test_before_ten_the_job_does_not_ask_for_yesterdays_bill(wechatpay_server):
    day, later = bill_day()
    at_wechat(wechatpay_server, later)
    asked = len(wechatpay_server.requests)

    assert payments_reconcile(now=later - timedelta(hours=2)) == 0

    assert len(wechatpay_server.requests) == asked and not BillReconciliation.objects.filter(day=day).exists()


def test_a_day_without_trades_is_compared_all_the_same(wechatpay_server):
    day, later = bill_day()
    at_wechat(wechatpay_server, later)

    quiet = trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    assert (
        quiet.status == "reconciled" and not quiet.bill_exists and quiet.their_count == quiet.our_count == 0
    )

    _, payment = our_order(CommunityFactory())  # WeChat says no trades; we booked one
    flagged = trade_bill_reconcile(day=day, now=later, actor=ACTOR)

    assert flagged.pk == quiet.pk and flagged.status == "differences" and not flagged.bill_exists
    assert list(flagged.differences.values_list("kind", "reference")) == [
        (Kind.MISSING_THEIRS, payment.reference)
    ]


def test_refund_statuses_are_compared(wechatpay_server):
    community = CommunityFactory()
    order, payment = our_order(community)
    wx_order = wx_pay(wechatpay_server, payment.reference, D("99.00"))
    pending = our_refund(order, payment, D("10.00"), status=Refund.Status.PENDING)
    wx_refund(wechatpay_server, wx_order, pending.reference, D("10.00"))  # SUCCESS at WeChat
    day, later = bill_day()
    at_wechat(wechatpay_server, later)

    run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)

    difference = run.differences.get()
    assert (difference.kind, difference.trade, difference.reference) == (
        Kind.STATUS,
        "refund",
        pending.reference,
    )
    assert (difference.our_status, difference.their_status) == ("pending", "SUCCESS")


def test_partner_mode_reconciles_each_sub_merchant_on_its_own(wechatpay_partner_server):
    server = wechatpay_partner_server
    first_mchid, second_mchid = server.config.sub_mchids[:2]
    first = CommunityFactory(wechatpay_sub_mchid=first_mchid)
    second = CommunityFactory(wechatpay_sub_mchid=second_mchid)
    _, paid_first = our_order(first, sub_merchant=first_mchid)
    _, paid_second = our_order(second, price=D("5.00"), sub_merchant=second_mchid)
    wx_pay(server, paid_first.reference, D("99.00"), sub_mchid=first_mchid)
    wx_pay(server, "Pstranger0002", D("1.00"), sub_mchid=second_mchid)
    _, later = bill_day()
    at_wechat(server, later)

    assert payments_reconcile(now=later) == 2

    runs = {run.merchant: run for run in BillReconciliation.objects.all()}
    assert set(runs) == {first_mchid, second_mchid}
    assert runs[first_mchid].status == "reconciled" and runs[first_mchid].their_paid == D("99.00")
    kinds = set(runs[second_mchid].differences.values_list("kind", "reference", "community"))
    assert kinds == {
        (Kind.MISSING_THEIRS, paid_second.reference, second.pk),
        (Kind.MISSING_OURS, "Pstranger0002", second.pk),
    }


def test_the_parser_refuses_a_bill_that_does_not_add_up():
    header = "交易时间,商户订单号,交易状态,订单金额,商户退款单号,申请退款金额"
    line = "`2026-12-01 10:00:00,`P123456,`SUCCESS,`99.00,`0,`0.00"
    summary = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"

    good = parse_trade_bill(
        f"{header}\r\n{line}\r\n{summary}\r\n`1,`99.00,`0.00,`0.00,`0.59400,`99.00,`0.00\r\n".encode()
    )
    assert [(row.out_trade_no, row.amount, row.is_refund) for row in good.lines] == [
        ("P123456", D("99.00"), False)
    ]
    with pytest.raises(BillInvalid):
        parse_trade_bill(
            f"{header}\r\n{line}\r\n{summary}\r\n`1,`98.00,`0.00,`0.00,`0,`98.00,`0.00\r\n".encode()
        )
    with pytest.raises(BillInvalid):
        parse_trade_bill(f"{header}\r\n{line}\r\n".encode())


def test_finance_exports_the_differences_with_export_report(wechatpay_server, tmp_path):
    _, payment = our_order(CommunityFactory())  # not at WeChat
    day, later = bill_day()
    at_wechat(wechatpay_server, later)
    trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    output = tmp_path / "reconciliation.csv"

    call_command(
        "export_report",
        "reconciliation",
        "--from",
        day.isoformat(),
        "--to",
        day.isoformat(),
        "--output",
        str(output),
    )

    text = output.read_text(encoding="utf-8-sig")
    assert "我方单号" in text.splitlines()[0]
    assert str(KINDS["bill_missing_theirs"]) in text and payment.reference in text


def test_runs_are_for_finance_read_only_and_owners_see_only_their_differences(wechatpay_server, client):
    community = CommunityFactory()
    _, payment = our_order(community)
    wx_pay(wechatpay_server, "Pstranger0003", D("1.00"))
    day, later = bill_day()
    at_wechat(wechatpay_server, later)
    run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    runs_url = reverse("admin:commerce_billreconciliation_changelist")
    differences_url = reverse("admin:commerce_billdifference_changelist")

    client.force_login(finance_user_grant(user=UserFactory()))
    assert client.get(runs_url).status_code == 200
    page = client.get(reverse("admin:commerce_billreconciliation_change", args=[run.pk])).content.decode()
    assert payment.reference in page and "Pstranger0003" in page and 'name="_save"' not in page
    assert client.post(reverse("admin:commerce_billreconciliation_delete", args=[run.pk])).status_code == 403

    client.force_login(community.owner)
    assert client.get(runs_url).status_code == 403
    listing = client.get(differences_url).content.decode()
    assert payment.reference in listing and "Pstranger0003" not in listing
    screen = client.get(reverse("admin:commerce_exportjob_reconciliation"), {"from": day, "to": day})
    assert 'id="bill_runs"' not in screen.content.decode()


def test_a_success_booked_just_after_midnight_is_found_in_the_previous_days_bill(wechatpay_server):
    day, later = bill_day()
    yesterday = day - timedelta(days=1)
    midnight = datetime.combine(day, datetime.min.time(), business_zone())
    _, payment = our_order(CommunityFactory())
    Payment.objects.filter(pk=payment.pk).update(succeeded_at=midnight + timedelta(seconds=20))
    at_wechat(wechatpay_server, midnight - timedelta(seconds=10))  # WeChat: paid at 23:59:50
    wx_pay(wechatpay_server, payment.reference, D("99.00"))
    at_wechat(wechatpay_server, later)

    today_run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    yesterday_run = trade_bill_reconcile(day=yesterday, now=later, actor=ACTOR)

    assert today_run.status == "reconciled" and not today_run.bill_exists and today_run.our_count == 1
    assert yesterday_run.status == "reconciled" and yesterday_run.their_count == 1


def test_a_superuser_compares_a_day_again_once_sync_payments_found_the_payment(
    wechatpay_server, client, admin_user
):
    _, payment = our_order(CommunityFactory(), paid=False)
    wx_pay(wechatpay_server, payment.reference, D("99.00"))  # a lost notification
    day, later = bill_day()
    at_wechat(wechatpay_server, later)
    run = trade_bill_reconcile(day=day, now=later, actor=ACTOR)
    assert run.status == "differences" and run.differences.get().kind == Kind.STATUS
    assert payments_sync(now=timezone.now()) == 1  # sync_payments finds the payment
    client.force_login(admin_user)
    url = reverse("admin:commerce_billreconciliation_changelist")

    response = client.post(url, {"action": "reconcile_again", "_selected_action": [run.pk]}, follow=True)

    run.refresh_from_db()
    assert response.status_code == 200 and run.status == "reconciled" and not run.differences.exists()
    assert AuditEntry.objects.filter(action="bill.reconciled", actor_label=f"user:{admin_user.pk}").exists()
