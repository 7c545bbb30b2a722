"""The append-only points ledger (积分) and the tier that follows the balance."""

from django.db import transaction
from django.db.models import F

from members.models import Membership, PointsEntry, Tier
from shequn_backend.audit import SYSTEM, Actor, audit_record


def tier_for_points(*, community_id: int, points: int) -> Tier | None:
    return (
        Tier.objects.filter(community_id=community_id, points_threshold__lte=points)
        .order_by("-points_threshold")
        .first()
    )


@transaction.atomic
def points_award(
    *, membership_id: int, delta: int, reason: str, idempotency_key: str, actor: Actor = SYSTEM
) -> PointsEntry:
    """Append ``delta`` points (negative to take back) once per ``idempotency_key``.

    Locks the membership row first, so concurrent awards serialise: the
    balance never loses or doubles a point, and a repeated key returns the
    first entry without changing anything. The tier is recomputed in the same
    transaction, up or down.
    """
    membership = Membership.objects.select_for_update().get(pk=membership_id)
    existing = PointsEntry.objects.filter(membership=membership, idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    entry = PointsEntry.objects.create(
        membership=membership, delta=delta, reason=reason[:200], idempotency_key=idempotency_key
    )
    before = membership.points
    Membership.objects.filter(pk=membership.pk).update(points=F("points") + delta)
    membership.refresh_from_db(fields=["points"])
    audit_record(
        actor=actor,
        action="points.awarded",
        target=membership,
        community_id=membership.community_id,
        changes={"points": [before, membership.points]},
        note=f"{reason[:200]} ({idempotency_key})",
    )
    membership_recompute_tier(membership=membership, actor=actor)
    return entry


def membership_recompute_tier(*, membership: Membership, actor: Actor = SYSTEM) -> Membership:
    """Put the member in the tier their points reach; call it under the membership's row lock."""
    tier = tier_for_points(community_id=membership.community_id, points=membership.points)
    old = membership.tier_id
    if old != (tier.pk if tier else None):
        membership.tier = tier
        membership.save(update_fields=["tier"])
        audit_record(
            actor=actor,
            action="membership.tier_changed",
            target=membership,
            community_id=membership.community_id,
            changes={"tier": [old, membership.tier_id]},
        )
    return membership
