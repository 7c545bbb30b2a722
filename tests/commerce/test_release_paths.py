"""Releasing lapsed stock holds: PostgreSQL's two set-based statements and the ORM's path, the same rows.

The batch holds an order of two lines with a reserved coupon (its hold
lapsed with microseconds), one whose line already gave back part of its
units (lapsed on a whole second) and one still within its hold.
"""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commerce.models import MemberCoupon, Order, OrderLine, Payment, Sku
from commerce.services import orders as service
from commerce.services.orders import order_release_expired
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, place_order
from tests.commerce.test_coupons import make_coupon, order_with
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based path is PostgreSQL's"),
]


class _Rollback(Exception):
    pass


@pytest.fixture
def lapsed(stripe):
    community = CommunityFactory()
    book = SkuFactory(product=ProductFactory(community=community), price=D("33.33"), stock=20)
    pen = SkuFactory(product=ProductFactory(community=community, title="钢笔"), price=D("10.01"), stock=20)
    member = MembershipFactory(community=community).user
    make_coupon(community, code="FIRST", min_spend=D("0"), amount_off=D("5.00"))
    now = timezone.now()
    with_coupon = body(order_with(member, community, [(book, 2), (pen, 1)], coupon_code="first"))["id"]
    partly = body(place_order(member, community, [(book, 3)]))["id"]
    live = body(place_order(member, community, [(pen, 1)]))["id"]
    Order.objects.filter(pk=with_coupon).update(hold_expires_at=now - timedelta(minutes=1))
    Order.objects.filter(pk=partly).update(
        hold_expires_at=(now - timedelta(minutes=2)).replace(microsecond=0)
    )
    OrderLine.objects.filter(order_id=partly).update(quantity_released=1)
    Sku.objects.filter(pk=book.pk).update(stock=20 - 2 - 3 + 1)
    return {"now": now, "with_coupon": with_coupon, "partly": partly, "live": live, "book": book, "pen": pen}


def _rows(since_audit: int) -> dict:
    return {
        "orders": sorted(
            Order.objects.values_list(
                "pk",
                "status",
                "payment_status",
                "fulfilment_status",
                "cancelled_at",
                "cancel_reason",
                "hold_expires_at",
                "coupon_id",
            )
        ),
        "lines": sorted(OrderLine.objects.values_list("pk", "quantity_released")),
        "skus": sorted(Sku.objects.values_list("pk", "stock")),
        "coupons": sorted(MemberCoupon.objects.values_list("pk", "status", "order_id")),
        "payments": sorted(Payment.objects.values_list("pk", "status")),
        "audit": sorted(
            AuditEntry.objects.filter(pk__gt=since_audit).values_list(
                "actor_id",
                "actor_label",
                "action",
                "target_type",
                "target_id",
                "community_id",
                "changes",
                "note",
            )
        ),
    }


def test_both_paths_write_the_same_rows(lapsed, monkeypatch):
    since_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    results = {}
    for name, set_based in (("orm", False), ("sql", True)):
        monkeypatch.setattr(service, "_set_based", lambda set_based=set_based: set_based)
        queued: list[int] = []
        monkeypatch.setattr(
            service,
            "_cancel_batch_at_provider_on_commit",
            lambda *, order_ids, queued=queued: queued.extend(order_ids),
        )
        try:
            with transaction.atomic():
                released = order_release_expired(now=lapsed["now"], batch_size=1)
                results[name] = (released, sorted(queued), _rows(since_audit))
                raise _Rollback
        except _Rollback:
            pass

    assert results["orm"] == results["sql"]
    released, queued, rows = results["sql"]
    assert released == 2 and queued == sorted([lapsed["with_coupon"], lapsed["partly"]])
    assert dict(rows["skus"]) == {lapsed["book"].pk: 20, lapsed["pen"].pk: 19}  # the live order keeps its pen
    assert [status for _pk, status, _order in rows["coupons"]] == ["available"]
    assert len(rows["audit"]) == 2


def test_a_released_batch_closes_each_payment_at_the_provider_in_a_task_of_its_own(
    lapsed, stripe, monkeypatch, django_capture_on_commit_callbacks
):
    from commerce import tasks

    closed: list[int] = []
    real = tasks.payment_cancel_at_provider
    monkeypatch.setattr(
        tasks,
        "payment_cancel_at_provider",
        lambda *, order_id: closed.append(order_id) or real(order_id=order_id),
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert order_release_expired(now=lapsed["now"]) == 2

    assert len(callbacks) == 1  # one message for the batch; a worker queues one task per order
    assert sorted(closed) == sorted([lapsed["with_coupon"], lapsed["partly"]])
    for order_id in closed:
        payment = Payment.objects.get(order_id=order_id)
        assert payment.status == Payment.Status.CANCELED
        assert stripe.payment_intents[payment.provider_ref]["status"] == "canceled"
