"""The money assertion every commerce test ends with: lines less discounts = total, paid - refunded = net.

Coupons: each line's discount lies within its total, the lines' discounts
add up to the order's, the lines' paid amounts add up to the total; an
order's coupon is held by it while unpaid and used by it once paid; each
coupon counts exactly the member coupons it gave out; commissions are
computed on what was paid.
"""

from decimal import Decimal

from django.db.models import Count, F, Sum

from commerce.models import Commission, Coupon, MemberCoupon, Order, Payment, Refund

ZERO = Decimal("0.00")


def assert_money_reconciles() -> int:
    """Check every order in the database; returns how many were checked."""
    orders = list(Order.objects.select_related("coupon").prefetch_related("lines", "payments", "refunds"))
    for order in orders:
        lines = sum((line.line_total for line in order.lines.all()), ZERO)
        discounts = sum((line.discount for line in order.lines.all()), ZERO)
        paid_lines = sum((line.paid_amount for line in order.lines.all()), ZERO)
        assert discounts == order.discount_total, f"order {order.pk}: line discounts {discounts}"
        assert lines - discounts == order.total, (
            f"order {order.pk}: lines {lines} - {discounts} != {order.total}"
        )
        assert paid_lines == order.total, f"order {order.pk}: lines paid {paid_lines} != total {order.total}"
        for line in order.lines.all():
            assert line.unit_price * line.quantity == line.line_total, f"order {order.pk}: line {line.pk}"
            assert ZERO <= line.discount <= line.line_total, f"order {order.pk}: line {line.pk} discount"
        _assert_coupon_state(order)
        paid = sum(
            (p.amount_received for p in order.payments.all() if p.status == Payment.Status.SUCCEEDED), ZERO
        )
        assert paid == order.amount_paid, f"order {order.pk}: payments {paid} != paid {order.amount_paid}"
        counted = {p.pk for p in order.payments.all() if p.status == Payment.Status.SUCCEEDED}
        refunded = sum(
            (
                r.amount
                for r in order.refunds.all()
                if r.status == Refund.Status.SUCCEEDED and r.payment_id in counted
            ),
            ZERO,
        )
        assert refunded == order.amount_refunded, (
            f"order {order.pk}: refunds {refunded} != {order.amount_refunded}"
        )
        assert ZERO <= order.amount_refunded <= order.amount_paid, f"order {order.pk}: refunded > paid"
        assert order.net_amount == order.amount_paid - order.amount_refunded
        if order.amount_paid and not order.needs_review:
            assert order.amount_paid == order.total, f"order {order.pk}: paid {order.amount_paid} != total"
        if order.status == Order.Status.REFUNDED:
            assert order.amount_refunded == order.amount_paid > 0
        if order.status == Order.Status.PARTIALLY_REFUNDED:
            assert ZERO < order.amount_refunded < order.amount_paid
        if order.status == Order.Status.PAID:
            assert order.amount_refunded == ZERO and order.amount_paid == order.total
        if order.status in (Order.Status.PENDING_PAYMENT, Order.Status.CANCELLED):
            assert order.amount_paid == ZERO or order.needs_review
    totals = Order.objects.aggregate(paid=Sum("amount_paid"), refunded=Sum("amount_refunded"))
    assert (totals["refunded"] or ZERO) <= (totals["paid"] or ZERO)
    # Commissions of paid orders are computed on what was paid (after the coupon), never the list price.
    off_base = Commission.objects.filter(order__amount_paid__gt=0).exclude(
        base_amount=F("order__amount_paid")
    )
    assert not off_base.exists(), f"commissions {list(off_base.values_list('pk', flat=True)[:5])}: base"
    for coupon in Coupon.objects.annotate(given=Count("grants")):
        given = coupon.given
        assert given == coupon.issued_count, (
            f"coupon {coupon.pk}: {given} given, counted {coupon.issued_count}"
        )
        assert coupon.total_limit is None or given <= coupon.total_limit, (
            f"coupon {coupon.pk}: over its limit"
        )
    return len(orders)


def _assert_coupon_state(order: Order) -> None:
    """Discounts come from a coupon; the coupon is where the order's state says it is."""
    if order.coupon is None:
        assert order.discount_total == ZERO, f"order {order.pk}: a discount without a coupon"
        return
    grant = order.coupon
    if order.status == Order.Status.PENDING_PAYMENT:
        assert grant.status == MemberCoupon.Status.RESERVED and grant.order_id == order.pk, (
            f"order {order.pk}"
        )
    elif order.status == Order.Status.CANCELLED:
        assert grant.order_id != order.pk or grant.status != MemberCoupon.Status.RESERVED, f"order {order.pk}"
    elif order.status == Order.Status.REFUNDED:
        held = grant.order_id == order.pk and grant.status == MemberCoupon.Status.USED
        assert held or grant.order_id != order.pk, f"order {order.pk}: coupon {grant.status}"
    elif not order.needs_review:
        assert grant.status == MemberCoupon.Status.USED and grant.order_id == order.pk, f"order {order.pk}"
