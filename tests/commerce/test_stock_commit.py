"""Checkout's last write: the stock taken and the transaction committed in one message (PostgreSQL)."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from commerce.errors import OutOfStock
from commerce.models import Order, Sku
from commerce.services.stock import stock_take_and_commit
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import place_order
from tests.members.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the real, outermost transactions


def stock(sku) -> int:
    return Sku.objects.values_list("stock", flat=True).get(pk=sku.pk)


def test_the_stock_and_the_commit_go_in_one_statement_and_what_came_before_is_committed():
    first, second = SkuFactory(stock=5), SkuFactory(stock=4)
    committed = []
    with CaptureQueriesContext(connection) as queries, transaction.atomic(durable=True):
        Sku.objects.filter(pk=first.pk).update(name="改名")
        transaction.on_commit(lambda: committed.append(True))
        stock_take_and_commit(quantities={second.pk: 4, first.pk: 2})
    (last,) = [q["sql"] for q in queries.captured_queries if "COMMIT" in q["sql"] and "UPDATE" in q["sql"]]
    assert last.count("UPDATE") == 2 and last.rstrip().endswith("COMMIT")
    assert (stock(first), stock(second)) == (3, 0)
    assert Sku.objects.get(pk=first.pk).name == "改名" and committed == [True]


def test_a_short_sku_is_out_of_stock_and_nothing_of_the_transaction_is_kept():
    first, second = SkuFactory(stock=5), SkuFactory(stock=1)
    committed = []
    with pytest.raises(OutOfStock), transaction.atomic(durable=True):
        Sku.objects.filter(pk=first.pk).update(name="不应保存")
        transaction.on_commit(lambda: committed.append(True))
        stock_take_and_commit(quantities={first.pk: 2, second.pk: 2})
    assert (stock(first), stock(second)) == (5, 1)
    assert Sku.objects.get(pk=first.pk).name != "不应保存" and committed == []


def test_inside_another_transaction_it_takes_the_stock_without_committing():
    sku = SkuFactory(stock=3)
    with pytest.raises(RuntimeError), transaction.atomic():
        with transaction.atomic():
            stock_take_and_commit(quantities={sku.pk: 1})
        raise RuntimeError  # the outer transaction rolls back: so does the stock
    assert stock(sku) == 3


def test_a_checkout_commits_its_order_with_the_stock_and_answers_out_of_stock_when_short(stripe):
    buyer = MembershipFactory()
    sku = SkuFactory(product=ProductFactory(community=buyer.community), price=Decimal("9.90"), stock=2)
    with CaptureQueriesContext(connection) as queries:
        placed = place_order(buyer.user, buyer.community, [(sku, 2)])
    assert placed.status_code == 201 and stock(sku) == 0
    assert [q for q in queries.captured_queries if "UPDATE commerce_sku" in q["sql"] and "COMMIT" in q["sql"]]
    refused = place_order(buyer.user, buyer.community, [(sku, 1)])
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "out_of_stock"
    assert Order.objects.filter(buyer=buyer.user).count() == 1
