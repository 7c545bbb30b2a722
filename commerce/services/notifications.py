"""The notification outbox sender: claims due rows, sends them outside any lock, records the result.

Delivery is at least once: a claim is a lease (``available_at`` moved ahead);
a worker that dies after sending but before recording lets the lease lapse
and the row is sent again. Transports should be idempotent per notification id.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.module_loading import import_string

from commerce.models import Notification

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5


def log_transport(*, notification: Notification) -> None:
    """The embedded default: write the message to the log instead of sending it."""
    logger.info("Notification %s to user %s: %s", notification.pk, notification.user_id, notification.body)


def _claim(*, now: datetime, batch_size: int) -> list[Notification]:
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Notification.Status.PENDING, available_at__lte=now)
            .order_by("available_at", "pk")[:batch_size]
        )
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            available_at=now + LEASE, attempts=F("attempts") + 1
        )
    return rows


def notification_send_due(*, now: datetime, batch_size: int = 200) -> int:
    """Send every pending notification due by ``now`` through ``NOTIFICATION_TRANSPORT``; returns sent."""
    transport = import_string(settings.NOTIFICATION_TRANSPORT)
    sent = 0
    while True:
        batch = _claim(now=now, batch_size=batch_size)
        if not batch:
            return sent
        delivered = []
        for notification in batch:
            attempts = notification.attempts + 1
            try:
                transport(notification=notification)
            except Exception as exc:  # noqa: BLE001 - a transport's failure is recorded, never fatal to the batch
                logger.warning("Notification %s not sent: %s", notification.pk, exc)
                failed = attempts >= MAX_ATTEMPTS
                Notification.objects.filter(pk=notification.pk).update(
                    status=Notification.Status.FAILED if failed else Notification.Status.PENDING,
                    last_error=str(exc)[:500],
                    available_at=now + timedelta(minutes=2**attempts),
                )
                continue
            delivered.append(notification.pk)
        # One write per batch: a crash before it re-sends the batch once the lease lapses (at least once).
        sent += Notification.objects.filter(pk__in=delivered, status=Notification.Status.PENDING).update(
            status=Notification.Status.SENT, sent_at=now
        )
