"""Record members' activity and exits: the raw facts the community health figures are read from.

Both writes are idempotent (an insert that ignores a unique-constraint
conflict), so the middleware, signal receivers and any retry may call them
as often as they like, from any number of processes.
"""

import logging
from datetime import date, datetime

from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from members.models import Membership
from shequn_backend.calendar import business_day
from trust.models import ActivityDay, MembershipExit

EXITED_STATUSES = (Membership.Status.LEFT, Membership.Status.BANNED, Membership.Status.EXPIRED)
DEDUP_SECONDS = 26 * 3600  # a little over a day: the key carries the day, so it cannot outlive it wrongly

logger = logging.getLogger(__name__)


def _first_sighting(key: str) -> bool:
    """Whether the cache has not seen ``key`` yet; True when the cache is down (the insert dedups)."""
    try:
        return cache.add(key, 1, timeout=DEDUP_SECONDS)
    except Exception:  # noqa: BLE001 - redis, memcached and socket errors share no base class
        logger.warning("activity cache unavailable; recording through the database", exc_info=True)
        return True


def activity_record(*, user_id: int, community_id: int, day: date | None = None) -> bool:
    """Mark ``user_id`` active in ``community_id`` on ``day``; True if this call wrote the row.

    The cache spares the database the repeat writes of one busy member; the
    unique constraint keeps the table right when the cache is cold or shared
    by nobody. The caller decides whether the user belongs to the community.
    """
    day = day or business_day(timezone.now())
    key = f"trust:activity:{community_id}:{user_id}:{day.isoformat()}"
    if not _first_sighting(key):
        return False
    created = ActivityDay.objects.bulk_create(
        [ActivityDay(community_id=community_id, user_id=user_id, day=day)], ignore_conflicts=True
    )
    return bool(created)


def _slug_key(slug: str, user_id: int, day: date) -> str:
    return f"trust:activity-slug:{slug}:{user_id}:{day.isoformat()}"


def activity_seen_today(*, user_id: int, slug: str) -> bool:
    """Whether today's activity of ``user_id`` in community ``slug`` is already recorded (cache only)."""
    try:
        return cache.get(_slug_key(slug, user_id, business_day(timezone.now()))) is not None
    except Exception:  # noqa: BLE001 - cache down: not known, so record (idempotently)
        logger.warning("activity cache unavailable", exc_info=True)
        return False


def activity_record_member(*, user_id: int, slug: str) -> bool:
    """Record today's activity in community ``slug`` if ``user_id`` is an active member there.

    Visitors and members of other communities are not recorded. Two queries
    on the first request of the day, none after (the cache remembers).
    """
    day = business_day(timezone.now())
    if not _first_sighting(_slug_key(slug, user_id, day)):
        return False
    community_id = (
        Membership.objects.filter(user_id=user_id, community__slug=slug, status=Membership.Status.ACTIVE)
        .values_list("community_id", flat=True)
        .first()
    )
    if community_id is None:
        return False
    created = ActivityDay.objects.bulk_create(
        [ActivityDay(community_id=community_id, user_id=user_id, day=day)], ignore_conflicts=True
    )
    return bool(created)


def membership_exit_sync(*, membership: Membership, now: datetime | None = None) -> None:
    """Keep the exit record in step with the membership's status.

    An exited membership gets one record (the first time seen; an expiry is
    dated at ``expires_at`` when that has passed); a membership that is active
    or pending again loses it, so a returning member is not counted as churned.
    """
    now = now or timezone.now()
    if membership.status in EXITED_STATUSES:
        exited_at = now
        if membership.status == Membership.Status.EXPIRED and membership.expires_at:
            exited_at = min(membership.expires_at, now)
        MembershipExit.objects.bulk_create(
            [
                MembershipExit(
                    membership_id=membership.pk,
                    community_id=membership.community_id,
                    status=membership.status,
                    exited_at=exited_at,
                )
            ],
            ignore_conflicts=True,
        )
    else:
        MembershipExit.objects.filter(membership_id=membership.pk).delete()


def membership_exits_sync_many(*, membership_ids: list[int], now: datetime | None = None) -> None:
    """``membership_exit_sync`` for a chunk of memberships at once: one statement on PostgreSQL (no
    model instances), elsewhere one read, one insert, one delete."""
    if not membership_ids:
        return
    sync = _exits_sync_sql if connection.vendor == "postgresql" else _exits_sync_orm
    sync(membership_ids=list(membership_ids), now=now or timezone.now())


def _exits_sync_orm(*, membership_ids: list[int], now: datetime) -> None:
    exits, returned = [], []
    memberships = Membership.objects.filter(pk__in=membership_ids).only(
        "pk", "community_id", "status", "expires_at"
    )
    for membership in memberships:
        if membership.status not in EXITED_STATUSES:
            returned.append(membership.pk)
            continue
        exited_at = now
        if membership.status == Membership.Status.EXPIRED and membership.expires_at:
            exited_at = min(membership.expires_at, now)
        exits.append(
            MembershipExit(
                membership_id=membership.pk,
                community_id=membership.community_id,
                status=membership.status,
                exited_at=exited_at,
            )
        )
    MembershipExit.objects.bulk_create(exits, ignore_conflicts=True)
    if returned:
        MembershipExit.objects.filter(membership_id__in=returned).delete()


def _exits_sync_sql(*, membership_ids: list[int], now: datetime) -> None:
    sql = _EXITS_SYNC_SQL.format(exit=MembershipExit._meta.db_table, membership=Membership._meta.db_table)
    params = {
        "ids": membership_ids,
        "now": now,
        "exited": [status.value for status in EXITED_STATUSES],
        "expired": Membership.Status.EXPIRED.value,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# The same rows as ``_exits_sync_orm`` in one statement, without a model instance: exited
# memberships get their record (an expiry dated at ``expires_at`` when that has passed, an existing
# record kept), the others lose theirs.
_EXITS_SYNC_SQL = """
WITH m AS (
    SELECT id, community_id, status, expires_at FROM {membership} WHERE id = ANY(%(ids)s::bigint[])
), returned AS (
    DELETE FROM {exit} e USING m WHERE e.membership_id = m.id AND m.status <> ALL(%(exited)s::text[])
)
INSERT INTO {exit} (membership_id, community_id, status, exited_at)
SELECT id, community_id, status,
       CASE WHEN status = %(expired)s AND expires_at IS NOT NULL THEN LEAST(expires_at, %(now)s)
            ELSE %(now)s END
FROM m WHERE status = ANY(%(exited)s::text[])
ON CONFLICT (membership_id) DO NOTHING
"""
