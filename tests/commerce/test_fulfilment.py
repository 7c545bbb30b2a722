"""Payment and fulfilment apart: two states with their own moves, ``status`` their summary."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from commerce.models import Order
from commerce.services.order_states import InvalidTransition
from commerce.services.orders import order_advance
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(stripe):
    """A paid order of 3 x 10.00 of goods."""
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=10)
    member = MembershipFactory(community=community)
    order_id = body(place_order(member.user, community, [(sku, 3)]))["id"]
    pay(stripe, order_id)
    return {"order": Order.objects.get(pk=order_id), "owner": community.owner, "member": member, "sku": sku}


def fresh(order) -> Order:
    return Order.objects.get(pk=order.pk)


def test_a_paid_order_is_paid_and_unfulfilled(paid):
    order = fresh(paid["order"])
    assert (order.status, order.payment_status, order.fulfilment_status) == ("paid", "paid", "unfulfilled")


def test_a_partial_refund_no_longer_blocks_fulfilment(paid):
    assert refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00").status_code == 201

    order = order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.FULFILLED)

    order = fresh(order)
    assert order.payment_status == "partially_refunded" and order.fulfilment_status == "delivered"
    assert order.status == "partially_refunded"  # money news wins in the summary: the refund is not hidden


def test_a_completed_order_partly_refunded_stays_completed(paid):
    order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.COMPLETED)

    assert refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00").status_code == 201

    order = fresh(paid["order"])
    assert order.fulfilment_status == "completed" and order.payment_status == "partially_refunded"
    assert order.amount_refunded == Decimal("10.00")


def test_a_full_refund_keeps_what_was_fulfilled(paid):
    order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.FULFILLED)
    refund_as_owner(paid["owner"], paid["order"].pk)

    order = fresh(paid["order"])
    assert (order.status, order.payment_status, order.fulfilment_status) == (
        "refunded",
        "refunded",
        "delivered",
    )
    with pytest.raises(InvalidTransition):  # nothing is kept: it does not move on
        order_advance(actor=paid["owner"], order_id=order.pk, status=Order.Status.COMPLETED)


def test_an_unpaid_order_cannot_be_fulfilled(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("10.00"), stock=10)
    member = MembershipFactory(community=community)
    order_id = body(place_order(member.user, community, [(sku, 1)]))["id"]

    with pytest.raises(InvalidTransition) as caught:
        order_advance(actor=community.owner, order_id=order_id, status=Order.Status.FULFILLED)

    assert caught.value.code == "invalid_status" and caught.value.http_status == 409
    assert Order.objects.get(pk=order_id).fulfilment_status == "unfulfilled"


def test_fulfilment_never_goes_back(paid):
    order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.COMPLETED)
    order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.COMPLETED)  # no-op

    with pytest.raises(InvalidTransition):
        order_advance(actor=paid["owner"], order_id=paid["order"].pk, status=Order.Status.FULFILLED)
    assert fresh(paid["order"]).fulfilment_status == "completed"


@pytest.mark.parametrize(
    ("status", "payment_status", "fulfilment_status"),
    [
        ("paid", "unpaid", "unfulfilled"),  # the summary must follow the states
        ("completed", "paid", "shipped"),
        ("pending_payment", "unpaid", "shipped"),  # nothing ships unpaid
        ("cancelled", "cancelled", "delivered"),
        ("paid", "paid", "lost"),
    ],
)
def test_the_database_refuses_states_that_do_not_fit(paid, status, payment_status, fulfilment_status):
    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=paid["order"].pk).update(
            status=status, payment_status=payment_status, fulfilment_status=fulfilment_status
        )


def test_the_order_answer_shows_both_states_and_line_ids(paid):
    data = body(client_for(paid["member"].user).get(f"/api/v1/orders/{paid['order'].pk}/"))

    assert data["payment_status"] == "paid" and data["fulfilment_status"] == "unfulfilled"
    assert data["status"] == "paid" and data["after_sales"] == []
    assert [line["id"] for line in data["lines"]] == list(paid["order"].lines.values_list("pk", flat=True))
