"""Coupons: giving them out, applying one to an order, reserving, using and returning it.

Limits hold under load with conditional updates, never a read-then-write:

* giving out (issue, claim, automatic): ``UPDATE coupon SET issued_count =
  issued_count + n WHERE issued_count + n <= total_limit``; the row lock it
  takes serialises the per-member count that follows in the same transaction;
* spending: ``UPDATE member_coupon SET status = 'reserved', order = ...
  WHERE status = 'available'``: of racing orders with the same coupon one wins,
  the others roll back (their stock reservation with them).

A reserved coupon comes back when its unpaid order is cancelled or its hold
expires; a used one stays used when the order is refunded, unless the coupon
says ``return_on_refund`` or the owner gives it back (``member_coupon_restore``).
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.models import Coupon, MemberCoupon, Order, OrderLine
from commerce.pricing import CENT, HUNDRED, allocate_largest_remainder, money
from members.models import Membership
from shequn_backend.audit import Actor, audit_record, audit_record_many

ZERO = Decimal("0.00")
COUPON_FIELDS = (
    "name",
    "kind",
    "amount_off",
    "percent_off",
    "max_discount",
    "min_spend",
    "scope",
    "valid_from",
    "valid_until",
    "total_limit",
    "per_member_limit",
    "trigger",
    "code",
    "return_on_refund",
    "is_active",
)
TRIGGER_SOURCE = {
    Coupon.Trigger.JOIN: MemberCoupon.Source.JOIN,
    Coupon.Trigger.RENEWAL: MemberCoupon.Source.RENEWAL,
    Coupon.Trigger.REFERRAL: MemberCoupon.Source.REFERRAL,
    Coupon.Trigger.RENEWAL_REMINDER: MemberCoupon.Source.RENEWAL_REMINDER,
}


# --- Owner: the coupon itself ----------------------------------------------------------------------


def coupon_check_values(*, values: dict) -> dict[str, list[str]]:
    """What is wrong with a coupon's values, by field (empty: fine); the admin form shows the same."""
    problems: dict[str, list[str]] = {}
    kind = values.get("kind")
    if kind == Coupon.Kind.AMOUNT and not (values.get("amount_off") or ZERO) > 0:
        problems["amount_off"] = [_("Enter the amount off (满减) above 0.")]
    if kind == Coupon.Kind.PERCENT:
        percent = values.get("percent_off") or ZERO
        if not ZERO < percent < HUNDRED:
            problems["percent_off"] = [_("Enter a percent off between 0 and 100 (50 is half price).")]
    start, end = values.get("valid_from"), values.get("valid_until")
    if start and end and end <= start:
        problems["valid_until"] = [_("The coupon must end after it starts.")]
    if values.get("code") and values.get("trigger", Coupon.Trigger.MANUAL) != Coupon.Trigger.MANUAL:
        problems["code"] = [_("Only coupons the owner gives out can have a claim code.")]
    return problems


def coupon_normalise(values: dict) -> dict:
    """The values as stored: only the kind's own amount or percent, the claim code upper-cased."""
    values = dict(values)
    if values.get("kind") == Coupon.Kind.AMOUNT:
        values["percent_off"] = None
    elif values.get("kind") == Coupon.Kind.PERCENT:
        values["amount_off"] = None
    if "code" in values:
        values["code"] = (values["code"] or "").strip().upper()
    return values


def coupon_create(*, actor: Actor, community, **values) -> Coupon:
    """A new coupon of ``community``; ``ApplicationError`` (400, by field) when its values disagree."""
    values = coupon_normalise(values)
    problems = coupon_check_values(values=values)
    if problems:
        raise errors.ApplicationError(code="validation_error", fields=problems)
    with transaction.atomic():
        coupon = Coupon.objects.create(community=community, **values)
        audit_record(
            actor=actor,
            action="coupon.created",
            target=coupon,
            community_id=community.pk,
            changes={field: [None, getattr(coupon, field)] for field in COUPON_FIELDS},
        )
    return coupon


def coupon_update(*, actor: Actor, coupon: Coupon, **values) -> Coupon:
    """Change a coupon; its total limit never drops under what was already given out."""
    values = coupon_normalise(values)
    problems = coupon_check_values(values={**{f: getattr(coupon, f) for f in COUPON_FIELDS}, **values})
    with transaction.atomic():
        coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
        limit = values.get("total_limit", coupon.total_limit)
        if limit is not None and limit < coupon.issued_count:
            problems["total_limit"] = [
                _("%(n)d are already given out: the total limit cannot be lower.")
                % {"n": coupon.issued_count}
            ]
        if problems:
            raise errors.ApplicationError(code="validation_error", fields=problems)
        changes = {}
        for field, value in values.items():
            if getattr(coupon, field) != value:
                changes[field] = [getattr(coupon, field), value]
                setattr(coupon, field, value)
        if changes:
            coupon.save()
            audit_record(
                actor=actor,
                action="coupon.changed",
                target=coupon,
                community_id=coupon.community_id,
                changes=changes,
            )
    return coupon


# --- Giving coupons out ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuePlan:
    """What issuing would do: who gets one, who is skipped (at the per-member limit), and what is left."""

    receivers: list[int]
    at_limit: int
    left: int | None  # how many the total limit still allows (None: no limit)


def coupon_issue_plan(*, coupon: Coupon, membership_ids: list[int]) -> IssuePlan:
    """Preview an issue for the confirmation page: nothing is written."""
    held = _held_counts(coupon=coupon, membership_ids=membership_ids)
    receivers = [pk for pk in sorted(set(membership_ids)) if held.get(pk, 0) < coupon.per_member_limit]
    left = None if coupon.total_limit is None else coupon.total_limit - coupon.issued_count
    return IssuePlan(receivers=receivers, at_limit=len(set(membership_ids)) - len(receivers), left=left)


def _held_counts(*, coupon: Coupon, membership_ids) -> dict[int, int]:
    rows = (
        MemberCoupon.objects.filter(coupon=coupon, membership_id__in=list(membership_ids))
        .exclude(status=MemberCoupon.Status.REVOKED)
        .values("membership_id")
        .annotate(n=Count("pk"))
        .values_list("membership_id", "n")
    )
    return dict(rows)


def _take_from_total(*, coupon_id: int, count: int) -> bool:
    """Count ``count`` more given out if the total limit allows it; locks the coupon row until commit."""
    return bool(
        Coupon.objects.filter(pk=coupon_id)
        .filter(Q(total_limit__isnull=True) | Q(total_limit__gte=F("issued_count") + count))
        .update(issued_count=F("issued_count") + count)
    )


def _give(
    *, actor: Actor, coupon: Coupon, membership_ids: list[int], source: str, source_key: str
) -> list[MemberCoupon]:
    """Give one coupon to each member under the per-member limit, as far as the total allows.

    The caller holds the transaction. ``source_key`` makes a repeat give nothing
    (one coupon per coupon, member and key).
    """
    if not membership_ids:
        return []
    Coupon.objects.select_for_update().filter(pk=coupon.pk).values_list("pk").get()  # serialise givers
    coupon.refresh_from_db(fields=["issued_count", "total_limit", "per_member_limit"])
    held = _held_counts(coupon=coupon, membership_ids=membership_ids)
    taken = set()
    if source_key:
        taken = set(
            MemberCoupon.objects.filter(
                coupon=coupon, membership_id__in=membership_ids, source_key=source_key
            ).values_list("membership_id", flat=True)
        )
    receivers = [
        pk
        for pk in sorted(set(membership_ids))
        if pk not in taken and held.get(pk, 0) < coupon.per_member_limit
    ]
    if coupon.total_limit is not None:
        receivers = receivers[: max(0, coupon.total_limit - coupon.issued_count)]
    if not receivers or not _take_from_total(coupon_id=coupon.pk, count=len(receivers)):
        return []
    grants = MemberCoupon.objects.bulk_create(
        [
            MemberCoupon(coupon=coupon, membership_id=pk, source=source, source_key=source_key)
            for pk in receivers
        ]
    )
    audit_record_many(
        actor=actor,
        action="coupon.given",
        rows=(
            (
                grant,
                coupon.community_id,
                {"coupon": coupon.pk, "membership": grant.membership_id, "source": source},
            )
            for grant in grants
        ),
    )
    return grants


def coupon_issue(
    *, actor: Actor, coupon: Coupon, membership_ids: list[int], issue_key: str
) -> list[MemberCoupon]:
    """The owner gives ``coupon`` to chosen members (active members of its community only).

    ``issue_key`` names this issue (the confirmation form's token): submitting
    the same confirmation twice gives nothing more. Members at the per-member
    limit are skipped; past the total limit nobody more gets one.
    """
    with transaction.atomic():
        ids = list(
            Membership.objects.filter(
                pk__in=membership_ids, community_id=coupon.community_id, status=Membership.Status.ACTIVE
            ).values_list("pk", flat=True)
        )
        return _give(
            actor=actor,
            coupon=coupon,
            membership_ids=ids,
            source=MemberCoupon.Source.ISSUED,
            source_key=f"issue:{issue_key}"[:80],
        )


def members_of_tiers(*, community_id: int, tier_ids: list[int]) -> list[int]:
    """The active members of ``community_id`` in ``tier_ids`` (an issue's receivers)."""
    return list(
        Membership.objects.filter(
            community_id=community_id, tier_id__in=tier_ids, status=Membership.Status.ACTIVE
        ).values_list("pk", flat=True)
    )


def _claimable(*, community_id: int, code: str, now: datetime) -> Coupon:
    coupon = Coupon.objects.filter(
        community_id=community_id, code=(code or "").strip().upper(), trigger=Coupon.Trigger.MANUAL
    ).first()
    if coupon is None or not code.strip() or not coupon.usable_at(now):
        raise errors.InvalidCouponCode()
    return coupon


def _claim_locked(*, actor: Actor, membership: Membership, coupon: Coupon) -> MemberCoupon:
    """Claim inside the caller's transaction: the total first (the row lock), then the member's count."""
    if not _take_from_total(coupon_id=coupon.pk, count=1):
        raise errors.CouponSoldOut()
    held = _held_counts(coupon=coupon, membership_ids=[membership.pk]).get(membership.pk, 0)
    if held >= coupon.per_member_limit:
        raise errors.CouponLimitReached()
    grant = MemberCoupon.objects.create(
        coupon=coupon, membership=membership, source=MemberCoupon.Source.CLAIMED
    )
    audit_record(
        actor=actor,
        action="coupon.claimed",
        target=grant,
        community_id=coupon.community_id,
        changes={"coupon": [None, coupon.pk], "membership": [None, membership.pk]},
    )
    return grant


def coupon_claim(*, actor: Actor, membership: Membership, code: str) -> MemberCoupon:
    """A member claims a coupon with its code; limits hold under concurrent claims."""
    coupon = _claimable(community_id=membership.community_id, code=code, now=timezone.now())
    with transaction.atomic():
        return _claim_locked(actor=actor, membership=membership, coupon=coupon)


def coupon_give_automatic(
    *, actor: Actor, trigger: str, membership_id: int, source_key: str
) -> list[MemberCoupon]:
    """Give the membership's community's active ``trigger`` coupons to ``membership_id``, once per key."""
    membership = Membership.objects.filter(pk=membership_id).first()
    if membership is None or membership.status != Membership.Status.ACTIVE:
        return []
    now = timezone.now()
    given = []
    for coupon in Coupon.objects.filter(
        community_id=membership.community_id,
        trigger=trigger,
        is_active=True,
        valid_from__lte=now,
        valid_until__gt=now,
    ).order_by("pk"):
        try:
            with transaction.atomic():
                given += _give(
                    actor=actor,
                    coupon=coupon,
                    membership_ids=[membership_id],
                    source=TRIGGER_SOURCE[trigger],
                    source_key=source_key,
                )
        except IntegrityError:  # the same key given concurrently: once is enough
            continue
    return given


def member_coupon_revoke(*, actor: Actor, member_coupon: MemberCoupon) -> MemberCoupon:
    """Take back an available coupon (a reserved or used one stays with its order)."""
    with transaction.atomic():
        if not MemberCoupon.objects.filter(pk=member_coupon.pk, status=MemberCoupon.Status.AVAILABLE).update(
            status=MemberCoupon.Status.REVOKED
        ):
            raise errors.CouponUnavailable(_("Only an available coupon can be revoked."))
        member_coupon.refresh_from_db()
        _grant_audit(actor=actor, action="coupon.revoked", grant=member_coupon, before="available")
    return member_coupon


def member_coupon_restore(*, actor: Actor, member_coupon: MemberCoupon) -> MemberCoupon:
    """The owner gives back a coupon used on an order that was fully refunded."""
    with transaction.atomic():
        grant = (
            MemberCoupon.objects.select_for_update(of=("self",))
            .select_related("order", "coupon")
            .get(pk=member_coupon.pk)
        )
        if (
            grant.status != MemberCoupon.Status.USED
            or grant.order.payment_status != Order.PaymentStatus.REFUNDED
        ):
            raise errors.CouponUnavailable(_("Only a coupon of a fully refunded order can be given back."))
        grant.status, grant.order, grant.used_at = MemberCoupon.Status.AVAILABLE, None, None
        grant.save(update_fields=["status", "order", "used_at"])
        _grant_audit(actor=actor, action="coupon.restored", grant=grant, before="used")
    return grant


def _grant_audit(
    *, actor: Actor, action: str, grant: MemberCoupon, before: str, order_id: int | None = None
) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=grant,
        community_id=grant.coupon.community_id,
        changes={"status": [before, grant.status]},
        note=f"order {order_id}" if order_id else "",
    )


# --- Applying a coupon to an order -----------------------------------------------------------------


def coupon_discount(*, coupon: Coupon, base: Decimal) -> Decimal:
    """The discount ``coupon`` gives on ``base`` (never more than ``base``), to the fen."""
    if coupon.kind == Coupon.Kind.AMOUNT:
        discount = coupon.amount_off
    else:
        discount = (base * coupon.percent_off / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)
    if coupon.max_discount is not None:
        discount = min(discount, coupon.max_discount)
    return min(discount, base)


def _applicable(*, coupon: Coupon, kind: str, base: Decimal, currency: str, now: datetime) -> None:
    if not coupon.usable_at(now):
        raise errors.CouponNotApplicable(_("This coupon is not valid now."))
    if coupon.scope != Coupon.Scope.ANY and coupon.scope != kind:
        raise errors.CouponNotApplicable(
            _("This coupon is for %(scope)s only.") % {"scope": Coupon.Scope(coupon.scope).label}
        )
    if coupon.currency != currency:
        raise errors.CouponNotApplicable(_("This coupon is in another currency."))
    if base < coupon.min_spend:
        raise errors.CouponNotApplicable(
            _("Spend at least %(amount)s to use this coupon.") % {"amount": money(coupon.min_spend)}
        )


def coupon_for_order(
    *,
    actor: Actor,
    membership: Membership,
    coupon_id: int | None,
    coupon_code: str | None,
    now: datetime,
) -> MemberCoupon | None:
    """The member's coupon to apply (claimed with ``coupon_code`` first). Call inside the order's transaction.

    Another member's coupon is ``NotFound``; one not available is ``CouponUnavailable``.
    """
    if coupon_id and coupon_code:
        raise errors.ApplicationError(
            code="validation_error", fields={"coupon": [_("Send a coupon or a coupon code, not both.")]}
        )
    if coupon_code:
        coupon = _claimable(community_id=membership.community_id, code=coupon_code, now=now)
        return _claim_locked(actor=actor, membership=membership, coupon=coupon)
    if coupon_id is None:
        return None
    grant = MemberCoupon.objects.select_related("coupon").filter(pk=coupon_id, membership=membership).first()
    if grant is None:
        raise errors.NotFound(fields={"coupon": [_("You have no such coupon in this community.")]})
    if grant.status != MemberCoupon.Status.AVAILABLE:
        raise errors.CouponUnavailable()
    return grant


def coupon_allocate(
    *, grant: MemberCoupon, kind: str, currency: str, lines: list[OrderLine], now: datetime
) -> Decimal:
    """Check ``grant`` fits the order, set each line's ``discount`` (largest remainder); the total."""
    base = sum((line.line_total for line in lines), ZERO)
    _applicable(coupon=grant.coupon, kind=kind, base=base, currency=currency, now=now)
    discount = coupon_discount(coupon=grant.coupon, base=base)
    for line, share in zip(
        lines,
        allocate_largest_remainder(amount=discount, weights=[line.line_total for line in lines]),
        strict=True,
    ):
        line.discount = share
    return discount


def coupon_reserve(*, actor: Actor, grant: MemberCoupon, order: Order) -> None:
    """Hold ``grant`` for ``order`` in the order's transaction; a race's loser gets ``CouponUnavailable``."""
    if not MemberCoupon.objects.filter(pk=grant.pk, status=MemberCoupon.Status.AVAILABLE).update(
        status=MemberCoupon.Status.RESERVED, order=order
    ):
        raise errors.CouponUnavailable()
    grant.status, grant.order = MemberCoupon.Status.RESERVED, order
    _grant_audit(actor=actor, action="coupon.reserved", grant=grant, before="available", order_id=order.pk)


def coupon_release(*, order: Order) -> int:
    """The order was cancelled or its hold expired: its reserved coupon is available again."""
    if order.coupon_id is None:
        return 0
    return MemberCoupon.objects.filter(
        pk=order.coupon_id, order=order, status=MemberCoupon.Status.RESERVED
    ).update(status=MemberCoupon.Status.AVAILABLE, order=None)


def coupon_mark_used(*, order: Order, now: datetime) -> bool:
    """The order was paid: its coupon is used. False when a late payment found it spent on another order."""
    if order.coupon_id is None:
        return True
    return bool(
        MemberCoupon.objects.filter(pk=order.coupon_id)
        .filter(Q(order=order) | Q(status=MemberCoupon.Status.AVAILABLE, order__isnull=True))
        .update(status=MemberCoupon.Status.USED, order=order, used_at=now)
    )


def coupon_return_after_refund(*, order: Order) -> int:
    """A fully refunded order gives its coupon back when the coupon says so (``return_on_refund``)."""
    if order.coupon_id is None:
        return 0
    return MemberCoupon.objects.filter(
        pk=order.coupon_id, order=order, status=MemberCoupon.Status.USED, coupon__return_on_refund=True
    ).update(status=MemberCoupon.Status.AVAILABLE, order=None, used_at=None)
