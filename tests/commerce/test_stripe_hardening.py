"""Stripe as real Stripe behaves (issue 14): disputes, cancelled intents, time limits, saved errors, minimums.

Everything runs against the strict local Stripe (``stripe_server``), through the API where a client would.
"""

import json
import runpy
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from commerce.models import Commission, Order, Payment, Refund, Sku, Ticket, WebhookEvent
from commerce.payments import base
from commerce.payments.checks import provider_time_fits_the_worker
from commerce.payments.stripe import webhooks
from commerce.payments.stripe.client import StripeProvider
from commerce.reports.filters import ReportFilters
from commerce.reports.reconciliation import RECONCILIATION
from commerce.reports.services import report_snapshot
from commerce.reports.settlement import settlement_figures
from commerce.services.orders import order_release_expired
from members.models import Community, Membership
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import body, deliver, deliver_events, intent_of, pay, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal
WITHDRAWN = ("charge.dispute.created", "charge.dispute.funds_withdrawn")
WON = ("charge.dispute.closed", "charge.dispute.funds_reinstated")


@pytest.fixture(autouse=True)
def _english(settings):
    """Webhooks carry no Accept-Language: what they write is in LANGUAGE_CODE; read it in English here."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def shop(stripe):
    """A paid 100.00 order of a referred buyer: 150 points, commissions of 10.00 and 5.00."""
    community = CommunityFactory(
        points_per_yuan=D("1.5"), referral_level1_percent=D("10"), referral_level2_percent=D("5")
    )
    sku = SkuFactory(product=ProductFactory(community=community), price=D("50.00"), stock=10)
    grand = MembershipFactory(community=community)
    parent = MembershipFactory(community=community, referred_by=grand)
    buyer = MembershipFactory(community=community, referred_by=parent)
    order = pay(stripe, body(place_order(buyer.user, community, [(sku, 2)]))["id"])
    stripe.take_events()  # what the payment queued was delivered by ``pay``
    return {"order": order, "buyer": buyer, "community": community, "sku": sku}


def points(membership) -> int:
    return Membership.objects.get(pk=membership.pk).points


def reversed_commissions(order) -> list[Decimal]:
    return [c.amount_reversed for c in Commission.objects.filter(order=order).order_by("level")]


def state(order) -> Order:
    return Order.objects.get(pk=order.pk)


# --- disputes --------------------------------------------------------------------------------------


def test_a_chargeback_takes_back_points_and_commissions_and_flags_the_order_with_what_to_do(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))

    responses = deliver_events(stripe, *WITHDRAWN)

    assert [r.status_code for r in responses] == [200, 200]
    order = state(shop["order"])
    assert order.status == Order.Status.REFUNDED and order.amount_refunded == D("100.00")
    assert order.needs_review and "Submit evidence in the Stripe dashboard" in order.review_reason
    assert dispute["id"] in order.review_reason
    [row] = Refund.objects.filter(order=order)
    assert (row.source, row.status, row.provider_ref, row.amount) == (
        Refund.Source.DISPUTE,
        Refund.Status.SUCCEEDED,
        dispute["id"],
        D("100.00"),
    )
    assert points(shop["buyer"]) == 0 and reversed_commissions(order) == [D("10.00"), D("5.00")]
    assert not stripe.calls("POST", "/v1/refunds")  # Stripe took it: nothing is sent back


def test_a_won_dispute_restores_the_money_points_and_commissions(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))
    deliver_events(stripe, *WITHDRAWN)
    stripe.update_dispute(dispute["id"])
    stripe.close_dispute(dispute["id"], won=True)

    responses = deliver_events(stripe, "charge.dispute.updated", *WON)

    assert {r.status_code for r in responses} == {200}
    order = state(shop["order"])
    assert order.status == Order.Status.PAID and order.amount_refunded == D("0.00")
    assert Refund.objects.get(order=order).status == Refund.Status.CANCELED
    assert points(shop["buyer"]) == 150 and reversed_commissions(order) == [D("0.00"), D("0.00")]
    assert "was won" in order.review_reason and "Nothing left to do" in order.review_reason
    # It can be refunded again in full, as any paid order.
    assert refund_as_owner(shop["community"].owner, order.pk).status_code == 201


def test_a_lost_dispute_keeps_everything_reversed_and_says_not_to_refund_again(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk), amount=4000)
    deliver_events(stripe, *WITHDRAWN)
    stripe.close_dispute(dispute["id"], won=False)

    deliver_events(stripe, "charge.dispute.closed")

    order = state(shop["order"])
    assert order.status == Order.Status.PARTIALLY_REFUNDED and order.amount_refunded == D("40.00")
    assert points(shop["buyer"]) == 90 and reversed_commissions(order) == [D("4.00"), D("2.00")]
    assert "was lost" in order.review_reason and order.needs_review
    # Stripe refuses refunds of a charged-back payment: a clear 409 before it is asked.
    refused = refund_as_owner(shop["community"].owner, order.pk, amount="10.00")
    assert refused.status_code == 409 and body(refused)["error"]["code"] == "order_not_refundable"
    assert not stripe.calls("POST", "/v1/refunds")


def test_dispute_events_in_any_order_and_repeated_converge_on_stripes_current_state(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))
    stripe.close_dispute(dispute["id"], won=True)
    events = stripe.take_events()  # created, funds_withdrawn, closed, funds_reinstated
    stale_withdrawal = events[1][1]

    for event_type, obj in reversed(events):
        assert deliver(stripe, event_type, obj, event_id=f"evt_{event_type}").status_code == 200
    again = deliver(stripe, "charge.dispute.funds_withdrawn", stale_withdrawal, event_id="evt_late")
    repeat = deliver(stripe, *events[0], event_id="evt_charge.dispute.created")

    assert again.status_code == 200 and repeat.status_code == 200
    order = state(shop["order"])
    # Stripe says won: the stale "funds withdrawn" snapshots took nothing.
    assert order.status == Order.Status.PAID and not Refund.objects.filter(order=order).exists()
    assert points(shop["buyer"]) == 150
    assert WebhookEvent.objects.get(event_id="evt_charge.dispute.created").delivery_count == 2
    assert stripe.calls("GET", f"/v1/disputes/{dispute['id']}")  # fetched, not taken from the payload


def test_an_inquiry_takes_no_money_but_flags_the_order(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))
    with stripe.lock:  # an inquiry: no withdrawal, the charge stays refundable
        stripe.disputes[dispute["id"]].update(
            status="warning_needs_response", balance_transactions=[], is_charge_refundable=True
        )

    deliver_events(stripe, "charge.dispute.created")

    order = state(shop["order"])
    assert order.status == Order.Status.PAID and not Refund.objects.filter(order=order).exists()
    assert order.needs_review and "no money was taken yet" in order.review_reason


def test_a_dispute_before_the_payment_news_applies_the_payment_first(stripe):
    community = CommunityFactory(points_per_yuan=D("1"))
    sku = SkuFactory(product=ProductFactory(community=community), price=D("20.00"), stock=5)
    buyer = MembershipFactory(community=community)
    order_id = body(place_order(buyer.user, community, [(sku, 1)]))["id"]
    stripe.succeed(intent_of(order_id))
    stripe.open_dispute(intent_of(order_id))

    deliver_events(stripe, *WITHDRAWN)

    order = Order.objects.get(pk=order_id)
    assert order.amount_paid == D("20.00") and order.status == Order.Status.REFUNDED
    assert points(buyer) == 0


def test_a_chargeback_on_an_entry_fee_ends_the_membership_and_a_won_dispute_brings_it_back(stripe):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=D("199.00"), period_days=365)
    user = UserFactory()
    client_for(user).post(f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk}, format="json")
    order = pay(stripe, Order.objects.get(buyer=user).pk)
    stripe.take_events()
    dispute = stripe.open_dispute(intent_of(order.pk))

    deliver_events(stripe, *WITHDRAWN)
    ended = Membership.objects.get(user=user)
    stripe.close_dispute(dispute["id"], won=True)
    deliver_events(stripe, *WON)

    assert ended.status == Membership.Status.EXPIRED
    membership = Membership.objects.get(user=user)
    assert membership.status == Membership.Status.ACTIVE and membership.expires_at > timezone.now()


# --- cancelled intents ----------------------------------------------------------------------------


def test_a_payment_intent_cancelled_at_stripe_is_replaced_by_a_new_one_on_the_next_attempt(shop, stripe):
    sku, buyer = shop["sku"], MembershipFactory(community=shop["community"])
    first = body(place_order(buyer.user, shop["community"], [(sku, 1)], key="k-cancel"))
    old = Payment.objects.get(order_id=first["id"])
    stripe.cancel_at_provider(old.provider_ref)

    assert [r.status_code for r in deliver_events(stripe, "payment_intent.canceled")] == [200]
    assert Payment.objects.get(pk=old.pk).status == Payment.Status.CANCELED
    retried = place_order(buyer.user, shop["community"], [(sku, 1)], key="k-cancel")

    assert retried.status_code == 201  # a replay answers as the first request did
    new = Payment.objects.get(order_id=first["id"], status=Payment.Status.PENDING)
    assert new.provider_ref != old.provider_ref and new.reference != old.reference
    assert new.idempotency_key != old.idempotency_key
    assert (
        body(retried)["payment"]["client_secret"] == stripe.payment_intents[new.provider_ref]["client_secret"]
    )
    create = stripe.calls("POST", "/v1/payment_intents")[-1]
    assert create["params"]["metadata"]["payment_reference"] == new.reference
    deliver(stripe, "payment_intent.succeeded", stripe.succeed(new.provider_ref))
    assert Order.objects.get(pk=first["id"]).status == Order.Status.PAID


# --- time -----------------------------------------------------------------------------------------


@pytest.fixture
def short_budget(settings):
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 1.5
    settings.STRIPE_TIMEOUT_SECONDS = 8.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 2


def test_a_hanging_stripe_answers_503_json_in_time_and_the_next_call_recovers_the_payment(
    shop, stripe, short_budget
):
    stripe.hang(2.5, path="/v1/payment_intents")  # it creates the intent, but too late for us
    buyer = MembershipFactory(community=shop["community"])

    started = time.monotonic()
    failed = place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-hang")
    elapsed = time.monotonic() - started

    assert failed.status_code == 503 and body(failed)["error"]["code"] == "payment_provider_unavailable"
    assert elapsed < 3.0  # the budget, not 3 x 8 s
    payment = Payment.objects.get(order__buyer=buyer.user)
    assert payment.status == Payment.Status.CREATING
    deadline = time.monotonic() + 5
    while len(stripe.payment_intents) < 2 and time.monotonic() < deadline:  # Stripe finishes its work
        time.sleep(0.05)
    retried = place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-hang")

    assert retried.status_code == 201
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PENDING and len(stripe.payment_intents) == 2
    assert stripe.payment_intents[payment.provider_ref]["metadata"]["payment_reference"] == payment.reference


def test_a_payment_left_creating_is_closed_with_its_order_when_the_hold_ends(shop, stripe, short_budget):
    stripe.hang(3.0, path="/v1/payment_intents")
    buyer = MembershipFactory(community=shop["community"])
    place_order(buyer.user, shop["community"], [(shop["sku"], 1)])

    order_release_expired(now=timezone.now() + timezone.timedelta(days=1))

    payment = Payment.objects.get(order__buyer=buyer.user)
    assert payment.status == Payment.Status.CANCELED and payment.order.status == Order.Status.CANCELLED


def test_retries_stop_when_the_deadline_would_pass(stripe, settings):
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 3.0
    settings.STRIPE_TIMEOUT_SECONDS = 1.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 5
    stripe.hang(4.0, path="/v1/payment_intents/pi_missing", times=10)
    handle = base.PaymentHandle(reference="P1", ref="pi_missing", amount=D("1"), currency="CNY")

    started = time.monotonic()
    with pytest.raises(base.ProviderUnavailable) as raised:
        StripeProvider().fetch_payment(handle=handle)
    elapsed = time.monotonic() - started

    assert elapsed < 3.5 and not raised.value.key_spent
    assert len(stripe.calls("GET", "/v1/payment_intents/pi_missing")) == 2  # not 6


def test_the_settings_check_keeps_provider_time_within_half_the_worker_timeout(settings):
    assert provider_time_fits_the_worker() == []  # the defaults: 12 s of 30 s
    settings.PAYMENT_PROVIDER_TIMEOUT_SECONDS = 20

    [error] = provider_time_fits_the_worker()

    assert error.id == "commerce.E001"


def test_gunicorn_takes_its_timeout_from_the_setting_the_check_reads(monkeypatch):
    path = Path(django_settings.BASE_DIR) / "gunicorn.conf.py"
    monkeypatch.setenv("WEB_WORKER_TIMEOUT_SECONDS", "45")

    assert runpy.run_path(str(path))["timeout"] == 45


# --- keys -----------------------------------------------------------------------------------------


def test_two_saved_500s_leave_a_fresh_key_for_the_next_call(shop, stripe):
    stripe.fail_next(500, 500)
    buyer = MembershipFactory(community=shop["community"])

    failed = place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-500")
    retried = place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-500")

    assert failed.status_code == 503 and retried.status_code == 201
    keys = [c["idempotency_key"] for c in stripe.calls("POST", "/v1/payment_intents")][-3:]
    assert len(set(keys)) == 3 and all(uuid.UUID(key) for key in keys)
    payment = Payment.objects.get(order__buyer=buyer.user)
    assert keys[-1] == str(payment.idempotency_key) and payment.status == Payment.Status.PENDING


def test_an_orphan_intent_carrying_our_reference_does_not_touch_our_attempt(shop, stripe):
    buyer = MembershipFactory(community=shop["community"])
    order_id = body(place_order(buyer.user, shop["community"], [(shop["sku"], 1)]))["id"]
    payment = Payment.objects.get(order_id=order_id)
    with stripe.lock:  # as if a create answered by a saved 500 had made one after all
        orphan = stripe._create_intent(
            {
                "amount": "5000",
                "currency": "cny",
                "metadata": {"order_id": str(order_id), "payment_reference": payment.reference},
            }
        )
    stripe.cancel_at_provider(orphan["id"])

    response = deliver_events(stripe, "payment_intent.canceled")[0]

    assert response.status_code == 200 and body(response)["outcome"] == "ignored"
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.PENDING


def test_a_refund_answered_by_a_saved_500_is_looked_up_then_sent_under_a_fresh_key(shop, stripe):
    stripe.fail_next(500)
    owner = shop["community"].owner

    failed = refund_as_owner(owner, shop["order"].pk, amount="30.00", key="r-500")
    refund = Refund.objects.get()
    first_key = stripe.calls("POST", "/v1/refunds")[0]["idempotency_key"]
    retried = refund_as_owner(owner, shop["order"].pk, amount="30.00", key="r-500")

    assert failed.status_code == 503 and retried.status_code == 201
    refund.refresh_from_db()
    posts = stripe.calls("POST", "/v1/refunds")
    assert first_key != str(refund.provider_key) == posts[-1]["idempotency_key"] and len(posts) == 2
    assert stripe.calls("GET", "/v1/refunds")  # looked up before sending again
    assert refund.status == Refund.Status.SUCCEEDED and len(stripe.refunds) == 1


def test_a_refund_made_by_stripe_whose_answer_was_lost_is_found_not_sent_again(shop, stripe, short_budget):
    stripe.hang(2.5, path="/v1/refunds", after=True)  # done at Stripe, the answer comes too late
    owner = shop["community"].owner

    failed = refund_as_owner(owner, shop["order"].pk, amount="30.00", key="r-lost")
    retried = refund_as_owner(owner, shop["order"].pk, amount="30.00", key="r-lost")

    assert failed.status_code == 503 and retried.status_code == 201
    assert len(stripe.calls("POST", "/v1/refunds")) == 1 and len(stripe.refunds) == 1
    refund = Refund.objects.get()
    assert refund.provider_ref in stripe.refunds and refund.status == Refund.Status.SUCCEEDED
    assert state(shop["order"]).amount_refunded == D("30.00")


# --- what Stripe takes ----------------------------------------------------------------------------


def test_payment_method_types_come_from_the_setting(shop, stripe, settings):
    settings.STRIPE_PAYMENT_METHOD_TYPES = ["card"]
    buyer = MembershipFactory(community=shop["community"])

    place_order(buyer.user, shop["community"], [(shop["sku"], 1)])

    params = stripe.calls("POST", "/v1/payment_intents")[-1]["params"]
    assert params["allowed_payment_method_types"] == ["card"]
    assert stripe.payment_intents[intent_of(Order.objects.get(buyer=buyer.user).pk)][
        "payment_method_types"
    ] == ["card"]


def test_an_order_under_stripes_minimum_is_refused_before_stripe_is_called(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=D("3.99"), stock=5)
    buyer = MembershipFactory(community=community)

    response = place_order(buyer.user, community, [(sku, 1)])

    assert response.status_code == 400 and body(response)["error"]["code"] == "amount_below_minimum"
    assert "4.00 CNY" in body(response)["error"]["message"]
    assert not stripe.calls("POST", "/v1/payment_intents")
    assert Sku.objects.get(pk=sku.pk).stock == 5  # the order is cancelled, its stock back
    assert Order.objects.get().status == Order.Status.CANCELLED


def test_stripes_own_minimum_refusal_is_the_same_clear_400(stripe, settings):
    settings.STRIPE_MINIMUM_AMOUNTS = {"CNY": "0.50"}  # a stale table: Stripe still refuses 3.00 CNY
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=D("3.00"), stock=5)
    buyer = MembershipFactory(community=community)

    response = place_order(buyer.user, community, [(sku, 1)])

    assert response.status_code == 400 and body(response)["error"]["code"] == "amount_below_minimum"
    assert len(stripe.calls("POST", "/v1/payment_intents")) == 1


def test_a_gateway_error_stripe_did_not_save_keeps_the_key_and_one_it_saved_does_not(shop, stripe):
    stripe.fail_next(503, 503, saved=False)  # never reached Stripe: the same key is safe to repeat
    buyer = MembershipFactory(community=shop["community"])
    place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-503")
    kept = Payment.objects.get(order__buyer=buyer.user).idempotency_key
    stripe.fail_next(503, saved=True)  # saved: Stripe says Stripe-Should-Retry: false

    retried = place_order(buyer.user, shop["community"], [(shop["sku"], 1)], key="k-503")

    keys = [c["idempotency_key"] for c in stripe.calls("POST", "/v1/payment_intents")][-4:]
    assert keys[:3] == [str(kept)] * 3 and keys[3] != str(kept)
    assert retried.status_code == 201


# --- what the finance side and the seats see ------------------------------------------------------


def _this_month() -> ReportFilters:
    today = timezone.localdate()
    return ReportFilters(
        date_from=today - timezone.timedelta(days=30), date_to=today + timezone.timedelta(days=1)
    )


def test_a_chargeback_is_money_out_in_settlement_and_leaves_nothing_to_reconcile(shop, stripe):
    stripe.open_dispute(intent_of(shop["order"].pk), amount=2500)
    deliver_events(stripe, *WITHDRAWN)

    with report_snapshot():
        differences = list(RECONCILIATION.rows(_this_month()))
    figures = settlement_figures(filters=_this_month())[(shop["community"].pk, "CNY")]

    assert differences == []
    assert figures["gross"] == D("100.00") and figures["refunds"] == D("25.00")
    assert AuditEntry.objects.filter(
        action="refund.dispute_withdrawn", actor_label="provider:stripe"
    ).exists()


def test_seats_a_chargeback_freed_are_taken_again_when_it_is_won_or_the_order_is_flagged(stripe):
    community = CommunityFactory()
    ticket = SkuFactory(product=EventFactory(community=community), price=D("40.00"), stock=4)
    first, second = MembershipFactory(community=community).user, MembershipFactory(community=community).user
    kept = pay(stripe, body(place_order(first, community, [(ticket, 2)]))["id"])
    resold = pay(stripe, body(place_order(second, community, [(ticket, 2)]))["id"])
    stripe.take_events()
    won, lost_seats = stripe.open_dispute(intent_of(kept.pk)), stripe.open_dispute(intent_of(resold.pk))
    deliver_events(stripe, *WITHDRAWN)
    assert Sku.objects.get(pk=ticket.pk).stock == 4  # both orders' seats are free again
    place_order(MembershipFactory(community=community).user, community, [(ticket, 2)])  # two are sold on
    stripe.close_dispute(won["id"], won=True)
    stripe.close_dispute(lost_seats["id"], won=True)

    deliver_events(stripe, *WON)

    assert Sku.objects.get(pk=ticket.pk).stock == 0  # the first order sits again
    assert state(kept).status == Order.Status.PAID and "seats" not in state(kept).review_reason
    assert set(Ticket.objects.filter(order=kept).values_list("status", flat=True)) == {"valid"}
    assert set(Ticket.objects.filter(order=resold).values_list("status", flat=True)) == {"refunded"}
    assert AuditEntry.objects.filter(action="ticket.restored").count() == 2
    flagged = state(resold)
    assert flagged.status == Order.Status.PAID and flagged.needs_review
    assert "was won" in flagged.review_reason  # what the dispute says, then what the seats need
    assert flagged.review_reason.endswith(
        "the seats its refund gave back are sold: seat the buyer or refund."
    )


def test_a_hanging_dispute_fetch_answers_503_in_time_and_stripe_delivers_again(shop, stripe, short_budget):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))
    stripe.hang(5.0, path=f"/v1/disputes/{dispute['id']}")
    [(event_type, obj)] = stripe.take_events("charge.dispute.funds_withdrawn")

    started = time.monotonic()
    first = deliver(stripe, event_type, obj, event_id="evt_hang")
    elapsed = time.monotonic() - started
    again = deliver(stripe, event_type, obj, event_id="evt_hang")

    assert first.status_code == 503 and elapsed < 3.0
    assert again.status_code == 200 and state(shop["order"]).status == Order.Status.REFUNDED


def test_dispute_events_are_read_as_dispute_facts_and_one_without_an_intent_is_only_stored(shop, stripe):
    dispute = stripe.open_dispute(intent_of(shop["order"].pk))
    stripe.take_events()
    orphan = {**dispute, "id": "dp_elsewhere", "payment_intent": None}

    fact = webhooks.delivery_from_event(json.loads(stripe.event("charge.dispute.updated", dispute))).fact
    response = deliver(stripe, "charge.dispute.created", orphan, event_id="evt_no_intent")

    assert fact == base.DisputeChanged(
        order_id=None, payment_ref=intent_of(shop["order"].pk), dispute_ref=dispute["id"]
    )
    assert response.status_code == 200 and body(response)["outcome"] == "ignored"
    assert (
        WebhookEvent.objects.get(event_id="evt_no_intent").payload["data"]["object"]["id"] == "dp_elsewhere"
    )


def test_after_a_cancelled_intent_get_payment_makes_a_new_one_the_buyer_can_pay(shop, stripe):
    buyer = MembershipFactory(community=shop["community"])
    order_id = body(place_order(buyer.user, shop["community"], [(shop["sku"], 1)]))["id"]
    old = Payment.objects.get(order_id=order_id)
    stripe.cancel_at_provider(old.provider_ref)
    deliver_events(stripe, "payment_intent.canceled")

    response = client_for(buyer.user).get(f"/api/v1/orders/{order_id}/payment/")

    assert response.status_code == 200, response.content
    new = Payment.objects.get(order_id=order_id, status=Payment.Status.PENDING)
    assert new.pk != old.pk and new.provider_ref != old.provider_ref
    assert body(response)["client_secret"] == stripe.payment_intents[new.provider_ref]["client_secret"]


def test_the_stripe_client_takes_the_proxy_settings_from_the_environment_once(monkeypatch):
    """Its sessions use the environment's proxy for Stripe's address without scanning it on each call."""
    from commerce.payments.stripe.client import _RequestsReadingTheEnvironmentOnce

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = _RequestsReadingTheEnvironmentOnce("https://api.stripe.com").Session()
    assert session.proxies["https"] == "http://proxy.invalid:3128" and not session.trust_env

    monkeypatch.setenv("NO_PROXY", "api.stripe.com")
    assert "https" not in _RequestsReadingTheEnvironmentOnce("https://api.stripe.com").Session().proxies
