"""POST /api/v1/me/phone/: the member's phone from getPhoneNumber, shown to owners only on delivery orders."""

from decimal import Decimal

import pytest
from django.urls import reverse

from commerce.models import Product
from members.models import User
from members.services.addresses import address_create
from shequn_backend.models import AuditEntry
from tests.commerce.conftest import stripe  # noqa: F401  (the local Stripe server for placing orders)
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import ORDERS_URL, body
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/me/phone/"


def test_the_phone_the_member_shares_is_kept(user, user_client, miniprogram_server):
    code = miniprogram_server.issue_phone_code("13912345678")

    response = user_client.post(URL, {"code": code}, format="json")

    assert response.status_code == 200 and response.json() == {"phone": "13912345678"}
    user.refresh_from_db()
    assert user.phone == "13912345678" and user.phone_verified_at is not None
    entry = AuditEntry.objects.get(action="user.phone_verified", target_id=str(user.pk))
    assert entry.changes == {"phone": ["", "139****5678"]}  # never the whole number in the trail
    path, query, sent = miniprogram_server.calls[-1]
    assert path == "/wxa/business/getuserphonenumber" and query["access_token"] and sent == {"code": code}


def test_a_number_from_abroad_keeps_its_country_code(user, user_client, miniprogram_server):
    code = miniprogram_server.issue_phone_code("91234567", country_code="852")

    assert user_client.post(URL, {"code": code}, format="json").json() == {"phone": "+85291234567"}


def test_a_code_wechat_refuses_is_a_400_and_nothing_changes(user, user_client, miniprogram_server):
    code = miniprogram_server.issue_phone_code("13912345678")
    user_client.post(URL, {"code": code}, format="json")

    again = user_client.post(URL, {"code": code}, format="json")  # a code works once
    unknown = user_client.post(URL, {"code": "nope"}, format="json")
    empty = user_client.post(URL, {}, format="json")

    assert again.status_code == unknown.status_code == 400
    assert again.json()["error"]["code"] == "wechat_phone_code_invalid"
    assert empty.status_code == 400 and "code" in empty.json()["error"]["fields"]
    assert User.objects.get(pk=user.pk).phone == "13912345678"


def test_a_busy_wechat_is_a_503_and_an_expired_token_is_renewed(user, user_client, miniprogram_server):
    miniprogram_server.fail_next(-1, "system error")
    busy = user_client.post(URL, {"code": miniprogram_server.issue_phone_code("13700000000")}, format="json")
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "wechat_busy"

    user_client.post(URL, {"code": miniprogram_server.issue_phone_code("13700000000")}, format="json")
    miniprogram_server.expire_token()  # our cached token stops working: renewed once, then it works
    renewed = user_client.post(
        URL, {"code": miniprogram_server.issue_phone_code("13700000001")}, format="json"
    )

    assert renewed.status_code == 200 and renewed.json() == {"phone": "13700000001"}


def test_wechat_out_of_reach_is_a_503(user, user_client, settings):
    settings.WECHAT_API_BASE = "http://127.0.0.1:9"

    response = user_client.post(URL, {"code": "abc"}, format="json")

    assert response.status_code == 503 and response.json()["error"]["code"] == "wechat_unavailable"


def test_anonymous_callers_are_refused(api_client):
    assert api_client.post(URL, {"code": "abc"}, format="json").status_code == 401


def test_owners_see_the_phone_on_delivery_orders_only_never_in_member_lists(client, stripe):  # noqa: F811
    community = CommunityFactory()
    member = MembershipFactory(community=community)
    User.objects.filter(pk=member.user_id).update(phone="13955556666")
    address = address_create(
        actor=member.user,
        user=member.user,
        name="张三",
        phone="13800138000",
        province="浙江省",
        city="杭州市",
        district="西湖区",
        detail="文三路 1 号",
    )
    goods = SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=5)
    course = SkuFactory(
        product=ProductFactory(community=community, delivery_kind=Product.Delivery.VIRTUAL),
        price=Decimal("20.00"),
        stock=5,
    )
    buyer = client_for(member.user)

    def place(sku, **extra):
        payload = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 1}]}
        return body(buyer.post(ORDERS_URL, payload | extra, format="json"))["id"]

    shipped, virtual = place(goods, address=address.pk, delivery="express"), place(course)
    client.force_login(community.owner)

    shipped_page = client.get(reverse("admin:commerce_order_change", args=[shipped])).content.decode()
    virtual_page = client.get(reverse("admin:commerce_order_change", args=[virtual])).content.decode()
    members_page = client.get(reverse("admin:members_membership_changelist")).content.decode()
    members_api = client_for(community.owner).get(f"/api/v1/owner/communities/{community.slug}/members/")

    assert "13955556666" in shipped_page
    assert "13955556666" not in virtual_page
    assert str(member.user) in members_page and "13955556666" not in members_page
    assert members_api.status_code == 200 and "13955556666" not in members_api.content.decode()


def test_a_number_watermarked_for_another_app_is_not_kept(user, user_client, miniprogram_server):
    code = miniprogram_server.issue_phone_code("13912345678", appid="wxOtherApp000000")

    response = user_client.post(URL, {"code": code}, format="json")

    assert response.status_code == 502 and response.json()["error"]["code"] == "wechat_bad_answer"
    assert User.objects.get(pk=user.pk).phone == ""


def test_a_refused_token_is_renewed_without_force_unless_wechat_hands_it_out_again(
    user, user_client, miniprogram_server
):
    def forced():
        return [data["force_refresh"] for path, _q, data in miniprogram_server.calls if "stable" in path]

    user_client.post(URL, {"code": miniprogram_server.issue_phone_code("13700000000")}, format="json")
    miniprogram_server.expire_token()  # expired: normal mode gives a new one
    assert (
        user_client.post(
            URL, {"code": miniprogram_server.issue_phone_code("13700000001")}, format="json"
        ).status_code
        == 200
    )
    assert forced() == [False, False]

    miniprogram_server.fail_next(40001, "invalid credential")  # the current token refused: force mode
    assert (
        user_client.post(
            URL, {"code": miniprogram_server.issue_phone_code("13700000002")}, format="json"
        ).status_code
        == 200
    )
    assert forced() == [False, False, False, True] and miniprogram_server.forced_refreshes == 1
