"""Stripe behind the provider interface. The only module that imports ``stripe``.

Settings are read at call time (never at import): ``STRIPE_SECRET_KEY``,
``STRIPE_API_BASE`` (tests point it at a local Stripe-compatible server),
``STRIPE_MAX_NETWORK_RETRIES``, ``STRIPE_TIMEOUT_SECONDS``,
``STRIPE_PAYMENT_METHOD_TYPES`` and ``STRIPE_WEBHOOK_SECRET``. Every write carries an idempotency key, so the
library's own retries and ours can never charge or refund twice.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache

import stripe
from django.conf import settings

from commerce.payments import base
from commerce.payments.stripe import webhooks
from commerce.pricing import from_minor_units, to_minor_units

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
        raise base.ProviderRefused(str(exc.user_message or exc), code=str(exc.code or "")) from exc


def _payment(intent) -> base.ProviderPayment:
    data = intent.to_dict()
    return base.ProviderPayment(
        ref=data["id"],
        status=_PAYMENT_STATUS.get(data.get("status"), "pending"),
        amount=from_minor_units(data["amount"]),
        currency=data["currency"].upper(),
        amount_received=from_minor_units(data.get("amount_received") or 0),
        client={"client_secret": data.get("client_secret") or ""},
        raw=data,
    )


class StripeProvider:
    name = "stripe"
    pollable = True
    needs_wechat_identity = False

    def create_payment(
        self,
        *,
        handle: base.PaymentHandle,
        order_id: int,
        payer: base.Payer,
        description: str,
        expires_at: datetime | None,
        idempotency_key: str,
    ) -> base.ProviderPayment:
        params = {
            "amount": to_minor_units(handle.amount),
            "currency": handle.currency.lower(),
            "metadata": {"order_id": str(order_id), "payment_reference": handle.reference},
            "payment_method_types": list(settings.STRIPE_PAYMENT_METHOD_TYPES),
            "description": description[:1000],
        }
        options = {"idempotency_key": idempotency_key}
        intent = _call(stripe_client().v1.payment_intents.create, params=params, options=options)
        return _payment(intent)

    def client_payload(self, *, handle: base.PaymentHandle, client: Mapping) -> dict:
        return {"client_secret": client.get("client_secret") or None, "request_payment": None}

    def refund(
        self,
        *,
        handle: base.PaymentHandle,
        refund: base.RefundHandle,
        amount: Decimal,
        idempotency_key: str,
        reason: str,
        metadata: Mapping[str, str],
    ) -> base.ProviderRefund:
        params = {
            "payment_intent": handle.ref,
            "amount": to_minor_units(amount),
            "reason": "requested_by_customer",
            "metadata": {**metadata, "refund_reference": refund.reference, "note": reason[:400]},
        }
        options = {"idempotency_key": idempotency_key}
        created = _call(stripe_client().v1.refunds.create, params=params, options=options)
        return webhooks.refund_from_object(created.to_dict())

    def close_payment(self, *, handle: base.PaymentHandle, idempotency_key: str) -> None:
        _call(
            stripe_client().v1.payment_intents.cancel,
            handle.ref,
            params={"cancellation_reason": "abandoned"},
            options={"idempotency_key": idempotency_key},
        )

    def fetch_payment(self, *, handle: base.PaymentHandle) -> base.ProviderPayment:
        return _payment(_call(stripe_client().v1.payment_intents.retrieve, handle.ref))

    def fetch_refund(self, *, handle: base.PaymentHandle, refund: base.RefundHandle) -> base.ProviderRefund:
        if refund.ref:
            return webhooks.refund_from_object(
                _call(stripe_client().v1.refunds.retrieve, refund.ref).to_dict()
            )
        for state in self.fetch_refunds(handle=handle, known=[refund]):
            if state.reference == refund.reference:
                return state
        raise base.ProviderRefused(f"No refund {refund.reference} at Stripe.", code="resource_missing")

    def fetch_refunds(
        self, *, handle: base.PaymentHandle, known: list[base.RefundHandle]
    ) -> list[base.ProviderRefund]:
        page = _call(stripe_client().v1.refunds.list, params={"payment_intent": handle.ref, "limit": 100})
        return [webhooks.refund_from_object(item.to_dict()) for item in page.auto_paging_iter()]

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        signature = headers.get("Stripe-Signature") or headers.get("stripe-signature")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except (ValueError, KeyError, TypeError, AttributeError, stripe.SignatureVerificationError) as exc:
            raise base.InvalidWebhook(str(exc)) from exc
        return webhooks.delivery_from_event(webhooks.decode_event(payload))
