"""Joining by each entry rule, with bad and expired codes; re-joining; referral rules."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Community, Membership
from members.services.memberships import membership_set_referrer
from shequn_backend.audit import SYSTEM
from tests.conftest import client_for
from tests.members.factories import (
    CommunityFactory,
    EntryPlanFactory,
    InviteCodeFactory,
    MembershipFactory,
    UserFactory,
)
from tests.members.test_auth_api import assert_error

pytestmark = pytest.mark.django_db


def join(user, community, **body):
    return client_for(user).post(f"/api/v1/communities/{community.slug}/join/", body, format="json")


def test_free_community_activates_at_once(user):
    community = CommunityFactory()
    response = join(user, community)
    assert response.status_code == 201
    body = response.json()
    assert body["payment"] is None
    assert body["membership"]["status"] == "active"
    assert body["membership"]["community"] == community.slug
    assert body["membership"]["role"] == "member"
    assert len(body["membership"]["referral_code"]) == 8


def test_joining_twice_is_409_already_member(user):
    community = CommunityFactory()
    join(user, community)
    assert_error(join(user, community), 409, "already_member")
    assert Membership.objects.filter(user=user, community=community).count() == 1


def test_approval_community_waits_for_an_owner(user):
    community = CommunityFactory(entry_type=Community.EntryType.APPROVAL)
    body = join(user, community).json()
    assert body["membership"]["status"] == "pending_approval"
    again = join(user, community)
    assert again.status_code == 201 and again.json()["membership"]["id"] == body["membership"]["id"]

    owner_client = client_for(community.owner)
    url = f"/api/v1/owner/communities/{community.slug}/members/{body['membership']['id']}/approve/"
    approved = owner_client.post(url)
    assert approved.status_code == 200
    assert approved.json()["status"] == "active"
    assert_error(owner_client.post(url), 409, "not_pending_approval")


class TestInvite:
    def test_valid_code_admits_and_is_used_up(self):
        invite = InviteCodeFactory(max_uses=1)
        first, second = UserFactory(), UserFactory()
        assert (
            join(first, invite.community, invite_code=invite.code).json()["membership"]["status"] == "active"
        )
        assert_error(join(second, invite.community, invite_code=invite.code), 400, "invalid_invite_code")
        invite.refresh_from_db()
        assert invite.uses == 1

    def test_multi_use_code_admits_several(self):
        invite = InviteCodeFactory(max_uses=3)
        for _ in range(3):
            assert join(UserFactory(), invite.community, invite_code=invite.code).status_code == 201
        assert_error(
            join(UserFactory(), invite.community, invite_code=invite.code), 400, "invalid_invite_code"
        )

    @pytest.mark.parametrize(
        "change",
        [{"expires_at": timezone.now() - timedelta(minutes=1)}, {"is_active": False}],
        ids=["expired", "deactivated"],
    )
    def test_expired_or_inactive_code_is_refused(self, user, change):
        invite = InviteCodeFactory(**change)
        assert_error(join(user, invite.community, invite_code=invite.code), 400, "invalid_invite_code")
        assert not Membership.objects.filter(user=user).exists()

    def test_missing_wrong_or_foreign_code_is_refused(self, user):
        invite = InviteCodeFactory()
        other = InviteCodeFactory()
        assert_error(join(user, invite.community), 400, "invalid_invite_code")
        assert_error(join(user, invite.community, invite_code="NOPE"), 400, "invalid_invite_code")
        assert_error(join(user, invite.community, invite_code=other.code), 400, "invalid_invite_code")


class TestPaid:
    def test_paid_community_needs_a_plan_of_its_own(self, user):
        plan = EntryPlanFactory()
        foreign_plan = EntryPlanFactory()
        assert_error(join(user, plan.community), 400, "plan_required")
        assert_error(join(user, plan.community, plan=foreign_plan.pk), 400, "plan_required")
        plan.is_active = False
        plan.save()
        assert_error(join(user, plan.community, plan=plan.pk), 400, "plan_required")
        assert not Membership.objects.filter(user=user).exists()

    def test_trial_plan_starts_active_for_the_trial_days(self, user):
        plan = EntryPlanFactory(trial_days=7)
        body = join(user, plan.community, plan=plan.pk).json()
        assert body["membership"]["status"] == "active"
        assert body["payment"] is None
        membership = Membership.objects.get(pk=body["membership"]["id"])
        assert timedelta(days=6, hours=23) < membership.expires_at - timezone.now() <= timedelta(days=7)


class TestRejoin:
    def test_banned_member_cannot_join_again(self, user):
        membership = MembershipFactory(user=user, status=Membership.Status.BANNED)
        assert_error(join(user, membership.community), 403, "banned")

    @pytest.mark.parametrize("status", [Membership.Status.LEFT, Membership.Status.EXPIRED])
    def test_left_or_expired_member_rejoins_by_the_rules(self, user, status):
        membership = MembershipFactory(
            user=user, status=status, community__entry_type=Community.EntryType.APPROVAL
        )
        body = join(user, membership.community).json()
        assert body["membership"]["id"] == membership.pk
        assert body["membership"]["status"] == "pending_approval"


class TestReferral:
    def test_joining_with_a_code_links_the_referrer(self, user):
        referrer = MembershipFactory()
        body = join(user, referrer.community, referral_code=referrer.referral_code.lower()).json()
        assert Membership.objects.get(pk=body["membership"]["id"]).referred_by == referrer

    def test_own_code_is_refused_with_a_clear_error(self, user):
        plan = EntryPlanFactory()
        mine = MembershipFactory(user=user, community=plan.community)  # active: a renewal
        error = assert_error(
            join(user, plan.community, plan=plan.pk, referral_code=mine.referral_code), 400, "self_referral"
        )
        assert "own referral code" in error["message"] or "自己" in error["message"]

    def test_self_referral_via_service_is_refused(self):
        membership = MembershipFactory()
        with pytest.raises(Exception) as excinfo:
            membership_set_referrer(actor=SYSTEM, membership=membership, referrer=membership)
        assert excinfo.value.code == "self_referral"

    def test_code_of_another_community_or_inactive_member_is_refused(self, user):
        community = CommunityFactory()
        elsewhere = MembershipFactory()
        banned = MembershipFactory(community=community, status=Membership.Status.BANNED)
        assert_error(
            join(user, community, referral_code=elsewhere.referral_code), 400, "invalid_referral_code"
        )
        assert_error(join(user, community, referral_code=banned.referral_code), 400, "invalid_referral_code")
        assert not Membership.objects.filter(user=user).exists()

    def test_cycles_are_refused(self):
        a = MembershipFactory()
        b = MembershipFactory(community=a.community, referred_by=a)
        c = MembershipFactory(community=a.community, referred_by=b)
        with pytest.raises(Exception) as excinfo:
            membership_set_referrer(actor=SYSTEM, membership=a, referrer=c)
        assert excinfo.value.code == "referral_cycle"
        a.refresh_from_db()
        assert a.referred_by is None

    def test_database_refuses_a_self_reference(self):
        from django.db import IntegrityError, transaction

        membership = MembershipFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            Membership.objects.filter(pk=membership.pk).update(referred_by=membership.pk)


def test_one_membership_per_user_and_community_is_enforced_by_the_database():
    from django.db import IntegrityError, transaction

    membership = MembershipFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        MembershipFactory(user=membership.user, community=membership.community)


def test_join_unknown_community_is_404(user):
    response = client_for(user).post("/api/v1/communities/no-such/join/", {}, format="json")
    assert_error(response, 404, "not_found")


def test_join_needs_login(api_client):
    community = CommunityFactory()
    assert_error(api_client.post(f"/api/v1/communities/{community.slug}/join/", {}), 401, "not_authenticated")
