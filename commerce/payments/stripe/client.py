"""Stripe behind the provider interface. The only module that imports ``stripe``.

Settings are read at call time (never at import): ``STRIPE_SECRET_KEY``,
``STRIPE_API_BASE`` (tests point it at a local Stripe-compatible server),
``STRIPE_MAX_NETWORK_RETRIES``, ``STRIPE_CONNECT_TIMEOUT_SECONDS``,
``STRIPE_TIMEOUT_SECONDS``, ``STRIPE_PAYMENT_METHOD_TYPES``,
``STRIPE_MINIMUM_AMOUNTS`` and ``STRIPE_WEBHOOK_SECRET``.

Every write carries the idempotency key stored on our row (a random UUID),
so the library's own retries and ours never charge or refund twice. Stripe
saves an executed request's answer under its key, errors and 500s included,
and replays it for 24 hours: such an answer is raised with ``key_spent`` and
the services try again under a fresh key (see ``payment_start``,
``refund_send``).

Time: every call runs under ``base.provider_deadline``; each try's connect and
read timeouts are cut to what is left of it, and the library retries only
while a try still fits, so a request never outlives the web worker.
"""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

import requests
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
# A try is only started (or retried) if at least this much of the deadline is left.
MIN_TRY_SECONDS = 1.0
# [Stripe: currencies, minimum charge amounts] in the currency's major units; a currency not listed
# must convert to at least 0.50 USD: STRIPE_MINIMUM_AMOUNTS sets those (CNY defaults to 4.00).
MINIMUM_AMOUNTS = {
    "USD": "0.50", "AED": "2.00", "AUD": "0.50", "BGN": "1.00", "BRL": "0.50", "CAD": "0.50",
    "CHF": "0.50", "CZK": "15.00", "DKK": "2.50", "EUR": "0.50", "GBP": "0.30", "HKD": "4.00",
    "HUF": "175.00", "INR": "0.50", "JPY": "50", "MXN": "10.00", "MYR": "2.00", "NOK": "3.00",
    "NZD": "0.50", "PLN": "2.00", "RON": "2.00", "SEK": "3.00", "SGD": "0.50", "THB": "10.00",
}  # fmt: skip


class _RequestsReadingTheEnvironmentOnce:
    """``requests`` whose sessions take the proxy settings (``HTTPS_PROXY``, ``NO_PROXY``, ...) for
    Stripe's address once, when the client is made, instead of scanning the environment (and looking
    for a ``.netrc``) on every call: the same proxy, a fraction of a millisecond less per call."""

    def __init__(self, api_base: str):
        self._proxies = requests.utils.get_environ_proxies(api_base)

    def Session(self) -> requests.Session:  # the name the library calls
        session = requests.Session()
        session.trust_env = False
        session.proxies.update(self._proxies)
        return session

    def __getattr__(self, name):
        return getattr(requests, name)


class BoundedRequestsClient(stripe.RequestsClient):
    """The library's HTTP client with each try cut to the time left before ``base.provider_deadline``."""

    def __init__(self, *, connect: float, read: float, api_base: str):
        self._limits = (connect, read)
        super().__init__(timeout=(connect, read), _lib=_RequestsReadingTheEnvironmentOnce(api_base))

    @property
    def _timeout(self) -> tuple[float, float]:
        connect, read = self._limits
        left = base.time_left()
        if left is None:
            return connect, read
        left = max(left, 0.01)
        return min(connect, left), min(read, left)

    @_timeout.setter
    def _timeout(self, value) -> None:  # set by the library's constructor: the limits rule
        pass

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):
        left = base.time_left()
        backoff = min(self.INITIAL_DELAY * 2**num_retries, self.MAX_DELAY)
        if left is not None and left < backoff + MIN_TRY_SECONDS:
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)


@lru_cache(maxsize=8)
def _client(
    api_key: str, api_base: str, max_network_retries: int, connect: float, read: float
) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=max_network_retries,
        http_client=BoundedRequestsClient(connect=connect, read=read, api_base=api_base),
    )


def stripe_client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise base.ProviderUnavailable("STRIPE_SECRET_KEY is not set: online payments are off.")
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_MAX_NETWORK_RETRIES,
        settings.STRIPE_CONNECT_TIMEOUT_SECONDS,
        settings.STRIPE_TIMEOUT_SECONDS,
    )


def _key_spent(exc: stripe.StripeError) -> bool:
    """Whether Stripe may have saved this answer under the idempotency key (and would replay it).

    Stripe saves the answer of every request whose endpoint started, 500s
    included, and then says ``Stripe-Should-Retry: false``; not a refusal
    before it (rate limits, a key in use by a request still running: 409), nor
    a gateway's 502-504 that never reached it. A fresh key for a request that
    was never saved costs nothing.
    """
    status = exc.http_status or 0
    headers = {str(name).lower(): str(value) for name, value in (exc.headers or {}).items()}
    should_retry = headers.get("stripe-should-retry", "").lower()
    if status >= 500:
        return status == 500 or should_retry == "false"
    return 400 <= status < 500 and status not in (409, 429)


def _call(function, *args, **kwargs):
    """Run a Stripe call within the deadline, turning its errors into the interface's two kinds."""
    with base.provider_deadline():
        left = base.time_left()
        if left is not None and left < MIN_TRY_SECONDS:
            raise base.ProviderUnavailable("No time left for another call to Stripe.")
        try:
            return function(*args, **kwargs)
        except _RETRYABLE as exc:
            raise base.ProviderUnavailable(str(exc.user_message or exc), key_spent=_key_spent(exc)) from exc
        except stripe.StripeError as exc:
            raise base.ProviderRefused(
                str(exc.user_message or exc), code=str(exc.code or ""), key_spent=_key_spent(exc)
            ) from exc


def minimum_amount(currency: str) -> Decimal:
    """The smallest payment Stripe takes in ``currency`` (settings override the documented table)."""
    configured = {key.upper(): value for key, value in settings.STRIPE_MINIMUM_AMOUNTS.items()}
    return Decimal(configured.get(currency.upper()) or MINIMUM_AMOUNTS.get(currency.upper(), "0.50"))


def _payment(data: Mapping) -> base.ProviderPayment:
    """The interface's view of a PaymentIntent (its JSON)."""
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
    # The PaymentIntent id is known from the creation's answer: an event naming our reference
    # with another intent is about an orphan of a retried creation.
    refs_known_at_creation = True

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
            # The API versions the pinned library speaks refuse ``payment_method_types``.
            "allowed_payment_method_types": list(settings.STRIPE_PAYMENT_METHOD_TYPES),
            "description": description[:1000],
        }
        # The library's raw request (same transport, retries, headers and errors) answers with the
        # JSON; the typed call would build a StripeObject of it, a third of the call's CPU.
        created = _call(
            stripe_client().raw_request,
            "post",
            "/v1/payment_intents",
            idempotency_key=idempotency_key,
            **params,
        )
        return _payment(created.data)

    def minimum_amount(self, currency: str) -> Decimal:
        return minimum_amount(currency)

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
        return _payment(_call(stripe_client().v1.payment_intents.retrieve, handle.ref).to_dict())

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

    def fetch_dispute(self, *, handle: base.PaymentHandle, dispute_ref: str) -> base.ProviderDispute:
        return dispute_from_object(_call(stripe_client().v1.disputes.retrieve, dispute_ref).to_dict())

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        signature = headers.get("Stripe-Signature") or headers.get("stripe-signature")
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, settings.STRIPE_WEBHOOK_SECRET, stripe.Webhook.DEFAULT_TOLERANCE
            )
        except (ValueError, KeyError, TypeError, AttributeError, stripe.SignatureVerificationError) as exc:
            raise base.InvalidWebhook(str(exc)) from exc
        return webhooks.delivery_from_event(webhooks.decode_event(payload))


# Dispute statuses in which the merchant still acts or waits ([spec] dispute.status).
_OPEN_DISPUTE = {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}


def dispute_from_object(dispute: dict) -> base.ProviderDispute:
    """A dispute as Stripe returns it: the money is out while a withdrawal is not reinstated.

    ``balance_transactions`` holds zero (an inquiry), one (withdrawn) or two
    (withdrawn and reinstated) movements; a lost dispute keeps the money out,
    a won one gives it back.
    """
    status = str(dispute.get("status") or "")
    moves = [
        txn.get("amount") or 0 for txn in dispute.get("balance_transactions") or [] if isinstance(txn, dict)
    ]
    if status == "lost":
        withdrawn = True
    elif status == "won":
        withdrawn = False
    else:
        withdrawn = any(amount < 0 for amount in moves) and not any(amount > 0 for amount in moves)
    due = (dispute.get("evidence_details") or {}).get("due_by")
    return base.ProviderDispute(
        ref=dispute["id"],
        payment_ref=webhooks.id_of(dispute.get("payment_intent")),
        status=status,
        reason=str(dispute.get("reason") or ""),
        amount=webhooks.minor_units(dispute.get("amount") or 0),
        currency=str(dispute.get("currency") or "").upper(),
        withdrawn=withdrawn,
        open=status in _OPEN_DISPUTE,
        evidence_due_by=datetime.fromtimestamp(due, tz=UTC) if isinstance(due, int) else None,
        raw=dispute,
    )
