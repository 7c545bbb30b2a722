"""Thin Celery wrappers around commerce services. Ids in, idempotent, safe to run twice.

Periodic jobs take an optional ``now`` (ISO 8601) so that a catch-up run or a
test can set the clock they judge by; the beat schedule sends none.
"""

from datetime import datetime

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from commerce.errors import PaymentProviderUnavailable
from commerce.jobs import (
    CONFIRM_RECEIPTS,
    RECONCILE_PAYMENTS,
    RELEASE_STOCK_HOLDS,
    RENEWAL_REMINDERS,
    REPURCHASE_RATES,
    REPURCHASE_REMINDERS,
    SEND_NOTIFICATIONS,
    SETTLE_COMMISSIONS,
    SYNC_PAYMENTS,
    SYNC_WITHDRAWALS,
    UPLOAD_SHIPPING_INFO,
)
from commerce.payments import sandbox
from commerce.services.commissions import commission_settle_due
from commerce.services.notifications import notification_send_due
from commerce.services.orders import order_release_expired
from commerce.services.payments import WebhookNotReady, payment_cancel_at_provider
from commerce.services.reconciliation import payments_reconcile
from commerce.services.renewals import renewal_reminders_create
from commerce.services.repurchase import repurchase_rates_refresh, repurchase_reminders_create
from commerce.services.shipments import shipments_auto_confirm
from commerce.services.shipping_info import (
    ShippingInfoRetry,
    shipping_info_upload,
    shipping_info_upload_pending,
)
from commerce.services.sync import payments_sync
from commerce.services.withdrawals import withdrawal_sync_due
from shequn_backend.events import enqueue

RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


def _clock(now: str | None) -> datetime:
    return datetime.fromisoformat(now) if now else timezone.now()


@shared_task(name=RELEASE_STOCK_HOLDS.task, acks_late=True, **RETRY)
def release_stock_holds_task(now: str | None = None) -> int:
    """Cancel unpaid orders whose hold expired and give their stock back."""
    return order_release_expired(now=_clock(now))


@shared_task(name="commerce.payment_cancel", acks_late=True)
def payment_cancel_task(order_id: int) -> bool:
    """Cancel a cancelled order's payment at the provider, so that it can no longer be paid."""
    return payment_cancel_at_provider(order_id=order_id)


@shared_task(name="commerce.payments_cancel_fan_out", acks_late=True)
def payments_cancel_fan_out_task(order_ids: list[int]) -> int:
    """Queue ``payment_cancel_task`` for each of a batch of cancelled orders (the hold release's batch):
    each order's payments are closed in a task of their own, within its own provider budget."""
    for order_id in order_ids:
        enqueue(payment_cancel_task, order_id)
    return len(order_ids)


@shared_task(
    name="commerce.sandbox_notify",
    acks_late=True,
    autoretry_for=(DatabaseError, PaymentProviderUnavailable, WebhookNotReady),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def sandbox_notify_task(event_type: str, reference: str) -> str:
    """The sandbox provider notifies a paid trade or a settled refund (signed, through webhook_receive)."""
    return sandbox.deliver(event_type=event_type, reference=reference)


@shared_task(name=SETTLE_COMMISSIONS.task, acks_late=True, **RETRY)
def commissions_settle_task(now: str | None = None) -> int:
    """Settle the commissions whose return window closed."""
    return commission_settle_due(now=_clock(now))


@shared_task(name=REPURCHASE_REMINDERS.task, acks_late=True, **RETRY)
def repurchase_reminders_task(now: str | None = None) -> int:
    """Create the repurchase reminders that fell due, then send the outbox."""
    created = repurchase_reminders_create(now=_clock(now))
    if created:
        notifications_send_task.delay()
    return created


@shared_task(name=RENEWAL_REMINDERS.task, acks_late=True, **RETRY)
def renewal_reminders_task(now: str | None = None) -> int:
    """Remind members whose membership expires soon, then send the outbox."""
    created = renewal_reminders_create(now=_clock(now))
    if created:
        notifications_send_task.delay()
    return created


@shared_task(name=REPURCHASE_RATES.task, acks_late=True, **RETRY)
def repurchase_rates_task(now: str | None = None) -> int:
    """Recompute the stored repurchase rates that trust reads."""
    return repurchase_rates_refresh(now=_clock(now))


@shared_task(name=SEND_NOTIFICATIONS.task, acks_late=True, **RETRY)
def notifications_send_task(now: str | None = None) -> int:
    """Send the outbox's due notifications through the configured transport."""
    return notification_send_due(now=_clock(now))


@shared_task(name=SYNC_PAYMENTS.task, acks_late=True, **RETRY)
def payments_sync_task(now: str | None = None) -> int:
    """Query unpaid payments and pending refunds at their providers, close ended holds, apply."""
    return payments_sync(now=_clock(now))


@shared_task(name=RECONCILE_PAYMENTS.task, acks_late=True, **RETRY)
def payments_reconcile_task(now: str | None = None) -> int:
    """Download the recent trade bills not reconciled yet and compare them with our books."""
    return payments_reconcile(now=_clock(now))


@shared_task(name=CONFIRM_RECEIPTS.task, acks_late=True, **RETRY)
def confirm_receipts_task(now: str | None = None) -> int:
    """Confirm shipments left unconfirmed AUTO_CONFIRM_DAYS after shipping."""
    return shipments_auto_confirm(now=_clock(now))


@shared_task(
    name="commerce.shipping_info_upload",
    acks_late=True,
    autoretry_for=(DatabaseError, ShippingInfoRetry),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=10,
)
def shipping_info_upload_task(upload_id: int) -> str:
    """Upload one order's (or package's) shipping information to WeChat; retried while WeChat says later."""
    return shipping_info_upload(upload_id=upload_id)


@shared_task(name=UPLOAD_SHIPPING_INFO.task, acks_late=True, **RETRY)
def shipping_info_upload_pending_task(now: str | None = None) -> int:
    """Try again the shipping information uploads still pending."""
    return shipping_info_upload_pending(now=_clock(now))


@shared_task(name=SYNC_WITHDRAWALS.task, acks_late=True, **RETRY)
def withdrawals_sync_task(now: str | None = None) -> int:
    """Query withdrawal transfers in flight at WeChat Pay; cancel those unconfirmed too long."""
    return withdrawal_sync_due(now=_clock(now))
