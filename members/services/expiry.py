"""Membership expiry: memberships past ``expires_at`` turn ``expired`` and lose member-only access."""

from collections import Counter
from datetime import datetime

from django.db import transaction
from django.db.models import F

from members.events import memberships_expired_announce
from members.models import Community, Membership
from shequn_backend.audit import Actor, audit_record_many, job_actor

EXPIRY_JOB = job_actor("expire_memberships")


def membership_expire_due(*, now: datetime, batch_size: int = 2000, actor: Actor = EXPIRY_JOB) -> int:
    """Mark active memberships whose expiry passed by ``now`` as expired; returns how many.

    Access already ends at ``expires_at`` (``active_membership_q``); this makes
    the status say so. Chunked, one transaction per chunk, rows another worker
    holds are skipped (``SKIP LOCKED`` on PostgreSQL): idempotent and safe to
    run on two workers at once. A renewal that lands first moves
    ``expires_at`` forward and the row no longer matches.
    """
    expired = 0
    while True:
        with transaction.atomic():
            ids = list(
                Membership.objects.select_for_update(skip_locked=True)
                .filter(status=Membership.Status.ACTIVE, expires_at__lte=now)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                return expired
            expired += Membership.objects.filter(pk__in=ids).update(status=Membership.Status.EXPIRED)
            memberships = list(
                Membership.objects.filter(pk__in=ids).only("community_id", "user_id", "status")
            )
            for community_id, leaving in Counter(m.community_id for m in memberships).items():
                Community.objects.filter(pk=community_id).update(member_count=F("member_count") - leaving)
            audit_record_many(
                actor=actor,
                action="membership.expired",
                rows=[
                    (m, m.community_id, {"status": [Membership.Status.ACTIVE, m.status]}) for m in memberships
                ],
            )
            memberships_expired_announce(memberships=memberships)  # one event per chunk
