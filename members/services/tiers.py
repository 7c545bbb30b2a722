"""Tiers (等级): levels reached by points. Changing a threshold moves members between tiers at once."""

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils.translation import gettext as _

from members.errors import InvalidSettings
from members.models import Community, Membership, Tier
from shequn_backend.audit import (
    Actor,
    audit_diff,
    audit_record,
    audit_record_many,
    audit_snapshot,
    audit_update,
)

TIER_FIELDS = ("name", "level", "points_threshold", "discount_percent")


def tier_check(*, community_id: int | None, values: dict, tier: Tier | None = None) -> None:
    """Refuse a discount outside 0-100 % and a level or threshold another tier of the community has."""
    fields: dict[str, list[str]] = {}
    try:
        if not (0 <= Decimal(values["discount_percent"]) <= 100):
            fields["discount_percent"] = [_("Enter a discount between 0 and 100 percent.")]
    except (InvalidOperation, TypeError):
        fields["discount_percent"] = [_("Enter a discount between 0 and 100 percent.")]
    if values.get("points_threshold") is None or values["points_threshold"] < 0:
        fields["points_threshold"] = [_("Enter a threshold of zero or more points.")]
    if community_id is not None:
        others = Tier.objects.filter(community_id=community_id)
        if tier is not None and tier.pk is not None:
            others = others.exclude(pk=tier.pk)
        if others.filter(level=values.get("level")).exists():
            fields["level"] = [_("Another tier of this community has this level.")]
        if others.filter(points_threshold=values.get("points_threshold")).exists():
            fields["points_threshold"] = [_("Another tier of this community has this threshold.")]
    if fields:
        raise InvalidSettings(fields=fields)


@transaction.atomic
def tier_create(*, actor: Actor, community: Community, **values) -> Tier:
    tier_check(community_id=community.pk, values=values)
    tier = Tier.objects.create(community=community, **values)
    audit_record(
        actor=actor,
        action="tier.created",
        target=tier,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(tier, TIER_FIELDS)),
    )
    community_recompute_tiers(actor=actor, community=community)
    return tier


@transaction.atomic
def tier_update(*, actor: Actor, tier: Tier, **fields) -> Tier:
    unknown = set(fields) - set(TIER_FIELDS)
    if unknown:
        raise TypeError(f"unexpected tier fields {sorted(unknown)}")
    tier = Tier.objects.select_for_update().select_related("community").get(pk=tier.pk)
    tier_check(
        community_id=tier.community_id, values={**audit_snapshot(tier, TIER_FIELDS), **fields}, tier=tier
    )
    changes = audit_update(
        actor=actor,
        instance=tier,
        values=fields,
        action="tier.updated",
        community_id=tier.community_id,
        audited=TIER_FIELDS,
    )
    if changes:
        community_recompute_tiers(actor=actor, community=tier.community)
    return tier


@transaction.atomic
def tier_delete(*, actor: Actor, tier: Tier) -> None:
    community = tier.community
    before = audit_snapshot(tier, TIER_FIELDS)
    target = ("members.tier", tier.pk)
    tier.delete()
    audit_record(
        actor=actor,
        action="tier.deleted",
        target=target,
        community_id=community.pk,
        changes=audit_diff(before, {}),
    )
    community_recompute_tiers(actor=actor, community=community)


def community_recompute_tiers(*, actor: Actor, community: Community) -> int:
    """Put every member of ``community`` in the tier their points reach; returns how many moved.

    Set-based: one pass per tier band, so it stays fast for large communities.
    Call it inside the transaction that changed the tiers.
    """
    thresholds = list(
        Tier.objects.filter(community=community)
        .order_by("points_threshold")
        .values_list("pk", "points_threshold")
    )
    bands: list[
        tuple[int | None, int | None, int | None]
    ] = []  # (tier id, lowest points, first points above)
    lowest = thresholds[0][1] if thresholds else None
    bands.append((None, None, lowest))
    for index, (tier_id, threshold) in enumerate(thresholds):
        above = thresholds[index + 1][1] if index + 1 < len(thresholds) else None
        bands.append((tier_id, threshold, above))
    moved = 0
    for tier_id, low, high in bands:
        members = Membership.objects.filter(community=community)
        members = members.filter(tier__isnull=False) if tier_id is None else members.exclude(tier_id=tier_id)
        if low is not None:
            members = members.filter(points__gte=low)
        if high is not None:
            members = members.filter(points__lt=high)
        rows = list(members.order_by("pk").select_for_update(of=("self",)).values_list("pk", "tier_id"))
        if not rows:
            continue
        Membership.objects.filter(pk__in=[pk for pk, _old in rows]).update(tier_id=tier_id)
        audit_record_many(
            actor=actor,
            action="membership.tier_changed",
            rows=[(("members.membership", pk), community.pk, {"tier": [old, tier_id]}) for pk, old in rows],
        )
        moved += len(rows)
    return moved
