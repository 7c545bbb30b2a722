"""The payment provider interface: what commerce needs from Stripe, WeChat Pay or any other.

Commerce's services speak only these types. A provider lives in its own
package (``commerce/payments/<name>/``) with the SDK calls in one module, and
is registered in ``PROVIDERS``. Webhook deliveries are translated into the
provider-neutral *facts* below, which ``commerce.services.payments`` applies.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from django.utils.module_loading import import_string

PROVIDERS = {
    "stripe": "commerce.payments.stripe.client.StripeProvider",
    "offline": "commerce.payments.offline.OfflineProvider",
}
DEFAULT_PROVIDER = "stripe"


class ProviderUnavailable(Exception):
    """The provider did not answer, timed out or failed on its side: retrying may work."""


class ProviderRefused(Exception):
    """The provider answered and refused the request (bad parameters, keys, state)."""


class InvalidWebhook(Exception):
    """A delivery that is not signed by the provider, or not parseable."""


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider holds it. ``status`` is one of ``Payment.Status``'s values."""

    ref: str
    client_secret: str
    status: str
    amount: Decimal
    currency: str
    amount_received: Decimal = Decimal("0")
    raw: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as the provider holds it. ``status`` is one of ``Refund.Status``'s values.

    ``local_id`` is our ``Refund`` id when the provider echoes it back (metadata).
    """

    ref: str
    status: str
    amount: Decimal
    currency: str
    local_id: int | None = None
    failure_reason: str = ""
    raw: dict = field(default_factory=dict, repr=False)


# --- Webhook facts ------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentSucceeded:
    order_id: int | None
    payment_ref: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class PaymentFailed:
    order_id: int | None
    payment_ref: str
    failure_code: str
    failure_message: str


@dataclass(frozen=True)
class RefundsChanged:
    """Something happened to the refunds of a payment (Stripe: ``charge.refunded``, ``refund.*``).

    Deliveries can arrive in any order and carry stale snapshots, so the
    payload's details are not trusted: the current state is fetched from the
    provider (``fetch_payment``, ``fetch_refunds``) and applied.
    """

    order_id: int | None
    payment_ref: str


Fact = PaymentSucceeded | PaymentFailed | RefundsChanged


@dataclass(frozen=True)
class WebhookDelivery:
    """A verified delivery: stored raw whatever it says; ``fact`` is None for types we do not handle."""

    event_id: str
    type: str
    payload: dict
    fact: Fact | None


class PaymentProvider(Protocol):
    name: str

    def create_payment(
        self, *, order_id: int, amount: Decimal, currency: str, idempotency_key: str, description: str
    ) -> ProviderPayment:
        """Create (or, for a repeated idempotency key, return) the payment the client will confirm."""

    def refund(
        self,
        *,
        payment_ref: str,
        amount: Decimal,
        currency: str,
        idempotency_key: str,
        reason: str,
        metadata: Mapping[str, str],
    ) -> ProviderRefund:
        """Refund ``amount`` of the payment; a repeated idempotency key returns the same refund."""

    def cancel_payment(self, *, payment_ref: str, idempotency_key: str) -> ProviderPayment:
        """Cancel a payment the customer has not completed."""

    def fetch_payment(self, *, payment_ref: str) -> ProviderPayment:
        """The payment as the provider holds it now."""

    def fetch_refunds(self, *, payment_ref: str) -> list[ProviderRefund]:
        """Every refund of the payment as the provider holds it now."""

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Verify a delivery's signature and translate it; raise ``InvalidWebhook`` otherwise."""


def provider_actor(name: str) -> str:
    """The audit trail's actor for what a provider told us (``shequn_backend.audit.STRIPE`` ...)."""
    return f"provider:{name}"


def get_provider(name: str = DEFAULT_PROVIDER) -> PaymentProvider:
    return import_string(PROVIDERS[name])()
