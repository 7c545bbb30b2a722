"""The ledger paths that run under locks read through an index, on PostgreSQL with realistic statistics.

Each test builds a few thousand rows, runs ANALYZE, captures the SQL the real
service sends and asks PostgreSQL for the plan it would choose: no planner
switches are turned off.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.models import Commission, Order
from commerce.services.commissions import commission_settle_due
from members.models import Membership, PointsEntry, User
from tests.commerce.flows import refund_as_owner
from tests.commerce.test_commissions import buy, shop

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="query plans are PostgreSQL's"),
]

D = Decimal


def analyze(*tables: str) -> None:
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {table}")


def plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def statements(captured: CaptureQueriesContext, *, table: str, starts: str = "SELECT") -> list[str]:
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith(starts) and f'"{table}"' in q["sql"]
    ]


def members(community, count: int) -> list[Membership]:
    users = User.objects.bulk_create(
        [User(username=f"bulk-{community.pk}-{i}", password="!") for i in range(count)]
    )
    return Membership.objects.bulk_create(
        [Membership(user=user, community=community, referral_code=f"bulk{user.pk}") for user in users]
    )


def commissions_history(world, *, settled: int, due: int) -> None:
    """``settled`` commissions paid out long ago, then ``due`` pending ones whose window has closed."""
    community, beneficiary = world["community"], world["parent"]
    orders = Order.objects.bulk_create(
        [Order(community=community, buyer=world["buyer"].user, total=D("0")) for _ in range(settled + due)]
    )
    start = timezone.now() - timedelta(days=400)
    Commission.objects.bulk_create(
        [
            Commission(
                order=order,
                community=community,
                beneficiary=beneficiary,
                level=1,
                base_amount=D("100.00"),
                rate_percent=D("10"),
                amount=D("10.00"),
                settle_after=start + timedelta(minutes=i),
                status=Commission.Status.SETTLED if i < settled else Commission.Status.PENDING,
                settled_at=start + timedelta(minutes=i) if i < settled else None,
            )
            for i, order in enumerate(orders)
        ]
    )


def test_given_thousands_settled_when_the_job_settles_in_chunks_then_each_chunk_seeks_to_its_cursor(stripe):
    world = shop()
    commissions_history(world, settled=4000, due=1500)
    analyze("commerce_commission", "members_membership")
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        settled = commission_settle_due(now=timezone.now(), batch_size=500)
        transaction.set_rollback(True)  # explain each chunk against the rows as the job found them
    chunks = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("WITH due AS")]

    assert settled == 1500 and len(chunks) == 4  # three full chunks, then the empty one that ends the run
    for number, sql in enumerate(chunks):
        plan = plan_of(sql)
        index_cond = next(
            line for line in plan.splitlines() if "Index Cond" in line and "settle_after" in line
        )
        assert "commission_pending_due_id_idx" in plan and "Seq Scan on commerce_commission" not in plan, plan
        if number:  # chunk N starts in the index at its cursor (a row comparison, the keyset itself)
            assert "ROW(settle_after, id) >" in index_cond, plan


def test_given_a_large_points_ledger_when_a_refund_takes_points_back_then_each_lookup_uses_the_ledger_key(
    stripe,
):
    world = shop()
    others = members(world["community"], 1500)
    PointsEntry.objects.bulk_create(
        [
            PointsEntry(membership=member, delta=10, reason="bulk", idempotency_key=f"order:{-i}:award")
            for i, member in enumerate(others * 2)
        ]
    )
    order = buy(stripe, world)
    analyze("members_pointsentry", "members_membership")

    with CaptureQueriesContext(connection) as captured:
        response = refund_as_owner(world["community"].owner, order.pk, amount="40.00")
    assert response.status_code in (200, 201), response.content
    lookups = statements(captured, table="members_pointsentry")

    assert PointsEntry.objects.filter(membership=world["buyer"], delta__lt=0).exists()  # taken back
    assert len(lookups) >= 2  # the award, then what earlier refunds took back
    for sql in lookups:
        filtered_by = sql.split(" FROM ", 1)[1]  # joins and conditions, not the selected columns
        assert '"members_pointsentry"."membership_id"' in filtered_by, (
            sql
        )  # leads both of the ledger's indexes
        plan = plan_of(sql)
        assert "Seq Scan on members_pointsentry" not in plan, plan
        assert "Index Scan" in plan or "Index Only Scan" in plan, plan
