"""Membership expiry: past ``expires_at`` a membership turns ``expired`` and loses member-only access."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Membership
from members.selectors import membership_get_active
from members.services.expiry import membership_expire_due
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_given_a_membership_past_its_expiry_when_the_job_runs_then_it_is_expired():
    now = timezone.now()
    lapsed = MembershipFactory(expires_at=now - timedelta(minutes=1))
    current = MembershipFactory(expires_at=now + timedelta(days=1))
    lifetime = MembershipFactory(expires_at=None)

    assert membership_expire_due(now=now) == 1

    statuses = dict(Membership.objects.values_list("pk", "status"))
    assert statuses[lapsed.pk] == "expired"
    assert statuses[current.pk] == statuses[lifetime.pk] == "active"
    assert membership_get_active(user=lapsed.user, community=lapsed.community) is None


def test_given_the_job_ran_when_it_runs_again_then_nothing_changes():
    now = timezone.now()
    MembershipFactory(expires_at=now - timedelta(days=1))
    membership_expire_due(now=now)

    assert membership_expire_due(now=now) == 0


def test_given_banned_or_left_memberships_past_expiry_then_their_status_is_kept():
    now = timezone.now()
    banned = MembershipFactory(status=Membership.Status.BANNED, expires_at=now - timedelta(days=1))

    membership_expire_due(now=now)

    assert Membership.objects.get(pk=banned.pk).status == "banned"


def test_given_more_than_a_chunk_when_the_job_runs_then_every_one_expires():
    now = timezone.now()
    community = CommunityFactory()
    for _ in range(7):
        MembershipFactory(community=community, expires_at=now - timedelta(hours=1))

    assert membership_expire_due(now=now, batch_size=3) == 7


def test_each_chunk_tells_trust_once_and_every_expired_membership_gets_its_exit(
    django_capture_on_commit_callbacks,
):
    from trust.models import CommunityAudience, MembershipExit

    now = timezone.now()
    first, second = CommunityFactory(), CommunityFactory()
    lapsed = [
        MembershipFactory(community=community, expires_at=now - timedelta(days=n + 1))
        for n, community in enumerate([first, first, first, second, second])
    ]
    returned = lapsed[0]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert membership_expire_due(now=now, batch_size=2) == 5
    assert len(callbacks) == 3  # one event per chunk of 2, not one per membership
    Membership.objects.filter(pk=returned.pk).update(status=Membership.Status.ACTIVE)  # renewed meanwhile
    for callback in callbacks:
        callback()

    exits = dict(MembershipExit.objects.values_list("membership_id", "exited_at"))
    assert set(exits) == {m.pk for m in lapsed[1:]}
    assert all(exits[m.pk] == m.expires_at for m in lapsed[1:])  # dated when the membership lapsed
    stale = CommunityAudience.objects.filter(stale_since__isnull=False).values_list("community_id", flat=True)
    assert set(stale) == {first.pk, second.pk}


class _Rollback(Exception):
    pass


@pytest.mark.parametrize("batch_size", [2, 2000])
def test_the_set_based_expiry_writes_exactly_what_the_orm_expiry_writes(batch_size):
    from django.db import transaction

    from members.models import Community
    from members.services import expiry
    from shequn_backend.models import AuditEntry

    now = timezone.now()
    communities = [CommunityFactory(), CommunityFactory()]
    for i in range(5):
        MembershipFactory(community=communities[i % 2], expires_at=now - timedelta(days=i + 1))
    MembershipFactory(community=communities[0], expires_at=now + timedelta(days=1))
    since = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    skip = {"id", "created_at"}

    def state(chunks):
        return {
            "chunks": chunks,
            "statuses": sorted(Membership.objects.values_list("pk", "status")),
            "counts": sorted(Community.objects.values_list("pk", "member_count")),
            "audit": sorted(
                sorted((k, str(v)) for k, v in row.items() if k not in skip)
                for row in AuditEntry.objects.filter(pk__gt=since).values()
            ),
        }

    results = {}
    for name, chunk in (("orm", expiry._expire_chunk_orm), ("sql", expiry._expire_chunk_postgresql)):
        try:
            with transaction.atomic():
                chunks, after = [], 0
                while found := chunk(now=now, after=after, batch_size=batch_size, actor=expiry.EXPIRY_JOB):
                    chunks.append(found)
                    after = found.membership_ids[-1]
                results[name] = state(chunks)
                raise _Rollback
        except _Rollback:
            pass

    assert results["orm"] == results["sql"]
    assert len(results["sql"]["audit"]) == 5
    assert sum(len(chunk.membership_ids) for chunk in results["sql"]["chunks"]) == 5


def test_each_chunk_is_one_statement_trust_adds_two_and_a_short_chunk_is_the_last(
    django_capture_on_commit_callbacks,
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    now = timezone.now()
    communities = [CommunityFactory(), CommunityFactory()]
    for i in range(7):
        MembershipFactory(community=communities[i % 2], expires_at=now - timedelta(hours=i + 1))

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        assert membership_expire_due(now=now, batch_size=3) == 7

    statements = [query["sql"] for query in queries.captured_queries]
    # Chunks of 3, 3 and 1, no empty chunk after; per chunk trust marks stale and records exits in one
    # statement each (the ORM paths would quote the table names).
    for marker in ("WITH due AS", "INSERT INTO trust_communityaudience", "INSERT INTO trust_membershipexit"):
        assert sum(marker in sql for sql in statements) == 3, marker
    assert Membership.objects.filter(status=Membership.Status.EXPIRED).count() == 7


def _bench_floor(job: str) -> str:
    """The bench's floor statement for ``job``, read without importing the bench (it sets env vars)."""
    import ast
    from pathlib import Path

    source = (Path(__file__).resolve().parents[2] / "bench" / "jobs_bench.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "FLOORS" for t in node.targets):
            return ast.literal_eval(node.value)[job]
    raise LookupError("FLOORS")


def test_the_benchs_floor_writes_the_rows_the_job_and_trust_write(
    django_capture_on_commit_callbacks, monkeypatch
):
    """Like for like (issue 19): the one-statement floor does the job's essential writes, no fewer."""
    from django.db import connection, transaction

    from members.models import Community
    from shequn_backend.models import AuditEntry
    from trust.models import CommunityAudience, MembershipExit

    monkeypatch.setattr("trust.services.enqueue_on_commit", lambda *args: None)  # re-scores: a worker's
    now = timezone.now()
    communities = [CommunityFactory(), CommunityFactory(), CommunityFactory()]
    for i in range(7):
        MembershipFactory(community=communities[i % 2], expires_at=now - timedelta(days=i + 1))
    MembershipFactory(community=communities[2], expires_at=now + timedelta(days=1))
    MembershipFactory(
        community=communities[2], status=Membership.Status.LEFT, expires_at=now - timedelta(days=1)
    )

    def state():
        audit = AuditEntry.objects.filter(action="membership.expired")
        return {
            "statuses": sorted(Membership.objects.values_list("pk", "status")),
            "counts": sorted(Community.objects.values_list("pk", "member_count")),
            "audit": sorted(
                audit.values_list(
                    "actor_id", "actor_label", "target_type", "target_id", "community_id", "changes"
                )
            ),
            "exits": sorted(
                MembershipExit.objects.values_list("membership_id", "community_id", "status", "exited_at")
            ),
            "stale": sorted(
                CommunityAudience.objects.filter(stale_since__isnull=False).values_list(
                    "community_id", flat=True
                )
            ),
        }

    results = {}
    for name in ("floor", "job"):
        try:
            with transaction.atomic():
                if name == "floor":
                    with connection.cursor() as cursor:
                        cursor.execute(_bench_floor("expire_memberships"), {"now": now})
                else:
                    with django_capture_on_commit_callbacks(execute=True):
                        membership_expire_due(now=now, batch_size=3)
                results[name] = state()
                raise _Rollback
        except _Rollback:
            pass

    assert results["floor"] == results["job"]
    assert len(results["job"]["exits"]) == len(results["job"]["audit"]) == 7
    assert results["job"]["stale"] == sorted(c.pk for c in communities[:2])
