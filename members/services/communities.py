"""Creating and editing communities and their attributes. Every change is audited with its actor.

Entry plans and tiers have their own modules (``plans.py``, ``tiers.py``).
"""

import re
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import CommissionRateCeilingExceeded, InvalidSettings, SlugTaken
from members.events import community_changed
from members.models import COMMISSION_RATE_HARD_CEILING, Community, CommunityAttribute, Membership, User
from members.services.memberships import community_member_count_move, new_referral_code
from members.services.plans import community_set_plans
from members.services.users import normalise_tags
from shequn_backend.audit import SYSTEM, Actor, audit_diff, audit_record, audit_snapshot, audit_update
from shequn_backend.events import send_on_commit

MAX_ATTRIBUTES = 20
# Settings an owner changes (contract: PATCH owner community; the admin's community page).
SETTINGS_FIELDS = (
    "name",
    "mission",
    "description",
    "rules",
    "entry_type",
    "points_per_yuan",
    "referral_level1_percent",
    "referral_level2_percent",
    "return_window_days",
    "return_address",
    "commission_on_entry_orders",
    "payment_provider",
    "wechatpay_sub_mchid",
)
# The API's names for the referral settings.
REFERRAL_FIELDS = {
    "level1_percent": "referral_level1_percent",
    "level2_percent": "referral_level2_percent",
    "return_window_days": "return_window_days",
    "on_entry_orders": "commission_on_entry_orders",
}
MAX_COMMISSION_PERCENT = Decimal("50")


def commission_ceiling() -> Decimal:
    """``COMMISSION_RATE_CEILING``, never above the database's hard cap."""
    return min(Decimal(settings.COMMISSION_RATE_CEILING), COMMISSION_RATE_HARD_CEILING)


def commission_rates_check(*, level1: Decimal, level2: Decimal) -> None:
    """Refuse (400 ``commission_rate_ceiling``) rates whose sum exceeds the configured ceiling."""
    ceiling = commission_ceiling()
    if Decimal(level1) + Decimal(level2) > ceiling:
        raise CommissionRateCeilingExceeded(ceiling=ceiling)


def community_settings_check(*, values: dict, current: Community | None = None) -> None:
    """Refuse out-of-range settings (the database enforces the same ranges).

    The two commission levels together may not exceed ``COMMISSION_RATE_CEILING``:
    a level not in ``values`` counts with its ``current`` value.
    """
    fields = {}
    for name in ("referral_level1_percent", "referral_level2_percent"):
        if name in values and not (0 <= Decimal(values[name]) <= MAX_COMMISSION_PERCENT):
            fields[name] = [_("Enter a commission between 0 and 50 percent.")]
    if "points_per_yuan" in values and Decimal(values["points_per_yuan"]) < 0:
        fields["points_per_yuan"] = [_("Enter zero or more points per yuan.")]
    if "entry_type" in values and values["entry_type"] not in Community.EntryType.values:
        fields["entry_type"] = [_("Choose one of the entry types.")]
    providers = ("", *(value for value, _label in Community._meta.get_field("payment_provider").choices))
    if "payment_provider" in values and values["payment_provider"] not in providers:
        fields["payment_provider"] = [_("Choose one of the payment providers, or leave it empty.")]
    sub_mchid = values.get("wechatpay_sub_mchid") or ""
    if sub_mchid and not re.fullmatch(r"\d{8,32}", sub_mchid):
        fields["wechatpay_sub_mchid"] = [_("Enter the sub-merchant number WeChat Pay gave you: digits only.")]
    if fields:
        raise InvalidSettings(fields=fields)
    rates = ("referral_level1_percent", "referral_level2_percent")
    if any(name in values for name in rates):
        level1, level2 = (
            Decimal(values[name]) if values.get(name) is not None else getattr(current, name, Decimal(0))
            for name in rates
        )
        commission_rates_check(level1=level1, level2=level2)


def _audit_rates(*, actor: Actor, community: Community, before: dict) -> None:
    """A change of commission rates gets its own audit row, before and after (both levels)."""
    after = audit_snapshot(community, ["referral_level1_percent", "referral_level2_percent"])
    if audit_diff(before, after):
        audit_record(
            actor=actor,
            action="community.commission_rates_changed",
            target=community,
            community_id=community.pk,
            changes={name: [before.get(name), after[name]] for name in after},
            note=f"ceiling {commission_ceiling()}%",
        )


def community_set_attributes(
    *, community: Community, attributes: list[str], actor: Actor = SYSTEM
) -> list[str]:
    tags = normalise_tags(attributes, limit=MAX_ATTRIBUTES)
    before = list(CommunityAttribute.objects.filter(community=community).values_list("tag", flat=True))
    if before == tags:
        return tags
    with transaction.atomic():
        CommunityAttribute.objects.filter(community=community).delete()
        CommunityAttribute.objects.bulk_create(
            [CommunityAttribute(community=community, tag=tag, position=i) for i, tag in enumerate(tags)]
        )
        audit_record(
            actor=actor,
            action="community.attributes_changed",
            target=community,
            community_id=community.pk,
            changes={"attributes": [before, tags]},
        )
    send_on_commit(community_changed, sender=Community, community_id=community.pk)
    return tags


@transaction.atomic
def community_ensure_owner_membership(*, community: Community, actor: Actor = SYSTEM) -> Membership:
    """The owner is an active member with the owner role, and may use the admin."""
    membership = (
        Membership.objects.select_for_update().filter(user=community.owner, community=community).first()
    )
    before = audit_snapshot(membership, ["role", "status"]) if membership else {}
    old_status = membership.status if membership is not None else None
    if membership is None:
        membership = Membership(
            user=community.owner,
            community=community,
            referral_code=new_referral_code(),
            joined_at=timezone.now(),
        )
    membership.role, membership.status = Membership.Role.OWNER, Membership.Status.ACTIVE
    changes = audit_diff(before, audit_snapshot(membership, ["role", "status"]))
    if changes:
        membership.save()
        community_member_count_move(
            community_id=community.pk, old_status=old_status, new_status=membership.status
        )
        audit_record(
            actor=actor,
            action="membership.owner_ensured",
            target=membership,
            community_id=community.pk,
            changes=changes,
        )
    if not community.owner.is_staff:
        community.owner.is_staff = True
        community.owner.save(update_fields=["is_staff"])
        audit_record(
            actor=actor,
            action="user.staff_granted",
            target=community.owner,
            community_id=community.pk,
            changes={"is_staff": [False, True]},
        )
    return membership


def _settings_from(*, referral: dict | None, fields: dict) -> dict:
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:  # a programming error, not user input
        raise TypeError(f"unexpected community fields {sorted(unknown)}")
    values = dict(fields)
    for key, value in (referral or {}).items():
        values[REFERRAL_FIELDS[key]] = value
    return values


@transaction.atomic
def community_create(
    *,
    actor: Actor,
    owner: User,
    slug: str,
    name: str,
    attributes: list[str] | None = None,
    plans: list[dict] | None = None,
    referral: dict | None = None,
    **fields,
) -> Community:
    """Found a community owned by ``owner``; the caller checked that ``actor`` may found one."""
    values = _settings_from(referral=referral, fields=fields)
    community_settings_check(values=values)
    if Community.objects.filter(slug=slug).exists():
        raise SlugTaken()
    try:
        with transaction.atomic():
            community = Community.objects.create(owner=owner, slug=slug, name=name, **values)
    except IntegrityError as exc:
        raise SlugTaken() from exc
    audit_record(
        actor=actor,
        action="community.created",
        target=community,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(community, ["slug", "owner", *SETTINGS_FIELDS])),
    )
    community_set_attributes(community=community, attributes=attributes or [], actor=actor)
    community_set_plans(community=community, plans=plans or [], actor=actor)
    community_ensure_owner_membership(community=community, actor=actor)
    return community


@transaction.atomic
def community_update(
    *,
    actor: Actor,
    community: Community,
    attributes: list[str] | None = None,
    plans: list[dict] | None = None,
    referral: dict | None = None,
    **fields,
) -> Community:
    """Change settings by model field name (``referral`` takes the API's names for the referral ones)."""
    values = _settings_from(referral=referral, fields=fields)
    community = Community.objects.select_for_update().get(pk=community.pk)
    community_settings_check(values=values, current=community)
    rates_before = audit_snapshot(community, ["referral_level1_percent", "referral_level2_percent"])
    changes = audit_update(
        actor=actor, instance=community, values=values, action="community.updated", community_id=community.pk
    )
    if changes:
        _audit_rates(actor=actor, community=community, before=rates_before)
        send_on_commit(community_changed, sender=Community, community_id=community.pk)
    if attributes is not None:
        community_set_attributes(community=community, attributes=attributes, actor=actor)
    if plans is not None:
        community_set_plans(community=community, plans=plans, actor=actor)
    return community
