"""Concurrency on PostgreSQL: real threads, real transactions, released together by a barrier.

These tests commit, so the database is flushed after each; the root conftest
loads the shipped data (categories, the trust lexicon) again after every flush.
"""

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from threading import Barrier

import pytest
from django.db import connection
from rest_framework.test import APIClient

from commerce.models import Commission, Order, Refund, Sku, WebhookEvent
from members.models import Membership, PointsEntry, User
from members.services.memberships import new_referral_code
from members.services.users import user_token
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, deliver, intent_of, pay, place_order, refund_as_owner
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]

THREADS = 40  # well under PostgreSQL's max_connections (100): each thread holds one connection


def run_together(calls, *, threads: int = THREADS) -> list:
    """Run ``calls`` in waves of ``threads``, each wave released at once by a barrier."""
    results = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for start in range(0, len(calls), threads):
            wave = calls[start : start + threads]
            barrier = Barrier(len(wave))

            def released(call, barrier=barrier):
                try:
                    barrier.wait(timeout=30)
                    return call()
                finally:
                    connection.close()

            results += list(pool.map(released, wave))
    return results


def members_of(community, count: int) -> list[User]:
    users = User.objects.bulk_create(
        [User(username=f"buyer{community.pk}-{n}", password="!") for n in range(count)]
    )
    Membership.objects.bulk_create(
        [
            Membership(
                user=user,
                community=community,
                status=Membership.Status.ACTIVE,
                referral_code=new_referral_code(),
            )
            for user in users
        ]
    )
    return users


def test_200_buyers_for_50_units_exactly_50_succeed_and_stock_ends_at_zero(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("9.90"), stock=50)
    buyers = members_of(community, 200)

    responses = run_together([lambda user=user: place_order(user, community, [(sku, 1)]) for user in buyers])

    statuses = [response.status_code for response in responses]
    assert statuses.count(201) == 50 and statuses.count(409) == 150, sorted(set(statuses))
    assert {body(r)["error"]["code"] for r in responses if r.status_code == 409} == {"out_of_stock"}
    assert Sku.objects.get(pk=sku.pk).stock == 0
    assert Order.objects.count() == 50 and len(stripe.payment_intents) == 50


def test_two_orders_locking_the_same_skus_in_opposite_line_order_never_deadlock(stripe):
    community = CommunityFactory()
    product = ProductFactory(community=community)
    first, second = SkuFactory(product=product, stock=1000), SkuFactory(product=product, stock=1000)
    alice, bob = members_of(community, 2)
    rounds = 15

    calls = []
    for _ in range(rounds):
        calls += [
            lambda: place_order(alice, community, [(first, 1), (second, 2)]),
            lambda: place_order(bob, community, [(second, 1), (first, 2)]),
        ]
    responses = run_together(calls, threads=2)

    assert [r.status_code for r in responses] == [201] * (2 * rounds)
    assert Sku.objects.get(pk=first.pk).stock == 1000 - 3 * rounds
    assert Sku.objects.get(pk=second.pk).stock == 1000 - 3 * rounds


def test_concurrent_retries_with_one_idempotency_key_make_one_order(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), stock=100)
    [buyer] = members_of(community, 1)

    token = user_token(user=buyer)  # one device tapping twelve times (each login is a new device token)

    def double_tap():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        body_ = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 5}]}
        return client.post("/api/v1/orders/", body_, format="json", HTTP_IDEMPOTENCY_KEY="double-tap")

    responses = run_together([double_tap] * 12)

    assert {r.status_code for r in responses} == {201}
    assert len({body(r)["id"] for r in responses}) == 1
    assert Order.objects.count() == 1 and Sku.objects.get(pk=sku.pk).stock == 95


def test_concurrent_refunds_never_exceed_what_was_paid(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("100.00"))
    buyer = MembershipFactory(community=community).user
    order_id = body(place_order(buyer, community, [(sku, 1)]))["id"]
    pay(stripe, order_id)

    responses = run_together(
        [lambda: refund_as_owner(community.owner, order_id, amount="30.00")] * 10, threads=10
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [400] * 7
    order = Order.objects.get(pk=order_id)
    assert order.amount_refunded == Decimal("90.00") and order.status == Order.Status.PARTIALLY_REFUNDED
    assert Refund.objects.filter(status=Refund.Status.SUCCEEDED).count() == 3 and len(stripe.refunds) == 3


def test_concurrent_deliveries_of_one_event_are_processed_once(stripe):
    community = CommunityFactory(points_per_yuan=Decimal("1"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("88.00"))
    buyer = MembershipFactory(community=community).user
    order_id = body(place_order(buyer, community, [(sku, 1)]))["id"]
    intent = stripe.succeed(intent_of(order_id))

    responses = run_together(
        [lambda: deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_storm")] * 10, threads=10
    )

    assert [r.status_code for r in responses] == [200] * 10
    event = WebhookEvent.objects.get()
    assert event.delivery_count == 10 and event.processed_at
    assert PointsEntry.objects.filter(membership__user=buyer).count() == 1
    assert Membership.objects.get(user=buyer).points == 88


def test_parallel_payments_of_one_members_orders_all_succeed_with_points_and_commissions(stripe):
    community = CommunityFactory(
        points_per_yuan=Decimal("1"),
        referral_level1_percent=Decimal("10"),
        referral_level2_percent=Decimal("5"),
    )
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("50.00"), stock=100)
    grand = MembershipFactory(community=community)
    parent = MembershipFactory(community=community, referred_by=grand)
    buyer = MembershipFactory(community=community, referred_by=parent)
    order_ids = [body(place_order(buyer.user, community, [(sku, 1)]))["id"] for _ in range(8)]
    intents = [stripe.succeed(intent_of(order_id)) for order_id in order_ids]

    responses = run_together(
        [lambda intent=intent: deliver(stripe, "payment_intent.succeeded", intent) for intent in intents],
        threads=8,
    )

    assert [r.status_code for r in responses] == [200] * 8, [r.content for r in responses]
    assert set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) == {"paid"}
    assert Membership.objects.get(pk=buyer.pk).points == 8 * 50
    assert PointsEntry.objects.filter(membership=buyer).count() == 8
    earned = {
        level: sorted(Commission.objects.filter(level=level).values_list("amount", flat=True))
        for level in (1, 2)
    }
    assert earned == {1: [Decimal("5.00")] * 8, 2: [Decimal("2.50")] * 8}
    assert set(Commission.objects.filter(level=1).values_list("beneficiary", flat=True)) == {parent.pk}


def test_members_who_refer_each_other_pay_at_the_same_time_without_deadlock(stripe):
    """Each payment locks its buyer's membership (points) and references the other's (commission)."""
    community = CommunityFactory(points_per_yuan=Decimal("1"), referral_level1_percent=Decimal("10"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("20.00"), stock=100)
    alice = MembershipFactory(community=community)
    bob = MembershipFactory(community=community, referred_by=alice)
    rounds = 6
    orders = []
    for _ in range(rounds):
        orders.append(body(place_order(bob.user, community, [(sku, 1)]))["id"])
        orders.append(
            body(place_order(alice.user, community, [(sku, 1)], referral_code=bob.referral_code))["id"]
        )
    intents = [stripe.succeed(intent_of(order_id)) for order_id in orders]

    responses = run_together(
        [lambda intent=intent: deliver(stripe, "payment_intent.succeeded", intent) for intent in intents],
        threads=2,
    )

    assert [r.status_code for r in responses] == [200] * (2 * rounds), [r.content for r in responses]
    assert (
        Membership.objects.get(pk=alice.pk).points == Membership.objects.get(pk=bob.pk).points == 20 * rounds
    )
    assert Commission.objects.filter(beneficiary=alice).count() == rounds
    assert Commission.objects.filter(beneficiary=bob).count() == rounds
