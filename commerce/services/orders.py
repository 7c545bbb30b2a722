"""Placing, cancelling and expiring orders of goods and event tickets.

An order's SKUs are read and checked first (a visibly sold-out SKU is refused
there); then one short transaction writes the order with its frozen prices,
its lines, its audit row and its payment's first attempt, and takes the stock
last with an UPDATE per SKU (by primary key), whose row lock lasts only to the
commit. At checkout on PostgreSQL that transaction is one message to the
database (``_order_insert_in_one_message``). The provider is called afterwards, outside any
transaction (see ``commerce.services.payments``). Unpaid orders hold their
stock until they are cancelled or their hold (``ORDER_HOLD_MINUTES``) expires.
"""

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.events import order_paid_announce
from commerce.models import MemberCoupon, Order, OrderLine, Payment, Product, Sku
from commerce.pricing import tier_price
from commerce.services.commissions import commission_hold_sync
from commerce.services.coupons import (
    coupon_allocate,
    coupon_for_order,
    coupon_mark_used,
    coupon_release,
    coupon_reserve,
)
from commerce.services.order_states import STATE_FIELDS, set_fulfilment_status, set_payment_status
from commerce.services.shipping_info import shipping_info_after_handover
from commerce.services.stock import (
    skus_lock,
    skus_read,
    stock_release,
    stock_take_in_one_message,
    stock_take_last,
)
from members.models import Address, Community, Membership, User
from members.selectors import membership_get_active
from shequn_backend.audit import (
    Actor,
    actor_fields,
    audit_diff,
    audit_entry,
    audit_record_many,
    audit_snapshot,
    job_actor,
)
from shequn_backend.events import enqueue_on_commit
from shequn_backend.models import AuditEntry
from shequn_backend.sql import insert_sql, mark_inserted, pks_allocate

ZERO = Decimal("0.00")
MAX_LINES = 20
MAX_QUANTITY = 99
# What the trail records of an order's state (before and after each change).
AUDIT_FIELDS = (
    "status",
    "payment_status",
    "fulfilment_status",
    "total",
    "amount_paid",
    "amount_refunded",
    "needs_review",
    "hold_expires_at",
)
EXPIRY_ACTOR = job_actor("release_stock_holds")


def order_audit(*, actor: Actor, action: str, order: Order, before: dict, note: str = "") -> None:
    """Record ``action`` on ``order`` with what changed since ``before`` (an ``audit_snapshot``)."""
    entry = order_audit_entry(actor=actor, action=action, order=order, before=before, note=note)
    entry.save(force_insert=True)


def order_audit_entry(*, actor: Actor, action: str, order: Order, before: dict, note: str = "") -> AuditEntry:
    """The row ``order_audit`` writes, unsaved."""
    return audit_entry(
        actor=actor,
        action=action,
        target=order,
        community_id=order.community_id,
        changes=audit_diff(before, audit_snapshot(order, AUDIT_FIELDS)),
        note=note,
    )


@dataclass(frozen=True)
class LineInput:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class OrderResult:
    order: Order
    created: bool  # False: an Idempotency-Key replay returned the first order
    # A new order's lines and its payment's first attempt, as written (None for a replay).
    placed: "PlacedOrder | None" = None


def hold_deadline(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(minutes=settings.ORDER_HOLD_MINUTES)


def request_fingerprint(**parts) -> str:
    """A digest of what was asked, to tell a retry from a different request under the same key."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def merge_lines(lines: list[LineInput]) -> tuple[dict[int, int], dict[int, int]]:
    """Quantities per SKU (a SKU named twice is bought once with the sum), validated for bounds.

    Also returns each SKU's first line index, to name the line in errors.
    """
    if not lines:
        raise errors.InvalidOrderLines({"lines": [_("Add at least one line.")]})
    if len(lines) > MAX_LINES:
        raise errors.InvalidOrderLines({"lines": [_("An order has at most %(n)d lines.") % {"n": MAX_LINES}]})
    quantities: dict[int, int] = {}
    positions: dict[int, int] = {}
    for index, line in enumerate(lines):
        positions.setdefault(line.sku_id, index)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            message = _("Quantity must be between 1 and %(n)d.") % {"n": MAX_QUANTITY}
            raise errors.InvalidOrderLines({f"lines[{index}].quantity": [message]})
        quantities[line.sku_id] = quantities.get(line.sku_id, 0) + line.quantity
    for sku_id, quantity in quantities.items():
        if quantity > MAX_QUANTITY:
            message = _("Quantity must be between 1 and %(n)d.") % {"n": MAX_QUANTITY}
            raise errors.InvalidOrderLines({f"lines[{positions[sku_id]}].quantity": [message]})
    return quantities, positions


def referrer_for(*, community: Community, buyer: User, referral_code: str | None) -> Membership | None:
    """The active member of ``community`` who owns ``referral_code``; errors for unknown or own codes."""
    if not referral_code:
        return None
    referrer = (
        Membership.objects.filter(community=community, referral_code=referral_code.strip().upper())
        .filter(status=Membership.Status.ACTIVE)
        .first()
    )
    if referrer is None or (referrer.expires_at is not None and referrer.expires_at <= timezone.now()):
        raise errors.InvalidReferralCode()
    if referrer.user_id == buyer.pk:
        raise errors.SelfReferral()
    return referrer


def _replay(*, buyer: User, idempotency_key: str, fingerprint: str) -> Order | None:
    # Unique per buyer and key: no ORDER BY (``first`` would compile one over the whole row).
    orders = Order.objects.filter(buyer=buyer, idempotency_key=idempotency_key).order_by()
    order = next(iter(orders[:1]), None)
    if order is not None and order.request_fingerprint != fingerprint:
        raise errors.IdempotencyKeyReused()
    return order


def _tier_level(membership: Membership) -> int:
    return membership.tier.level if membership.tier_id else 0


@dataclass(frozen=True)
class CheckedLines:
    """What the SKU checks found for the write: the SKUs (unlocked), the kind, currency and delivery."""

    skus: dict[int, Sku]
    kind: str
    currency: str
    delivery: str
    address: dict | None


def order_lines_check(
    *,
    community: Community,
    membership: Membership,
    quantities: dict[int, int],
    positions: dict[int, int],
    address: Address | None,
    delivery: str | None,
    now: datetime,
) -> CheckedLines:
    """Read the SKUs (one query, unlocked) and refuse what cannot be ordered, before anything is written.

    ``InvalidOrderLines`` (unknown, inactive, another community's, above the
    member's tier; goods with tickets; no address for express), ``EventStarted``,
    and ``OutOfStock`` when a SKU is visibly short: a racer who lost is refused
    here, without a transaction. The stock is taken later (``stock_take_last``).
    """
    skus = skus_read(sku_ids=quantities)
    invalid = {}
    for sku_id in quantities:
        sku = skus.get(sku_id)
        product = sku.product if sku is not None else None
        if (
            sku is None
            or not sku.is_active
            or product.community_id != community.pk
            or not product.is_active
            or (product.min_tier is not None and product.min_tier > _tier_level(membership))
        ):
            invalid[f"lines[{positions[sku_id]}].sku"] = [_("No such item on sale in this community.")]
    if invalid:
        raise errors.InvalidOrderLines(invalid)
    kinds = {skus[sku_id].product.kind for sku_id in quantities}
    if len(kinds) > 1:
        raise errors.InvalidOrderLines({"lines": [_("Buy goods and event tickets in separate orders.")]})
    for sku_id in quantities:
        product = skus[sku_id].product
        if product.kind == Product.Kind.EVENT and product.starts_at <= now:
            raise errors.EventStarted()
    delivery, address_copy = _delivery(
        products=[skus[sku_id].product for sku_id in quantities], address=address, delivery=delivery
    )
    if any(skus[sku_id].stock < quantity for sku_id, quantity in quantities.items()):
        raise errors.OutOfStock()  # visibly sold out: refuse before writing anything
    return CheckedLines(
        skus=skus,
        kind=kinds.pop(),
        currency=skus[next(iter(quantities))].currency,
        delivery=delivery,
        address=address_copy,
    )


@dataclass(frozen=True)
class PlacedOrder:
    """A new order with what was written with it: its lines and its payment's first attempt (or None)."""

    order: Order
    lines: list[OrderLine]
    payment: Payment | None


def _order_write(
    *,
    actor: Actor,
    buyer: User,
    community: Community,
    membership: Membership,
    quantities: dict[int, int],
    positions: dict[int, int],
    checked: CheckedLines,
    referrer: Membership | None,
    idempotency_key: str,
    fingerprint: str,
    coupon_id: int | None,
    coupon_code: str | None,
    now: datetime,
    payment_provider: str | None = None,
    one_message: bool = False,
) -> PlacedOrder:
    """Write the order of ``checked`` lines inside the caller's transaction; the stock is taken last.

    A coupon (the member's ``coupon_id``, or one claimed with ``coupon_code``)
    is checked, its discount allocated to the lines and the coupon reserved
    for the order. With ``payment_provider`` the payment's first attempt is
    written too (``payment_attempt_build``), so that starting it needs no
    transaction of its own. ``one_message`` (PostgreSQL, no coupon, no
    transaction open: the checkout): the rows and the stock go as one message,
    its own transaction (``_order_insert_in_one_message``).
    """
    skus = checked.skus
    lines = []
    for sku_id in sorted(quantities, key=positions.get):
        sku, quantity = skus[sku_id], quantities[sku_id]
        unit_price = tier_price(list_price=sku.price, tier=membership.tier)
        lines.append(
            OrderLine(
                sku=sku,
                product=sku.product,
                title=f"{sku.product.title} / {sku.name}"[:200],
                quantity=quantity,
                list_price=sku.price,
                unit_price=unit_price,
                line_total=unit_price * quantity,
            )
        )
    grant = coupon_for_order(
        actor=actor, membership=membership, coupon_id=coupon_id, coupon_code=coupon_code, now=now
    )
    discount = ZERO
    if grant is not None:
        discount = coupon_allocate(
            grant=grant, kind=checked.kind, currency=checked.currency, lines=lines, now=now
        )
    total = sum((line.line_total for line in lines), ZERO) - discount
    order = Order(
        community=community,
        buyer=buyer,
        kind=checked.kind,
        currency=checked.currency,
        total=total,
        discount_total=discount,
        coupon=grant,
        referrer=referrer,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        hold_expires_at=hold_deadline(now),
        delivery=checked.delivery,
        address=checked.address,
    )
    payment = None
    if payment_provider and total > 0:
        from commerce.services.payments import payment_attempt_build  # payments imports this module

        payment = payment_attempt_build(order=order, provider_name=payment_provider)
    placed = PlacedOrder(order=order, lines=lines, payment=payment)
    if not one_message:
        return _order_save(actor, placed, quantities, grant=grant, now=now)
    if total > 0:
        return _order_insert_in_one_message(actor, placed, quantities)
    with transaction.atomic(durable=True):  # free: settling it writes more than one message
        return _order_save(actor, placed, quantities, grant=grant, now=now)


def _order_save(
    actor: Actor,
    placed: PlacedOrder,
    quantities: dict[int, int],
    *,
    grant: MemberCoupon | None,
    now: datetime,
) -> PlacedOrder:
    """``_order_write``'s rows one by one in the open transaction; the SKU row locks last until its commit."""
    order = placed.order
    order.save(force_insert=True)
    for line in placed.lines:
        line.order = order
    OrderLine.objects.bulk_create(placed.lines)
    order_audit(actor=actor, action="order.created", order=order, before={})
    if grant is not None:
        coupon_reserve(actor=actor, grant=grant, order=order)
    if placed.payment is not None:
        placed.payment.order = order
        placed.payment.save(force_insert=True)
    stock_take_last(quantities=quantities)
    if order.total == 0:
        _settle_free_order(actor=actor, order=order, now=now)
    return placed


def _in_one_message(*, coupon: bool) -> bool:
    """Whether a new order goes as one message: on PostgreSQL, with no transaction open (not a
    test's) and nothing else to write (a coupon's reservation is written row by row)."""
    return not coupon and connection.vendor == "postgresql" and not connection.in_atomic_block


def _order_insert_in_one_message(
    actor: Actor, placed: PlacedOrder, quantities: dict[int, int]
) -> PlacedOrder:
    """``_order_write``'s rows (the order, its lines, its audit row, its payment's first attempt) and
    the stock, taken last, as one message that is its own transaction; their keys are taken first.

    Two round trips where one per row took seven, and the SKU row locks last only for the commit.
    """
    order, lines, payment = placed.order, placed.lines, placed.payment
    wanted = [(Order, 1), (OrderLine, len(lines)), (AuditEntry, 1), (Payment, 1 if payment else 0)]
    (order.pk,), line_pks, (entry_pk,), payment_pks = pks_allocate(*wanted)
    for line, pk in zip(lines, line_pks, strict=True):
        line.pk, line.order = pk, order
    entry = order_audit_entry(actor=actor, action="order.created", order=order, before={})
    entry.pk = entry_pk
    rows = [order, *lines, entry]
    if payment is not None:
        payment.pk, payment.order = payment_pks[0], order
        rows.append(payment)
    stock_take_in_one_message(quantities=quantities, writes=insert_sql(rows))
    mark_inserted(rows)
    return placed


def _delivery(
    *, products: list[Product], address: Address | None, delivery: str | None
) -> tuple[str, dict | None]:
    """How the order reaches the buyer and the address copy it keeps.

    Only goods that ship are delivered: by express to the address (required),
    or picked up (the default when no address is given). Virtual goods and
    tickets need neither.
    """
    if not any(product.delivery == Product.Delivery.SHIPPED for product in products):
        return Order.Delivery.NONE, None
    delivery = delivery or (Order.Delivery.EXPRESS if address is not None else Order.Delivery.PICKUP)
    if delivery == Order.Delivery.PICKUP:
        return delivery, None
    if address is None:
        raise errors.InvalidOrderLines({"address": [_("Choose the address to ship to.")]})
    return delivery, address.as_copy()


def _settle_free_order(*, actor: Actor, order: Order, now: datetime) -> None:
    """Nothing to pay (free tickets): the order is paid at once, with a zero payment for the record."""
    before = audit_snapshot(order, AUDIT_FIELDS)
    Payment.objects.create(
        order=order,
        provider="free",
        status=Payment.Status.SUCCEEDED,
        amount=0,
        currency=order.currency,
        succeeded_at=now,
    )
    set_payment_status(order, Order.PaymentStatus.PAID)
    order.paid_at = now
    order.hold_expires_at = None
    order.save(update_fields=[*STATE_FIELDS, "paid_at", "hold_expires_at"])
    coupon_mark_used(order=order, now=now)
    order_audit(actor=actor, action="order.paid", order=order, before=before, note="free")
    order_paid_announce(order=order)


def order_create(
    *,
    actor: Actor,
    buyer: User,
    community: Community,
    lines: list[LineInput],
    referral_code: str | None = None,
    idempotency_key: str | None = None,
    address_id: int | None = None,
    delivery: str | None = None,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
    membership: Membership | None = None,
    key_used: bool | None = None,
    payment_provider: str | None = None,
) -> OrderResult:
    """Place an order of goods or tickets for an active member, reserving its stock.

    Goods that ship go by express to ``address_id`` (one of the buyer's
    addresses, copied onto the order) or are picked up (``delivery``).
    ``membership``: the buyer's active membership of ``community`` when the
    caller read it already (otherwise it is read here). ``key_used``: whether
    an order of the buyer's has ``idempotency_key``, when the caller read it
    along (False skips the lookup; a concurrent request that takes the key
    meanwhile is still caught by the unique constraint). ``payment_provider``:
    write the payment's first attempt at that provider with the order.

    Everything is read and checked before the one transaction that writes the
    order, its lines, the audit row (and the attempt) and takes the stock last,
    so a request refused (a sold-out SKU) writes nothing and opens none.

    Idempotent per (buyer, ``idempotency_key``): a retry returns the first
    order and reserves nothing more, even when both arrive together (the
    unique constraint makes the loser roll back its reservation). The same key
    with a different request is refused. Raises ``MembershipRequired``,
    ``InvalidOrderLines``, ``OutOfStock``, ``EventStarted``,
    ``InvalidReferralCode``, ``SelfReferral``, and for a coupon ``NotFound``,
    ``CouponUnavailable``, ``CouponNotApplicable``, ``InvalidCouponCode``,
    ``CouponSoldOut``, ``CouponLimitReached``.
    """
    if membership is None:
        membership = membership_get_active(user=buyer, community=community)
    if membership is None:
        raise errors.MembershipRequired()
    quantities, positions = merge_lines(lines)
    parts = {"community": community.pk, "lines": sorted(quantities.items())}
    if address_id or delivery:  # old requests keep their old fingerprint
        parts.update(address=address_id, delivery=delivery)
    if coupon_id or coupon_code:
        parts.update(coupon=coupon_id, coupon_code=(coupon_code or "").strip().upper())
    fingerprint = request_fingerprint(**parts, referral_code=(referral_code or "").upper())
    if idempotency_key and key_used is not False:
        existing = _replay(buyer=buyer, idempotency_key=idempotency_key, fingerprint=fingerprint)
        if existing is not None:
            return OrderResult(existing, created=False)
    referrer = referrer_for(community=community, buyer=buyer, referral_code=referral_code)
    address = None
    if address_id is not None:
        address = Address.objects.filter(user=buyer, pk=address_id).first()
        if address is None:
            raise errors.InvalidOrderLines({"address": [_("No such address of yours.")]})
    now = timezone.now()
    checked = order_lines_check(
        community=community,
        membership=membership,
        quantities=quantities,
        positions=positions,
        address=address,
        delivery=delivery,
        now=now,
    )
    one_message = _in_one_message(coupon=bool(coupon_id or coupon_code))
    try:
        with nullcontext() if one_message else transaction.atomic(durable=True):
            placed = _order_write(
                actor=actor,
                buyer=buyer,
                community=community,
                membership=membership,
                quantities=quantities,
                positions=positions,
                checked=checked,
                referrer=referrer,
                idempotency_key=idempotency_key or "",
                fingerprint=fingerprint,
                coupon_id=coupon_id,
                coupon_code=coupon_code,
                now=now,
                payment_provider=payment_provider,
                one_message=one_message,
            )
    except IntegrityError:
        # A concurrent request with the same key won; its order is the answer.
        existing = idempotency_key and _replay(
            buyer=buyer, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        if not existing:
            raise
        return OrderResult(existing, created=False)
    return OrderResult(placed.order, created=True, placed=placed)


def _cancel_locked(*, order: Order, reason: str, now: datetime, close_at_provider: bool = True) -> None:
    """Cancel a locked unpaid order and release its stock; the caller records the audit row (and, with
    ``close_at_provider`` False, queues the provider-side cancel itself)."""
    set_payment_status(order, Order.PaymentStatus.CANCELLED)
    order.cancelled_at = now
    order.cancel_reason = reason[:200]
    order.hold_expires_at = None
    order.save(
        update_fields=[*STATE_FIELDS, "cancelled_at", "cancel_reason", "hold_expires_at", "updated_at"]
    )
    stock_release(order=order)
    coupon_release(order=order)
    Payment.objects.filter(order=order, status__in=[Payment.Status.CREATING, Payment.Status.PENDING]).update(
        status=Payment.Status.CANCELED
    )
    if close_at_provider:
        _cancel_at_provider_on_commit(order_id=order.pk)


def _cancel_at_provider_on_commit(*, order_id: int) -> None:
    """Queue the provider-side cancel after commit; best effort (a payment that goes through anyway
    is applied as a late payment), so a broker that is down is only logged."""
    from commerce.tasks import payment_cancel_task  # tasks import services: keep the cycle out of import time

    enqueue_on_commit(payment_cancel_task, order_id)


def _cancel_batch_at_provider_on_commit(*, order_ids: list[int]) -> None:
    """The provider-side cancel of a released batch: one message, which a worker fans out into
    ``payment_cancel_task`` per order (the job does not publish one per order)."""
    from commerce.tasks import payments_cancel_fan_out_task

    if order_ids:
        enqueue_on_commit(payments_cancel_fan_out_task, list(order_ids))


def order_cancel(*, actor: Actor, order: Order, reason: str = "") -> Order:
    """Cancel an unpaid order and release its stock. The caller checked the order is the actor's.

    Locks the order row, then the SKUs (the fixed order of every stock move).
    Cancelling a cancelled order is a no-op; a paid one is refused.
    """
    with transaction.atomic(durable=True):
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status == Order.Status.CANCELLED:
            return order
        if order.status != Order.Status.PENDING_PAYMENT:
            raise errors.OrderNotCancellable()
        before = audit_snapshot(order, AUDIT_FIELDS)
        reason = reason or _("Cancelled by the buyer.")
        _cancel_locked(order=order, reason=reason, now=timezone.now())
        order_audit(actor=actor, action="order.cancelled", order=order, before=before, note=reason)
    return order


def order_release_expired(*, now: datetime, batch_size: int = 200, actor: Actor = EXPIRY_ACTOR) -> int:
    """Cancel unpaid orders whose hold expired before ``now`` and release their stock.

    Set-based, one transaction per batch: the batch's order rows are locked
    (rows another worker or a payment holds are skipped), then all their SKUs
    in primary-key order (the fixed order of every stock move), and one audit
    row per order is written in bulk. Safe to run any number of times, by any
    number of workers at once. Returns how many orders it cancelled.
    """
    cancelled = 0
    last_id = 0
    while True:
        ids = list(
            Order.objects.filter(
                status=Order.Status.PENDING_PAYMENT, hold_expires_at__lte=now, pk__gt=last_id
            )
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return cancelled
        last_id = ids[-1]
        cancelled += _release_batch(order_ids=ids, now=now, actor=actor)


def _release_batch(*, order_ids: list[int], now: datetime, actor: Actor) -> int:
    if _set_based():
        return _release_batch_postgresql(order_ids=order_ids, now=now, actor=actor)
    reason = _("The payment hold expired.")
    with transaction.atomic():
        orders = list(
            Order.objects.select_for_update(skip_locked=True)
            .filter(pk__in=order_ids, status=Order.Status.PENDING_PAYMENT, hold_expires_at__lte=now)
            .order_by("pk")
        )
        skus_lock(
            sku_ids=OrderLine.objects.filter(order__in=orders, sku__isnull=False).values_list(
                "sku_id", flat=True
            )
        )
        rows = []
        for order in orders:
            before = audit_snapshot(order, AUDIT_FIELDS)
            _cancel_locked(order=order, reason=reason, now=now, close_at_provider=False)
            rows.append((order, order.community_id, audit_diff(before, audit_snapshot(order, AUDIT_FIELDS))))
        audit_record_many(actor=actor, action="order.cancelled", rows=rows)
        _cancel_batch_at_provider_on_commit(order_ids=[order.pk for order in orders])
    return len(orders)


def _set_based() -> bool:
    """PostgreSQL releases a batch in two set-based statements; elsewhere the ORM does (the same rows)."""
    return connection.vendor == "postgresql"


# The batch's lapsed orders locked (others' skipped), then every SKU their lines hold, in id order
# (the fixed order of every stock move). Returns the locked order ids.
_RELEASE_LOCK_SQL = """
WITH locked AS (
    SELECT id FROM {order}
    WHERE id = ANY(%(ids)s::bigint[]) AND status = 'pending_payment' AND hold_expires_at <= %(now)s
    ORDER BY id
    FOR UPDATE SKIP LOCKED
), skus AS (
    SELECT id FROM {sku}
    WHERE id IN (SELECT l.sku_id FROM {line} l JOIN locked o ON o.id = l.order_id)
    ORDER BY id
    FOR UPDATE
)
SELECT id, (SELECT count(*) FROM skus) FROM locked
"""
# On the locked rows, what ``_cancel_locked`` and ``audit_record_many`` write for each order: its lines'
# units back to their SKUs (the lines remember it), the order cancelled, its reserved coupon free
# again, its open payments cancelled, one audit row with the changes as ``audit_diff`` words them
# (``hold_expires_at`` as ``datetime.isoformat`` of the UTC time).
_RELEASE_SQL = """
WITH o AS (
    SELECT id, community_id, coupon_id, status, payment_status, hold_expires_at AT TIME ZONE 'UTC' AS hold
    FROM {order} WHERE id = ANY(%(ids)s::bigint[])
), lines AS (
    SELECT l.id, l.sku_id, l.quantity - l.quantity_released AS delta
    FROM {line} l JOIN o ON o.id = l.order_id
    WHERE l.sku_id IS NOT NULL AND l.quantity > l.quantity_released
), stock AS (
    UPDATE {sku} s SET stock = s.stock + d.delta
    FROM (SELECT sku_id, sum(delta) AS delta FROM lines GROUP BY sku_id) AS d
    WHERE s.id = d.sku_id
), released AS (
    UPDATE {line} l SET quantity_released = l.quantity FROM lines WHERE l.id = lines.id
), cancelled AS (
    UPDATE {order} t
    SET status = 'cancelled', payment_status = 'cancelled', cancelled_at = %(now)s,
        cancel_reason = %(reason)s, hold_expires_at = NULL, updated_at = %(updated_at)s
    FROM o WHERE t.id = o.id
), coupons AS (
    UPDATE {coupon} c SET status = 'available', order_id = NULL
    FROM o WHERE c.id = o.coupon_id AND c.order_id = o.id AND c.status = 'reserved'
), payments AS (
    UPDATE {payment} p SET status = 'canceled'
    FROM o WHERE p.order_id = o.id AND p.status IN ('creating', 'pending')
)
INSERT INTO {audit} (actor_id, actor_label, action, target_type, target_id, community_id, changes, note,
                     created_at)
SELECT %(actor_id)s, %(actor_label)s, 'order.cancelled', 'commerce.order', o.id::text, o.community_id,
       jsonb_build_object(
           'status', jsonb_build_array(o.status, 'cancelled'),
           'payment_status', jsonb_build_array(o.payment_status, 'cancelled'),
           'hold_expires_at', jsonb_build_array(
               to_char(o.hold, 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN to_char(o.hold, 'US') = '000000' THEN '' ELSE '.' || to_char(o.hold, 'US') END
               || '+00:00',
               NULL)),
       '', %(updated_at)s
FROM o
"""


def _release_batch_postgresql(*, order_ids: list[int], now: datetime, actor: Actor) -> int:
    """``_release_batch`` in two statements: lock (orders, then SKUs), then every write of the batch."""
    tables = {
        "order": Order._meta.db_table,
        "line": OrderLine._meta.db_table,
        "sku": Sku._meta.db_table,
        "coupon": MemberCoupon._meta.db_table,
        "payment": Payment._meta.db_table,
        "audit": AuditEntry._meta.db_table,
    }
    who = actor_fields(actor)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_RELEASE_LOCK_SQL.format(**tables), {"ids": order_ids, "now": now})
        locked = [pk for pk, _skus in cursor.fetchall()]
        if not locked:
            return 0
        cursor.execute(
            _RELEASE_SQL.format(**tables),
            {
                "ids": locked,
                "now": now,
                "reason": _("The payment hold expired.")[:200],
                "updated_at": timezone.now(),
                "actor_id": who["actor"].pk if who["actor"] is not None else None,
                "actor_label": who["actor_label"],
            },
        )
        _cancel_batch_at_provider_on_commit(order_ids=locked)
    return len(locked)


# The old one-word marks, as fulfilment states: "fulfilled" is handed over (or the event took place).
_ADVANCE_TO = {
    Order.Status.FULFILLED: Order.FulfilmentStatus.DELIVERED,
    Order.Status.COMPLETED: Order.FulfilmentStatus.COMPLETED,
}


def order_advance(*, actor: Actor, order_id: int, status: str) -> Order:
    """Move a paid order on: fulfilled (delivered, or the event took place) -> completed.

    ``status`` is the old mark (``fulfilled`` or ``completed``); express
    orders are shipped with tracking numbers before either. The caller
    checked that the actor manages the order's community. A partial refund
    never blocks it, and refunds stay possible afterwards; an order already
    there is left as it is.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        before = audit_snapshot(order, AUDIT_FIELDS)
        if order.delivery == Order.Delivery.EXPRESS and order.fulfilment_status in (
            Order.FulfilmentStatus.UNFULFILLED,
            Order.FulfilmentStatus.PARTIALLY_SHIPPED,
        ):
            # WeChat needs the tracking numbers: express goods move on by their shipments.
            raise errors.ApplicationError(
                _("Ship express orders with their tracking numbers first."),
                code="ship_first",
                http_status=409,
            )
        if not set_fulfilment_status(order, _ADVANCE_TO[status]):
            return order
        order.save(update_fields=[*STATE_FIELDS, "updated_at"])
        order_audit(actor=actor, action=f"order.{status}", order=order, before=before)
        commission_hold_sync(order=order)
        if before["fulfilment_status"] == Order.FulfilmentStatus.UNFULFILLED:
            shipping_info_after_handover(order=order)
    return order
