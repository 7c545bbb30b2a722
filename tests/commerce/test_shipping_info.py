"""WeChat shipping information for WeChat Pay orders, against the local WeChat servers."""

from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from commerce.models import Order, Payment, Product, ShippingUpload
from commerce.services.orders import order_advance
from commerce.services.shipments import LineQuantity, shipment_create
from commerce.services.shipping_info import (
    ShippingInfoRetry,
    shipping_info_upload,
    shipping_info_upload_pending,
)
from members import wechat
from members.services.addresses import address_create
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import ORDERS_URL, body
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
UPLOAD = "/wxa/sec/order/upload_shipping_info"


@pytest.fixture(autouse=True)
def _no_cached_token():
    cache.clear()


@pytest.fixture
def shop(wechatpay_server, miniprogram_server):
    community = CommunityFactory()
    user = MembershipFactory(community=community, user=UserFactory(wechat_openid="oBuyer0001")).user
    return {
        "community": community,
        "owner": community.owner,
        "user": user,
        "pay": wechatpay_server,
        "mp": miniprogram_server,
        "berries": SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=50),
        "course": SkuFactory(
            product=ProductFactory(community=community, delivery_kind=Product.Delivery.VIRTUAL),
            price=Decimal("20.00"),
            stock=50,
        ),
        "address": address_create(
            actor=user,
            user=user,
            name="张三",
            phone="13800138000",
            province="浙江省",
            city="杭州市",
            district="西湖区",
            detail="文三路 1 号",
        ),
    }


def paid(shop, lines, **extra) -> Order:
    payload = {"community": shop["community"].slug, "lines": [{"sku": s.pk, "quantity": q} for s, q in lines]}
    response = client_for(shop["user"]).post(ORDERS_URL, payload | extra, format="json")
    assert response.status_code == 201, response.content
    shop["pay"].pay(Payment.objects.get(order_id=body(response)["id"]).reference)
    order = Order.objects.get(pk=body(response)["id"])
    assert order.payment_status == "paid"
    return order


def uploads(shop) -> list[dict]:
    return [data for path, _query, data in shop["mp"].calls if path == UPLOAD]


def test_virtual_goods_are_uploaded_right_after_payment(shop):
    order = paid(shop, [(shop["course"], 1)])
    upload = ShippingUpload.objects.get(order=order)
    assert upload.logistics_type == 3 and Order.objects.get(pk=order.pk).shipping_info_status == "pending"

    assert shipping_info_upload(upload_id=upload.pk) == "uploaded"
    assert shipping_info_upload(upload_id=upload.pk) == "uploaded"  # idempotent: not sent again

    [sent] = uploads(shop)
    transaction_id = Payment.objects.get(order=order).provider_ref
    assert sent["order_key"] == {"order_number_type": 2, "transaction_id": transaction_id}
    assert sent["logistics_type"] == 3 and sent["delivery_mode"] == 1
    assert sent["payer"] == {"openid": "oBuyer0001"} and "×1" in sent["shipping_list"][0]["item_desc"]
    assert Order.objects.get(pk=order.pk).shipping_info_status == "uploaded"


def test_express_in_two_packages_uses_split_delivery_in_order(shop):
    order = paid(shop, [(shop["berries"], 3)], address=shop["address"].pk)
    [line] = order.lines.values_list("pk", flat=True)
    assert not ShippingUpload.objects.filter(order=order).exists()  # goods wait for shipping
    first = shipment_create(
        actor=shop["owner"],
        order_id=order.pk,
        carrier="SF",
        tracking_no="SF0001",
        lines=[LineQuantity(line, 1)],
    )
    second = shipment_create(actor=shop["owner"], order_id=order.pk, carrier="ZTO", tracking_no="ZT0002")

    with pytest.raises(ShippingInfoRetry):  # the later package waits for the earlier one
        shipping_info_upload(upload_id=second.shipping_upload.pk)
    assert uploads(shop) == []
    shipping_info_upload(upload_id=first.shipping_upload.pk)
    assert Order.objects.get(pk=order.pk).shipping_info_status == "partial"
    shipping_info_upload(upload_id=second.shipping_upload.pk)

    one, two = uploads(shop)
    assert one["logistics_type"] == 1 and one["delivery_mode"] == 2 and one["is_all_delivered"] is False
    assert one["shipping_list"][0] | {"item_desc": ""} == {
        "tracking_no": "SF0001",
        "express_company": "SF",
        "item_desc": "",
        "contact": {"receiver_contact": "138****8000"},  # SF needs the receiver's masked phone
    }
    assert two["delivery_mode"] == 2 and two["is_all_delivered"] is True
    assert two["shipping_list"][0]["express_company"] == "ZTO" and "contact" not in two["shipping_list"][0]
    assert Order.objects.get(pk=order.pk).shipping_info_status == "uploaded"


def test_one_package_for_everything_is_a_single_delivery(shop):
    order = paid(shop, [(shop["berries"], 2)], address=shop["address"].pk)
    shipment = shipment_create(actor=shop["owner"], order_id=order.pk, carrier="YTO", tracking_no="YT0001")

    shipping_info_upload(upload_id=shipment.shipping_upload.pk)

    [sent] = uploads(shop)
    assert sent["delivery_mode"] == 1 and "is_all_delivered" not in sent
    assert shop["mp"].shipments[sent["order_key"]["transaction_id"]].completed


def test_too_early_after_payment_is_retried_until_wechat_knows_the_payment(shop):
    order = paid(shop, [(shop["course"], 1)])
    upload = ShippingUpload.objects.get(order=order)
    wechat.access_token()  # the next call is the upload itself
    shop["mp"].fail_next(10060001, "支付单不存在")

    with pytest.raises(ShippingInfoRetry):
        shipping_info_upload(upload_id=upload.pk)

    upload.refresh_from_db()
    assert upload.status == "pending" and upload.attempts == 1 and upload.last_error.startswith("10060001")
    assert shipping_info_upload(upload_id=upload.pk) == "uploaded"


def test_an_expired_token_is_refreshed_once(shop):
    order = paid(shop, [(shop["course"], 1)])
    upload = ShippingUpload.objects.get(order=order)
    wechat.access_token()
    shop["mp"].fail_next(10060001)
    with pytest.raises(ShippingInfoRetry):
        shipping_info_upload(upload_id=upload.pk)  # caches a token
    shop["mp"].expire_token()

    assert shipping_info_upload(upload_id=upload.pk) == "uploaded"

    tokens = [data for path, _q, data in shop["mp"].calls if path == "/cgi-bin/stable_token"]
    # WeChat's normal mode renews an expired token: its force mode (20 a day) is not spent.
    assert [token["force_refresh"] for token in tokens] == [False, False]


def test_a_refusal_is_shown_on_the_order_and_not_retried(shop):
    order = paid(shop, [(shop["course"], 1)])
    upload = ShippingUpload.objects.get(order=order)
    wechat.access_token()
    shop["mp"].fail_next(10060005, "物流类型有误")

    assert shipping_info_upload(upload_id=upload.pk) == "failed"

    assert Order.objects.get(pk=order.pk).shipping_info_status == "failed"
    assert ShippingUpload.objects.get(pk=upload.pk).last_error == "10060005 物流类型有误"
    assert shipping_info_upload(upload_id=upload.pk) == "failed" and len(uploads(shop)) == 1


def test_wechat_down_leaves_the_upload_pending_for_the_periodic_retry(shop, settings):
    order = paid(shop, [(shop["course"], 1)])
    upload = ShippingUpload.objects.get(order=order)
    api_base = settings.WECHAT_API_BASE
    settings.WECHAT_API_BASE = "http://127.0.0.1:9"  # nothing listens

    with pytest.raises(ShippingInfoRetry):
        shipping_info_upload(upload_id=upload.pk)

    settings.WECHAT_API_BASE = api_base
    ShippingUpload.objects.filter(pk=upload.pk).update(created_at=upload.created_at.replace(year=2020))

    assert shipping_info_upload_pending(now=timezone.now()) == 1
    assert ShippingUpload.objects.get(pk=upload.pk).status == "uploaded"


def test_pickup_goods_are_uploaded_when_handed_over(shop):
    order = paid(shop, [(shop["berries"], 1)], delivery="pickup")
    assert not ShippingUpload.objects.filter(order=order).exists()

    order_advance(actor=shop["owner"], order_id=order.pk, status=Order.Status.FULFILLED)

    upload = ShippingUpload.objects.get(order=order)
    shipping_info_upload(upload_id=upload.pk)
    [sent] = uploads(shop)
    assert sent["logistics_type"] == 4 and sent["delivery_mode"] == 1


def test_the_upload_is_queued_on_commit(shop, django_capture_on_commit_callbacks):
    order = paid(shop, [(shop["berries"], 1)], address=shop["address"].pk)

    with django_capture_on_commit_callbacks(execute=True):
        shipment_create(actor=shop["owner"], order_id=order.pk, carrier="JTSD", tracking_no="JT0001")

    [sent] = uploads(shop)  # the eager task ran after the commit
    assert sent["shipping_list"][0]["tracking_no"] == "JT0001"
    assert Order.objects.get(pk=order.pk).shipping_info_status == "uploaded"
