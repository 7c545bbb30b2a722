"""``skus_read`` on PostgreSQL is SQL built once; it reads what the ORM reads."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commerce.models import Sku
from commerce.services.stock import skus_read
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory

pytestmark = pytest.mark.django_db


def fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def test_skus_and_their_products_are_what_the_orm_reads():
    product = ProductFactory(title="苹果", tags=["脆甜", "产地直发"], min_tier=2)
    skus = [
        SkuFactory(product=product, name="5斤", price=Decimal("39.90"), stock=7),
        SkuFactory(product=product, name="下架", is_active=False),
        SkuFactory(product=EventFactory(title="读书会")),
    ]
    ids = [sku.pk for sku in skus] + [10**9]  # an unknown id is simply absent

    with CaptureQueriesContext(connection) as queries:
        read = skus_read(sku_ids=ids)
        products = {sku_id: sku.product for sku_id, sku in read.items()}  # cached: no query
    assert len(queries) == 1

    expected = {sku.pk: sku for sku in Sku.objects.select_related("product").filter(pk__in=ids)}
    assert sorted(read) == sorted(expected)
    for sku_id, sku in read.items():
        assert fields(sku) == fields(expected[sku_id])
        assert fields(products[sku_id]) == fields(expected[sku_id].product)
    assert read[skus[0].pk].product.tags == ["脆甜", "产地直发"]
