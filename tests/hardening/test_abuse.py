"""Hostile and odd input: NUL bytes, odd Unicode, too many decimals, huge numbers, mass assignment."""

import pytest

from commerce.models import Order, Product
from members.models import Community, Membership, User
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory
from tests.members.test_auth_api import assert_error

pytestmark = pytest.mark.django_db

ODD_BUT_VALID = [
    "跑步🏃‍♀️马拉松",  # emoji with a zero-width joiner
    "\u202eRTL override",  # right-to-left override
    "e\u0301 combining",  # combining accent
    "𠀀𪚥 rare CJK",  # four-byte CJK (outside the BMP)
    "zero\u200bwidth",
]


@pytest.mark.parametrize(
    ("url", "method", "body"),
    [
        ("/api/v1/auth/register/", "post", {"username": "nul\x00user", "password": "long-enough-9"}),
        (
            "/api/v1/auth/register/",
            "post",
            {"username": "ok_user", "password": "long-enough-9", "nickname": "a\x00b"},
        ),
        ("/api/v1/me/", "patch", {"nickname": "a\x00b"}),
        ("/api/v1/me/", "patch", {"interests": ["跑\x00步"]}),
        ("/api/v1/owner/communities/", "post", {"slug": "nul", "name": "社\x00群"}),
    ],
)
def test_nul_bytes_are_refused_with_400_not_a_database_error(user, url, method, body):
    response = getattr(client_for(user), method)(url, body, format="json")
    assert_error(response, 400, "validation_error")
    assert not Community.objects.filter(slug="nul").exists()


@pytest.mark.parametrize("text", ODD_BUT_VALID)
def test_odd_unicode_round_trips_unchanged(user, text):
    client = client_for(user)
    assert (
        client.patch(
            "/api/v1/me/", {"nickname": text[:64], "interests": [text[:32]]}, format="json"
        ).status_code
        == 200
    )
    body = client.get("/api/v1/me/").json()
    assert body["nickname"] == text[:64] and body["interests"] == [text[:32]]


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-1"},
        {"page": str(10**30)},
        {"page": "abc"},
        {"page_size": "-5"},
        {"page_size": str(10**30)},
        {"page_size": "x"},
        {"search": "x" * 5000},
        {"attribute": "\x00"},
    ],
)
def test_extreme_query_parameters_never_cause_a_server_error(api_client, params):
    """A NUL in ?attribute= once reached PostgreSQL as a 500: now every path refuses it with 400."""
    CommunityFactory()
    response = api_client.get("/api/v1/communities/", params)
    assert response.status_code in (200, 400, 404), response.content
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("price", ["1.001", "-0.01", "1e309", "NaN", "Infinity", "99999999999.00", ""])
def test_prices_with_too_many_decimals_or_absurd_values_are_refused(price):
    community = CommunityFactory()
    response = client_for(community.owner).post(
        f"/api/v1/owner/communities/{community.slug}/products/",
        {
            "title": "书",
            "category": "图书/投资理财",
            "kind": "goods",
            "skus": [{"name": "x", "price": price, "stock": 1}],
        },
        format="json",
    )
    assert_error(response, 400, "validation_error")
    assert not Product.objects.exists()


def test_an_overlong_idempotency_key_is_refused_cleanly():
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community))
    member = MembershipFactory(community=community).user
    response = client_for(member).post(
        "/api/v1/orders/",
        {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY="k" * 5000,
    )
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


class TestMassAssignment:
    def test_joining_cannot_choose_status_role_or_points(self, user):
        community = CommunityFactory(entry_type=Community.EntryType.APPROVAL)
        response = client_for(user).post(
            f"/api/v1/communities/{community.slug}/join/",
            {"status": "active", "role": "owner", "points": 10**6, "tier": 9, "user": 1},
            format="json",
        )
        membership = Membership.objects.get(user=user, community=community)
        assert response.status_code == 201
        assert (membership.status, membership.role, membership.points) == ("pending_approval", "member", 0)

    def test_profile_cannot_grant_staff_or_superuser(self, user):
        client_for(user).patch(
            "/api/v1/me/", {"is_staff": True, "is_superuser": True, "username": "root"}, format="json"
        )
        user.refresh_from_db()
        assert not user.is_staff and not user.is_superuser and user.username != "root"

    def test_orders_cannot_choose_status_total_or_buyer(self):
        community = CommunityFactory()
        sku = SkuFactory(product=ProductFactory(community=community))
        member = MembershipFactory(community=community).user
        victim = UserFactory()
        client_for(member).post(
            "/api/v1/orders/",
            {
                "community": community.slug,
                "lines": [{"sku": sku.pk, "quantity": 1, "unit_price": "0.01"}],
                "status": "paid",
                "total": "0.01",
                "buyer": victim.pk,
                "amount_paid": "999",
            },
            format="json",
        )
        order = Order.objects.get()
        assert order.buyer == member and order.status == "pending_payment"
        assert order.total == sku.price and order.amount_paid == 0

    def test_owner_cannot_transfer_ownership_or_set_counts_through_patch(self):
        community = CommunityFactory()
        thief = UserFactory()
        client_for(community.owner).patch(
            f"/api/v1/owner/communities/{community.slug}/",
            {"owner": thief.pk, "member_count": 10**6, "created_at": "2000-01-01T00:00:00Z"},
            format="json",
        )
        community.refresh_from_db()
        assert community.owner != thief and community.created_at.year > 2000
        assert not User.objects.get(pk=thief.pk).is_staff


@pytest.mark.parametrize(
    "url", ["/api/v1/communities/?search=%00", "/api/v1/communities/a%00b/", "/admin/?q=%00"]
)
def test_nul_in_any_path_or_query_is_a_400(client, url):
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
