"""Event tickets: issued when an event order is paid, refunded with their seats, checked in once.

Issuing and refunding run inside the payment and refund paths, under the
order's row lock, and are idempotent: they bring the order's tickets in line
with its seats, so replaying a notification never issues or refunds twice
(the ``(line, seat)`` unique constraint backs this up). A line's live
(valid or checked-in) tickets never outnumber the seats it still holds
(``quantity - quantity_released``): seats a refund gives back take their
tickets with them.

Which tickets a refund takes: valid ones, the highest seat numbers first. A
checked-in ticket is never refunded automatically: its holder has attended
and the door record stays true. When a refund gives back more seats than
there are valid tickets left (money refunded after the event), the
checked-in tickets keep their status; the refund itself is the money record.

Check-in (核销) locks the ticket row, so of two scanners at the same moment
exactly one checks it in and the other is told ``already_checked_in``.
"""

import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce import errors
from commerce.models import Order, OrderLine, Product, Ticket
from members.models import Community, User
from shequn_backend.audit import Actor, audit_record_many, audit_update

# No 0/O, 1/I/L: a code read aloud or typed from a screen has one reading.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 16  # 31**16, about 79 bits: not guessable, short enough to type at the door
MAX_CODE_INPUT = 64


def ticket_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def ticket_code_normalise(code: str) -> str:
    """The code as stored: upper case, without the spaces or dashes people type or scanners add."""
    return "".join(ch for ch in (code or "")[:MAX_CODE_INPUT].upper() if ch not in " -\t\r\n")


def _seats_held(line: OrderLine) -> int:
    return line.quantity - line.quantity_released


def ticket_issue_for_order(*, actor: Actor, order: Order) -> list[Ticket]:
    """Issue one ticket per seat the paid ``order``'s event lines hold. Caller holds the order lock.

    Idempotent: seats that have a ticket (in any status) get no second one. A
    paid order that holds no seats (paid after its cancellation, the seats
    gone) gets no tickets.
    """
    if order.kind != Order.Kind.EVENT:
        return []
    lines = list(OrderLine.objects.filter(order=order, product__kind=Product.Kind.EVENT).order_by("pk"))
    issued = set(Ticket.objects.filter(order=order).values_list("line_id", "seat"))
    tickets = [
        Ticket(
            order=order,
            line=line,
            seat=seat,
            product_id=line.product_id,
            community_id=order.community_id,
            buyer_id=order.buyer_id,
        )
        for line in lines
        for seat in range(1, _seats_held(line) + 1)
        if (line.pk, seat) not in issued
    ]
    if not tickets:
        return []
    _create_with_fresh_codes(tickets)
    audit_record_many(
        actor=actor,
        action="ticket.issued",
        rows=[
            (ticket, order.community_id, {"code": [None, ticket.code], "order": [None, order.pk]})
            for ticket in tickets
        ],
    )
    return tickets


def _create_with_fresh_codes(tickets: list[Ticket], *, attempts: int = 3) -> None:
    """Insert ``tickets`` with new codes; a code collision (about 2**-79 per pair) draws them again."""
    for attempt in range(attempts):
        for ticket in tickets:
            ticket.code = ticket_code_new()
        try:
            with transaction.atomic():
                Ticket.objects.bulk_create(tickets)
            return
        except IntegrityError:  # a seat issued twice fails every attempt and is raised
            if attempt == attempts - 1:
                raise


def ticket_refund_for_order(*, actor: Actor, order: Order, now: datetime | None = None) -> int:
    """Refund the valid tickets of seats ``order`` gave back. Caller holds the order lock; idempotent.

    Per line, valid tickets are refunded (highest seat first) until the live
    ones fit the seats still held; checked-in tickets are left as they are
    (see the module's docstring). Returns how many tickets were refunded.
    """
    if order.kind != Order.Kind.EVENT:
        return 0
    held = {line.pk: _seats_held(line) for line in OrderLine.objects.filter(order=order)}
    live = list(
        Ticket.objects.select_for_update()
        .filter(order=order)
        .exclude(status=Ticket.Status.REFUNDED)
        .order_by("line_id", "-seat")
    )
    refund: list[Ticket] = []
    for line_id, seats in held.items():
        mine = [ticket for ticket in live if ticket.line_id == line_id]
        excess = len(mine) - seats
        valid = [ticket for ticket in mine if ticket.status == Ticket.Status.VALID]
        refund += valid[: max(excess, 0)]
    return _move(
        actor=actor, order=order, tickets=refund, to=Ticket.Status.REFUNDED, now=now or timezone.now()
    )


def _move(*, actor: Actor, order: Order, tickets: list[Ticket], to: str, now: datetime | None) -> int:
    """Refund valid tickets (``to`` refunded, at ``now``) or make refunded ones valid again, audited."""
    if not tickets:
        return 0
    source = Ticket.Status.VALID if to == Ticket.Status.REFUNDED else Ticket.Status.REFUNDED
    Ticket.objects.filter(pk__in=[t.pk for t in tickets], status=source).update(status=to, refunded_at=now)
    action = "ticket.refunded" if to == Ticket.Status.REFUNDED else "ticket.restored"
    rows = [(ticket, order.community_id, {"status": [ticket.status, to]}) for ticket in tickets]
    audit_record_many(actor=actor, action=action, rows=rows)
    return len(tickets)


def ticket_restore_for_order(*, actor: Actor, order: Order) -> int:
    """Make valid again the refunded tickets of seats ``order`` holds again (a dispute won, its seats
    taken back). Caller holds the order lock; idempotent. Lowest seats first; returns how many."""
    if order.kind != Order.Kind.EVENT:
        return 0
    held = {line.pk: _seats_held(line) for line in OrderLine.objects.filter(order=order)}
    tickets = list(Ticket.objects.select_for_update().filter(order=order).order_by("line_id", "seat"))
    restore: list[Ticket] = []
    for line_id, seats in held.items():
        mine = [ticket for ticket in tickets if ticket.line_id == line_id]
        live = sum(1 for ticket in mine if ticket.status != Ticket.Status.REFUNDED)
        refunded = [ticket for ticket in mine if ticket.status == Ticket.Status.REFUNDED]
        restore += refunded[: max(seats - live, 0)]
    return _move(actor=actor, order=order, tickets=restore, to=Ticket.Status.VALID, now=None)


def ticket_check_in(*, actor: Actor, community: Community, code: str, now: datetime | None = None) -> Ticket:
    """Check in the ticket ``code`` of ``community`` (the caller manages it). Once only.

    ``NotFound`` for an unknown code or one of another community,
    ``TicketAlreadyCheckedIn`` (409) the second time, even from a second
    scanner at the same moment (the ticket row is locked), ``TicketRefunded``
    (409) for a refunded ticket.
    """
    code = ticket_code_normalise(code)
    with transaction.atomic(durable=True):
        ticket = (
            Ticket.objects.select_for_update(of=("self",))
            .select_related("product", "community", "buyer")
            .filter(community=community, code=code)
            .first()
        )
        if ticket is None or not code:
            raise errors.NotFound(
                _("No ticket of this community has this code. Check the code and try again.")
            )
        if ticket.status == Ticket.Status.CHECKED_IN:
            raise errors.TicketAlreadyCheckedIn(
                _("This ticket was already checked in at %(time)s. Do not let it in a second time.")
                % {"time": timezone.localtime(ticket.checked_in_at).strftime("%Y-%m-%d %H:%M")}
            )
        if ticket.status == Ticket.Status.REFUNDED:
            raise errors.TicketRefunded()
        audit_update(
            actor=actor,
            instance=ticket,
            values={
                "status": Ticket.Status.CHECKED_IN,
                "checked_in_at": now or timezone.now(),
                "checked_in_by": actor if isinstance(actor, User) else None,
            },
            action="ticket.checked_in",
            community_id=community.pk,
        )
    return ticket
