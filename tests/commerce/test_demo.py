"""The demo data: fitting goods, one misfit, paid orders and refunds per community; safe to load twice;
and, as in the embedded default (the sandbox provider on), a newcomer can buy, pay and refund."""

from decimal import Decimal

import pytest
from django.core.management import call_command

from commerce.models import Commission, Coupon, ExportJob, Order, Product, Refund, Reminder, WebhookEvent
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


def test_commerce_demo_steps_skip_missing_communities():
    from commerce import demo
    from members.demo import DemoContext

    ctx = DemoContext()
    for _name, step in demo.STEPS:
        step(ctx)

    assert not Product.objects.exists() and not Order.objects.exists()
