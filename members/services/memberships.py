"""Joining, approval, paid activation and renewal, the referral tree."""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from members import errors
from members.events import membership_status_announce
from members.models import Community, EntryPlan, InviteCode, Membership, User

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


def membership_set_referrer(*, membership: Membership, referrer: Membership | None) -> Membership:
    """Point ``membership`` at a new referrer of the same community; refuse self-referral and cycles."""
    if referrer is not None:
        if referrer.pk == membership.pk or referrer.user_id == membership.user_id:
            raise errors.SelfReferral()
        if referrer.community_id != membership.community_id:
            raise errors.InvalidReferralCode()
        if membership.pk in referral_ancestors(referrer):
            raise errors.ReferralCycle()
    membership.referred_by = referrer
    membership.save(update_fields=["referred_by"])
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
) -> JoinResult:
    """Join by the community's entry rule.

    free -> active; approval -> pending_approval (returned as it is if already
    pending); invite -> active with a valid code; paid -> pending_payment, or
    active for ``trial_days`` on a first join to a plan with a trial; an active
    member of a paid community who names a plan is renewing. Commerce checks
    out ``needs_payment`` results and activates through
    ``membership_activate_paid``. A member who left or expired joins again by
    the rules; a banned one cannot.
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
    membership_status_announce(membership=membership, old_status=old_status)
    return JoinResult(membership, needs_payment=status == Membership.Status.PENDING_PAYMENT)


@transaction.atomic
def membership_approve(*, membership_id: int, community: Community) -> Membership:
    membership = Membership.objects.select_for_update().get(pk=membership_id, community=community)
    if membership.status != Membership.Status.PENDING_APPROVAL:
        raise errors.NotPendingApproval()
    membership.status = Membership.Status.ACTIVE
    membership.joined_at = timezone.now()
    membership.save(update_fields=["status", "joined_at"])
    membership_status_announce(membership=membership, old_status=Membership.Status.PENDING_APPROVAL)
    return membership


def membership_activate_paid(*, membership_id: int, plan: EntryPlan, paid_at: datetime) -> Membership:
    """Activate, or renew, after a paid entry.

    First activation: expires at paid time + ``period_days``. Renewal of a
    still-active membership extends from the later of now and the current
    expiry. Lifetime plans never expire. Call it inside the caller's
    transaction (commerce records the payment), once per paid entry order.
    """
    membership = Membership.objects.select_for_update().get(pk=membership_id)
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
    membership_status_announce(membership=membership, old_status=old_status)
    return membership


def membership_end_paid(*, membership_id: int) -> Membership:
    """End a membership whose entry fee was refunded. Called in the caller's transaction."""
    membership = Membership.objects.select_for_update().get(pk=membership_id)
    if membership.status not in (Membership.Status.BANNED, Membership.Status.LEFT):
        old_status = membership.status
        membership.status = Membership.Status.EXPIRED
        membership.expires_at = timezone.now()
        membership.save(update_fields=["status", "expires_at"])
        membership_status_announce(membership=membership, old_status=old_status)
    return membership
