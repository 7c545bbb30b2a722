"""Checkout's write: the order's rows and the stock in one message, its own transaction (PostgreSQL)."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from commerce.errors import OutOfStock
from commerce.models import Order, OrderLine, Payment, Sku
from commerce.services import orders
from commerce.services.orders import LineInput, order_create
from commerce.services.stock import stock_take_in_one_message
from shequn_backend.models import AuditEntry
from shequn_backend.sql import insert_sql, mark_inserted, pks_allocate
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import place_order
from tests.members.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the real, outermost transactions


def stock(sku) -> int:
    return Sku.objects.values_list("stock", flat=True).get(pk=sku.pk)


def renamed(sku, name: str) -> Sku:
    """``sku`` with a new name, as a new row to insert (the writes sent with the stock)."""
    copy = Sku(product=sku.product, name=name, price=sku.price, currency=sku.currency, stock=1)
    ((copy.pk,),) = pks_allocate((Sku, 1))
    return copy


def test_the_writes_and_the_stock_go_in_one_message_and_commit_together():
    first, second = SkuFactory(stock=5), SkuFactory(stock=4)
    extra = renamed(first, "同一消息")
    with CaptureQueriesContext(connection) as queries:
        stock_take_in_one_message(quantities={second.pk: 4, first.pk: 2}, writes=insert_sql([extra]))
    (message,) = queries.captured_queries
    assert message["sql"].startswith("INSERT INTO") and message["sql"].count("UPDATE commerce_sku") == 2
    assert (stock(first), stock(second)) == (3, 0)
    assert Sku.objects.get(pk=extra.pk).name == "同一消息"


def test_a_short_sku_is_out_of_stock_and_none_of_the_writes_is_kept():
    first, second = SkuFactory(stock=5), SkuFactory(stock=1)
    extra = renamed(first, "不应保存")
    with pytest.raises(OutOfStock):
        stock_take_in_one_message(quantities={first.pk: 2, second.pk: 2}, writes=insert_sql([extra]))
    assert (stock(first), stock(second)) == (5, 1)
    assert not Sku.objects.filter(pk=extra.pk).exists()
    assert Sku.objects.filter(pk=first.pk).exists()  # the connection is usable: no transaction left open


def test_it_refuses_to_run_inside_a_transaction():
    sku = SkuFactory(stock=3)
    with pytest.raises(RuntimeError), transaction.atomic():
        stock_take_in_one_message(quantities={sku.pk: 1}, writes="")
    assert stock(sku) == 3


def test_pks_allocate_takes_distinct_keys_from_each_sequence_in_one_query():
    with CaptureQueriesContext(connection) as queries:
        orders, lines, none = pks_allocate((Order, 2), (OrderLine, 3), (Payment, 0))
    assert len(queries) == 1 and len(set(orders)) == 2 and len(set(lines)) == 3 and none == []
    assert pks_allocate((Order, 1))[0][0] > max(orders)


def rows(order: Order) -> dict:
    """What was written for ``order``, without keys, times and random references."""
    volatile = {"id", "order", "created_at", "updated_at", "hold_expires_at", "reference", "idempotency_key"}

    def plain(obj) -> dict:
        return {k: v for k, v in model_to_dict(obj).items() if k not in volatile}

    entry = AuditEntry.objects.get(target_type="commerce.order", target_id=str(order.pk))
    changes = {k: v for k, v in entry.changes.items() if k != "hold_expires_at"}
    return {
        "order": {k: v for k, v in plain(order).items() if k not in ("request_fingerprint",)},
        "lines": [plain(line) for line in order.lines.order_by("pk")],
        "audit": (entry.action, entry.actor_label, entry.community_id, changes),
        "payments": [plain(payment) for payment in order.payments.all()],
    }


def test_the_checkout_writes_in_one_message_what_the_row_by_row_path_writes(monkeypatch):
    buyer = MembershipFactory()
    # quotes, a backslash and placeholders in values: bound by the driver, never spliced
    product = ProductFactory(community=buyer.community, title="五折 50% 'off' \\ %s; DROP")
    sku, other = (SkuFactory(product=product, price=Decimal(p), stock=5) for p in ("9.90", "3.05"))
    lines = [LineInput(sku_id=sku.pk, quantity=2), LineInput(sku_id=other.pk, quantity=1)]

    def place(**extra):
        return order_create(
            actor=buyer.user, buyer=buyer.user, community=buyer.community, lines=lines,
            payment_provider="stripe", **extra,
        )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        fast = place(idempotency_key="k-one-message")
    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"] or "UPDATE" in q["sql"]]
    assert len(writes) == 1 and "BEGIN" not in [q["sql"] for q in queries.captured_queries]
    monkeypatch.setattr(orders, "_in_one_message", lambda coupon: False)  # the row-by-row path
    slow = place(idempotency_key="k-row-by-row")
    assert fast.created and slow.created and fast.placed.payment.pk
    expected = rows(Order.objects.get(pk=slow.order.pk))
    assert rows(Order.objects.get(pk=fast.order.pk)) == expected
    assert expected["payments"][0]["status"] == Payment.Status.CREATING and len(expected["lines"]) == 2
    assert expected["lines"][0]["title"].startswith("五折 50% 'off' \\ %s; DROP / ")
    assert (stock(sku), stock(other)) == (1, 3)
    written = Order.objects.get(pk=fast.order.pk)
    assert (written.created_at, written.total) == (fast.order.created_at, fast.order.total)


def test_a_key_taken_meanwhile_rolls_the_whole_message_back_and_returns_the_first_order():
    buyer = MembershipFactory()
    sku = SkuFactory(product=ProductFactory(community=buyer.community), price=Decimal("5.00"), stock=5)
    lines = [LineInput(sku_id=sku.pk, quantity=1)]
    first = order_create(
        actor=buyer.user, buyer=buyer.user, community=buyer.community, lines=lines, idempotency_key="k"
    )
    # key_used=False: the lookup is skipped, as when the two requests arrive together.
    again = order_create(
        actor=buyer.user,
        buyer=buyer.user,
        community=buyer.community,
        lines=lines,
        idempotency_key="k",
        key_used=False,
        payment_provider="stripe",
    )
    assert not again.created and again.order.pk == first.order.pk
    assert stock(sku) == 4 and Order.objects.count() == OrderLine.objects.count() == 1
    assert not Payment.objects.exists() and AuditEntry.objects.filter(action="order.created").count() == 1


def test_a_racer_whose_read_was_stale_gets_out_of_stock_and_nothing_is_written(stripe, monkeypatch):
    buyer = MembershipFactory()
    sku = SkuFactory(product=ProductFactory(community=buyer.community), price=Decimal("9.90"), stock=2)
    placed = place_order(buyer.user, buyer.community, [(sku, 2)])
    assert placed.status_code == 201 and stock(sku) == 0
    assert Payment.objects.get(order_id=placed.json()["id"]).provider_ref  # sent after the commit
    read = orders.skus_read

    def stale(**kwargs):  # read before the last units went: the message's constraint refuses
        skus = read(**kwargs)
        for found in skus.values():
            found.stock = 2
        return skus

    monkeypatch.setattr(orders, "skus_read", stale)
    refused = place_order(buyer.user, buyer.community, [(sku, 1)])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "out_of_stock"
    assert Order.objects.filter(buyer=buyer.user).count() == 1 and stock(sku) == 0
    assert Payment.objects.count() == OrderLine.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.created").count() == 1


def test_mark_inserted_makes_a_later_save_an_update():
    sku = SkuFactory(stock=2)
    extra = renamed(sku, "新")
    stock_take_in_one_message(quantities={}, writes=insert_sql([extra]))
    mark_inserted([extra])
    extra.name = "改"
    with CaptureQueriesContext(connection) as queries:
        extra.save(update_fields=["name"])
    assert queries.captured_queries[0]["sql"].startswith("UPDATE")
    assert Sku.objects.get(pk=extra.pk).name == "改"
