"""``seed_demo --scale``: synthetic data written directly, with the figures the services would compute."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from commerce.models import Commission, Order, OrderLine, Payment, Refund, Sku
from commerce.pricing import tier_price
from commerce.scale import STOCK
from commerce.services.commissions import commission_amount, commission_reverse_for_order
from commerce.services.orders import order_release_expired
from members.models import Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def loaded():
    out = StringIO()
    call_command("seed_demo", "--scale", "--members", "300", "--orders", "800", "--seed", "77", stdout=out)
    return out.getvalue()


def test_scale_load_reports_its_rows_and_refuses_to_load_the_same_seed_twice(loaded):
    assert "Scale data loaded" in loaded and "orders 800" in loaded
    assert Order.objects.count() == Payment.objects.count() == 800
    with pytest.raises(ValueError, match="already loaded"):
        call_command("seed_demo", "--scale", "--members", "300", "--orders", "800", "--seed", "77")


def test_lines_and_totals_are_priced_as_the_order_service_prices_them(loaded):
    lines = OrderLine.objects.select_related("sku")
    assert lines.exists()
    for line in lines:
        assert line.list_price == line.sku.price
        assert line.unit_price == tier_price(list_price=line.sku.price, tier=None)
        assert line.line_total == line.unit_price * line.quantity
    for order in Order.objects.annotate(lines_total=Sum("lines__line_total")):
        assert order.total == order.lines_total
        assert order.amount_paid == (0 if order.status == "pending_payment" else order.total)


def test_some_unpaid_orders_hold_stock_past_their_hold_and_the_job_gives_it_back(loaded):
    now = timezone.now()
    unpaid = Order.objects.filter(status="pending_payment")
    assert 0 < unpaid.count() < 800 // 20  # about 1%
    for order in unpaid:
        assert order.payment_status == "unpaid" and order.paid_at is None and order.amount_paid == 0
        assert order.created_at < order.hold_expires_at <= now
        assert not order.commissions.exists() and not order.refunds.exists()
        assert [p.status for p in order.payments.all()] == ["pending"]
    held = {
        row["sku_id"]: row["units"]
        for row in OrderLine.objects.filter(order__in=unpaid).values("sku_id").annotate(units=Sum("quantity"))
    }
    for sku in Sku.objects.all():
        assert sku.stock + held.get(sku.pk, 0) == STOCK  # what the unpaid orders' lines hold is taken

    assert order_release_expired(now=now) == len(unpaid)

    assert set(Sku.objects.values_list("stock", flat=True)) == {STOCK}
    assert not Order.objects.filter(status="pending_payment").exists()
    assert (
        Payment.objects.filter(status="canceled").count() == Order.objects.filter(status="cancelled").count()
    )


def test_commissions_are_what_the_commission_service_computes(loaded):
    commissions = Commission.objects.select_related("order", "beneficiary", "community")
    assert commissions.filter(level=2).exists() and commissions.filter(amount_reversed__gt=0).exists()
    for commission in commissions:
        order, community = commission.order, commission.community
        rate = {1: community.referral_level1_percent, 2: community.referral_level2_percent}[commission.level]
        assert commission.rate_percent == rate
        assert commission.amount == commission_amount(base=order.amount_paid, percent=rate)
        assert commission.settle_after == order.paid_at + timedelta(days=community.return_window_days)
        buyer = Membership.objects.get(user_id=order.buyer_id, community_id=order.community_id)
        level1 = buyer.referred_by
        assert commission.beneficiary == (level1 if commission.level == 1 else level1.referred_by)


def test_refunded_orders_need_no_commission_change_from_the_refund_service(loaded):
    refunded = Order.objects.filter(pk__in=Refund.objects.values("order_id"), commissions__isnull=False)
    assert refunded.exists()
    for order in refunded.distinct():
        assert order.amount_refunded == order.refunds.aggregate(total=Sum("amount"))["total"] > Decimal(0)
        assert commission_reverse_for_order(order=order, now=timezone.now()) == []
