"""The payment provider interface: what commerce needs from WeChat Pay, Stripe or any other.

Commerce's services speak only these types. A provider lives in its own
package (``commerce/payments/<name>/``) with the SDK calls in one module, and
is registered in ``PROVIDERS``. Notifications (webhooks) are translated into
the provider-neutral *facts* below, which ``commerce.services.payments``
applies.

A payment is found at its provider by a ``PaymentHandle``: our reference
(WeChat's ``out_trade_no``; Stripe's metadata), the provider's own reference
once known (a PaymentIntent id, a ``transaction_id``), and whose merchant
account holds the money (a partner-mode ``sub_mchid``). What the client
needs to pay is a provider-shaped dict (``client_payload``), never a bare
secret string.
"""

import contextvars
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

PROVIDERS = {
    "wechatpay": "commerce.payments.wechatpay.provider.WechatPayProvider",
    "stripe": "commerce.payments.stripe.client.StripeProvider",
    "sandbox": "commerce.payments.sandbox.SandboxProvider",
    "offline": "commerce.payments.offline.OfflineProvider",
}
# Providers a member may choose in ``POST /orders/`` and ``.../join/`` (offline is staff-recorded).
ONLINE_PROVIDERS = ("wechatpay", "stripe", "sandbox")
SHOWN_PROVIDERS = (*ONLINE_PROVIDERS, "offline")  # what a ``<payment>`` may name


class ProviderUnavailable(Exception):
    """The provider did not answer, timed out or failed on its side: retrying may work.

    ``key_spent``: the provider saved this answer under the idempotency key and
    would replay it (Stripe keeps a 500 for 24 h): the next try needs a fresh key.
    """

    def __init__(self, message: str = "", *, key_spent: bool = False):
        super().__init__(message)
        self.key_spent = key_spent


class ProviderRefused(Exception):
    """The provider answered and refused the request (bad parameters, keys, state).

    ``key_spent`` as for ``ProviderUnavailable``: a refusal may be saved under the key too.
    """

    def __init__(self, message: str = "", *, code: str = "", key_spent: bool = False):
        super().__init__(message)
        self.code = code
        self.key_spent = key_spent


# --- Time budget ------------------------------------------------------------------------------

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("provider_deadline", default=None)


@contextmanager
def provider_deadline(seconds: float | None = None) -> Iterator[float]:
    """Bound the total time of the provider calls made inside (connects, reads, retries, backoff).

    ``seconds`` defaults to ``PAYMENT_PROVIDER_TIMEOUT_SECONDS``; nested, the
    earlier deadline wins, so one request of ours never waits on providers
    for longer than that in all, well inside the web worker's timeout.
    Yields the deadline (``time.monotonic()`` seconds).
    """
    seconds = settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS if seconds is None else seconds
    outer = _deadline.get()
    deadline = time.monotonic() + seconds
    if outer is not None:
        deadline = min(outer, deadline)
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def time_left() -> float | None:
    """Seconds left before the current deadline (None outside ``provider_deadline``)."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


class InvalidWebhook(Exception):
    """A delivery that is not signed by the provider, or not parseable."""


@dataclass(frozen=True)
class Payer:
    """Who pays: the provider takes what it needs (WeChat Pay: the openid in our mini-program)."""

    user_id: int
    wechat_openid: str | None = None


@dataclass(frozen=True)
class PaymentHandle:
    """Our payment as a provider finds it."""

    reference: str  # ours: WeChat's out_trade_no, Stripe's metadata.payment_reference
    ref: str  # the provider's ("" until it is known)
    amount: Decimal
    currency: str
    sub_merchant: str = ""  # partner mode: the community's sub-merchant id

    @classmethod
    def of(cls, payment) -> "PaymentHandle":
        """The handle of one of our ``Payment`` rows."""
        return cls(
            reference=payment.reference,
            ref=payment.provider_ref,
            amount=payment.amount,
            currency=payment.currency,
            sub_merchant=payment.sub_merchant,
        )


@dataclass(frozen=True)
class RefundHandle:
    """Our refund as a provider finds it: our reference (WeChat's out_refund_no) and theirs."""

    reference: str
    ref: str


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider holds it. ``status`` is one of ``Payment.Status``'s values.

    ``client`` is what the provider wants kept for the client to pay later
    (Stripe: the ``client_secret``; WeChat Pay: the ``prepay_id`` and when it
    was issued); ``client_payload`` turns it into the contract's fields.
    """

    ref: str
    status: str
    amount: Decimal
    currency: str
    amount_received: Decimal = Decimal("0")
    client: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider holds it. ``status`` is one of ``Refund.Status``'s values.

    ``local_id`` is our ``Refund`` id when the provider echoes it back
    (metadata); ``reference`` our refund reference when it does (out_refund_no).
    ``attention``: what staff must do when the provider needs a person (WeChat
    Pay's ``ABNORMAL`` refund); the order is flagged for review with it.
    """

    ref: str
    status: str
    amount: Decimal
    currency: str
    local_id: int | None = None
    reference: str = ""
    failure_reason: str = ""
    attention: str = ""
    raw: dict = field(default_factory=dict, repr=False)


# --- Notification facts --------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentSucceeded:
    order_id: int | None
    payment_ref: str
    amount: Decimal
    currency: str
    payment_reference: str = ""


@dataclass(frozen=True)
class PaymentFailed:
    order_id: int | None
    payment_ref: str
    failure_code: str
    failure_message: str
    payment_reference: str = ""


@dataclass(frozen=True)
class PaymentCanceled:
    """The provider cancelled or closed the payment: the next attempt needs a new one."""

    order_id: int | None
    payment_ref: str
    payment_reference: str = ""


@dataclass(frozen=True)
class RefundsChanged:
    """Something happened to the refunds of a payment (Stripe: ``charge.refunded``, ``refund.*``).

    Deliveries can arrive in any order and carry stale snapshots, so the
    payload's details are not trusted: the current state is fetched from the
    provider (``fetch_payment``, ``fetch_refunds``) and applied.
    """

    order_id: int | None
    payment_ref: str
    payment_reference: str = ""


@dataclass(frozen=True)
class RefundSettled:
    """A signed, final refund state (WeChat Pay's ``REFUND.*``): applied as it says."""

    payment_ref: str
    payment_reference: str
    refund: ProviderRefund
    order_id: int | None = None


@dataclass(frozen=True)
class DisputeChanged:
    """A dispute (chargeback or inquiry) on the payment changed (Stripe: ``charge.dispute.*``).

    Like ``RefundsChanged``, only says *that* it changed: the dispute's current
    state is fetched (``fetch_dispute``) before it is applied.
    """

    order_id: int | None
    payment_ref: str
    dispute_ref: str
    payment_reference: str = ""


@dataclass(frozen=True)
class ProviderDispute:
    """A dispute as the provider holds it now.

    ``withdrawn``: the disputed amount has been taken from the merchant's
    balance and not given back (a chargeback pending or lost); False for an
    inquiry, a won dispute (funds reinstated) or one that moved no money.
    ``open``: the merchant still has to act (submit evidence) or wait.
    """

    ref: str
    payment_ref: str
    status: str
    reason: str
    amount: Decimal
    currency: str
    withdrawn: bool
    open: bool
    evidence_due_by: datetime | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TransferState:
    """A merchant transfer (WeChat Pay 商家转账) as the provider holds it: an answer, a query or a
    notification. ``state`` is WeChat's (``WAIT_USER_CONFIRM``, ``SUCCESS``, ``FAIL``, ``CANCELLED`` ...)."""

    reference: str  # our out_bill_no
    state: str
    ref: str = ""  # WeChat's transfer_bill_no
    amount: Decimal | None = None
    openid: str = ""
    package_info: str = ""
    fail_reason: str = ""
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class TransferFinished:
    """A signed notification that a merchant transfer reached its final state (MCHTRANSFER.BILL.FINISHED)."""

    transfer: TransferState


Fact = (
    PaymentSucceeded
    | PaymentFailed
    | PaymentCanceled
    | RefundsChanged
    | RefundSettled
    | DisputeChanged
    | TransferFinished
)


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified delivery: stored (decrypted, without secrets) whatever it says; ``fact`` may be None."""

    event_id: str
    type: str
    payload: dict
    fact: Fact | None


class PaymentProvider(Protocol):
    name: str
    # True if ``fetch_payment``/``fetch_refund`` can be polled (``run_jobs sync_payments``).
    pollable: bool
    # True if the payer must have a WeChat identity (``409 wechat_binding_required``).
    needs_wechat_identity: bool

    def create_payment(
        self,
        *,
        handle: PaymentHandle,
        order_id: int,
        payer: Payer,
        description: str,
        expires_at: datetime | None,
        idempotency_key: str,
    ) -> ProviderPayment:
        """Create (or, for a repeated idempotency key or reference, return) the payment to confirm."""

    def client_payload(self, *, handle: PaymentHandle, client: Mapping) -> dict:
        """The contract's client fields, freshly signed where the provider signs them:
        ``{"client_secret": str | None, "request_payment": dict | None}``."""

    def close_payment(self, *, handle: PaymentHandle, idempotency_key: str) -> None:
        """Cancel or close a payment the customer has not completed."""

    def fetch_payment(self, *, handle: PaymentHandle) -> ProviderPayment:
        """The payment as the provider holds it now."""

    def refund(
        self,
        *,
        handle: PaymentHandle,
        refund: RefundHandle,
        amount: Decimal,
        idempotency_key: str,
        reason: str,
        metadata: Mapping[str, str],
    ) -> ProviderRefund:
        """Refund ``amount`` of the payment (``handle.amount`` is its original total);
        a repeated idempotency key or reference returns the same refund."""

    def fetch_refund(self, *, handle: PaymentHandle, refund: RefundHandle) -> ProviderRefund:
        """One refund as the provider holds it now."""

    def fetch_refunds(self, *, handle: PaymentHandle, known: list[RefundHandle]) -> list[ProviderRefund]:
        """The payment's refunds as the provider holds them now (at least every ``known`` one)."""

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Verify a delivery and translate it; raise ``InvalidWebhook`` otherwise."""

    # Optional (Stripe): ``fetch_dispute(*, handle, dispute_ref) -> ProviderDispute`` and
    # ``minimum_amount(currency) -> Decimal`` (the smallest payment the provider accepts).
    # Optional: ``renew_client(*, handle, client, raw) -> dict | None``, a new client part when the
    # stored one is about to lapse (WeChat Pay's prepay id lives 2 hours), used by ``payment_refresh``.


def provider_actor(name: str) -> str:
    """The audit trail's actor for what a provider told us (``shequn_backend.audit.STRIPE`` ...)."""
    return f"provider:{name}"


def get_provider(name: str) -> PaymentProvider:
    return import_string(PROVIDERS[name])()


def provider_configured(name: str) -> bool:
    """Whether a provider has what it needs to take payments in this deployment."""
    if name == "wechatpay":
        partner_ready = settings.WECHATPAY_MODE != "partner" or bool(settings.WECHATPAY_SP_APPID)
        return bool(settings.WECHATPAY_MCHID and settings.WECHAT_APP_ID and partner_ready)
    if name == "stripe":
        return bool(settings.STRIPE_SECRET_KEY)
    if name == "sandbox":
        return settings.PAYMENT_SANDBOX_ENABLED
    return name == "offline"


def default_provider(community_provider: str = "", *, skip: tuple[str, ...] = ()) -> str:
    """The provider for a payment when the member names none.

    The community's own choice if it is configured, else ``PAYMENT_DEFAULT_PROVIDER``
    if set, else WeChat Pay whenever it is configured, then Stripe, then the sandbox
    (``skip``: providers this community cannot take).
    """
    for name in (community_provider, settings.PAYMENT_DEFAULT_PROVIDER, *ONLINE_PROVIDERS):
        if name and name not in skip and provider_configured(name):
            return name
    raise ProviderUnavailable("No payment provider is configured: online payments are off.")
