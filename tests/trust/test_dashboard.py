"""The owner's dashboard: the API endpoint of the contract and the admin page, scoped to managers."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Membership
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory
from tests.trust.builders import list_product
from tests.trust.health_histories import dying_community, multi_centred_community

pytestmark = pytest.mark.django_db


@pytest.fixture
def grown():
    community, _ = multi_centred_community(now=timezone.now())
    return community


def dashboard_url(community) -> str:
    return reverse("admin:members_community_dashboard", args=[community.pk])


# --- API ----------------------------------------------------------------------------------------


def test_owner_gets_the_contracts_dashboard_with_money_as_strings(grown):
    response = client_for(grown.owner).get(f"/api/v1/owner/communities/{grown.slug}/dashboard/")

    assert response.status_code == 200
    body = response.json()
    assert body["members"] == {"active": 49, "new_30d": 14, "churned_30d": 2}
    assert body["orders_30d"] == 15 and body["revenue_30d"] == "1920.00" and body["currency"] == "CNY"
    assert body["referral_share"] == 0.75 and body["lifecycle_stage"] == "self_growing"
    assert 0 < body["conversion_rate"] < 1 and 0 < body["repurchase_rate"] < 1
    assert body["churn_alarm"]["alarm"] is False and body["activity"]["mau"] > 0
    assert re.fullmatch(r"\d+\.\d{2}", body["top_kols"][0]["sales_brought"])
    assert {kol["currency"] for kol in body["top_kols"]} == {"CNY"}


def test_operators_see_the_dashboard_too(grown):
    operator = MembershipFactory(community=grown, role=Membership.Role.OPERATOR).user

    response = client_for(operator).get(f"/api/v1/owner/communities/{grown.slug}/dashboard/")

    assert response.status_code == 200


@pytest.mark.parametrize("who", ["other_owner", "member"])
def test_anyone_else_gets_404_from_the_dashboard_api(grown, who):
    user = CommunityFactory().owner if who == "other_owner" else MembershipFactory(community=grown).user

    response = client_for(user).get(f"/api/v1/owner/communities/{grown.slug}/dashboard/")

    assert response.status_code == 404 and response.json()["error"]["code"]


def test_anonymous_callers_get_401(api_client, grown):
    assert api_client.get(f"/api/v1/owner/communities/{grown.slug}/dashboard/").status_code == 401


def test_the_dashboard_endpoint_is_in_the_schema(api_client):
    schema = api_client.get("/api/v1/schema/?format=json").json()

    assert "/api/v1/owner/communities/{slug}/dashboard/" in schema["paths"]


# --- Admin page ---------------------------------------------------------------------------------


def test_owner_sees_figures_stage_charts_and_fit_warnings(client, grown):
    misfit = list_product(grown, title="千岛湖杨梅 5斤装", category="生鲜/水果", tags=["杨梅"])
    client.force_login(grown.owner)

    response = client.get(dashboard_url(grown))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-stage="self_growing"' in content
    assert content.count("<canvas") == 5 and 'id="dashboard-data"' in content
    assert "trust/vendor/chart.umd.min.js" in content and "cdn" not in content.lower()
    assert misfit.title in content and "fit-warning" in content
    assert "¥1,920.00" in content
    assert response.context["health"].active_members == 49


def test_the_dashboard_shows_the_churn_alarm_for_a_dying_group(client):
    community = dying_community(now=timezone.now())
    client.force_login(community.owner)

    content = client.get(dashboard_url(community)).content.decode()

    assert "churn-alarm" in content and 'data-stage="initialising"' in content


def test_another_owner_cannot_open_the_dashboard(client, grown):
    client.force_login(CommunityFactory().owner)

    assert client.get(dashboard_url(grown)).status_code in {403, 404}


def test_superusers_open_any_dashboard(client, grown):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    assert client.get(dashboard_url(grown)).status_code == 200


def test_the_dashboard_is_linked_from_the_community_list_and_change_pages(client, grown):
    client.force_login(grown.owner)

    listing = client.get(reverse("admin:members_community_changelist")).content.decode()
    change = client.get(reverse("admin:members_community_change", args=[grown.pk])).content.decode()

    assert dashboard_url(grown) in listing and dashboard_url(grown) in change


def test_the_chart_library_is_served_from_our_static_files(client):
    response = client.get("/static/trust/vendor/chart.umd.min.js")

    assert response.status_code == 200
    assert b"Chart.js v4" in b"".join(response.streaming_content)[:200]


@pytest.mark.parametrize(
    ("value", "text"), [("1920", "¥1,920.00"), ("0", "¥0.00"), ("-12.5", "-¥12.50"), ("x", "")]
)
def test_money_is_shown_in_yuan(value, text):
    from trust.templatetags.trust_dashboard import yuan

    assert yuan(value) == text


def test_count_charts_ask_for_whole_ticks_and_money_charts_do_not(client, grown):
    client.force_login(grown.owner)

    charts = {c["id"]: c for c in client.get(dashboard_url(grown)).context["chart_data"]["charts"]}

    assert charts["chart-orders"]["integer"] and charts["chart-members"]["integer"]
    assert not charts["chart-revenue"]["integer"] and not charts["chart-repurchase"]["integer"]


def test_the_owners_home_opens_with_their_communities_dashboards(client, grown):
    other = CommunityFactory(name="别人的社群")
    client.force_login(grown.owner)

    content = client.get(reverse("admin:index")).content.decode()

    assert f'data-community="{grown.slug}"' in content and "¥1,920.00" in content
    assert dashboard_url(grown) in content and other.name not in content
    assert "app-commerce" in content  # the app list is still below the dashboards


def test_view_site_leads_to_a_page_that_exists(client, grown):
    client.force_login(grown.owner)

    site_url = client.get(reverse("admin:index")).context["site_url"]

    assert site_url and client.get(site_url).status_code == 200
