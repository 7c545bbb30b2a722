"""Reconciliation: empty on a consistent ledger; each mismatch kind, seeded behind services' backs, shows."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order, OrderLine, Payment, Refund, WebhookEvent
from commerce.reports.filters import ReportFilters
from commerce.reports.reconciliation import KINDS, RECONCILIATION
from commerce.reports.roles import finance_user_grant
from commerce.reports.services import report_snapshot
from tests.commerce.reports_world import build_ledger
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _money_reconciles():
    """These tests break the ledger on purpose: the suite's after-test money check does not apply."""
    yield


@pytest.fixture
def ledger(stripe):
    return build_ledger(stripe)


def mismatches(community_ids=None) -> list[tuple]:
    today = timezone.localdate()
    filters = ReportFilters(
        date_from=today - timedelta(days=30), date_to=today + timedelta(days=1), community_ids=community_ids
    )
    with report_snapshot():
        return list(RECONCILIATION.rows(filters))


def kinds_of(rows) -> set[str]:
    labels = {str(label): kind for kind, label in KINDS.items()}
    return {labels[row[0]] for row in rows}


def paid_without_payment(ledger):
    order = ledger["unpaid"]
    Order.objects.filter(pk=order.pk).update(
        status="paid", payment_status="paid", amount_paid=order.total, paid_at=timezone.now()
    )
    return order.pk


def payment_without_order(ledger):
    WebhookEvent.objects.create(
        provider="stripe",
        event_id="evt_unknown",
        type="payment_intent.succeeded",
        payload={"data": {"object": {"id": "pi_stranger", "amount_received": 5000, "currency": "cny"}}},
        outcome=WebhookEvent.Outcome.IGNORED,
        processed_at=timezone.now(),
    )
    return None


def payment_for_another_order(ledger):
    payment = Payment.objects.get(order=ledger["b_order"])
    Payment.objects.filter(pk=payment.pk).update(raw={**payment.raw, "metadata": {"order_id": "999999"}})
    return ledger["b_order"].pk


def paid_differs(ledger):
    Order.objects.filter(pk=ledger["b_order"].pk).update(amount_paid=D("98.00"))
    return ledger["b_order"].pk


def total_differs(ledger):
    line = OrderLine.objects.filter(order=ledger["two_lines"]).first()
    OrderLine.objects.filter(pk=line.pk).update(line_total=line.line_total + 1)
    return ledger["two_lines"].pk


def paid_differs_from_total(ledger):
    Payment.objects.filter(order=ledger["b_order"]).update(amount_received=D("90.00"))
    Order.objects.filter(pk=ledger["b_order"].pk).update(amount_paid=D("90.00"))
    return ledger["b_order"].pk


def refunded_differs(ledger):
    Order.objects.filter(pk=ledger["b_order"].pk).update(amount_refunded=D("5.00"))
    return ledger["b_order"].pk


def refunds_above_payments(ledger):
    order = ledger["b_order"]
    Refund.objects.create(
        order=order, payment=order.payments.get(), provider="stripe", status="succeeded", amount=D("150.00")
    )
    return order.pk


SEEDS = {
    "paid_without_payment": paid_without_payment,
    "payment_without_order": payment_without_order,
    "paid_differs": paid_differs,
    "total_differs": total_differs,
    "paid_differs_from_total": paid_differs_from_total,
    "refunded_differs": refunded_differs,
    "refunds_above_payments": refunds_above_payments,
}


def test_a_consistent_ledger_reconciles_to_nothing(ledger):
    assert mismatches() == []


@pytest.mark.parametrize("kind", [*SEEDS, "payment_for_another_order"])
def test_each_kind_of_mismatch_is_reported(ledger, kind):
    seed = SEEDS.get(kind, payment_for_another_order)
    expected_kind = kind if kind in SEEDS else "payment_without_order"

    order_id = seed(ledger)

    rows = mismatches()
    assert expected_kind in kinds_of(rows)
    flagged = [row for row in rows if row[0] == str(KINDS[expected_kind])]
    if order_id is not None:
        assert [row[1] for row in flagged] == [order_id]
    else:
        assert flagged[0][2] == "pi_stranger" and flagged[0][6] == D("50.00")


def test_an_owner_sees_only_their_own_communities_mismatches(ledger):
    paid_differs(ledger)

    assert mismatches(community_ids=frozenset({ledger["a"].pk})) == []
    assert len(mismatches(community_ids=frozenset({ledger["b"].pk}))) == 1


def test_the_admin_check_page_lists_mismatches_for_finance(client, ledger):
    client.force_login(finance_user_grant(user=UserFactory()))
    url = reverse("admin:commerce_exportjob_reconciliation")

    clean = client.get(url).content.decode()
    refunds_above_payments(ledger)
    broken = client.get(url)

    assert 'id="no-mismatch"' in clean
    assert broken.status_code == 200 and broken.content.decode().count('class="mismatch"') >= 1
    assert 'id="no-mismatch"' not in broken.content.decode()


MALFORMED_INTENTS = [
    "not an object",
    ["a", "list"],
    {"id": "pi_odd", "amount_received": "lots", "currency": 7},
    {"id": ["x"], "amount": {"value": 1}, "currency": None},
    {"id": "pi_huge", "amount_received": "9" * 400},
    {"id": "pi_nan", "amount_received": "NaN"},
]


@pytest.mark.parametrize("intent", MALFORMED_INTENTS)
def test_a_malformed_stored_payload_does_not_break_reconciliation(client, ledger, intent):
    """Given an unmatched success event whose stored payload is malformed, the report and the
    admin page still answer, listing it with what can be read (amount zero otherwise)."""
    WebhookEvent.objects.create(
        provider="stripe",
        event_id="evt_malformed",
        type="payment_intent.succeeded",
        payload={"data": {"object": intent}},
        outcome=WebhookEvent.Outcome.IGNORED,
        processed_at=timezone.now(),
    )

    rows = mismatches()
    client.force_login(finance_user_grant(user=UserFactory()))
    page = client.get(reverse("admin:commerce_exportjob_reconciliation"))

    assert kinds_of(rows) == {"payment_without_order"} and rows[0][6] == D("0.00")
    assert page.status_code == 200 and 'class="mismatch"' in page.content.decode()


@pytest.mark.parametrize("payload", [[1, 2], "text", {"data": "x"}, {"data": {"object": None}}])
def test_a_payload_that_is_not_an_event_object_is_listed_blank(ledger, payload):
    WebhookEvent.objects.create(
        provider="stripe",
        event_id="evt_not_object",
        type="payment_intent.succeeded",
        payload=payload,
        outcome=WebhookEvent.Outcome.IGNORED,
        processed_at=timezone.now(),
    )

    rows = mismatches()

    assert [(row[2], row[4], row[6]) for row in rows] == [("", "", D("0.00"))]
