"""After-sale requests (售后): refund only or return and refund, within the days after delivery."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from commerce.models import AfterSale, Commission, CommissionEntry, Order, OrderLine, Payment, Refund, Sku
from commerce.services.after_sales import after_sale_approve, after_sale_receive
from commerce.services.commissions import commission_settle_due
from commerce.services.shipments import order_confirm_receipt, shipment_create
from members.services.addresses import address_create
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order
from tests.commerce.test_concurrency import run_together
from tests.commerce.test_shipments import ADDRESS
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal
RETURN_ADDRESS = "李四 13900139000 浙江省杭州市西湖区退货路 8 号"


def make_shop(*, wechat: bool = False):
    community = CommunityFactory(referral_level1_percent=D("10"), return_address=RETURN_ADDRESS, name="果园")
    parent = MembershipFactory(community=community)
    user = UserFactory(wechat_openid="oAfterSale01") if wechat else UserFactory()
    member = MembershipFactory(community=community, user=user, referred_by=parent)
    return {
        "community": community,
        "owner": community.owner,
        "user": member.user,
        "parent": parent,
        "berries": SkuFactory(product=ProductFactory(community=community), price=D("10.00"), stock=50),
        "jam": SkuFactory(product=ProductFactory(community=community), price=D("5.00"), stock=50),
        "address": address_create(actor=member.user, user=member.user, **ADDRESS),
    }


@pytest.fixture
def shop():
    return make_shop()


def place(shop, lines=None):
    lines = lines or [(shop["berries"], 3), (shop["jam"], 2)]
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": sku.pk, "quantity": q} for sku, q in lines],
        "address": shop["address"].pk,
    }
    response = client_for(shop["user"]).post("/api/v1/orders/", payload, format="json")
    assert response.status_code == 201, response.content
    return body(response)["id"]


def paid_express(shop, stripe, lines=None) -> Order:
    return pay(stripe, place(shop, lines))


def delivered(shop, stripe, *, days_ago: float = 0, lines=None) -> Order:
    order = paid_express(shop, stripe, lines)
    when = timezone.now() - timedelta(days=days_ago)
    shipment_create(actor=shop["owner"], order_id=order.pk, carrier="SF", tracking_no="SF0001", now=when)
    return order_confirm_receipt(actor=shop["user"], order_id=order.pk, now=when)


def lines_of(order) -> list[int]:
    return list(OrderLine.objects.filter(order_id=order.pk).order_by("pk").values_list("pk", flat=True))


def ask(user, order_id, *, type="refund_only", lines, reason="坏了", key=None, **extra):
    payload = {"type": type, "lines": [{"line": line, "quantity": q} for line, q in lines], "reason": reason}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client_for(user).post(
        f"/api/v1/orders/{order_id}/after-sales/", payload | extra, format="json", **headers
    )


def decide(owner, after_sale_id, action, **payload):
    return client_for(owner).post(
        f"/api/v1/owner/after-sales/{after_sale_id}/{action}/", payload, format="json"
    )


def send_back(user, order_id, after_sale_id, **payload):
    url = f"/api/v1/orders/{order_id}/after-sales/{after_sale_id}/return/"
    return client_for(user).post(url, payload, format="json")


def order_of(order_id) -> Order:
    return Order.objects.get(pk=order_id)


def assert_order_money(order_id) -> None:
    """lines = total = paid; paid - refunded = net; the refunds are the succeeded ones."""
    order = order_of(order_id)
    lines = sum((line.paid_amount for line in OrderLine.objects.filter(order=order)), D("0"))
    refunded = sum(
        order.refunds.filter(status=Refund.Status.SUCCEEDED).values_list("amount", flat=True), D("0")
    )
    assert lines == order.total == order.amount_paid
    assert order.amount_refunded == refunded and order.net_amount == order.amount_paid - refunded


# --- Refund only -----------------------------------------------------------------------------------


def test_a_refund_only_request_after_delivery_is_approved_and_refunded(shop, stripe):
    order = delivered(shop, stripe, days_ago=2)
    berries, _jam = lines_of(order)

    response = ask(shop["user"], order.pk, lines=[(berries, 1)], reason="一盒压坏了")

    assert response.status_code == 201, response.content
    request = body(response)
    assert request["status"] == "requested" and request["type"] == "refund_only"
    assert request["amount"] == "10.00" and request["currency"] == "CNY"
    assert request["lines"] == [{"line": berries, "quantity": 1}] and request["return_address"] is None

    approved = decide(shop["owner"], request["id"], "approve", reason="同意")

    assert approved.status_code == 200, approved.content
    assert body(approved)["status"] == "refunded"
    refund = Refund.objects.get()
    assert refund.after_sale_id == request["id"] and refund.source == Refund.Source.AFTER_SALE
    assert refund.amount == D("10.00") and "一盒压坏了" in refund.reason
    assert refund.status == Refund.Status.SUCCEEDED
    paid = order_of(order.pk)
    assert paid.payment_status == "partially_refunded" and paid.amount_refunded == D("10.00")
    assert OrderLine.objects.get(pk=berries).quantity_refunded == 1
    seen = body(client_for(shop["user"]).get(f"/api/v1/orders/{order.pk}/"))
    assert [a["status"] for a in seen["after_sales"]] == ["refunded"]
    listed = body(client_for(shop["user"]).get(f"/api/v1/orders/{order.pk}/after-sales/"))
    assert [a["id"] for a in listed] == [request["id"]]
    actions = list(
        AuditEntry.objects.filter(target_type="commerce.aftersale", target_id=str(request["id"]))
        .order_by("pk")
        .values_list("action", "actor_id")
    )
    assert actions == [
        ("after_sale.requested", shop["user"].pk),
        ("after_sale.approved", shop["owner"].pk),
        ("after_sale.refunded", shop["owner"].pk),
    ]
    assert_order_money(order.pk)


def test_a_replay_with_the_same_key_is_the_same_request(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)

    first = ask(shop["user"], order.pk, lines=[(berries, 1)], key="as-1")
    again = ask(shop["user"], order.pk, lines=[(berries, 1)], key="as-1")

    assert first.status_code == again.status_code == 201
    assert body(first)["id"] == body(again)["id"] and AfterSale.objects.count() == 1


def test_a_smaller_amount_can_be_asked_but_never_more_than_the_units_were_paid(shop, stripe):
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)

    too_much = ask(shop["user"], order.pk, lines=[(berries, 1), (jam, 1)], amount="15.01")
    partial = ask(shop["user"], order.pk, lines=[(berries, 1), (jam, 1)], amount="6.00")

    assert too_much.status_code == 400 and "amount" in body(too_much)["error"]["fields"]
    assert partial.status_code == 201 and body(partial)["amount"] == "6.00"
    shares = AfterSale.objects.get().lines.order_by("line_id").values_list("amount", flat=True)
    assert list(shares) == [D("4.00"), D("2.00")]  # in proportion to what each line's units cost


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        (lambda b, j: [(b, 4)], "lines[0].quantity"),
        (lambda b, j: [(j, 1), (b, 2), (b, 2)], "lines[2].quantity"),
        (lambda b, j: [(999999, 1)], "lines[0].line"),
        (lambda b, j: [(b, 0)], "lines[0].quantity"),
    ],
)
def test_more_than_was_bought_is_refused_with_the_lines_field(shop, stripe, lines, field):
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)

    response = ask(shop["user"], order.pk, lines=lines(berries, jam))

    assert response.status_code == 400, response.content
    assert field in body(response)["error"]["fields"]
    assert not AfterSale.objects.exists()


def test_units_refunded_or_in_an_open_request_cannot_be_asked_for_again(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    first = body(ask(shop["user"], order.pk, lines=[(berries, 2)]))

    pending = ask(shop["user"], order.pk, lines=[(berries, 2)])
    decide(shop["owner"], first["id"], "approve")
    refunded = ask(shop["user"], order.pk, lines=[(berries, 2)])
    rest = ask(shop["user"], order.pk, lines=[(berries, 1)])

    assert pending.status_code == refunded.status_code == 400
    assert "lines[0].quantity" in body(refunded)["error"]["fields"]
    assert rest.status_code == 201 and body(rest)["amount"] == "10.00"


def test_outside_the_window_after_delivery_the_request_is_refused(shop, stripe, settings):
    settings.AFTER_SALE_DAYS = 7
    late = delivered(shop, stripe, days_ago=7.1)
    in_time = delivered(shop, stripe, days_ago=6.9)

    refused = ask(shop["user"], late.pk, lines=[(lines_of(late)[0], 1)])
    taken = ask(shop["user"], in_time.pk, lines=[(lines_of(in_time)[0], 1)])

    assert refused.status_code == 409 and body(refused)["error"]["code"] == "after_sale_window_closed"
    assert taken.status_code == 201
    assert AfterSale.objects.filter(order_id=late.pk).count() == 0


def test_unpaid_orders_take_no_requests(shop, stripe):
    order_id = place(shop)

    response = ask(shop["user"], order_id, lines=[(lines_of(order_of(order_id))[0], 1)])

    assert response.status_code == 409 and body(response)["error"]["code"] == "after_sale_not_allowed"


# --- Permissions --------------------------------------------------------------------------------------


def test_another_members_order_and_another_communitys_owner_get_404(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    stranger = MembershipFactory(community=shop["community"]).user
    request = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))
    outsider = CommunityFactory().owner

    assert ask(stranger, order.pk, lines=[(berries, 1)]).status_code == 404
    assert client_for(stranger).get(f"/api/v1/orders/{order.pk}/after-sales/").status_code == 404
    assert (
        client_for(stranger)
        .post(f"/api/v1/orders/{order.pk}/after-sales/{request['id']}/cancel/")
        .status_code
        == 404
    )
    for action in ("approve", "reject", "receive"):
        assert decide(outsider, request["id"], action, reason="不行").status_code == 404
        assert decide(shop["user"], request["id"], action, reason="不行").status_code == 404
    assert AfterSale.objects.get().status == "requested" and not Refund.objects.exists()


# --- Reject and cancel -------------------------------------------------------------------------------


def test_a_rejected_request_says_why_and_its_units_can_be_asked_for_again(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    request = body(ask(shop["user"], order.pk, lines=[(berries, 3)]))

    no_reason = decide(shop["owner"], request["id"], "reject")
    rejected = decide(shop["owner"], request["id"], "reject", reason="图片看不出破损，请补充照片")
    approve_after = decide(shop["owner"], request["id"], "approve")

    assert no_reason.status_code == 400 and "reason" in body(no_reason)["error"]["fields"]
    assert rejected.status_code == 200 and body(rejected)["status"] == "rejected"
    assert body(rejected)["decision_reason"] == "图片看不出破损，请补充照片"
    assert approve_after.status_code == 409 and not Refund.objects.exists()
    assert ask(shop["user"], order.pk, lines=[(berries, 3)]).status_code == 201


def test_the_member_cancels_a_pending_request_but_not_a_refunded_one(shop, stripe):
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)
    pending = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))
    done = body(ask(shop["user"], order.pk, lines=[(jam, 1)]))
    decide(shop["owner"], done["id"], "approve")
    url = f"/api/v1/orders/{order.pk}/after-sales/{{}}/cancel/"

    cancelled = client_for(shop["user"]).post(url.format(pending["id"]))
    too_late = client_for(shop["user"]).post(url.format(done["id"]))

    assert cancelled.status_code == 200 and body(cancelled)["status"] == "cancelled"
    assert too_late.status_code == 409 and body(too_late)["error"]["code"] == "invalid_status"
    assert decide(shop["owner"], pending["id"], "approve").status_code == 409
    assert Refund.objects.count() == 1


# --- Return and refund ---------------------------------------------------------------------------------


def test_a_return_is_sent_back_received_refunded_and_put_back_into_stock(shop, stripe):
    order = delivered(shop, stripe, days_ago=1)
    _berries, jam = lines_of(order)
    stock_before = Sku.objects.get(pk=shop["jam"].pk).stock

    request = body(ask(shop["user"], order.pk, type="return_refund", lines=[(jam, 2)], reason="不想要了"))
    approved = body(decide(shop["owner"], request["id"], "approve"))
    early = decide(shop["owner"], request["id"], "receive", restock=True)
    bad = send_back(shop["user"], order.pk, request["id"], carrier="顺丰", tracking_no="x")
    sent = send_back(shop["user"], order.pk, request["id"], carrier="sf", tracking_no="SF9876543210")

    assert approved["status"] == "awaiting_return" and approved["return_address"] == RETURN_ADDRESS
    assert early.status_code == 409 and body(early)["error"]["code"] == "return_not_shipped"
    assert bad.status_code == 400 and {"carrier", "tracking_no"} <= set(body(bad)["error"]["fields"])
    assert sent.status_code == 200 and body(sent)["tracking_no"] == "SF9876543210"
    assert body(sent)["carrier"] == "SF" and not Refund.objects.exists()

    received = decide(shop["owner"], request["id"], "receive", restock=True)
    again = decide(shop["owner"], request["id"], "receive", restock=True)

    assert received.status_code == again.status_code == 200, received.content
    assert body(received)["status"] == "refunded" and body(received)["received_at"]
    assert Refund.objects.get().amount == D("10.00")
    assert Sku.objects.get(pk=shop["jam"].pk).stock == stock_before + 2  # put back once
    assert OrderLine.objects.get(pk=jam).quantity_refunded == 2
    assert order_of(order.pk).amount_refunded == D("10.00")
    assert AuditEntry.objects.filter(action="sku.stock_adjusted", actor_id=shop["owner"].pk).count() == 1
    assert_order_money(order.pk)


def test_a_return_without_restock_leaves_the_stock(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    stock_before = Sku.objects.get(pk=shop["berries"].pk).stock
    request = body(ask(shop["user"], order.pk, type="return_refund", lines=[(berries, 3)]))
    decide(shop["owner"], request["id"], "approve")
    send_back(shop["user"], order.pk, request["id"], carrier="ZTO", tracking_no="ZT12345")

    received = decide(shop["owner"], request["id"], "receive")

    assert (
        body(received)["status"] == "refunded"
        and Sku.objects.get(pk=shop["berries"].pk).stock == stock_before
    )
    assert_order_money(order.pk)


def test_a_return_needs_the_communitys_return_address_and_shipped_goods(shop, stripe):
    shop["community"].return_address = ""
    shop["community"].save()
    order = paid_express(shop, stripe)
    berries, _jam = lines_of(order)

    unshipped = ask(shop["user"], order.pk, type="return_refund", lines=[(berries, 1)])
    shipment_create(actor=shop["owner"], order_id=order.pk, carrier="SF", tracking_no="SF0001")
    request = body(ask(shop["user"], order.pk, type="return_refund", lines=[(berries, 1)]))
    no_address = decide(shop["owner"], request["id"], "approve")

    assert unshipped.status_code == 400 and "lines[0].quantity" in body(unshipped)["error"]["fields"]
    assert no_address.status_code == 409 and body(no_address)["error"]["code"] == "return_address_missing"
    assert AfterSale.objects.get().status == "requested"


# --- Shipping and refunds -------------------------------------------------------------------------------


def test_a_partial_refund_of_unshipped_units_then_shipping_the_rest(shop, stripe):
    order = paid_express(shop, stripe)
    berries, jam = lines_of(order)
    stock_before = Sku.objects.get(pk=shop["berries"].pk).stock
    request = body(ask(shop["user"], order.pk, lines=[(berries, 2)], reason="只要一盒"))

    decide(shop["owner"], request["id"], "approve")
    response = client_for(shop["owner"]).post(
        f"/api/v1/owner/orders/{order.pk}/shipments/",
        {"carrier": "SF", "tracking_no": "SF0002"},
        format="json",
    )

    assert response.status_code == 201, response.content
    assert body(response)["lines"] == [{"line": berries, "quantity": 1}, {"line": jam, "quantity": 2}]
    line = OrderLine.objects.get(pk=berries)
    assert (line.quantity_refunded, line.quantity_released, line.quantity_shipped) == (2, 2, 1)
    assert Sku.objects.get(pk=shop["berries"].pk).stock == stock_before + 2  # never left the warehouse
    shipped = order_of(order.pk)
    assert shipped.fulfilment_status == "shipped" and shipped.payment_status == "partially_refunded"
    assert_order_money(order.pk)


def test_refunding_the_unshipped_rest_makes_a_partly_shipped_order_shipped(shop, stripe):
    from commerce.services.shipments import LineQuantity

    order = paid_express(shop, stripe)
    berries, jam = lines_of(order)
    shipment_create(
        actor=shop["owner"],
        order_id=order.pk,
        carrier="SF",
        tracking_no="SF0001",
        lines=[LineQuantity(berries, 3)],
    )
    request = body(ask(shop["user"], order.pk, lines=[(jam, 2)]))

    decide(shop["owner"], request["id"], "approve")

    assert order_of(order.pk).fulfilment_status == "shipped"
    nothing = client_for(shop["owner"]).post(
        f"/api/v1/owner/orders/{order.pk}/shipments/",
        {"carrier": "SF", "tracking_no": "SF0002"},
        format="json",
    )
    assert nothing.status_code == 409 and body(nothing)["error"]["code"] == "nothing_to_ship"


# --- Commissions --------------------------------------------------------------------------------------


def test_commissions_wait_for_delivery_and_the_after_sale_window(shop, stripe, settings):
    settings.AFTER_SALE_DAYS = 7
    order = paid_express(shop, stripe)
    commission = Commission.objects.get(order=order)
    assert commission.held and commission.amount == D("4.00")

    assert commission_settle_due(now=timezone.now() + timedelta(days=60)) == 0  # not delivered yet
    shipment_create(actor=shop["owner"], order_id=order.pk, carrier="SF", tracking_no="SF0001")
    delivered_at = timezone.now() + timedelta(days=20)
    order_confirm_receipt(actor=shop["user"], order_id=order.pk, now=delivered_at)
    commission.refresh_from_db()

    assert not commission.held and commission.settle_after == delivered_at + timedelta(days=7)
    assert commission_settle_due(now=delivered_at + timedelta(days=6)) == 0
    assert commission_settle_due(now=delivered_at + timedelta(days=7, seconds=1)) == 1


def test_a_return_after_delivery_reverses_the_pending_commission_and_it_is_never_paid(shop, stripe):
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)
    later = timezone.now() + timedelta(days=8)  # past the old window from payment, inside the new one

    request = body(ask(shop["user"], order.pk, type="return_refund", lines=[(berries, 3), (jam, 2)]))
    decide(shop["owner"], request["id"], "approve")
    assert commission_settle_due(now=later) == 0  # an open request holds it
    assert Commission.objects.get(order=order).held
    send_back(shop["user"], order.pk, request["id"], carrier="SF", tracking_no="SF55555")
    decide(shop["owner"], request["id"], "receive")

    commission = Commission.objects.get(order=order)
    assert commission.status == Commission.Status.REVERSED and commission.amount_reversed == D("4.00")
    assert commission_settle_due(now=later + timedelta(days=30)) == 0
    assert not CommissionEntry.objects.exists()
    assert order_of(order.pk).payment_status == "refunded"
    assert_order_money(order.pk)


def test_a_partial_after_sale_refund_reverses_the_commission_in_proportion(shop, stripe):
    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    request = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))

    decide(shop["owner"], request["id"], "approve")

    commission = Commission.objects.get(order=order)
    assert commission.amount_reversed == D("1.00") and commission.status == Commission.Status.PENDING
    assert not commission.held  # the request is closed: the commission is due after the window
    assert commission_settle_due(now=timezone.now() + timedelta(days=8)) == 1
    assert CommissionEntry.objects.get().amount == D("3.00")


def test_a_cancelled_request_frees_the_commission(shop, stripe):
    order = delivered(shop, stripe)
    request = body(ask(shop["user"], order.pk, lines=[(lines_of(order)[0], 1)]))
    assert Commission.objects.get(order=order).held

    client_for(shop["user"]).post(f"/api/v1/orders/{order.pk}/after-sales/{request['id']}/cancel/")

    assert not Commission.objects.get(order=order).held


# --- WeChat Pay ------------------------------------------------------------------------------------------


def test_an_after_sale_refund_through_wechat_pay_is_refunded_by_its_notification(wechatpay_server):
    shop = make_shop(wechat=True)
    order_id = body(place_order(shop["user"], shop["community"], [(shop["berries"], 3)]))[
        "id"
    ]  # self-pickup: paid by WeChat Pay, handed over
    wechatpay_server.pay(Payment.objects.get(order_id=order_id).reference)
    from commerce.services.orders import order_advance

    order_advance(actor=shop["owner"], order_id=order_id, status=Order.Status.FULFILLED)
    berries = lines_of(order_of(order_id))[0]
    request = body(ask(shop["user"], order_id, lines=[(berries, 2)], reason="不新鲜"))

    approved = decide(shop["owner"], request["id"], "approve")

    assert approved.status_code == 200, approved.content
    assert body(approved)["status"] == "approved"  # WeChat Pay answers PROCESSING first
    refund = Refund.objects.get()
    sent = wechatpay_server.refund(refund.reference).request
    assert sent["amount"] == {"refund": 2000, "total": 3000, "currency": "CNY"}
    assert "不新鲜" in sent["reason"]
    wechatpay_server.settle_refund(refund.reference, "SUCCESS")

    assert AfterSale.objects.get().status == "refunded"
    assert order_of(order_id).amount_refunded == D("20.00")
    assert decide(shop["owner"], request["id"], "approve").status_code == 200
    assert len(wechatpay_server.refunds) == 1
    assert_order_money(order_id)


# --- Races -------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_approvals_and_two_receipts_at_once_send_one_refund_each(stripe):
    shop = make_shop()
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)
    refund_only = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))
    ret = body(ask(shop["user"], order.pk, type="return_refund", lines=[(jam, 2)]))
    after_sale_approve(actor=shop["owner"], after_sale_id=ret["id"])
    send_back(shop["user"], order.pk, ret["id"], carrier="SF", tracking_no="SF777777")
    stock_before = Sku.objects.get(pk=shop["jam"].pk).stock

    run_together([lambda: after_sale_approve(actor=shop["owner"], after_sale_id=refund_only["id"])] * 2)
    run_together([lambda: after_sale_receive(actor=shop["owner"], after_sale_id=ret["id"], restock=True)] * 2)

    assert Refund.objects.filter(after_sale_id=refund_only["id"]).count() == 1
    assert Refund.objects.filter(after_sale_id=ret["id"]).count() == 1
    assert len(stripe.refunds) == 2
    assert Sku.objects.get(pk=shop["jam"].pk).stock == stock_before + 2
    assert set(AfterSale.objects.values_list("status", flat=True)) == {"refunded"}
    assert order_of(order.pk).amount_refunded == D("20.00")
    connection.close()


# --- Admin -------------------------------------------------------------------------------------------------


def admin_post(client, action, ids, **fields):
    from django.urls import reverse

    data = {"action": action, "_selected_action": ids, **fields}
    return client.post(reverse("admin:commerce_aftersale_changelist"), data, follow=True)


def test_owners_see_only_their_communities_requests_in_the_admin(shop, stripe, client):
    from django.urls import reverse

    order = delivered(shop, stripe)
    mine = body(ask(shop["user"], order.pk, lines=[(lines_of(order)[0], 1)]))
    other = make_shop()
    other_order = delivered(other, stripe)
    theirs = body(ask(other["user"], other_order.pk, lines=[(lines_of(other_order)[0], 1)]))
    client.force_login(shop["owner"])

    listed = client.get(reverse("admin:commerce_aftersale_changelist"))
    foreign = client.get(reverse("admin:commerce_aftersale_change", args=[theirs["id"]]))
    attempt = admin_post(client, "approve_after_sales", [theirs["id"]], confirm="yes")

    assert listed.status_code == 200
    assert [row.pk for row in listed.context["cl"].result_list] == [mine["id"]]
    assert foreign.status_code == 302  # the admin says it does not exist and goes back
    assert attempt.status_code == 200 and AfterSale.objects.get(pk=theirs["id"]).status == "requested"
    assert not Refund.objects.exists()


def test_the_admin_asks_before_approving_then_refunds_with_the_owner_as_actor(shop, stripe, client):
    order = delivered(shop, stripe)
    request = body(ask(shop["user"], order.pk, lines=[(lines_of(order)[0], 2)], reason="发霉"))
    client.force_login(shop["owner"])

    page = admin_post(client, "approve_after_sales", [request["id"]])

    assert page.templates[0].name == "admin/commerce/aftersale/decision_confirmation.html"
    content = page.content.decode()
    assert "¥20.00" in content and "发霉" in content and not Refund.objects.exists()

    done = admin_post(client, "approve_after_sales", [request["id"]], confirm="yes", reason="同意退款")

    assert AfterSale.objects.get().status == "refunded" and Refund.objects.get().amount == D("20.00")
    assert AuditEntry.objects.get(action="after_sale.approved").actor_id == shop["owner"].pk
    assert any("1" in str(m) for m in done.context["messages"])


def test_the_admin_rejects_only_with_a_reason_and_receives_returns_with_restock(shop, stripe, client):
    order = delivered(shop, stripe)
    berries, jam = lines_of(order)
    refused = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))
    ret = body(ask(shop["user"], order.pk, type="return_refund", lines=[(jam, 2)]))
    after_sale_approve(actor=shop["owner"], after_sale_id=ret["id"])
    stock_before = Sku.objects.get(pk=shop["jam"].pk).stock
    client.force_login(shop["owner"])

    no_reason = admin_post(client, "reject_after_sales", [refused["id"]], confirm="yes", reason="")
    not_sent = admin_post(client, "receive_after_sales", [ret["id"]])
    send_back(shop["user"], order.pk, ret["id"], carrier="SF", tracking_no="SF24680")
    admin_post(client, "reject_after_sales", [refused["id"]], confirm="yes", reason="已超出质保")
    admin_post(client, "receive_after_sales", [ret["id"]], confirm="yes", restock="on")

    assert no_reason.context["form"].errors and "reason" in no_reason.context["form"].errors
    assert any("tracking" in str(m) or "运单" in str(m) for m in not_sent.context["messages"])
    assert AfterSale.objects.get(pk=refused["id"]).decision_reason == "已超出质保"
    assert AfterSale.objects.get(pk=ret["id"]).status == "refunded"
    assert Sku.objects.get(pk=shop["jam"].pk).stock == stock_before + 2
    assert Refund.objects.get().after_sale_id == ret["id"]


def test_an_approval_the_order_can_no_longer_pay_changes_nothing(shop, stripe):
    from tests.commerce.flows import refund_as_owner

    order = delivered(shop, stripe)
    berries, _jam = lines_of(order)
    request = body(ask(shop["user"], order.pk, lines=[(berries, 1)]))
    assert refund_as_owner(shop["owner"], order.pk, amount="35.00").status_code == 201  # 5.00 left

    response = decide(shop["owner"], request["id"], "approve")

    assert response.status_code == 400 and body(response)["error"]["code"] == "refund_exceeds_paid"
    assert AfterSale.objects.get().status == "requested"
    assert OrderLine.objects.get(pk=berries).quantity_refunded == 0
    assert Refund.objects.filter(after_sale__isnull=False).count() == 0


def test_the_after_sale_pages_read_in_chinese(shop, stripe, client):
    from django.urls import reverse

    from tests.commerce.test_console_chinese import english_phrases

    order = delivered(shop, stripe)
    berries, jam = lines_of(order)
    request = body(ask(shop["user"], order.pk, lines=[(berries, 1)], reason="坏了"))
    ret = body(ask(shop["user"], order.pk, type="return_refund", lines=[(jam, 1)], reason="不要了"))
    after_sale_approve(actor=shop["owner"], after_sale_id=ret["id"])
    send_back(shop["user"], order.pk, ret["id"], carrier="SF", tracking_no="SF13579")
    client.force_login(shop["owner"])
    pages = {
        "list": client.get(reverse("admin:commerce_aftersale_changelist")),
        "request": client.get(reverse("admin:commerce_aftersale_change", args=[ret["id"]])),
        "approve": admin_post(client, "approve_after_sales", [request["id"]]),
        "reject": admin_post(client, "reject_after_sales", [request["id"]]),
        "receive": admin_post(client, "receive_after_sales", [ret["id"]]),
        "order": client.get(reverse("admin:commerce_order_change", args=[order.pk])),
    }

    found = {name: english_phrases(response.content.decode()) for name, response in pages.items()}

    assert all(response.status_code == 200 for response in pages.values())
    assert "售后申请" in pages["list"].content.decode() and "退货运单号" in pages["request"].content.decode()
    assert "将按原支付方式退还" in pages["receive"].content.decode()
    assert {name: phrases for name, phrases in found.items() if phrases} == {}


def test_an_after_sale_on_a_discounted_order_gives_back_only_what_the_units_were_paid(shop, stripe):
    from commerce.models import Coupon
    from commerce.services.coupons import coupon_create, coupon_issue

    coupon = coupon_create(
        actor=shop["owner"],
        community=shop["community"],
        name="满30减8",
        kind=Coupon.Kind.AMOUNT,
        amount_off=D("8.00"),
        min_spend=D("30.00"),
        valid_until=timezone.now() + timedelta(days=30),
    )
    member = shop["user"].memberships.get(community=shop["community"])
    [grant] = coupon_issue(actor=shop["owner"], coupon=coupon, membership_ids=[member.pk], issue_key="as")
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["berries"].pk, "quantity": 3}, {"sku": shop["jam"].pk, "quantity": 2}],
        "address": shop["address"].pk,
        "coupon": grant.pk,
    }
    placed = client_for(shop["user"]).post("/api/v1/orders/", payload, format="json")
    assert placed.status_code == 201 and body(placed)["discount"] == "8.00", placed.content
    order = pay(stripe, body(placed)["id"])
    shipment_create(actor=shop["owner"], order_id=order.pk, carrier="SF", tracking_no="SF0002")
    order_confirm_receipt(actor=shop["user"], order_id=order.pk)
    berries = OrderLine.objects.get(order=order, sku=shop["berries"])
    assert berries.discount == D("6.00") and berries.paid_amount == D("24.00")  # 30 of 40 bears 6 of 8

    too_much = ask(shop["user"], order.pk, lines=[(berries.pk, 3)], amount="30.00")
    assert too_much.status_code == 400 and "amount" in too_much.json()["error"]["fields"]
    response = ask(shop["user"], order.pk, lines=[(berries.pk, 3)])
    assert response.status_code == 201 and body(response)["amount"] == "24.00"
    assert decide(shop["owner"], body(response)["id"], "approve").status_code == 200

    order.refresh_from_db()
    assert order.amount_refunded == D("24.00") and order.net_amount == D("8.00")
    assert order.total == order.amount_paid == D("32.00")
    assert_order_money(order.pk)
