"""Creating and editing communities, their attributes and entry plans."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.errors import SlugTaken
from members.events import community_changed
from members.models import Community, CommunityAttribute, EntryPlan, Membership, User
from members.services.memberships import new_referral_code
from members.services.users import normalise_tags
from shequn_backend.events import send_on_commit

MAX_ATTRIBUTES = 20
SETTINGS_FIELDS = {"name", "mission", "description", "rules", "entry_type", "points_per_yuan"}
REFERRAL_FIELDS = {
    "level1_percent": "referral_level1_percent",
    "level2_percent": "referral_level2_percent",
    "return_window_days": "return_window_days",
    "on_entry_orders": "commission_on_entry_orders",
}


def community_set_attributes(*, community: Community, attributes: list[str]) -> list[str]:
    tags = normalise_tags(attributes, limit=MAX_ATTRIBUTES)
    CommunityAttribute.objects.filter(community=community).delete()
    CommunityAttribute.objects.bulk_create(
        [CommunityAttribute(community=community, tag=tag, position=i) for i, tag in enumerate(tags)]
    )
    send_on_commit(community_changed, sender=Community, community_id=community.pk)
    return tags


def community_set_plans(*, community: Community, plans: list[dict]) -> None:
    """Upsert plans by name; plans not named any more are deactivated (orders may point at them)."""
    names = []
    for plan in plans:
        names.append(plan["name"])
        EntryPlan.objects.update_or_create(
            community=community,
            name=plan["name"],
            defaults={
                "price": plan["price"],
                "period_days": plan.get("period_days"),
                "trial_days": plan.get("trial_days", 0),
                "refund_window_days": plan.get("refund_window_days", 3),
                "is_active": True,
            },
        )
    EntryPlan.objects.filter(community=community).exclude(name__in=names).update(is_active=False)


def community_ensure_owner_membership(*, community: Community) -> Membership:
    """The owner is an active member with the owner role, and may use the admin."""
    membership, _ = Membership.objects.update_or_create(
        user=community.owner,
        community=community,
        defaults={"role": Membership.Role.OWNER, "status": Membership.Status.ACTIVE},
        create_defaults={
            "role": Membership.Role.OWNER,
            "status": Membership.Status.ACTIVE,
            "referral_code": new_referral_code(),
            "joined_at": timezone.now(),
        },
    )
    if not community.owner.is_staff:
        community.owner.is_staff = True
        community.owner.save(update_fields=["is_staff"])
    return membership


@transaction.atomic
def community_create(
    *,
    owner: User,
    slug: str,
    name: str,
    mission: str = "",
    description: str = "",
    rules: str = "",
    attributes: list[str] | None = None,
    entry_type: str = Community.EntryType.FREE,
    plans: list[dict] | None = None,
) -> Community:
    if Community.objects.filter(slug=slug).exists():
        raise SlugTaken()
    try:
        with transaction.atomic():
            community = Community.objects.create(
                owner=owner,
                slug=slug,
                name=name,
                mission=mission,
                description=description,
                rules=rules,
                entry_type=entry_type,
            )
    except IntegrityError as exc:
        raise SlugTaken() from exc
    community_set_attributes(community=community, attributes=attributes or [])
    community_set_plans(community=community, plans=plans or [])
    community_ensure_owner_membership(community=community)
    return community


@transaction.atomic
def community_update(
    *,
    community: Community,
    attributes: list[str] | None = None,
    plans: list[dict] | None = None,
    referral: dict | None = None,
    **fields,
) -> Community:
    """Change settings by name; unknown keys are a programming error, not user input."""
    unknown = set(fields) - SETTINGS_FIELDS
    if unknown:
        raise TypeError(f"community_update() got unexpected fields {sorted(unknown)}")
    changed = list(fields)
    for key, value in fields.items():
        setattr(community, key, value)
    for key, value in (referral or {}).items():
        setattr(community, REFERRAL_FIELDS[key], value)
        changed.append(REFERRAL_FIELDS[key])
    if changed:
        community.save(update_fields=changed)
        send_on_commit(community_changed, sender=Community, community_id=community.pk)
    if attributes is not None:
        community_set_attributes(community=community, attributes=attributes)
    if plans is not None:
        community_set_plans(community=community, plans=plans)
    return community
