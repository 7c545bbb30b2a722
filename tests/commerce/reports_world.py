"""A small but complete ledger for the finance-report tests, built through the real flows.

Community A (paid entry, 10%/5% referral chain): an order of two lines paid,
an order paid then partly refunded (confirmed by Stripe), an unpaid order,
an entry fee paid now (inside its 3-day refund window) and one paid 10 days
ago (past it, drawable); commissions settled into the ledger. Community B:
one paid order.
"""

import csv
import io
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from commerce.models import Order
from commerce.services.commissions import commission_settle_due
from members.models import Community
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

D = Decimal


def join_paid(stripe, user, community, plan) -> Order:
    response = client_for(user).post(
        f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk}, format="json"
    )
    assert response.status_code == 201, response.content
    return pay(stripe, body(response)["payment"]["order_id"])


def build_ledger(stripe) -> dict:
    a = CommunityFactory(
        name="甲社群",
        slug="jia",
        entry_type=Community.EntryType.PAID,
        referral_level1_percent=D("10"),
        referral_level2_percent=D("5"),
    )
    b = CommunityFactory(name="乙社群", slug="yi")
    plan = EntryPlanFactory(community=a, price=D("199.00"), refund_window_days=3)
    book = SkuFactory(product=ProductFactory(community=a), price=D("100.00"), stock=50)
    pen = SkuFactory(product=ProductFactory(community=a, title="钢笔"), price=D("33.33"), stock=50)
    grand = MembershipFactory(community=a)
    parent = MembershipFactory(community=a, referred_by=grand)
    buyer = MembershipFactory(community=a, referred_by=parent)

    two_lines = pay(stripe, body(place_order(buyer.user, a, [(book, 2), (pen, 1)]))["id"])
    refunded = pay(stripe, body(place_order(buyer.user, a, [(book, 1)]))["id"])
    assert refund_as_owner(a.owner, refunded.pk, amount="20.00").status_code == 201
    unpaid = Order.objects.get(pk=body(place_order(buyer.user, a, [(pen, 1)]))["id"])
    entry_new = join_paid(stripe, UserFactory(), a, plan)
    entry_old = join_paid(stripe, UserFactory(), a, plan)
    old = timezone.now() - timedelta(days=10)
    Order.objects.filter(pk=entry_old.pk).update(paid_at=old, created_at=old)
    entry_old.payments.update(succeeded_at=old)
    commission_settle_due(now=timezone.now() + timedelta(days=30))

    b_sku = SkuFactory(product=ProductFactory(community=b), price=D("99.00"), stock=5)
    b_order = pay(stripe, body(place_order(MembershipFactory(community=b).user, b, [(b_sku, 1)]))["id"])
    return {
        "a": a,
        "b": b,
        "plan": plan,
        "two_lines": two_lines,
        "refunded": refunded,
        "unpaid": unpaid,
        "entry_new": entry_new,
        "entry_old": entry_old,
        "b_order": b_order,
        "buyer": buyer,
    }


def read_csv(data: bytes) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(header, rows, totals rows) of an exported CSV; checks the UTF-8 BOM on the way."""
    assert data.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    header, body_rows = lines[0], lines[1:]
    split = next(i for i, row in enumerate(body_rows) if row[0].startswith(("Total", "合计")))
    return header, body_rows[:split], body_rows[split:]


def column(header: list[str], rows: list[list[str]], label: str) -> list[str]:
    index = header.index(label)
    return [row[index] for row in rows]
