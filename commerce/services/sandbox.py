"""The demo's "pay" button: the buyer confirms their order's sandbox payment (demo and local runs only)."""

from commerce import errors
from commerce.models import Order, Payment
from commerce.payments import sandbox


def sandbox_pay_order(*, buyer, order_id: int) -> dict:
    """Pay the buyer's live sandbox attempt; the sandbox then notifies it like WeChat Pay would.

    ``NotFound`` for an order that is not the buyer's; ``SandboxNotPayable`` (409) when there is no
    payment to confirm. Returns the trade's state and the order's status as they are now.
    """
    if not Order.objects.filter(pk=order_id, buyer=buyer).exists():
        raise errors.NotFound()
    payment = (
        Payment.objects.filter(order_id=order_id, provider=sandbox.NAME)
        .exclude(status__in=[Payment.Status.CREATING, Payment.Status.CANCELED])
        .order_by("-pk")
        .first()
    )
    if payment is None:
        raise errors.SandboxNotPayable()
    try:
        trade = sandbox.sandbox_pay(reference=payment.reference, payer_id=buyer.pk)
    except sandbox.SandboxRefused as exc:
        raise errors.SandboxNotPayable() from exc
    status = Order.objects.values_list("status", flat=True).get(pk=order_id)
    return {"order_id": order_id, "trade_state": trade.state, "order_status": status}
