"""The member's product list and the buyer's order list read their page in one query (issue 19).

Their bodies are built from rows rather than by the serializers: every answer here is compared,
byte for byte, with the generic list's (``PageNumberPagination.window`` returning None sends a
request down that path), on varied data.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from commerce.services.shipments import shipment_create
from members.models import Membership
from members.services.users import user_token
from shequn_backend.api.pagination import PageNumberPagination
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory, category
from tests.commerce.flows import body, pay, refund_as_owner
from tests.commerce.test_after_sales import ask, delivered, lines_of, make_shop, paid_express, place
from tests.commerce.test_coupons import give, make_coupon
from tests.members.factories import CommunityFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db

ORDERS_URL = "/api/v1/orders/"


def token_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token(user=user)}")
    return client


def both_ways(client, url, params, monkeypatch) -> tuple:
    """(the answer, the generic list's answer) to the same request."""
    fast = client.get(url, params)
    with monkeypatch.context() as patch:
        patch.setattr(PageNumberPagination, "window", lambda self, request: None)
        generic = client.get(url, params)
    return fast, generic


def assert_same(client, url, params, monkeypatch):
    fast, generic = both_ways(client, url, params, monkeypatch)
    assert (fast.status_code, fast.content) == (generic.status_code, generic.content), params
    return fast


# --- Products -----------------------------------------------------------------------------------


@pytest.fixture
def catalog():
    community = CommunityFactory(slug="guoyuan")
    silver = TierFactory(community=community, level=1, points_threshold=0, discount_percent=Decimal("12.5"))
    gold = TierFactory(community=community, level=2, points_threshold=500, discount_percent=Decimal("20"))
    fruit, tea = category("生鲜/水果"), category("茶叶/绿茶")
    for n in range(7):
        product = ProductFactory(
            community=community, title=f"苹果{n}", category=fruit, tags=["脆甜", f"t{n}"]
        )
        SkuFactory(product=product, name="5斤", price=Decimal("39.99") + n, stock=n)
        SkuFactory(product=product, name="10斤", price=Decimal("0.05"), stock=7)
        SkuFactory(product=product, name="下架", price=Decimal("0.01"), is_active=False)
    SkuFactory(
        product=ProductFactory(community=community, title="龙井 50%_off", category=tea), price=D("88.88")
    )
    ProductFactory(community=community, title="还没有规格", category=tea)  # no SKU on sale
    SkuFactory(product=ProductFactory(community=community, title="金卡专享", min_tier=2), price=D("1999.99"))
    SkuFactory(
        product=ProductFactory(community=community, title="网课", delivery_kind="virtual"), price=D("9.90")
    )
    SkuFactory(
        product=EventFactory(community=community, title="采摘活动"), name="成人", price=D("0.00"), stock=9
    )
    SkuFactory(product=ProductFactory(community=community, title="已下架", is_active=False), price=D("5.00"))
    SkuFactory(product=ProductFactory(title="别的社群"), price=D("5.00"))
    return {
        "community": community,
        "users": [
            MembershipFactory(community=community, tier=None).user,
            MembershipFactory(community=community, tier=silver).user,
            MembershipFactory(community=community, tier=gold).user,
            MembershipFactory(community=community, tier=None, role=Membership.Role.OPERATOR).user,
            community.owner,
        ],
    }


D = Decimal


def products_url(community) -> str:
    return f"/api/v1/communities/{community.slug}/products/"


PRODUCT_PARAMS = [
    {},
    {"page_size": 3},
    {"page_size": 3, "page": 2},
    {"page_size": 3, "page": "0003"},
    {"page_size": 5, "page": 3},
    {"page_size": 4, "page": 99},  # beyond the last: 404
    {"page_size": 3, "page": "last"},
    {"page_size": 0},
    {"page_size": "x"},
    {"page": "0"},
    {"page_size": 1000},
    {"category": "生鲜"},
    {"category": "/生鲜/水果/", "page_size": 2, "page": 2},
    {"category": "图书"},  # nothing there: an empty first page
    {"category": "图书", "page": 2},
    {"search": "苹果"},
    {"search": "脆甜", "page_size": 3},  # a tag
    {"search": "50%_"},
    {"search": "龙井", "category": "茶叶"},
]


def test_product_pages_are_the_serializers_pages(catalog, monkeypatch):
    url = products_url(catalog["community"])
    for user in catalog["users"]:
        client = token_client(user)
        for params in PRODUCT_PARAMS:
            assert_same(client, url, params, monkeypatch)
    bodies = body(token_client(catalog["users"][2]).get(url, {"page_size": 100}))["results"]
    assert {row["title"] for row in bodies} >= {"金卡专享", "采摘活动", "网课", "还没有规格"}


def test_product_pages_refuse_non_members_and_unknown_communities_as_before(catalog, monkeypatch):
    url = products_url(catalog["community"])
    pending = MembershipFactory(community=catalog["community"], status=Membership.Status.PENDING_PAYMENT).user
    expired = MembershipFactory(community=catalog["community"], expires_at=timezone.now() - timedelta(days=1))
    for user in (UserFactory(), pending, expired.user):
        for params in ({}, {"page_size": 0}, {"page": 5}):
            response = assert_same(token_client(user), url, params, monkeypatch)
            assert response.status_code == 403
    response = assert_same(
        token_client(catalog["users"][0]), "/api/v1/communities/no-such/products/", {}, monkeypatch
    )
    assert response.status_code == 404


def test_product_list_queries_stay_constant_as_members_and_products_grow(catalog):
    client = token_client(catalog["users"][1])
    url = products_url(catalog["community"])
    counts = []
    for _ in range(2):
        for n in range(15):
            SkuFactory(product=ProductFactory(community=catalog["community"], title=f"加{n}"))
            MembershipFactory(community=catalog["community"])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, {"page_size": 20, "page": 2}).status_code == 200
        counts.append(len(queries))
    assert counts == [2, 2]  # the token and its user; everything else


# --- Orders -------------------------------------------------------------------------------------


@pytest.fixture
def orders(stripe):
    """A buyer's orders of every kind: pending with a client secret, paid, shipped, delivered, with
    an after-sale, with a coupon and refunds, cancelled; plus another buyer's."""
    shop = make_shop()
    membership = Membership.objects.get(user=shop["user"], community=shop["community"])
    place(shop)  # waiting for payment: the client secret is shown
    paid_express(shop, stripe, [(shop["jam"], 1)])
    shipped = paid_express(shop, stripe)
    shipment_create(actor=shop["owner"], order_id=shipped.pk, carrier="SF", tracking_no="SF1234567")
    delivered(shop, stripe, days_ago=1)
    with_after_sale = delivered(shop, stripe)
    first_line = lines_of(with_after_sale)[0]
    response = ask(shop["user"], with_after_sale.pk, lines=[(first_line, 1)])
    assert response.status_code == 201, response.content
    grant = give(make_coupon(shop["community"], min_spend=D("10.00"), amount_off=D("3.33")), membership)
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["berries"].pk, "quantity": 2}, {"sku": shop["jam"].pk, "quantity": 1}],
        "address": shop["address"].pk,
        "coupon": grant.pk,
    }
    response = token_client(shop["user"]).post(ORDERS_URL, payload, format="json")
    assert response.status_code == 201, response.content
    with_coupon = pay(stripe, body(response)["id"])
    assert refund_as_owner(shop["owner"], with_coupon.pk, amount="1.11").status_code == 201
    cancelled = place(shop, [(shop["jam"], 1)])
    assert token_client(shop["user"]).post(f"{ORDERS_URL}{cancelled}/cancel/").status_code == 200
    other = MembershipFactory(community=shop["community"]).user
    token_client(other)  # someone else's token
    return shop


ORDER_PARAMS = [
    {},
    {"page_size": 1},
    {"page_size": 2, "page": 2},
    {"page_size": 2, "page": 4},
    {"page_size": 3, "page": 3},
    {"page_size": 3, "page": 9},
    {"page_size": 2, "page": "last"},
    {"page_size": "-1"},
    {"page": "x"},
]


def test_order_pages_are_the_serializers_pages(orders, monkeypatch):
    client = token_client(orders["user"])
    for params in ORDER_PARAMS:
        assert_same(client, ORDERS_URL, params, monkeypatch)
    rows = body(client.get(ORDERS_URL))["results"]
    assert len(rows) == 7
    assert any(row["after_sales"] for row in rows) and any(row["shipments"] for row in rows)
    assert any(row["coupon"] for row in rows) and any(row["amount_refunded"] != "0.00" for row in rows)
    assert any(row["payment"] and row["payment"]["client_secret"] for row in rows)
    assert token_client(UserFactory()).get(ORDERS_URL).json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "results": [],
    }


def test_order_list_queries_stay_constant_as_orders_grow(orders, stripe):
    client = token_client(orders["user"])
    counts = []
    for _ in range(2):
        for _ in range(3):
            paid_express(orders, stripe, [(orders["jam"], 1)])
        with CaptureQueriesContext(connection) as queries:
            assert client.get(ORDERS_URL, {"page_size": 3}).status_code == 200  # no after-sale here
        counts.append(len(queries))
        with CaptureQueriesContext(connection) as queries:
            assert client.get(ORDERS_URL, {"page_size": 100}).status_code == 200
        counts.append(len(queries))
    # the token and its user; the page; after-sales and their lines when the page has any
    assert counts == [2, 4, 2, 4]


# --- The token ----------------------------------------------------------------------------------


def test_a_token_logged_out_expired_or_of_a_deactivated_user_is_refused_at_once(catalog):
    user = catalog["users"][1]
    url = products_url(catalog["community"])
    client = token_client(user)
    assert client.get(url).status_code == 200 and client.get(ORDERS_URL).status_code == 200
    assert client.post(reverse("auth-logout")).status_code in (200, 204)
    assert client.get(url).status_code == 401 and client.get(ORDERS_URL).status_code == 401

    client = token_client(user)
    assert client.get(ORDERS_URL).status_code == 200
    AuthToken.objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get(ORDERS_URL).status_code == 401

    client = token_client(user)
    assert client.get(ORDERS_URL).status_code == 200
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    response = client.get(url)
    assert response.status_code == 401 and body(response)["error"]["code"] == "authentication_failed"
