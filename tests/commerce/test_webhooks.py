"""Stripe webhooks: signatures, exactly-once processing, any delivery order, wrong amounts, foreign events."""

import itertools
import json
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from commerce.models import Order, Payment, Refund, WebhookEvent
from members.models import Membership, PointsEntry
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import (
    WEBHOOK_URL,
    body,
    charge_refunded,
    deliver,
    intent_of,
    pay,
    place_order,
    refund_as_owner,
)
from tests.commerce.stripe_server import sign
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(stripe):
    community = CommunityFactory(points_per_yuan=Decimal("1"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("100.00"), stock=10)
    member = MembershipFactory(community=community)
    order_id = body(place_order(member.user, community, [(sku, 2)]))["id"]
    return Order.objects.get(pk=order_id)


def points_of(order) -> int:
    return Membership.objects.get(user=order.buyer, community=order.community).points


# --- Signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", ["no header", "wrong secret", "tampered body", "stale timestamp", "garbage header"]
)
def test_deliveries_that_stripe_did_not_sign_are_refused_with_400_and_not_stored(order, stripe, case):
    intent = stripe.succeed(intent_of(order.pk))
    payload = stripe.event("payment_intent.succeeded", intent)
    headers = {
        "no header": {},
        "wrong secret": {"HTTP_STRIPE_SIGNATURE": sign(payload, "whsec_someone_else")},
        "tampered body": {"HTTP_STRIPE_SIGNATURE": sign(payload.replace("20000", "1"), "whsec_test_local")},
        "stale timestamp": {"HTTP_STRIPE_SIGNATURE": sign(payload, "whsec_test_local", timestamp=1_000_000)},
        "garbage header": {"HTTP_STRIPE_SIGNATURE": "nonsense"},
    }[case]

    response = APIClient().post(WEBHOOK_URL, payload, content_type="application/json", **headers)

    assert response.status_code == 400
    assert body(response)["error"]["code"] == "invalid_webhook"
    assert not WebhookEvent.objects.exists()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


@pytest.mark.parametrize("payload", ["not json", "[]", '{"no": "id"}', ""])
def test_signed_garbage_is_refused_with_400(order, payload):
    response = APIClient().post(
        WEBHOOK_URL,
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, "whsec_test_local"),
    )

    assert response.status_code == 400 and not WebhookEvent.objects.exists()


# --- Success, failure, duplicates ---------------------------------------------------------------


def test_a_success_marks_the_order_paid_and_awards_points(order, stripe):
    paid = pay(stripe, order.pk)

    assert paid.status == Order.Status.PAID and paid.amount_paid == Decimal("200.00") and paid.paid_at
    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED
    assert points_of(order) == 200
    event = WebhookEvent.objects.get()
    assert (
        event.type == "payment_intent.succeeded" and event.outcome == "applied" and event.order_id == order.pk
    )
    assert event.payload["data"]["object"]["id"] == intent_of(order.pk)


def test_a_duplicate_delivery_is_stored_counted_and_processed_once(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))

    first = deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_dup")
    second = deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_dup")

    assert first.status_code == second.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.delivery_count == 2 and event.processed_at
    assert PointsEntry.objects.filter(membership__user=order.buyer).count() == 1
    assert points_of(order) == 200


def test_a_second_success_event_for_the_same_payment_changes_nothing(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))

    deliver(stripe, "payment_intent.succeeded", intent)
    deliver(stripe, "payment_intent.succeeded", intent)

    assert WebhookEvent.objects.count() == 2 and points_of(order) == 200
    assert Order.objects.get(pk=order.pk).amount_paid == Decimal("200.00")


def test_a_failed_attempt_is_recorded_and_the_order_stays_payable(order, stripe):
    response = deliver(stripe, "payment_intent.payment_failed", stripe.fail(intent_of(order.pk)))

    assert response.status_code == 200
    payment = Payment.objects.get(order=order)
    assert payment.status == Payment.Status.FAILED and payment.failure_code == "generic_decline"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT
    entry = AuditEntry.objects.get(action="payment.failed")
    assert entry.actor_label == "provider:stripe" and entry.target_id == str(payment.pk)
    assert entry.changes["status"] == ["pending", "failed"] and entry.community_id == order.community_id
    assert pay(stripe, order.pk).status == Order.Status.PAID


def test_a_late_failure_never_undoes_a_success(order, stripe):
    failed = stripe.fail(intent_of(order.pk))
    pay(stripe, order.pk)

    deliver(stripe, "payment_intent.payment_failed", failed)

    assert Payment.objects.get(order=order).status == Payment.Status.SUCCEEDED
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


@pytest.mark.parametrize(
    ("amount_received", "currency"), [(19_999, None), (20_001, None), (20_000, "usd"), (2_000_000, "jpy")]
)
def test_a_payment_of_the_wrong_amount_or_currency_flags_the_order_for_review_unpaid(
    order, stripe, amount_received, currency
):
    intent = stripe.succeed(intent_of(order.pk), amount_received=amount_received, currency=currency)

    response = deliver(stripe, "payment_intent.succeeded", intent)

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.needs_review and order.review_reason
    assert order.status == Order.Status.PENDING_PAYMENT and order.amount_paid == 0
    assert Payment.objects.get(order=order).status == Payment.Status.MISMATCH
    assert points_of(order) == 0
    flagged = AuditEntry.objects.get(action="order.flagged_for_review", target_id=str(order.pk))
    assert flagged.actor_label == "provider:stripe" and flagged.changes["needs_review"] == [False, True]
    assert not AuditEntry.objects.filter(action="order.paid").exists()


# --- Events that are not ours --------------------------------------------------------------------


def test_events_about_payments_that_are_not_ours_are_acknowledged_and_ignored(order, stripe):
    foreign = {
        "no metadata": {"id": "pi_foreign1", "object": "payment_intent", "amount": 20000, "currency": "cny"},
        "unknown order": {
            "id": "pi_foreign2",
            "object": "payment_intent",
            "amount": 20000,
            "currency": "cny",
            "metadata": {"order_id": "987654"},
        },
        "another app's order id": {
            "id": "pi_foreign3",
            "object": "payment_intent",
            "amount": 20000,
            "currency": "cny",
            "metadata": {"order_id": str(order.pk)},
        },
        "bad order id": {
            "id": "pi_foreign4",
            "object": "payment_intent",
            "metadata": {"order_id": "'; drop"},
        },
    }

    for obj in foreign.values():
        response = deliver(stripe, "payment_intent.succeeded", obj)
        assert response.status_code == 200 and body(response)["outcome"] == "ignored"
    unhandled = deliver(stripe, "customer.created", {"id": "cus_1", "object": "customer"})

    assert unhandled.status_code == 200 and body(unhandled)["outcome"] == "ignored"
    assert WebhookEvent.objects.count() == 5 and not WebhookEvent.objects.filter(processed_at=None).exists()
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_an_event_for_an_order_whose_payment_is_not_recorded_yet_asks_stripe_to_retry(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("5.00"))
    member = MembershipFactory(community=community).user
    stripe.fail_next(503, 503)
    assert place_order(member, community, [(sku, 1)]).status_code == 503
    order_id = Order.objects.get().pk
    intent = {"id": "pi_unrecorded", "object": "payment_intent", "metadata": {"order_id": str(order_id)}}

    response = deliver(stripe, "payment_intent.succeeded", intent, event_id="evt_early")

    assert response.status_code == 409 and body(response)["error"]["code"] == "webhook_not_ready"
    assert WebhookEvent.objects.get(event_id="evt_early").processed_at is None


# --- Refunds arriving in any order ---------------------------------------------------------------


def test_a_refund_reported_before_the_success_still_ends_refunded(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))
    stripe.refund_at_provider(intent["id"], 20_000)

    assert charge_refunded(stripe, order.pk).status_code == 200
    late_success = deliver(stripe, "payment_intent.succeeded", intent)

    assert late_success.status_code == 200
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert order.amount_paid == order.amount_refunded == Decimal("200.00")
    assert points_of(order) == 0
    assert Refund.objects.get(order=order).source == Refund.Source.PROVIDER


def test_deliveries_in_every_order_converge_on_the_same_state(stripe):
    community = CommunityFactory(points_per_yuan=Decimal("2"))
    sku = SkuFactory(product=ProductFactory(community=community), price=Decimal("50.00"), stock=100)
    owner = community.owner
    outcomes = set()
    for permutation in itertools.permutations(["success", "refund1", "refund2"]):
        member = MembershipFactory(community=community)
        order_id = body(place_order(member.user, community, [(sku, 2)]))["id"]
        intent = stripe.succeed(intent_of(order_id))
        assert refund_as_owner(owner, order_id, amount="30.00").status_code == 409  # not paid yet on our side
        stripe.refund_at_provider(intent["id"], 3000)
        charge_after_first = stripe.charge_of(intent["id"])
        second = stripe.refund_at_provider(intent["id"], 2000)
        events = {
            "success": ("payment_intent.succeeded", intent),
            "refund1": ("charge.refunded", charge_after_first),
            "refund2": ("refund.updated", second),
        }
        for name in permutation:
            assert deliver(stripe, *events[name]).status_code == 200
        order = Order.objects.get(pk=order_id)
        outcomes.add(
            (
                order.status,
                order.amount_paid,
                order.amount_refunded,
                member.__class__.objects.get(pk=member.pk).points,
            )
        )
    assert outcomes == {(Order.Status.PARTIALLY_REFUNDED, Decimal("100.00"), Decimal("50.00"), 100)}


def test_a_stale_refund_snapshot_cannot_undo_a_newer_state(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))
    pay(stripe, order.pk)
    refund = stripe.refund_at_provider(intent["id"], 5000, status="pending")
    charge_refunded(stripe, order.pk)
    assert Order.objects.get(pk=order.pk).amount_refunded == 0  # pending: not confirmed yet

    stripe.set_refund_status(refund["id"], "succeeded")
    deliver(stripe, "refund.updated", {**refund, "status": "succeeded"})
    deliver(stripe, "refund.created", refund)  # an old delivery, status pending

    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.amount_refunded == Decimal("50.00")
    assert Refund.objects.get(order=order).status == Refund.Status.SUCCEEDED


def test_a_refund_that_fails_later_is_taken_back_out(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))
    pay(stripe, order.pk)
    refund = stripe.refund_at_provider(intent["id"], 20_000)
    charge_refunded(stripe, order.pk)
    assert Order.objects.get(pk=order.pk).status == Order.Status.REFUNDED

    failed = stripe.set_refund_status(refund["id"], "failed")
    deliver(stripe, "charge.refund.updated", failed)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID and order.amount_refunded == 0
    assert Refund.objects.get(order=order).status == Refund.Status.FAILED


def test_when_stripe_cannot_be_asked_for_refunds_the_event_is_left_for_redelivery(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))
    pay(stripe, order.pk)
    stripe.refund_at_provider(intent["id"], 1000)
    stripe.fail_next(503, 503)

    response = charge_refunded(stripe, order.pk, event_id="evt_later")

    assert response.status_code == 503
    assert WebhookEvent.objects.get(event_id="evt_later").processed_at is None
    assert charge_refunded(stripe, order.pk, event_id="evt_later").status_code == 200
    assert Order.objects.get(pk=order.pk).amount_refunded == Decimal("10.00")
    assert WebhookEvent.objects.get(event_id="evt_later").delivery_count == 2


def test_the_webhook_payload_is_stored_verbatim(order, stripe):
    intent = stripe.succeed(intent_of(order.pk))
    payload = stripe.event("payment_intent.succeeded", intent, event_id="evt_raw")

    APIClient().post(
        WEBHOOK_URL,
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, "whsec_test_local"),
    )

    assert WebhookEvent.objects.get(event_id="evt_raw").payload == json.loads(payload)


def test_a_dashboard_refund_of_a_payment_held_for_review_is_recorded_not_counted(order, stripe):
    intent = stripe.succeed(intent_of(order.pk), amount_received=12_345)
    deliver(stripe, "payment_intent.succeeded", intent)
    stripe.refund_at_provider(intent["id"], 12_345)

    assert charge_refunded(stripe, order.pk).status_code == 200

    order.refresh_from_db()
    assert order.needs_review and order.amount_paid == order.amount_refunded == 0
    assert Refund.objects.get(order=order).status == Refund.Status.SUCCEEDED


# --- Hostile but signed payloads ----------------------------------------------------------------


def post_signed(payload: str):
    return APIClient().post(
        WEBHOOK_URL,
        payload.encode(),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, "whsec_test_local"),
    )


def success_with(order, stripe, event_id: str, **extra) -> str:
    """A signed payment_intent.succeeded for ``order`` whose intent carries ``extra`` (JSON text)."""
    intent = stripe.succeed(intent_of(order.pk))
    payload = stripe.event("payment_intent.succeeded", intent, event_id=event_id)
    return payload[:-1] + "".join(f', "{key}": {value}' for key, value in extra.items()) + "}"


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("nul", {"note": r'"pay\u0000ment"', "k\\u0000": '"x"'}),
        ("lone surrogate", {"note": r'"\ud800 alone"', "low": r'"\udfff"'}),
        ("huge integer", {"count": "9" * 5000}),
        ("huge float", {"ratio": "1e999", "tiny": "-1e999"}),
        ("not a number", {"ratio": "NaN", "inf": "Infinity"}),
    ],
)
def test_odd_values_in_a_signed_event_are_stored_and_the_payment_still_counts(order, stripe, case, extra):
    """Given a signed success event carrying NUL, lone surrogates or numbers jsonb cannot hold,
    when it is delivered, then it is acknowledged (no 500: Stripe would retry for days), stored,
    and the payment it reports is applied."""
    response = post_signed(success_with(order, stripe, f"evt_odd_{case.replace(' ', '_')}", **extra))

    assert response.status_code == 200, response.content
    assert body(response)["outcome"] == "applied"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    stored = WebhookEvent.objects.get(event_id__startswith="evt_odd_").payload
    assert "\x00" not in json.dumps(stored)


@pytest.mark.parametrize("amount", ["1" + "0" * 30, "100000000000000", "-5", '"lots"', "[1]"])
def test_an_impossible_amount_is_stored_and_acknowledged_without_paying(order, stripe, amount):
    intent = stripe.succeed(intent_of(order.pk))
    intent_json = json.dumps(intent).replace('"amount_received": 20000', f'"amount_received": {amount}')
    payload = stripe.event("payment_intent.succeeded", {}, event_id="evt_amount").replace(
        '"object": {}', f'"object": {intent_json}'
    )

    response = post_signed(payload)

    assert response.status_code == 200, response.content
    assert body(response)["outcome"] == "ignored"
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT


def test_a_signed_but_deeply_nested_event_is_refused_with_400(order):
    payload = '{"id": "evt_deep", "type": "x", "data": ' + "[" * 3000 + "]" * 3000 + "}"

    response = post_signed(payload)

    assert response.status_code == 400 and not WebhookEvent.objects.exists()


def test_an_event_id_with_a_nul_is_stored_under_a_readable_id(order):
    payload = r'{"id": "evt_\u0000nul", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}'

    response = post_signed(payload)

    assert response.status_code == 200, response.content
    assert WebhookEvent.objects.get().event_id == "evt_\ufffdnul"
