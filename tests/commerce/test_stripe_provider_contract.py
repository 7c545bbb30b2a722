"""Every call our Stripe provider makes is one Stripe takes, on the API version the library pins.

The local server here tolerates nothing, like the commerce fixture.
"""

from decimal import Decimal

import pytest

from commerce.payments import base
from commerce.payments.stripe.client import StripeProvider
from tests.commerce.stripe_server import FakeStripe

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(settings):
    server = FakeStripe()
    settings.STRIPE_API_BASE = server.start()
    settings.STRIPE_SECRET_KEY = "sk_test_strict"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    yield server
    server.stop()


def _intent(server) -> str:
    """A PaymentIntent made as Stripe's dashboard would (not by our provider)."""
    with server.lock:
        return server._create_intent({"amount": "9900", "currency": "cny", "metadata": {"order_id": "5"}})[
            "id"
        ]


def _handle(ref: str = "", *, amount: str = "99.00") -> base.PaymentHandle:
    return base.PaymentHandle(reference="P0123456789abcdef", ref=ref, amount=Decimal(amount), currency="CNY")


def test_creating_a_payment_sends_only_what_stripe_takes(strict):
    payment = StripeProvider().create_payment(
        handle=_handle(),
        order_id=5,
        payer=base.Payer(user_id=1),
        description="订单 5",
        expires_at=None,
        idempotency_key="k-create",
    )

    assert payment.ref in strict.payment_intents and payment.amount == Decimal("99.00")
    assert strict.payment_intents[payment.ref]["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert strict.tolerated == [] and {c["status"] for c in strict.requests} == {200}


def test_refunds_cancels_and_fetches_send_only_what_stripe_takes(strict):
    provider = StripeProvider()
    paid, open_ = _intent(strict), _intent(strict)
    strict.succeed(paid)

    refund = provider.refund(
        handle=_handle(paid),
        refund=base.RefundHandle(reference="R0123456789abcdef", ref=""),
        amount=Decimal("10.00"),
        idempotency_key="k-refund",
        reason="质量问题" * 200,
        metadata={"refund_id": "3", "order_id": "5"},
    )
    provider.close_payment(handle=_handle(open_), idempotency_key="k-cancel")

    assert refund.status == "succeeded" and refund.local_id == 3 and refund.amount == Decimal("10.00")
    assert strict.payment_intents[open_]["status"] == "canceled"
    assert provider.fetch_payment(handle=_handle(paid)).status == "succeeded"
    assert [r.ref for r in provider.fetch_refunds(handle=_handle(paid), known=[])] == [refund.ref]
    assert {c["status"] for c in strict.requests} == {200} and len(strict.requests) == 4


def test_a_dispute_is_fetched_with_what_stripe_takes(strict):
    paid = _intent(strict)
    strict.succeed(paid)
    dispute = strict.open_dispute(paid, amount=4000)

    state = StripeProvider().fetch_dispute(handle=_handle(paid), dispute_ref=dispute["id"])

    assert (state.ref, state.payment_ref, state.amount, state.currency) == (
        dispute["id"],
        paid,
        Decimal("40.00"),
        "CNY",
    )
    assert state.withdrawn and state.open and state.status == "needs_response"
    assert {c["status"] for c in strict.requests} == {200}
