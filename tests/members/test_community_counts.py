"""Stored member counts: kept by the membership services, read by the lists without counting memberships."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from members.models import Community, Membership
from members.services.expiry import membership_expire_due
from members.services.memberships import (
    community_member_counts_refresh,
    membership_activate_paid,
    membership_approve,
    membership_ban,
    membership_join,
    membership_leave,
)
from shequn_backend.api.public import AnonBrowseThrottle
from shequn_backend.audit import SYSTEM
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def stored(community) -> int:
    return Community.objects.values_list("member_count", flat=True).get(pk=community.pk)


def counted(community) -> int:
    return Membership.objects.filter(community=community, status=Membership.Status.ACTIVE).count()


def test_joining_leaving_banning_and_approval_move_the_stored_count():
    free = CommunityFactory()
    approval = CommunityFactory(entry_type=Community.EntryType.APPROVAL)
    assert stored(free) == 1  # the owner
    joined = [membership_join(user=UserFactory(), community=free).membership for _ in range(3)]
    assert stored(free) == 4
    membership_leave(actor=SYSTEM, membership=joined[0])
    membership_ban(actor=SYSTEM, membership=joined[1])
    membership_ban(actor=SYSTEM, membership=joined[1])  # no move, no second decrement
    assert stored(free) == 2 == counted(free)

    waiting = membership_join(user=UserFactory(), community=approval).membership
    assert stored(approval) == 1  # pending approval is not a member yet
    membership_approve(actor=SYSTEM, membership_id=waiting.pk, community=approval)
    assert stored(approval) == 2 == counted(approval)


def test_the_expiry_job_takes_expired_members_out_of_each_communitys_count():
    first, second = CommunityFactory(), CommunityFactory()
    past = timezone.now() - timedelta(days=1)
    for community, n in ((first, 3), (second, 2)):
        for _ in range(n):
            MembershipFactory(community=community, expires_at=past)
    MembershipFactory(community=first, expires_at=timezone.now() + timedelta(days=9))
    assert (stored(first), stored(second)) == (5, 3)

    assert membership_expire_due(now=timezone.now(), batch_size=2) == 5
    assert (stored(first), stored(second)) == (2, 1) == (counted(first), counted(second))


def test_a_paid_entry_counts_once_activated_not_while_pending_payment():
    plan = EntryPlanFactory()
    result = membership_join(user=UserFactory(), community=plan.community, plan=plan)
    assert result.needs_payment and stored(plan.community) == 1

    membership_activate_paid(membership_id=result.membership.pk, plan=plan, paid_at=timezone.now())
    membership_activate_paid(membership_id=result.membership.pk, plan=plan, paid_at=timezone.now())  # renewal
    assert stored(plan.community) == 2 == counted(plan.community)


def test_refresh_repairs_a_count_written_around_the_services():
    community = CommunityFactory()
    Community.objects.filter(pk=community.pk).update(member_count=77)
    assert community_member_counts_refresh() == 1
    assert stored(community) == 1


def list_queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_the_public_list_and_detail_read_no_membership_and_cost_the_same_for_1_or_200_members(settings):
    settings.PUBLIC_CACHE_SECONDS = 0
    community = CommunityFactory(attributes=["跑步"])
    EntryPlanFactory(community=community)
    anonymous = APIClient()
    small_list = list_queries(anonymous, "/api/v1/communities/")
    small_detail = list_queries(anonymous, f"/api/v1/communities/{community.slug}/")
    Membership.objects.bulk_create(
        Membership(user=UserFactory(), community=community, status="active", referral_code=f"R{i:07d}")
        for i in range(200)
    )
    community_member_counts_refresh()

    with CaptureQueriesContext(connection) as ctx:
        body = anonymous.get("/api/v1/communities/").json()
    assert len(ctx.captured_queries) == small_list
    assert not [q for q in ctx.captured_queries if "members_membership" in q["sql"]]
    assert body["results"][0]["member_count"] == 201
    assert list_queries(anonymous, f"/api/v1/communities/{community.slug}/") == small_detail


def test_anonymous_callers_are_throttled_per_address_and_members_are_not(monkeypatch):
    monkeypatch.setattr(AnonBrowseThrottle, "rate", "3/min", raising=False)
    community = CommunityFactory()
    anonymous = APIClient()
    codes = [anonymous.get("/api/v1/communities/").status_code for _ in range(3)]
    refused = anonymous.get(f"/api/v1/communities/{community.slug}/")
    assert codes == [200, 200, 200] and refused.status_code == 429
    assert refused.json()["error"]["code"] == "throttled"
    member = client_for(UserFactory())
    assert [member.get("/api/v1/communities/").status_code for _ in range(5)] == [200] * 5


def test_a_burst_of_reads_is_answered_from_the_cache_for_the_cache_period(settings):
    settings.PUBLIC_CACHE_SECONDS = 60
    community = CommunityFactory(name="城市跑团")
    anonymous = APIClient()
    first = anonymous.get("/api/v1/communities/").json()
    Community.objects.filter(pk=community.pk).update(name="改名")
    with CaptureQueriesContext(connection) as ctx:
        again = anonymous.get("/api/v1/communities/")
    assert again.status_code == 200 and again.json() == first and not ctx.captured_queries
    assert anonymous.get("/api/v1/communities/?page_size=5").json()["results"][0]["name"] == "改名"


def test_the_community_bodies_built_directly_are_what_the_declared_fields_give():
    from rest_framework import serializers

    from members import selectors
    from members.api.serializers import CommunityDetailOutput, CommunityOutput

    plan = EntryPlanFactory(name="年度会员", community__attributes=["财经", "投资理财"])
    EntryPlanFactory(community=plan.community, name="月度", price="19.90", period_days=30, trial_days=7)
    CommunityFactory(attributes=[])
    communities = list(selectors.community_list_public())
    assert len(communities) == 2
    for community in communities:
        for output in (CommunityOutput, CommunityDetailOutput):
            assert output(community).data == serializers.Serializer.to_representation(
                output(community), community
            )
