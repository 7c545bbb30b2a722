"""What commerce announces to other apps (trust listens). Commerce imports none of its listeners.

Send with ``shequn_backend.events.send_on_commit(signal, sender=<model class>, ...)``
from the service that made the change. Arguments are ids and plain values.
"""

from django.dispatch import Signal

from shequn_backend.events import send_on_commit

# An order's first payment was confirmed. Arguments: order_id, community_id, buyer_id, kind, paid_at.
order_paid = Signal()

# A refund of an order was confirmed (partial or full).
# Arguments: order_id, community_id, buyer_id, refund_id, amount (Decimal; negative when money came
# back, e.g. a dispute won), fully_refunded (bool).
order_refunded = Signal()

# A product was listed (created). Arguments: product_id, community_id.
product_listed = Signal()

# A listed product's description changed (title, category, tags, kind, text, active).
# Arguments: product_id, community_id, fields (list of changed field names).
product_changed = Signal()


def order_paid_announce(*, order) -> None:
    """Announce, after commit, that ``order`` was just marked paid."""
    send_on_commit(
        order_paid,
        sender=type(order),
        order_id=order.pk,
        community_id=order.community_id,
        buyer_id=order.buyer_id,
        kind=order.kind,
        paid_at=order.paid_at,
    )
