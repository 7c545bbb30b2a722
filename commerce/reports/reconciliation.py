"""Reconciliation: every place where orders and payments disagree. Empty when the ledger is consistent.

Kinds of mismatch (each with what was expected and what was found):

* ``paid_without_payment``: an order that counts as paid (or holds money)
  with no succeeded payment;
* ``payment_without_order``: money the provider took for no order of ours
  (a ``payment_intent.succeeded`` delivery that matched no order), or a
  payment whose provider metadata names another order;
* ``paid_differs``: ``Order.amount_paid`` is not the sum of its succeeded payments;
* ``total_differs``: ``Order.total`` is not the sum of what its lines cost after the coupon discount;
* ``discount_differs``: ``Order.discount_total`` is not the sum of its lines' discounts;
* ``paid_differs_from_total``: money received is not the order total;
* ``refunded_differs``: ``Order.amount_refunded`` is not the sum of its succeeded refunds;
* ``refunds_above_payments``: succeeded refunds exceed succeeded payments;
* ``bill_missing_ours``, ``bill_missing_theirs``, ``bill_amount``,
  ``bill_status``: the differences the daily WeChat Pay trade bill's
  reconciliation stored (``reconcile_payments``), by bill day; expected is
  the bill's amount, found ours.

Sums come from correlated subqueries (no join fan-out); rows stream like any report.
"""

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

from django.db.models import CharField, DecimalField, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commerce.models import BillDifference, Order, OrderLine, Payment, Refund, WebhookEvent
from commerce.reports.columns import CellType, Column, Report
from commerce.reports.filters import ReportFilters
from commerce.reports.queries import chunk_size, money, when
from shequn_backend.calendar import day_bounds

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
AMOUNT_LIMIT = Decimal(10) ** 10  # what the money columns hold (12 digits, 2 decimals)
KINDS = {
    "paid_without_payment": gettext_lazy("Paid order without a succeeded payment"),
    "payment_without_order": gettext_lazy("Payment without an order of ours"),
    "paid_differs": gettext_lazy("Amount paid differs from succeeded payments"),
    "total_differs": gettext_lazy("Order total differs from its lines"),
    "discount_differs": gettext_lazy("Order discount differs from its lines' discounts"),
    "paid_differs_from_total": gettext_lazy("Amount received differs from the order total"),
    "refunded_differs": gettext_lazy("Amount refunded differs from succeeded refunds"),
    "refunds_above_payments": gettext_lazy("Refunds above payments"),
    "bill_missing_ours": gettext_lazy("In the WeChat Pay bill, missing on our side"),
    "bill_missing_theirs": gettext_lazy("On our side, missing in the WeChat Pay bill"),
    "bill_amount": gettext_lazy("Amount differs from the WeChat Pay bill"),
    "bill_status": gettext_lazy("Status differs from the WeChat Pay bill"),
}
BILL_KINDS = {
    BillDifference.Kind.MISSING_OURS: "bill_missing_ours",
    BillDifference.Kind.MISSING_THEIRS: "bill_missing_theirs",
    BillDifference.Kind.AMOUNT: "bill_amount",
    BillDifference.Kind.STATUS: "bill_status",
}

RECONCILIATION_COLUMNS = (
    Column("kind", gettext_lazy("Mismatch"), width=30),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("provider_ref", gettext_lazy("Provider reference"), width=30),
    Column("community", gettext_lazy("Community"), width=18),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("expected", gettext_lazy("Expected"), total=False),
    money("found", gettext_lazy("Found"), total=False),
    money("difference", gettext_lazy("Difference")),
    when("at", gettext_lazy("Booked at")),
    Column("reference", gettext_lazy("Our reference"), width=28),
    Column("detail", gettext_lazy("Detail"), width=40),
)


def _sum(model, *, field, condition: Q) -> Coalesce:
    rows = model.objects.filter(condition, order_id=OuterRef("pk")).values("order_id")
    total = rows.annotate(total=Sum(field)).values("total")
    money_field = DecimalField(max_digits=14, decimal_places=2)
    return Coalesce(Subquery(total, output_field=money_field), Value(ZERO), output_field=money_field)


def _orders(filters: ReportFilters) -> QuerySet[Order]:
    start, end = filters.bounds
    queryset = Order.objects.alias(booked_at=Coalesce("paid_at", "created_at")).filter(
        booked_at__gte=start, booked_at__lt=end
    )
    if filters.community_ids is not None:
        queryset = queryset.filter(community_id__in=sorted(filters.community_ids))
    return queryset.annotate(
        succeeded=_sum(Payment, field="amount_received", condition=Q(status=Payment.Status.SUCCEEDED)),
        refunded=_sum(Refund, field="amount", condition=Q(status=Refund.Status.SUCCEEDED)),
        lines_total=_sum(OrderLine, field=F("line_total") - F("discount"), condition=Q()),
        lines_discount=_sum(OrderLine, field="discount", condition=Q()),
        has_payment=Coalesce(
            Subquery(
                Payment.objects.filter(order_id=OuterRef("pk"), status=Payment.Status.SUCCEEDED).values("pk")[
                    :1
                ]
            ),
            Value(0),
        ),
        booked=Coalesce("paid_at", "created_at"),
    )


def _order_checks() -> list[tuple[str, Q, str, str]]:
    """(kind, condition, expected annotation, found annotation) over the annotated orders."""
    return [
        (
            "paid_without_payment",
            (Q(status__in=Order.EVER_PAID_STATUSES) | Q(amount_paid__gt=0)) & Q(has_payment=0),
            "amount_paid",
            "succeeded",
        ),
        ("paid_differs", ~Q(amount_paid=F("succeeded")), "succeeded", "amount_paid"),
        ("total_differs", ~Q(total=F("lines_total")), "lines_total", "total"),
        ("discount_differs", ~Q(discount_total=F("lines_discount")), "lines_discount", "discount_total"),
        ("paid_differs_from_total", Q(succeeded__gt=0) & ~Q(succeeded=F("total")), "total", "succeeded"),
        ("refunded_differs", ~Q(amount_refunded=F("refunded")), "refunded", "amount_refunded"),
        ("refunds_above_payments", Q(refunded__gt=F("succeeded")), "succeeded", "refunded"),
    ]


def _order_rows(filters: ReportFilters, labels: dict[str, str]) -> Iterator[tuple]:
    orders = _orders(filters)
    for kind, condition, expected, found in _order_checks():
        queryset = orders.filter(condition).values_list(
            "pk", "community__name", "currency", expected, found, "booked"
        )
        for pk, community, currency, want, got, booked in queryset.order_by("pk").iterator(
            chunk_size=chunk_size()
        ):
            yield (labels[kind], pk, "", community, currency, want, got, got - want, booked, "", "")


def _unmatched_intent(payload) -> tuple[str, str, Decimal]:
    """(reference, currency, amount) of a stored intent; what a malformed payload lacks is blank or zero.

    Stored payloads are whatever was signed: any part may be missing or of the wrong type.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    intent = data.get("object") if isinstance(data, dict) else None
    intent = intent if isinstance(intent, dict) else {}
    minor = intent.get("amount_received") or intent.get("amount") or 0
    try:
        amount = (Decimal(str(minor)) / 100).quantize(CENT)
    except (InvalidOperation, ValueError):
        amount = ZERO
    if not amount.is_finite() or abs(amount) >= AMOUNT_LIMIT:
        amount = ZERO
    return str(intent.get("id") or "")[:100], str(intent.get("currency") or "")[:3].upper(), amount


def _unmatched_payments(filters: ReportFilters, labels: dict[str, str]) -> Iterator[tuple]:
    """Provider money with no order of ours: only finance-wide scopes see these (they have no community)."""
    start, end = filters.bounds
    label = labels["payment_without_order"]
    if filters.community_ids is None:
        events = WebhookEvent.objects.filter(
            type="payment_intent.succeeded",
            order__isnull=True,
            processed_at__isnull=False,
            received_at__gte=start,
            received_at__lt=end,
        ).values_list("payload", "received_at")
        for payload, received in events.order_by("pk").iterator(chunk_size=chunk_size()):
            ref, currency, amount = _unmatched_intent(payload)
            yield (label, None, ref, "", currency, ZERO, amount, amount, received, "", "")
    payments = (
        Payment.objects.alias(booked_at=Coalesce("succeeded_at", "created_at"))
        .filter(booked_at__gte=start, booked_at__lt=end, raw__metadata__has_key="order_id")
        .annotate(meta_order=KT("raw__metadata__order_id"), booked=F("booked_at"))
        .exclude(meta_order=Cast("order_id", output_field=CharField()))
    )
    if filters.community_ids is not None:
        payments = payments.filter(order__community_id__in=sorted(filters.community_ids))
    rows = payments.values_list(
        "order_id", "provider_ref", "order__community__name", "currency", "amount", "booked", "reference"
    )
    for order_id, ref, community, currency, amount, booked, reference in rows.order_by("pk").iterator(
        chunk_size=chunk_size()
    ):
        yield (label, order_id, ref, community, currency, ZERO, amount, amount, booked, reference, "")


def _bill_detail(difference: BillDifference) -> str:
    return _("%(trade)s, bill of %(day)s %(merchant)s: ours %(ours)s, WeChat Pay %(theirs)s") % {
        "trade": difference.get_trade_display(),
        "day": difference.run.day.isoformat(),
        "merchant": difference.run.merchant,
        "ours": difference.our_status_label,
        "theirs": difference.their_status or "-",
    }


def _bill_rows(filters: ReportFilters, labels: dict[str, str]) -> Iterator[tuple]:
    """The stored differences of the trade bills of the days asked for (scoped by their community)."""
    differences = BillDifference.objects.filter(
        run__day__gte=filters.date_from, run__day__lte=filters.date_to
    ).select_related("run", "community")
    if filters.community_ids is not None:
        differences = differences.filter(community_id__in=sorted(filters.community_ids))
    for difference in differences.order_by("run__day", "run__merchant", "pk").iterator(
        chunk_size=chunk_size()
    ):
        expected = difference.their_amount if difference.their_amount is not None else ZERO
        found = difference.our_amount if difference.our_amount is not None else ZERO
        yield (
            labels[BILL_KINDS[difference.kind]],
            difference.order_id,
            difference.provider_ref,
            difference.community.name if difference.community else "",
            difference.currency,
            expected,
            found,
            found - expected,
            difference.occurred_at or day_bounds(difference.run.day)[0],
            difference.reference,
            _bill_detail(difference),
        )


def reconciliation_rows(filters: ReportFilters) -> Iterator[tuple]:
    labels = {kind: str(label) for kind, label in KINDS.items()}
    yield from _order_rows(filters, labels)
    yield from _unmatched_payments(filters, labels)
    yield from _bill_rows(filters, labels)


def reconciliation_count(filters: ReportFilters) -> int:
    return sum(1 for _row in reconciliation_rows(filters))


RECONCILIATION = Report(
    "reconciliation",
    gettext_lazy("Reconciliation"),
    RECONCILIATION_COLUMNS,
    reconciliation_rows,
    reconciliation_count,
    notes=(
        gettext_lazy(
            "Empty when every order agrees with its payments, refunds and lines, and every reconciled "
            "WeChat Pay trade bill agrees with our payments and refunds."
        ),
    ),
)
