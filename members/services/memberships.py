"""Joining, approval, paid activation and renewal, the referral tree."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.utils import timezone

from members import errors
from members.events import membership_status_announce
from members.models import Community, EntryPlan, InviteCode, Membership, Tier, User
from shequn_backend.audit import SYSTEM, Actor, audit_diff, audit_record, audit_snapshot

# What the trail records of a membership: who it is in the community, never the points (the ledger has those).
AUDITED_FIELDS = ("role", "status", "tier", "referred_by", "plan", "joined_at", "expires_at")

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))


def _referrer_for(*, community: Community, user: User, referral_code: str | None) -> Membership | None:
    if not referral_code:
        return None
    referrer = (
        Membership.objects.filter(
            community=community, referral_code=referral_code.strip().upper(), status=Membership.Status.ACTIVE
        )
        .select_related("user")
        .first()
    )
    if referrer is None:
        raise errors.InvalidReferralCode()
    if referrer.user_id == user.pk:
        raise errors.SelfReferral()
    return referrer


def referral_ancestors(membership: Membership, *, limit: int = 1000) -> list[int]:
    """The ids up the referral tree from ``membership`` (its referrer, theirs, ...)."""
    ancestors: list[int] = []
    current = membership.referred_by_id
    while current is not None and len(ancestors) < limit:
        ancestors.append(current)
        current = Membership.objects.filter(pk=current).values_list("referred_by_id", flat=True).first()
    return ancestors


def membership_referrer_check(*, membership: Membership, referrer: Membership | None) -> None:
    """Refuse self-referral, a referrer of another community and cycles in the referral tree."""
    if referrer is None:
        return
    if referrer.pk == membership.pk or referrer.user_id == membership.user_id:
        raise errors.SelfReferral()
    if referrer.community_id != membership.community_id:
        raise errors.InvalidReferralCode()
    if membership.pk in referral_ancestors(referrer):
        raise errors.ReferralCycle()


def _audited(*, actor: Actor, action: str, membership: Membership, before: dict, note: str = "") -> None:
    changes = audit_diff(before, audit_snapshot(membership, AUDITED_FIELDS))
    if changes:
        audit_record(
            actor=actor,
            action=action,
            target=membership,
            community_id=membership.community_id,
            changes=changes,
            note=note,
        )


def community_member_count_move(*, community_id: int, old_status: str | None, new_status: str) -> None:
    """Keep ``Community.member_count`` in step with one membership moving status (caller's transaction)."""
    delta = (new_status == Membership.Status.ACTIVE) - (old_status == Membership.Status.ACTIVE)
    if delta:
        Community.objects.filter(pk=community_id).update(member_count=F("member_count") + delta)


def community_member_counts_refresh(*, community_ids: list[int] | None = None) -> int:
    """Recount active memberships from scratch (bulk loaders, repairs); returns the communities updated."""
    communities = Community.objects.all()
    if community_ids is not None:
        communities = communities.filter(pk__in=community_ids)
    counts = dict(
        Membership.objects.filter(community__in=communities, status=Membership.Status.ACTIVE)
        .values_list("community_id")
        .annotate(n=Count("pk"))
    )
    updated = 0
    for pk, current in communities.values_list("pk", "member_count"):
        if counts.get(pk, 0) != current:
            updated += Community.objects.filter(pk=pk).update(member_count=counts.get(pk, 0))
    return updated


def _status_moved(*, membership: Membership, old_status: str | None) -> None:
    """After a membership's status was saved: adjust its community's count, announce the move on commit."""
    if old_status != membership.status:
        community_member_count_move(
            community_id=membership.community_id, old_status=old_status, new_status=membership.status
        )
    membership_status_announce(membership=membership, old_status=old_status)


def _locked(membership_id: int) -> Membership:
    return Membership.objects.select_for_update().get(pk=membership_id)


@transaction.atomic
def membership_set_referrer(
    *, actor: Actor, membership: Membership, referrer: Membership | None
) -> Membership:
    """Point ``membership`` at a new referrer of the same community; refuse self-referral and cycles."""
    membership = _locked(membership.pk)
    membership_referrer_check(membership=membership, referrer=referrer)
    before = audit_snapshot(membership, AUDITED_FIELDS)
    membership.referred_by = referrer
    membership.save(update_fields=["referred_by"])
    _audited(actor=actor, action="membership.referrer_changed", membership=membership, before=before)
    return membership


def membership_role_check(*, membership: Membership, role: str) -> None:
    """The owner role belongs to the community's owner: nobody gives or takes it by hand."""
    if role not in Membership.Role.values:
        raise errors.RoleChangeRefused()
    if role != membership.role and Membership.Role.OWNER in (role, membership.role):
        raise errors.RoleChangeRefused()


@transaction.atomic
def membership_set_role(*, actor: Actor, membership: Membership, role: str) -> Membership:
    membership = _locked(membership.pk)
    membership_role_check(membership=membership, role=role)
    before = audit_snapshot(membership, AUDITED_FIELDS)
    membership.role = role
    membership.save(update_fields=["role"])
    _audited(actor=actor, action="membership.role_changed", membership=membership, before=before)
    return membership


# The hand-made status changes: approve (pending approval -> active), ban, unban (banned -> left:
# they may join again by the community's rules), remove or leave (-> left). Everything else
# follows joining, paying and expiry.
MANUAL_STATUS_CHANGES = {
    Membership.Status.ACTIVE: {Membership.Status.PENDING_APPROVAL},
    Membership.Status.BANNED: set(Membership.Status.values) - {Membership.Status.BANNED},
    Membership.Status.LEFT: set(Membership.Status.values) - {Membership.Status.LEFT},
}


def membership_status_check(*, membership: Membership, status: str) -> None:
    if status == membership.status:
        return
    if membership.role == Membership.Role.OWNER or membership.status not in MANUAL_STATUS_CHANGES.get(
        status, ()
    ):
        raise errors.StatusChangeRefused()


@transaction.atomic
def membership_set_status(*, actor: Actor, membership: Membership, status: str) -> Membership:
    """Approve, ban, unban or remove by hand (see ``MANUAL_STATUS_CHANGES``); the owner's stays active."""
    membership = _locked(membership.pk)
    membership_status_check(membership=membership, status=status)
    if status == membership.status:
        return membership
    before = audit_snapshot(membership, AUDITED_FIELDS)
    old_status = membership.status
    membership.status = status
    if status == Membership.Status.ACTIVE:
        membership.joined_at = timezone.now()
    membership.save(update_fields=["status", "joined_at"])
    action = {
        Membership.Status.ACTIVE: "membership.approved",
        Membership.Status.BANNED: "membership.banned",
        Membership.Status.LEFT: "membership.unbanned"
        if old_status == Membership.Status.BANNED
        else "membership.left",
    }[status]
    _audited(actor=actor, action=action, membership=membership, before=before)
    _status_moved(membership=membership, old_status=old_status)
    return membership


def membership_ban(*, actor: Actor, membership: Membership) -> Membership:
    return membership_set_status(actor=actor, membership=membership, status=Membership.Status.BANNED)


def membership_unban(*, actor: Actor, membership: Membership) -> Membership:
    """Lift a ban: the person may join again by the community's rules (they are not let back in)."""
    if membership.status != Membership.Status.BANNED:
        raise errors.StatusChangeRefused()
    return membership_set_status(actor=actor, membership=membership, status=Membership.Status.LEFT)


def membership_leave(*, actor: Actor, membership: Membership) -> Membership:
    return membership_set_status(actor=actor, membership=membership, status=Membership.Status.LEFT)


def membership_tier_check(*, membership: Membership, tier: Tier | None) -> None:
    if tier is not None and tier.community_id != membership.community_id:
        raise errors.InvalidSettings(fields={"tier": [str(errors.InvalidTier.message)]})


@transaction.atomic
def membership_set_tier(*, actor: Actor, membership: Membership, tier: Tier | None) -> Membership:
    """Put a member in a tier by hand; the next points change puts them where their points reach."""
    membership = _locked(membership.pk)
    membership_tier_check(membership=membership, tier=tier)
    before = audit_snapshot(membership, AUDITED_FIELDS)
    membership.tier = tier
    membership.save(update_fields=["tier"])
    _audited(actor=actor, action="membership.tier_changed", membership=membership, before=before)
    return membership


@transaction.atomic
def membership_set_expiry(*, actor: Actor, membership: Membership, expires_at: datetime | None) -> Membership:
    membership = _locked(membership.pk)
    before = audit_snapshot(membership, AUDITED_FIELDS)
    membership.expires_at = expires_at
    membership.save(update_fields=["expires_at"])
    _audited(actor=actor, action="membership.expiry_changed", membership=membership, before=before)
    return membership


def _consume_invite(*, community: Community, invite_code: str | None) -> InviteCode:
    if not invite_code:
        raise errors.InvalidInviteCode()
    invite = (
        InviteCode.objects.select_for_update().filter(community=community, code=invite_code.strip()).first()
    )
    now = timezone.now()
    if (
        invite is None
        or not invite.is_active
        or invite.uses >= invite.max_uses
        or (invite.expires_at is not None and invite.expires_at <= now)
    ):
        raise errors.InvalidInviteCode()
    invite.uses += 1
    invite.save(update_fields=["uses"])
    return invite


@dataclass(frozen=True)
class JoinResult:
    membership: Membership
    needs_payment: bool  # a paid plan to check out: first entry or a renewal


@transaction.atomic
def membership_join(
    *,
    user: User,
    community: Community,
    plan: EntryPlan | None = None,
    referral_code: str | None = None,
    invite_code: str | None = None,
    actor: Actor | None = None,
) -> JoinResult:
    """Join by the community's entry rule.

    free -> active; approval -> pending_approval (returned as it is if already
    pending); invite -> active with a valid code; paid -> pending_payment, or
    active for ``trial_days`` on a first join to a plan with a trial; an active
    member of a paid community who names a plan is renewing. Commerce checks
    out ``needs_payment`` results and activates through
    ``membership_activate_paid``. A member who left or expired joins again by
    the rules; a banned one cannot. ``actor`` defaults to ``user``: people join themselves.
    """
    membership = Membership.objects.select_for_update().filter(user=user, community=community).first()
    paid = community.entry_type == Community.EntryType.PAID
    if paid and (plan is None or plan.community_id != community.pk or not plan.is_active):
        raise errors.PlanRequired()
    if membership is not None and membership.status == Membership.Status.BANNED:
        raise errors.MembershipBanned()
    referrer = _referrer_for(community=community, user=user, referral_code=referral_code)
    if membership is not None:
        if membership.status == Membership.Status.ACTIVE:
            if paid:
                return JoinResult(membership, needs_payment=True)
            raise errors.AlreadyMember()
        if membership.status == Membership.Status.PENDING_APPROVAL:
            return JoinResult(membership, needs_payment=False)

    if community.entry_type == Community.EntryType.INVITE:
        _consume_invite(community=community, invite_code=invite_code)

    now = timezone.now()
    first_join = membership is None or membership.joined_at is None
    old_status = membership.status if membership is not None else None
    before = audit_snapshot(membership, AUDITED_FIELDS) if membership is not None else {}
    if membership is None:
        membership = Membership(user=user, community=community, referral_code=new_referral_code())
    if paid and plan.trial_days and first_join:
        status, expires_at = Membership.Status.ACTIVE, now + timedelta(days=plan.trial_days)
    else:
        status = {
            Community.EntryType.FREE: Membership.Status.ACTIVE,
            Community.EntryType.INVITE: Membership.Status.ACTIVE,
            Community.EntryType.APPROVAL: Membership.Status.PENDING_APPROVAL,
            Community.EntryType.PAID: Membership.Status.PENDING_PAYMENT,
        }[community.entry_type]
        expires_at = None
    membership.status = status
    membership.plan = plan if paid else None
    if status == Membership.Status.ACTIVE:
        membership.joined_at, membership.expires_at = now, expires_at
    if membership.referred_by_id is None and referrer is not None:
        membership.referred_by = referrer
    try:
        with transaction.atomic():
            membership.save()
    except IntegrityError as exc:  # a referral code collision (1 in 10^12): the client may retry
        raise errors.ApplicationError(code="conflict", http_status=409) from exc
    _audited(
        actor=actor or user,
        action="membership.joined",
        membership=membership,
        before=before,
        note=f"invite code {invite_code.strip()}"
        if community.entry_type == Community.EntryType.INVITE
        else "",
    )
    _status_moved(membership=membership, old_status=old_status)
    return JoinResult(membership, needs_payment=status == Membership.Status.PENDING_PAYMENT)


@transaction.atomic
def membership_approve(*, actor: Actor, membership_id: int, community: Community) -> Membership:
    """Admit a member waiting for approval; DoesNotExist if the membership is not ``community``'s."""
    membership = Membership.objects.select_for_update().get(pk=membership_id, community=community)
    if membership.status != Membership.Status.PENDING_APPROVAL:
        raise errors.NotPendingApproval()
    return membership_set_status(actor=actor, membership=membership, status=Membership.Status.ACTIVE)


def membership_activate_paid(
    *, membership_id: int, plan: EntryPlan, paid_at: datetime, actor: Actor = SYSTEM
) -> Membership:
    """Activate, or renew, after a paid entry.

    First activation: expires at paid time + ``period_days``. Renewal of a
    still-active membership extends from the later of now and the current
    expiry. Lifetime plans never expire. Call it inside the caller's
    transaction (commerce records the payment), once per paid entry order.
    """
    membership = Membership.objects.select_for_update().get(pk=membership_id)
    before = audit_snapshot(membership, AUDITED_FIELDS)
    now = timezone.now()
    old_status = membership.status
    renewing = old_status == Membership.Status.ACTIVE
    if plan.period_days is None:
        membership.expires_at = None
    elif renewing and membership.expires_at is not None:
        membership.expires_at = max(now, membership.expires_at) + timedelta(days=plan.period_days)
    else:
        membership.expires_at = paid_at + timedelta(days=plan.period_days)
    if not renewing:
        membership.joined_at = paid_at
    membership.status = Membership.Status.ACTIVE
    membership.plan = plan
    membership.save(update_fields=["status", "joined_at", "expires_at", "plan"])
    action = "membership.renewed" if renewing else "membership.activated_paid"
    _audited(actor=actor, action=action, membership=membership, before=before)
    _status_moved(membership=membership, old_status=old_status)
    return membership


def membership_end_paid(*, membership_id: int, actor: Actor = SYSTEM) -> Membership:
    """End a membership whose entry fee was refunded. Called in the caller's transaction."""
    membership = Membership.objects.select_for_update().get(pk=membership_id)
    if membership.status not in (Membership.Status.BANNED, Membership.Status.LEFT):
        before = audit_snapshot(membership, AUDITED_FIELDS)
        old_status = membership.status
        membership.status = Membership.Status.EXPIRED
        membership.expires_at = timezone.now()
        membership.save(update_fields=["status", "expires_at"])
        _audited(actor=actor, action="membership.ended_paid", membership=membership, before=before)
        _status_moved(membership=membership, old_status=old_status)
    return membership
