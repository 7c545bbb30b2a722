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
from commerce.services.orders import AUDIT_FIELDS, hold_deadline, request_fingerprint
from commerce.services.payments import payment_record_offline, payment_start, payment_summary
from members.models import EntryPlan, Membership
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot


def _pending_entry_order(*, membership: Membership, plan: EntryPlan) -> Order | None:
    return (
        Order.objects.filter(
            kind=Order.Kind.ENTRY,
            membership=membership,
            plan=plan,
            status=Order.Status.PENDING_PAYMENT,
            hold_expires_at__gt=timezone.now(),
        )
        .order_by("-pk")
        .first()
    )


def entry_order_create(
    *, actor: Actor, membership: Membership, plan: EntryPlan, idempotency_key: str | None
) -> Order:
    """The entry order for ``membership`` paying ``plan``: one line, no SKU, the plan's price.

    Idempotent per (buyer, ``idempotency_key``); without a key, an unexpired
    unpaid entry order for the same membership and plan is reused, so that
    pressing "join" twice does not make two orders.
    """
    fingerprint = request_fingerprint(entry_plan=plan.pk, membership=membership.pk)
    buyer = membership.user
    if idempotency_key:
        existing = Order.objects.filter(buyer=buyer, idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_fingerprint != fingerprint:
                raise errors.IdempotencyKeyReused()
            return existing
    else:
        existing = _pending_entry_order(membership=membership, plan=plan)
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            order = Order.objects.create(
                community_id=membership.community_id,
                buyer=buyer,
                kind=Order.Kind.ENTRY,
                currency=plan.currency,
                total=plan.price,
                membership=membership,
                plan=plan,
                idempotency_key=idempotency_key or "",
                request_fingerprint=fingerprint,
                hold_expires_at=hold_deadline(),
            )
            OrderLine.objects.create(
                order=order,
                title=plan.name,
                quantity=1,
                list_price=plan.price,
                unit_price=plan.price,
                line_total=plan.price,
            )
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
    order = entry_order_create(actor=actor, membership=membership, plan=plan, idempotency_key=idempotency_key)
    if order.total == Decimal("0"):
        payment_record_offline(actor=actor, order_id=order.pk, reference=f"free-plan-{plan.pk}")
        return None
    if order.status != Order.Status.PENDING_PAYMENT:
        return payment_summary(order.payments.order_by("pk").first())
    return payment_summary(payment_start(order_id=order.pk, provider_name=provider_name))
