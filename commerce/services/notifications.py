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
import threading
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
# Rounds of ``NOTIFICATION_CONCURRENCY`` messages per claim: 32 of WeChat's timeouts (5 s) fit the lease.
ROUNDS_PER_CLAIM = 32
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
        _hold(held, now)
    for notification in admitted:
        notification.quota_day = day
    return admitted, held


def _hold(held: list[Notification], now: datetime) -> None:
    """Messages over the cap wait for the next morning; the attempt the claim counted is given back."""
    if held:
        Notification.objects.filter(pk__in=[n.pk for n in held], status=S.PENDING).update(
            available_at=_next_morning(now), attempts=F("attempts") - 1
        )


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
        rows = _locked_due(now=now, batch_size=batch_size)
        Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
            available_at=now + LEASE, attempts=F("attempts") + 1
        )
    for row in rows:
        row.attempts += 1
    return rows


def _set_based() -> bool:
    """PostgreSQL claims, counts and records a batch in set-based statements; elsewhere the ORM does
    (the same rows)."""
    return connection.vendor == "postgresql"


def _locked_due(*, now: datetime, batch_size: int) -> list[Notification]:
    """The next due rows with their members, locked (rows another sender holds are skipped).

    Of the member only its WeChat identity is read (what the transports use;
    any other field loads when touched).
    """
    own = [field.name for field in Notification._meta.concrete_fields]
    return list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("user")
        .only(*own, "user__wechat_openid")
        .filter(status=S.PENDING, available_at__lte=now)
        .order_by("available_at", "pk")[:batch_size]
    )


# The members' count rows of the day: a member without one gets it with the slots its messages of the
# batch take (at most the cap); an existing one is locked (a no-op update, which also waits out a
# concurrent insert) and read. In one order for every sender. Returns each row's count and whether it
# was inserted (then already counted).
_QUOTA_SQL = """
INSERT INTO {quota} (user_id, day, used)
SELECT user_id, %(day)s::date, LEAST(count(*), %(cap)s) FROM unnest(%(users)s::bigint[]) AS w(user_id)
GROUP BY user_id ORDER BY user_id
ON CONFLICT (user_id, day) DO UPDATE SET used = {quota}.used
RETURNING user_id, used, xmax = 0
"""
# The batch's messages needing a slot take their member's free slots in claim order (those over it are
# held), the existing count rows rise by what was taken, and every row of the batch is written once:
# leased with its attempt counted (and the day it was counted on), or held for the next morning
# without an attempt. Returns the held ids.
_TAKE_SQL = """
WITH batch AS (
    SELECT id, user_id, needs_slot, ord
    FROM unnest(%(ids)s::bigint[], %(users)s::bigint[], %(needs)s::boolean[]) WITH ORDINALITY
        AS b(id, user_id, needs_slot, ord)
), free AS (
    SELECT * FROM unnest(%(free_users)s::bigint[], %(free)s::int[], %(raise)s::boolean[])
        AS f(user_id, slots, raise)
), ranked AS (
    SELECT b.id, b.user_id, b.needs_slot, f.raise,
           NOT b.needs_slot
           OR row_number() OVER (PARTITION BY b.user_id, b.needs_slot ORDER BY b.ord) <= f.slots AS admitted
    FROM batch b LEFT JOIN free f ON b.needs_slot AND f.user_id = b.user_id
), taken AS (
    UPDATE {quota} q SET used = q.used + t.n
    FROM (SELECT user_id, count(*) AS n FROM ranked WHERE needs_slot AND admitted AND raise GROUP BY user_id)
        AS t
    WHERE q.user_id = t.user_id AND q.day = %(day)s::date
), written AS (
    UPDATE {notification} n
    SET available_at = CASE WHEN r.admitted THEN %(lease)s ELSE %(morning)s END,
        attempts = n.attempts + CASE WHEN r.admitted THEN 1 ELSE 0 END,
        quota_day = CASE WHEN r.needs_slot AND r.admitted THEN %(day)s::date ELSE n.quota_day END
    FROM ranked r
    WHERE n.id = r.id
)
SELECT id FROM ranked WHERE NOT admitted
"""


def _take_postgresql(transport, *, now: datetime, batch_size: int) -> tuple[list, dict, list]:
    """``_claim``, the transport's ``prepare`` and ``_admit`` in one transaction on PostgreSQL.

    The due rows are locked and read, the transport settles what cannot
    go, then one statement takes the daily slots and writes each row once
    (lease, attempt, day counted; or held for the next morning). Returns the
    batch, the settled outcomes and the messages to send.
    """
    cap = settings.NOTIFICATION_DAILY_CAP
    day = _quota_day(now)
    with transaction.atomic():
        batch = _locked_due(now=now, batch_size=batch_size)
        if not batch:
            return [], {}, []
        outcomes = transport.prepare(batch, now)
        needs = [cap > 0 and n.pk not in outcomes and n.quota_day != day for n in batch]
        tables = {"quota": NotificationQuota._meta.db_table, "notification": Notification._meta.db_table}
        users = [n.user_id for n in batch]
        free: list[tuple[int, int, bool]] = []  # (member, free slots, an existing row to raise)
        with connection.cursor() as cursor:
            if any(needs):
                wanting = [user for user, need in zip(users, needs, strict=True) if need]
                cursor.execute(
                    _QUOTA_SQL.format(**tables), {"day": day, "cap": cap, "users": _int_array(wanting)}
                )
                free = [
                    (user, used, False) if inserted else (user, max(0, cap - used), True)
                    for user, used, inserted in cursor.fetchall()
                ]
            cursor.execute(
                _TAKE_SQL.format(**tables),
                {
                    "ids": _int_array(n.pk for n in batch),
                    "users": _int_array(users),
                    "needs": _int_array(needs),
                    "free_users": _int_array(user for user, _slots, _raise in free),
                    "free": _int_array(slots for _user, slots, _raise in free),
                    "raise": _int_array(raise_ for _user, _slots, raise_ in free),
                    "cap": cap,
                    "day": day,
                    "lease": now + LEASE,
                    "morning": _next_morning(now),
                },
            )
            held = {pk for (pk,) in cursor.fetchall()}
    admitted = []
    for notification, need in zip(batch, needs, strict=True):
        if notification.pk in held:
            continue
        notification.attempts += 1
        if need:
            notification.quota_day = day
        if notification.pk not in outcomes:
            admitted.append(notification)
    return batch, outcomes, admitted


def _safe_send(transport, notification: Notification) -> Delivery:
    try:
        return transport.send(notification)
    except Exception as exc:  # noqa: BLE001 - a transport's failure is recorded, never fatal to the batch
        return Delivery("retry", f"{type(exc).__name__}: {exc}")


def _send_all(transport, notifications: list[Notification], pool, concurrency: int) -> dict[int, Delivery]:
    """Each message's outcome; with a pool, ``concurrency`` workers take the next message as they finish."""
    if pool is None or len(notifications) < 2:
        return {n.pk: _safe_send(transport, n) for n in notifications}
    waiting = iter(notifications)
    lock = threading.Lock()
    outcomes: dict[int, Delivery] = {}

    def work() -> None:
        try:
            while True:
                with lock:
                    notification = next(waiting, None)
                if notification is None:
                    return
                outcomes[notification.pk] = _safe_send(transport, notification)
        finally:
            connections.close_all()  # a transport that touched the database left a connection in this thread

    for worker in [pool.submit(work) for _ in range(min(concurrency, len(notifications)))]:
        worker.result()
    return {n.pk: outcomes[n.pk] for n in notifications}


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
    if _set_based():
        return _record_postgresql(groups, outcomes)
    sent = 0
    with transaction.atomic():
        for (status, error, available_at, sent_at), pks in groups.items():
            changed = Notification.objects.filter(pk__in=pks, status=S.PENDING).update(
                status=status, last_error=error, available_at=available_at, sent_at=sent_at
            )
            sent += changed if status == S.SENT else 0
        _write_msgids([(pk, outcome.msgid) for pk, outcome in outcomes.items() if outcome.msgid])
    return sent


# Every outcome of a batch in one statement: the rows still pending take their outcome (one of the
# batch's few distinct ones, by its number) and their message id.
_RECORD_SQL = """
UPDATE {notification} n
SET status = o.status, last_error = o.error, available_at = o.available_at, sent_at = o.sent_at,
    msgid = COALESCE(m.msgid, n.msgid)
FROM unnest(%(ids)s::bigint[], %(outcome)s::int[]) AS v(id, outcome)
JOIN unnest(%(statuses)s::text[], %(errors)s::text[], %(available_at)s::timestamptz[],
            %(sent_at)s::timestamptz[]) WITH ORDINALITY AS o(status, error, available_at, sent_at, outcome)
    ON o.outcome = v.outcome
LEFT JOIN unnest(%(msgid_ids)s::bigint[], %(msgids)s::text[]) AS m(id, msgid) ON m.id = v.id
WHERE n.id = v.id AND n.status = 'pending'
RETURNING n.id, o.status
"""


def _int_array(values: Iterable) -> str:
    """A PostgreSQL array literal of integers (booleans as 1 and 0, which a ``boolean[]`` cast takes too):
    quicker to send than a list of parameters."""
    return "{" + ",".join(str(int(value)) for value in values) + "}"


def _record_postgresql(groups: dict[tuple, list[int]], outcomes: dict[int, Delivery]) -> int:
    """``_record``'s writes in one statement (a message id of a row no longer pending in a second)."""
    if not groups:
        return 0
    ids, numbers = [], []
    for number, pks in enumerate(groups.values(), start=1):
        ids += pks
        numbers += [number] * len(pks)
    statuses, errors, available_at, sent_at = (list(column) for column in zip(*groups, strict=True))
    pairs = [(pk, outcome.msgid) for pk, outcome in outcomes.items() if outcome.msgid]
    params = {
        "ids": _int_array(ids),
        "outcome": _int_array(numbers),
        "statuses": statuses,
        "errors": errors,
        "available_at": available_at,
        "sent_at": sent_at,
        "msgid_ids": _int_array(pk for pk, _msgid in pairs),
        "msgids": [msgid for _pk, msgid in pairs],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RECORD_SQL.format(notification=Notification._meta.db_table), params)
        written = cursor.fetchall()
        changed = {pk for pk, _status in written}
        _write_msgids([(pk, msgid) for pk, msgid in pairs if pk not in changed])
    return sum(1 for _pk, status in written if status == S.SENT)


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


def notification_quotas_prune(*, now: datetime) -> int:
    """Delete the daily counts of days before yesterday (only today's is read; yesterday's may still
    be in a sender that started before midnight); returns how many went."""
    deleted, _ = NotificationQuota.objects.filter(day__lt=_quota_day(now) - timedelta(days=1)).delete()
    return deleted


def notification_send_due(*, now: datetime, batch_size: int | None = None) -> int:
    """Send every pending notification due by ``now`` through the transport; returns how many were sent.

    Nothing goes out during quiet hours (the rows wait); old daily counts are
    pruned at every run (``notification_quotas_prune``). Up to
    ``NOTIFICATION_CONCURRENCY`` messages are in flight at once. A claim
    takes ``batch_size`` rows, by default ``ROUNDS_PER_CLAIM`` rounds of the
    concurrency (at least 200): few claims, and a batch of timeouts still
    ends within its lease.
    """
    notification_quotas_prune(now=now)
    if quiet_until(now) is not None:
        return 0
    transport = notification_transport()
    concurrency = max(1, settings.NOTIFICATION_CONCURRENCY)
    batch_size = batch_size or max(200, ROUNDS_PER_CLAIM * concurrency)
    pool = ThreadPoolExecutor(max_workers=concurrency) if concurrency > 1 else None
    sent = 0
    try:
        while True:
            if _set_based():
                batch, outcomes, admitted = _take_postgresql(transport, now=now, batch_size=batch_size)
            else:
                batch = _claim(now=now, batch_size=batch_size)
                outcomes = transport.prepare(batch, now) if batch else {}
                admitted, _held = _admit([n for n in batch if n.pk not in outcomes], now)
            if not batch:
                return sent
            outcomes |= _send_all(transport, admitted, pool, concurrency)
            sent += _record(outcomes, batch, now)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
