"""The public community list reads its page in one query on PostgreSQL (issue 19).

Its body is built from rows rather than by the serializer: every answer here is compared, byte for
byte, with the generic list's (``PageNumberPagination.window`` returning None sends a request down
that path).
"""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from members import selectors
from members.models import Membership
from members.services.memberships import community_member_counts_refresh
from shequn_backend.api.pagination import PageNumberPagination
from tests.members.factories import CommunityFactory, EntryPlanFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/communities/"


@pytest.fixture(autouse=True)
def no_cache(settings):
    settings.PUBLIC_CACHE_SECONDS = 0


@pytest.fixture
def communities():
    made = []
    for n in range(7):
        community = CommunityFactory(
            name=f"跑团{n}" if n % 2 else f"读书会{n}",
            mission="一起跑 100% 的马拉松" if n == 3 else "一起成长",
            attributes=["跑步", f"城市{n}"] if n % 2 else ["阅读"],
        )
        made.append(community)
    EntryPlanFactory(community=made[0], name="年度", price=Decimal("199.00"))
    EntryPlanFactory(community=made[0], name="月度", price=Decimal("19.90"), period_days=30, trial_days=7)
    EntryPlanFactory(community=made[0], name="停售", price=Decimal("0.50"), is_active=False)
    EntryPlanFactory(community=made[1], name="终身", price=Decimal("999.99"), period_days=None)
    EntryPlanFactory(community=made[2], name="免费试用", price=Decimal("0.00"), refund_window_days=0)
    return made


def assert_same(params, monkeypatch):
    client = APIClient()
    fast = client.get(URL, params)
    with monkeypatch.context() as patch:
        patch.setattr(PageNumberPagination, "window", lambda self, request: None)
        generic = client.get(URL, params)
    assert (fast.status_code, fast.content) == (generic.status_code, generic.content), params
    return fast


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"page_size": 3},
        {"page_size": 3, "page": 2},
        {"page_size": 3, "page": 3},
        {"page_size": 3, "page": 4},  # beyond the last: 404
        {"page_size": 3, "page": "last"},
        {"page_size": 0},  # refused: 400
        {"search": "跑"},
        {"search": "100%"},
        {"search": "城市", "page_size": 2, "page": 2},
        {"attribute": "阅读"},
        {"attribute": "跑步", "search": "城市5"},
        {"search": "没有这个"},
    ],
)
def test_every_page_is_what_the_generic_list_gives(communities, params, monkeypatch):
    assert_same(params, monkeypatch)


def test_an_empty_list_is_an_empty_first_page(monkeypatch):
    body = assert_same({}, monkeypatch).json()
    assert body == {"count": 0, "next": None, "previous": None, "results": []}


def test_plans_and_attributes_come_in_their_order(communities, monkeypatch):
    body = assert_same({"search": communities[0].name}, monkeypatch).json()
    (row,) = body["results"]
    assert [plan["price"] for plan in row["entry"]["plans"]] == ["19.90", "199.00"]
    assert row["attributes"] == ["阅读"]


def test_one_query_per_page_however_many_members(communities):
    community = communities[0]
    client = APIClient()
    client.get(URL)
    with CaptureQueriesContext(connection) as small:
        client.get(URL, {"page_size": 5})
    Membership.objects.bulk_create(
        Membership(user=UserFactory(), community=community, status="active", referral_code=f"P{i:07d}")
        for i in range(50)
    )
    community_member_counts_refresh()
    with CaptureQueriesContext(connection) as large:
        client.get(URL, {"page_size": 5})
    assert len(large.captured_queries) == len(small.captured_queries)
    if connection.vendor == "postgresql":
        assert len(large.captured_queries) == 1
    last = client.get(URL, {"page_size": 5, "page": 2}).json()["results"]
    assert (last[-1]["slug"], last[-1]["member_count"]) == (community.slug, 51)


def test_the_page_selector_steps_aside_outside_postgresql(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    assert selectors.community_page_public(search=None, attribute=None, limit=20, offset=0) is None


def test_the_detail_is_one_query_and_what_the_serializer_gives(communities, monkeypatch):
    communities[3].description, communities[3].rules = '跑步爱好者的家 "引号" <b>', "不发广告\n每周一跑"
    communities[3].save(update_fields=["description", "rules"])
    client = APIClient()
    for community in [*communities, None]:
        url = f"{URL}{community.slug if community else 'no-such-community'}/"
        with CaptureQueriesContext(connection) as queries:
            fast = client.get(url)
        assert len(queries) == 1, url  # read now: the next request clears the log
        with monkeypatch.context() as patch:
            patch.setattr(selectors, "community_row_public", lambda slug: None)  # the serializer's path
            generic = client.get(url)
        assert (fast.status_code, fast.content) == (generic.status_code, generic.content), url
    assert fast.status_code == 404
    body = client.get(f"{URL}{communities[3].slug}/").json()
    assert (body["description"], body["rules"]) == ('跑步爱好者的家 "引号" <b>', "不发广告\n每周一跑")
    assert [plan["name"] for plan in client.get(f"{URL}{communities[0].slug}/").json()["entry"]["plans"]] == [
        "月度",
        "年度",
    ]
