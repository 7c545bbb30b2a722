"""Addresses copied onto orders, shipments in parts, receipt by the member or automatically."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order, OrderLine, Product, Shipment
from commerce.services.orders import order_advance
from commerce.services.shipments import LineQuantity, shipment_create, shipments_auto_confirm
from members.services.addresses import address_create
from shequn_backend.errors import ApplicationError
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import ORDERS_URL, body, pay, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db
ADDRESS = {
    "name": "张三",
    "phone": "13800138000",
    "province": "浙江省",
    "city": "杭州市",
    "district": "西湖区",
    "detail": "文三路 1 号",
}


@pytest.fixture
def shop():
    community = CommunityFactory()
    member = MembershipFactory(community=community)
    return {
        "community": community,
        "owner": community.owner,
        "user": member.user,
        "berries": SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=50),
        "jam": SkuFactory(product=ProductFactory(community=community), price=Decimal("5.00"), stock=50),
        "course": SkuFactory(
            product=ProductFactory(community=community, delivery_kind=Product.Delivery.VIRTUAL),
            price=Decimal("20.00"),
            stock=50,
        ),
        "address": address_create(actor=member.user, user=member.user, **ADDRESS),
    }


def order(shop, lines, **extra):
    payload = {"community": shop["community"].slug, "lines": [{"sku": s.pk, "quantity": q} for s, q in lines]}
    return client_for(shop["user"]).post(ORDERS_URL, payload | extra, format="json")


def paid_express(shop, stripe, lines=None):
    response = order(shop, lines or [(shop["berries"], 3), (shop["jam"], 2)], address=shop["address"].pk)
    assert response.status_code == 201, response.content
    return pay(stripe, body(response)["id"])


def ship(owner, order_id, **payload):
    return client_for(owner).post(f"/api/v1/owner/orders/{order_id}/shipments/", payload, format="json")


def line_ids(order_obj) -> list[int]:
    return list(order_obj.lines.order_by("pk").values_list("pk", flat=True))


# --- Placing with an address -------------------------------------------------------------------


def test_an_express_order_keeps_a_frozen_copy_of_the_address(shop, stripe):
    response = order(shop, [(shop["berries"], 1)], address=shop["address"].pk, delivery="express")
    shop["address"].detail = "改了"
    shop["address"].save()

    data = body(response)
    assert response.status_code == 201 and data["delivery"] == "express"
    assert data["address"] == ADDRESS and Order.objects.get(pk=data["id"]).address["detail"] == "文三路 1 号"
    assert data["shipments"] == [] and data["fulfilment_status"] == "unfulfilled"


def test_express_without_an_address_is_refused(shop, stripe):
    response = order(shop, [(shop["berries"], 1)], delivery="express")

    assert response.status_code == 400 and "address" in body(response)["error"]["fields"]
    assert not Order.objects.exists()


def test_another_members_address_is_refused(shop, stripe):
    stranger = MembershipFactory(community=shop["community"]).user
    theirs = address_create(actor=stranger, user=stranger, **ADDRESS)

    response = order(shop, [(shop["berries"], 1)], address=theirs.pk)

    assert response.status_code == 400 and "address" in body(response)["error"]["fields"]


def test_without_an_address_goods_are_picked_up_and_virtual_goods_need_no_delivery(shop, stripe):
    pickup = body(order(shop, [(shop["berries"], 1)]))
    virtual = body(order(shop, [(shop["course"], 1)], address=shop["address"].pk))

    assert pickup["delivery"] == "pickup" and pickup["address"] is None
    assert virtual["delivery"] == "" and virtual["address"] is None


def test_products_say_how_they_are_delivered(shop):
    event = EventFactory(community=shop["community"])
    assert shop["berries"].product.delivery == "shipped" and shop["course"].product.delivery == "virtual"
    assert event.delivery == "ticket"


# --- Shipping ------------------------------------------------------------------------------------


def test_shipping_everything_at_once_makes_the_order_shipped(shop, stripe):
    paid = paid_express(shop, stripe)

    response = ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF1234567890")

    assert response.status_code == 201, response.content
    shipment = body(response)
    assert shipment["carrier"] == "SF" and shipment["tracking_no"] == "SF1234567890"
    ids = line_ids(paid)
    assert shipment["lines"] == [{"line": ids[0], "quantity": 3}, {"line": ids[1], "quantity": 2}]
    data = body(client_for(shop["user"]).get(f"/api/v1/orders/{paid.pk}/"))
    assert data["fulfilment_status"] == "shipped" and data["status"] == "fulfilled"
    assert [s["id"] for s in data["shipments"]] == [shipment["id"]]


def test_shipping_in_parts_never_ships_more_than_bought(shop, stripe):
    paid = paid_express(shop, stripe)
    berries, jam = line_ids(paid)

    first = ship(
        shop["owner"], paid.pk, carrier="ZTO", tracking_no="ZT0001", lines=[{"line": berries, "quantity": 2}]
    )
    too_many = ship(
        shop["owner"], paid.pk, carrier="ZTO", tracking_no="ZT0002", lines=[{"line": berries, "quantity": 2}]
    )

    assert first.status_code == 201 and Order.objects.get(pk=paid.pk).fulfilment_status == "partially_shipped"
    assert too_many.status_code == 400 and "lines[0].quantity" in body(too_many)["error"]["fields"]
    rest = ship(shop["owner"], paid.pk, carrier="YTO", tracking_no="YT0003")  # all that is left
    assert body(rest)["lines"] == [{"line": berries, "quantity": 1}, {"line": jam, "quantity": 2}]
    assert Order.objects.get(pk=paid.pk).fulfilment_status == "shipped"
    nothing = ship(shop["owner"], paid.pk, carrier="YTO", tracking_no="YT0004")
    assert nothing.status_code == 409 and body(nothing)["error"]["code"] == "nothing_to_ship"
    assert list(OrderLine.objects.filter(order=paid).values_list("quantity_shipped", flat=True)) == [3, 2]


def test_a_partial_refund_then_shipping_the_rest(shop, stripe):
    paid = paid_express(shop, stripe)
    assert refund_as_owner(shop["owner"], paid.pk, amount="10.00").status_code == 201

    response = ship(shop["owner"], paid.pk, carrier="JTSD", tracking_no="JT0001")

    assert response.status_code == 201
    shipped = Order.objects.get(pk=paid.pk)
    assert shipped.payment_status == "partially_refunded" and shipped.fulfilment_status == "shipped"
    assert shipped.status == "partially_refunded" and shipped.amount_refunded == Decimal("10.00")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"carrier": "顺丰", "tracking_no": "SF1"}, "carrier"),
        ({"carrier": "SF", "tracking_no": "x"}, "tracking_no"),
        (
            {"carrier": "SF", "tracking_no": "SF1234", "lines": [{"line": 999999, "quantity": 1}]},
            "lines[0].line",
        ),
        (
            {"carrier": "SF", "tracking_no": "SF1234", "lines": [{"line": 1, "quantity": 0}]},
            "lines[0].quantity",
        ),
        ({"tracking_no": "SF1234"}, "carrier"),
    ],
)
def test_bad_shipments_are_refused(shop, stripe, payload, field):
    paid = paid_express(shop, stripe)

    response = ship(shop["owner"], paid.pk, **payload)

    assert response.status_code == 400 and field in body(response)["error"]["fields"], response.content
    assert not Shipment.objects.exists()


def test_only_paid_express_orders_ship_and_only_by_their_managers(shop, stripe):
    unpaid = body(order(shop, [(shop["berries"], 1)], address=shop["address"].pk))["id"]
    pickup = pay(stripe, body(order(shop, [(shop["berries"], 1)]))["id"])
    paid = paid_express(shop, stripe)
    outsider = CommunityFactory().owner

    assert (
        body(ship(shop["owner"], unpaid, carrier="SF", tracking_no="SF0001"))["error"]["code"]
        == "invalid_status"
    )
    assert (
        body(ship(shop["owner"], pickup.pk, carrier="SF", tracking_no="SF0001"))["error"]["code"]
        == "not_shippable"
    )
    assert ship(outsider, paid.pk, carrier="SF", tracking_no="SF0001").status_code == 404
    assert ship(shop["user"], paid.pk, carrier="SF", tracking_no="SF0001").status_code == 404
    assert not Shipment.objects.exists()


def test_a_fully_refunded_order_does_not_ship(shop, stripe):
    paid = paid_express(shop, stripe)
    refund_as_owner(shop["owner"], paid.pk)

    response = ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF0001")

    assert response.status_code == 409 and body(response)["error"]["code"] == "invalid_status"


def test_at_most_fifteen_packages(shop, stripe):
    paid = paid_express(shop, stripe, lines=[(shop["berries"], 20)])
    [line] = line_ids(paid)
    for n in range(15):
        shipment_create(
            actor=shop["owner"],
            order_id=paid.pk,
            carrier="SF",
            tracking_no=f"SF{n:04d}",
            lines=[LineQuantity(line, 1)],
        )

    response = ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF9999")

    assert response.status_code == 409 and body(response)["error"]["code"] == "too_many_shipments"


@pytest.mark.django_db(transaction=True)
def test_two_owners_shipping_the_same_rest_at_once_ship_it_once(shop, stripe):
    paid = paid_express(shop, stripe)
    barrier = threading.Barrier(2)
    outcomes = []

    def ship_all(n):
        try:
            barrier.wait()
            shipment_create(actor=shop["owner"], order_id=paid.pk, carrier="SF", tracking_no=f"SF000{n}")
            outcomes.append("shipped")
        except Exception as exc:  # noqa: BLE001 - the loser's error is checked below
            outcomes.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=ship_all, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["nothing_to_ship", "shipped"]
    assert list(OrderLine.objects.filter(order=paid).values_list("quantity_shipped", flat=True)) == [3, 2]


# --- Receipt ---------------------------------------------------------------------------------------


def confirm(user, order_id):
    return client_for(user).post(f"/api/v1/orders/{order_id}/confirm-receipt/")


def test_the_member_confirms_receipt_and_the_order_is_delivered(shop, stripe):
    paid = paid_express(shop, stripe)
    ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF0001")

    response = confirm(shop["user"], paid.pk)
    again = confirm(shop["user"], paid.pk)

    assert response.status_code == 200 and body(response)["fulfilment_status"] == "delivered"
    assert again.status_code == 200 and body(again)["fulfilment_status"] == "delivered"
    assert Shipment.objects.get(order=paid).confirmed_at is not None
    assert confirm(MembershipFactory(community=shop["community"]).user, paid.pk).status_code == 404


def test_receipt_before_anything_shipped_is_refused(shop, stripe):
    paid = paid_express(shop, stripe)

    response = confirm(shop["user"], paid.pk)

    assert response.status_code == 409 and body(response)["error"]["code"] == "invalid_status"


def test_a_partly_shipped_order_is_delivered_once_the_rest_ships_and_is_received(shop, stripe):
    paid = paid_express(shop, stripe)
    berries, _jam = line_ids(paid)
    ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF0001", lines=[{"line": berries, "quantity": 3}])

    assert body(confirm(shop["user"], paid.pk))["fulfilment_status"] == "partially_shipped"
    ship(shop["owner"], paid.pk, carrier="SF", tracking_no="SF0002")
    assert Order.objects.get(pk=paid.pk).fulfilment_status == "shipped"
    assert body(confirm(shop["user"], paid.pk))["fulfilment_status"] == "delivered"


def test_receipts_are_confirmed_automatically_after_the_days_allowed(shop, stripe, settings):
    settings.AUTO_CONFIRM_DAYS = 10
    paid = paid_express(shop, stripe)
    shipped_at = timezone.now() - timedelta(days=10, minutes=1)
    shipment_create(actor=shop["owner"], order_id=paid.pk, carrier="SF", tracking_no="SF0001", now=shipped_at)
    recent = paid_express(shop, stripe)
    shipment_create(actor=shop["owner"], order_id=recent.pk, carrier="SF", tracking_no="SF0002")

    assert shipments_auto_confirm(now=timezone.now()) == 1
    assert shipments_auto_confirm(now=timezone.now()) == 0  # a second run changes nothing

    assert Order.objects.get(pk=paid.pk).fulfilment_status == "delivered"
    assert Order.objects.get(pk=recent.pk).fulfilment_status == "shipped"
    call_command("run_jobs", "confirm_receipts", now=(timezone.now() + timedelta(days=11)).isoformat())
    assert Order.objects.get(pk=recent.pk).fulfilment_status == "delivered"


def test_a_pickup_order_handed_over_is_delivered(shop, stripe):
    paid = pay(stripe, body(order(shop, [(shop["berries"], 1)], delivery="pickup"))["id"])

    order_advance(actor=shop["owner"], order_id=paid.pk, status=Order.Status.FULFILLED)

    assert Order.objects.get(pk=paid.pk).fulfilment_status == "delivered"


# --- Admin -------------------------------------------------------------------------------------------


def test_the_owner_ships_an_order_in_the_admin(shop, stripe, client):
    paid = paid_express(shop, stripe)
    client.force_login(shop["owner"])
    url = reverse("admin:commerce_shipment_add")

    response = client.post(url, {"order": paid.pk, "carrier": "SF", "tracking_no": "SF7777"})

    assert response.status_code == 302, response.context["adminform"].form.errors
    shipment = Shipment.objects.get(order=paid)
    assert shipment.carrier == "SF" and shipment.created_by == shop["owner"]
    assert Order.objects.get(pk=paid.pk).fulfilment_status == "shipped"
    again = client.post(url, {"order": paid.pk, "carrier": "SF", "tracking_no": "SF8888"})
    assert again.status_code == 200 and "SF8888" not in str(
        Shipment.objects.values_list("tracking_no", flat=True)
    )
    assert client.get(reverse("admin:commerce_shipment_change", args=[shipment.pk])).status_code == 200
    assert "SF7777" in client.get(reverse("admin:commerce_shipment_changelist")).content.decode()


def test_another_owner_cannot_ship_the_order_in_the_admin(shop, stripe, client):
    paid = paid_express(shop, stripe)
    client.force_login(CommunityFactory().owner)

    response = client.post(
        reverse("admin:commerce_shipment_add"), {"order": paid.pk, "carrier": "SF", "tracking_no": "SF7777"}
    )

    assert response.status_code == 200 and not Shipment.objects.exists()
    assert "order" in response.context["adminform"].form.errors


def test_products_show_their_delivery_and_owners_list_virtual_goods(shop, stripe):
    listed = client_for(shop["user"]).get(f"/api/v1/communities/{shop['community'].slug}/products/").json()
    kinds = {row["id"]: row["delivery_kind"] for row in listed["results"]}
    assert kinds[shop["berries"].product_id] == "shipped" and kinds[shop["course"].product_id] == "virtual"

    response = client_for(shop["owner"]).post(
        f"/api/v1/owner/communities/{shop['community'].slug}/products/",
        {
            "title": "线上课程",
            "category": shop["berries"].product.category.path,
            "delivery_kind": "virtual",
            "skus": [{"name": "标准", "price": "9.90", "stock": 5}],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["delivery_kind"] == "virtual"
    assert Product.objects.get(pk=response.json()["id"]).delivery_kind == "virtual"


def test_a_retry_with_the_same_key_and_address_is_the_same_order_and_another_address_is_refused(shop, stripe):
    other = address_create(actor=shop["user"], user=shop["user"], **ADDRESS)
    headers = {"HTTP_IDEMPOTENCY_KEY": "place-1"}
    payload = {"community": shop["community"].slug, "lines": [{"sku": shop["berries"].pk, "quantity": 1}]}
    client = client_for(shop["user"])

    first = client.post(ORDERS_URL, payload | {"address": shop["address"].pk}, format="json", **headers)
    again = client.post(ORDERS_URL, payload | {"address": shop["address"].pk}, format="json", **headers)
    moved = client.post(ORDERS_URL, payload | {"address": other.pk}, format="json", **headers)

    assert first.status_code == 201 and again.status_code == 201 and body(again)["id"] == body(first)["id"]
    assert moved.status_code == 409 and body(moved)["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_express_orders_are_not_marked_fulfilled_before_they_ship(shop, stripe):
    paid = paid_express(shop, stripe)

    with pytest.raises(ApplicationError) as caught:
        order_advance(actor=shop["owner"], order_id=paid.pk, status=Order.Status.FULFILLED)

    assert (
        caught.value.code == "ship_first" and Order.objects.get(pk=paid.pk).fulfilment_status == "unfulfilled"
    )
    shipment_create(actor=shop["owner"], order_id=paid.pk, carrier="SF", tracking_no="SF0001")
    order_advance(actor=shop["owner"], order_id=paid.pk, status=Order.Status.COMPLETED)
    assert Order.objects.get(pk=paid.pk).fulfilment_status == "completed"


def test_the_order_page_shows_its_states_and_packages(shop, stripe, client):
    paid = paid_express(shop, stripe)
    shipment_create(actor=shop["owner"], order_id=paid.pk, carrier="SF", tracking_no="SF4242")
    client.force_login(shop["owner"])

    page = client.get(reverse("admin:commerce_order_change", args=[paid.pk])).content.decode()

    assert (
        "SF SF4242" in page
        and reverse("admin:commerce_shipment_change", args=[paid.shipments.get().pk]) in page
    )
    assert "已发货" in page  # the fulfilment state, in Chinese


def test_the_order_body_built_directly_is_what_the_declared_fields_give(shop, stripe):
    """OrderOutput builds its body by hand for speed: it must equal DRF's walk of the declared fields."""
    from rest_framework import serializers

    from commerce.api.serializers import OrderOutput
    from commerce.selectors import order_list_for_buyer

    paid = paid_express(shop, stripe)
    lines = line_ids(paid)
    assert ship(
        shop["owner"], paid.pk, carrier="SF", tracking_no="SF0001", lines=[{"line": lines[0], "quantity": 1}]
    )
    unpaid = order(shop, [(shop["course"], 1)])
    assert unpaid.status_code == 201

    orders = list(order_list_for_buyer(buyer=shop["user"]))
    assert len(orders) == 2 and any(o.shipments.all() for o in orders) and any(o.address for o in orders)
    for one in orders:
        fast = OrderOutput(one).data
        declared = serializers.Serializer.to_representation(OrderOutput(one), one)
        assert fast == declared
