"""Paid entry (收费入群): the entry order and its payment, called by the join endpoint.

The join view (``commerce.api.membership``; commerce may import members, not
the reverse) calls ``entry_checkout`` after ``membership_join`` committed a
membership that needs paying (a first paid join, or a renewal). The membership turns active, or its expiry is
extended, when the payment succeeds (``payment_apply_success`` calls
``membership_activate_paid`` in the transaction that marks the order paid).
"""

from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from commerce import errors
from commerce.models import Order, OrderLine
from commerce.services.coupons import coupon_allocate, coupon_for_order, coupon_reserve
from commerce.services.orders import AUDIT_FIELDS, hold_deadline, request_fingerprint
from commerce.services.payments import payment_record_offline, payment_start, payment_summary
from members.models import EntryPlan, Membership
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot


def _pending_entry_order(*, membership: Membership, plan: EntryPlan, coupon_id: int | None) -> Order | None:
    return (
        Order.objects.filter(
            kind=Order.Kind.ENTRY,
            membership=membership,
            plan=plan,
            coupon_id=coupon_id,
            status=Order.Status.PENDING_PAYMENT,
            hold_expires_at__gt=timezone.now(),
        )
        .order_by("-pk")
        .first()
    )


def entry_order_create(
    *,
    actor: Actor,
    membership: Membership,
    plan: EntryPlan,
    idempotency_key: str | None,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
) -> Order:
    """The entry order for ``membership`` paying ``plan``: one line, no SKU, the plan's price
    less the member's coupon (``coupon_id``, or one claimed with ``coupon_code``), which it reserves.

    Idempotent per (buyer, ``idempotency_key``); without a key, an unexpired
    unpaid entry order for the same membership, plan and coupon is reused, so
    that pressing "join" twice does not make two orders.
    """
    parts = {"entry_plan": plan.pk, "membership": membership.pk}
    if coupon_id or coupon_code:  # old requests keep their old fingerprint
        parts.update(coupon=coupon_id, coupon_code=(coupon_code or "").strip().upper())
    fingerprint = request_fingerprint(**parts)
    buyer = membership.user
    if idempotency_key:
        existing = Order.objects.filter(buyer=buyer, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_fingerprint != fingerprint:
                raise errors.IdempotencyKeyReused()
            return existing
    else:
        existing = _pending_entry_order(membership=membership, plan=plan, coupon_id=coupon_id)
        if existing is not None and not coupon_code:
            return existing
    try:
        with transaction.atomic():
            now = timezone.now()
            line = OrderLine(
                title=plan.name,
                quantity=1,
                list_price=plan.price,
                unit_price=plan.price,
                line_total=plan.price,
            )
            grant = coupon_for_order(
                actor=actor, membership=membership, coupon_id=coupon_id, coupon_code=coupon_code, now=now
            )
            discount = Decimal("0.00")
            if grant is not None:
                discount = coupon_allocate(
                    grant=grant, kind=Order.Kind.ENTRY, currency=plan.currency, lines=[line], now=now
                )
            order = Order.objects.create(
                community_id=membership.community_id,
                buyer=buyer,
                kind=Order.Kind.ENTRY,
                currency=plan.currency,
                total=plan.price - discount,
                discount_total=discount,
                coupon=grant,
                membership=membership,
                plan=plan,
                idempotency_key=idempotency_key or "",
                request_fingerprint=fingerprint,
                hold_expires_at=hold_deadline(),
            )
            line.order = order
            line.save()
            if grant is not None:
                coupon_reserve(actor=actor, grant=grant, order=order)
            audit_record(
                actor=actor,
                action="order.created",
                target=order,
                community_id=order.community_id,
                changes=audit_diff({}, audit_snapshot(order, AUDIT_FIELDS)),
                note=f"entry plan {plan.pk}",
            )
    except IntegrityError:
        existing = Order.objects.filter(buyer=buyer, idempotency_key=idempotency_key).first()
        if not idempotency_key or existing is None:
            raise
        return existing
    return order


def entry_checkout(
    *,
    membership_id: int,
    plan_id: int,
    idempotency_key: str | None,
    actor: Actor | None = None,
    provider_name: str | None = None,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
) -> dict | None:
    """Create (or find again) the entry order and its payment; return the contract's ``<payment>``.

    ``actor`` defaults to the member, who joins by themselves.
    A free plan (price 0) is settled at once and returns None.
    Raises ``PaymentProviderUnavailable`` when the provider cannot be reached;
    the same call may be repeated.
    """
    membership = Membership.objects.select_related("user").get(pk=membership_id)
    plan = EntryPlan.objects.get(pk=plan_id, community_id=membership.community_id)
    actor = actor or membership.user
    order = entry_order_create(
        actor=actor,
        membership=membership,
        plan=plan,
        idempotency_key=idempotency_key,
        coupon_id=coupon_id,
        coupon_code=coupon_code,
    )
    if order.total == Decimal("0"):
        payment_record_offline(actor=actor, order_id=order.pk, reference=f"free-plan-{plan.pk}")
        return None
    if order.status != Order.Status.PENDING_PAYMENT:
        return payment_summary(order.payments.order_by("pk").first())
    return payment_summary(payment_start(order_id=order.pk, provider_name=provider_name))
