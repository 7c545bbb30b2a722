"""Refunds by owners (API) and the admin: partial, full, never more than paid, confirmed by Stripe."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from commerce.models import Order, Refund, Sku
from members.models import Membership, PointsEntry
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import body, charge_refunded, deliver, intent_of, pay, place_order, refund_as_owner
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid(stripe):
    """A paid order of 3 x 33.33 (99.99) in a community giving 1.5 points per yuan."""
    community = CommunityFactory(points_per_yuan=Decimal("1.5"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("33.33"), stock=10)
    member = MembershipFactory(community=community)
    order_id = body(place_order(member.user, community, [(sku, 3)]))["id"]
    pay(stripe, order_id)
    return {"order": Order.objects.get(pk=order_id), "owner": community.owner, "member": member, "sku": sku}


def points(membership) -> int:
    return Membership.objects.get(pk=membership.pk).points


def test_purchase_points_are_the_total_times_the_rate_rounded_down(paid):
    assert points(paid["member"]) == 149  # 99.99 * 1.5 = 149.985


def test_a_partial_refund_confirmed_by_stripe_makes_the_order_partially_refunded(paid, stripe):
    response = refund_as_owner(paid["owner"], paid["order"].pk, amount="33.33")

    assert response.status_code == 201, response.content
    data = body(response)
    assert data["status"] == "succeeded" and data["amount"] == "33.33"
    assert data["order_status"] == "partially_refunded" and data["order_amount_refunded"] == "33.33"
    [call] = stripe.calls("POST", "/v1/refunds")
    assert call["params"]["amount"] == "3333" and call["params"]["payment_intent"] == intent_of(
        paid["order"].pk
    )
    assert call["params"]["metadata"]["refund_id"] == str(data["id"])
    assert call["idempotency_key"] == Refund.objects.get(pk=data["id"]).reference  # random, on our row
    assert points(paid["member"]) == 149 - 50  # a third of 149, rounded half up


def test_a_full_refund_takes_back_every_point(paid, stripe):
    refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00")
    response = refund_as_owner(paid["owner"], paid["order"].pk)  # no amount: all that is left

    assert body(response)["amount"] == "89.99" and body(response)["order_status"] == "refunded"
    assert points(paid["member"]) == 0
    keys = set(
        PointsEntry.objects.filter(membership=paid["member"]).values_list("idempotency_key", flat=True)
    )
    assert len(keys) == 3 and f"order:{paid['order'].pk}:award" in keys


def test_a_refund_over_what_is_left_is_refused(paid, stripe):
    refund_as_owner(paid["owner"], paid["order"].pk, amount="50.00")

    response = refund_as_owner(paid["owner"], paid["order"].pk, amount="49.999")
    assert response.status_code == 400  # more than two decimals

    response = refund_as_owner(paid["owner"], paid["order"].pk, amount="50.00")

    assert response.status_code == 400 and body(response)["error"]["code"] == "refund_exceeds_paid"
    assert Order.objects.get(pk=paid["order"].pk).amount_refunded == Decimal("50.00")
    assert len(stripe.calls("POST", "/v1/refunds")) == 1


@pytest.mark.parametrize("amount", ["0", "-1.00", "abc", "1e9"])
def test_nonsense_amounts_are_refused_with_400(paid, stripe, amount):
    response = refund_as_owner(paid["owner"], paid["order"].pk, amount=amount)

    assert response.status_code == 400 and not Refund.objects.exists()


def test_unpaid_orders_cannot_be_refunded(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community))
    order_id = body(place_order(MembershipFactory(community=community).user, community, [(sku, 1)]))["id"]

    response = refund_as_owner(community.owner, order_id, amount="1.00")

    assert response.status_code == 409 and body(response)["error"]["code"] == "order_not_refundable"


def test_the_same_idempotency_key_refunds_once(paid, stripe):
    first = refund_as_owner(paid["owner"], paid["order"].pk, amount="20.00", key="r-1")
    again = refund_as_owner(paid["owner"], paid["order"].pk, amount="20.00", key="r-1")

    assert first.status_code == again.status_code == 201  # the replay answers as the first did
    assert body(first) == body(again)
    assert Refund.objects.count() == 1 and len(stripe.calls("POST", "/v1/refunds")) == 1
    assert Order.objects.get(pk=paid["order"].pk).amount_refunded == Decimal("20.00")


def test_a_pending_refund_changes_the_order_only_when_stripe_confirms_it(paid, stripe):
    stripe.refund_status = "pending"

    response = refund_as_owner(paid["owner"], paid["order"].pk)

    assert body(response)["status"] == "pending" and body(response)["order_status"] == "paid"
    assert refund_as_owner(paid["owner"], paid["order"].pk, amount="0.01").status_code == 400  # reserved
    refund = Refund.objects.get()
    confirmed = stripe.set_refund_status(refund.provider_ref, "succeeded")
    assert deliver(stripe, "charge.refund.updated", confirmed).status_code == 200
    order = Order.objects.get(pk=paid["order"].pk)
    assert order.status == Order.Status.REFUNDED and order.amount_refunded == Decimal("99.99")


def test_when_stripe_is_down_the_refund_stays_reserved_and_the_same_key_retries_it(paid, stripe):
    stripe.fail_next(503, 503)

    failed = refund_as_owner(paid["owner"], paid["order"].pk, amount="30.00", key="r-down")

    assert failed.status_code == 503 and body(failed)["error"]["code"] == "payment_provider_unavailable"
    # Stripe may have made it (a timeout after it processed the request): it keeps its amount reserved.
    assert Refund.objects.get().status == Refund.Status.PENDING
    assert Order.objects.get(pk=paid["order"].pk).status == Order.Status.PAID

    retried = refund_as_owner(paid["owner"], paid["order"].pk, amount="30.00", key="r-down")

    assert retried.status_code == 201 and body(retried)["status"] == "succeeded"
    assert Refund.objects.count() == 1 and len(stripe.refunds) == 1
    assert {c["idempotency_key"] for c in stripe.calls("POST", "/v1/refunds")} == {
        Refund.objects.get().reference
    }


def test_a_refund_made_at_stripe_although_we_timed_out_is_matched_to_our_row(paid, stripe):
    stripe.fail_next(503, 503)
    refund_as_owner(paid["owner"], paid["order"].pk, amount="30.00")
    ours = Refund.objects.get()
    # Stripe made it after all (as if our request timed out after Stripe processed it):
    made = stripe._create_refund(
        {
            "payment_intent": intent_of(paid["order"].pk),
            "amount": "3000",
            "metadata": {"refund_id": str(ours.pk), "order_id": str(paid["order"].pk)},
        }
    )

    charge_refunded(stripe, paid["order"].pk)

    ours.refresh_from_db()
    assert ours.provider_ref == made["id"] and ours.status == Refund.Status.SUCCEEDED
    assert Refund.objects.count() == 1
    assert Order.objects.get(pk=paid["order"].pk).amount_refunded == Decimal("30.00")


def test_a_refund_made_in_the_stripe_dashboard_is_recorded_from_the_webhook(paid, stripe):
    stripe.refund_at_provider(intent_of(paid["order"].pk), 999)

    charge_refunded(stripe, paid["order"].pk)

    refund = Refund.objects.get()
    assert refund.source == Refund.Source.PROVIDER and refund.amount == Decimal("9.99")
    assert Order.objects.get(pk=paid["order"].pk).status == Order.Status.PARTIALLY_REFUNDED


def test_our_refund_webhook_after_the_api_answer_changes_nothing(paid, stripe):
    refund_as_owner(paid["owner"], paid["order"].pk, amount="33.33")
    before = points(paid["member"])

    charge_refunded(stripe, paid["order"].pk)
    charge_refunded(stripe, paid["order"].pk)

    assert Refund.objects.count() == 1 and points(paid["member"]) == before
    assert Order.objects.get(pk=paid["order"].pk).amount_refunded == Decimal("33.33")


def test_owners_refund_only_orders_of_their_own_communities(paid, stripe):
    other_owner = CommunityFactory().owner
    operator = MembershipFactory(
        community=paid["order"].community, role=Membership.Role.OPERATOR, status=Membership.Status.ACTIVE
    ).user

    for user in (other_owner, paid["member"].user):
        response = refund_as_owner(user, paid["order"].pk, amount="1.00")
        assert response.status_code == 404 and body(response)["error"]["code"] == "not_found"
    assert not Refund.objects.exists()
    assert refund_as_owner(operator, paid["order"].pk, amount="1.00").status_code == 201


def test_refunded_event_tickets_give_their_seats_back(stripe):
    community = CommunityFactory()
    ticket = SkuFactory(product=EventFactory(community=community), price=Decimal("40.00"), stock=5)
    member = MembershipFactory(community=community).user
    order_id = body(place_order(member, community, [(ticket, 3)]))["id"]
    pay(stripe, order_id)
    assert Sku.objects.get(pk=ticket.pk).stock == 2

    refund_as_owner(community.owner, order_id, amount="50.00")  # one whole ticket and a bit
    assert Sku.objects.get(pk=ticket.pk).stock == 3
    refund_as_owner(community.owner, order_id)
    assert Sku.objects.get(pk=ticket.pk).stock == 5
    charge_refunded(stripe, order_id)
    assert Sku.objects.get(pk=ticket.pk).stock == 5


def test_refunded_goods_do_not_come_back_to_stock(paid, stripe):
    refund_as_owner(paid["owner"], paid["order"].pk)

    assert Sku.objects.get(pk=paid["sku"].pk).stock == 7


def test_the_database_refuses_more_refunded_than_paid_and_negative_stock(paid):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Order.objects.filter(pk=paid["order"].pk).update(amount_refunded=Decimal("100.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Sku.objects.filter(pk=paid["sku"].pk).update(stock=-1)


def test_after_stripe_timed_out_a_retry_without_a_key_cannot_pay_the_reserved_amount_again(paid, stripe):
    stripe.fail_next(503, 503)
    assert refund_as_owner(paid["owner"], paid["order"].pk).status_code == 503  # all of it, unanswered

    retried = refund_as_owner(paid["owner"], paid["order"].pk)  # no key: a new request as far as we know

    assert retried.status_code == 400 and body(retried)["error"]["code"] == "refund_exceeds_paid"
    assert Refund.objects.count() == 1 and not stripe.refunds


def test_a_refund_stripe_refuses_fails_and_frees_its_amount(paid, stripe):
    stripe.fail_next(400)

    refused = refund_as_owner(paid["owner"], paid["order"].pk, amount="30.00")

    assert refused.status_code == 502
    assert Refund.objects.get().status == Refund.Status.FAILED
    assert refund_as_owner(paid["owner"], paid["order"].pk).status_code == 201


def test_the_same_key_from_another_manager_is_another_refund(paid, stripe):
    operator = MembershipFactory(community=paid["order"].community, role=Membership.Role.OPERATOR).user

    first = refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00", key="k")
    other = refund_as_owner(operator, paid["order"].pk, amount="10.00", key="k")
    replay = refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00", key="k")

    assert first.status_code == other.status_code == replay.status_code == 201, other.content
    assert body(first)["id"] == body(replay)["id"] != body(other)["id"]
    assert len(stripe.calls("POST", "/v1/refunds")) == 2


def test_the_same_key_with_another_amount_is_refused(paid, stripe):
    refund_as_owner(paid["owner"], paid["order"].pk, amount="10.00", key="k")

    response = refund_as_owner(paid["owner"], paid["order"].pk, amount="20.00", key="k")

    assert response.status_code == 409 and body(response)["error"]["code"] == "idempotency_key_reused"
    assert Refund.objects.count() == 1


def test_refunds_leave_an_audit_trail_with_their_actors(paid, stripe):
    response = refund_as_owner(paid["owner"], paid["order"].pk, amount="30.00")
    order = paid["order"]

    entries = {
        (e.action, e.actor_label)
        for e in AuditEntry.objects.filter(community_id=order.community_id).order_by("pk")
    }
    owner = f"user:{paid['owner'].pk}"
    assert {
        ("order.created", f"user:{paid['member'].user_id}"),
        ("order.paid", "provider:stripe"),
        ("order.refund_requested", owner),
        ("refund.confirmed", owner),
        ("order.refunds_settled", owner),
    } <= entries
    settled = AuditEntry.objects.get(action="order.refunds_settled", target_id=str(order.pk))
    assert settled.changes["status"] == ["paid", "partially_refunded"]
    assert settled.changes["amount_refunded"] == ["0.00", "30.00"]
    assert body(response)["status"] == "succeeded"


def test_the_database_keeps_one_refund_per_requester_and_key(paid, stripe):
    first = Refund.objects.get(
        pk=body(refund_as_owner(paid["owner"], paid["order"].pk, amount="1.00", key="k"))["id"]
    )
    copy = {f: getattr(first, f) for f in ("order_id", "payment_id", "provider", "amount", "currency")}

    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(**copy, requested_by=paid["owner"], idempotency_key="k")
    Refund.objects.create(**copy, requested_by=None, idempotency_key="k")  # a system request: its own scope
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(**copy, requested_by=None, idempotency_key="k")
