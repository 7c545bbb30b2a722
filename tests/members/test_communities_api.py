"""Community browsing, the owner console, and owners' isolation from each other."""

import pytest

from members.models import Community, Membership
from tests.conftest import client_for
from tests.members.factories import (
    CommunityFactory,
    EntryPlanFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
)
from tests.members.test_auth_api import assert_error

pytestmark = pytest.mark.django_db


class TestBrowse:
    def test_list_shows_entry_plans_attributes_and_active_member_count(self, api_client):
        plan = EntryPlanFactory(name="年度会员", community__attributes=["财经", "投资理财"])
        MembershipFactory(community=plan.community)
        MembershipFactory(community=plan.community, status=Membership.Status.LEFT)
        body = api_client.get("/api/v1/communities/").json()
        (row,) = body["results"]
        assert row["slug"] == plan.community.slug
        assert row["attributes"] == ["财经", "投资理财"]
        assert row["entry"]["type"] == "paid"
        assert row["entry"]["plans"][0] | {"id": 0} == {
            "id": 0,
            "name": "年度会员",
            "price": "199.00",
            "currency": "CNY",
            "period_days": 365,
            "trial_days": 0,
            "refund_window_days": 3,
        }
        assert row["member_count"] == 2  # the owner and one active member

    def test_search_and_attribute_filter(self, api_client):
        CommunityFactory(name="城市跑团", attributes=["跑步", "马拉松"])
        CommunityFactory(name="摄影社", attributes=["摄影"])
        by_name = api_client.get("/api/v1/communities/", {"search": "跑团"}).json()
        by_tag = api_client.get("/api/v1/communities/", {"search": "马拉"}).json()
        by_attribute = api_client.get("/api/v1/communities/", {"attribute": "摄影"}).json()
        assert [r["name"] for r in by_name["results"]] == ["城市跑团"]
        assert [r["name"] for r in by_tag["results"]] == ["城市跑团"]
        assert [r["name"] for r in by_attribute["results"]] == ["摄影社"]

    def test_pagination_follows_the_contract(self, api_client):
        for _ in range(5):
            CommunityFactory()
        page = api_client.get("/api/v1/communities/", {"page_size": 2, "page": 2}).json()
        assert page["count"] == 5 and len(page["results"]) == 2
        assert "page=3" in page["next"] and page["previous"]
        assert len(api_client.get("/api/v1/communities/", {"page_size": 1000}).json()["results"]) == 5
        assert_error(api_client.get("/api/v1/communities/", {"page": 99}), 404, "not_found")

    def test_list_query_count_does_not_grow_with_the_page(self, api_client):
        for _ in range(12):
            community = CommunityFactory(attributes=["a", "b"])
            EntryPlanFactory(community=community)

        def queries_for(size):
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as ctx:
                assert (
                    len(api_client.get("/api/v1/communities/", {"page_size": size}).json()["results"]) == size
                )
            return len(ctx.captured_queries)

        assert queries_for(2) == queries_for(12)

    def test_detail_adds_rules_and_description(self, api_client):
        community = CommunityFactory(rules="不发广告", description="跑步爱好者")
        body = api_client.get(f"/api/v1/communities/{community.slug}/").json()
        assert body["rules"] == "不发广告" and body["description"] == "跑步爱好者"
        assert_error(api_client.get("/api/v1/communities/nope/"), 404, "not_found")


class TestMyMemberships:
    def test_lists_only_my_memberships_with_tier_and_points(self, user):
        tier = TierFactory(name="资深", level=2)
        mine = MembershipFactory(user=user, community=tier.community, tier=tier, points=150)
        MembershipFactory()  # someone else's
        body = client_for(user).get("/api/v1/me/memberships/").json()
        assert body["count"] == 1
        row = body["results"][0]
        assert row["id"] == mine.pk and row["tier"] == {"name": "资深", "level": 2} and row["points"] == 150
        assert row["expires_at"] is None and row["joined_at"]

    def test_referrals_show_codes_and_invited_counts(self, user):
        mine = MembershipFactory(user=user)
        MembershipFactory(community=mine.community, referred_by=mine)
        MembershipFactory(community=mine.community, referred_by=mine)
        body = client_for(user).get("/api/v1/me/referrals/").json()
        assert body["memberships"] == [
            {
                "community": mine.community.slug,
                "referral_code": mine.referral_code,
                "invited_count": 2,
                "commissions": body["memberships"][0]["commissions"],
            }
        ]
        commissions = body["memberships"][0]["commissions"]
        assert commissions == {"pending": "0.00", "settled": "0.00", "reversed": "0.00", "currency": "CNY"}


class TestOwnerConsole:
    payload = {
        "slug": "tea-club",
        "name": "茶友会",
        "mission": "一起喝好茶",
        "description": "普洱与岩茶",
        "rules": "文明交流",
        "attributes": ["茶文化", "普洱"],
        "entry_type": "paid",
        "plans": [{"name": "年卡", "price": "299.00", "period_days": 365}],
    }

    def test_any_user_may_create_a_community_and_becomes_its_owner(self, user):
        response = client_for(user).post("/api/v1/owner/communities/", self.payload, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["slug"] == "tea-club" and body["attributes"] == ["茶文化", "普洱"]
        assert body["entry"]["plans"][0]["price"] == "299.00"
        assert body["referral"] == {
            "level1_percent": "0.00",
            "level2_percent": "0.00",
            "return_window_days": 7,
            "on_entry_orders": False,
        }
        owner = Membership.objects.get(community__slug="tea-club", user=user)
        assert (owner.role, owner.status) == ("owner", "active")
        user.refresh_from_db()
        assert user.is_staff  # may use the admin, the main owner tool

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"slug": "Not A Slug!"}, "slug"),
            ({"entry_type": "paid", "plans": []}, "plans"),
            ({"plans": [{"name": "x", "price": "-1"}]}, "plans[0].price"),
            ({"plans": [{"name": "x", "price": "1.001"}]}, "plans[0].price"),
            ({"attributes": ["a" * 33]}, "attributes"),
            ({"name": "长" * 101}, "name"),
            ({"entry_type": "vip"}, "entry_type"),
        ],
    )
    def test_bad_input_is_400_and_creates_nothing(self, user, change, field):
        response = client_for(user).post(
            "/api/v1/owner/communities/", {**self.payload, **change}, format="json"
        )
        error = assert_error(response, 400, "validation_error")
        assert any(key.startswith(field) for key in error["fields"]), error["fields"]
        assert not Community.objects.exists()

    def test_taken_slug_is_400(self, user):
        CommunityFactory(slug="tea-club")
        error = assert_error(
            client_for(user).post("/api/v1/owner/communities/", self.payload, format="json"),
            400,
            "validation_error",
        )
        assert "slug" in error["fields"]

    def test_patch_changes_settings_and_referral_but_not_owner(self):
        community = CommunityFactory(attributes=["跑步"])
        intruder = UserFactory()
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {
                "mission": "新使命",
                "attributes": ["跑步", "越野"],
                "points_per_yuan": "2.00",
                "referral": {"level1_percent": "10", "level2_percent": "3", "on_entry_orders": True},
                "owner": intruder.pk,
            },
            format="json",
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["mission"] == "新使命" and body["attributes"] == ["跑步", "越野"]
        assert body["referral"]["level1_percent"] == "10.00" and body["referral"]["on_entry_orders"] is True
        assert body["points_per_yuan"] == "2.00"
        community.refresh_from_db()
        assert community.owner != intruder and community.slug != "stolen"

    @pytest.mark.parametrize(
        ("plan", "missing"),
        [({"name": "年卡", "period_days": 365}, ["plans[0].price"]), ({"price": "9.90"}, ["plans[0].name"])],
    )
    def test_a_plan_added_in_patch_still_needs_its_name_and_price(self, plan, missing):
        community = CommunityFactory()
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/", {"plans": [plan]}, format="json"
        )
        assert list(assert_error(response, 400, "validation_error")["fields"]) == missing
        assert not community.plans.exists()

    @pytest.mark.parametrize("slug", ["stolen", None, ""])
    def test_a_slug_in_patch_is_refused_as_read_only_and_nothing_changes(self, slug):
        community = CommunityFactory(mission="旧使命")
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {"mission": "新使命", "slug": slug},
            format="json",
        )
        error = assert_error(response, 400, "validation_error")
        assert list(error["fields"]) == ["slug"]
        community.refresh_from_db()
        assert community.mission == "旧使命" and community.slug != "stolen"

    @pytest.mark.parametrize(
        ("value", "accepted"),
        [
            *[("2", True), ("2.5", True), ("1000", True), ("1000.00", True), ("0", True)],
            *[("1000.01", False), ("-1", False), ("1e2", False), ("", False), (" 2", False), (2, False)],
        ],
    )
    def test_points_per_yuan_accepts_exactly_the_schemas_money_pattern(self, value, accepted):
        community = CommunityFactory()
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/", {"points_per_yuan": value}, format="json"
        )
        if accepted:
            assert response.status_code == 200, response.content
        else:
            assert list(assert_error(response, 400, "validation_error")["fields"]) == ["points_per_yuan"]

    @pytest.mark.parametrize("value", ["true", 1, "yes", None])
    def test_a_flag_must_be_a_json_boolean(self, value):
        community = CommunityFactory()
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {"referral": {"on_entry_orders": value}},
            format="json",
        )
        assert list(assert_error(response, 400, "validation_error")["fields"]) == ["referral.on_entry_orders"]

    def test_commission_above_fifty_percent_is_refused(self):
        community = CommunityFactory()
        response = client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {"referral": {"level1_percent": "80"}},
            format="json",
        )
        assert "referral.level1_percent" in assert_error(response, 400, "validation_error")["fields"]

    def test_operator_manages_but_plain_member_does_not(self):
        community = CommunityFactory()
        operator = MembershipFactory(community=community, role=Membership.Role.OPERATOR).user
        member = MembershipFactory(community=community).user
        assert (
            client_for(operator).get(f"/api/v1/owner/communities/{community.slug}/members/").status_code
            == 200
        )
        assert_error(
            client_for(member).get(f"/api/v1/owner/communities/{community.slug}/members/"), 404, "not_found"
        )

    def test_members_list_filters_by_status(self):
        community = CommunityFactory()
        referrer = MembershipFactory(community=community)
        MembershipFactory(
            community=community, status=Membership.Status.PENDING_APPROVAL, referred_by=referrer
        )
        client = client_for(community.owner)
        pending = client.get(
            f"/api/v1/owner/communities/{community.slug}/members/", {"status": "pending_approval"}
        )
        (row,) = pending.json()["results"]
        assert row["status"] == "pending_approval" and row["referred_by"] == referrer.pk and row["nickname"]


class TestOwnerIsolation:
    """Owner A gets nothing of B's: by list, detail, members, approve or crafted id."""

    @pytest.fixture
    def two(self):
        a, b = CommunityFactory(), CommunityFactory()
        pending_b = MembershipFactory(community=b, status=Membership.Status.PENDING_APPROVAL)
        return a, b, pending_b

    def test_list_shows_only_own(self, two):
        a, _b, _ = two
        slugs = [r["slug"] for r in client_for(a.owner).get("/api/v1/owner/communities/").json()["results"]]
        assert slugs == [a.slug]

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", "/api/v1/owner/communities/{b}/"),
            ("patch", "/api/v1/owner/communities/{b}/"),
            ("get", "/api/v1/owner/communities/{b}/members/"),
            ("post", "/api/v1/owner/communities/{b}/members/{m}/approve/"),
            (
                "post",
                "/api/v1/owner/communities/{a}/members/{m}/approve/",
            ),  # crafted: B's member via A's slug
        ],
    )
    def test_others_communities_do_not_exist(self, two, method, path):
        a, b, pending_b = two
        url = path.format(a=a.slug, b=b.slug, m=pending_b.pk)
        response = getattr(client_for(a.owner), method)(url, {"name": "hijacked"}, format="json")
        assert_error(response, 404, "not_found")
        pending_b.refresh_from_db()
        b.refresh_from_db()
        assert pending_b.status == "pending_approval" and b.name != "hijacked"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"nickname": 0}, {"nickname": True}, {"interests": [1]}])
def test_text_fields_take_json_strings_only(user, body):
    response = client_for(user).patch("/api/v1/me/", body, format="json")
    [key] = assert_error(response, 400, "validation_error")["fields"]
    assert key.startswith(next(iter(body)))
