"""Membership expiry: memberships past ``expires_at`` turn ``expired`` and lose member-only access."""

import json
from collections import Counter
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from members.events import memberships_expired_announce
from members.models import Community, Membership
from shequn_backend.audit import Actor, actor_fields, audit_record_many, job_actor
from shequn_backend.models import AuditEntry

EXPIRY_JOB = job_actor("expire_memberships")


def membership_expire_due(*, now: datetime, batch_size: int = 2000, actor: Actor = EXPIRY_JOB) -> int:
    """Mark active memberships whose expiry passed by ``now`` as expired; returns how many.

    Access already ends at ``expires_at`` (``active_membership_q``); this makes
    the status say so. Chunked, one transaction per chunk, rows another worker
    holds are skipped (``SKIP LOCKED`` on PostgreSQL): idempotent and safe to
    run on two workers at once. A renewal that lands first moves
    ``expires_at`` forward and the row no longer matches. On PostgreSQL one
    statement per chunk updates, counts and audits (``_EXPIRE_SQL``).
    """
    expire_chunk = _expire_chunk_postgresql if connection.vendor == "postgresql" else _expire_chunk_orm
    expired = 0
    while True:
        with transaction.atomic():
            memberships = expire_chunk(now=now, batch_size=batch_size, actor=actor)
            if not memberships:
                return expired
            expired += len(memberships)
            memberships_expired_announce(memberships=memberships)  # one event per chunk


def _expire_chunk_orm(*, now: datetime, batch_size: int, actor: Actor) -> list[Membership]:
    ids = list(
        Membership.objects.select_for_update(skip_locked=True)
        .filter(status=Membership.Status.ACTIVE, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if not ids:
        return []
    Membership.objects.filter(pk__in=ids).update(status=Membership.Status.EXPIRED)
    memberships = list(Membership.objects.filter(pk__in=ids).only("community_id", "user_id", "status"))
    for community_id, leaving in Counter(m.community_id for m in memberships).items():
        Community.objects.filter(pk=community_id).update(member_count=F("member_count") - leaving)
    audit_record_many(
        actor=actor,
        action="membership.expired",
        rows=[(m, m.community_id, {"status": [Membership.Status.ACTIVE, m.status]}) for m in memberships],
    )
    return memberships


# One chunk in one statement: lock the due rows (skipping those another worker holds), expire them,
# take them off their communities' member counts and write their audit rows, as the ORM path does.
_EXPIRE_SQL = """
WITH due AS (
    SELECT id FROM {membership}
    WHERE status = %(active)s AND expires_at <= %(now)s
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), expired AS (
    UPDATE {membership} m SET status = %(expired)s FROM due WHERE m.id = due.id
    RETURNING m.id, m.community_id, m.user_id
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
SELECT id, community_id, user_id FROM expired ORDER BY id
"""


def _expire_chunk_postgresql(*, now: datetime, batch_size: int, actor: Actor) -> list[Membership]:
    who = actor_fields(actor)
    sql = _EXPIRE_SQL.format(
        membership=Membership._meta.db_table,
        community=Community._meta.db_table,
        audit=AuditEntry._meta.db_table,
    )
    params = {
        "active": Membership.Status.ACTIVE.value,
        "expired": Membership.Status.EXPIRED.value,
        "now": now,
        "limit": batch_size,
        "actor_id": who["actor"].pk if who["actor"] is not None else None,
        "actor_label": who["actor_label"],
        "target_type": Membership._meta.label_lower,
        "changes": json.dumps({"status": [Membership.Status.ACTIVE.value, Membership.Status.EXPIRED.value]}),
        "at": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            Membership(pk=pk, community_id=community_id, user_id=user_id, status=Membership.Status.EXPIRED)
            for pk, community_id, user_id in cursor.fetchall()
        ]
