"""The steps of the buying flow, driven through the API and the local Stripe server like a client would."""

import json
from decimal import Decimal

from django.conf import settings
from django.urls import reverse
from rest_framework.test import APIClient

from commerce.models import Order, Payment
from tests.commerce.stripe_server import FakeStripe, sign
from tests.conftest import client_for

ORDERS_URL = "/api/v1/orders/"
WEBHOOK_URL = "/api/v1/payments/stripe/webhook/"


def place_order(user, community, lines, *, key: str | None = None, referral_code: str | None = None):
    """POST /orders/; ``lines`` is [(sku, quantity)]. Returns the response."""
    body = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": q} for sku, q in lines]}
    if referral_code is not None:
        body["referral_code"] = referral_code
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client_for(user).post(ORDERS_URL, body, format="json", **headers)


def deliver(stripe: FakeStripe, event_type: str, obj: dict, *, event_id: str | None = None, secret=None):
    """Deliver a webhook signed exactly as Stripe signs it; returns the response."""
    payload = stripe.event(event_type, obj, event_id=event_id)
    header = sign(payload, secret or settings.STRIPE_WEBHOOK_SECRET)
    return APIClient().post(
        WEBHOOK_URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


def deliver_events(stripe: FakeStripe, *types: str) -> list:
    """Deliver, in order, the events the local Stripe queued (of ``types`` if given); the responses."""
    return [deliver(stripe, event_type, obj) for event_type, obj in stripe.take_events(*types)]


def intent_of(order_id: int) -> str:
    return Payment.objects.get(order_id=order_id, provider="stripe").provider_ref


def pay(stripe: FakeStripe, order_id: int, *, event_id: str | None = None):
    """The customer pays and Stripe tells us: payment_intent.succeeded."""
    intent = stripe.succeed(intent_of(order_id))
    response = deliver(stripe, "payment_intent.succeeded", intent, event_id=event_id)
    assert response.status_code == 200, response.content
    return Order.objects.get(pk=order_id)


def refund_as_owner(owner, order_id: int, *, amount: str | None = None, key: str | None = None):
    body = {"reason": "质量问题"}
    if amount is not None:
        body["amount"] = amount
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    url = reverse("owner-order-refund", args=[order_id])
    return client_for(owner).post(url, body, format="json", **headers)


def charge_refunded(stripe: FakeStripe, order_id: int, *, event_id: str | None = None):
    """Stripe's charge.refunded delivery for the order's charge, as it stands now."""
    return deliver(stripe, "charge.refunded", stripe.charge_of(intent_of(order_id)), event_id=event_id)


def decimal(value) -> Decimal:
    return Decimal(str(value))


def body(response) -> dict:
    return json.loads(response.content)
