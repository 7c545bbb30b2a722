"""The demo data: fitting goods, one misfit, paid orders and refunds per community; safe to load twice;
and, as in the embedded default (the sandbox provider on), a newcomer can buy, pay and refund."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from commerce.models import (
    AfterSale,
    Commission,
    Coupon,
    ExportJob,
    Order,
    Product,
    Refund,
    Reminder,
    WebhookEvent,
    Withdrawal,
)
from commerce.reports.roles import user_is_finance
from members.models import Membership, Tier, User
from tests.conftest import client_for
from trust.models import FitAssessment

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded(settings, tmp_path):
    """The embedded default's payments: the sandbox on, no other provider; exports under tmp."""
    settings.PAYMENT_SANDBOX_ENABLED = True
    settings.STRIPE_SECRET_KEY = ""
    settings.WECHATPAY_MCHID = ""
    settings.MEDIA_ROOT = tmp_path


# Each step commits and its on-commit work (notifications, exports) runs, as in the embedded default.
committing = pytest.mark.django_db(transaction=True)


@committing
def test_seed_demo_once_then_every_login_does_its_job_and_a_newcomer_buys_pays_and_is_refunded(
    embedded, capsys
):
    """One committing test (each seeding takes seconds): idempotent data, the logins' roles, then
    the README's purchase through the API: order, pay at the sandbox, owner refunds."""
    call_command("seed_demo")
    counts = (Product.objects.count(), Order.objects.count(), Refund.objects.count())
    call_command("seed_demo")

    assert (Product.objects.count(), Order.objects.count(), Refund.objects.count()) == counts
    assert Product.objects.filter(community__slug="caijing-shuyou", title__contains="杨梅").exists()
    assert Product.objects.filter(kind=Product.Kind.EVENT, capacity__gt=0).count() >= 3
    assert Order.objects.filter(status=Order.Status.PAID).count() >= 10
    assert Order.objects.filter(kind=Order.Kind.ENTRY, status=Order.Status.PAID).count() == 4  # paid joins
    assert Order.objects.filter(status=Order.Status.PARTIALLY_REFUNDED).count() == 2
    assert set(Refund.objects.values_list("status", "source")) == {("succeeded", "owner")}
    for slug in ("caijing-shuyou", "baoma-chengzhang", "chengshi-paotuan"):
        assert Product.objects.filter(community__slug=slug).count() >= 4
    # the sandbox purchase was paid and partly refunded through signed notifications
    events = WebhookEvent.objects.filter(provider="sandbox")
    assert set(events.values_list("type", "outcome")) == {
        ("TRANSACTION.SUCCESS", "applied"),
        ("REFUND.SUCCESS", "applied"),
    }
    assert ExportJob.objects.get(requested_by__username="caiwu_zhao").status == ExportJob.Status.DONE
    # every feature has data: tiers, referral commissions, reminders, a fit warning
    assert Tier.objects.filter(community__slug="caijing-shuyou").count() == 3
    assert Commission.objects.exists() and Reminder.objects.exists()
    assert Coupon.objects.filter(community__slug="caijing-shuyou").count() == 3  # 续费半价 among them
    assert FitAssessment.objects.get(product__title__contains="杨梅").warning

    printed = capsys.readouterr().out
    for username in ("admin", "wu_caijing", "qian_yunying", "caiwu_zhao", "li_xiaoyu"):
        assert username in printed

    assert user_is_finance(user=User.objects.get(username="caiwu_zhao"))
    operator = Membership.objects.get(user__username="qian_yunying", community__slug="chengshi-paotuan")
    assert operator.role == Membership.Role.OPERATOR and operator.user.is_staff
    owner = User.objects.get(username="wu_caijing")
    assert owner.is_staff and owner.owned_communities.filter(slug="caijing-shuyou").exists()

    member = client_for(User.objects.get(username="li_xiaoyu"))
    owner = client_for(User.objects.get(username="wu_caijing"))

    products = member.get("/api/v1/communities/caijing-shuyou/products/").json()["results"]
    book = next(p for p in products if p["title"].startswith("《置身事内》"))
    placed = member.post(
        "/api/v1/orders/",
        {"community": "caijing-shuyou", "lines": [{"sku": book["skus"][0]["id"], "quantity": 1}]},
        format="json",
    )
    assert placed.status_code == 201, placed.content
    order = placed.json()
    assert order["status"] == "pending_payment" and order["payment"]["provider"] == "sandbox"
    assert order["payment"]["request_payment"]["package"].startswith("prepay_id=sandbox_")

    paid = member.post("/api/v1/payments/sandbox/pay/", {"order_id": order["id"]}, format="json")
    assert paid.status_code == 202, paid.content
    assert member.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "paid"

    refund = owner.post(f"/api/v1/owner/orders/{order['id']}/refund/", {"reason": "演示退款"}, format="json")
    assert refund.status_code == 201, refund.content
    assert Refund.objects.get(pk=refund.json()["id"]).status == Refund.Status.SUCCEEDED
    after = member.get(f"/api/v1/orders/{order['id']}/").json()
    assert after["status"] == "refunded" and Decimal(after["amount_refunded"]) == Decimal(after["total"]) > 0

    # the README's after-sale: the owner approves the member's refund-only request in the admin
    claim = AfterSale.objects.get(status=AfterSale.Status.REQUESTED, type=AfterSale.Type.REFUND_ONLY)
    assert claim.order.buyer.username == "li_xiaoyu" and claim.order.fulfilment_status == "delivered"
    assert claim.order.community.return_address
    shipped = Order.objects.get(buyer__username="li_xiaoyu", fulfilment_status="shipped")
    assert shipped.delivery == "express" and shipped.shipments.get().tracking_no
    assert member.get("/api/v1/me/addresses/").json()["results"][0]["is_default"]
    admin = Client()
    admin.force_login(User.objects.get(username="wu_caijing"))
    decision = {"action": "approve_after_sales", "_selected_action": [claim.pk], "confirm": "yes"}
    admin.post(reverse("admin:commerce_aftersale_changelist"), decision, follow=True)
    assert AfterSale.objects.get(pk=claim.pk).status == AfterSale.Status.REFUNDED

    # the README's withdrawal: finance approves it in the admin, the KOL confirms at the sandbox: paid
    withdrawal = Withdrawal.objects.get(user__username="li_xiaoyu", status=Withdrawal.Status.REQUESTED)
    admin.force_login(User.objects.get(username="caiwu_zhao"))
    review = {"action": "approve_withdrawals", "_selected_action": [withdrawal.pk]}
    url = reverse("admin:commerce_withdrawal_changelist")
    assert withdrawal.out_bill_no in admin.post(url, review).content.decode()
    admin.post(url, {**review, "confirm": "yes", "note": "", "key": "demo"}, follow=True)
    shown = member.get(f"/api/v1/me/withdrawals/{withdrawal.pk}/").json()
    assert shown["status"] == "awaiting_confirmation" and shown["package_info"].startswith("sandbox_")
    confirmed = member.post(
        "/api/v1/payments/sandbox/transfer/confirm/", {"withdrawal_id": withdrawal.pk}, format="json"
    )
    assert confirmed.status_code == 202 and confirmed.json()["withdrawal_status"] == "paid"


def test_commerce_demo_steps_skip_missing_communities():
    from commerce import demo
    from members.demo import DemoContext

    ctx = DemoContext()
    for _name, step in demo.STEPS:
        step(ctx)

    assert not Product.objects.exists() and not Order.objects.exists()
