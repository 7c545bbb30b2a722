"""WeChat Pay (JSAPI in the mini-program) through the real wechatpayv3 client against the local v3 server."""

import gzip
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order, Payment, Refund, Sku
from commerce.payments import base
from commerce.payments.wechatpay import client as wx
from commerce.payments.wechatpay.provider import WechatPayProvider, cut_bytes
from members.models import Community, Membership
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory
from tests.wechat.wechatpay_server import _Answer, rsa_verify

pytestmark = pytest.mark.django_db

JSAPI = "/v3/pay/transactions/jsapi"
PARTNER_JSAPI = "/v3/pay/partner/transactions/jsapi"


def wechat_member(community, openid: str = "oMember0001"):
    return MembershipFactory(community=community, user=UserFactory(wechat_openid=openid)).user


@pytest.fixture
def shop():
    community = CommunityFactory(name="财经读书会")
    return {
        "community": community,
        "sku": SkuFactory(product=ProductFactory(community=community), price=Decimal("123.45"), stock=10),
        "member": wechat_member(community),
    }


def payment_url(order_id: int) -> str:
    return reverse("order-payment", args=[order_id])


def assert_signed(server, request_payment: dict, appid: str) -> None:
    """``paySign`` verifies with the merchant's public key over appId\\ntimeStamp\\nnonceStr\\npackage\\n."""
    assert set(request_payment) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert request_payment["signType"] == "RSA"
    assert abs(int(request_payment["timeStamp"]) - time.time()) < 60
    fields = [appid, request_payment["timeStamp"], request_payment["nonceStr"], request_payment["package"]]
    message = "".join(f"{field}\n" for field in fields)
    assert rsa_verify(server.config.merchant_public_key, message, request_payment["paySign"])
    assert not rsa_verify(server.config.merchant_public_key, "x" + message, request_payment["paySign"])


def requests_to(server, path: str) -> list:
    return [r for r in server.requests if r.path.split("?")[0] == path]


def test_a_wechat_member_pays_an_order_and_the_notification_marks_it_paid(shop, wechatpay_server):
    response = place_order(shop["member"], shop["community"], [(shop["sku"], 2)])

    assert response.status_code == 201, response.content
    data = body(response)
    payment = Payment.objects.get(order_id=data["id"])
    order = Order.objects.get(pk=data["id"])
    sent = wechatpay_server.order(payment.reference)
    assert sent.request["amount"] == {"total": 24690, "currency": "CNY"}
    assert sent.request["payer"] == {"openid": "oMember0001"}
    assert sent.request["appid"] == wechatpay_server.config.appid
    assert sent.request["mchid"] == wechatpay_server.config.mchid
    assert sent.request["notify_url"] == "http://testserver/api/v1/payments/wechatpay/notify/"
    assert datetime.fromisoformat(sent.request["time_expire"]) == order.hold_expires_at.replace(microsecond=0)
    assert sent.request["time_expire"].endswith("+08:00")
    assert payment.status == Payment.Status.PENDING and payment.provider_ref == ""
    assert payment.client_data["prepay_id"] == sent.prepay_id
    summary = data["payment"]
    assert summary["provider"] == "wechatpay" and summary["status"] == "pending"
    assert summary["client_secret"] is None and summary["amount"] == "246.90"
    assert summary["request_payment"]["package"] == f"prepay_id={sent.prepay_id}"
    assert_signed(wechatpay_server, summary["request_payment"], wechatpay_server.config.appid)

    wechatpay_server.pay(payment.reference)

    delivery = wechatpay_server.deliveries[-1]
    assert delivery.status == 204 and delivery.body == ""
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.PAID and order.amount_paid == Decimal("246.90")
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.provider_ref == wechatpay_server.order(payment.reference).transaction_id
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 8


def test_a_wechat_member_pays_a_paid_entry_and_becomes_active(wechatpay_server):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=Decimal("199.00"))
    user = UserFactory(wechat_openid="oJoiner0001")

    response = client_for(user).post(
        f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk}, format="json"
    )

    assert response.status_code == 201, response.content
    summary = body(response)["payment"]
    assert summary["provider"] == "wechatpay" and summary["request_payment"]["signType"] == "RSA"
    payment = Payment.objects.get(order__buyer=user)
    assert wechatpay_server.order(payment.reference).request["amount"]["total"] == 19900
    wechatpay_server.pay(payment.reference)
    assert wechatpay_server.deliveries[-1].accepted
    membership = Membership.objects.get(user=user, community=community)
    assert membership.status == Membership.Status.ACTIVE and membership.expires_at is not None


def test_the_description_is_cut_to_127_bytes_on_a_character_boundary(wechatpay_server):
    community = CommunityFactory(name="长" * 60)  # 180 bytes in UTF-8
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("1.00"), stock=1)
    member = wechat_member(community)

    assert place_order(member, community, [(sku, 1)]).status_code == 201

    description = wechatpay_server.order(Payment.objects.get().reference).request["description"]
    assert len(description.encode()) <= 127 and description == "长" * 42
    assert cut_bytes("a长b", 2) == "a" and cut_bytes("ab", 5) == "ab"


def test_a_password_account_asking_for_wechat_pay_gets_409_and_nothing_is_left(shop, wechatpay_server):
    password_user = MembershipFactory(community=shop["community"]).user
    url = "/api/v1/orders/"
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["sku"].pk, "quantity": 1}],
        "provider": "wechatpay",
    }

    response = client_for(password_user).post(url, payload, format="json")

    assert response.status_code == 409 and body(response)["error"]["code"] == "wechat_binding_required"
    assert not Order.objects.exists() and Sku.objects.get(pk=shop["sku"].pk).stock == 10
    assert wechatpay_server.requests == []

    paid = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=paid)
    joined = client_for(password_user).post(
        f"/api/v1/communities/{paid.slug}/join/", {"plan": plan.pk}, format="json"
    )
    assert joined.status_code == 409 and body(joined)["error"]["code"] == "wechat_binding_required"
    assert not Membership.objects.filter(user=password_user, community=paid).exists()
    assert not Order.objects.exists()


def test_a_prepay_refused_by_wechat_is_a_502_and_the_order_is_kept(shop, wechatpay_server):
    wechatpay_server.fail_next(400, "PARAM_ERROR", "参数错误")

    refused = place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="k1")

    assert refused.status_code == 502 and body(refused)["error"]["code"] == "payment_provider_unavailable"
    order = Order.objects.get()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert Payment.objects.get().status == Payment.Status.CREATING
    retried = place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="k1")
    assert retried.status_code == 200 and body(retried)["payment"]["request_payment"]
    assert Payment.objects.get().status == Payment.Status.PENDING


def test_when_wechat_is_down_the_answer_is_503_and_a_retry_pays(shop, wechatpay_server):
    wechatpay_server.fail_next(500, "SYSTEM_ERROR", "系统异常")

    down = place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="k2")

    assert down.status_code == 503 and body(down)["error"]["code"] == "payment_provider_unavailable"
    assert Order.objects.get().status == Order.Status.PENDING_PAYMENT
    retried = place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="k2")
    assert retried.status_code == 200
    payment = Payment.objects.get()
    wechatpay_server.pay(payment.reference)
    assert Order.objects.get().status == Order.Status.PAID
    assert len(requests_to(wechatpay_server, JSAPI)) == 2


# --- GET /orders/{id}/payment/ -------------------------------------------------------------------


def test_the_payment_endpoint_signs_request_payment_anew_for_the_buyer_only(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    member = client_for(shop["member"])

    first = member.get(payment_url(order_id))
    second = member.get(payment_url(order_id))

    assert first.status_code == 200 and second.status_code == 200
    one, two = body(first)["request_payment"], body(second)["request_payment"]
    assert one["package"] == two["package"] and one["nonceStr"] != two["nonceStr"]
    assert_signed(wechatpay_server, two, wechatpay_server.config.appid)
    assert len(requests_to(wechatpay_server, JSAPI)) == 1  # a fresh prepay id is not asked again
    stranger = wechat_member(shop["community"], "oStranger01")
    assert client_for(stranger).get(payment_url(order_id)).status_code == 404


def test_the_payment_endpoint_renews_a_prepay_id_about_to_lapse(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    payment = Payment.objects.get()
    payment.client_data["issued_at"] = (timezone.now() - timedelta(minutes=110)).isoformat()
    payment.save()

    response = client_for(shop["member"]).get(payment_url(order_id))

    assert response.status_code == 200
    jsapi = requests_to(wechatpay_server, JSAPI)
    assert len(jsapi) == 2 and jsapi[0].body == jsapi[1].body  # the identical prepay, repeated
    payment.refresh_from_db()
    assert timezone.now() - datetime.fromisoformat(payment.client_data["issued_at"]) < timedelta(minutes=1)
    assert body(response)["request_payment"]["package"] == f"prepay_id={payment.client_data['prepay_id']}"


def test_a_closed_wechat_order_is_replaced_by_a_new_attempt(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    old = Payment.objects.get()
    wechatpay_server.order(old.reference).state = "CLOSED"
    old.client_data["issued_at"] = (timezone.now() - timedelta(hours=2)).isoformat()
    old.save()

    response = client_for(shop["member"]).get(payment_url(order_id))

    assert response.status_code == 200, response.content
    old.refresh_from_db()
    new = Payment.objects.exclude(pk=old.pk).get()
    assert old.status == Payment.Status.CANCELED and new.status == Payment.Status.PENDING
    assert new.reference != old.reference
    assert body(response)["request_payment"]["package"] == f"prepay_id={new.client_data['prepay_id']}"
    wechatpay_server.pay(new.reference)
    assert Order.objects.get().status == Order.Status.PAID


def test_a_stale_prepay_already_paid_at_wechat_is_applied_and_nothing_is_left_to_pay(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    payment = Payment.objects.get()
    wechatpay_server.notify_mode = "drop"  # the notification is lost
    wechatpay_server.pay(payment.reference)
    payment.client_data["issued_at"] = (timezone.now() - timedelta(hours=2)).isoformat()
    payment.save()

    response = client_for(shop["member"]).get(payment_url(order_id))

    assert response.status_code == 409 and body(response)["error"]["code"] == "nothing_to_pay"
    assert Order.objects.get().status == Order.Status.PAID
    payment.refresh_from_db()
    assert payment.provider_ref == wechatpay_server.order(payment.reference).transaction_id


def test_paid_and_cancelled_orders_have_nothing_to_pay(shop, wechatpay_server):
    member = client_for(shop["member"])
    paid = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    wechatpay_server.pay(Payment.objects.get(order_id=paid).reference)
    cancelled = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)], key="c"))["id"]
    assert member.post(reverse("order-cancel", args=[cancelled])).status_code == 200

    for order_id in (paid, cancelled):
        response = member.get(payment_url(order_id))
        assert response.status_code == 409 and body(response)["error"]["code"] == "nothing_to_pay"


# --- Refunds -------------------------------------------------------------------------------------


def paid_order(shop, server) -> Order:
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 2)]))["id"]
    server.pay(Payment.objects.get(order_id=order_id).reference)
    return Order.objects.get(pk=order_id)


def test_a_full_refund_is_sent_with_the_total_and_settled_by_its_notification(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)

    response = refund_as_owner(shop["community"].owner, order.pk)

    assert response.status_code == 201, response.content
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.PENDING and refund.provider_ref
    sent = wechatpay_server.refund(refund.reference).request
    assert sent["amount"] == {"refund": 24690, "total": 24690, "currency": "CNY"}
    assert sent["out_trade_no"] == order.payments.get().reference
    assert sent["notify_url"] == "http://testserver/api/v1/payments/wechatpay/notify/"
    assert sent["reason"] == "质量问题"
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")
    assert wechatpay_server.deliveries[-1].status == 204
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert order.status == Order.Status.REFUNDED and order.amount_refunded == Decimal("246.90")


def test_a_partial_refund_leaves_the_order_partially_refunded(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)

    refund_as_owner(shop["community"].owner, order.pk, amount="46.90")
    refund = Refund.objects.get()
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")

    assert wechatpay_server.refund(refund.reference).request["amount"]["refund"] == 4690
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.amount_refunded == Decimal("46.90")


def test_an_abnormal_refund_is_flagged_for_staff_with_what_to_do(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    refund_as_owner(shop["community"].owner, order.pk)
    refund = Refund.objects.get()

    wechatpay_server.settle_refund(refund.reference, "ABNORMAL")

    assert wechatpay_server.deliveries[-1].accepted
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.PENDING  # money may still go back: its amount stays reserved
    assert (
        order.needs_review and "异常退款" in order.review_reason and refund.reference in order.review_reason
    )
    assert refund.failure_reason == order.review_reason
    assert order.status == Order.Status.PAID


def test_a_closed_refund_fails_and_frees_its_amount(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    refund_as_owner(shop["community"].owner, order.pk, amount="100.00")
    refund = Refund.objects.get()

    wechatpay_server.settle_refund(refund.reference, "CLOSED")

    refund.refresh_from_db()
    assert refund.status == Refund.Status.FAILED and refund.failure_reason
    again = refund_as_owner(shop["community"].owner, order.pk, key="second")
    assert again.status_code == 201 and Decimal(body(again)["amount"]) == Decimal("246.90")


def test_the_provider_queries_payments_and_refunds_by_our_references(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    refund_as_owner(shop["community"].owner, order.pk, amount="10.00")
    payment, refund = order.payments.get(), Refund.objects.get()
    provider = WechatPayProvider()
    handle = base.PaymentHandle.of(payment)

    state = provider.fetch_payment(handle=handle)
    assert state.status == "succeeded" and state.amount_received == Decimal("246.90")
    assert state.ref == payment.provider_ref
    known = base.RefundHandle(reference=refund.reference, ref=refund.provider_ref)
    missing = base.RefundHandle(reference="Rnever", ref="")
    [fetched] = provider.fetch_refunds(handle=handle, known=[known, missing])
    assert fetched.status == "pending" and fetched.amount == Decimal("10.00")
    assert fetched.reference == refund.reference and fetched.ref == refund.provider_ref
    with pytest.raises(base.ProviderRefused) as refused:
        provider.close_payment(handle=handle, idempotency_key="x")
    assert refused.value.code == "ORDERPAID"


def test_an_unpaid_wechat_order_queries_pending_and_closes(shop, wechatpay_server):
    body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))
    provider = WechatPayProvider()
    handle = base.PaymentHandle.of(Payment.objects.get())

    assert provider.fetch_payment(handle=handle).status == "pending"
    provider.close_payment(handle=handle, idempotency_key="x")
    assert provider.fetch_payment(handle=handle).status == "canceled"
    provider.close_payment(handle=handle, idempotency_key="x")  # closing again is harmless
    unknown = base.PaymentHandle(reference="Pnotatwechat", ref="", amount=Decimal("1"), currency="CNY")
    provider.close_payment(handle=unknown, idempotency_key="y")  # nothing to close
    with pytest.raises(base.ProviderRefused) as refused:
        provider.fetch_payment(handle=unknown)
    assert refused.value.code == "ORDER_NOT_EXIST"


# --- Trade bill ----------------------------------------------------------------------------------


def test_the_trade_bill_is_downloaded_and_its_hash_checked(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    reference = order.payments.get().reference
    day = wechatpay_server.now().date()

    with pytest.raises(base.ProviderUnavailable):  # STATEMENT_CREATING until 10:00 the next day
        wx.download_trade_bill(day)
    wechatpay_server.clock = lambda: time.time() + 86400 * 1.5
    content = wx.download_trade_bill(day)
    assert reference in content.decode() and content.decode().startswith("交易时间")
    assert wx.download_trade_bill(day - timedelta(days=1)) is None  # NO_STATEMENT_EXIST
    wechatpay_server._download_bill = lambda **_: _Answer(200, gzip.compress(b"forged"), signed=False)
    with pytest.raises(base.ProviderUnavailable, match="hash_value"):
        wx.download_trade_bill(day)


# --- Partner mode (服务商) -----------------------------------------------------------------------


def test_partner_mode_pays_each_community_into_its_own_sub_merchant(wechatpay_partner_server, settings):
    server = wechatpay_partner_server
    first_mchid, second_mchid = server.config.sub_mchids
    clubs = []
    for mchid, openid in ((first_mchid, "oSubA"), (second_mchid, "oSubB")):
        community = CommunityFactory(wechatpay_sub_mchid=mchid)
        sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("50.00"), stock=5)
        clubs.append((community, sku, wechat_member(community, openid), mchid))

    for community, sku, member, mchid in clubs:
        data = body(place_order(member, community, [(sku, 1)]))
        payment = Payment.objects.get(order_id=data["id"])
        assert payment.sub_merchant == mchid
        sent = server.order(payment.reference, sub_mchid=mchid)
        assert sent.request["sub_mchid"] == mchid and sent.request["sp_mchid"] == server.config.mchid
        assert sent.request["sp_appid"] == server.config.sp_appid
        assert sent.request["sub_appid"] == server.config.appid
        assert sent.request["payer"] == {"sub_openid": member.wechat_openid}
        assert_signed(server, data["payment"]["request_payment"], server.config.appid)
        server.pay(payment.reference, sub_mchid=mchid)
        assert server.deliveries[-1].accepted
        assert Order.objects.get(pk=data["id"]).status == Order.Status.PAID

    assert {o.sub_mchid for o in server.orders.values()} == {first_mchid, second_mchid}
    assert len(requests_to(server, PARTNER_JSAPI)) == 2 and not requests_to(server, JSAPI)
    community, _, member, mchid = clubs[0]
    order = Order.objects.get(buyer=member)
    assert refund_as_owner(community.owner, order.pk, amount="20.00").status_code == 201
    refund = Refund.objects.get()
    assert server.refund(refund.reference, sub_mchid=mchid).request["sub_mchid"] == mchid
    server.settle_refund(refund.reference, "SUCCESS", sub_mchid=mchid)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED
    handle = base.PaymentHandle.of(order.payments.get())
    assert WechatPayProvider().fetch_payment(handle=handle).status == "succeeded"
    day = server.now().date()
    server.clock = lambda: time.time() + 86400 * 1.5
    bill = wx.download_trade_bill(day, sub_merchant=mchid).decode()
    other = Payment.objects.get(order__buyer=clubs[1][2]).reference
    assert handle.reference in bill and other not in bill


def test_partner_mode_refuses_wechat_pay_for_a_community_without_sub_merchant(
    wechatpay_partner_server, settings
):
    settings.STRIPE_SECRET_KEY = ""  # nothing else to fall back on
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("5.00"), stock=5)
    member = wechat_member(community)
    payload = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 1}]}

    for extra in ({"provider": "wechatpay"}, {}):
        response = client_for(member).post("/api/v1/orders/", payload | extra, format="json")
        assert response.status_code == 409, response.content
        error = body(response)["error"]
        assert error["code"] == "wechatpay_sub_merchant_missing" and "特约商户号" in error["message"]
    assert not Order.objects.exists() and wechatpay_partner_server.requests == []


def test_an_owner_sets_the_sub_merchant_in_the_admin_and_it_is_audited(client):
    from shequn_backend.models import AuditEntry
    from tests.members.test_admin_write_path import change_url, community_form

    club = CommunityFactory()
    client.force_login(club.owner)

    bad = client.post(change_url("community", club.pk), community_form(club, wechatpay_sub_mchid="19x"))
    assert bad.status_code == 200 and "wechatpay_sub_mchid" in bad.context["adminform"].form.errors
    good = client.post(
        change_url("community", club.pk),
        community_form(club, wechatpay_sub_mchid="1900000109", payment_provider="wechatpay"),
    )

    assert good.status_code == 302, good.content.decode()[:2000]
    club.refresh_from_db()
    assert club.wechatpay_sub_mchid == "1900000109" and club.payment_provider == "wechatpay"
    entry = AuditEntry.objects.get(action="community.updated", community=club)
    assert entry.changes["wechatpay_sub_mchid"] == ["", "1900000109"] and entry.actor == club.owner


def test_after_a_cancelled_attempt_the_payment_endpoint_starts_a_new_one(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    Payment.objects.update(status=Payment.Status.CANCELED)

    response = client_for(shop["member"]).get(payment_url(order_id))

    assert response.status_code == 200 and body(response)["status"] == "pending"
    old, new = Payment.objects.order_by("pk")
    assert new.status == Payment.Status.PENDING and new.reference != old.reference
    assert wechatpay_server.order(new.reference).request["amount"]["total"] == 12345


def test_an_order_whose_hold_ended_has_nothing_to_pay(shop, wechatpay_server):
    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    Order.objects.filter(pk=order_id).update(hold_expires_at=timezone.now() - timedelta(seconds=1))

    response = client_for(shop["member"]).get(payment_url(order_id))

    assert response.status_code == 409 and body(response)["error"]["code"] == "nothing_to_pay"
    assert len(requests_to(wechatpay_server, JSAPI)) == 1


def test_a_refund_refused_for_a_low_balance_fails_and_the_same_key_retries_it(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    wechatpay_server.merchant_balance = 0
    owner = shop["community"].owner

    refused = refund_as_owner(owner, order.pk, amount="10.00", key="r1")

    assert refused.status_code == 502 and body(refused)["error"]["code"] == "payment_provider_unavailable"
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.FAILED and "NOT_ENOUGH" in refund.failure_reason
    wechatpay_server.merchant_balance = None
    retried = refund_as_owner(owner, order.pk, amount="10.00", key="r1")
    assert retried.status_code == 201 and Refund.objects.get().status == Refund.Status.PENDING
    assert wechatpay_server.refund(refund.reference).amount == 1000


def test_a_refund_unanswered_stays_reserved_and_the_same_key_sends_the_same_refund(shop, wechatpay_server):
    order = paid_order(shop, wechatpay_server)
    wechatpay_server.fail_next(500, "SYSTEM_ERROR", "系统异常")
    owner = shop["community"].owner

    down = refund_as_owner(owner, order.pk, key="r2")

    assert down.status_code == 503
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.PENDING  # WeChat may have made it: the amount stays reserved
    assert refund_as_owner(owner, order.pk, amount="1.00", key="other").status_code == 400
    assert refund_as_owner(owner, order.pk, key="r2").status_code == 201
    assert Refund.objects.count() == 1 and len(wechatpay_server.refunds) == 1
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED


def test_partner_mode_pays_with_sp_openid_when_the_mini_program_is_the_providers_own(settings):
    from commerce.payments.wechatpay.provider import _payer

    settings.WECHATPAY_MODE = "direct"
    assert _payer("oX") == {"payer": {"openid": "oX"}}
    settings.WECHATPAY_MODE, settings.WECHATPAY_SP_APPID, settings.WECHAT_APP_ID = "partner", "wxsp", "wxsub"
    assert _payer("oX") == {"payer": {"sub_openid": "oX"}, "sub_appid": "wxsub"}
    settings.WECHAT_APP_ID = "wxsp"
    assert _payer("oX") == {"payer": {"sp_openid": "oX"}}


def test_a_cancelled_order_closes_its_wechat_order(shop, wechatpay_server):
    from commerce.services.payments import payment_cancel_at_provider

    order_id = body(place_order(shop["member"], shop["community"], [(shop["sku"], 1)]))["id"]
    reference = Payment.objects.get().reference
    assert client_for(shop["member"]).post(reverse("order-cancel", args=[order_id])).status_code == 200

    assert payment_cancel_at_provider(order_id=order_id) is True

    assert wechatpay_server.order(reference).state == "CLOSED"
    with pytest.raises(ValueError):
        wechatpay_server.pay(reference)  # the member can no longer pay it
