"""Thin Celery wrappers around commerce services. Ids in, idempotent, safe to run twice."""

from celery import shared_task
from django.utils import timezone

from commerce.services.orders import order_release_expired
from commerce.services.payments import payment_cancel_at_provider


@shared_task(name="commerce.release_stock_holds", acks_late=True)
def release_stock_holds_task() -> int:
    """Cancel unpaid orders whose hold expired and give their stock back."""
    return order_release_expired(now=timezone.now())


@shared_task(name="commerce.payment_cancel", acks_late=True)
def payment_cancel_task(order_id: int) -> bool:
    """Cancel a cancelled order's payment at the provider, so that it can no longer be paid."""
    return payment_cancel_at_provider(order_id=order_id)
