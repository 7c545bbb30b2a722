"""Starting payments at Stripe (the local Stripe-compatible server): what is sent, retries, outages."""

from decimal import Decimal

import pytest

from commerce.models import Order, Payment, Sku
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, place_order
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    community = CommunityFactory()
    return {
        "community": community,
        "sku": SkuFactory(product=ProductFactory(community=community), price=Decimal("123.45"), stock=10),
        "member": MembershipFactory(community=community).user,
    }


def test_the_payment_intent_carries_amount_in_fen_currency_metadata_methods_and_a_key(shop, stripe):
    data = body(place_order(shop["member"], shop["community"], [(shop["sku"], 2)]))

    [call] = stripe.calls("POST", "/v1/payment_intents")
    assert call["params"]["amount"] == "24690"
    assert call["params"]["currency"] == "cny"
    payment = Payment.objects.get(order_id=data["id"])
    assert call["params"]["metadata"] == {"order_id": str(data["id"]), "payment_reference": payment.reference}
    assert call["params"]["payment_method_types"] == ["card", "alipay", "wechat_pay"]
    assert call["idempotency_key"] == str(payment.idempotency_key)  # random, kept on our row
    assert payment.provider == "stripe" and payment.status == Payment.Status.PENDING
    assert payment.provider_ref == stripe.payment_intents[payment.provider_ref]["id"]
    assert data["payment"] == {
        "order_id": data["id"],
        "provider": "stripe",
        "status": "pending",
        "client_secret": stripe.payment_intents[payment.provider_ref]["client_secret"],
        "request_payment": None,
        "amount": "246.90",
        "currency": "CNY",
    }


# KNOWN PRODUCTION GAP (issue 14): Stripe saves a 500 under its idempotency key and replays it for
# 24 h (saying Stripe-Should-Retry: false), so neither the library's retry nor ours with the same
# key `order-<id>-pi` can succeed; the provider must start a new attempt with a fresh key.
# Remove the mark when commerce/payments/stripe/client.py does (strict: it fails once fixed).
@pytest.mark.xfail(strict=True, reason="issue 14: a saved 500 is replayed under the same idempotency key")
def test_a_5xx_from_stripe_is_retried_by_the_library_with_the_same_key(shop, stripe):
    stripe.fail_next(500)

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1)])

    assert response.status_code == 201
    calls = stripe.calls("POST", "/v1/payment_intents")
    assert len(calls) == 2 and calls[0]["idempotency_key"] == calls[1]["idempotency_key"]
    assert len(stripe.payment_intents) == 1


def test_when_stripe_is_down_the_order_is_kept_and_a_retry_with_the_same_key_pays(shop, stripe):
    stripe.fail_next(503, 503)

    failed = place_order(shop["member"], shop["community"], [(shop["sku"], 3)], key="retry-me")

    assert failed.status_code == 503
    assert body(failed)["error"]["code"] == "payment_provider_unavailable"
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 7  # held until the hold expires or a retry pays

    retried = place_order(shop["member"], shop["community"], [(shop["sku"], 3)], key="retry-me")

    assert retried.status_code == 201, retried.content  # the order the first request created
    assert body(retried)["id"] == order.pk and body(retried)["payment"]["client_secret"]
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 7 and Order.objects.count() == 1
    assert {c["idempotency_key"] for c in stripe.calls("POST", "/v1/payment_intents")} == {
        str(Payment.objects.get(order=order).idempotency_key)
    }
    assert len(stripe.payment_intents) == 1


def test_when_stripe_cannot_be_reached_the_answer_is_503_json(shop, stripe, settings):
    stripe.stop()
    settings.STRIPE_MAX_NETWORK_RETRIES = 0

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1)])

    assert response.status_code == 503 and body(response)["error"]["code"] == "payment_provider_unavailable"
    assert Order.objects.get().status == Order.Status.PENDING_PAYMENT


def test_when_stripe_refuses_the_request_the_answer_is_502_json(shop, stripe, settings):
    settings.STRIPE_SECRET_KEY = "rk_wrong"

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1)])

    assert response.status_code == 502 and body(response)["error"]["code"] == "payment_provider_unavailable"
    assert Payment.objects.get().status == Payment.Status.CREATING


def test_the_order_list_gives_a_pending_order_its_client_secret_again(shop, stripe):
    from tests.conftest import client_for

    created = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))

    listed = body(client_for(shop["member"]).get("/api/v1/orders/"))["results"][0]

    assert listed["payment"] == created["payment"] and listed["status"] == "pending_payment"


def test_without_a_stripe_key_online_payment_is_off_and_answers_503_at_once(shop, stripe, settings):
    settings.STRIPE_SECRET_KEY = ""

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1)])

    assert response.status_code == 503 and not stripe.requests
