"""The notification outbox: queueing, and the sender that claims due rows and delivers them.

Delivery is at least once: a claim is a lease (``available_at`` moved ahead);
a worker that dies after sending but before recording lets the lease lapse
and the row is sent again. The sender holds every message during quiet hours
(``QUIET_HOURS``, Asia/Shanghai), sends at most ``NOTIFICATION_DAILY_CAP`` per
member and business day (the rest wait for the next morning), sends up to
``NOTIFICATION_CONCURRENCY`` at once (threads: the transport's ``send`` does
no database work), retries transient failures with backoff and keeps a row
that failed ``NOTIFICATION_MAX_ATTEMPTS`` times (or was refused for good) as
a dead letter (``failed``) that staff re-send from the admin.

A transport (``NOTIFICATION_TRANSPORT``) is either a function
``f(*, notification) -> None`` that raises on failure (retried), or an
object with ``prepare(notifications, now) -> {pk: Delivery}`` (database work,
in the sender's thread: what need not or cannot be sent) and
``send(notification) -> Delivery``. Without a setting it is WeChat's
subscription messages when ``WECHAT_APP_ID`` and ``WECHAT_APP_SECRET`` are
set, else the log.
"""

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from commerce.models import Notification, NotificationQuota
from members.models import Community, User
from shequn_backend.audit import Actor, audit_record

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=1)
QUIET_ZONE = ZoneInfo("Asia/Shanghai")
S = Notification.Status


@dataclass(frozen=True)
class Delivery:
    """What became of one message: ``status`` is sent, retry (transient), failed (for good),
    no_consent or skipped (nothing to send it with)."""

    status: str
    error: str = ""
    msgid: str = ""


SENT = Delivery("sent")


def log_transport(*, notification: Notification) -> None:
    """The embedded default: write the message to the log instead of sending it."""
    logger.info("Notification %s to user %s: %s", notification.pk, notification.user_id, notification.body)


class FunctionTransport:
    """A plain ``f(*, notification)`` as a transport: returning is sent, raising is a transient failure."""

    def __init__(self, function: Callable):
        self.function = function

    def prepare(self, notifications: list[Notification], now: datetime) -> dict[int, Delivery]:
        return {}

    def send(self, notification: Notification) -> Delivery:
        self.function(notification=notification)
        return SENT


def notification_transport():
    """The configured transport (see the module's docstring)."""
    path = settings.NOTIFICATION_TRANSPORT
    if not path:
        if settings.WECHAT_APP_ID and settings.WECHAT_APP_SECRET:
            path = "commerce.services.subscription_messages.TRANSPORT"
        else:
            path = "commerce.services.notifications.log_transport"
    transport = import_string(path)
    return transport if hasattr(transport, "send") else FunctionTransport(transport)


# --- Queueing -----------------------------------------------------------------------------------


def notification_queue(
    *,
    actor: Actor,
    user: User,
    kind: str,
    data: dict,
    title: str,
    body: str,
    community: Community | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> Notification | None:
    """Queue one message to ``user`` of ``kind`` (a ``Notification.Kind``); sent by the outbox sender.

    ``data`` holds the values the kind's template fields are filled from
    (``WECHAT_TEMPLATE_FIELDS``): text, numbers, ``Decimal`` amounts and
    ``datetime`` times (stored as "12.50" and ISO 8601). ``key`` names what the
    message is about (e.g. "withdrawal:7:paid"): queueing the same key again
    adds nothing and returns None. Call it inside the transaction that made
    the news, so both commit or neither.
    """
    now = now or timezone.now()
    fields = {
        "user": user,
        "kind": Notification.Kind(kind),
        "community": community,
        "title": title[:100],
        "body": body[:500],
        "data": json.loads(json.dumps(data, cls=DjangoJSONEncoder)),  # Decimal, datetime: as text
        "available_at": now,
    }
    try:
        with transaction.atomic():
            notification = Notification.objects.create(key=key or "", **fields)
    except IntegrityError:
        if key and Notification.objects.filter(key=key).exists():
            return None
        raise
    audit_record(
        actor=actor,
        action="notification.queued",
        target=notification,
        community_id=community.pk if community else None,
        changes={"kind": kind, "user": user.pk},
    )
    return notification


def notification_resend(*, actor: Actor, notification_ids: Iterable[int], now: datetime | None = None) -> int:
    """Queue dead letters (``failed``) again with fresh attempts; returns how many.

    A consent already spent on one stays with it (the message was never
    delivered). Rows in any other state are left alone.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update()
            .filter(pk__in=list(notification_ids), status=S.FAILED)
            .values_list("pk", "community_id")
        )
        Notification.objects.filter(pk__in=[pk for pk, _c in rows]).update(
            status=S.PENDING, attempts=0, available_at=now, last_error=""
        )
        for pk, community_id in rows:
            audit_record(
                actor=actor,
                action="notification.resent",
                target=("commerce.notification", pk),
                community_id=community_id,
            )
    return len(rows)


# --- Quiet hours and the daily cap --------------------------------------------------------------


def _hour(text: str) -> time:
    hours, _sep, minutes = text.strip().partition(":")
    return time(int(hours) % 24, int(minutes or 0))


def quiet_hours() -> tuple[time, time] | None:
    """``QUIET_HOURS`` ("22-8", "21:30-7:45"; empty: none) as its start and end on the wall clock."""
    value = (settings.QUIET_HOURS or "").strip()
    if not value:
        return None
    start, _sep, end = value.partition("-")
    start_at, end_at = _hour(start), _hour(end)
    return None if start_at == end_at else (start_at, end_at)


def quiet_until(now: datetime) -> datetime | None:
    """The end of the quiet hours ``now`` falls in (aware), or None when messages may go."""
    window = quiet_hours()
    if window is None:
        return None
    start, end = window
    local = now.astimezone(QUIET_ZONE)
    clock = local.timetz().replace(tzinfo=None)
    inside = start <= clock or clock < end if start > end else start <= clock < end
    if not inside:
        return None
    day = local.date() + timedelta(days=1) if clock >= end and start > end else local.date()
    return datetime.combine(day, end, tzinfo=QUIET_ZONE)


def _next_morning(now: datetime) -> datetime:
    """When a member over the daily cap hears from us again: the next day, after its quiet hours."""
    local = now.astimezone(QUIET_ZONE)
    window = quiet_hours()
    morning = window[1] if window and window[0] > window[1] else time(0)
    return datetime.combine(local.date() + timedelta(days=1), morning, tzinfo=QUIET_ZONE)


def _quota_day(now: datetime):
    return now.astimezone(QUIET_ZONE).date()


def _admit(notifications: list[Notification], now: datetime) -> tuple[list[Notification], list[Notification]]:
    """Split ``notifications`` into those within their member's daily cap and those over it.

    Each admitted message takes one of the day's slots; the member's count row
    is locked while it is read and raised (exact under concurrent senders). A
    retry the same day keeps its slot.
    """
    cap = settings.NOTIFICATION_DAILY_CAP
    if cap <= 0:
        return notifications, []
    day = _quota_day(now)
    needing = [n for n in notifications if n.quota_day != day]
    NotificationQuota.objects.bulk_create(
        [NotificationQuota(user_id=user_id, day=day) for user_id in {n.user_id for n in needing}],
        ignore_conflicts=True,
    )
    admitted, held = [], []
    with transaction.atomic():
        quotas = {
            user_id: (pk, used)
            for pk, user_id, used in NotificationQuota.objects.select_for_update()
            .filter(user_id__in={n.user_id for n in needing}, day=day)
            .order_by("pk")  # one order of rows for every sender: no deadlock
            .values_list("pk", "user_id", "used")
        }
        taken: dict[int, int] = {}
        for notification in notifications:
            if notification.quota_day == day:
                admitted.append(notification)
                continue
            pk, used = quotas[notification.user_id]
            if used + taken.get(pk, 0) < cap:
                taken[pk] = taken.get(pk, 0) + 1
                admitted.append(notification)
            else:
                held.append(notification)
        add_by_id(NotificationQuota, "used", taken)
        counted = [n.pk for n in admitted if n.quota_day != day]
        Notification.objects.filter(pk__in=counted).update(quota_day=day)
    for notification in admitted:
        notification.quota_day = day
    return admitted, held


def add_by_id(model, field: str, deltas: dict[int, int]) -> None:
    """``field += delta`` for each row id in one statement (PostgreSQL and SQLite alike); the caller
    holds the rows' locks (``select_for_update``) and checked the result against its constraints."""
    if not deltas:
        return
    table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field)
    values = ", ".join(["(%s, %s)"] * len(deltas))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = {table}.{column} + v.column2 "  # noqa: S608 - our names
            f"FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
            [item for pair in deltas.items() for item in pair],
        )


# --- Sending ------------------------------------------------------------------------------------


def _claim(*, now: datetime, batch_size: int) -> list[Notification]:
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(status=S.PENDING, available_at__lte=now)
            .order_by("available_at", "pk")[:batch_size]
        )
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            available_at=now + LEASE, attempts=F("attempts") + 1
        )
    for row in rows:
        row.attempts += 1
    return rows


def _safe_send(transport, notification: Notification) -> Delivery:
    try:
        return transport.send(notification)
    except Exception as exc:  # noqa: BLE001 - a transport's failure is recorded, never fatal to the batch
        return Delivery("retry", f"{type(exc).__name__}: {exc}")


def _pooled_send(transport, notification: Notification) -> Delivery:
    try:
        return _safe_send(transport, notification)
    finally:
        connections.close_all()  # a transport that touched the database left a connection in this thread


def _send_all(transport, notifications: list[Notification], pool) -> dict[int, Delivery]:
    if pool is None or len(notifications) < 2:
        return {n.pk: _safe_send(transport, n) for n in notifications}
    results = pool.map(lambda n: _pooled_send(transport, n), notifications)
    return {n.pk: result for n, result in zip(notifications, results, strict=True)}


def _record(outcomes: dict[int, Delivery], batch: list[Notification], now: datetime) -> int:
    """Write each row's outcome, one UPDATE per distinct outcome; returns how many were sent.

    Only a row still pending changes (staff may have acted meanwhile).
    """
    attempts = {notification.pk: notification.attempts for notification in batch}
    groups: dict[tuple, list[int]] = {}
    for pk, outcome in outcomes.items():
        error = outcome.error[:500]
        if outcome.status == "sent":
            values = (S.SENT, "", now, now)
        elif outcome.status == "retry" and attempts[pk] < settings.NOTIFICATION_MAX_ATTEMPTS:
            values = (S.PENDING, error, now + min(timedelta(minutes=2 ** attempts[pk]), MAX_BACKOFF), None)
        else:
            status = {"no_consent": S.NO_CONSENT, "skipped": S.SKIPPED}.get(outcome.status, S.FAILED)
            values = (status, error, now, None)
            logger.warning("Notification %s %s: %s", pk, status, error)
        groups.setdefault(values, []).append(pk)
    sent = 0
    with transaction.atomic():
        for (status, error, available_at, sent_at), pks in groups.items():
            changed = Notification.objects.filter(pk__in=pks, status=S.PENDING).update(
                status=status, last_error=error, available_at=available_at, sent_at=sent_at
            )
            sent += changed if status == S.SENT else 0
        _write_msgids([(pk, outcome.msgid) for pk, outcome in outcomes.items() if outcome.msgid])
    return sent


def _write_msgids(pairs: list[tuple[int, str]]) -> None:
    """WeChat's message id of each sent row, in one statement (PostgreSQL and SQLite alike)."""
    if not pairs:
        return
    table = connection.ops.quote_name(Notification._meta.db_table)
    values = ", ".join(["(%s, %s)"] * len(pairs))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET msgid = v.column2 FROM (VALUES {values}) AS v "  # noqa: S608 - our table
            f"WHERE {table}.id = v.column1",
            [item for pair in pairs for item in pair],
        )


def notification_send_due(*, now: datetime, batch_size: int = 200) -> int:
    """Send every pending notification due by ``now`` through the transport; returns how many were sent.

    Nothing goes out during quiet hours (the rows wait). Up to
    ``NOTIFICATION_CONCURRENCY`` messages are in flight at once.
    """
    if quiet_until(now) is not None:
        return 0
    transport = notification_transport()
    concurrency = max(1, settings.NOTIFICATION_CONCURRENCY)
    pool = ThreadPoolExecutor(max_workers=concurrency) if concurrency > 1 else None
    sent = 0
    try:
        while True:
            batch = _claim(now=now, batch_size=batch_size)
            if not batch:
                return sent
            outcomes = transport.prepare(batch, now)
            admitted, held = _admit([n for n in batch if n.pk not in outcomes], now)
            if held:
                Notification.objects.filter(pk__in=[n.pk for n in held], status=S.PENDING).update(
                    available_at=_next_morning(now), attempts=F("attempts") - 1
                )
            outcomes |= _send_all(transport, admitted, pool)
            sent += _record(outcomes, batch, now)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
