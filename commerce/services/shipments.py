"""Shipping an order's goods, in one package or several, and confirming their receipt.

Every change locks the order row first (as payments and refunds do), so a
shipment, a refund and a receipt of one order never interleave. What a line
can still ship is ``quantity - quantity_released - quantity_shipped``; a
constraint keeps it from going below zero. The fulfilment state follows:
partly shipped, shipped, then delivered once every package is received.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.models import Order, OrderLine, Product, Shipment, ShipmentLine
from commerce.models.fulfilment import MAX_SHIPMENTS
from commerce.services.commissions import commission_hold_sync
from commerce.services.notifications import notification_queue
from commerce.services.order_states import FULFILLABLE, STATE_FIELDS, InvalidTransition, set_fulfilment_status
from commerce.services.orders import AUDIT_FIELDS, order_audit
from shequn_backend.audit import Actor, audit_record, audit_snapshot, job_actor

CARRIER = re.compile(r"^[A-Z][A-Z0-9_]{1,19}$")
TRACKING_NO = re.compile(r"^[A-Za-z0-9-]{4,40}$")
AUTO_CONFIRM_ACTOR = job_actor("confirm_receipts")
# The express companies owners ship with most, by WeChat's delivery id (the API takes any id).
COMMON_CARRIERS = [
    ("SF", "顺丰速运"),
    ("ZTO", "中通快递"),
    ("YTO", "圆通速递"),
    ("STO", "申通快递"),
    ("YD", "韵达速递"),
    ("JTSD", "极兔速递"),
    ("JD", "京东快递"),
    ("EMS", "中国邮政速递"),
]
F_ = Order.FulfilmentStatus


@dataclass(frozen=True)
class LineQuantity:
    """How many units of one order line (to ship, or to ask an after-sale for)."""

    line_id: int
    quantity: int


def _shippable_lines(order: Order) -> list[OrderLine]:
    return [
        line
        for line in OrderLine.objects.select_for_update(of=("self",))
        .filter(order=order)
        .select_related("product")
        .order_by("pk")
        if line.product is not None and line.product.delivery == Product.Delivery.SHIPPED
    ]


def _left(line: OrderLine) -> int:
    return line.quantity - line.quantity_released - line.quantity_shipped


def _quantities(lines: list[OrderLine], wanted: list[LineQuantity] | None) -> dict[int, int]:
    """What to ship per line id: all that is left when ``wanted`` is None, else ``wanted`` checked."""
    by_id = {line.pk: line for line in lines}
    if wanted is None:
        quantities = {line.pk: _left(line) for line in lines if _left(line) > 0}
        if not quantities:
            raise errors.ApplicationError(
                _("Everything of this order has shipped."), code="nothing_to_ship", http_status=409
            )
        return quantities
    if not wanted:
        raise errors.InvalidShipment(
            {"lines": [_("Name at least one line, or leave lines out to ship all.")]}
        )
    quantities: dict[int, int] = {}
    for index, item in enumerate(wanted):
        if item.line_id not in by_id:
            raise errors.InvalidShipment({f"lines[{index}].line": [_("No such line to ship in this order.")]})
        quantities[item.line_id] = quantities.get(item.line_id, 0) + item.quantity
        if item.quantity < 1 or quantities[item.line_id] > _left(by_id[item.line_id]):
            message = _("At most %(n)d left to ship.") % {"n": _left(by_id[item.line_id])}
            raise errors.InvalidShipment({f"lines[{index}].quantity": [message]})
    return quantities


def _check_shippable(order: Order) -> None:
    if order.kind != Order.Kind.GOODS or order.delivery == Order.Delivery.PICKUP:
        raise errors.ApplicationError(
            _("This order is not delivered by express."), code="not_shippable", http_status=409
        )
    if order.payment_status not in FULFILLABLE:
        raise InvalidTransition(_("Only paid orders can be shipped."))
    if order.shipments.count() >= MAX_SHIPMENTS:
        raise errors.ApplicationError(
            _("An order ships in at most %(n)d packages.") % {"n": MAX_SHIPMENTS},
            code="too_many_shipments",
            http_status=409,
        )


def _next_fulfilment(order: Order, lines: list[OrderLine]) -> str:
    if any(_left(line) > 0 for line in lines):
        return F_.PARTIALLY_SHIPPED
    if not order.shipments.filter(confirmed_at__isnull=True).exists():
        return F_.DELIVERED
    return F_.SHIPPED


def next_fulfilment(order: Order) -> str:
    """Where the locked order's fulfilment stands by its lines and packages (after a refund of units)."""
    return _next_fulfilment(order, _shippable_lines(order))


def parcel_reference_clean(
    *, carrier: str, tracking_no: str, error: type[errors.InvalidFields] = errors.InvalidShipment
) -> tuple[str, str]:
    """A parcel's carrier (WeChat's delivery id, upper case) and tracking number, or ``error`` by field."""
    carrier, tracking_no = carrier.strip().upper(), tracking_no.strip()
    fields = {}
    if not CARRIER.match(carrier):
        fields["carrier"] = [_("Use WeChat's delivery id, for example SF, ZTO, YTO or JTSD.")]
    if not TRACKING_NO.match(tracking_no):
        fields["tracking_no"] = [_("A tracking number is 4 to 40 letters, digits or dashes.")]
    if fields:
        raise error(fields)
    return carrier, tracking_no


def shipment_create(
    *,
    actor: Actor,
    order_id: int,
    carrier: str,
    tracking_no: str,
    lines: list[LineQuantity] | None = None,
    now: datetime | None = None,
) -> Shipment:
    """Ship ``lines`` of a paid goods order (all that is left when None) under one tracking number.

    The caller checked that the actor manages the order's community. Never
    ships more of a line than was bought and not given back; at most
    ``MAX_SHIPMENTS`` packages per order. A partial refund does not block it.
    Queues the WeChat shipping information on commit.
    """
    carrier, tracking_no = parcel_reference_clean(carrier=carrier, tracking_no=tracking_no)
    now = now or timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        _check_shippable(order)
        order_lines = _shippable_lines(order)
        quantities = _quantities(order_lines, lines)
        before = audit_snapshot(order, AUDIT_FIELDS)
        shipment = Shipment.objects.create(
            order=order,
            carrier=carrier,
            tracking_no=tracking_no,
            shipped_at=now,
            created_by=actor if not isinstance(actor, str) else None,
        )
        ShipmentLine.objects.bulk_create(
            [
                ShipmentLine(shipment=shipment, line_id=line_id, quantity=q)
                for line_id, q in quantities.items()
            ]
        )
        for line in order_lines:
            if line.pk in quantities:
                OrderLine.objects.filter(pk=line.pk).update(
                    quantity_shipped=F("quantity_shipped") + quantities[line.pk]
                )
                line.quantity_shipped += quantities[line.pk]
        set_fulfilment_status(order, _next_fulfilment(order, order_lines), now=now)
        order.save(update_fields=[*STATE_FIELDS, "updated_at"])
        audit_record(
            actor=actor,
            action="shipment.created",
            target=shipment,
            community_id=order.community_id,
            changes={"carrier": carrier, "lines": {str(k): v for k, v in quantities.items()}},
        )
        order_audit(actor=actor, action="order.shipped", order=order, before=before)
        _queue_shipping_info(order=order, shipment=shipment)
        _queue_shipped_message(actor=actor, order=order, shipment=shipment, quantities=quantities, now=now)
    return shipment


def _queue_shipped_message(
    *, actor: Actor, order: Order, shipment: Shipment, quantities: dict[int, int], now: datetime
) -> None:
    """Tell the buyer the package is on its way (a subscription message, once per shipment)."""
    titles = dict(OrderLine.objects.filter(pk__in=quantities).values_list("pk", "title"))
    items = "，".join(f"{titles[pk]}×{quantity}" for pk, quantity in quantities.items())
    carrier = dict(COMMON_CARRIERS).get(shipment.carrier, shipment.carrier)
    notification_queue(
        actor=actor,
        user=order.buyer,
        kind="shipped",
        community=order.community,
        key=f"shipment:{shipment.pk}",
        title=_("Your order has shipped"),
        body=_("Order #%(id)s has shipped with %(carrier)s, tracking number %(tracking)s.")
        % {"id": order.pk, "carrier": carrier, "tracking": shipment.tracking_no},
        data={
            "order_no": str(order.pk),
            "items": items,
            "carrier": carrier,
            "tracking_no": shipment.tracking_no,
            "shipped_at": shipment.shipped_at.isoformat(),
        },
        now=now,
    )


def _queue_shipping_info(*, order: Order, shipment: Shipment | None) -> None:
    from commerce.services.shipping_info import shipping_info_queue  # it imports this module's helpers

    shipping_info_queue(order=order, shipment=shipment)


def _confirm_locked(*, actor: Actor, order: Order, shipments, now: datetime) -> int:
    """Confirm ``shipments`` of the locked order; the order is delivered when all shipped and received."""
    before = audit_snapshot(order, AUDIT_FIELDS)
    confirmed = shipments.filter(confirmed_at__isnull=True).update(confirmed_at=now)
    moving = order.payment_status in FULFILLABLE and order.fulfilment_status in (
        F_.SHIPPED,
        F_.PARTIALLY_SHIPPED,
    )
    if moving and set_fulfilment_status(order, _next_fulfilment(order, _shippable_lines(order)), now=now):
        order.save(update_fields=[*STATE_FIELDS, "updated_at"])
        order_audit(actor=actor, action="order.delivered", order=order, before=before)
        commission_hold_sync(order=order)
    return confirmed


def order_confirm_receipt(*, actor: Actor, order_id: int, now: datetime | None = None) -> Order:
    """The buyer received the packages: every shipment so far confirmed, the order delivered once
    everything has shipped. The caller fetched the order as the buyer's. A repeat changes nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.fulfilment_status in (F_.DELIVERED, F_.COMPLETED):
            return order
        if order.fulfilment_status == F_.UNFULFILLED:
            raise InvalidTransition(_("Nothing of this order has shipped yet."))
        _confirm_locked(actor=actor, order=order, shipments=order.shipments.all(), now=now)
    return order


def shipments_auto_confirm(*, now: datetime, batch_size: int = 200, actor: Actor = AUTO_CONFIRM_ACTOR) -> int:
    """Confirm the receipt of shipments left unconfirmed ``AUTO_CONFIRM_DAYS`` after shipping.

    One transaction per order, rows another worker holds are skipped (the
    next run takes them). Returns how many shipments it confirmed.
    """
    due = now - timedelta(days=settings.AUTO_CONFIRM_DAYS)
    confirmed, last_id = 0, 0
    while True:
        order_ids = list(
            Shipment.objects.filter(confirmed_at__isnull=True, shipped_at__lte=due, order_id__gt=last_id)
            .order_by("order_id")
            .values_list("order_id", flat=True)
            .distinct()[:batch_size]
        )
        if not order_ids:
            return confirmed
        last_id = order_ids[-1]
        for order_id in order_ids:
            with transaction.atomic():
                order = Order.objects.select_for_update(skip_locked=True).filter(pk=order_id).first()
                if order is None:
                    continue
                shipments = order.shipments.filter(shipped_at__lte=due)
                confirmed += _confirm_locked(actor=actor, order=order, shipments=shipments, now=now)
