"""Community health figures on seeded histories: a dying group, a multi-centred community, the rules."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from members.models import Membership
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.trust.health_histories import (
    DYING_WEEKLY_ACTIVE,
    active_on,
    change_status,
    dying_community,
    join,
    leave,
    multi_centred_community,
    paid_order,
)
from trust.health import (
    GROUP_LIFESPAN_DAYS,
    LifecycleStage,
    churn_alarm,
    community_health,
    community_health_series,
    lifecycle_stage,
)
from trust.models import ActivityDay, MembershipExit

pytestmark = pytest.mark.django_db


@pytest.fixture
def now():
    return timezone.now()


# --- Seeded histories ---------------------------------------------------------------------------


def test_a_dying_group_sounds_the_churn_alarm_and_stays_at_initialisation(now):
    community = dying_community(now=now)

    health = community_health(community=community, now=now)

    assert health.churn.alarm is True
    assert list(health.churn.weekly_active) == DYING_WEEKLY_ACTIVE[:5][::-1]
    assert health.churn.declining_weeks >= 3
    assert health.churn.days_to_zero is not None and health.churn.days_to_zero <= GROUP_LIFESPAN_DAYS
    assert health.active_members == 28  # the owner and 27 of 30 (three left)
    assert (health.new_30d, health.churned_30d) == (0, 3)
    assert health.orders_30d == 0 and health.conversion_rate == 0.0
    assert health.lifecycle_stage == LifecycleStage.INITIALISING


def test_a_multi_centred_community_has_a_high_referral_share_and_grows_by_itself(now):
    community, kols = multi_centred_community(now=now)

    health = community_health(community=community, now=now)

    assert health.referral_share == 0.75  # 30 of the 40 who joined in 90 days came through KOLs
    assert health.referrers_90d == 10 and health.top_referrer_share == 0.1
    assert health.active_members == 49 and health.new_30d == 14 and health.churned_30d == 2
    assert health.orders_30d == 15 and health.revenue_30d == Decimal("1920.00")
    assert health.conversion_rate == round(15 / 49, 4)
    assert health.repurchase_rate == round(8 / 15, 4)
    assert health.dau_mau >= 0.2 and health.churn.alarm is False
    assert health.lifecycle_stage == LifecycleStage.SELF_GROWING
    top = health.top_kols[0]
    assert top.members_brought == 3 and top.membership_id in {kol.pk for kol in kols}
    assert sum(kol.sales_brought for kol in health.top_kols) <= Decimal("1920.00")


def test_the_series_follow_the_weeks_of_a_dying_group(now):
    community = dying_community(now=now)

    series = community_health_series(community=community, now=timezone.now())  # the owner joined after now

    assert series.weekly_active == DYING_WEEKLY_ACTIVE[::-1]
    assert len(series.week_ends) == len(series.members) == len(series.orders) == 12
    assert series.week_ends[-1] == timezone.localdate(now)
    assert series.members[-2] == 30  # everyone had joined and nobody had left yet
    assert series.members[-1] == 28  # the owner and 27 of 30 (three left this week)
    assert sum(series.orders) == 3 and sum(series.revenue) == Decimal("297.00")


def test_the_series_count_repurchase_as_buyers_who_bought_before(now):
    community = CommunityFactory()
    first, second = join(community, days_ago=80, now=now), join(community, days_ago=80, now=now)
    paid_order(community, first, days_ago=30, now=now)
    paid_order(community, first, days_ago=2, now=now)
    paid_order(community, second, days_ago=2, now=now)

    series = community_health_series(community=community, now=now)

    assert series.repurchase[-1] == 0.5 and series.orders[-1] == 2
    assert series.revenue[-1] == Decimal("198.00")


# --- The figures' definitions -------------------------------------------------------------------


def test_churn_counts_exits_and_lapsed_expiries_but_not_members_who_came_back(now):
    community = CommunityFactory()
    left = join(community, days_ago=100, now=now)
    leave(left, days_ago=10, now=now)
    join(community, days_ago=100, now=now, expires_at=now - timedelta(days=3))  # lapsed, not yet expired
    old = join(community, days_ago=200, now=now)
    leave(old, days_ago=45, now=now)
    returned = join(community, days_ago=100, now=now)
    leave(returned, days_ago=8, now=now)
    change_status(returned, Membership.Status.ACTIVE)

    health = community_health(community=community, now=now)

    assert health.churned_30d == 2
    assert not MembershipExit.objects.filter(membership=returned).exists()
    assert health.active_members == 2  # the owner and the member who came back


def test_referrals_by_the_owner_do_not_count_towards_the_referral_share(now):
    community = CommunityFactory()
    owner_membership = Membership.objects.get(community=community, user=community.owner)
    kol = join(community, days_ago=200, now=now, role=Membership.Role.KOL)
    for _ in range(3):
        join(community, days_ago=10, now=now, referred_by=owner_membership)
    join(community, days_ago=10, now=now, referred_by=kol)

    health = community_health(community=community, now=now)

    assert health.referral_share == 0.25 and health.referrers_90d == 1


def test_dau_mau_is_the_average_daily_share_of_the_months_active_members(now):
    community = CommunityFactory()
    daily, weekly = join(community, days_ago=60, now=now), join(community, days_ago=60, now=now)
    active_on(community, daily, list(range(30)), now=now)
    active_on(community, weekly, list(range(0, 30, 7)), now=now)

    health = community_health(community=community, now=now)

    assert health.mau == 2
    assert health.dau == round(35 / 30, 2)
    assert health.dau_mau == round((35 / 30) / 2, 4)


def test_a_paid_order_marks_its_buyer_active_on_the_day_it_was_paid(now):
    community = CommunityFactory()
    member = join(community, days_ago=20, now=now)

    paid_order(community, member, days_ago=3, now=now)

    day = timezone.localdate(now - timedelta(days=3))
    assert ActivityDay.objects.filter(community=community, user=member.user, day=day).count() == 1


def test_an_empty_community_has_zero_figures_and_no_alarm():
    community = CommunityFactory()

    health = community_health(community=community)

    assert health.active_members == 1 and health.mau == 0 and health.dau_mau == 0.0
    assert health.revenue_30d == Decimal("0.00") and health.repurchase_rate == 0.0
    assert health.churn.alarm is False and health.lifecycle_stage == LifecycleStage.INITIALISING


# --- The rules (pure) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weekly", "alarm"),
    [
        ([40, 30, 20, 12, 6], True),  # decays over five weeks
        ([30, 30, 20, 10, 0], True),  # already silent
        ([50, 52, 49, 48, 47], False),  # a slow decline: months from zero
        ([30, 20, 10, 15, 12], False),  # a dip that recovered
        ([0, 0, 0, 0, 0], False),  # nothing yet
        ([10, 12, 15, 20, 30], False),  # growing
    ],
)
def test_churn_alarm_sounds_only_for_a_decay_that_reaches_zero_within_36_days(weekly, alarm):
    assert churn_alarm(weekly_active=weekly).alarm is alarm


def test_churn_alarm_reports_how_long_the_fall_lasted_and_when_it_hits_zero():
    result = churn_alarm(weekly_active=[40, 30, 20, 12, 6])

    assert result.declining_weeks == 4 and 0 < result.days_to_zero <= 7


GROWN = {
    "active_members": 100,
    "conversion_rate": 0.3,
    "repurchase_rate": 0.4,
    "referral_share": 0.6,
    "referrers": 8,
    "top_referrer_share": 0.2,
    "new_30d": 20,
    "churned_30d": 5,
    "dau_mau": 0.3,
    "alarm": False,
}


@pytest.mark.parametrize(
    ("changes", "stage"),
    [
        ({}, LifecycleStage.SELF_GROWING),
        ({"churned_30d": 30}, LifecycleStage.DECENTRALISING),
        ({"referral_share": 0.4}, LifecycleStage.DECENTRALISING),
        ({"top_referrer_share": 0.8}, LifecycleStage.TRUST_ESTABLISHED),  # one KOL is the only centre
        ({"referrers": 2}, LifecycleStage.TRUST_ESTABLISHED),
        ({"alarm": True}, LifecycleStage.TRUST_ESTABLISHED),
        ({"repurchase_rate": 0.1}, LifecycleStage.INITIALISING),  # no repurchase: not community commerce
        ({"active_members": 12}, LifecycleStage.INITIALISING),
        ({"conversion_rate": 0.05}, LifecycleStage.INITIALISING),
    ],
)
def test_lifecycle_stage_needs_each_earlier_stage(changes, stage):
    assert lifecycle_stage(**{**GROWN, **changes}) == stage


# --- Activity recording -------------------------------------------------------------------------


def test_members_using_their_community_api_are_recorded_once_a_day(django_capture_on_commit_callbacks):
    community = CommunityFactory()
    member = MembershipFactory(community=community)
    client = client_for(member.user)

    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(f"/api/v1/communities/{community.slug}/products/").status_code == 200

    assert ActivityDay.objects.filter(community=community, user=member.user).count() == 1


def test_visitors_and_paths_outside_a_community_are_not_recorded(django_capture_on_commit_callbacks):
    community = CommunityFactory()
    visitor = MembershipFactory().user  # a member elsewhere
    client = client_for(visitor)

    with django_capture_on_commit_callbacks(execute=True):
        client.get(f"/api/v1/communities/{community.slug}/")
        client.get("/api/v1/communities/")
        client.get("/api/v1/me/")

    assert not ActivityDay.objects.filter(user=visitor).exists()


def test_a_member_already_recorded_today_schedules_no_write(django_capture_on_commit_callbacks):
    community = CommunityFactory()
    member = MembershipFactory(community=community)
    client = client_for(member.user)
    url = f"/api/v1/communities/{community.slug}/"
    with django_capture_on_commit_callbacks(execute=True) as first:
        client.get(url)

    with django_capture_on_commit_callbacks(execute=True) as again:
        client.get(url)

    assert len(first) == 1 and again == []
