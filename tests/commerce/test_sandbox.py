"""The sandbox payment provider: purchases, paid joins and refunds confirmed by its signed notifications."""

import base64
import hashlib
import hmac
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from commerce.models import Order, Payment, Refund, SandboxRefund, SandboxTrade, WebhookEvent
from commerce.payments import sandbox
from commerce.payments.base import PaymentHandle, RefundHandle
from members.models import Community, Membership
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

PAY_URL = "/api/v1/payments/sandbox/pay/"
NOTIFY_URL = "/api/v1/payments/sandbox/notify/"


@pytest.fixture(autouse=True)
def _sandbox_on(settings):
    """As in the embedded default: no other provider configured, the sandbox on."""
    settings.PAYMENT_SANDBOX_ENABLED = True
    settings.STRIPE_SECRET_KEY = ""


@pytest.fixture
def shop():
    community = CommunityFactory()
    return {
        "community": community,
        "sku": SkuFactory(product=ProductFactory(community=community), price=Decimal("59.90"), stock=5),
        "member": MembershipFactory(community=community).user,
    }


def order_with_sandbox(shop, quantity=2) -> dict:
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["sku"].pk, "quantity": quantity}],
        "provider": "sandbox",
    }
    response = client_for(shop["member"]).post("/api/v1/orders/", payload, format="json")
    assert response.status_code == 201, response.content
    return body(response)


def pay(user, order_id: int):
    return client_for(user).post(PAY_URL, {"order_id": order_id}, format="json")


def test_a_purchase_is_pending_until_the_sandbox_notifies_then_paid(shop, django_capture_on_commit_callbacks):
    data = order_with_sandbox(shop)
    request_payment = data["payment"]["request_payment"]
    assert data["payment"]["provider"] == "sandbox" and data["payment"]["status"] == "pending"
    assert data["payment"]["client_secret"] is None
    assert request_payment["package"].startswith("prepay_id=sandbox_")
    assert request_payment["signType"] == "RSA"
    assert request_payment["paySign"] == sandbox.pay_sign(
        timestamp=request_payment["timeStamp"],
        nonce=request_payment["nonceStr"],
        package=request_payment["package"],
    )

    with django_capture_on_commit_callbacks() as queued:
        response = pay(shop["member"], data["id"])
    assert response.status_code == 202 and body(response)["trade_state"] == "SUCCESS"
    assert Order.objects.get(pk=data["id"]).status == Order.Status.PENDING_PAYMENT  # not until notified
    assert len(queued) == 1
    queued[0]()

    order = Order.objects.get(pk=data["id"])
    payment = order.payments.get()
    assert order.status == Order.Status.PAID and order.amount_paid == Decimal("119.80")
    assert payment.status == Payment.Status.SUCCEEDED and payment.provider_ref.startswith("sandbox_tx_")
    event = WebhookEvent.objects.get(provider="sandbox")
    assert event.type == "TRANSACTION.SUCCESS" and event.outcome == WebhookEvent.Outcome.APPLIED
    fetched = sandbox.SandboxProvider().fetch_payment(handle=PaymentHandle.of(payment))
    assert (fetched.status, fetched.amount_received, fetched.ref) == (
        "succeeded",
        order.total,
        payment.provider_ref,
    )


def test_a_paid_join_activates_the_membership_through_the_sandbox(django_capture_on_commit_callbacks):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=Decimal("199.00"))
    user = UserFactory()
    response = client_for(user).post(
        f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    data = body(response)
    assert data["payment"]["provider"] == "sandbox"  # the default when nothing else is configured

    with django_capture_on_commit_callbacks(execute=True):
        assert pay(user, data["payment"]["order_id"]).status_code == 202

    assert Membership.objects.get(user=user, community=community).status == Membership.Status.ACTIVE


def test_an_owner_refund_is_pending_until_the_sandbox_settles_it(shop, django_capture_on_commit_callbacks):
    data = order_with_sandbox(shop)
    with django_capture_on_commit_callbacks(execute=True):
        pay(shop["member"], data["id"])

    with django_capture_on_commit_callbacks() as queued:
        response = refund_as_owner(shop["community"].owner, data["id"], amount="59.90")
    assert response.status_code == 201, response.content
    refund = Refund.objects.get(order_id=data["id"])
    assert refund.status == Refund.Status.PENDING and refund.provider_ref.startswith("sandbox_rf_")
    assert SandboxRefund.objects.get().state == SandboxRefund.State.PROCESSING
    for callback in queued:
        callback()

    refund.refresh_from_db()
    order = Order.objects.get(pk=data["id"])
    assert refund.status == Refund.Status.SUCCEEDED
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.amount_refunded == Decimal("59.90")
    fetched = sandbox.SandboxProvider().fetch_refund(
        handle=PaymentHandle.of(refund.payment), refund=RefundHandle(reference=refund.reference, ref="")
    )
    assert (fetched.status, fetched.amount, fetched.ref) == (
        "succeeded",
        Decimal("59.90"),
        refund.provider_ref,
    )


def test_the_sandbox_refuses_to_refund_more_than_was_paid(shop, django_capture_on_commit_callbacks):
    data = order_with_sandbox(shop, quantity=1)
    with django_capture_on_commit_callbacks(execute=True):
        pay(shop["member"], data["id"])
    payment = Payment.objects.get(order_id=data["id"])
    provider = sandbox.SandboxProvider()
    handle = PaymentHandle.of(payment)
    with django_capture_on_commit_callbacks():
        provider.refund(
            handle=handle,
            refund=RefundHandle("Rone", ""),
            amount=Decimal("50"),
            idempotency_key="",
            reason="",
            metadata={},
        )
        with pytest.raises(sandbox.base.ProviderRefused):
            provider.refund(
                handle=handle,
                refund=RefundHandle("Rtwo", ""),
                amount=Decimal("10"),
                idempotency_key="",
                reason="",
                metadata={},
            )
        again = provider.refund(
            handle=handle,
            refund=RefundHandle("Rone", ""),
            amount=Decimal("50"),
            idempotency_key="",
            reason="",
            metadata={},
        )
    assert again.amount == Decimal("50") and SandboxRefund.objects.count() == 1


def _paid_notification(shop, django_capture_on_commit_callbacks) -> tuple[int, bytes]:
    data = order_with_sandbox(shop)
    with django_capture_on_commit_callbacks():  # paid at the sandbox, notification not sent
        pay(shop["member"], data["id"])
    reference = Payment.objects.get(order_id=data["id"]).reference
    return data["id"], sandbox.notification(event_type=sandbox.TRANSACTION_SUCCESS, reference=reference)


def post_notification(payload: bytes, headers: dict):
    meta = {f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()}
    return client_for(UserFactory()).post(NOTIFY_URL, payload, content_type="application/json", **meta)


def test_duplicate_notifications_are_applied_once(shop, django_capture_on_commit_callbacks):
    order_id, payload = _paid_notification(shop, django_capture_on_commit_callbacks)

    first = post_notification(payload, sandbox.sign_notification(payload))
    second = post_notification(payload, sandbox.sign_notification(payload))

    assert first.status_code == second.status_code == 204 and first.content == b""
    event = WebhookEvent.objects.get(provider="sandbox")
    assert event.delivery_count == 2 and event.outcome == WebhookEvent.Outcome.APPLIED
    assert Order.objects.get(pk=order_id).status == Order.Status.PAID
    assert Payment.objects.filter(order_id=order_id, status=Payment.Status.SUCCEEDED).count() == 1


def _forged(headers: dict) -> dict:
    return {**headers, "Sandbox-Signature": base64.b64encode(b"x" * 32).decode()}


@pytest.mark.parametrize(
    "tamper",
    [
        "signature",
        "stale",
        "future",
        "serial",
        "body",
        "missing",
    ],
)
def test_forged_or_stale_notifications_are_refused_and_nothing_is_stored(
    shop, django_capture_on_commit_callbacks, tamper
):
    import time

    order_id, payload = _paid_notification(shop, django_capture_on_commit_callbacks)
    headers = sandbox.sign_notification(payload)
    if tamper == "signature":
        headers = _forged(headers)
    elif tamper == "stale":
        headers = sandbox.sign_notification(payload, timestamp=int(time.time()) - 301)
    elif tamper == "future":
        headers = sandbox.sign_notification(payload, timestamp=int(time.time()) + 301)
    elif tamper == "serial":
        headers["Sandbox-Serial"] = "SANDBOX_OTHER"
    elif tamper == "body":
        payload = payload.replace(b'"total":11980', b'"total":1')
    else:
        headers.pop("Sandbox-Signature")

    response = post_notification(payload, headers)

    assert response.status_code == 400 and body(response)["code"] == "FAIL"
    assert not WebhookEvent.objects.exists()
    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING_PAYMENT


def test_a_notification_signed_with_another_secret_key_is_refused(
    shop, django_capture_on_commit_callbacks, settings
):
    order_id, payload = _paid_notification(shop, django_capture_on_commit_callbacks)
    key = hashlib.sha256(b"guess").digest()
    headers = sandbox.sign_notification(payload)
    message = f"{headers['Sandbox-Timestamp']}\n{headers['Sandbox-Nonce']}\n{payload.decode()}\n"
    headers["Sandbox-Signature"] = base64.b64encode(
        hmac.new(key, message.encode(), hashlib.sha256).digest()
    ).decode()

    assert post_notification(payload, headers).status_code == 400
    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING_PAYMENT


def test_only_the_buyer_pays_and_only_while_the_order_waits(shop, django_capture_on_commit_callbacks):
    data = order_with_sandbox(shop)
    assert pay(UserFactory(), data["id"]).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):  # the cancellation closes the sandbox trade
        client_for(shop["member"]).post(f"/api/v1/orders/{data['id']}/cancel/")
    trade = SandboxTrade.objects.get()
    assert trade.state == SandboxTrade.State.CLOSED

    with django_capture_on_commit_callbacks(execute=True):
        response = pay(shop["member"], data["id"])
    assert response.status_code == 409 and body(response)["error"]["code"] == "payment_not_payable"
    with pytest.raises(sandbox.SandboxRefused):
        sandbox.sandbox_pay(reference=trade.out_trade_no, payer_id=shop["member"].pk)
    assert Order.objects.get(pk=data["id"]).status == Order.Status.CANCELLED
    assert not WebhookEvent.objects.exists()


def test_the_sandbox_endpoints_do_not_exist_when_it_is_off(shop, settings):
    data = order_with_sandbox(shop)
    settings.PAYMENT_SANDBOX_ENABLED = False
    assert pay(shop["member"], data["id"]).status_code == 404
    payload = json.dumps({"id": "x"}).encode()
    assert post_notification(payload, sandbox.sign_notification(payload)).status_code == 404


def test_check_deploy_fails_when_the_sandbox_is_on_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(SystemCheckError, match=r"commerce\.E002"):
        call_command("check", "--deploy", "--tag", "security")
    settings.PAYMENT_SANDBOX_ENABLED = False
    settings.DEBUG = False
    from commerce.payments.checks import sandbox_payments_off_in_production

    assert sandbox_payments_off_in_production(None) == []


def test_paying_again_sends_the_same_notification_again_applied_once(
    shop, django_capture_on_commit_callbacks
):
    data = order_with_sandbox(shop)
    with django_capture_on_commit_callbacks(execute=True):
        pay(shop["member"], data["id"])
    points = shop["member"].memberships.get().points

    with django_capture_on_commit_callbacks(execute=True):
        again = pay(shop["member"], data["id"])

    assert again.status_code == 202 and body(again)["order_status"] == "paid"
    event = WebhookEvent.objects.get(provider="sandbox")
    assert event.delivery_count == 2
    assert shop["member"].memberships.get().points == points  # nothing applied twice
