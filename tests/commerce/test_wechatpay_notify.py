"""POST /api/v1/payments/wechatpay/notify/: verified, decrypted, stored, applied once, answered for WeChat."""

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from commerce import errors
from commerce.models import Order, Payment, Refund, WebhookEvent
from commerce.payments import base
from commerce.payments.wechatpay import client as wx
from commerce.payments.wechatpay.provider import WechatPayProvider
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, place_order
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def unpaid(wechatpay_server):
    """An order placed and prepaid at WeChat, not paid yet."""
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("88.00"), stock=5)
    member = MembershipFactory(community=community, user=UserFactory(wechat_openid="oNotify0001")).user
    order_id = body(place_order(member, community, [(sku, 1)]))["id"]
    return Payment.objects.get(order_id=order_id)


def refused(delivery, status: int) -> None:
    """WeChat retries anything but 200/204; our refusals say FAIL in JSON."""
    assert delivery.status == status and not delivery.accepted
    assert json.loads(delivery.body)["code"] == "FAIL" and json.loads(delivery.body)["message"]


def test_a_payment_notification_is_stored_decrypted_without_ciphertext(unpaid, wechatpay_server):
    wechatpay_server.pay(unpaid.reference)

    delivery = wechatpay_server.deliveries[-1]
    assert delivery.status == 204 and delivery.body == ""
    event = WebhookEvent.objects.get(provider="wechatpay")
    notification = wechatpay_server.notifications[-1]
    assert event.event_id == notification.id and event.type == "TRANSACTION.SUCCESS"
    assert event.payload["resource"]["out_trade_no"] == unpaid.reference
    assert event.payload["resource"]["trade_state"] == "SUCCESS"
    stored = json.dumps(event.payload)
    assert "ciphertext" not in stored and wechatpay_server.config.apiv3_key not in stored
    assert event.outcome == WebhookEvent.Outcome.APPLIED and event.order_id == unpaid.order_id


def test_duplicate_deliveries_apply_once(unpaid, wechatpay_server):
    wechatpay_server.notify_mode = "twice"

    wechatpay_server.pay(unpaid.reference)
    wechatpay_server.deliver(wechatpay_server.notifications[-1])

    assert [d.status for d in wechatpay_server.deliveries] == [204, 204, 204]
    event = WebhookEvent.objects.get(provider="wechatpay")
    assert event.delivery_count == 3
    assert AuditEntry.objects.filter(action="order.paid", target_id=str(unpaid.order_id)).count() == 1
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PAID


def test_a_refund_notified_before_the_payment_converges(unpaid, wechatpay_server):
    """A refund made in the merchant platform, notified before the (held) payment notification."""
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.pay(unpaid.reference)
    [payment_notice] = wechatpay_server.held
    platform_refund = WechatPayProvider().refund(
        handle=base.PaymentHandle.of(unpaid),
        refund=base.RefundHandle(reference="RPLATFORM0001", ref=""),
        amount=Decimal("8.00"),
        idempotency_key="RPLATFORM0001",
        reason="",
        metadata={},
    )
    assert platform_refund.status == "pending"
    wechatpay_server.notify_mode = "deliver"

    wechatpay_server.settle_refund("RPLATFORM0001", "SUCCESS")
    assert wechatpay_server.deliveries[-1].status == 204
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.SUCCEEDED
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PENDING_PAYMENT
    assert wechatpay_server.deliver(payment_notice).status == 204

    order = Order.objects.get(pk=unpaid.order_id)
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    assert order.amount_paid == Decimal("88.00") and order.amount_refunded == Decimal("8.00")


def test_a_tampered_notification_is_refused_and_nothing_is_stored(unpaid, wechatpay_server):
    wechatpay_server.notify_mode = "tamper"

    wechatpay_server.pay(unpaid.reference)

    refused(wechatpay_server.deliveries[-1], 401)
    assert not WebhookEvent.objects.exists()
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PENDING_PAYMENT


def test_a_stale_notification_is_refused(unpaid, wechatpay_server):
    wechatpay_server.notify_mode = "stale"

    wechatpay_server.pay(unpaid.reference)

    refused(wechatpay_server.deliveries[-1], 401)
    assert not WebhookEvent.objects.exists()


def test_a_notification_naming_another_key_is_refused_without_fetching_certificates(unpaid, wechatpay_server):
    wechatpay_server.notify_mode = "hold"
    wechatpay_server.pay(unpaid.reference)
    [notice] = wechatpay_server.held
    wrong_serial = replace(notice, headers=notice.headers | {"Wechatpay-Serial": "PUB_KEY_ID_0000OTHER"})
    unsigned = replace(notice, headers={"Content-Type": "application/json"})

    refused(wechatpay_server.deliver(wrong_serial), 401)
    refused(wechatpay_server.deliver(unsigned), 401)

    assert not any("/v3/certificates" in r.path for r in wechatpay_server.requests)
    assert not WebhookEvent.objects.exists()
    assert wechatpay_server.deliver(notice).status == 204  # the genuine one still applies
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PAID


def test_a_notification_for_someone_elses_trade_is_acknowledged_and_ignored(wechatpay_server):
    client = wx.wechatpay_client()
    wx.call(
        client.pay,
        description="not ours",
        out_trade_no="OTHERSHOP0001",
        amount={"total": 100, "currency": "CNY"},
        payer={"openid": "oElse"},
    )

    wechatpay_server.pay("OTHERSHOP0001")

    assert wechatpay_server.deliveries[-1].status == 204
    assert WebhookEvent.objects.get().outcome == WebhookEvent.Outcome.IGNORED


def test_our_temporary_failure_is_a_5xx_fail_and_wechats_retry_applies_it(
    unpaid, wechatpay_server, monkeypatch
):
    from commerce.api import views

    real = views.webhook_receive
    calls = []

    def flaky(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise errors.PaymentProviderUnavailable()
        return real(**kwargs)

    monkeypatch.setattr(views, "webhook_receive", flaky)

    wechatpay_server.pay(unpaid.reference)

    refused(wechatpay_server.deliveries[-1], 503)
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PENDING_PAYMENT
    [retry] = wechatpay_server.retry_failed()
    assert retry.status == 204
    assert Order.objects.get(pk=unpaid.order_id).status == Order.Status.PAID


def test_an_abnormal_then_successful_refund_each_apply_once(unpaid, wechatpay_server):
    from tests.commerce.flows import refund_as_owner

    wechatpay_server.pay(unpaid.reference)
    order = Order.objects.get(pk=unpaid.order_id)
    assert refund_as_owner(order.community.owner, order.pk).status_code == 201
    refund = Refund.objects.get()
    wechatpay_server.notify_mode = "twice"

    wechatpay_server.settle_refund(refund.reference, "ABNORMAL")
    wechatpay_server.refund(refund.reference).status = "PROCESSING"  # staff handled it in the platform
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")

    assert all(d.status == 204 for d in wechatpay_server.deliveries)
    flags = AuditEntry.objects.filter(action="order.flagged_for_review", target_id=str(order.pk))
    assert flags.count() == 1
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED and refund.failure_reason == ""
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED
