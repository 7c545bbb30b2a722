"""Owners in the admin see and change only their own communities' rows."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from members.models import Community, Membership
from tests.members.factories import (
    CommunityFactory,
    InviteCodeFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    a, b = CommunityFactory(name="A社群"), CommunityFactory(name="B社群")
    return {
        "a": a,
        "b": b,
        "a_member": MembershipFactory(community=a, status=Membership.Status.PENDING_APPROVAL),
        "b_member": MembershipFactory(community=b, status=Membership.Status.PENDING_APPROVAL),
        "b_tier": TierFactory(community=b),
        "b_invite": InviteCodeFactory(community=b),
    }


@pytest.fixture
def owner_a(client, world):
    client.force_login(world["a"].owner)
    return client


def test_owner_lists_only_own_rows(owner_a, world):
    communities = owner_a.get(reverse("admin:members_community_changelist")).content.decode()
    memberships = owner_a.get(reverse("admin:members_membership_changelist")).content.decode()
    assert "A社群" in communities and "B社群" not in communities
    assert world["a_member"].user.nickname in memberships
    assert world["b_member"].user.nickname not in memberships
    invites = owner_a.get(reverse("admin:members_invitecode_changelist")).content.decode()
    assert world["b_invite"].code not in invites


@pytest.mark.parametrize(
    ("url_name", "key"),
    [
        ("admin:members_community_change", "b"),
        ("admin:members_membership_change", "b_member"),
        ("admin:members_invitecode_change", "b_invite"),
    ],
)
def test_crafted_ids_of_another_owner_are_not_found(owner_a, world, url_name, key):
    response = owner_a.get(reverse(url_name, args=[world[key].pk]))
    assert response.status_code in (302, 404)
    if response.status_code == 302:  # Django redirects to the index with "doesn't exist" for hidden objects
        assert response.url.endswith("/admin/")
    post = owner_a.post(reverse(url_name, args=[world[key].pk]), {"name": "hijacked", "status": "banned"})
    assert post.status_code in (302, 403, 404)
    world["b"].refresh_from_db()
    world["b_member"].refresh_from_db()
    assert world["b"].name == "B社群" and world["b_member"].status == "pending_approval"


def test_approve_action_cannot_touch_another_owners_members(owner_a, world):
    response = owner_a.post(
        reverse("admin:members_membership_changelist"),
        {"action": "approve", "_selected_action": [world["a_member"].pk, world["b_member"].pk]},
    )
    assert response.status_code == 302
    world["a_member"].refresh_from_db()
    world["b_member"].refresh_from_db()
    assert world["a_member"].status == "active"
    assert world["b_member"].status == "pending_approval"


def test_form_choices_are_scoped(owner_a, world):
    page = owner_a.get(
        reverse("admin:members_membership_change", args=[world["a_member"].pk])
    ).content.decode()
    assert "A社群" in page
    assert f'<option value="{world["b"].pk}"' not in page
    assert f'<option value="{world["b_tier"].pk}"' not in page


def test_a_user_without_communities_sees_no_members_admin(client):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(reverse("admin:members_membership_changelist")).status_code == 403


def test_superuser_sees_everything(client, world):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:members_community_changelist")).content.decode()
    assert "A社群" in page and "B社群" in page


def test_a_founder_adds_a_community_in_the_admin_and_owns_it(client):
    founder = UserFactory(is_staff=True)
    founder.user_permissions.add(Permission.objects.get(codename="add_community"))
    client.force_login(founder)
    response = client.post(
        reverse("admin:members_community_add"),
        {
            "name": "摄影社",
            "slug": "sheying",
            "entry_type": "free",
            "attributes_text": "摄影，器材、旅行摄影",
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
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    community = Community.objects.get(slug="sheying")
    assert community.owner == founder
    assert community.attribute_tags == ["摄影", "器材", "旅行摄影"]
    assert Membership.objects.get(community=community, user=founder).role == "owner"


def test_membership_list_has_filters_and_search(owner_a, world):
    url = reverse("admin:members_membership_changelist")
    page = owner_a.get(url, {"q": world["a_member"].user.nickname}).content.decode()
    assert world["a_member"].user.nickname in page
    assert owner_a.get(url, {"status__exact": "pending_approval"}).status_code == 200


def test_a_new_invite_code_comes_generated_and_saves_as_offered(owner_a, world):
    from members.models import InviteCode

    page = owner_a.get(reverse("admin:members_invitecode_add"))

    code = page.context["adminform"].form.fields["code"].initial
    assert len(code) == 8 and code.isalnum() and not set(code) & set("01OIL")
    assert f'value="{code}"' in page.content.decode()
    owner_a.post(
        reverse("admin:members_invitecode_add"),
        {"community": world["a"].pk, "code": code, "max_uses": 5, "is_active": "on"},
    )
    assert InviteCode.objects.get(code=code).community == world["a"]
    second = owner_a.get(reverse("admin:members_invitecode_add")).context["adminform"].form
    assert second.fields["code"].initial != code
