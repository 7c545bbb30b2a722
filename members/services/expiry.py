"""Membership expiry: memberships past ``expires_at`` turn ``expired`` and lose member-only access."""

import json
from collections import Counter
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from members.events import memberships_expired_announce
from members.models import Community, Membership
from shequn_backend.audit import Actor, actor_fields, audit_record_many, job_actor
from shequn_backend.models import AuditEntry

EXPIRY_JOB = job_actor("expire_memberships")
EXPIRY_CHUNK = 5000


class ExpiredChunk(NamedTuple):
    """One chunk's memberships as the event carries them; the last id is where the next chunk starts."""

    membership_ids: list[int]  # ascending
    community_ids: list[int]  # distinct, ascending


def membership_expire_due(*, now: datetime, batch_size: int = EXPIRY_CHUNK, actor: Actor = EXPIRY_JOB) -> int:
    """Mark active memberships whose expiry passed by ``now`` as expired; returns how many.

    Access already ends at ``expires_at`` (``active_membership_q``); this makes
    the status say so. Chunked in id order from where the last chunk ended,
    one transaction and one event per chunk; rows another worker holds are
    skipped (``SKIP LOCKED`` on PostgreSQL): idempotent and safe to run on two
    workers at once. A renewal that lands first moves ``expires_at`` forward
    and the row no longer matches. On PostgreSQL one statement per chunk
    locks, updates, counts and audits (``_EXPIRE_SQL``); a short chunk is the
    last.
    """
    expire_chunk = _expire_chunk_postgresql if connection.vendor == "postgresql" else _expire_chunk_orm
    expired, after = 0, 0
    while True:
        with transaction.atomic():
            chunk = expire_chunk(now=now, after=after, batch_size=batch_size, actor=actor)
            if chunk is None:
                return expired
            expired += len(chunk.membership_ids)
            memberships_expired_announce(  # one event per chunk
                membership_ids=chunk.membership_ids, community_ids=chunk.community_ids
            )
        if len(chunk.membership_ids) < batch_size:
            return expired
        after = chunk.membership_ids[-1]


def _expire_chunk_orm(*, now: datetime, after: int, batch_size: int, actor: Actor) -> ExpiredChunk | None:
    due = Membership.objects.select_for_update(skip_locked=True).filter(
        status=Membership.Status.ACTIVE, expires_at__lte=now, pk__gt=after
    )
    rows = list(due.order_by("pk").values_list("pk", "community_id")[:batch_size])
    if not rows:
        return None
    ids = [pk for pk, _ in rows]
    Membership.objects.filter(pk__in=ids).update(status=Membership.Status.EXPIRED)
    leaving = Counter(community_id for _, community_id in rows)
    for community_id, count in leaving.items():
        Community.objects.filter(pk=community_id).update(member_count=F("member_count") - count)
    changes = {"status": [Membership.Status.ACTIVE, Membership.Status.EXPIRED]}
    audit_record_many(
        actor=actor,
        action="membership.expired",
        rows=[((Membership._meta.label_lower, pk), community_id, changes) for pk, community_id in rows],
    )
    return ExpiredChunk(ids, sorted(leaving))


# One chunk in one statement: lock the next due rows after the last chunk's (skipping those another
# worker holds), expire them, take them off their communities' member counts and write their audit
# rows, as the ORM path does. Returns one row, the ids and the distinct communities as arrays, so no
# Python runs per membership. Id order keeps each chunk's updates on neighbouring heap pages.
_EXPIRE_SQL = """
WITH due AS (
    SELECT id FROM {membership}
    WHERE status = %(active)s AND expires_at <= %(now)s AND id > %(after)s
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE {membership} m SET status = %(expired)s WHERE m.id = ANY(ARRAY(SELECT id FROM due))
    RETURNING m.id, m.community_id
), counts AS (
    UPDATE {community} c SET member_count = c.member_count - leaving.n
    FROM (SELECT community_id, COUNT(*) AS n FROM expired GROUP BY community_id) leaving
    WHERE c.id = leaving.community_id
), audit AS (
    INSERT INTO {audit} (actor_id, actor_label, action, target_type, target_id, community_id, changes, note,
                         created_at)
    SELECT %(actor_id)s, %(actor_label)s, 'membership.expired', %(target_type)s, id::text, community_id,
           %(changes)s::jsonb, '', %(at)s
    FROM expired
)
SELECT array_agg(id ORDER BY id), array_agg(DISTINCT community_id ORDER BY community_id) FROM expired
"""


def _expire_chunk_postgresql(
    *, now: datetime, after: int, batch_size: int, actor: Actor
) -> ExpiredChunk | None:
    who = actor_fields(actor)
    params = {
        "active": Membership.Status.ACTIVE.value,
        "expired": Membership.Status.EXPIRED.value,
        "now": now,
        "after": after,
        "limit": batch_size,
        "actor_id": who["actor"].pk if who["actor"] is not None else None,
        "actor_label": who["actor_label"],
        "target_type": Membership._meta.label_lower,
        "changes": json.dumps({"status": [Membership.Status.ACTIVE.value, Membership.Status.EXPIRED.value]}),
        "at": timezone.now(),
    }
    sql = _EXPIRE_SQL.format(
        membership=Membership._meta.db_table,
        community=Community._meta.db_table,
        audit=AuditEntry._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids, community_ids = cursor.fetchone()
    return ExpiredChunk(ids, community_ids) if ids else None
