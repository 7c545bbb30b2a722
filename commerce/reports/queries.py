"""One query per report. Each streams ``values_list`` rows through a server-side cursor, ordered by id.

Which time puts a row into a date range (Asia/Shanghai calendar days):

* orders, order lines: when the order was paid, else when it was placed;
* payments: when the payment succeeded, else when it was created;
* refunds: when the provider confirmed it, else when it was requested;
* entry fees: when the entry order was paid (paid entry orders only);
* commissions: when the commission was created (the order's payment);
* withdrawals: each ledger movement by when it was written (the request's debit, a return);
* settlement: each figure by when its money moved (see ``settlement.py``).
"""

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connections
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commerce.models import (
    Commission,
    CommissionEntry,
    Order,
    OrderLine,
    Payment,
    Refund,
    ShipmentLine,
    ShippingUpload,
    Withdrawal,
)
from commerce.payments.labels import provider_label
from commerce.reports.columns import CellType, Column, Report, TotalRule
from commerce.reports.filters import ReportFilters
from shequn_backend.calendar import business_zone

DEFAULT_CHUNK_SIZE = 10_000
ZERO = Decimal("0.00")


class LocalDateTime(Func):
    """A timestamp as the report's wall-clock time to the second, computed by PostgreSQL.

    PostgreSQL returns a naive ``timestamp`` that psycopg parses in C; Django's
    own aware-datetime loader is pure Python and would dominate a large
    export. Other databases return the stored (aware) value: the writers
    convert those themselves.
    """

    output_field = DateTimeField()

    def __init__(self, expression, **extra):
        super().__init__(F(expression) if isinstance(expression, str) else expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        return compiler.compile(self.source_expressions[0])

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_trunc('second', ({sql}) AT TIME ZONE %s)", (*params, business_zone().key)


def chunk_size() -> int:
    return getattr(settings, "REPORTS_CHUNK_SIZE", DEFAULT_CHUNK_SIZE)


def labels(choices) -> dict[str, str]:
    """Choice labels in the active language, resolved once per export rather than once per row."""
    return {value: str(label) for value, label in choices}


class ProviderNames(dict):
    """Provider names (``offline``) as readers know them (线下收款), looked up once per provider."""

    def __missing__(self, name: str) -> str:
        self[name] = provider_label(name)
        return self[name]


def money(key: str, label, *, total: bool = True, width: int = 12) -> Column:
    return Column(key, label, CellType.MONEY, width, total)


def when(key: str, label) -> Column:
    return Column(key, label, CellType.DATETIME, 19)


def _in_range(queryset: QuerySet, *, field: str, filters: ReportFilters) -> QuerySet:
    start, end = filters.bounds
    return queryset.filter(**{f"{field}__gte": start, f"{field}__lt": end})


def _in_communities(queryset: QuerySet, *, lookup: str, filters: ReportFilters) -> QuerySet:
    if filters.community_ids is None:
        return queryset
    return queryset.filter(**{f"{lookup}__in": sorted(filters.community_ids)})


def _stream(queryset: QuerySet) -> Iterator[tuple]:
    return queryset.order_by("id").iterator(chunk_size=chunk_size())


# --- orders -----------------------------------------------------------------------------------------


def orders_queryset(*, filters: ReportFilters) -> QuerySet[Order]:
    queryset = Order.objects.alias(booked_at=Coalesce("paid_at", "created_at"))
    queryset = _in_range(queryset, field="booked_at", filters=filters)
    queryset = _in_communities(queryset, lookup="community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    return queryset


ORDER_COLUMNS = (
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("community_slug", gettext_lazy("Community slug"), width=16),
    Column("buyer", gettext_lazy("Buyer"), width=16),
    Column("kind", gettext_lazy("Kind"), width=10),
    Column("status", gettext_lazy("Status"), width=12),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("subtotal", gettext_lazy("Before discount")),
    money("discount", gettext_lazy("Coupon discount")),
    money("total", gettext_lazy("Order total")),
    money("amount_paid", gettext_lazy("Amount paid")),
    money("amount_refunded", gettext_lazy("Amount refunded")),
    money("net", gettext_lazy("Net")),
    when("created_at", gettext_lazy("Placed at")),
    when("paid_at", gettext_lazy("Paid at")),
    Column("needs_review", gettext_lazy("Needs review"), width=10),
)


def orders_rows(filters: ReportFilters) -> Iterator[tuple]:
    kinds, statuses = labels(Order.Kind.choices), labels(Order.Status.choices)
    yes_no = {True: _("Yes"), False: _("No")}
    queryset = orders_queryset(filters=filters).values_list(
        "id",
        "community__name",
        "community__slug",
        "buyer__username",
        "kind",
        "status",
        "currency",
        "discount_total",
        "total",
        "amount_paid",
        "amount_refunded",
        LocalDateTime("created_at"),
        LocalDateTime("paid_at"),
        "needs_review",
    )
    for (
        pk,
        name,
        slug,
        buyer,
        kind,
        status,
        currency,
        discount,
        total,
        paid,
        refunded,
        created,
        paid_at,
        review,
    ) in _stream(queryset):
        yield (
            pk,
            name,
            slug,
            buyer,
            kinds[kind],
            statuses[status],
            currency,
            total + discount,
            discount,
            total,
            paid,
            refunded,
            paid - refunded,
            created,
            paid_at,
            yes_no[bool(review)],
        )


def orders_count(filters: ReportFilters) -> int:
    return orders_queryset(filters=filters).count()


# --- order lines ------------------------------------------------------------------------------------


ORDER_LINE_COLUMNS = (
    Column("line_id", gettext_lazy("Line no."), CellType.INTEGER, 10),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("kind", gettext_lazy("Kind"), width=10),
    Column("status", gettext_lazy("Order status"), width=12),
    Column("title", gettext_lazy("Item"), width=30),
    Column("quantity", gettext_lazy("Quantity"), CellType.INTEGER, 8, total=True),
    money("list_price", gettext_lazy("List price"), total=False),
    money("unit_price", gettext_lazy("Unit price"), total=False),
    money("line_total", gettext_lazy("Line total")),
    money("discount", gettext_lazy("Coupon discount")),
    money("paid_amount", gettext_lazy("Paid for the line")),
    Column("currency", gettext_lazy("Currency"), width=8),
    when("created_at", gettext_lazy("Placed at")),
    when("paid_at", gettext_lazy("Paid at")),
)


def label_case(field: str, choices) -> Case:
    """Choice labels (active language) computed by the database: no per-row Python on the hot report."""
    whens = [When(**{field: value}, then=Value(label)) for value, label in labels(choices).items()]
    return Case(*whens, default=F(field), output_field=CharField())


# ``OrderLine.paid_amount`` computed by the database.
PAID_AMOUNT = ExpressionWrapper(
    F("line_total") - F("discount"), output_field=DecimalField(max_digits=12, decimal_places=2)
)


def order_lines_values(*, filters: ReportFilters, labelled: bool = True) -> QuerySet:
    """Order lines as values, one join (no subquery): also the query the benchmark hands to ``COPY``."""
    queryset = OrderLine.objects.alias(booked_at=Coalesce("order__paid_at", "order__created_at"))
    queryset = _in_range(queryset, field="booked_at", filters=filters)
    queryset = _in_communities(queryset, lookup="order__community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(order__status=filters.status)
    if filters.kind:
        queryset = queryset.filter(order__kind=filters.kind)
    return queryset.values_list(
        "id",
        "order_id",
        "order__community__name",
        label_case("order__kind", Order.Kind.choices) if labelled else "order__kind",
        label_case("order__status", Order.Status.choices) if labelled else "order__status",
        "title",
        "quantity",
        "list_price",
        "unit_price",
        "line_total",
        "discount",
        PAID_AMOUNT,
        "order__currency",
        LocalDateTime("order__created_at"),
        LocalDateTime("order__paid_at"),
    ).order_by("id")


def stream_tuples(queryset: QuerySet) -> Iterator[tuple]:
    """The queryset's rows as psycopg's own tuples from a server-side cursor, no per-row Django step.

    For value querysets whose columns need no Django converter (labels and local times computed in
    SQL); elsewhere than PostgreSQL, Django's iterator. Call inside a transaction (``report_snapshot``).
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        yield from queryset.iterator(chunk_size=chunk_size())
        return
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as setup:
        # Plan for every row, not the first 10% (a cursor's default): no fast-start nested loop.
        setup.execute("SET LOCAL cursor_tuple_fraction = 1.0")
    with connection.connection.cursor(name=f"report_{uuid.uuid4().hex}") as cursor:
        cursor.itersize = chunk_size()
        cursor.execute(sql, params)
        yield from cursor


def order_lines_rows(filters: ReportFilters) -> Iterator[tuple]:
    return stream_tuples(order_lines_values(filters=filters, labelled=True))


def order_lines_copy_query(filters: ReportFilters) -> QuerySet:
    return order_lines_values(filters=filters, labelled=True)


def order_lines_count(filters: ReportFilters) -> int:
    return order_lines_values(filters=filters).count()


# --- payments ---------------------------------------------------------------------------------------


def _money_moves(model, *, booked: str, filters: ReportFilters) -> QuerySet:
    """Payments or refunds dated by when the money moved (``booked``), else when they were created."""
    queryset = model.objects.alias(booked_at=Coalesce(booked, "created_at"))
    queryset = _in_range(queryset, field="booked_at", filters=filters)
    queryset = _in_communities(queryset, lookup="order__community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.kind:
        queryset = queryset.filter(order__kind=filters.kind)
    return queryset


def payments_queryset(*, filters: ReportFilters) -> QuerySet[Payment]:
    return _money_moves(Payment, booked="succeeded_at", filters=filters)


PAYMENT_COLUMNS = (
    Column("payment_id", gettext_lazy("Payment no."), CellType.INTEGER, 10),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("provider", gettext_lazy("Provider"), width=10),
    Column("provider_ref", gettext_lazy("Provider reference"), width=30),
    Column("status", gettext_lazy("Status"), width=12),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("amount", gettext_lazy("Amount asked")),
    money("amount_received", gettext_lazy("Amount received")),
    money("fee", gettext_lazy("Stripe fee (not recorded)"), total=False, width=14),
    when("created_at", gettext_lazy("Created at")),
    when("succeeded_at", gettext_lazy("Succeeded at")),
)


def payments_rows(filters: ReportFilters) -> Iterator[tuple]:
    statuses, providers = labels(Payment.Status.choices), ProviderNames()
    queryset = payments_queryset(filters=filters).values_list(
        "id",
        "order_id",
        "order__community__name",
        "provider",
        "provider_ref",
        "status",
        "currency",
        "amount",
        "amount_received",
        LocalDateTime("created_at"),
        LocalDateTime("succeeded_at"),
    )
    for pk, order, name, provider, ref, status, currency, amount, received, created, succeeded in _stream(
        queryset
    ):
        yield (
            pk,
            order,
            name,
            providers[provider],
            ref,
            statuses[status],
            currency,
            amount,
            received,
            None,
            created,
            succeeded,
        )


def payments_count(filters: ReportFilters) -> int:
    return payments_queryset(filters=filters).count()


# --- refunds ----------------------------------------------------------------------------------------


def refunds_queryset(*, filters: ReportFilters) -> QuerySet[Refund]:
    return _money_moves(Refund, booked="confirmed_at", filters=filters)


REFUND_COLUMNS = (
    Column("refund_id", gettext_lazy("Refund no."), CellType.INTEGER, 10),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("provider_ref", gettext_lazy("Provider reference"), width=30),
    Column("status", gettext_lazy("Status"), width=12),
    Column("source", gettext_lazy("Source"), width=14),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("amount", gettext_lazy("Amount")),
    Column("reason", gettext_lazy("Reason"), width=24),
    Column("after_sale_id", gettext_lazy("After-sale no."), CellType.INTEGER, 10),
    when("created_at", gettext_lazy("Requested at")),
    when("confirmed_at", gettext_lazy("Confirmed at")),
)


def refunds_rows(filters: ReportFilters) -> Iterator[tuple]:
    statuses, sources = labels(Refund.Status.choices), labels(Refund.Source.choices)
    queryset = refunds_queryset(filters=filters).values_list(
        "id",
        "order_id",
        "order__community__name",
        "provider_ref",
        "status",
        "source",
        "currency",
        "amount",
        "reason",
        "after_sale_id",
        LocalDateTime("created_at"),
        LocalDateTime("confirmed_at"),
    )
    for pk, order, name, ref, status, source, currency, amount, reason, after_sale, *times in _stream(
        queryset
    ):
        yield (
            pk,
            order,
            name,
            ref,
            statuses[status],
            sources[source],
            currency,
            amount,
            reason,
            after_sale,
            *times,
        )


def refunds_count(filters: ReportFilters) -> int:
    return refunds_queryset(filters=filters).count()


# --- shipments -------------------------------------------------------------------------------------


def shipments_queryset(*, filters: ReportFilters) -> QuerySet[ShipmentLine]:
    """What went out in packages, one row per order line in a package, dated by when it shipped."""
    queryset = _in_range(ShipmentLine.objects.all(), field="shipment__shipped_at", filters=filters)
    queryset = _in_communities(queryset, lookup="shipment__order__community_id", filters=filters)
    if filters.status == "confirmed":
        queryset = queryset.filter(shipment__confirmed_at__isnull=False)
    elif filters.status == "unconfirmed":
        queryset = queryset.filter(shipment__confirmed_at__isnull=True)
    return queryset


SHIPMENT_STATUSES = (
    ("confirmed", gettext_lazy("Receipt confirmed")),
    ("unconfirmed", gettext_lazy("Not confirmed yet")),
)
SHIPMENT_COLUMNS = (
    Column("shipment_id", gettext_lazy("Shipment no."), CellType.INTEGER, 10),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("carrier", gettext_lazy("Carrier"), width=10),
    Column("tracking_no", gettext_lazy("Tracking number"), width=22),
    Column("title", gettext_lazy("Item"), width=24),
    Column("quantity", gettext_lazy("Quantity"), CellType.INTEGER, 8, total=True),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("value", gettext_lazy("Value shipped")),
    when("shipped_at", gettext_lazy("Shipped at")),
    when("confirmed_at", gettext_lazy("Receipt confirmed at")),
    Column("wechat", gettext_lazy("WeChat shipping info"), width=14),
)


def shipments_rows(filters: ReportFilters) -> Iterator[tuple]:
    uploads = labels(ShippingUpload.Status.choices)
    queryset = shipments_queryset(filters=filters).values_list(
        "shipment_id",
        "shipment__order_id",
        "shipment__order__community__name",
        "shipment__carrier",
        "shipment__tracking_no",
        "line__title",
        "quantity",
        "shipment__order__currency",
        "line__unit_price",
        LocalDateTime("shipment__shipped_at"),
        LocalDateTime("shipment__confirmed_at"),
        "shipment__shipping_upload__status",
    )
    for *head, quantity, currency, price, shipped, confirmed, upload in _stream(queryset):
        wechat = uploads[upload] if upload else ""
        yield (*head, quantity, currency, price * quantity, shipped, confirmed, wechat)


def shipments_count(filters: ReportFilters) -> int:
    return shipments_queryset(filters=filters).count()


# --- entry fees -------------------------------------------------------------------------------------


def entry_fees_queryset(*, filters: ReportFilters) -> QuerySet[Order]:
    queryset = Order.objects.filter(kind=Order.Kind.ENTRY, paid_at__isnull=False)
    queryset = _in_range(queryset, field="paid_at", filters=filters)
    queryset = _in_communities(queryset, lookup="community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    return queryset


def refund_window_open_q(*, now: datetime, windows: list[int], prefix: str = "") -> Q:
    """Entry orders still inside their plan's refund window at ``now`` (no plan: no window).

    One condition per distinct window length (plans use a handful), so that
    the test stays plain SQL on every database.
    """
    condition = Q(**{f"{prefix}plan__refund_window_days__lt": 0})  # false: a start for the ORs
    for days in windows:
        condition |= Q(
            **{f"{prefix}plan__refund_window_days": days, f"{prefix}paid_at__gt": now - timedelta(days=days)}
        )
    return condition


ENTRY_FEE_COLUMNS = (
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("community_slug", gettext_lazy("Community slug"), width=16),
    Column("buyer", gettext_lazy("Member"), width=16),
    Column("plan", gettext_lazy("Entry plan"), width=18),
    Column("status", gettext_lazy("Status"), width=12),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("amount_paid", gettext_lazy("Amount paid")),
    money("amount_refunded", gettext_lazy("Amount refunded")),
    money("net", gettext_lazy("Net")),
    money("in_window", gettext_lazy("Net still inside refund window"), width=16),
    money("drawable", gettext_lazy("Net past refund window (drawable)"), width=16),
    when("paid_at", gettext_lazy("Paid at")),
    when("window_ends_at", gettext_lazy("Refund window ends at")),
)


def entry_fees_rows(filters: ReportFilters, *, now: datetime | None = None) -> Iterator[tuple]:
    now = now or timezone.now()
    statuses = labels(Order.Status.choices)
    queryset = entry_fees_queryset(filters=filters).values_list(
        "id",
        "community__name",
        "community__slug",
        "buyer__username",
        "plan__name",
        "status",
        "currency",
        "amount_paid",
        "amount_refunded",
        "paid_at",
        "plan__refund_window_days",
    )
    for pk, name, slug, buyer, plan, status, currency, paid, refunded, paid_at, window in _stream(queryset):
        net = paid - refunded
        ends = paid_at + timedelta(days=window or 0)
        inside = ends > now
        yield (
            pk,
            name,
            slug,
            buyer,
            plan or "",
            statuses[status],
            currency,
            paid,
            refunded,
            net,
            net if inside else ZERO,
            ZERO if inside else net,
            paid_at,
            ends,
        )


def entry_fees_count(filters: ReportFilters) -> int:
    return entry_fees_queryset(filters=filters).count()


# --- commissions ------------------------------------------------------------------------------------


def commissions_queryset(*, filters: ReportFilters) -> QuerySet[Commission]:
    queryset = _in_range(Commission.objects.all(), field="created_at", filters=filters)
    queryset = _in_communities(queryset, lookup="community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.kind:
        queryset = queryset.filter(order__kind=filters.kind)
    return queryset


COMMISSION_COLUMNS = (
    Column("commission_id", gettext_lazy("Commission no."), CellType.INTEGER, 10),
    Column("order_id", gettext_lazy("Order no."), CellType.INTEGER, 10),
    Column("community", gettext_lazy("Community"), width=18),
    Column("beneficiary", gettext_lazy("Beneficiary"), width=16),
    Column("level", gettext_lazy("Level"), CellType.INTEGER, 6),
    Column("status", gettext_lazy("Status"), width=14),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("base_amount", gettext_lazy("Order amount")),
    Column("rate_percent", gettext_lazy("Rate (%)"), CellType.PERCENT, 8),
    money("amount", gettext_lazy("Commission")),
    money("amount_reversed", gettext_lazy("Amount reversed")),
    money("net", gettext_lazy("Net commission")),
    when("created_at", gettext_lazy("Created at")),
    when("settle_after", gettext_lazy("Settles after")),
    when("settled_at", gettext_lazy("Settled at")),
    when("reversed_at", gettext_lazy("Reversed at")),
)


def commissions_rows(filters: ReportFilters) -> Iterator[tuple]:
    statuses = labels(Commission.Status.choices)
    queryset = commissions_queryset(filters=filters).values_list(
        "id",
        "order_id",
        "community__name",
        "beneficiary__user__username",
        "level",
        "status",
        "currency",
        "base_amount",
        "rate_percent",
        "amount",
        "amount_reversed",
        LocalDateTime("created_at"),
        LocalDateTime("settle_after"),
        LocalDateTime("settled_at"),
        LocalDateTime("reversed_at"),
    )
    for row in _stream(queryset):
        pk, order, name, who, level, status, currency, base, rate, amount, reversed_, *times = row
        yield (
            pk,
            order,
            name,
            who,
            level,
            statuses[status],
            currency,
            base,
            rate,
            amount,
            reversed_,
            amount - reversed_,
            *times,
        )


def commissions_count(filters: ReportFilters) -> int:
    return commissions_queryset(filters=filters).count()


# --- withdrawals ------------------------------------------------------------------------------------


def withdrawals_queryset(*, filters: ReportFilters) -> QuerySet[CommissionEntry]:
    queryset = CommissionEntry.objects.filter(withdrawal__isnull=False)
    queryset = _in_range(queryset, field="created_at", filters=filters)
    queryset = _in_communities(queryset, lookup="beneficiary__community_id", filters=filters)
    if filters.status:
        queryset = queryset.filter(withdrawal__status=filters.status)
    return queryset


WITHDRAWAL_COLUMNS = (
    Column("entry_id", gettext_lazy("Ledger entry no."), CellType.INTEGER, 10),
    Column("withdrawal_id", gettext_lazy("Withdrawal no."), CellType.INTEGER, 10),
    Column("out_bill_no", gettext_lazy("Transfer bill no."), width=28),
    Column("community", gettext_lazy("Community"), width=18),
    Column("member", gettext_lazy("Member"), width=16),
    Column("movement", gettext_lazy("Movement"), width=12),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("amount", gettext_lazy("Ledger amount")),
    Column("status", gettext_lazy("Withdrawal status"), width=14),
    money("withdrawal_amount", gettext_lazy("Withdrawal amount"), total=False),
    money("fee", gettext_lazy("Fee"), total=False),
    Column("transfer_bill_no", gettext_lazy("WeChat transfer bill no."), width=28),
    when("created_at", gettext_lazy("Written at")),
    when("finished_at", gettext_lazy("Finished at")),
)


def withdrawals_rows(filters: ReportFilters) -> Iterator[tuple]:
    kinds, statuses = labels(CommissionEntry.Kind.choices), labels(Withdrawal.Status.choices)
    queryset = withdrawals_queryset(filters=filters).values_list(
        "id",
        "withdrawal_id",
        "withdrawal__out_bill_no",
        "beneficiary__community__name",
        "beneficiary__user__username",
        "kind",
        "currency",
        "amount",
        "withdrawal__status",
        "withdrawal__amount",
        "withdrawal__fee",
        "withdrawal__transfer_bill_no",
        LocalDateTime("created_at"),
        LocalDateTime("withdrawal__finished_at"),
    )
    for row in _stream(queryset):
        pk, withdrawal, bill, name, who, kind, currency, amount, status, *rest = row
        yield (pk, withdrawal, bill, name, who, kinds[kind], currency, amount, statuses[status], *rest)


def withdrawals_count(filters: ReportFilters) -> int:
    return withdrawals_queryset(filters=filters).count()


PAID_ORDERS_ONLY = TotalRule("paid_at", gettext_lazy("Total (paid orders only)"))


def _succeeded(choices):
    return lambda: {str(label) for value, label in choices if value == "succeeded"}


REPORT_DEFINITIONS = {
    "orders": Report(
        "orders",
        gettext_lazy("Orders"),
        ORDER_COLUMNS,
        orders_rows,
        orders_count,
        statuses=tuple(Order.Status.choices),
        kinds=tuple(Order.Kind.choices),
        total_rule=PAID_ORDERS_ONLY,
        notes=(
            gettext_lazy(
                "Every order in the range is listed; the totals row adds paid orders only "
                "(unpaid and cancelled orders are not summed)."
            ),
        ),
    ),
    "order_lines": Report(
        "order_lines",
        gettext_lazy("Order lines"),
        ORDER_LINE_COLUMNS,
        order_lines_rows,
        order_lines_count,
        statuses=tuple(Order.Status.choices),
        kinds=tuple(Order.Kind.choices),
        total_rule=PAID_ORDERS_ONLY,
        copy_query=order_lines_copy_query,
        notes=(
            gettext_lazy(
                "Every order in the range is listed; the totals row adds paid orders only "
                "(unpaid and cancelled orders are not summed)."
            ),
        ),
    ),
    "payments": Report(
        "payments",
        gettext_lazy("Payments"),
        PAYMENT_COLUMNS,
        payments_rows,
        payments_count,
        statuses=tuple(Payment.Status.choices),
        kinds=tuple(Order.Kind.choices),
        notes=(
            gettext_lazy("Stripe fees are not recorded by the payment flow: the fee column is left blank."),
            gettext_lazy("The totals row adds succeeded payments only."),
        ),
        total_rule=TotalRule(
            "status", gettext_lazy("Total (succeeded payments only)"), _succeeded(Payment.Status.choices)
        ),
    ),
    "refunds": Report(
        "refunds",
        gettext_lazy("Refunds"),
        REFUND_COLUMNS,
        refunds_rows,
        refunds_count,
        statuses=tuple(Refund.Status.choices),
        kinds=tuple(Order.Kind.choices),
        notes=(gettext_lazy("The totals row adds succeeded refunds only."),),
        total_rule=TotalRule(
            "status", gettext_lazy("Total (succeeded refunds only)"), _succeeded(Refund.Status.choices)
        ),
    ),
    "shipments": Report(
        "shipments",
        gettext_lazy("Shipments"),
        SHIPMENT_COLUMNS,
        shipments_rows,
        shipments_count,
        statuses=SHIPMENT_STATUSES,
        notes=(
            gettext_lazy(
                "One row per order line in a package, dated by when it shipped; the value is the line's "
                "unit price times the units in the package."
            ),
        ),
    ),
    "entry_fees": Report(
        "entry_fees",
        gettext_lazy("Entry fees"),
        ENTRY_FEE_COLUMNS,
        entry_fees_rows,
        entry_fees_count,
        statuses=tuple(Order.Status.choices),
    ),
    "commissions": Report(
        "commissions",
        gettext_lazy("Commissions"),
        COMMISSION_COLUMNS,
        commissions_rows,
        commissions_count,
        statuses=tuple(Commission.Status.choices),
        kinds=tuple(Order.Kind.choices),
    ),
    "withdrawals": Report(
        "withdrawals",
        gettext_lazy("Withdrawals"),
        WITHDRAWAL_COLUMNS,
        withdrawals_rows,
        withdrawals_count,
        statuses=tuple(Withdrawal.Status.choices),
        notes=(
            gettext_lazy(
                "One row per commission ledger movement of a withdrawal: the request takes the amount "
                "out of the balance (negative), a rejected, failed or cancelled transfer puts it back."
            ),
        ),
    ),
}
