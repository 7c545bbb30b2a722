"""After-sale requests (售后): refund only, or return and refund, of units of a paid goods order.

How a request moves (every step locks the order row, then the request's):

* ``requested`` by the member, within ``AFTER_SALE_DAYS`` of delivery (any time
  before it), for units not refunded and not in another open request, for at
  most what those units were paid (``line_refundable_amount``);
* the owner rejects it (``rejected``, with a reason) or approves it: a
  refund-only request is ``approved`` and its refund goes out at once; a
  return is ``awaiting_return``: the member ships the goods back to the
  community's return address and posts the tracking number, the owner's
  ``receive`` (optionally putting the goods back into stock) issues the refund;
* ``refunded`` once the provider confirms the refund (``order_refunds_settle``);
* the member may cancel a request nothing was refunded for yet (``cancelled``).

The refund of a request is one row (``Refund.after_sale`` is unique), so two
approvals or two receipts at once send one refund. Units are counted as
refunded on the line (``quantity_refunded``) when the refund is issued;
unshipped ones are also released to stock, so they no longer ship. An open
request holds the order's commissions; the refund reverses them in proportion.
"""

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.models import AfterSale, AfterSaleLine, Order, OrderLine, Refund
from commerce.services.commissions import commission_hold_sync
from commerce.services.order_states import FULFILLABLE, STATE_FIELDS, InvalidTransition, set_fulfilment_status
from commerce.services.orders import AUDIT_FIELDS, order_audit
from commerce.services.refunds import (
    line_refundable_amount,
    order_refundable_amount,
    order_refundable_unless_disputed,
    refund_request,
)
from commerce.services.shipments import LineQuantity, next_fulfilment, parcel_reference_clean
from commerce.services.stock import stock_put_back, stock_release
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot

CENT = Decimal("0.01")
S = AfterSale.Status
AFTER_SALE_AUDIT_FIELDS = ("status", "decision_reason", "carrier", "tracking_no", "restocked", "received_at")


def after_sale_window_closes(*, order: Order) -> datetime | None:
    """When after-sale requests close: ``AFTER_SALE_DAYS`` after delivery (virtual goods: after payment).

    None while the goods are on their way: requests stay open until then.
    """
    start = order.delivered_at
    if start is None and order.delivery == Order.Delivery.NONE:
        start = order.paid_at
    return None if start is None else start + timedelta(days=settings.AFTER_SALE_DAYS)


def _audit(*, actor: Actor, action: str, after_sale: AfterSale, before: dict, note: str = "") -> None:
    audit_record(
        actor=actor,
        action=action,
        target=after_sale,
        community_id=after_sale.order.community_id,
        changes=audit_diff(before, audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)),
        note=note,
    )


def _units_open(line: OrderLine) -> int:
    """Units of ``line`` in requests not refunded yet (those refunded count in ``quantity_refunded``)."""
    return (
        AfterSaleLine.objects.filter(
            line=line, after_sale__status__in=(S.REQUESTED, S.AWAITING_RETURN), after_sale__received_at=None
        ).aggregate(units=Sum("quantity"))["units"]
        or 0
    )


def _units_returned(line: OrderLine) -> int:
    """Units of ``line`` in return requests (open or refunded): they cannot be returned twice."""
    return (
        AfterSaleLine.objects.filter(
            line=line,
            after_sale__type=AfterSale.Type.RETURN_REFUND,
            after_sale__status__in=(*AfterSale.OPEN_STATUSES, S.REFUNDED),
        ).aggregate(units=Sum("quantity"))["units"]
        or 0
    )


def _checked_lines(*, order: Order, kind: str, wanted: list[LineQuantity]) -> dict[OrderLine, int]:
    """The units asked for per line, each within what may still be asked for; 400 with the line's field."""
    if not wanted:
        raise errors.InvalidAfterSale({"lines": [_("Name at least one line of the order.")]})
    lines = {line.pk: line for line in OrderLine.objects.filter(order=order).order_by("pk")}
    quantities: dict[OrderLine, int] = {}
    for index, item in enumerate(wanted):
        line = lines.get(item.line_id)
        if line is None:
            raise errors.InvalidAfterSale({f"lines[{index}].line": [_("No such line in this order.")]})
        quantities[line] = quantities.get(line, 0) + item.quantity
        left = line.quantity - line.quantity_refunded - _units_open(line)
        if kind == AfterSale.Type.RETURN_REFUND:
            left = min(left, line.quantity_shipped - _units_returned(line))
        if item.quantity < 1 or quantities[line] > left:
            if kind == AfterSale.Type.RETURN_REFUND:
                message = _("At most %(n)d shipped and not yet returned or refunded.") % {"n": max(left, 0)}
            else:
                message = _("At most %(n)d bought and not yet refunded or requested.") % {"n": max(left, 0)}
            raise errors.InvalidAfterSale({f"lines[{index}].quantity": [message]})
    return quantities


def _split(amount: Decimal, parts: list[Decimal]) -> list[Decimal]:
    """``amount`` split in proportion to ``parts`` (to the fen, rounded down); the last takes the rest."""
    whole = sum(parts)
    shares = [(amount * part / whole).quantize(CENT, rounding=ROUND_DOWN) for part in parts[:-1]]
    return [*shares, amount - sum(shares, Decimal("0"))]


def after_sale_request(
    *,
    actor: Actor,
    order_id: int,
    type: str,
    lines: list[LineQuantity],
    reason: str,
    amount: Decimal | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> AfterSale:
    """The buyer asks for money back for units of a paid goods order; the caller fetched it as theirs.

    ``amount`` defaults to what those units were paid (less what was refunded
    or claimed of them), never more, nor more than is left to refund on the
    order. Idempotent per (buyer, ``idempotency_key``).
    """
    now = now or timezone.now()
    reason = (reason or "").strip()
    if not reason:
        raise errors.InvalidAfterSale({"reason": [_("Say what is wrong with the goods.")]})
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if idempotency_key:
            done = AfterSale.objects.filter(requested_by=actor, idempotency_key=idempotency_key).first()
            if done is not None:
                if done.order_id != order.pk:
                    raise errors.IdempotencyKeyReused()
                return done
        if order.kind != Order.Kind.GOODS or order.payment_status not in FULFILLABLE:
            raise errors.AfterSaleNotAllowed()
        closes = after_sale_window_closes(order=order)
        if closes is not None and now > closes:
            raise errors.AfterSaleWindowClosed(days=settings.AFTER_SALE_DAYS)
        quantities = _checked_lines(order=order, kind=type, wanted=lines)
        parts = [line_refundable_amount(line=line, quantity=q) for line, q in quantities.items()]
        most = min(sum(parts, Decimal("0")), order_refundable_amount(order=order))
        if most <= 0:
            raise errors.RefundExceedsPaid()
        if amount is None:
            amount = most
        elif amount <= 0 or amount > most:
            message = _("At most %(most)s for these units.") % {"most": most}
            raise errors.InvalidAfterSale({"amount": [message]})
        after_sale = AfterSale.objects.create(
            order=order,
            type=type,
            amount=amount,
            currency=order.currency,
            reason=reason[:500],
            requested_by=actor,
            idempotency_key=idempotency_key or "",
        )
        AfterSaleLine.objects.bulk_create(
            [
                AfterSaleLine(after_sale=after_sale, line=line, quantity=q, amount=share)
                for (line, q), share in zip(quantities.items(), _split(amount, parts), strict=True)
            ]
        )
        audit_record(
            actor=actor,
            action="after_sale.requested",
            target=after_sale,
            community_id=order.community_id,
            changes={
                "type": type,
                "amount": amount,
                "lines": {str(line.pk): q for line, q in quantities.items()},
            },
            note=after_sale.reason,
        )
        commission_hold_sync(order=order)
    return after_sale


def _lock(after_sale_id: int) -> tuple[Order, AfterSale]:
    """The order's row lock, then the request's (the order first, as payments and refunds take it)."""
    order_id = AfterSale.objects.filter(pk=after_sale_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise errors.NotFound()
    order = Order.objects.select_for_update().get(pk=order_id)
    after_sale = AfterSale.objects.select_for_update().get(pk=after_sale_id)
    after_sale.order = order
    return order, after_sale


def _refuse(after_sale: AfterSale) -> InvalidTransition:
    return InvalidTransition(
        _("This after-sale request is %(status)s: it cannot be changed this way.")
        % {"status": after_sale.get_status_display()}
    )


def _count_refunded(*, actor: Actor, order: Order, after_sale: AfterSale) -> None:
    """The request's units are refunded: counted on their lines; unshipped ones released (never shipped)."""
    targets = {}
    for item in after_sale.lines.select_related("line").order_by("line_id"):
        line = item.line
        unshipped = line.quantity - line.quantity_released - line.quantity_shipped
        OrderLine.objects.filter(pk=line.pk).update(quantity_refunded=F("quantity_refunded") + item.quantity)
        if unshipped > 0 and after_sale.type == AfterSale.Type.REFUND_ONLY:
            targets[line.pk] = line.quantity_released + min(unshipped, item.quantity)
    if targets and stock_release(order=order, released_targets=targets):
        _fulfilment_follows(actor=actor, order=order)


def _fulfilment_follows(*, actor: Actor, order: Order) -> None:
    """A partly shipped order whose rest was refunded has shipped all it still owes."""
    if order.fulfilment_status != Order.FulfilmentStatus.PARTIALLY_SHIPPED:
        return
    before = audit_snapshot(order, AUDIT_FIELDS)
    if set_fulfilment_status(order, next_fulfilment(order)):
        order.save(update_fields=[*STATE_FIELDS, "updated_at"])
        order_audit(actor=actor, action="order.fulfilment_followed_refund", order=order, before=before)


def _refund_reason(after_sale: AfterSale) -> str:
    return _("After-sale #%(id)s: %(reason)s") % {"id": after_sale.pk, "reason": after_sale.reason}


def _issue_refund(*, actor: Actor, after_sale: AfterSale) -> None:
    """Send the request's refund (one per request); a refused one is sent again by the next approval."""
    refund_request(
        actor=actor,
        order_id=after_sale.order_id,
        reason=_refund_reason(after_sale),
        source=Refund.Source.AFTER_SALE,
        amount=after_sale.amount,
        after_sale_id=after_sale.pk,
    )


def _check_refundable(*, order: Order, after_sale: AfterSale) -> None:
    """Refuse before anything changes when the refund could not go out (the order refunded meanwhile,
    or a dispute holds its money): the request stays as it was."""
    if order.payment_status not in FULFILLABLE:
        raise errors.OrderNotRefundable()
    if after_sale.amount > order_refundable_unless_disputed(order=order):
        raise errors.RefundExceedsPaid()


def _needs_refund(after_sale: AfterSale) -> bool:
    refund = Refund.objects.filter(after_sale=after_sale).only("status").first()
    return refund is None or refund.status == Refund.Status.FAILED


def after_sale_approve(
    *, actor: Actor, after_sale_id: int, reason: str = "", now: datetime | None = None
) -> AfterSale:
    """The owner approves: a refund-only request is refunded at once; a return waits for the goods.

    The caller checked that the actor manages the order's community. A repeat
    (or a second owner at the same moment) sends no second refund; it sends
    again a refund the provider refused.
    """
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        order, after_sale = _lock(after_sale_id)
        if after_sale.status == S.REQUESTED:
            before = audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)
            if after_sale.type == AfterSale.Type.RETURN_REFUND:
                address = order.community.return_address.strip()
                if not address:
                    raise errors.ReturnAddressMissing()
                after_sale.status, after_sale.return_address = S.AWAITING_RETURN, address
            else:
                _check_refundable(order=order, after_sale=after_sale)
                after_sale.status = S.APPROVED
                _count_refunded(actor=actor, order=order, after_sale=after_sale)
            after_sale.decision_reason = (reason or "").strip()[:500]
            after_sale.decided_by = actor if not isinstance(actor, str) else None
            after_sale.decided_at = now
            after_sale.save()
            _audit(
                actor=actor, action=f"after_sale.{after_sale.status}", after_sale=after_sale, before=before
            )
        elif after_sale.status not in (S.APPROVED, S.AWAITING_RETURN, S.REFUNDED):
            raise _refuse(after_sale)
    if after_sale.status == S.APPROVED and _needs_refund(after_sale):
        _issue_refund(actor=actor, after_sale=after_sale)
    return AfterSale.objects.get(pk=after_sale.pk)


def after_sale_reject(
    *, actor: Actor, after_sale_id: int, reason: str, now: datetime | None = None
) -> AfterSale:
    """The owner rejects a request not refunded yet (a return: before the goods came back), saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise errors.InvalidAfterSale({"reason": [_("Tell the member why the request is rejected.")]})
    with transaction.atomic():
        order, after_sale = _lock(after_sale_id)
        if after_sale.status == S.REJECTED:
            return after_sale
        if after_sale.status not in (S.REQUESTED, S.AWAITING_RETURN) or after_sale.received_at:
            raise _refuse(after_sale)
        before = audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)
        after_sale.status, after_sale.decision_reason = S.REJECTED, reason[:500]
        after_sale.decided_by = actor if not isinstance(actor, str) else None
        after_sale.decided_at = now or timezone.now()
        after_sale.save()
        _audit(actor=actor, action="after_sale.rejected", after_sale=after_sale, before=before, note=reason)
        commission_hold_sync(order=order)
    return after_sale


def after_sale_cancel(*, actor: Actor, after_sale_id: int) -> AfterSale:
    """The member withdraws their request, while nothing of it was refunded (nor the goods received)."""
    with transaction.atomic():
        order, after_sale = _lock(after_sale_id)
        if after_sale.status == S.CANCELLED:
            return after_sale
        if after_sale.status not in (S.REQUESTED, S.AWAITING_RETURN) or after_sale.received_at:
            raise _refuse(after_sale)
        before = audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)
        after_sale.status = S.CANCELLED
        after_sale.save()
        _audit(actor=actor, action="after_sale.cancelled", after_sale=after_sale, before=before)
        commission_hold_sync(order=order)
    return after_sale


def after_sale_return_ship(
    *, actor: Actor, after_sale_id: int, carrier: str, tracking_no: str, now: datetime | None = None
) -> AfterSale:
    """The member sent the goods back: the carrier and tracking number (corrected by posting again)."""
    carrier, tracking_no = parcel_reference_clean(
        carrier=carrier, tracking_no=tracking_no, error=errors.InvalidAfterSale
    )
    with transaction.atomic():
        _order, after_sale = _lock(after_sale_id)
        if after_sale.status != S.AWAITING_RETURN or after_sale.received_at:
            raise _refuse(after_sale)
        before = audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)
        after_sale.carrier, after_sale.tracking_no = carrier, tracking_no
        after_sale.returned_at = now or timezone.now()
        after_sale.save()
        _audit(actor=actor, action="after_sale.return_shipped", after_sale=after_sale, before=before)
    return after_sale


def after_sale_receive(
    *, actor: Actor, after_sale_id: int, restock: bool = False, reason: str = "", now: datetime | None = None
) -> AfterSale:
    """The owner got the returned goods: the refund goes out; ``restock`` puts the goods back into stock.

    The caller checked that the actor manages the order's community. A second
    receipt (or two at once) sends no second refund and restocks nothing again.
    """
    with transaction.atomic(durable=True):
        order, after_sale = _lock(after_sale_id)
        if after_sale.type != AfterSale.Type.RETURN_REFUND:
            raise _refuse(after_sale)
        if after_sale.status == S.AWAITING_RETURN and after_sale.received_at is None:
            if not after_sale.tracking_no:
                raise errors.ReturnNotShipped()
            _check_refundable(order=order, after_sale=after_sale)
            before = audit_snapshot(after_sale, AFTER_SALE_AUDIT_FIELDS)
            after_sale.received_at, after_sale.restocked = now or timezone.now(), restock
            if reason.strip():
                after_sale.decision_reason = reason.strip()[:500]
            after_sale.save()
            _count_refunded(actor=actor, order=order, after_sale=after_sale)
            if restock:
                quantities: dict[int, int] = {}
                for item in after_sale.lines.select_related("line").filter(line__sku__isnull=False):
                    quantities[item.line.sku_id] = quantities.get(item.line.sku_id, 0) + item.quantity
                stock_put_back(
                    quantities=quantities,
                    reason=_("Returned with after-sale #%(id)s") % {"id": after_sale.pk},
                    actor=actor,
                )
            _audit(actor=actor, action="after_sale.received", after_sale=after_sale, before=before)
        elif after_sale.received_at is None and after_sale.status != S.REFUNDED:
            raise _refuse(after_sale)
    if after_sale.received_at is not None and after_sale.status != S.REFUNDED and _needs_refund(after_sale):
        _issue_refund(actor=actor, after_sale=after_sale)
    return AfterSale.objects.get(pk=after_sale.pk)
