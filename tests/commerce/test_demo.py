"""The demo data: fitting goods, one misfit and paid orders per community; safe to load twice."""

import pytest
from django.core.management import call_command

from commerce.models import Order, Product, Refund

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_products_and_paid_orders_once(capsys):
    call_command("seed_demo")
    counts = (Product.objects.count(), Order.objects.count(), Refund.objects.count())
    call_command("seed_demo")

    assert (Product.objects.count(), Order.objects.count(), Refund.objects.count()) == counts
    assert Product.objects.filter(community__slug="caijing-shuyou", title__contains="杨梅").exists()
    assert Product.objects.filter(kind=Product.Kind.EVENT, capacity__gt=0).count() >= 3
    assert Order.objects.filter(status=Order.Status.PAID).count() >= 10
    assert Order.objects.filter(status=Order.Status.PARTIALLY_REFUNDED).count() == 1
    for slug in ("caijing-shuyou", "baoma-chengzhang", "chengshi-paotuan"):
        assert Product.objects.filter(community__slug=slug).count() >= 4


def test_commerce_demo_steps_skip_missing_communities():
    from commerce import demo
    from members.demo import DemoContext

    ctx = DemoContext()
    for _name, step in demo.STEPS:
        step(ctx)

    assert not Product.objects.exists() and not Order.objects.exists()
