"""Money that moves outside any online provider (cash at an event, a bank transfer, demo data).

Staff record such payments with ``payment_record_offline``; refunds are paid
back by hand and confirmed at once. There are no webhooks.
"""

from collections.abc import Mapping
from decimal import Decimal

from commerce.payments import base


class OfflineProvider:
    name = "offline"

    def create_payment(
        self, *, order_id: int, amount: Decimal, currency: str, idempotency_key: str, description: str
    ) -> base.ProviderPayment:
        raise base.ProviderRefused("Offline payments are recorded by staff, not created online.")

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
        local_id = metadata.get("refund_id")
        return base.ProviderRefund(
            ref=f"offline-{idempotency_key}",
            status="succeeded",
            amount=amount,
            currency=currency,
            local_id=int(local_id) if local_id else None,
        )

    def cancel_payment(self, *, payment_ref: str, idempotency_key: str) -> base.ProviderPayment:
        raise base.ProviderRefused("Offline payments cannot be cancelled online.")

    def fetch_payment(self, *, payment_ref: str) -> base.ProviderPayment:
        raise base.ProviderRefused("Offline payments are not held by any provider.")

    def fetch_refunds(self, *, payment_ref: str) -> list[base.ProviderRefund]:
        raise base.ProviderRefused("Offline refunds are not held by any provider.")

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        raise base.InvalidWebhook("The offline provider has no webhooks.")
