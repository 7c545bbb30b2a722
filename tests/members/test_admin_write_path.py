"""The members admin writes through the services: their rules hold here, every change is audited,
and owners, finance staff and other staff may do only what their role allows."""

from decimal import Decimal

import pytest
from django.urls import reverse

from commerce.reports.roles import finance_user_grant
from members.models import Community, EntryPlan, InviteCode, Membership
from members.services.points import points_award
from shequn_backend.models import AuditEntry
from tests.members.factories import (
    CommunityFactory,
    EntryPlanFactory,
    InviteCodeFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def community_form(community: Community, **overrides) -> dict:
    """The community change form as the admin page would post it, with its plan and tier rows.

    Read-only fields (slug, a membership's user and community, an invite's code) are posted too,
    as a crafted request would: the admin must ignore them.
    """
    data = {
        "name": community.name,
        "slug": community.slug,
        "entry_type": community.entry_type,
        "attributes_text": ", ".join(community.attribute_tags),
        "mission": community.mission,
        "description": community.description,
        "rules": community.rules,
        "referral_level1_percent": str(community.referral_level1_percent),
        "referral_level2_percent": str(community.referral_level2_percent),
        "return_window_days": str(community.return_window_days),
        "points_per_yuan": str(community.points_per_yuan),
    }
    plans = list(community.plans.order_by("pk"))
    data |= {"plans-TOTAL_FORMS": str(len(plans)), "plans-INITIAL_FORMS": str(len(plans))}
    for i, plan in enumerate(plans):
        data |= {
            f"plans-{i}-id": str(plan.pk),
            f"plans-{i}-community": str(community.pk),
            f"plans-{i}-name": plan.name,
            f"plans-{i}-price": str(plan.price),
            f"plans-{i}-currency": plan.currency,
            f"plans-{i}-period_days": "" if plan.period_days is None else str(plan.period_days),
            f"plans-{i}-trial_days": str(plan.trial_days),
            f"plans-{i}-refund_window_days": str(plan.refund_window_days),
        }
        if plan.is_active:
            data[f"plans-{i}-is_active"] = "on"
    tiers = list(community.tiers.order_by("pk"))
    data |= {"tiers-TOTAL_FORMS": str(len(tiers)), "tiers-INITIAL_FORMS": str(len(tiers))}
    for i, tier in enumerate(tiers):
        data |= {
            f"tiers-{i}-id": str(tier.pk),
            f"tiers-{i}-community": str(community.pk),
            f"tiers-{i}-level": str(tier.level),
            f"tiers-{i}-name": tier.name,
            f"tiers-{i}-points_threshold": str(tier.points_threshold),
            f"tiers-{i}-discount_percent": str(tier.discount_percent),
        }
    return data | overrides


def new_community_form(**overrides) -> dict:
    return {
        "name": "摄影社",
        "slug": "sheying",
        "entry_type": "free",
        "attributes_text": "摄影",
        "mission": "",
        "description": "",
        "rules": "",
        "referral_level1_percent": "0",
        "referral_level2_percent": "0",
        "return_window_days": "7",
        "points_per_yuan": "1",
        "plans-TOTAL_FORMS": "0",
        "plans-INITIAL_FORMS": "0",
        "tiers-TOTAL_FORMS": "0",
        "tiers-INITIAL_FORMS": "0",
    } | overrides


def membership_form(membership: Membership, **overrides) -> dict:
    return {
        "user": str(membership.user_id),
        "community": str(membership.community_id),
        "role": membership.role,
        "status": membership.status,
        "tier": str(membership.tier_id or ""),
        "referred_by": str(membership.referred_by_id or ""),
        "expires_at_0": "",
        "expires_at_1": "",
    } | overrides


def change_url(model: str, pk: int) -> str:
    return reverse(f"admin:members_{model}_change", args=[pk])


@pytest.fixture
def club():
    return CommunityFactory(name="甲社群")


@pytest.fixture
def other():
    return CommunityFactory(name="乙社群机密名")


@pytest.fixture
def owner(client, club):
    client.force_login(club.owner)
    return client


class TestWhoMayFoundACommunity:
    def test_finance_staff_may_not_create_a_community(self, client):
        clerk = finance_user_grant(user=UserFactory())
        client.force_login(clerk)

        page = client.get(reverse("admin:members_community_add"))
        post = client.post(reverse("admin:members_community_add"), new_community_form())

        assert page.status_code == 403 and post.status_code == 403
        assert not Community.objects.filter(slug="sheying").exists()

    def test_staff_managing_no_community_may_not_create_one(self, client):
        client.force_login(UserFactory(is_staff=True))

        assert client.post(reverse("admin:members_community_add"), new_community_form()).status_code == 403
        assert not Community.objects.exists()

    def test_an_owner_founds_another_community_and_the_trail_names_them(self, owner, club):
        response = owner.post(reverse("admin:members_community_add"), new_community_form())

        assert response.status_code == 302, response.content.decode()[:3000]
        created = Community.objects.get(slug="sheying")
        assert created.owner == club.owner
        entry = AuditEntry.objects.get(action="community.created", community=created)
        assert entry.actor == club.owner


class TestCommunityPage:
    def test_a_plan_priced_in_a_made_up_currency_is_refused_and_nothing_is_saved(self, owner, club):
        plan = EntryPlanFactory(community=club)
        data = community_form(club, name="改了名字", **{"plans-0-currency": "1$"})

        response = owner.post(change_url("community", club.pk), data)

        assert response.status_code == 200  # the form again, with the error
        assert "CNY" in response.content.decode()  # the message names the supported codes
        plan.refresh_from_db()
        club.refresh_from_db()
        assert plan.currency == "CNY" and club.name == "甲社群"

    def test_a_new_plan_in_an_unsupported_currency_is_refused(self, owner, club):
        data = community_form(club)
        data |= {
            "plans-TOTAL_FORMS": "1",
            "plans-0-name": "年费",
            "plans-0-price": "99",
            "plans-0-currency": "usd",
            "plans-0-period_days": "365",
            "plans-0-trial_days": "0",
            "plans-0-refund_window_days": "3",
            "plans-0-is_active": "on",
        }

        assert owner.post(change_url("community", club.pk), data).status_code == 200
        assert not EntryPlan.objects.filter(community=club).exists()

    def test_a_price_and_commission_change_are_audited_with_before_and_after(self, owner, club):
        plan = EntryPlanFactory(community=club, price=Decimal("199.00"))
        data = community_form(club, referral_level1_percent="10", **{"plans-0-price": "299.00"})

        response = owner.post(change_url("community", club.pk), data)

        assert response.status_code == 302, response.content.decode()[:3000]
        settings_entry = AuditEntry.objects.get(action="community.updated", community=club)
        assert settings_entry.actor == club.owner
        assert settings_entry.changes == {"referral_level1_percent": ["0.00", "10.00"]}
        plan_entry = AuditEntry.objects.get(action="entry_plan.updated", target_id=str(plan.pk))
        assert plan_entry.changes == {"price": ["199.00", "299.00"]} and plan_entry.actor == club.owner

    def test_the_return_address_is_saved_and_audited(self, owner, club):
        address = "杭州市西湖区文三路 1 号 售后组 13800138000"
        data = community_form(club, return_address=address)

        response = owner.post(change_url("community", club.pk), data)

        assert response.status_code == 302, response.content.decode()[:3000]
        club.refresh_from_db()
        assert club.return_address == address
        entry = AuditEntry.objects.get(action="community.updated", community=club)
        assert entry.changes == {"return_address": ["", address]} and entry.actor == club.owner

    def test_raising_a_tier_threshold_moves_members_down_and_records_it(self, owner, club):
        TierFactory(community=club, level=1, points_threshold=0)
        gold = TierFactory(community=club, level=2, points_threshold=100)
        member = MembershipFactory(community=club)
        points_award(membership_id=member.pk, delta=150, reason="test", idempotency_key="k")
        member.refresh_from_db()
        assert member.tier == gold
        data = community_form(club, **{"tiers-1-points_threshold": "200"})

        assert owner.post(change_url("community", club.pk), data).status_code == 302
        member.refresh_from_db()
        assert member.tier.level == 1
        moved = AuditEntry.objects.filter(action="membership.tier_changed", target_id=str(member.pk))
        assert moved.filter(actor=club.owner).exists()


class TestMembershipPage:
    def test_owners_cannot_add_memberships_nor_look_up_accounts(self, owner, club):
        outsider = UserFactory(nickname="从未加入的人")
        url = reverse("admin:members_membership_add")

        page = owner.get(url, {"user": outsider.pk})
        post = owner.post(
            url, {"user": outsider.pk, "community": club.pk, "role": "operator", "status": "active"}
        )

        assert page.status_code == 403 and post.status_code == 403
        assert "从未加入的人" not in page.content.decode()
        assert not Membership.objects.filter(user=outsider).exists()

    def test_the_user_of_a_membership_is_shown_not_chosen(self, owner, club):
        member = MembershipFactory(community=club)
        outsider = UserFactory(nickname="别人的账号")

        page = owner.get(change_url("membership", member.pk)).content.decode()
        owner.post(change_url("membership", member.pk), membership_form(member, user=outsider.pk))

        assert 'name="user"' not in page and "related-lookup" not in page
        member.refresh_from_db()
        assert member.user != outsider

    def test_a_referral_cycle_is_refused_on_the_form(self, owner, club):
        a = MembershipFactory(community=club)
        b = MembershipFactory(community=club, referred_by=a)
        c = MembershipFactory(community=club, referred_by=b)

        response = owner.post(change_url("membership", a.pk), membership_form(a, referred_by=str(c.pk)))

        assert response.status_code == 200
        assert "errorlist" in response.content.decode()
        a.refresh_from_db()
        assert a.referred_by is None

    def test_role_and_ban_are_saved_through_services_and_audited(self, owner, club):
        member = MembershipFactory(community=club)

        response = owner.post(
            change_url("membership", member.pk), membership_form(member, role="operator", status="banned")
        )

        assert response.status_code == 302, response.content.decode()[:3000]
        member.refresh_from_db()
        assert (member.role, member.status) == ("operator", "banned")
        role = AuditEntry.objects.get(action="membership.role_changed", target_id=str(member.pk))
        ban = AuditEntry.objects.get(action="membership.banned", target_id=str(member.pk))
        assert role.actor == ban.actor == club.owner
        assert role.changes == {"role": ["member", "operator"]}
        assert ban.changes == {"status": ["active", "banned"]}

    def test_the_owner_role_can_be_neither_given_nor_banned(self, owner, club):
        member = MembershipFactory(community=club)
        own = Membership.objects.get(community=club, user=club.owner)

        give = owner.post(change_url("membership", member.pk), membership_form(member, role="owner"))
        ban = owner.post(change_url("membership", own.pk), membership_form(own, status="banned"))

        assert give.status_code == ban.status_code == 200
        member.refresh_from_db()
        own.refresh_from_db()
        assert member.role == "member" and own.status == "active"

    def test_an_expired_member_is_not_made_active_by_hand(self, owner, club):
        member = MembershipFactory(community=club, status=Membership.Status.EXPIRED)

        response = owner.post(change_url("membership", member.pk), membership_form(member, status="active"))

        assert response.status_code == 200
        member.refresh_from_db()
        assert member.status == "expired"

    def test_approving_records_the_owner(self, owner, club):
        member = MembershipFactory(community=club, status=Membership.Status.PENDING_APPROVAL)

        owner.post(
            reverse("admin:members_membership_changelist"),
            {"action": "approve", "_selected_action": [member.pk]},
        )

        entry = AuditEntry.objects.get(action="membership.approved", target_id=str(member.pk))
        assert entry.actor == club.owner and entry.changes["status"] == ["pending_approval", "active"]


class TestInviteCodes:
    def test_an_invite_created_in_the_admin_is_audited(self, owner, club):
        data = {
            "community": club.pk,
            "code": "JOINUS",
            "max_uses": "5",
            "expires_at_0": "",
            "expires_at_1": "",
        }
        data["is_active"] = "on"

        response = owner.post(reverse("admin:members_invitecode_add"), data)

        assert response.status_code == 302, response.content.decode()[:3000]
        invite = InviteCode.objects.get(code="JOINUS")
        assert (
            AuditEntry.objects.get(action="invite_code.created", target_id=str(invite.pk)).actor == club.owner
        )

    def test_max_uses_below_the_uses_so_far_is_refused(self, owner, club):
        invite = InviteCodeFactory(community=club, max_uses=5)
        InviteCode.objects.filter(pk=invite.pk).update(uses=3)
        data = {"community": club.pk, "code": invite.code, "max_uses": "2", "is_active": "on"}
        data |= {"expires_at_0": "", "expires_at_1": ""}

        response = owner.post(change_url("invitecode", invite.pk), data)

        assert response.status_code == 200
        invite.refresh_from_db()
        assert invite.max_uses == 5


class TestListFilters:
    @pytest.mark.parametrize("model", ["membership", "invitecode", "pointsentry"])
    def test_filters_offer_no_other_communitys_name(self, owner, club, other, model):
        member = MembershipFactory(community=other)
        points_award(membership_id=member.pk, delta=10, reason="x", idempotency_key="x")
        InviteCodeFactory(community=other)

        page = owner.get(reverse(f"admin:members_{model}_changelist")).content.decode()

        assert "乙社群机密名" not in page

    def test_the_tier_filter_offers_only_own_tiers(self, owner, club, other):
        TierFactory(community=club, name="甲金卡")
        TierFactory(community=other, name="乙黑卡")

        page = owner.get(reverse("admin:members_membership_changelist")).content.decode()

        assert "甲金卡" in page and "乙黑卡" not in page

    def test_a_superuser_filters_by_any_community(self, client, club, other):
        MembershipFactory(community=other)
        client.force_login(UserFactory(is_staff=True, is_superuser=True))

        page = client.get(reverse("admin:members_membership_changelist")).content.decode()

        assert "乙社群机密名" in page and "甲社群" in page

    def test_a_tier_filter_value_of_another_community_shows_nothing(self, owner, club, other):
        secret = TierFactory(community=other, name="乙社群机密等级")  # not a string a token could hold
        MembershipFactory(community=other, tier=secret)

        page = owner.get(reverse("admin:members_membership_changelist"), {"tier": secret.pk})

        assert page.status_code == 200
        assert secret.name not in page.content.decode()
