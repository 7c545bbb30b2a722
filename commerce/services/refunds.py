"""Refunds: requested by owners, the admin or (within an entry plan's window) the buyer.

How a refund moves:

1. ``refund_request`` locks the order row and checks that this refund and
   every other open one (pending or succeeded) together stay within what was
   paid; it writes a ``pending`` Refund, which reserves its amount.
2. The provider is called outside any transaction, with the refund's own
   random idempotency key (``provider_key``). A refund sent before (no answer,
   or a refusal) is first looked up at the provider by our reference, so one
   it made after all is recorded, not made again; when the provider kept its
   answer under the key (Stripe replays a 500 or a refusal for 24 h) the next
   send goes under a fresh key.
3. The answer is recorded under the order lock. The order's
   ``amount_refunded`` and its status (``refunded`` / ``partially_refunded``)
   change only when the provider *confirms*: the refund's status is
   ``succeeded`` in the refund API's answer, or in the refund list fetched
   when a refund webhook (``charge.refunded``, ``refund.updated`` ...) arrives.
   Until then the refund is pending and still reserves its amount.

If the provider refuses, the refund is marked failed (its amount is free
again). If it cannot be reached, nobody knows whether it made the refund (a
timeout after the provider processed it), so the refund stays pending and
keeps reserving its amount: a retry without a key cannot pay the same money
out again, and retrying with the same Idempotency-Key sends the same refund
again (the provider's key is unchanged, so it is never made twice); the
provider's refund webhook settles it otherwise. Either way the caller gets
``payment_provider_unavailable``. ``order_refunds_settle`` applies the
consequences of the confirmed total, and is idempotent: points taken back in
proportion, event seats released, a fully refunded entry ends the membership.
"""

import logging
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.events import order_refunded
from commerce.models import AfterSale, AfterSaleLine, Order, OrderLine, Payment, Refund
from commerce.payments.base import (
    PaymentHandle,
    ProviderRefund,
    ProviderRefused,
    ProviderUnavailable,
    RefundHandle,
    get_provider,
    provider_deadline,
)
from commerce.pricing import proportional_share
from commerce.services.commissions import commission_hold_sync, commission_reverse_for_order
from commerce.services.coupons import coupon_return_after_refund
from commerce.services.order_states import FULFILLABLE, STATE_FIELDS, set_payment_status
from commerce.services.orders import AUDIT_FIELDS, order_audit
from commerce.services.stock import skus_lock, stock_release, stock_take
from commerce.services.tickets import ticket_refund_for_order, ticket_restore_for_order
from members.models import Membership, PointsEntry, User
from members.services.memberships import membership_activate_paid, membership_end_paid
from members.services.points import points_award
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot
from shequn_backend.events import send_on_commit

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")


def _sum(queryset) -> Decimal:
    return queryset.aggregate(total=Sum("amount"))["total"] or ZERO


def order_refundable_amount(*, order: Order) -> Decimal:
    """What may still be refunded: paid less every open (pending or succeeded) refund."""
    if order.amount_paid <= 0:
        return ZERO
    return order.amount_paid - _sum(order.refunds.filter(status__in=Refund.OPEN_STATUSES))


def line_refundable_amount(*, line: OrderLine, quantity: int) -> Decimal:
    """What ``quantity`` units of ``line`` may still get back: what they were paid (after the coupon's
    share), never more than the line was paid less what after-sale requests (open or refunded)
    already claim of it."""
    claimed = _sum(
        AfterSaleLine.objects.filter(
            line=line,
            after_sale__status__in=(*AfterSale.OPEN_STATUSES, AfterSale.Status.REFUNDED),
        )
    )
    return max(ZERO, min(line.paid_for_units(quantity), line.paid_amount - claimed))


def order_refundable_unless_disputed(*, order: Order) -> Decimal:
    """What may still be refunded (one query); refused while a dispute holds some of the money:
    Stripe refuses refunds of a charged-back payment (``charge_disputed``) until it is won."""
    totals = order.refunds.filter(status__in=Refund.OPEN_STATUSES).aggregate(
        total=Sum("amount"),
        disputed=Count("pk", filter=Q(source=Refund.Source.DISPUTE, status=Refund.Status.SUCCEEDED)),
    )
    if totals["disputed"]:
        raise errors.OrderNotRefundable(
            _(
                "The customer's bank took this payment back in a dispute: it cannot be refunded while "
                "the dispute holds the money. See the order's review note."
            )
        )
    return order.amount_paid - (totals["total"] or ZERO)


REFUND_AUDIT_FIELDS = ("status", "provider_ref", "amount", "failure_reason")


def _refund_audit(*, actor: Actor, action: str, refund: Refund, before: dict, community_id: int) -> None:
    audit_record(
        actor=actor,
        action=action,
        target=refund,
        community_id=community_id,
        changes=audit_diff(before, audit_snapshot(refund, REFUND_AUDIT_FIELDS)),
    )


def _requester(actor: Actor) -> User | None:
    return actor if isinstance(actor, User) and actor.is_authenticated else None


def _replay(*, order: Order, requester: User | None, key: str, amount: Decimal | None) -> Refund | None:
    """The refund this requester already asked for under ``key`` on ``order``, if any."""
    refund = Refund.objects.filter(order=order, requested_by=requester, idempotency_key=key).first()
    if refund is not None and amount is not None and amount != refund.amount:
        raise errors.IdempotencyKeyReused()
    return refund


def refund_request(
    *,
    actor: Actor,
    order_id: int,
    reason: str,
    source: str = Refund.Source.OWNER,
    amount: Decimal | None = None,
    idempotency_key: str | None = None,
    after_sale_id: int | None = None,
) -> Refund:
    """Refund ``amount`` (default: all that is left) of a paid order through its provider.

    ``after_sale_id``: the refund of that after-sale request, one per request
    (a unique constraint), whoever asks: a repeat finds it and sends no second one.

    The caller has checked that ``actor`` may refund this order. Never
    refunds more than was paid, even under concurrent requests (row lock on
    the order, plus the database's check): pending refunds reserve their
    amount. Idempotent per (order, requester, ``idempotency_key``), a unique
    constraint: a replay returns the first refund and moves no money again.
    Returns the refund, ``pending`` or ``succeeded``.
    """
    requester = _requester(actor)
    created = False
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().get(pk=order_id)
        refund = None
        if after_sale_id is not None:
            refund = Refund.objects.filter(after_sale_id=after_sale_id).first()
            if refund is not None and (refund.provider_ref or refund.status == Refund.Status.SUCCEEDED):
                return refund
        elif idempotency_key:
            refund = _replay(order=order, requester=requester, key=idempotency_key, amount=amount)
            if refund is not None and (refund.provider_ref or refund.status == Refund.Status.SUCCEEDED):
                return refund  # a replay: the first answer, nothing sent again
        payment = order.payments.filter(status=Payment.Status.SUCCEEDED).exclude(provider="free").first()
        if payment is None or order.amount_paid <= 0 or order.payment_status not in FULFILLABLE:
            raise errors.OrderNotRefundable()
        if refund is None:
            remaining = order_refundable_unless_disputed(order=order)
            amount = remaining if amount is None else amount
            if amount <= 0 or amount > remaining:
                raise errors.RefundExceedsPaid()
            created = True
            refund = Refund.objects.create(
                order=order,
                payment=payment,
                provider=payment.provider,
                amount=amount,
                currency=order.currency,
                reason=reason[:500],
                requested_by=requester,
                source=source,
                idempotency_key=idempotency_key or "",
                after_sale_id=after_sale_id,
            )
            audit_record(
                actor=actor,
                action="order.refund_requested",
                target=order,
                community_id=order.community_id,
                changes={"refund": [None, refund.pk], "refund_amount": [None, refund.amount]},
                note=refund.reason,
            )
        elif refund.status == Refund.Status.FAILED:
            # The provider refused it earlier: the same row and key go again, if still covered.
            if refund.amount > order_refundable_amount(order=order):
                raise errors.RefundExceedsPaid()
            before = audit_snapshot(refund, REFUND_AUDIT_FIELDS)
            refund.status, refund.failure_reason = Refund.Status.PENDING, ""
            refund.save(update_fields=["status", "failure_reason", "updated_at"])
            _refund_audit(
                actor=actor,
                action="refund.retried",
                refund=refund,
                before=before,
                community_id=order.community_id,
            )
        # else: pending and never answered (provider unreachable, or a crash before the answer): send again.
    return refund_send(actor=actor, refund_id=refund.pk, reconcile=not created)


def _made_already(*, refund: Refund) -> ProviderRefund | None:
    """The provider's refund with our reference, if an earlier send made it.

    None when the provider has none (Stripe ``resource_missing``, WeChat Pay
    ``RESOURCE_NOT_EXISTS``) or cannot be asked (offline): the refund is sent.
    """
    provider = get_provider(refund.provider)
    handle = RefundHandle(reference=refund.reference, ref=refund.provider_ref)
    try:
        return provider.fetch_refund(handle=PaymentHandle.of(refund.payment), refund=handle)
    except ProviderRefused as exc:
        logger.info("Refund %s not found at the provider (%s): sending it.", refund.pk, exc.code or exc)
        return None


def refund_send(*, actor: Actor, refund_id: int, reconcile: bool = False) -> Refund:
    """Send a pending refund to its provider (no lock held meanwhile) and record the answer.

    ``reconcile``: it may have been sent before, so first look it up at the
    provider by our reference and record it if it was made. Unreachable: the
    refund stays pending (the provider may have made it) and keeps its amount
    reserved; refused: it fails and frees its amount. An answer the provider
    kept under the key (``key_spent``) gives the refund a fresh key.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    provider = get_provider(refund.provider)
    try:
        with provider_deadline():
            state = _made_already(refund=refund) if reconcile else None
            if state is None:
                state = provider.refund(
                    handle=PaymentHandle.of(refund.payment),
                    refund=RefundHandle(reference=refund.reference, ref=refund.provider_ref),
                    amount=refund.amount,
                    idempotency_key=str(refund.provider_key),
                    reason=refund.reason,
                    metadata={"order_id": str(refund.order_id), "refund_id": str(refund.pk)},
                )
    except (ProviderUnavailable, ProviderRefused) as exc:
        logger.warning("Refund %s not sent: %s", refund.pk, exc)
        _record_unsent(actor=actor, refund=refund, exc=exc)
        status = 503 if isinstance(exc, ProviderUnavailable) else 502
        raise errors.PaymentProviderUnavailable(http_status=status) from exc
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        refund = Refund.objects.get(pk=refund.pk)
        refund_apply_state(actor=actor, order=order, refund=refund, state=state)
        order_refunds_settle(actor=actor, order=order, confirmed=[refund])
    return refund


def _record_unsent(*, actor: Actor, refund: Refund, exc: Exception) -> None:
    refused = isinstance(exc, ProviderRefused)
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        refund = Refund.objects.get(pk=refund.pk)
        if refund.status != Refund.Status.PENDING or refund.provider_ref:
            return  # a webhook recorded the provider's answer meanwhile
        before = audit_snapshot(refund, REFUND_AUDIT_FIELDS)
        refund.status = Refund.Status.FAILED if refused else Refund.Status.PENDING
        refund.failure_reason = str(exc)[:500]
        if getattr(exc, "key_spent", False):
            refund.provider_key = uuid.uuid4()  # the provider would replay this answer under the old one
        refund.save(update_fields=["status", "failure_reason", "provider_key", "updated_at"])
        action = "refund.failed" if refused else "refund.unanswered"
        _refund_audit(
            actor=actor, action=action, refund=refund, before=before, community_id=order.community_id
        )


# Moves a provider may report; anything else (a stale snapshot) is ignored.
_ALLOWED_MOVES = {
    Refund.Status.PENDING: {Refund.Status.SUCCEEDED, Refund.Status.FAILED, Refund.Status.CANCELED},
    Refund.Status.SUCCEEDED: {Refund.Status.FAILED, Refund.Status.CANCELED},
}


def refund_apply_state(*, actor: Actor, order: Order, refund: Refund, state: ProviderRefund) -> bool:
    """Record the provider's view of ``refund``; True if it became succeeded. Caller holds the order lock.

    Statuses only move forward: pending -> succeeded | failed | canceled, and
    succeeded -> failed | canceled (the provider may fail a refund later). A
    refund we marked failed because the provider could not be reached, and
    which the provider made after all, is taken as the provider reports it.
    """
    before = audit_snapshot(refund, REFUND_AUDIT_FIELDS)
    changed = []
    if state.ref and refund.provider_ref != state.ref:
        unsent = refund.provider_ref == ""
        refund.provider_ref, changed = state.ref, [*changed, "provider_ref"]
        if unsent and refund.status == Refund.Status.FAILED:
            refund.status, changed = Refund.Status.PENDING, [*changed, "status"]
    if state.raw:
        refund.raw, changed = state.raw, [*changed, "raw"]
    became_succeeded = False
    if state.status in _ALLOWED_MOVES.get(refund.status, ()):
        became_succeeded = state.status == Refund.Status.SUCCEEDED
        refund.status = state.status
        refund.failure_reason = state.failure_reason[:500]
        refund.confirmed_at = timezone.now() if became_succeeded else refund.confirmed_at
        changed += ["status", "failure_reason", "confirmed_at"]
    if (
        state.attention
        and refund.status == Refund.Status.PENDING
        and refund.failure_reason != state.attention[:500]
    ):
        refund.failure_reason, changed = state.attention[:500], [*changed, "failure_reason"]
        _flag_refund_for_staff(actor=actor, order=order, message=state.attention)
    if changed:
        refund.save(update_fields=[*dict.fromkeys(changed), "updated_at"])
    if refund.status != before["status"]:
        action = "refund.confirmed" if became_succeeded else f"refund.{refund.status}"
        _refund_audit(
            actor=actor, action=action, refund=refund, before=before, community_id=order.community_id
        )
    return became_succeeded


def _flag_refund_for_staff(*, actor: Actor, order: Order, message: str) -> None:
    """The provider needs a person to finish a refund (WeChat Pay ``ABNORMAL``): say what to do."""
    snapshot = audit_snapshot(order, AUDIT_FIELDS)
    order.needs_review = True
    order.review_reason = message[:500]
    order.save(update_fields=["needs_review", "review_reason", "updated_at"])
    order_audit(
        actor=actor, action="order.flagged_for_review", order=order, before=snapshot, note=message[:500]
    )


def _ticket_targets(*, order: Order, refunded: Decimal) -> dict[int, int]:
    """Seats to give back for ``refunded``: whole tickets, line by line; all of them when fully refunded."""
    lines = list(OrderLine.objects.filter(order=order, sku__isnull=False).order_by("pk"))
    if refunded >= order.amount_paid:
        return {line.pk: line.quantity for line in lines}
    targets, left = {}, refunded
    for line in lines:
        whole = 0
        while line.paid_amount > 0 and whole < line.quantity and line.paid_for_units(whole + 1) <= left:
            whole += 1  # at most MAX_QUANTITY steps: the units the money left covers, as paid
        targets[line.pk] = whole
        left -= line.paid_for_units(whole)
    return targets


def _take_back_points(*, actor: Actor, order: Order, key_suffix: str) -> None:
    # The buyer's membership (as in the award) leads the ledger's unique (membership, key) index:
    # without it the lookup scans the whole ledger under the order lock.
    award = PointsEntry.objects.filter(
        membership__user_id=order.buyer_id,
        membership__community_id=order.community_id,
        idempotency_key=f"order:{order.pk}:award",
    ).first()
    if award is None or award.delta <= 0:
        return
    prefix = f"order:{order.pk}:refund:"
    entries = dict(
        PointsEntry.objects.filter(
            membership_id=award.membership_id, idempotency_key__startswith=prefix
        ).values_list("idempotency_key", "delta")
    )
    taken = -sum(entries.values())
    target = proportional_share(whole=award.delta, part=order.amount_refunded, of=order.amount_paid)
    if target == taken:
        return
    key = f"{prefix}{key_suffix}"
    if target < taken or key in entries:
        # Given back (a dispute won, a refund that failed later), or taken again: a new entry each time.
        key = f"{prefix}{key_suffix}-{len(entries) + 1}"
    reason = _("Refund on order #%(id)s") if target > taken else _("Points restored on order #%(id)s")
    points_award(
        membership_id=award.membership_id,
        delta=-(target - taken),
        reason=reason % {"id": order.pk},
        idempotency_key=key,
        actor=actor,
    )


def _retake_seats(*, actor: Actor, order: Order, targets: dict[int, int]) -> None:
    """Reserve again the seats a refund gave back that it no longer covers (a dispute won).

    Flags the order for review when they have been sold meanwhile.
    """
    lines = [
        line
        for line in OrderLine.objects.filter(order=order, sku__isnull=False).order_by("pk")
        if line.quantity_released > targets.get(line.pk, 0)
    ]
    if not lines:
        return
    quantities: dict[int, int] = {}
    for line in lines:
        quantities[line.sku_id] = (
            quantities.get(line.sku_id, 0) + line.quantity_released - targets.get(line.pk, 0)
        )
    try:
        stock_take(skus=skus_lock(sku_ids=quantities), quantities=quantities)
    except errors.OutOfStock:
        snapshot = audit_snapshot(order, AUDIT_FIELDS)
        note = _(
            "The money came back, but the seats its refund gave back are sold: seat the buyer or refund."
        )
        order.review_reason = f"{order.review_reason} {note}".strip()[-500:] if order.needs_review else note
        order.needs_review = True
        order.save(update_fields=["needs_review", "review_reason", "updated_at"])
        order_audit(actor=actor, action="order.flagged_for_review", order=order, before=snapshot)
        return
    for line in lines:
        OrderLine.objects.filter(pk=line.pk).update(quantity_released=targets.get(line.pk, 0))
    ticket_restore_for_order(actor=actor, order=order)


def _restore_membership(*, actor: Actor, order: Order) -> None:
    """An entry no longer refunded in full (a dispute won): the membership it paid for comes back."""
    status = Membership.objects.filter(pk=order.membership_id).values_list("status", flat=True).first()
    if status == Membership.Status.EXPIRED and order.plan_id and order.paid_at:
        membership_activate_paid(
            membership_id=order.membership_id, plan=order.plan, paid_at=order.paid_at, actor=actor
        )


def order_refunds_settle(*, actor: Actor, order: Order, confirmed: list[Refund] = ()) -> Order:
    """Bring ``order`` in line with its succeeded refunds. Caller holds the order lock; idempotent.

    Does nothing while the payment is not known to have succeeded: refunds the
    provider confirmed early are applied when the payment news arrives.
    """
    if order.amount_paid <= 0:
        return order
    # Only refunds of the payment that counts: one of a payment held for review is recorded, not counted.
    refunded = _sum(
        order.refunds.filter(status=Refund.Status.SUCCEEDED, payment__status=Payment.Status.SUCCEEDED)
    )
    snapshot = audit_snapshot(order, AUDIT_FIELDS)
    if refunded > order.amount_paid:
        order.needs_review = True
        order.review_reason = _("The provider reports more refunded than was paid.")[:500]
        order.save(update_fields=["needs_review", "review_reason", "updated_at"])
        order_audit(actor=actor, action="order.flagged_for_review", order=order, before=snapshot)
        return order
    before, previously_refunded = order.payment_status, order.amount_refunded
    order.amount_refunded = refunded
    if refunded == order.amount_paid:
        set_payment_status(order, Order.PaymentStatus.REFUNDED)
    elif refunded > 0:
        set_payment_status(order, Order.PaymentStatus.PARTIALLY_REFUNDED)
    elif order.payment_status in (Order.PaymentStatus.REFUNDED, Order.PaymentStatus.PARTIALLY_REFUNDED):
        set_payment_status(order, Order.PaymentStatus.PAID)
    order.save(update_fields=["amount_refunded", *STATE_FIELDS, "updated_at"])
    if refunded != previously_refunded:
        order_audit(actor=actor, action="order.refunds_settled", order=order, before=snapshot)
        send_on_commit(
            order_refunded,
            sender=Order,
            order_id=order.pk,
            community_id=order.community_id,
            buyer_id=order.buyer_id,
            amount=refunded - previously_refunded,
            fully_refunded=order.payment_status == Order.PaymentStatus.REFUNDED,
        )
    commission_reverse_for_order(order=order, now=timezone.now(), actor=actor)
    if refunded > previously_refunded:
        _after_sales_settle(actor=actor, order=order)
    if refunded <= 0 and previously_refunded <= 0:
        return order
    # Lock order as in a payment: order, then SKUs, then memberships (points, an entry's end).
    if order.kind == Order.Kind.EVENT:
        targets = _ticket_targets(order=order, refunded=refunded) if refunded > 0 else {}
        if refunded < previously_refunded:
            _retake_seats(actor=actor, order=order, targets=targets)
        elif refunded > 0:
            stock_release(order=order, released_targets=targets)
            ticket_refund_for_order(actor=actor, order=order)
    if order.payment_status == Order.PaymentStatus.REFUNDED:
        coupon_return_after_refund(order=order)
    keys = [str(refund.pk) for refund in confirmed if refund.status == Refund.Status.SUCCEEDED]
    _take_back_points(actor=actor, order=order, key_suffix=keys[-1] if keys else f"total-{refunded}")
    if order.kind == Order.Kind.ENTRY and order.membership_id:
        refunded_now = order.payment_status == Order.PaymentStatus.REFUNDED
        refunded_before = before == Order.PaymentStatus.REFUNDED
        if refunded_now and not refunded_before:
            membership_end_paid(membership_id=order.membership_id, actor=actor)
        elif refunded_before and not refunded_now:  # a dispute won: the entry is paid again
            _restore_membership(actor=actor, order=order)
    return order


def _after_sales_settle(*, actor: Actor, order: Order) -> None:
    """After-sale requests whose refund the provider confirmed are refunded; their commission hold ends."""
    done = list(
        AfterSale.objects.select_for_update()
        .filter(
            order=order,
            status__in=(AfterSale.Status.APPROVED, AfterSale.Status.AWAITING_RETURN),
            refund__status=Refund.Status.SUCCEEDED,
        )
        .order_by("pk")
    )
    for after_sale in done:
        AfterSale.objects.filter(pk=after_sale.pk).update(
            status=AfterSale.Status.REFUNDED, updated_at=timezone.now()
        )
        audit_record(
            actor=actor,
            action="after_sale.refunded",
            target=after_sale,
            community_id=order.community_id,
            changes={"status": [after_sale.status, AfterSale.Status.REFUNDED]},
        )
    if done:
        commission_hold_sync(order=order)


def entry_refund_request(*, actor: Actor, order: Order, now: datetime | None = None) -> Refund:
    """The buyer's unconditional refund of an entry fee, within the plan's refund window.

    The caller fetched ``order`` through a buyer-scoped selector (``actor`` is its buyer).
    Idempotent without a key: an entry fee is refunded once, so a retry returns that refund.
    """
    now = now or timezone.now()
    if order.kind != Order.Kind.ENTRY or order.paid_at is None or order.plan_id is None:
        raise errors.OrderNotRefundable()
    window = order.plan.refund_window_days
    if not window or now > order.paid_at + timedelta(days=window):
        raise errors.RefundWindowClosed()
    return refund_request(
        actor=actor,
        order_id=order.pk,
        reason=_("Refund within the entry plan's refund window."),
        source=Refund.Source.BUYER,
        idempotency_key=f"entry-window-{order.pk}",
    )
