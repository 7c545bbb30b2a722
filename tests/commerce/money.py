"""The money assertion every commerce test ends with: lines = total, and paid - refunded = net."""

from decimal import Decimal

from django.db.models import Sum

from commerce.models import Order, Payment, Refund

ZERO = Decimal("0.00")


def assert_money_reconciles() -> int:
    """Check every order in the database; returns how many were checked."""
    orders = list(Order.objects.prefetch_related("lines", "payments", "refunds"))
    for order in orders:
        lines = sum((line.line_total for line in order.lines.all()), ZERO)
        assert lines == order.total, f"order {order.pk}: lines {lines} != total {order.total}"
        for line in order.lines.all():
            assert line.unit_price * line.quantity == line.line_total, f"order {order.pk}: line {line.pk}"
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
    return len(orders)
