"""The append-only points ledger and the tier that follows the balance."""

import threading

import pytest
from django.db import connection
from django.db.models import Sum

from members.models import PointsEntry
from members.services.points import points_award
from tests.members.factories import MembershipFactory, TierFactory


@pytest.fixture
def tiered(db):
    membership = MembershipFactory()
    community = membership.community
    tiers = [
        TierFactory(community=community, level=1, points_threshold=0),
        TierFactory(community=community, level=2, points_threshold=100),
        TierFactory(community=community, level=3, points_threshold=500),
    ]
    return membership, tiers


def test_tier_follows_the_balance_up_and_down(tiered):
    membership, (t1, t2, t3) = tiered
    points_award(membership_id=membership.pk, delta=120, reason="order", idempotency_key="a")
    membership.refresh_from_db()
    assert (membership.points, membership.tier) == (120, t2)
    points_award(membership_id=membership.pk, delta=400, reason="order", idempotency_key="b")
    membership.refresh_from_db()
    assert membership.tier == t3
    points_award(membership_id=membership.pk, delta=-450, reason="refund", idempotency_key="c")
    membership.refresh_from_db()
    assert (membership.points, membership.tier) == (70, t1)


def test_same_idempotency_key_awards_once(tiered):
    membership, _ = tiered
    first = points_award(membership_id=membership.pk, delta=50, reason="x", idempotency_key="order:1")
    second = points_award(membership_id=membership.pk, delta=50, reason="x", idempotency_key="order:1")
    membership.refresh_from_db()
    assert first.pk == second.pk
    assert membership.points == 50
    assert PointsEntry.objects.filter(membership=membership).count() == 1


def test_ledger_rows_cannot_be_changed_or_deleted(tiered):
    membership, _ = tiered
    entry = points_award(membership_id=membership.pk, delta=5, reason="x", idempotency_key="k")
    entry.delta = 500
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_awards_never_lose_or_double_a_point():
    membership = MembershipFactory()
    TierFactory(community=membership.community, level=1, points_threshold=0)
    top = TierFactory(community=membership.community, level=2, points_threshold=100)
    workers, barrier, errors = 20, threading.Barrier(20), []

    def award(i: int):
        try:
            barrier.wait()
            # every key twice: half the calls are retries that must change nothing
            points_award(
                membership_id=membership.pk, delta=10 + i // 2, reason="burst", idempotency_key=f"k{i // 2}"
            )
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=award, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    membership.refresh_from_db()
    ledger = PointsEntry.objects.filter(membership=membership)
    assert ledger.count() == workers // 2
    assert membership.points == ledger.aggregate(total=Sum("delta"))["total"] == sum(range(10, 20))
    assert membership.tier == top


def test_my_points_lists_only_my_entries(tiered):
    from tests.conftest import client_for

    membership, _ = tiered
    other = MembershipFactory()
    points_award(membership_id=membership.pk, delta=30, reason="签到", idempotency_key="a")
    points_award(membership_id=other.pk, delta=99, reason="other", idempotency_key="a")
    body = client_for(membership.user).get("/api/v1/me/points/").json()
    assert body["count"] == 1
    assert body["results"][0] == {
        "community": membership.community.slug,
        "delta": 30,
        "reason": "签到",
        "created_at": body["results"][0]["created_at"],
    }
