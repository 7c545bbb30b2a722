"""Money that moves outside any online provider (cash at an event, a bank transfer).

Staff record such payments with ``payment_record_offline``; refunds are paid
back by hand and confirmed at once. There are no notifications and nothing to poll.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from commerce.payments import base


class OfflineProvider:
    name = "offline"
    pollable = False
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
        raise base.ProviderRefused("Offline payments are recorded by staff, not created online.")

    def client_payload(self, *, handle: base.PaymentHandle, client: Mapping) -> dict:
        return {"client_secret": None, "request_payment": None}

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
        local_id = metadata.get("refund_id")
        return base.ProviderRefund(
            ref=f"offline-{refund.reference}",
            reference=refund.reference,
            status="succeeded",
            amount=amount,
            currency=handle.currency,
            local_id=int(local_id) if local_id else None,
        )

    def close_payment(self, *, handle: base.PaymentHandle, idempotency_key: str) -> None:
        raise base.ProviderRefused("Offline payments cannot be closed online.")

    def fetch_payment(self, *, handle: base.PaymentHandle) -> base.ProviderPayment:
        raise base.ProviderRefused("Offline payments are not held by any provider.")

    def fetch_refund(self, *, handle: base.PaymentHandle, refund: base.RefundHandle) -> base.ProviderRefund:
        raise base.ProviderRefused("Offline refunds are not held by any provider.")

    def fetch_refunds(
        self, *, handle: base.PaymentHandle, known: list[base.RefundHandle]
    ) -> list[base.ProviderRefund]:
        raise base.ProviderRefused("Offline refunds are not held by any provider.")

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        raise base.InvalidWebhook("The offline provider has no notifications.")
