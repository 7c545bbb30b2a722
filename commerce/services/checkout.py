"""Checkout: place the order, then start its payment (two steps, no lock held across the provider call)."""

from dataclasses import dataclass

from commerce.errors import AmountBelowMinimum
from commerce.models import Order, OrderLine, Payment
from commerce.services.orders import LineInput, order_cancel, order_create
from commerce.services.payments import payment_precheck, payment_send_first, payment_start
from members.models import Community, Membership, User
from shequn_backend.audit import Actor


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    payment: Payment | None
    created: bool
    # A new order's lines as written (None for a replay): with ``order`` they make its body.
    lines: list[OrderLine] | None = None


def order_checkout(
    *,
    actor: Actor,
    buyer: User,
    community: Community,
    lines: list[LineInput],
    referral_code: str | None = None,
    idempotency_key: str | None = None,
    provider_name: str | None = None,
    address_id: int | None = None,
    delivery: str | None = None,
    coupon_id: int | None = None,
    coupon_code: str | None = None,
    membership: Membership | None = None,
    key_used: bool | None = None,
) -> CheckoutResult:
    """Place an order (see ``order_create``) and start its payment at ``provider_name``
    (default: the community's provider).

    An amount under the provider's minimum cancels the order (its stock comes
    back) and raises ``AmountBelowMinimum`` (400) before the provider is called.
    If the provider is unavailable the order is kept (``pending_payment``, its
    stock held until the hold expires) and ``PaymentProviderUnavailable`` is
    raised; repeating the request with the same Idempotency-Key returns the
    same order and retries the payment with the same provider key.

    A new order's first payment attempt is written in the order's transaction,
    so the provider is called right after its commit and the answer recorded
    with one UPDATE. ``membership``, ``key_used``: see ``order_create``.
    """
    provider_name = payment_precheck(community=community, buyer=buyer, provider_name=provider_name)
    result = order_create(
        actor=actor,
        buyer=buyer,
        community=community,
        lines=lines,
        referral_code=referral_code,
        idempotency_key=idempotency_key,
        address_id=address_id,
        delivery=delivery,
        coupon_id=coupon_id,
        coupon_code=coupon_code,
        membership=membership,
        key_used=key_used,
        payment_provider=provider_name,
    )
    order, placed = result.order, result.placed
    if order.status == Order.Status.PENDING_PAYMENT:
        try:
            if placed is not None and placed.payment is not None:
                payment = payment_send_first(order=order, payment=placed.payment)
            else:  # a replay, or an amount the provider never takes (refused there)
                payment = payment_start(order_id=order.pk, provider_name=provider_name)
        except AmountBelowMinimum:
            # It could never be paid this way: give its stock back at once rather than at expiry.
            order_cancel(actor=actor, order=order, reason="amount below the provider's minimum")
            raise
    else:
        payment = order.payments.order_by("pk").first()
    return CheckoutResult(
        order=order, payment=payment, created=result.created, lines=placed.lines if placed else None
    )
