from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from commerce.models import Category, Product, Sku
from tests.members.factories import CommunityFactory


def category(path: str = "图书/投资理财") -> Category:
    """Categories ship as data (a migration): tests look them up, never create them."""
    return Category.objects.get(path=path)


class ProductFactory(DjangoModelFactory):
    class Meta:
        model = Product

    community = factory.SubFactory(CommunityFactory)
    title = factory.Sequence(lambda n: f"投资理财入门 第{n}版")
    description = "从零开始的理财读本"
    category = factory.LazyFunction(category)
    tags = factory.LazyFunction(lambda: ["理财", "读书"])
    kind = Product.Kind.GOODS


class EventFactory(ProductFactory):
    title = factory.Sequence(lambda n: f"线下读书会 第{n}期")
    category = factory.LazyFunction(lambda: category("服务/线下活动"))
    kind = Product.Kind.EVENT
    starts_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))
    location = "上海市静安区"
    capacity = 30


class SkuFactory(DjangoModelFactory):
    class Meta:
        model = Sku

    product = factory.SubFactory(ProductFactory)
    name = "标准版"
    price = Decimal("99.00")
    stock = 10
