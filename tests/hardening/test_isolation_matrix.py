"""Isolation matrix: people of another community never reach community A's data.

For every API endpoint and admin page that shows community or member data, a
member, an owner and an operator of community B get 403/404 (or an empty
list) for A's rows, including by crafted ids, filters and search. Finance
staff's read-only view of all money is tested with the finance role.
"""

from decimal import Decimal

import pytest
from django.urls import reverse

from commerce.events import product_listed
from commerce.models import AfterSale, AfterSaleLine, Notification, Order, OrderLine, Product
from members.models import Membership
from shequn_backend.events import send_on_commit
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory
from trust.models import ContentPost

pytestmark = pytest.mark.django_db
SECRET = "甲社群机密商品"
MEMBER_NAME = "甲社群会员小明"
MARKERS = (SECRET, MEMBER_NAME, "甲社群内部文章")


@pytest.fixture
def world():
    a = CommunityFactory(slug="a-club", name="甲社群")
    b = CommunityFactory(slug="b-club", name="乙社群")
    a_member = MembershipFactory(community=a, referral_code="AAAAAAAA", user__nickname=MEMBER_NAME)
    a_pending = MembershipFactory(community=a, status=Membership.Status.PENDING_APPROVAL)
    product = ProductFactory(community=a, title=SECRET)
    sku = SkuFactory(product=product, price=Decimal("50.00"))
    order = Order.objects.create(community=a, buyer=a_member.user, total=Decimal("50.00"))
    line = OrderLine.objects.create(
        order=order,
        sku=sku,
        product=product,
        title=SECRET,
        quantity=1,
        list_price=sku.price,
        unit_price=sku.price,
        line_total=sku.price,
    )
    after_sale = AfterSale.objects.create(
        order=order, type="refund_only", amount=sku.price, reason=SECRET, requested_by=a_member.user
    )
    AfterSaleLine.objects.create(after_sale=after_sale, line=line, quantity=1, amount=sku.price)
    post = ContentPost.objects.create(community=a, title="甲社群内部文章", published_at=order.created_at)
    notification = Notification.objects.create(
        user=a_member.user,
        community=a,
        kind="shipped",
        title=SECRET,
        body=SECRET,
        status="failed",
        available_at=order.created_at,
    )
    outsiders = {
        "member_of_b": MembershipFactory(community=b).user,
        "owner_of_b": b.owner,
        "operator_of_b": MembershipFactory(community=b, role=Membership.Role.OPERATOR).user,
    }
    for user in outsiders.values():
        user.is_staff = True
        user.save()
    return {
        "a": a,
        "b": b,
        "a_member": a_member,
        "a_pending": a_pending,
        "product": product,
        "order": order,
        "after_sale": after_sale,
        "post": post,
        "notification": notification,
        "outsiders": outsiders,
    }


OUTSIDERS = ["member_of_b", "owner_of_b", "operator_of_b"]

API_DENIED = [
    ("get", "/api/v1/communities/{a}/products/", (403,)),
    ("get", "/api/v1/communities/{a}/products/{product}/", (403, 404)),
    ("get", "/api/v1/orders/{order}/", (404,)),
    ("post", "/api/v1/orders/{order}/cancel/", (404,)),
    ("post", "/api/v1/orders/{order}/refund/", (404,)),
    ("get", "/api/v1/owner/communities/{a}/", (404,)),
    ("patch", "/api/v1/owner/communities/{a}/", (404,)),
    ("get", "/api/v1/owner/communities/{a}/members/", (404,)),
    ("post", "/api/v1/owner/communities/{a}/members/{pending}/approve/", (404,)),
    ("post", "/api/v1/owner/communities/{b}/members/{pending}/approve/", (404,)),  # crafted: A's member via B
    ("get", "/api/v1/owner/communities/{a}/products/", (404,)),
    ("post", "/api/v1/owner/communities/{a}/products/", (404,)),
    ("get", "/api/v1/owner/communities/{a}/posts/", (404,)),
    ("post", "/api/v1/owner/communities/{a}/posts/", (404,)),
    ("get", "/api/v1/owner/communities/{a}/dashboard/", (404,)),
    ("post", "/api/v1/owner/orders/{order}/refund/", (404,)),
    ("get", "/api/v1/orders/{order}/after-sales/", (404,)),
    ("post", "/api/v1/orders/{order}/after-sales/", (404,)),
    ("post", "/api/v1/orders/{order}/after-sales/{after_sale}/return/", (404,)),
    ("post", "/api/v1/orders/{order}/after-sales/{after_sale}/cancel/", (404,)),
    ("post", "/api/v1/owner/after-sales/{after_sale}/approve/", (404,)),
    ("post", "/api/v1/owner/after-sales/{after_sale}/reject/", (404,)),
    ("post", "/api/v1/owner/after-sales/{after_sale}/receive/", (404,)),
]


def fill(path: str, world) -> str:
    return path.format(
        a=world["a"].slug,
        b=world["b"].slug,
        product=world["product"].pk,
        order=world["order"].pk,
        pending=world["a_pending"].pk,
        after_sale=world["after_sale"].pk,
    )


@pytest.mark.parametrize("who", OUTSIDERS)
@pytest.mark.parametrize(("method", "path", "statuses"), API_DENIED)
def test_api_denies_outsiders_and_leaks_nothing(world, who, method, path, statuses):
    response = getattr(client_for(world["outsiders"][who]), method)(
        fill(path, world), {"title": "x", "reason": "x", "name": "hijacked"}, format="json"
    )
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    assert SECRET not in response.content.decode()
    world["order"].refresh_from_db()
    world["a_pending"].refresh_from_db()
    world["a"].refresh_from_db()
    assert world["order"].status == "pending_payment" and world["a_pending"].status == "pending_approval"
    assert world["a"].name == "甲社群"


@pytest.mark.parametrize("who", OUTSIDERS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/",
        "/api/v1/me/memberships/",
        "/api/v1/me/points/",
        "/api/v1/me/reminders/",
        "/api/v1/me/referrals/",
        "/api/v1/owner/communities/",
        "/api/v1/owner/communities/{b}/members/?status=active",
        "/api/v1/owner/communities/{b}/products/?search=" + SECRET,
        "/api/v1/communities/{b}/products/?search=" + SECRET,
    ],
)
def test_outsiders_own_lists_contain_nothing_of_a(world, who, path):
    response = client_for(world["outsiders"][who]).get(fill(path, world))
    assert response.status_code in (200, 403, 404), response.content[:300]
    text = response.content.decode()
    assert not [marker for marker in (*MARKERS, "a-club", "AAAAAAAA") if marker in text]


ADMIN_MODELS = [
    ("commerce", "product", "product"),
    ("commerce", "order", "order"),
    ("commerce", "notification", "notification"),
    ("commerce", "aftersale", "after_sale"),
    ("members", "membership", "a_member"),
    ("members", "community", "a"),
    ("trust", "contentpost", "post"),
    ("trust", "fitassessment", "product"),
]


@pytest.mark.parametrize("who", ["owner_of_b", "operator_of_b"])
@pytest.mark.parametrize(("app", "model", "key"), ADMIN_MODELS)
def test_admin_pages_of_another_owner_show_nothing_of_a(client, world, who, app, model, key):
    client.force_login(world["outsiders"][who])
    changelist = reverse(f"admin:{app}_{model}_changelist")
    for params in ({}, {"q": SECRET}, {"q": "甲社群"}, {"community__id__exact": world["a"].pk}):
        response = client.get(changelist, params)
        assert response.status_code in (200, 302, 403)
        page = response.content.decode().replace(f'value="{params.get("q")}"', "")  # the search box echoes q
        assert not [marker for marker in MARKERS if marker in page]
    change = client.get(reverse(f"admin:{app}_{model}_change", args=[world[key].pk]))
    assert change.status_code in (302, 403, 404)
    assert not [marker for marker in MARKERS if marker in change.content.decode()]


def test_a_plain_member_of_b_gets_no_admin_at_all(client, world):
    client.force_login(world["outsiders"]["member_of_b"])
    for app, model, _ in ADMIN_MODELS:
        assert client.get(reverse(f"admin:{app}_{model}_changelist")).status_code in (302, 403)


def test_control_a_s_own_owner_does_see_the_rows_the_matrix_hides(
    client, world, django_capture_on_commit_callbacks
):
    """Without this, an empty page everywhere would pass the matrix."""
    product = world["product"]
    with django_capture_on_commit_callbacks(execute=True):  # the listing committed: trust assesses it
        send_on_commit(
            product_listed, sender=Product, product_id=product.pk, community_id=product.community_id
        )
    owner = world["a"].owner
    assert (
        SECRET
        in client_for(owner).get(fill("/api/v1/owner/communities/{a}/products/", world)).content.decode()
    )
    assert (
        SECRET
        in client_for(world["a_member"].user).get(fill("/api/v1/orders/{order}/", world)).content.decode()
    )
    client.force_login(owner)
    pages = {
        model: client.get(reverse(f"admin:{app}_{model}_changelist")).content.decode()
        for app, model, _ in ADMIN_MODELS
    }
    assert SECRET in pages["product"] and SECRET in pages["fitassessment"]
    assert MEMBER_NAME in pages["order"] and MEMBER_NAME in pages["membership"]
    assert MEMBER_NAME in pages["notification"]
    assert "甲社群内部文章" in pages["contentpost"] and "甲社群" in pages["community"]


@pytest.fixture
def finance(world):
    from commerce.reports.roles import finance_user_grant
    from tests.members.factories import UserFactory

    user = UserFactory()
    finance_user_grant(user=user)
    return user


@pytest.mark.parametrize(("method", "path", "statuses"), API_DENIED)
def test_finance_staff_get_no_api_access_to_a(world, finance, method, path, statuses):
    response = getattr(client_for(finance), method)(fill(path, world), {"title": "x"}, format="json")
    assert response.status_code in statuses and SECRET not in response.content.decode()


@pytest.mark.parametrize(
    ("app", "model", "key"),
    [
        ("members", "membership", "a_member"),
        ("members", "community", "a"),
        ("commerce", "product", "product"),
        ("commerce", "notification", "notification"),
        ("trust", "contentpost", "post"),
        ("trust", "fitassessment", "product"),
    ],
)
def test_finance_staff_see_no_member_catalog_or_content_pages(client, world, finance, app, model, key):
    """Finance reads money (orders, payments, refunds) everywhere, read-only; nothing else."""
    client.force_login(finance)
    changelist = client.get(reverse(f"admin:{app}_{model}_changelist"))
    change = client.get(reverse(f"admin:{app}_{model}_change", args=[world[key].pk]))
    assert changelist.status_code in (302, 403) and change.status_code in (302, 403, 404)
    assert not [m for m in MARKERS if m in changelist.content.decode() + change.content.decode()]
