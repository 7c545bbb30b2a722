"""Query counts of the write paths, pinned at two sizes (like the list endpoints).

Order placement grows by one UPDATE per SKU taken (stock moves by ``F()``
deltas, SKU by SKU in primary-key order, so that no update is lost);
everything else is the same for one line or five. The numbers count what
the request runs; the events sent on commit (trust's reactions) run after
the request's transaction and are not counted here.
"""

from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from commerce.models import Order, OrderLine, Payment, Sku
from members.models import Community
from shequn_backend.sql import pks_allocate
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import ORDERS_URL, WEBHOOK_URL, body, deliver, intent_of
from tests.commerce.stripe_server import sign
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

# The token, the membership (community, tier), the SKUs; then one transaction: the order, its lines,
# the audit row, the payment attempt, one stock UPDATE per SKU; after the provider, one UPDATE of
# the attempt. The answer is built from what was written (no read back).
PLACE_ORDER = {1: 11, 5: 15}
# Outside a test's transaction (as served): the token, the membership, the SKUs, the new rows' keys,
# then one message for every row and every SKU's stock (its own transaction), and the attempt's UPDATE.
PLACE_ORDER_SERVED = 6
PLACE_ORDER_WITH_KEY = 11  # whether the Idempotency-Key was used is read with the membership
REPLAYED_ORDER = 10  # the key's order, its live payment (under the order's lock), the order read back
REFUSED_RACER = 3  # the token, the membership, the SKUs: visibly sold out, no transaction
PAYMENT_NOTIFICATION = 43  # audit rows: the payment, the points awarded, the commissions created
OWNER_REFUND = (
    38  # audit rows: the refund, the points taken back, the commissions reversed; after-sales settled
)
PAID_JOIN = 27


@pytest.fixture
def shop():
    """Five SKUs, points and a two-level referral chain: the payment does all it can."""
    community = CommunityFactory(
        points_per_yuan=Decimal("1"),
        referral_level1_percent=Decimal("10"),
        referral_level2_percent=Decimal("5"),
    )
    product = ProductFactory(community=community)
    skus = [SkuFactory(product=product, name=f"款{n}", price=Decimal("10.00"), stock=50) for n in range(5)]
    grand = MembershipFactory(community=community)
    parent = MembershipFactory(community=community, referred_by=grand)
    member = MembershipFactory(community=community, referred_by=parent)
    return {"community": community, "skus": skus, "member": member, "buyer": client_for(member.user)}


def order_body(shop, size: int) -> dict:
    lines = [{"sku": sku.pk, "quantity": 1} for sku in shop["skus"][:size]]
    return {"community": shop["community"].slug, "lines": lines}


def placed(shop, size: int) -> int:
    return body(shop["buyer"].post(ORDERS_URL, order_body(shop, size), format="json"))["id"]


def signed_success(stripe, order_id: int) -> tuple[str, str]:
    payload = stripe.event("payment_intent.succeeded", stripe.succeed(intent_of(order_id)))
    return payload, sign(payload, settings.STRIPE_WEBHOOK_SECRET)


@pytest.mark.parametrize("size", [1, 5])
def test_placing_an_order(shop, stripe, size, django_assert_num_queries):
    with django_assert_num_queries(PLACE_ORDER[size]):
        response = shop["buyer"].post(ORDERS_URL, order_body(shop, size), format="json")

    assert response.status_code == 201, response.content


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("size", [1, 5])
def test_placing_an_order_as_served_takes_the_same_six_queries_for_one_line_or_five(
    shop, stripe, size, django_assert_num_queries
):
    with django_assert_num_queries(PLACE_ORDER_SERVED) as captured:
        response = shop["buyer"].post(ORDERS_URL, order_body(shop, size), format="json")

    assert response.status_code == 201, response.content
    (message,) = [q["sql"] for q in captured.captured_queries if "INSERT" in q["sql"]]
    assert message.count("UPDATE commerce_sku") == size and len(body(response)["lines"]) == size


def test_placing_an_order_with_an_idempotency_key_and_replaying_it(shop, stripe, django_assert_num_queries):
    with django_assert_num_queries(PLACE_ORDER_WITH_KEY):
        first = shop["buyer"].post(ORDERS_URL, order_body(shop, 1), format="json", HTTP_IDEMPOTENCY_KEY="k1")
    with django_assert_num_queries(REPLAYED_ORDER):
        again = shop["buyer"].post(ORDERS_URL, order_body(shop, 1), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == again.status_code == 201 and first.content == again.content


@pytest.mark.parametrize("key", [None, "racer-1"])
def test_a_refused_racer(shop, stripe, key, django_assert_num_queries):
    Sku.objects.filter(pk=shop["skus"][0].pk).update(stock=0)
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}

    with django_assert_num_queries(REFUSED_RACER):
        response = shop["buyer"].post(ORDERS_URL, order_body(shop, 1), format="json", **headers)

    assert response.status_code == 409 and body(response)["error"]["code"] == "out_of_stock"


@pytest.mark.parametrize("size", [1, 5])
def test_the_payment_notification(shop, stripe, size, django_assert_num_queries):
    payload, signature = signed_success(stripe, placed(shop, size))
    client = APIClient()

    with django_assert_num_queries(PAYMENT_NOTIFICATION):
        response = client.post(
            WEBHOOK_URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
        )

    assert response.status_code == 200 and body(response)["outcome"] == "applied"


@pytest.mark.parametrize("size", [1, 5])
def test_an_owner_refund(shop, stripe, size, django_assert_num_queries):
    order_id = placed(shop, size)
    deliver(stripe, "payment_intent.succeeded", stripe.succeed(intent_of(order_id)))
    owner = client_for(shop["community"].owner)
    url = reverse("owner-order-refund", args=[order_id])

    with django_assert_num_queries(OWNER_REFUND):
        response = owner.post(url, {"reason": "质量问题"}, format="json")

    assert response.status_code == 201 and body(response)["order_status"] == "refunded"


def test_a_paid_join(stripe, django_assert_num_queries):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community)
    client = client_for(UserFactory())

    with django_assert_num_queries(PAID_JOIN):
        response = client.post(
            f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk}, format="json"
        )

    assert response.status_code == 201 and body(response)["payment"]["amount"] == "199.00"


def test_every_hot_read_is_planned_once_on_its_connection(shop, stripe, settings):
    """PostgreSQL replans a prepared statement each call while its generic plan looks dearer than
    the custom ones (an array parameter's did, so did a bound ``generate_series`` count): after
    the first five calls, every hot read of the served paths must run its generic plan."""
    settings.PUBLIC_CACHE_SECONDS = 0
    slug, skus = shop["community"].slug, shop["skus"]
    product = skus[0].product
    Sku.objects.bulk_create(Sku(product=product, name=f"{n}", price=1, stock=1) for n in range(1000))
    with connection.cursor() as cursor:  # a catalog of realistic size, as the planner sees it
        cursor.execute("ANALYZE commerce_sku")
    Sku.objects.filter(pk=skus[4].pk).update(stock=0)
    anonymous = APIClient()
    for _ in range(7):
        placed(shop, 2)
        refused = {"community": slug, "lines": [{"sku": skus[4].pk, "quantity": 1}]}
        assert shop["buyer"].post(ORDERS_URL, refused, format="json").status_code == 409
        assert shop["buyer"].get(f"/api/v1/communities/{slug}/products/").status_code == 200
        assert shop["buyer"].get(ORDERS_URL).status_code == 200
        assert anonymous.get("/api/v1/communities/").status_code == 200
        assert anonymous.get(f"/api/v1/communities/{slug}/").status_code == 200
        pks_allocate((Order, 1), (OrderLine, 2), (Payment, 0))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE generic_plans + custom_plans >= 7"
        )
        statements = cursor.fetchall()
    hot = ["knox_authtoken", "FROM commerce_sku s", "nextval(", "c.member_count", "o.payment_status"]
    assert all(any(text in sql for sql, *_plans in statements) for text in hot), statements
    replanned = [(sql[:80], custom) for sql, generic, custom in statements if generic == 0 or custom > 5]
    assert replanned == []
