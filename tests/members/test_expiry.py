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
