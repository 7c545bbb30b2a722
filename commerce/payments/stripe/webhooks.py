"""Translate Stripe event payloads (plain dicts, already verified) into provider-neutral facts.

Handled types: ``payment_intent.succeeded``, ``payment_intent.payment_failed``
and ``payment_intent.canceled`` (applied from the signed snapshot: their
effects are one-way), and
``charge.refunded`` with the refund events (``refund.created``,
``refund.updated``, ``refund.failed``, ``charge.refund.updated``), which only
say *that* refunds changed: the current state is fetched before it is applied.
The dispute events (``charge.dispute.created``, ``.updated``, ``.closed``,
``.funds_withdrawn``, ``.funds_reinstated``) likewise only say that a
dispute changed: it is fetched before it is applied.
Anything else is stored and acknowledged without a fact.

A signed payload is stored as PostgreSQL ``jsonb`` can hold it (no NUL, no
lone surrogate, no number beyond what our columns take): a 500 would make
Stripe retry it for days.
"""

import json
import math
from decimal import Decimal

from commerce.payments import base
from commerce.pricing import from_minor_units
from shequn_backend.api.parsers import json_depth_exceeds

# Stripe's events nest a handful of levels; amounts are minor units far below 10^15.
MAX_EVENT_DEPTH = 64
MAX_INTEGER_DIGITS = 15
# Our money columns hold 12 digits with 2 decimals.
MINOR_UNITS_LIMIT = 10**12

_REFUND_STATUS = {
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
    # pending, requires_action
}
REFUND_EVENT_TYPES = {
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
}
DISPUTE_EVENT_TYPES = {
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
}


def _order_id(metadata) -> int | None:
    value = (metadata or {}).get("order_id") if isinstance(metadata, dict) else None
    try:
        order_id = int(str(value))
    except (TypeError, ValueError):
        return None
    return order_id if order_id > 0 else None


def minor_units(value) -> Decimal:
    """An amount in minor units; one our money columns cannot hold makes the object malformed."""
    amount = int(value)
    if not 0 <= amount < MINOR_UNITS_LIMIT:
        raise ValueError("amount out of range")
    return from_minor_units(amount)


def id_of(value) -> str:
    """A Stripe reference that may be expanded (a dict) or not (its id)."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return str(value or "")


def refund_from_object(refund: dict) -> base.ProviderRefund:
    metadata = refund.get("metadata") or {}
    try:
        local_id = int(metadata.get("refund_id"))
    except (TypeError, ValueError):
        local_id = None
    return base.ProviderRefund(
        ref=refund["id"],
        reference=str(metadata.get("refund_reference") or ""),
        status=_REFUND_STATUS.get(refund.get("status"), "pending"),
        amount=minor_units(refund.get("amount") or 0),
        currency=str(refund.get("currency") or "").upper(),
        local_id=local_id,
        failure_reason=str(refund.get("failure_reason") or ""),
        raw=refund,
    )


def _reference(metadata) -> str:
    return str((metadata or {}).get("payment_reference") or "") if isinstance(metadata, dict) else ""


def _fact(event_type: str, obj: dict) -> base.Fact | None:
    if event_type == "payment_intent.succeeded":
        return base.PaymentSucceeded(
            order_id=_order_id(obj.get("metadata")),
            payment_ref=obj["id"],
            payment_reference=_reference(obj.get("metadata")),
            amount=minor_units(obj.get("amount_received") or obj.get("amount") or 0),
            currency=str(obj.get("currency") or "").upper(),
        )
    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        return base.PaymentFailed(
            order_id=_order_id(obj.get("metadata")),
            payment_ref=obj["id"],
            payment_reference=_reference(obj.get("metadata")),
            failure_code=str(error.get("decline_code") or error.get("code") or ""),
            failure_message=str(error.get("message") or ""),
        )
    if event_type == "payment_intent.canceled":
        return base.PaymentCanceled(
            order_id=_order_id(obj.get("metadata")),
            payment_ref=obj["id"],
            payment_reference=_reference(obj.get("metadata")),
        )
    if event_type in REFUND_EVENT_TYPES:
        payment_ref = id_of(obj.get("payment_intent"))
        if event_type == "charge.refunded" and not obj.get("paid"):
            return None
        if not payment_ref:
            return None
        return base.RefundsChanged(order_id=_order_id(obj.get("metadata")), payment_ref=payment_ref)
    if event_type in DISPUTE_EVENT_TYPES:
        payment_ref = id_of(obj.get("payment_intent"))
        if not payment_ref:
            return None
        # A dispute's metadata is the merchant's own, not the payment's: found by the intent.
        return base.DisputeChanged(order_id=None, payment_ref=payment_ref, dispute_ref=obj["id"])
    return None


def delivery_from_event(event: dict) -> base.WebhookDelivery:
    """The delivery with its fact; a malformed object of a handled type is stored without one."""
    event_type = str(event.get("type") or "")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    fact = None
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        try:
            fact = _fact(event_type, obj)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            fact = None
    return base.WebhookDelivery(event_id=event["id"], type=event_type, payload=event, fact=fact)


def decode_event(payload: bytes | str) -> dict:
    """The verified payload as a storable event; ``InvalidWebhook`` when it is not a Stripe event.

    Numbers too large for our columns (or ``jsonb``) are kept as their text,
    NUL and lone surrogates become U+FFFD, so the event is stored and answered.
    """
    try:
        event = json.loads(payload, parse_int=_integer, parse_float=_float, parse_constant=str)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError included
        raise base.InvalidWebhook("not JSON") from exc
    if not isinstance(event, dict) or json_depth_exceeds(event, MAX_EVENT_DEPTH):
        raise base.InvalidWebhook("not a Stripe event")
    event = _storable(event)
    if not isinstance(event.get("id"), str) or not event["id"]:
        raise base.InvalidWebhook("not a Stripe event")
    return event


def _integer(text: str) -> int | str:
    return int(text) if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS else text


def _float(text: str) -> float | str:
    value = float(text)
    return value if math.isfinite(value) else text


def _storable(value):
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable_text(key): _storable(item) for key, item in value.items()}
    return value


def _storable_text(text: str) -> str:
    if "\x00" not in text and text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
