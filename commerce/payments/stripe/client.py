"""Stripe behind the provider interface. The only module that imports ``stripe``.

Settings are read at call time (never at import): ``STRIPE_SECRET_KEY``,
``STRIPE_API_BASE`` (tests point it at a local Stripe-compatible server),
``STRIPE_MAX_NETWORK_RETRIES``, ``STRIPE_TIMEOUT_SECONDS`` and
``STRIPE_WEBHOOK_SECRET``. Every write carries an idempotency key, so the
library's own retries and ours can never charge or refund twice.
"""

from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache

import stripe
from django.conf import settings

from commerce.payments import base
from commerce.payments.stripe import webhooks
from commerce.pricing import from_minor_units, to_minor_units

PAYMENT_METHOD_TYPES = ["card", "alipay", "wechat_pay"]

_PAYMENT_STATUS = {
    "succeeded": "succeeded",
    "canceled": "canceled",
    # requires_payment_method, requires_confirmation, requires_action, processing, requires_capture
}
_RETRYABLE = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)


@lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, max_network_retries: int, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=max_network_retries,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise base.ProviderUnavailable("STRIPE_SECRET_KEY is not set: online payments are off.")
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


def _call(function, *args, **kwargs):
    """Run a Stripe call, turning its errors into the provider interface's two kinds."""
    try:
        return function(*args, **kwargs)
    except _RETRYABLE as exc:
        raise base.ProviderUnavailable(str(exc.user_message or exc)) from exc
    except stripe.StripeError as exc:
        raise base.ProviderRefused(str(exc.user_message or exc)) from exc


def _payment(intent) -> base.ProviderPayment:
    data = intent.to_dict()
    return base.ProviderPayment(
        ref=data["id"],
        client_secret=data.get("client_secret") or "",
        status=_PAYMENT_STATUS.get(data.get("status"), "pending"),
        amount=from_minor_units(data["amount"]),
        currency=data["currency"].upper(),
        amount_received=from_minor_units(data.get("amount_received") or 0),
        raw=data,
    )


class StripeProvider:
    name = "stripe"

    def create_payment(
        self, *, order_id: int, amount: Decimal, currency: str, idempotency_key: str, description: str
    ) -> base.ProviderPayment:
        params = {
            "amount": to_minor_units(amount),
            "currency": currency.lower(),
            "metadata": {"order_id": str(order_id)},
            "payment_method_types": PAYMENT_METHOD_TYPES,
            "description": description[:1000],
        }
        options = {"idempotency_key": idempotency_key}
        intent = _call(stripe_client().v1.payment_intents.create, params=params, options=options)
        return _payment(intent)

    def refund(
        self,
        *,
        payment_ref: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        reason: str,
        metadata: Mapping[str, str],
    ) -> base.ProviderRefund:
        params = {
            "payment_intent": payment_ref,
            "amount": to_minor_units(amount),
            "reason": "requested_by_customer",
            "metadata": {**metadata, "note": reason[:400]},
        }
        options = {"idempotency_key": idempotency_key}
        refund = _call(stripe_client().v1.refunds.create, params=params, options=options)
        return webhooks.refund_from_object(refund.to_dict())

    def cancel_payment(self, *, payment_ref: str, idempotency_key: str) -> base.ProviderPayment:
        intent = _call(
            stripe_client().v1.payment_intents.cancel,
            payment_ref,
            params={"cancellation_reason": "abandoned"},
            options={"idempotency_key": idempotency_key},
        )
        return _payment(intent)

    def fetch_payment(self, *, payment_ref: str) -> base.ProviderPayment:
        return _payment(_call(stripe_client().v1.payment_intents.retrieve, payment_ref))

    def fetch_refunds(self, *, payment_ref: str) -> list[base.ProviderRefund]:
        page = _call(stripe_client().v1.refunds.list, params={"payment_intent": payment_ref, "limit": 100})
        return [webhooks.refund_from_object(refund.to_dict()) for refund in page.data]

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        signature = headers.get("Stripe-Signature") or headers.get("stripe-signature")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except (ValueError, KeyError, TypeError, AttributeError, stripe.SignatureVerificationError) as exc:
            raise base.InvalidWebhook(str(exc)) from exc
        return webhooks.delivery_from_event(webhooks.decode_event(payload))
