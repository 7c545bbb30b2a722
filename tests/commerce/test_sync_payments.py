"""``run_jobs sync_payments``: WeChat Pay's news that never reached us, found by asking.

The real provider and the real ``wechatpayv3`` client against the local WeChat Pay server.
"""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Order, Payment, Refund, Sku
from commerce.services.sync import payments_sync
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal
JOB = "job:sync_payments"


@pytest.fixture
def shop():
    community = CommunityFactory()
    return {
        "community": community,
        "sku": SkuFactory(product=ProductFactory(community=community), price=D("50.00"), stock=1),
    }


def buy(shop, openid: str = "oBuyer0001") -> tuple[Order, Payment]:
    user = MembershipFactory(community=shop["community"], user=UserFactory(wechat_openid=openid)).user
    response = place_order(user, shop["community"], [(shop["sku"], 1)])
    assert response.status_code == 201, response.content
    order_id = body(response)["id"]
    return Order.objects.get(pk=order_id), Payment.objects.get(order_id=order_id)


def run_sync(now=None) -> str:
    out = StringIO()
    call_command("run_jobs", "sync_payments", "--now", (now or timezone.now()).isoformat(), stdout=out)
    return out.getvalue()


def cancel(order: Order) -> None:
    response = client_for(order.buyer).post(f"/api/v1/orders/{order.pk}/cancel/")
    assert response.status_code == 200, response.content


def test_a_lost_notification_is_caught_and_a_second_run_changes_nothing(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.notify_mode = "drop"
    paid = wechatpay_server.pay(payment.reference)

    first = run_sync()
    second = run_sync()

    order.refresh_from_db()
    payment.refresh_from_db()
    assert "sync_payments: 1 payments and refunds updated" in first
    assert "sync_payments: 0 payments and refunds updated" in second
    assert order.status == Order.Status.PAID and order.amount_paid == D("50.00")
    assert payment.status == Payment.Status.SUCCEEDED and payment.provider_ref == paid.transaction_id
    assert (
        AuditEntry.objects.filter(action="order.paid", actor_label=JOB, target_id=str(order.pk)).count() == 1
    )


def test_the_notification_that_arrives_after_the_job_changes_nothing(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.pay(payment.reference)
    run_sync()

    delivery = wechatpay_server.deliver(wechatpay_server.held[0])

    assert delivery.accepted
    assert AuditEntry.objects.filter(action="order.paid", target_id=str(order.pk)).count() == 1
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


@pytest.mark.parametrize("ending", ["hold_expired", "cancelled"])
def test_a_hold_that_ends_is_closed_at_wechat(shop, wechatpay_server, ending):
    order, payment = buy(shop)
    now = timezone.now()
    if ending == "cancelled":
        cancel(order)
    else:
        now = order.hold_expires_at + timedelta(minutes=1)

    assert "sync_payments: 1 " in run_sync(now)

    payment.refresh_from_db()
    assert wechatpay_server.order(payment.reference).state == "CLOSED"
    assert payment.status == Payment.Status.CANCELED
    closes = [r for r in wechatpay_server.requests if r.path.endswith(f"{payment.reference}/close")]
    assert len(closes) == 1
    assert "sync_payments: 0 " in run_sync(now)  # closed is final: queried, nothing more


def test_a_payment_after_the_order_was_cancelled_takes_the_stock_if_it_is_there(shop, wechatpay_server):
    order, payment = buy(shop)
    cancel(order)
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 1
    wechatpay_server.notify_mode = "drop"
    wechatpay_server.pay(payment.reference)  # the member paid before WeChat closed it

    run_sync()

    order.refresh_from_db()
    assert order.status == Order.Status.PAID and not order.needs_review
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 0
    assert wechatpay_server.order(payment.reference).state == "SUCCESS"  # not closed


def test_a_payment_after_the_order_was_cancelled_and_the_stock_sold_is_flagged(shop, wechatpay_server):
    order, payment = buy(shop)
    cancel(order)
    other, _other_payment = buy(shop, openid="oBuyer0002")  # takes the last unit
    wechatpay_server.notify_mode = "drop"
    wechatpay_server.pay(payment.reference)

    run_sync()

    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.needs_review
    assert order.review_reason == _("Paid after the order was cancelled and the stock is gone: refund it.")
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 0
    assert Order.objects.get(pk=other.pk).status == Order.Status.PENDING_PAYMENT


def test_a_close_refused_because_the_member_just_paid_applies_the_payment(shop, wechatpay_server):
    order, payment = buy(shop)
    cancel(order)
    wechatpay_server.notify_mode = "drop"
    close = wechatpay_server._close

    def paid_meanwhile(out_trade_no, **kwargs):
        wechatpay_server.pay(out_trade_no)  # between our query (NOTPAY) and our close
        return close(out_trade_no, **kwargs)

    wechatpay_server._close = paid_meanwhile

    run_sync()

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED
    assert wechatpay_server.order(payment.reference).state == "SUCCESS"


def test_a_processing_refund_that_succeeds_later_is_applied(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.pay(payment.reference)
    assert refund_as_owner(shop["community"].owner, order.pk, amount="20.00").status_code == 201
    refund = Refund.objects.get(order=order)
    assert refund.status == Refund.Status.PENDING
    assert "sync_payments: 0 " in run_sync()  # still PROCESSING at WeChat
    wechatpay_server.notify_mode = "drop"
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")

    first, second = run_sync(), run_sync()

    refund.refresh_from_db()
    order.refresh_from_db()
    assert "sync_payments: 1 " in first and "sync_payments: 0 " in second
    assert refund.status == Refund.Status.SUCCEEDED and refund.provider_ref
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.amount_refunded == D("20.00")
    assert AuditEntry.objects.filter(action="refund.confirmed", actor_label=JOB).count() == 1


def test_an_abnormal_refund_found_by_the_job_flags_the_order_once(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.pay(payment.reference)
    refund_as_owner(shop["community"].owner, order.pk)
    refund = Refund.objects.get(order=order)
    wechatpay_server.notify_mode = "drop"
    wechatpay_server.settle_refund(refund.reference, "ABNORMAL")

    run_sync()
    run_sync()

    order.refresh_from_db()
    assert order.needs_review and refund.reference in order.review_reason
    assert Refund.objects.get(pk=refund.pk).status == Refund.Status.PENDING
    assert AuditEntry.objects.filter(action="order.flagged_for_review", target_id=str(order.pk)).count() == 1


def test_the_job_keeps_going_when_wechat_fails_one_call(shop, wechatpay_server, caplog):
    shop["sku"].stock = 2
    shop["sku"].save()
    first, first_payment = buy(shop)
    second, second_payment = buy(shop, openid="oBuyer0002")
    wechatpay_server.notify_mode = "drop"
    wechatpay_server.pay(first_payment.reference)
    wechatpay_server.pay(second_payment.reference)
    wechatpay_server.fail_next(500, "SYSTEM_ERROR", "系统繁忙")  # the first query

    assert payments_sync(now=timezone.now()) == 1

    assert Order.objects.get(pk=first.pk).status == Order.Status.PENDING_PAYMENT
    assert Order.objects.get(pk=second.pk).status == Order.Status.PAID
    assert f"payment {first_payment.pk} not synced" in caplog.text
    assert payments_sync(now=timezone.now()) == 1  # the next run catches it
    assert Order.objects.get(pk=first.pk).status == Order.Status.PAID


def test_old_cancelled_orders_are_left_alone(shop, wechatpay_server):
    order, _payment = buy(shop)
    cancel(order)
    asked = len(wechatpay_server.requests)

    assert payments_sync(now=timezone.now() + timedelta(hours=7)) == 0

    assert len(wechatpay_server.requests) == asked


def test_partner_mode_queries_and_closes_at_the_communitys_sub_merchant(wechatpay_partner_server):
    server = wechatpay_partner_server
    sub_mchid = server.config.sub_mchids[0]
    community = CommunityFactory(wechatpay_sub_mchid=sub_mchid)
    shop = {"community": community, "sku": SkuFactory(product=ProductFactory(community=community), stock=2)}
    paid_order, paid = buy(shop)
    open_order, unpaid = buy(shop, openid="oBuyer0002")
    server.notify_mode = "drop"
    server.pay(paid.reference, sub_mchid=sub_mchid)

    assert payments_sync(now=open_order.hold_expires_at + timedelta(minutes=1)) == 2

    assert Order.objects.get(pk=paid_order.pk).status == Order.Status.PAID
    assert Payment.objects.get(pk=unpaid.pk).status == Payment.Status.CANCELED
    assert server.order(unpaid.reference, sub_mchid).state == "CLOSED"


def _together(*calls) -> list:
    barrier = threading.Barrier(len(calls))

    def released(call):
        try:
            barrier.wait(timeout=30)
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(released, calls))


@pytest.mark.django_db(transaction=True)
def test_two_job_runs_and_the_notification_at_once_apply_the_payment_once(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.pay(payment.reference)
    notification = wechatpay_server.held[0]

    results = _together(
        lambda: payments_sync(now=timezone.now()),
        lambda: payments_sync(now=timezone.now()),
        lambda: wechatpay_server.deliver(notification),
    )

    assert results[2].accepted and sum(results[:2]) <= 1  # whoever comes first applies it
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert AuditEntry.objects.filter(action="order.paid", target_id=str(order.pk)).count() == 1
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 0


def test_a_refund_wechat_never_received_is_sent_again_once(shop, wechatpay_server):
    order, payment = buy(shop)
    wechatpay_server.pay(payment.reference)
    wechatpay_server.fail_next(500, "SYSTEM_ERROR", "系统繁忙")  # the refund request
    assert refund_as_owner(shop["community"].owner, order.pk, amount="10.00").status_code == 503
    refund = Refund.objects.get(order=order)
    assert refund.status == Refund.Status.PENDING and refund.provider_ref == ""

    assert payments_sync(now=timezone.now()) == 0  # too early: it may still be on its way
    assert payments_sync(now=timezone.now() + timedelta(minutes=11)) == 1
    assert payments_sync(now=timezone.now() + timedelta(minutes=12)) == 0

    refund.refresh_from_db()
    at_wechat = wechatpay_server.refund(refund.reference)
    assert refund.status == Refund.Status.PENDING and refund.provider_ref == at_wechat.refund_id
    assert at_wechat.amount == 1000 and len(wechatpay_server.refunds) == 1
