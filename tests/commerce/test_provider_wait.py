"""Checkout calls the payment provider between its transactions, its connection given back to the pool."""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.db import connection

from commerce.services import payments
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import place_order
from tests.members.factories import MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)  # to see the transactions it opens


def test_checkout_waits_on_the_provider_outside_any_transaction_with_its_connection_released(
    stripe, monkeypatch
):
    released, seen = [], []

    @contextmanager
    def recording(alias="default"):
        released.append(alias)
        yield
        released.pop()

    real = payments._create_at_provider

    def create(**kwargs):
        seen.append((list(released), connection.in_atomic_block))
        return real(**kwargs)

    monkeypatch.setattr(payments, "connection_released", recording)
    monkeypatch.setattr(payments, "_create_at_provider", create)
    buyer = MembershipFactory()
    sku = SkuFactory(product=ProductFactory(community=buyer.community), price=Decimal("9.90"), stock=3)

    response = place_order(buyer.user, buyer.community, [(sku, 1)])

    assert response.status_code == 201
    assert seen == [(["default"], False)]
