"""Building purchase histories at chosen times through the real services (offline payments)."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from commerce.models import Order
from commerce.services.orders import LineInput, order_create
from commerce.services.payments import payment_record_offline

T0 = timezone.make_aware(datetime(2025, 3, 3, 10, 0))


def day(n: float) -> datetime:
    """``n`` days after the fixed start of the test's calendar."""
    return T0 + timedelta(days=n)


def bought(membership, sku, *, at: datetime, quantity: int = 1) -> Order:
    """``membership`` buys ``quantity`` x ``sku`` and pays offline at ``at``."""
    buyer = membership.user
    order = order_create(
        actor=buyer, buyer=buyer, community=membership.community, lines=[LineInput(sku.pk, quantity)]
    ).order
    return payment_record_offline(
        actor=membership.community.owner, order_id=order.pk, reference=f"cash-{order.pk}", now=at
    )


MONEY = Decimal
