"""Commission rules a regulator accepts: both levels together under a ceiling, every rate change audited."""

from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission
from django.db import IntegrityError, transaction
from django.urls import reverse

from commerce.payments.checks import withdrawal_settings_in_range
from members.errors import CommissionRateCeilingExceeded
from members.models import Community
from members.services.communities import community_create, community_update
from shequn_backend.models import AuditEntry
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, UserFactory

pytestmark = pytest.mark.django_db
RATES = "community.commission_rates_changed"


@pytest.fixture(autouse=True)
def _ceiling(settings):
    settings.COMMISSION_RATE_CEILING = D("30")


def patch(community, **referral):
    return client_for(community.owner).patch(
        f"/api/v1/owner/communities/{community.slug}/", {"referral": referral}, format="json"
    )


def rates(community) -> tuple[D, D]:
    community.refresh_from_db()
    return community.referral_level1_percent, community.referral_level2_percent


def test_rates_within_the_ceiling_are_taken_and_audited_with_before_and_after():
    community = CommunityFactory(referral_level1_percent=D("10"), referral_level2_percent=D("5"))

    response = patch(community, level1_percent="20", level2_percent="10")

    assert response.status_code == 200 and response.json()["referral"]["level1_percent"] == "20.00"
    entry = AuditEntry.objects.get(action=RATES, target_id=str(community.pk))
    assert entry.changes == {
        "referral_level1_percent": ["10.00", "20.00"],
        "referral_level2_percent": ["5.00", "10.00"],
    }
    assert entry.actor == community.owner and entry.community_id == community.pk


def test_rates_above_the_ceiling_together_are_refused_and_nothing_changes():
    community = CommunityFactory(referral_level1_percent=D("10"), referral_level2_percent=D("5"))

    response = patch(community, level1_percent="25", level2_percent="10")

    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "commission_rate_ceiling"
    assert set(error["fields"]) == {"referral.level1_percent", "referral.level2_percent"}
    assert "30" in error["message"]
    assert rates(community) == (D("10"), D("5")) and not AuditEntry.objects.filter(action=RATES).exists()


def test_one_level_changed_alone_counts_the_others_current_rate():
    community = CommunityFactory(referral_level1_percent=D("25"), referral_level2_percent=D("0"))

    assert patch(community, level2_percent="6").status_code == 400
    assert patch(community, level2_percent="5").status_code == 200
    assert rates(community) == (D("25"), D("5"))


def test_a_new_community_above_the_ceiling_is_refused():
    founder = UserFactory()

    with pytest.raises(CommissionRateCeilingExceeded):
        community_create(
            actor=founder,
            owner=founder,
            slug="fenyong",
            name="分佣社",
            referral={"level1_percent": D("20"), "level2_percent": D("20")},
        )

    assert not Community.objects.filter(slug="fenyong").exists()


def test_the_service_refuses_whoever_calls_it():
    community = CommunityFactory()

    with pytest.raises(CommissionRateCeilingExceeded) as refused:
        community_update(
            actor=community.owner,
            community=community,
            referral_level1_percent=D("20"),
            referral_level2_percent=D("20"),
        )

    assert refused.value.code == "commission_rate_ceiling" and refused.value.http_status == 400
    assert rates(community) == (D("0"), D("0"))


def test_a_ceiling_set_above_the_hard_cap_still_stops_at_fifty_percent(settings):
    settings.COMMISSION_RATE_CEILING = D("80")
    community = CommunityFactory()

    assert patch(community, level1_percent="40", level2_percent="10").status_code == 200
    assert patch(community, level1_percent="40", level2_percent="10.01").status_code == 400


def test_the_database_refuses_rates_above_the_hard_cap():
    community = CommunityFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Community.objects.filter(pk=community.pk).update(
            referral_level1_percent=D("30"), referral_level2_percent=D("20.01")
        )


def admin_form(community, **changes) -> dict:
    return {
        "name": community.name,
        "slug": community.slug,
        "entry_type": community.entry_type,
        "attributes_text": "",
        "mission": "",
        "description": "",
        "rules": "",
        "referral_level1_percent": str(community.referral_level1_percent),
        "referral_level2_percent": str(community.referral_level2_percent),
        "return_window_days": "7",
        "points_per_yuan": "1",
        "payment_provider": "",
        "wechatpay_sub_mchid": "",
        "plans-TOTAL_FORMS": "0",
        "plans-INITIAL_FORMS": "0",
        "tiers-TOTAL_FORMS": "0",
        "tiers-INITIAL_FORMS": "0",
        **changes,
    }


def test_the_admin_shows_the_ceiling_next_to_both_rates_in_chinese(client):
    founder = UserFactory(is_staff=True)
    founder.user_permissions.add(Permission.objects.get(codename="change_community"))
    community = CommunityFactory(owner=founder, with_owner_membership=True)
    client.force_login(founder)
    url = reverse("admin:members_community_change", args=[community.pk])

    refused = client.post(
        url, admin_form(community, referral_level1_percent="25", referral_level2_percent="8")
    )
    taken = client.post(url, admin_form(community, referral_level1_percent="22", referral_level2_percent="8"))

    page = refused.content.decode()
    assert refused.status_code == 200 and page.count("errorlist") >= 2
    assert "合计" in page or "一级和二级" in page
    assert taken.status_code == 302, taken.content.decode()[:1500]
    assert rates(community) == (D("22"), D("8"))
    assert AuditEntry.objects.filter(action=RATES, actor=founder).count() == 1


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("WITHDRAWAL_FEE_RATE", D("1"), "commerce.E003"),
        ("WITHDRAWAL_FEE_RATE", D("-0.01"), "commerce.E003"),
        ("WITHDRAWAL_MINIMUM", D("0.05"), "commerce.E004"),
        ("COMMISSION_RATE_CEILING", D("60"), "commerce.E005"),
    ],
)
def test_settings_no_payout_or_rule_can_work_with_fail_the_checks(settings, name, value, check_id):
    assert withdrawal_settings_in_range() == []
    setattr(settings, name, value)

    assert [error.id for error in withdrawal_settings_in_range()] == [check_id]
