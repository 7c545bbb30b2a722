"""An order's two states and their allowed moves; ``Order.status`` follows as their summary.

A small explicit transition table rather than a state-machine library: the
libraries (django-fsm-2, viewflow.fsm) bind transitions to model methods and
save through them, while here every write goes through a service that holds
the row lock, audits and saves chosen fields. These helpers only check a move
and set the fields in memory; the caller saves ``STATE_FIELDS``. The database
checks the values and that ``status`` summarises them.
"""

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.errors import ApplicationError
from commerce.models import Order
from commerce.models.orders import summary_status

P, F = Order.PaymentStatus, Order.FulfilmentStatus
STATE_FIELDS = ["payment_status", "fulfilment_status", "status", "delivered_at"]

PAYMENT_MOVES = {
    P.UNPAID: {P.PAID, P.CANCELLED},
    P.CANCELLED: {P.PAID},  # a late payment, taken when the stock is still there
    P.PAID: {P.PARTIALLY_REFUNDED, P.REFUNDED},
    # The provider's refunds only grow, but a refund it reverses brings an order back.
    P.PARTIALLY_REFUNDED: {P.PAID, P.REFUNDED},
    P.REFUNDED: {P.PAID, P.PARTIALLY_REFUNDED},
}
FULFILMENT_MOVES = {
    F.UNFULFILLED: {F.PARTIALLY_SHIPPED, F.SHIPPED, F.DELIVERED, F.COMPLETED},
    F.PARTIALLY_SHIPPED: {F.SHIPPED, F.DELIVERED},
    F.SHIPPED: {F.DELIVERED, F.COMPLETED},
    F.DELIVERED: {F.COMPLETED},
    F.COMPLETED: set(),
}
# Money kept: goods can move. A partial refund never blocks shipping.
FULFILLABLE = (P.PAID, P.PARTIALLY_REFUNDED)


class InvalidTransition(ApplicationError):
    code = "invalid_status"
    http_status = 409


def _refuse(message: str) -> InvalidTransition:
    return InvalidTransition(message)


def set_payment_status(order: Order, status: str) -> bool:
    """Move ``order``'s money state to ``status`` in memory; False when it is already there."""
    if order.payment_status == status:
        return False
    if status not in PAYMENT_MOVES[order.payment_status]:
        raise _refuse(_("An order cannot go from %(a)s to %(b)s.") % {"a": order.payment_status, "b": status})
    order.payment_status = status
    order.status = summary_status(order.payment_status, order.fulfilment_status)
    return True


def set_fulfilment_status(order: Order, status: str, *, now: datetime | None = None) -> bool:
    """Move ``order``'s fulfilment to ``status`` in memory; False when it is already there.

    Only orders whose money is (at least partly) kept move on. The first move
    to delivered (or straight to completed) sets ``delivered_at`` (``now``).
    """
    if order.fulfilment_status == status:
        return False
    if order.payment_status not in FULFILLABLE:
        raise _refuse(_("Only paid orders can be shipped, delivered or completed."))
    if status not in FULFILMENT_MOVES[order.fulfilment_status]:
        raise _refuse(
            _("An order cannot go from %(a)s to %(b)s.") % {"a": order.fulfilment_status, "b": status}
        )
    order.fulfilment_status = status
    order.status = summary_status(order.payment_status, order.fulfilment_status)
    if status in (F.DELIVERED, F.COMPLETED) and order.delivered_at is None:
        order.delivered_at = now or timezone.now()
    return True
