"""Members' services are the write path: they check their rules, take an actor and leave an audit row."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from members.errors import InvalidSettings, StatusChangeRefused
from members.models import EntryPlan, Membership
from members.services.expiry import membership_expire_due
from members.services.memberships import membership_join, membership_set_status, membership_unban
from members.services.plans import entry_plan_create, entry_plan_update
from members.services.points import points_award
from shequn_backend.audit import SYSTEM
from shequn_backend.models import AuditEntry
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory
from tests.members.test_auth_api import assert_error

pytestmark = pytest.mark.django_db


class TestPlanCurrency:
    @pytest.mark.parametrize("currency", ["1$", "cny", "USD", ""])
    def test_the_service_refuses_currencies_the_project_cannot_charge(self, currency):
        community = CommunityFactory()

        with pytest.raises(InvalidSettings) as refused:
            entry_plan_create(actor=SYSTEM, community=community, name="年费", price="99", currency=currency)

        assert "currency" in refused.value.fields
        assert not EntryPlan.objects.exists()

    def test_a_supported_currency_added_by_setting_is_accepted(self, settings):
        settings.SUPPORTED_CURRENCIES = ["CNY", "HKD"]

        plan = entry_plan_create(
            actor=SYSTEM, community=CommunityFactory(), name="年费", price="99", currency="HKD"
        )

        assert plan.currency == "HKD"

    def test_the_database_refuses_a_code_that_is_not_iso_shaped(self):
        plan = EntryPlanFactory()

        with pytest.raises(IntegrityError), transaction.atomic():
            EntryPlan.objects.filter(pk=plan.pk).update(currency="1$")

    def test_the_owner_api_refuses_a_made_up_currency_on_create_and_update(self):
        owner = UserFactory()
        client = client_for(owner)
        plan = {"name": "年费", "price": "99.00", "period_days": 365, "currency": "1$"}
        body = {"slug": "paid-club", "name": "付费社", "entry_type": "paid", "plans": [plan]}

        created = client.post("/api/v1/owner/communities/", body, format="json")
        ok = client.post(
            "/api/v1/owner/communities/", body | {"plans": [plan | {"currency": "CNY"}]}, format="json"
        )
        patched = client.patch("/api/v1/owner/communities/paid-club/", {"plans": [plan]}, format="json")

        assert "currency" in assert_error(created, 400, "validation_error")["fields"]
        assert ok.status_code == 201
        assert "currency" in assert_error(patched, 400, "validation_error")["fields"]
        assert list(EntryPlan.objects.values_list("currency", flat=True)) == ["CNY"]

    def test_patching_plans_without_a_currency_keeps_the_plans_currency(self, settings):
        settings.SUPPORTED_CURRENCIES = ["CNY", "HKD"]
        plan = EntryPlanFactory(currency="HKD")
        community = plan.community

        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {"plans": [{"name": plan.name, "price": "99.00"}]},
            format="json",
        )

        assert response.status_code == 200, response.content
        plan.refresh_from_db()
        assert (plan.currency, plan.price) == ("HKD", Decimal("99.00"))

    def test_a_price_change_is_audited_with_its_actor(self):
        plan = EntryPlanFactory()
        owner = plan.community.owner

        entry_plan_update(actor=owner, plan=plan, price="299.00")

        entry = AuditEntry.objects.get(action="entry_plan.updated")
        assert entry.actor == owner and entry.changes == {"price": ["199.00", "299.00"]}
        assert entry.community_id == plan.community_id


class TestOwnerApiIsAudited:
    def test_create_and_patch_record_the_owner_and_the_commission_rates(self):
        owner = UserFactory()
        client = client_for(owner)
        client.post("/api/v1/owner/communities/", {"slug": "club", "name": "社"}, format="json")

        client.patch(
            "/api/v1/owner/communities/club/", {"referral": {"level1_percent": "12.50"}}, format="json"
        )

        actions = list(AuditEntry.objects.order_by("pk").values_list("action", "actor_id"))
        assert ("community.created", owner.pk) in actions
        updated = AuditEntry.objects.get(action="community.updated")
        assert updated.actor == owner
        assert updated.changes == {"referral_level1_percent": ["0.00", "12.50"]}


class TestMembershipTrail:
    def test_a_join_is_recorded_with_the_joiner_as_actor(self):
        community = CommunityFactory()
        user = UserFactory()

        membership = membership_join(user=user, community=community).membership

        entry = AuditEntry.objects.get(action="membership.joined", target_id=str(membership.pk))
        assert entry.actor == user and entry.changes["status"] == [None, "active"]

    def test_unbanning_lets_the_person_join_again_but_does_not_readmit_them(self):
        member = MembershipFactory(status=Membership.Status.BANNED)

        membership_unban(actor=member.community.owner, membership=member)

        member.refresh_from_db()
        assert member.status == Membership.Status.LEFT
        assert AuditEntry.objects.get(action="membership.unbanned").changes == {"status": ["banned", "left"]}

    @pytest.mark.parametrize("status", ["expired", "left", "pending_payment"])
    def test_nobody_makes_a_member_active_by_hand_except_by_approval(self, status):
        member = MembershipFactory(status=status)

        with pytest.raises(StatusChangeRefused):
            membership_set_status(actor=SYSTEM, membership=member, status=Membership.Status.ACTIVE)

        member.refresh_from_db()
        assert member.status == status
        assert not AuditEntry.objects.filter(
            target_type="members.membership", target_id=str(member.pk)
        ).exists()

    def test_expiry_records_each_membership_under_the_job(self):
        member = MembershipFactory(expires_at=timezone.now() - timedelta(minutes=1))

        assert membership_expire_due(now=timezone.now()) == 1

        entry = AuditEntry.objects.get(action="membership.expired")
        assert entry.actor_label == "job:expire_memberships" and entry.target_id == str(member.pk)
        assert entry.changes == {"status": ["active", "expired"]}

    def test_points_name_their_actor_and_the_balance_before_and_after(self):
        member = MembershipFactory()

        points_award(membership_id=member.pk, delta=30, reason="购物", idempotency_key="order:1")

        entry = AuditEntry.objects.get(action="points.awarded")
        assert entry.actor_label == SYSTEM and entry.changes == {"points": [0, 30]}
