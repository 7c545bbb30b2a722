"""With the broker and the cache unreachable, every write of the contract still answers what it did.

The broker URL points at a closed loopback port with eager execution off, and
the cache at a closed Redis port (django-redis ignoring its errors), so every
task queued and every cache write after commit fails. Transactions really
commit here (``transaction=True``): on-commit side effects run inside the
request, as in production. Each write must answer its normal 2xx, leave the
right rows, and a client's retry must do nothing twice.
"""

import socket
from decimal import Decimal

import pytest
from django.core.cache import caches

from commerce.models import Order, Refund, Sku
from members.models import Community, Membership, PointsEntry, User
from shequn_backend.celery import app as celery_app
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, deliver, intent_of, pay, place_order, refund_as_owner
from tests.commerce.stripe_server import STRIPE_TOLERATE, FakeStripe
from tests.conftest import client_for
from tests.members.factories import (
    PASSWORD,
    CommunityFactory,
    EntryPlanFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def closed_port() -> int:
    """A loopback port nobody listens on (bound once, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _reset_broker_pools() -> None:
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture(autouse=True)
def outage(settings):
    """Broker and cache both down for the whole test."""
    settings.DJANGO_REDIS_IGNORE_EXCEPTIONS = True
    settings.DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed_port()}/1",
        }
    }
    # The app reads Django's settings under the CELERY_ namespace: override them there.
    saved = {key: celery_app.conf[key] for key in ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")}
    celery_app.conf.update(
        CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0", CELERY_TASK_ALWAYS_EAGER=False
    )
    assert not celery_app.conf.task_always_eager
    _reset_broker_pools()
    yield
    celery_app.conf.update(saved)
    _reset_broker_pools()
    caches["default"].close()


@pytest.fixture
def stripe(settings):
    server = FakeStripe(tolerate=STRIPE_TOLERATE)  # see STRIPE_TOLERATE: a known production gap
    settings.STRIPE_API_BASE = server.start()
    settings.STRIPE_SECRET_KEY = "sk_test_local"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_local"
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    yield server
    server.stop()


@pytest.fixture
def shop():
    """A free community with one product on sale and an active member."""
    community = CommunityFactory(points_per_yuan=Decimal("1"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("30.00"), stock=10)
    member = MembershipFactory(community=community)
    return {"community": community, "sku": sku, "member": member, "owner": community.owner}


@pytest.fixture
def paid_club():
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=Decimal("199.00"), refund_window_days=3)
    return {"community": community, "plan": plan}


def join(user, community, **data):
    return client_for(user).post(f"/api/v1/communities/{community.slug}/join/", data, format="json")


# --- Accounts and profile ------------------------------------------------------------------------


def test_register_and_login_answer_with_a_token():
    response = client_for(UserFactory()).post(
        "/api/v1/auth/register/", {"username": "outage", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    assert User.objects.filter(username="outage").count() == 1

    response = client_for(UserFactory()).post(
        "/api/v1/auth/login/", {"username": "outage", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    assert body(response)["token"]


def test_profile_update_is_saved():
    user = UserFactory()

    response = client_for(user).patch(
        "/api/v1/me/", {"nickname": "小王", "interests": ["理财"]}, format="json"
    )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.nickname == "小王" and user.interest_tags == ["理财"]


# --- Communities and membership ------------------------------------------------------------------


def test_joining_a_free_community_activates_the_membership(shop):
    user = UserFactory()

    response = join(user, shop["community"])

    assert response.status_code == 201, response.content
    assert Membership.objects.get(user=user, community=shop["community"]).status == Membership.Status.ACTIVE


def test_joining_a_paid_community_returns_its_payment_once(paid_club, stripe):
    user = UserFactory()

    first = join(user, paid_club["community"], plan=paid_club["plan"].pk)
    again = join(user, paid_club["community"], plan=paid_club["plan"].pk)

    assert first.status_code == 201, first.content
    assert again.status_code == 201, again.content
    assert body(first)["payment"]["client_secret"] == body(again)["payment"]["client_secret"]
    assert Order.objects.filter(buyer=user).count() == 1
    assert len(stripe.calls("POST", "/v1/payment_intents")) == 1


def test_owner_creates_and_changes_a_community():
    owner = UserFactory()
    client = client_for(owner)

    created = client.post(
        "/api/v1/owner/communities/",
        {"slug": "outage-club", "name": "停电俱乐部", "attributes": ["理财"]},
        format="json",
    )
    changed = client.patch(
        "/api/v1/owner/communities/outage-club/",
        {"name": "来电俱乐部", "attributes": ["读书"]},
        format="json",
    )

    assert created.status_code == 201, created.content
    assert changed.status_code == 200, changed.content
    assert Community.objects.get(slug="outage-club").name == "来电俱乐部"


def test_owner_lists_a_product(shop):
    response = client_for(shop["owner"]).post(
        f"/api/v1/owner/communities/{shop['community'].slug}/products/",
        {
            "title": "停电应急灯",
            "description": "家中常备",
            "category": "图书/投资理财",
            "tags": ["应急"],
            "kind": "goods",
            "skus": [{"name": "标准", "price": "19.90", "stock": 5}],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert shop["community"].products.filter(title="停电应急灯").count() == 1


def test_owner_approves_a_pending_member():
    community = CommunityFactory(entry_type=Community.EntryType.APPROVAL)
    pending = MembershipFactory(community=community, status=Membership.Status.PENDING_APPROVAL)

    response = client_for(community.owner).post(
        f"/api/v1/owner/communities/{community.slug}/members/{pending.pk}/approve/"
    )

    assert response.status_code == 200, response.content
    assert Membership.objects.get(pk=pending.pk).status == Membership.Status.ACTIVE


def test_owner_publishes_a_content_post(shop):
    response = client_for(shop["owner"]).post(
        f"/api/v1/owner/communities/{shop['community'].slug}/posts/",
        {"title": "理财入门第一课", "tags": ["理财"]},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert shop["community"].posts.count() == 1


# --- Orders, payments, refunds -------------------------------------------------------------------


def test_placing_an_order_twice_with_one_key_reserves_once(shop, stripe):
    lines = [(shop["sku"], 2)]

    first = place_order(shop["member"].user, shop["community"], lines, key="k-1")
    again = place_order(shop["member"].user, shop["community"], lines, key="k-1")

    assert first.status_code == 201, first.content
    assert again.status_code == 201, again.content  # a replay answers as the first did
    assert body(first)["id"] == body(again)["id"]
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 8


def test_cancelling_an_order_releases_its_stock_once(shop, stripe):
    order_id = body(place_order(shop["member"].user, shop["community"], [(shop["sku"], 3)]))["id"]
    client = client_for(shop["member"].user)

    first = client.post(f"/api/v1/orders/{order_id}/cancel/")
    again = client.post(f"/api/v1/orders/{order_id}/cancel/")

    assert first.status_code == 200, first.content
    assert again.status_code == 200, again.content
    assert Order.objects.get(pk=order_id).status == Order.Status.CANCELLED
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 10


def test_a_payment_notification_is_applied_once(shop, stripe):
    order_id = body(place_order(shop["member"].user, shop["community"], [(shop["sku"], 1)]))["id"]
    intent = stripe.succeed(intent_of(order_id))

    first = deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_outage")
    again = deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_outage")

    assert first.status_code == 200, first.content
    assert again.status_code == 200, again.content
    assert Order.objects.get(pk=order_id).status == Order.Status.PAID
    assert PointsEntry.objects.filter(membership=shop["member"]).count() == 1


def test_an_owner_refund_retried_with_its_key_pays_out_once(shop, stripe):
    order_id = body(place_order(shop["member"].user, shop["community"], [(shop["sku"], 2)]))["id"]
    pay(stripe, order_id)

    first = refund_as_owner(shop["owner"], order_id, amount="20.00", key="refund-1")
    again = refund_as_owner(shop["owner"], order_id, amount="20.00", key="refund-1")

    assert first.status_code == 201, first.content
    assert again.status_code == 201, again.content
    assert body(first)["id"] == body(again)["id"]
    assert Refund.objects.filter(order_id=order_id).count() == 1
    assert len(stripe.calls("POST", "/v1/refunds")) == 1
    assert Order.objects.get(pk=order_id).amount_refunded == Decimal("20.00")


def test_a_full_refund_retried_without_a_key_pays_out_once(shop, stripe):
    order_id = body(place_order(shop["member"].user, shop["community"], [(shop["sku"], 2)]))["id"]
    pay(stripe, order_id)

    first = refund_as_owner(shop["owner"], order_id)
    again = refund_as_owner(shop["owner"], order_id)

    assert first.status_code == 201, first.content
    assert again.status_code == 409 and body(again)["error"]["code"] == "order_not_refundable"
    assert len(stripe.calls("POST", "/v1/refunds")) == 1
    assert Order.objects.get(pk=order_id).status == Order.Status.REFUNDED


def test_a_member_refunds_an_entry_fee_once(paid_club, stripe):
    user = UserFactory()
    order_id = body(join(user, paid_club["community"], plan=paid_club["plan"].pk))["payment"]["order_id"]
    pay(stripe, order_id)
    client = client_for(user)

    first = client.post(f"/api/v1/orders/{order_id}/refund/")
    again = client.post(f"/api/v1/orders/{order_id}/refund/")

    assert first.status_code == 201, first.content
    assert again.status_code == 201, again.content
    assert body(first)["id"] == body(again)["id"]
    assert len(stripe.calls("POST", "/v1/refunds")) == 1
    assert Order.objects.get(pk=order_id).status == Order.Status.REFUNDED
    membership = Membership.objects.get(user=user, community=paid_club["community"])
    assert membership.status == Membership.Status.EXPIRED
