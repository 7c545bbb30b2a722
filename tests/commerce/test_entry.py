"""Paid entry: joining a paid plan checks out an entry order; payment activates, refunds end it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.models import Order, Payment
from members.models import Community, Membership
from shequn_backend.models import AuditEntry
from tests.commerce.flows import body, deliver, intent_of, pay, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_club():
    community = CommunityFactory(slug="caijing", entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(
        community=community, price=Decimal("199.00"), period_days=365, refund_window_days=3
    )
    return {"community": community, "plan": plan}


def join(user, club, *, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    url = f"/api/v1/communities/{club['community'].slug}/join/"
    return client_for(user).post(url, {"plan": club["plan"].pk}, format="json", **headers)


def test_joining_a_paid_plan_returns_a_payment_and_leaves_the_membership_pending(paid_club, stripe):
    user = UserFactory()

    response = join(user, paid_club)

    assert response.status_code == 201, response.content
    data = body(response)
    assert data["membership"]["status"] == "pending_payment"
    order = Order.objects.get(buyer=user)
    assert (
        order.kind == Order.Kind.ENTRY
        and order.total == Decimal("199.00")
        and order.plan == paid_club["plan"]
    )
    assert data["payment"] == {
        "order_id": order.pk,
        "provider": "stripe",
        "status": "pending",
        "client_secret": stripe.payment_intents[intent_of(order.pk)]["client_secret"],
        "request_payment": None,
        "amount": "199.00",
        "currency": "CNY",
    }
    [line] = order.lines.all()
    assert line.sku is None and line.title == paid_club["plan"].name and line.line_total == Decimal("199.00")
    assert stripe.payment_intents[intent_of(order.pk)]["amount"] == 19900


def test_pressing_join_twice_reuses_the_unpaid_entry_order(paid_club, stripe):
    user = UserFactory()

    first = body(join(user, paid_club))
    second = body(join(user, paid_club))

    assert first["payment"] == second["payment"] and Order.objects.count() == 1


def test_the_same_idempotency_key_answers_the_first_joins_status_and_payment(paid_club, stripe):
    user = UserFactory()

    first = join(user, paid_club, key="join-1")
    again = join(user, paid_club, key="join-1")

    assert first.status_code == again.status_code == 201
    assert body(first)["payment"] == body(again)["payment"] and Order.objects.count() == 1
    assert len(stripe.calls("POST", "/v1/payment_intents")) == 1


def test_paying_activates_the_membership_for_the_plan_period(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    order = Order.objects.get(buyer=user)

    pay(stripe, order.pk)

    membership = Membership.objects.get(user=user)
    assert membership.status == Membership.Status.ACTIVE
    expected = Order.objects.get(pk=order.pk).paid_at + timedelta(days=365)
    assert abs(membership.expires_at - expected) < timedelta(seconds=5)
    assert membership.points == 0  # entry fees buy membership, not points


def test_renewing_extends_from_the_later_of_now_and_the_current_expiry(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    pay(stripe, Order.objects.get(buyer=user).pk)
    current_expiry = Membership.objects.get(user=user).expires_at

    renewal = body(join(user, paid_club, key="renew-2027"))
    pay(stripe, renewal["payment"]["order_id"])

    membership = Membership.objects.get(user=user)
    assert membership.status == Membership.Status.ACTIVE
    assert abs(membership.expires_at - (current_expiry + timedelta(days=365))) < timedelta(seconds=5)


def test_a_lapsed_member_renewing_gets_a_period_from_now(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    pay(stripe, Order.objects.get(buyer=user).pk)
    Membership.objects.filter(user=user).update(
        status=Membership.Status.EXPIRED, expires_at=timezone.now() - timedelta(days=30)
    )

    renewal = body(join(user, paid_club, key="back-again"))
    pay(stripe, renewal["payment"]["order_id"])

    expires_at = Membership.objects.get(user=user).expires_at
    assert abs(expires_at - (timezone.now() + timedelta(days=365))) < timedelta(seconds=10)


def test_a_member_may_take_the_fee_back_within_the_refund_window_and_leaves(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    order = pay(stripe, Order.objects.get(buyer=user).pk)

    response = client_for(user).post(f"/api/v1/orders/{order.pk}/refund/")

    assert response.status_code == 201, response.content
    assert body(response)["order_status"] == "refunded"
    assert Membership.objects.get(user=user).status == Membership.Status.EXPIRED
    assert client_for(user).post(f"/api/v1/orders/{order.pk}/refund/").status_code == 201  # a replay


def test_after_the_refund_window_the_member_must_ask_the_owner(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    order = pay(stripe, Order.objects.get(buyer=user).pk)
    Order.objects.filter(pk=order.pk).update(paid_at=timezone.now() - timedelta(days=3, minutes=1))

    response = client_for(user).post(f"/api/v1/orders/{order.pk}/refund/")

    assert response.status_code == 409 and body(response)["error"]["code"] == "refund_window_closed"
    assert Membership.objects.get(user=user).status == Membership.Status.ACTIVE


def test_goods_orders_have_no_self_service_refund(paid_club, stripe):
    from tests.commerce.factories import ProductFactory, SkuFactory
    from tests.commerce.flows import place_order

    user = UserFactory()
    join(user, paid_club)
    pay(stripe, Order.objects.get(buyer=user).pk)
    sku = SkuFactory(product=ProductFactory(community=paid_club["community"]))
    order_id = body(place_order(user, paid_club["community"], [(sku, 1)]))["id"]
    pay(stripe, order_id)

    response = client_for(user).post(f"/api/v1/orders/{order_id}/refund/")

    assert response.status_code == 409 and body(response)["error"]["code"] == "order_not_refundable"


def test_an_owner_refunding_the_whole_entry_fee_ends_the_membership(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    order = pay(stripe, Order.objects.get(buyer=user).pk)

    partial = refund_as_owner(paid_club["community"].owner, order.pk, amount="99.00")
    assert body(partial)["order_status"] == "partially_refunded"
    assert Membership.objects.get(user=user).status == Membership.Status.ACTIVE
    refund_as_owner(paid_club["community"].owner, order.pk)

    assert Membership.objects.get(user=user).status == Membership.Status.EXPIRED


def test_a_failed_entry_payment_leaves_the_membership_pending(paid_club, stripe):
    user = UserFactory()
    join(user, paid_club)
    order = Order.objects.get(buyer=user)

    deliver(stripe, "payment_intent.payment_failed", stripe.fail(intent_of(order.pk)))

    assert Membership.objects.get(user=user).status == Membership.Status.PENDING_PAYMENT
    assert Payment.objects.get(order=order).status == Payment.Status.FAILED


def test_when_stripe_is_down_joining_answers_503_and_a_retry_pays(paid_club, stripe):
    user = UserFactory()
    stripe.fail_next(503, 503)

    assert join(user, paid_club, key="join-1").status_code == 503
    retry = join(user, paid_club, key="join-1")

    assert retry.status_code == 201 and body(retry)["payment"]["client_secret"]
    assert Order.objects.count() == 1


def test_the_entry_order_its_payment_and_the_members_refund_are_recorded_with_their_actors(paid_club, stripe):
    user = UserFactory()
    order_id = body(join(user, paid_club))["payment"]["order_id"]
    pay(stripe, order_id)

    first = client_for(user).post(f"/api/v1/orders/{order_id}/refund/", HTTP_IDEMPOTENCY_KEY="mine")
    again = client_for(user).post(f"/api/v1/orders/{order_id}/refund/")

    assert first.status_code == again.status_code == 201 and body(first)["id"] == body(again)["id"]
    actions = list(
        AuditEntry.objects.filter(community_id=paid_club["community"].pk)
        .order_by("pk")
        .values_list("action", "actor_label")
    )
    member = f"user:{user.pk}"
    assert [a for a in actions if a[0].startswith(("order.", "refund."))] == [
        ("order.created", member),
        ("order.paid", "provider:stripe"),
        ("order.refund_requested", member),
        ("refund.confirmed", member),
        ("order.refunds_settled", member),
    ]


def test_a_free_plan_is_recorded_as_an_offline_payment_by_the_member(stripe):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=Decimal("0.00"))
    user = UserFactory()

    response = join(user, {"community": community, "plan": plan})

    assert response.status_code == 201 and body(response)["payment"] is None
    entry = AuditEntry.objects.get(action="payment.offline_recorded")
    assert entry.actor_label == f"user:{user.pk}" and entry.community_id == community.pk
    assert AuditEntry.objects.filter(action="order.paid", actor_label=f"user:{user.pk}").count() == 1
