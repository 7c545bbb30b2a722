"""The per-community settlement summary: what came in, what went back, what is owed and what may be drawn.

Each figure is booked by when its money moved, in the report's date range:

* gross sales: succeeded payments (all kinds, entry fees included) by ``succeeded_at``;
  coupon discounts of the orders paid in the range (by ``paid_at``) are their
  own column, and sales before discounts less the discounts are the gross;
* refunds: succeeded refunds by ``confirmed_at``; net = gross - refunds;
* commissions payable: the commission ledger's settlements and refund
  adjustments (payouts and returned withdrawals excluded) by when they were written;
* entry fees: net of refunds, entry orders paid in the range, split by
  whether their plan's refund window is still open *now* (the owner may
  draw only those past it);
* Stripe fees: not recorded by the payment flow, so the column is blank.

One row per community and currency; a handful of grouped queries, whatever
the number of orders.
"""

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db.models import F, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy

from commerce.models import CommissionEntry, Order, Payment, Refund
from commerce.reports.columns import Column, Report
from commerce.reports.filters import ReportFilters
from commerce.reports.queries import money, refund_window_open_q
from members.models import Community, EntryPlan

ZERO = Decimal("0.00")

SETTLEMENT_COLUMNS = (
    Column("community", gettext_lazy("Community"), width=18),
    Column("community_slug", gettext_lazy("Community slug"), width=16),
    Column("currency", gettext_lazy("Currency"), width=8),
    money("before_discounts", gettext_lazy("Sales before discounts"), width=14),
    money("discounts", gettext_lazy("Coupon discounts"), width=14),
    money("gross", gettext_lazy("Gross sales"), width=14),
    money("refunds", gettext_lazy("Refunds"), width=14),
    money("net", gettext_lazy("Net"), width=14),
    money("commissions_payable", gettext_lazy("Commissions payable"), width=14),
    money("entry_in_window", gettext_lazy("Entry fees inside refund window"), width=16),
    money("entry_drawable", gettext_lazy("Entry fees past refund window (drawable)"), width=16),
    money("stripe_fees", gettext_lazy("Stripe fees (not recorded)"), total=False, width=14),
)
FIGURES = ("discounts", "gross", "refunds", "commissions_payable", "entry_in_window", "entry_drawable")


def _scoped(queryset: QuerySet, *, lookup: str, filters: ReportFilters) -> QuerySet:
    if filters.community_ids is None:
        return queryset
    return queryset.filter(**{f"{lookup}__in": sorted(filters.community_ids)})


def settlement_figures(*, filters: ReportFilters, now: datetime | None = None) -> dict[tuple[int, str], dict]:
    """``{(community_id, currency): {figure: Decimal}}`` for every community with money in the range."""
    now = now or timezone.now()
    start, end = filters.bounds
    figures: dict[tuple[int, str], dict[str, Decimal]] = defaultdict(lambda: dict.fromkeys(FIGURES, ZERO))

    def add(rows, figure: str, community_key: str):
        for row in rows:
            figures[(row[community_key], row["currency"])][figure] += row["value"] or ZERO

    payments = _scoped(
        Payment.objects.filter(
            status=Payment.Status.SUCCEEDED, succeeded_at__gte=start, succeeded_at__lt=end
        ),
        lookup="order__community_id",
        filters=filters,
    )
    add(
        payments.values("order__community_id", "currency").annotate(value=Sum("amount_received")).order_by(),
        "gross",
        "order__community_id",
    )
    refunds = _scoped(
        Refund.objects.filter(status=Refund.Status.SUCCEEDED, confirmed_at__gte=start, confirmed_at__lt=end),
        lookup="order__community_id",
        filters=filters,
    )
    add(
        refunds.values("order__community_id", "currency").annotate(value=Sum("amount")).order_by(),
        "refunds",
        "order__community_id",
    )
    ledger = _scoped(
        CommissionEntry.objects.filter(created_at__gte=start, created_at__lt=end).exclude(
            kind__in=[CommissionEntry.Kind.PAYOUT, CommissionEntry.Kind.RETURNED]
        ),
        lookup="beneficiary__community_id",
        filters=filters,
    )
    add(
        ledger.values("beneficiary__community_id", "currency").annotate(value=Sum("amount")).order_by(),
        "commissions_payable",
        "beneficiary__community_id",
    )
    discounted = _scoped(
        Order.objects.filter(paid_at__gte=start, paid_at__lt=end, discount_total__gt=0),
        lookup="community_id",
        filters=filters,
    )
    add(
        discounted.values("community_id", "currency").annotate(value=Sum("discount_total")).order_by(),
        "discounts",
        "community_id",
    )
    entry = _scoped(
        Order.objects.filter(kind=Order.Kind.ENTRY, paid_at__gte=start, paid_at__lt=end),
        lookup="community_id",
        filters=filters,
    )
    windows = sorted(set(EntryPlan.objects.values_list("refund_window_days", flat=True)))
    inside = refund_window_open_q(now=now, windows=windows)
    net = F("amount_paid") - F("amount_refunded")
    for row in (
        entry.values("community_id", "currency")
        .annotate(inside=Sum(net, filter=inside), past=Sum(net, filter=~inside))
        .order_by()
    ):
        key = (row["community_id"], row["currency"])
        figures[key]["entry_in_window"] += row["inside"] or ZERO
        figures[key]["entry_drawable"] += row["past"] or ZERO
    return dict(figures)


def settlement_rows(filters: ReportFilters, *, now: datetime | None = None) -> Iterator[tuple]:
    figures = settlement_figures(filters=filters, now=now)
    names = {
        pk: (name, slug)
        for pk, name, slug in Community.objects.filter(pk__in={k[0] for k in figures}).values_list(
            "pk", "name", "slug"
        )
    }
    for community_id, currency in sorted(figures, key=lambda key: (names[key[0]][1], key[1])):
        values = figures[(community_id, currency)]
        name, slug = names[community_id]
        yield (
            name,
            slug,
            currency,
            values["gross"] + values["discounts"],
            values["discounts"],
            values["gross"],
            values["refunds"],
            values["gross"] - values["refunds"],
            values["commissions_payable"],
            values["entry_in_window"],
            values["entry_drawable"],
            None,
        )


def settlement_count(filters: ReportFilters) -> int:
    return len(settlement_figures(filters=filters))


SETTLEMENT = Report(
    "settlement",
    gettext_lazy("Settlement by community"),
    SETTLEMENT_COLUMNS,
    settlement_rows,
    settlement_count,
    notes=(
        gettext_lazy(
            "Entry fees are split by whether their refund window is still open at the time of export."
        ),
        gettext_lazy("Stripe fees are not recorded by the payment flow: the fee column is left blank."),
    ),
)

__all__ = ["SETTLEMENT", "settlement_figures", "settlement_rows"]
