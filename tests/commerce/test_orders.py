"""Placing orders: frozen prices, stock reserved, idempotency, referral codes, cancel and hold expiry."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.models import Order, Payment, Sku
from commerce.services.orders import order_release_expired
from members.models import Membership
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import ORDERS_URL, body, place_order
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    community = CommunityFactory()
    product = ProductFactory(community=community)
    return {
        "community": community,
        "sku": SkuFactory(product=product, price=Decimal("99.00"), stock=10),
        "cheap": SkuFactory(product=product, name="简装", price=Decimal("10.50"), stock=5),
        "member": MembershipFactory(community=community).user,
    }


def test_order_reserves_stock_and_freezes_prices_and_starts_a_payment(shop, stripe):
    response = place_order(shop["member"], shop["community"], [(shop["sku"], 2), (shop["cheap"], 1)])

    assert response.status_code == 201, response.content
    data = body(response)
    assert data["status"] == "pending_payment" and data["kind"] == "goods"
    assert data["total"] == "208.50" and data["currency"] == "CNY"
    assert [
        (line["sku"], line["quantity"], line["unit_price"], line["line_total"]) for line in data["lines"]
    ] == [
        (shop["sku"].pk, 2, "99.00", "198.00"),
        (shop["cheap"].pk, 1, "10.50", "10.50"),
    ]
    assert data["payment"]["provider"] == "stripe" and data["payment"]["amount"] == "208.50"
    assert data["payment"]["client_secret"].startswith("pi_")
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 8
    assert Sku.objects.get(pk=shop["cheap"].pk).stock == 4
    order = Order.objects.get(pk=data["id"])
    assert order.hold_expires_at > timezone.now() + timedelta(minutes=29)


def test_the_same_idempotency_key_returns_the_same_order_and_reserves_nothing_more(shop, stripe):
    first = place_order(shop["member"], shop["community"], [(shop["sku"], 3)], key="order-abc")
    again = place_order(shop["member"], shop["community"], [(shop["sku"], 3)], key="order-abc")

    assert first.status_code == 201 and again.status_code == 201  # the first answer's status
    assert body(again) == body(first)
    assert Order.objects.count() == 1
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 7
    assert len(stripe.calls("POST", "/v1/payment_intents")) == 1


def test_the_same_key_for_a_different_order_is_refused(shop, stripe):
    place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="k1")

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 2)], key="k1")

    assert response.status_code == 409 and body(response)["error"]["code"] == "idempotency_key_reused"
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 9


def test_keys_are_per_buyer(shop, stripe):
    other = MembershipFactory(community=shop["community"]).user

    place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="same")
    response = place_order(other, shop["community"], [(shop["sku"], 1)], key="same")

    assert response.status_code == 201 and Order.objects.count() == 2


def test_short_stock_answers_409_out_of_stock_and_writes_nothing(shop, stripe):
    response = place_order(shop["member"], shop["community"], [(shop["cheap"], 1), (shop["sku"], 11)])

    assert response.status_code == 409
    assert body(response)["error"]["code"] == "out_of_stock"
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 10 and Sku.objects.get(pk=shop["cheap"].pk).stock == 5
    assert not Order.objects.exists() and not stripe.requests


def test_a_sku_named_twice_is_bought_once_with_the_summed_quantity(shop, stripe):
    response = place_order(shop["member"], shop["community"], [(shop["sku"], 2), (shop["sku"], 3)])

    assert response.status_code == 201
    assert [(line["quantity"], line["line_total"]) for line in body(response)["lines"]] == [(5, "495.00")]
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 5


def _post(user, data):
    return client_for(user).post(ORDERS_URL, data, format="json")


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([{"quantity": 0}], "lines[0].quantity"),
        ([{"quantity": -1}], "lines[0].quantity"),
        ([{"quantity": 100}], "lines[0].quantity"),
        ([{"quantity": 10**20}], "lines[0].quantity"),
        ([{"quantity": "abc"}], "lines[0].quantity"),
        ([{"quantity": 1.5}], "lines[0].quantity"),
        ([{"quantity": None}], "lines[0].quantity"),
        ([{"quantity": [1]}], "lines[0].quantity"),
        ([{"sku": "x"}], "lines[0].sku"),
        ([{"sku": -5}], "lines[0].sku"),
        ([{"sku": 10**30}], "lines[0].sku"),
        ([{"sku": 999_999_999}], "lines[0].sku"),
        ([{"quantity": 60}, {"quantity": 60}], "lines[0].quantity"),  # 2 x 60 of one SKU
        ([{}] * 21, "lines"),
        ([], "lines"),
    ],
)
def test_bad_lines_are_refused_with_400_json_and_nothing_is_written(shop, stripe, lines, field):
    data = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["sku"].pk, "quantity": 1, **x} for x in lines],
    }

    response = _post(shop["member"], data)

    assert response.status_code == 400, response.content
    assert body(response)["error"]["code"] == "validation_error"
    assert field in body(response)["error"]["fields"], body(response)
    assert not Order.objects.exists() and Sku.objects.get(pk=shop["sku"].pk).stock == 10


@pytest.mark.parametrize(
    "data",
    [
        {"lines": "not-a-list"},
        {"lines": [["sku", 1]]},
        {"lines": {"sku": 1}},
        {"community": None},
        {"community": "no such slug!"},
        {"referral_code": ["x"]},
    ],
)
def test_wrongly_typed_bodies_are_refused_with_400(shop, data):
    base = {"community": shop["community"].slug, "lines": [{"sku": shop["sku"].pk, "quantity": 1}]}

    response = _post(shop["member"], {**base, **data})

    assert response.status_code == 400, response.content
    assert body(response)["error"]["code"] == "validation_error"
    assert not Order.objects.exists()


@pytest.mark.parametrize("payload", ["[1, 2]", '"text"', "{not json", "null"])
def test_non_object_bodies_are_refused_with_400(shop, payload):
    response = client_for(shop["member"]).post(ORDERS_URL, payload, content_type="application/json")

    assert response.status_code == 400
    assert "error" in body(response)


def test_a_sku_of_another_community_is_refused_like_an_unknown_one(shop, stripe):
    foreign = SkuFactory(product=ProductFactory())

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1), (foreign, 1)])

    assert response.status_code == 400
    assert body(response)["error"]["fields"] == {
        "lines[1].sku": ["No such item on sale in this community."]
    } or ("lines[1].sku" in body(response)["error"]["fields"])
    assert Sku.objects.get(pk=foreign.pk).stock == 10 and not Order.objects.exists()


def test_hidden_off_sale_and_tier_only_skus_cannot_be_bought(shop, stripe):
    gold = TierFactory(community=shop["community"], level=3, points_threshold=1000)
    tier_only = SkuFactory(product=ProductFactory(community=shop["community"], min_tier=gold.level))
    off_sale = SkuFactory(product=shop["sku"].product, is_active=False)
    withdrawn = SkuFactory(product=ProductFactory(community=shop["community"], is_active=False))

    for sku in (tier_only, off_sale, withdrawn):
        response = place_order(shop["member"], shop["community"], [(sku, 1)])
        assert response.status_code == 400 and "lines[0].sku" in body(response)["error"]["fields"]
    assert not Order.objects.exists()


def test_goods_and_tickets_go_in_separate_orders(shop, stripe):
    ticket = SkuFactory(product=EventFactory(community=shop["community"]), price=Decimal("30.00"))

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1), (ticket, 1)])

    assert response.status_code == 400 and not Order.objects.exists()


def test_tickets_of_an_event_that_started_are_not_sold(shop, stripe):
    started = SkuFactory(product=EventFactory(community=shop["community"], starts_at=timezone.now()))

    response = place_order(shop["member"], shop["community"], [(started, 1)])

    assert response.status_code == 400 and body(response)["error"]["code"] == "event_started"


def test_only_active_members_may_order(shop, stripe):
    expired = MembershipFactory(
        community=shop["community"], expires_at=timezone.now() - timedelta(days=1)
    ).user
    outsider = MembershipFactory().user

    for user in (expired, outsider):
        response = place_order(user, shop["community"], [(shop["sku"], 1)])
        assert response.status_code == 403 and body(response)["error"]["code"] == "membership_required"
    assert (
        place_order(shop["member"], CommunityFactory.build(slug="nope"), [(shop["sku"], 1)]).status_code
        == 404
    )


def test_the_tier_price_is_what_the_order_charges(shop, stripe):
    tier = TierFactory(
        community=shop["community"], level=1, points_threshold=0, discount_percent=Decimal("15")
    )
    member = MembershipFactory(community=shop["community"], tier=tier).user

    data = body(place_order(member, shop["community"], [(shop["sku"], 3)]))

    assert data["lines"][0]["unit_price"] == "84.15" and data["total"] == "252.45"
    assert stripe.calls("POST", "/v1/payment_intents")[0]["params"]["amount"] == "25245"
    line = Order.objects.get(pk=data["id"]).lines.get()
    assert line.list_price == Decimal("99.00") and line.unit_price == Decimal("84.15")


def test_an_order_remembers_the_referrer_of_a_valid_code(shop, stripe):
    referrer = MembershipFactory(community=shop["community"])

    response = place_order(
        shop["member"], shop["community"], [(shop["sku"], 1)], referral_code=referrer.referral_code.lower()
    )

    assert response.status_code == 201
    assert Order.objects.get(pk=body(response)["id"]).referrer == referrer


@pytest.mark.parametrize(
    ("whose", "code"),
    [
        ("own", "self_referral"),
        ("other_community", "invalid_referral_code"),
        ("left", "invalid_referral_code"),
        ("unknown", "invalid_referral_code"),
    ],
)
def test_referral_codes_must_belong_to_another_active_member_of_the_community(shop, stripe, whose, code):
    codes = {
        "own": Membership.objects.get(user=shop["member"]).referral_code,
        "other_community": MembershipFactory().referral_code,
        "left": MembershipFactory(community=shop["community"], status=Membership.Status.LEFT).referral_code,
        "unknown": "ZZZZZZZZ",
    }

    response = place_order(shop["member"], shop["community"], [(shop["sku"], 1)], referral_code=codes[whose])

    assert response.status_code == 400 and body(response)["error"]["code"] == code
    assert not Order.objects.exists() and Sku.objects.get(pk=shop["sku"].pk).stock == 10


def test_free_tickets_are_paid_at_once_without_the_provider(shop, stripe):
    ticket = SkuFactory(product=EventFactory(community=shop["community"]), price=Decimal("0.00"), stock=5)

    response = place_order(shop["member"], shop["community"], [(ticket, 2)])

    assert response.status_code == 201
    assert body(response)["status"] == "paid" and body(response)["payment"] is None
    assert Sku.objects.get(pk=ticket.pk).stock == 3 and not stripe.requests


# --- Cancel and hold expiry ---------------------------------------------------------------------


def test_cancelling_an_unpaid_order_releases_its_stock_and_cancels_the_payment(
    shop, stripe, django_capture_on_commit_callbacks
):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 4)]))["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(shop["member"]).post(f"{ORDERS_URL}{order_id}/cancel/")

    assert response.status_code == 200 and body(response)["status"] == "cancelled"
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 10
    assert Payment.objects.get(order_id=order_id).status == Payment.Status.CANCELED
    intent = stripe.payment_intents[Payment.objects.get(order_id=order_id).provider_ref]
    assert intent["status"] == "canceled"
    again = client_for(shop["member"]).post(f"{ORDERS_URL}{order_id}/cancel/")
    assert again.status_code == 200 and Sku.objects.get(pk=shop["sku"].pk).stock == 10


def test_nobody_else_can_cancel_or_see_an_order(shop, stripe):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    other = MembershipFactory(community=shop["community"]).user

    assert client_for(other).post(f"{ORDERS_URL}{order_id}/cancel/").status_code == 404
    assert client_for(other).get(f"{ORDERS_URL}{order_id}/").status_code == 404
    assert client_for(shop["community"].owner).get(f"{ORDERS_URL}{order_id}/").status_code == 404
    assert body(client_for(other).get(ORDERS_URL))["count"] == 0
    assert Order.objects.get(pk=order_id).status == Order.Status.PENDING_PAYMENT


def test_expired_holds_are_released_once_and_live_ones_are_kept(shop, stripe):
    old = body(place_order(shop["member"], shop["community"], [(shop["sku"], 2)]))["id"]
    Order.objects.filter(pk=old).update(hold_expires_at=timezone.now() - timedelta(minutes=1))
    live = body(place_order(shop["member"], shop["community"], [(shop["sku"], 3)]))["id"]

    assert order_release_expired(now=timezone.now()) == 1
    assert order_release_expired(now=timezone.now()) == 0

    assert Order.objects.get(pk=old).status == Order.Status.CANCELLED
    assert Order.objects.get(pk=live).status == Order.Status.PENDING_PAYMENT
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 7
    later = timezone.now() + timedelta(minutes=31)
    assert order_release_expired(now=later) == 1
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 10
    expired = AuditEntry.objects.filter(action="order.cancelled").order_by("target_id")
    assert [(e.target_id, e.actor_label) for e in expired] == sorted(
        [(str(old), "job:release_stock_holds"), (str(live), "job:release_stock_holds")]
    )
    assert expired[0].changes["status"] == ["pending_payment", "cancelled"]


def test_the_hold_length_is_a_setting(shop, stripe, settings):
    settings.ORDER_HOLD_MINUTES = 5

    order = Order.objects.get(
        pk=body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    )

    assert timedelta(minutes=4) < order.hold_expires_at - order.created_at <= timedelta(minutes=5)


def test_the_release_task_wraps_the_service(shop, stripe):
    from commerce.tasks import release_stock_holds_task

    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 2)]))["id"]
    Order.objects.filter(pk=order_id).update(hold_expires_at=timezone.now() - timedelta(seconds=1))

    assert release_stock_holds_task.delay().get() == 1
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 10


# --- The buyer's order list ---------------------------------------------------------------------


def test_members_see_only_their_own_orders(shop, stripe):
    mine = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    other = MembershipFactory(community=shop["community"]).user
    theirs = body(place_order(other, shop["community"], [(shop["cheap"], 1)]))["id"]

    listed = body(client_for(shop["member"]).get(ORDERS_URL))

    assert [row["id"] for row in listed["results"]] == [mine]
    assert client_for(shop["member"]).get(f"{ORDERS_URL}{theirs}/").status_code == 404
    assert client_for(shop["member"]).get(f"{ORDERS_URL}{mine}/").status_code == 200


@pytest.mark.parametrize("page_size", [2, 25])
def test_order_list_runs_a_constant_number_of_queries(shop, page_size, django_assert_num_queries):
    from commerce.models import OrderLine

    for n in range(30):
        order = Order.objects.create(
            community=shop["community"],
            buyer=shop["member"],
            total=Decimal("109.50"),
            hold_expires_at=timezone.now(),
        )
        OrderLine.objects.create(
            order=order,
            sku=shop["sku"],
            product=shop["sku"].product,
            title=f"x{n}",
            quantity=1,
            list_price=Decimal("99.00"),
            unit_price=Decimal("99.00"),
            line_total=Decimal("99.00"),
        )
        OrderLine.objects.create(
            order=order,
            sku=shop["cheap"],
            product=shop["cheap"].product,
            title=f"y{n}",
            quantity=1,
            list_price=Decimal("10.50"),
            unit_price=Decimal("10.50"),
            line_total=Decimal("10.50"),
        )
        Payment.objects.create(order=order, provider="stripe", amount=order.total, provider_ref=f"pi_{n}")
    client = client_for(shop["member"])
    client.get(ORDERS_URL)

    # token + user; the orders with their count, community, coupon, lines, payment and shipments in
    # one; after-sales (and their lines) only when some order of the page has any
    with django_assert_num_queries(2):
        response = client.get(ORDERS_URL, {"page_size": page_size})

    assert len(body(response)["results"]) == page_size


def test_placing_and_cancelling_are_recorded_with_the_buyer_as_actor(shop, stripe):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 2)]))["id"]

    client_for(shop["member"]).post(f"{ORDERS_URL}{order_id}/cancel/")
    client_for(shop["member"]).post(f"{ORDERS_URL}{order_id}/cancel/")  # a no-op: not recorded again

    entries = list(AuditEntry.objects.filter(target_id=str(order_id)).order_by("pk"))
    assert [(e.action, e.actor_label, e.actor_id) for e in entries] == [
        ("order.created", f"user:{shop['member'].pk}", shop["member"].pk),
        ("order.cancelled", f"user:{shop['member'].pk}", shop["member"].pk),
    ]
    assert (
        entries[0].changes["status"] == [None, "pending_payment"]
        and entries[0].changes["total"][1] == "198.00"
    )
    assert entries[1].changes["status"] == ["pending_payment", "cancelled"]
    assert all(e.community_id == shop["community"].pk for e in entries)


# --- The answer to a new order ------------------------------------------------------------------


def _placed_and_read_back(user, payload: dict) -> tuple[bytes, bytes]:
    client = client_for(user)
    placed = client.post(ORDERS_URL, payload, format="json")
    assert placed.status_code == 201, placed.content
    return placed.content, client.get(f"{ORDERS_URL}{body(placed)['id']}/").content


def test_the_answer_to_a_new_order_is_the_order_as_it_reads_back(shop, stripe):
    """Built from what the checkout wrote, without a read: byte for byte what GET /orders/{id}/ answers."""
    from commerce.models import Coupon, Product
    from commerce.services.coupons import coupon_create, coupon_issue
    from members.services.addresses import address_create

    community = shop["community"]
    tier = TierFactory(community=community, level=1, points_threshold=0, discount_percent=Decimal("15"))
    membership = MembershipFactory(community=community, tier=tier)
    shipped = SkuFactory(
        product=ProductFactory(community=community, delivery_kind=Product.Delivery.SHIPPED),
        price=Decimal("33.33"),
        stock=9,
    )
    coupon = coupon_create(
        actor=community.owner,
        community=community,
        name="满100减30",
        kind=Coupon.Kind.AMOUNT,
        amount_off=Decimal("30.00"),
        min_spend=Decimal("100.00"),
        valid_until=timezone.now() + timedelta(days=30),
    )
    [grant] = coupon_issue(
        actor=community.owner, coupon=coupon, membership_ids=[membership.pk], issue_key="answer"
    )
    address = address_create(
        actor=membership.user,
        user=membership.user,
        name="张三",
        phone="13800138000",
        province="浙江省",
        city="杭州市",
        district="",
        detail="文三路 1 号",
    )
    referrer = MembershipFactory(community=community)
    payload = {
        "community": community.slug,
        "lines": [{"sku": shop["cheap"].pk, "quantity": 2}, {"sku": shipped.pk, "quantity": 3}],
        "coupon": grant.pk,
        "address": address.pk,
        "delivery": "express",
        "referral_code": referrer.referral_code,
    }

    placed, read_back = _placed_and_read_back(membership.user, payload)

    assert placed == read_back
    data = json.loads(placed)
    assert data["coupon"]["id"] == grant.pk and data["discount"] == "30.00" and data["address"]["city"]
    assert [line["unit_price"] for line in data["lines"]] == ["8.93", "28.33"]
    assert data["payment"]["client_secret"] and data["shipments"] == [] and data["after_sales"] == []


def test_the_answer_to_free_tickets_is_the_order_as_it_reads_back(shop, stripe):
    ticket = SkuFactory(product=EventFactory(community=shop["community"]), price=Decimal("0.00"), stock=5)
    payload = {"community": shop["community"].slug, "lines": [{"sku": ticket.pk, "quantity": 2}]}

    placed, read_back = _placed_and_read_back(shop["member"], payload)

    assert placed == read_back and json.loads(placed)["status"] == "paid"


def test_the_answer_when_a_webhook_recorded_the_payment_first(shop, stripe, monkeypatch):
    """The provider's answer lands on an attempt somebody else changed: recorded under the order's lock."""
    from commerce.services import payments

    real = payments._create_at_provider

    def paid_meanwhile(**kwargs):
        result = real(**kwargs)
        Payment.objects.filter(pk=kwargs["payment"].pk).update(provider_ref=result.ref)
        return result

    monkeypatch.setattr(payments, "_create_at_provider", paid_meanwhile)
    payload = {"community": shop["community"].slug, "lines": [{"sku": shop["sku"].pk, "quantity": 1}]}

    placed, read_back = _placed_and_read_back(shop["member"], payload)

    assert placed == read_back
    payment = Payment.objects.get(order_id=json.loads(placed)["id"])
    assert payment.status == Payment.Status.PENDING and payment.client_data["client_secret"]
