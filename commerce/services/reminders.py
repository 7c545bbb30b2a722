"""Writing reminders with their outbox notifications, once per due cycle."""

import json
from datetime import UTC, date, datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from commerce.models import Notification, Reminder
from shequn_backend.audit import Actor, actor_fields, audit_record_many
from shequn_backend.models import AuditEntry


class ReminderRow(NamedTuple):
    """A reminder's columns, lighter to build than a ``Reminder`` (a job builds thousands per chunk)."""

    membership_id: int
    community_id: int
    kind: str
    due_on: date
    due_at: datetime
    message: str
    product_id: int | None = None
    coupon_id: int | None = None


def reminders_write(*, reminders: list[Reminder | ReminderRow], now: datetime, actor: Actor) -> int:
    """Insert ``reminders`` and queue one notification each; returns how many were new.

    One transaction: a crash leaves neither. The unique constraints (one per
    membership, product and due date; one renewal per expiry) make a second
    or concurrent run insert nothing, and a notification is one-to-one with
    its reminder, so nothing is queued twice either. On PostgreSQL one
    statement writes the reminders, their notifications and audit rows
    (``_reminders_write_postgresql``); elsewhere the ORM does, the same rows.
    """
    if not reminders:
        return 0
    if connection.vendor == "postgresql":
        return _reminders_write_postgresql(reminders=reminders, now=now, actor=actor)
    return _reminders_write_orm(
        reminders=[r if isinstance(r, Reminder) else Reminder(**r._asdict()) for r in reminders],
        now=now,
        actor=actor,
    )


def _reminders_write_orm(*, reminders: list[Reminder], now: datetime, actor: Actor) -> int:
    with transaction.atomic():
        Reminder.objects.bulk_create(reminders, ignore_conflicts=True, batch_size=1000)
        keys = Q()
        for kind in {reminder.kind for reminder in reminders}:
            same = [reminder for reminder in reminders if reminder.kind == kind]
            keys |= Q(
                kind=kind,
                membership_id__in={reminder.membership_id for reminder in same},
                due_on__in={reminder.due_on for reminder in same},
            )
        fresh = list(
            Reminder.objects.filter(keys, notification__isnull=True).values_list(
                "pk",
                "membership__user_id",
                "message",
                "kind",
                "membership__community_id",
                "due_on",
                "due_at",
                "community__name",
                "product__title",
            )
        )
        Notification.objects.bulk_create(
            [
                Notification(
                    user_id=user_id,
                    kind=kind,
                    community_id=community_id,
                    reminder_id=pk,
                    title=str(Reminder.Kind(kind).label),
                    body=message,
                    data={
                        "community": name,
                        "product": product or "",
                        "due_at": due_at.isoformat(),
                    },
                    available_at=now,
                )
                for pk, user_id, message, kind, community_id, _day, due_at, name, product in fresh
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        audit_record_many(
            actor=actor,
            action="reminder.created",
            rows=(
                (("commerce.reminder", pk), community_id, {"kind": kind, "due_on": due_on, "user": user_id})
                for pk, user_id, _message, kind, community_id, due_on, *_names in fresh
            ),
        )
    return len(fresh)


# One statement: the new reminders (a repeat hits a unique constraint and is left out), then from the rows
# really inserted one notification each and one audit row each, with the columns the ORM path writes.
_WRITE_SQL = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
        membership_id bigint, community_id bigint, kind text, product_id bigint, due_on date,
        due_at timestamptz, message text, coupon_id bigint, due_at_iso text)
), fresh_reminders AS (
    INSERT INTO {reminder} (membership_id, community_id, kind, product_id, due_on, due_at, message,
                            coupon_id, created_at)
    SELECT membership_id, community_id, kind, product_id, due_on, due_at, message, coupon_id, %(now)s
    FROM input
    ON CONFLICT DO NOTHING
    RETURNING id, membership_id, community_id, kind, product_id, due_on, due_at, message
), fresh AS (
    SELECT DISTINCT ON (f.id) f.id, m.user_id, m.community_id AS member_community_id, f.kind, f.due_on,
           f.message,
           c.name AS community_name, COALESCE(p.title, '') AS product_title, i.due_at_iso
    FROM fresh_reminders f
    JOIN {membership} m ON m.id = f.membership_id
    JOIN {community} c ON c.id = f.community_id
    LEFT JOIN {product} p ON p.id = f.product_id
    JOIN input i ON i.membership_id = f.membership_id AND i.kind = f.kind AND i.due_on = f.due_on
                AND i.product_id IS NOT DISTINCT FROM f.product_id
), notifications AS (
    INSERT INTO {notification} (user_id, kind, community_id, reminder_id, key, channel, title, body, data,
                                template_id, consent_spent, msgid, quota_day, status, attempts, last_error,
                                available_at, sent_at, created_at)
    SELECT user_id, kind, member_community_id, id, '', 'wechat', (%(titles)s::jsonb) ->> kind, message,
           jsonb_build_object('community', community_name, 'product', product_title, 'due_at', due_at_iso),
           '', false, '', NULL, 'pending', 0, '', %(available_at)s, NULL, %(now)s
    FROM fresh
    ON CONFLICT DO NOTHING
), audit AS (
    INSERT INTO {audit} (actor_id, actor_label, action, target_type, target_id, community_id, changes, note,
                         created_at)
    SELECT %(actor_id)s, %(actor_label)s, 'reminder.created', 'commerce.reminder', id::text,
           member_community_id,
           jsonb_build_object('kind', kind, 'due_on', to_char(due_on, 'YYYY-MM-DD'), 'user', user_id), '',
           %(now)s
    FROM fresh
)
SELECT COUNT(*) FROM fresh
"""


def _reminders_write_postgresql(
    *, reminders: list[Reminder | ReminderRow], now: datetime, actor: Actor
) -> int:
    """The ORM path's rows, written set-based: one statement, one transaction."""
    rows = [
        {
            "membership_id": r.membership_id,
            "community_id": r.community_id,
            "kind": r.kind,
            "product_id": r.product_id,
            "due_on": r.due_on.isoformat(),
            "due_at": r.due_at.isoformat(),
            "message": r.message,
            "coupon_id": r.coupon_id,
            # As the ORM path reads it back: UTC, microseconds kept.
            "due_at_iso": r.due_at.astimezone(UTC).isoformat(),
        }
        for r in reminders
    ]
    who = actor_fields(actor)
    sql = _WRITE_SQL.format(
        reminder=Reminder._meta.db_table,
        membership=Reminder._meta.get_field("membership").related_model._meta.db_table,
        community=Reminder._meta.get_field("community").related_model._meta.db_table,
        product=Reminder._meta.get_field("product").related_model._meta.db_table,
        notification=Notification._meta.db_table,
        audit=AuditEntry._meta.db_table,
    )
    params = {
        "rows": json.dumps(rows),
        "titles": json.dumps({kind.value: str(kind.label) for kind in Reminder.Kind}),
        "available_at": now,
        "now": timezone.now(),
        "actor_id": who["actor"].pk if who["actor"] is not None else None,
        "actor_label": who["actor_label"],
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]
