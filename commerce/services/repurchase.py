"""Repurchase (复购): reminders when a member's goods are due again, and repurchase rates.

The next due date of a (member, product) pair is the last purchase plus the
product's declared consumption cycle, or else the median interval between
the member's own purchases of it (two purchases or more). A reminder is
created once per due date (the cycle's key), within a window around today.
"""

import itertools
import statistics
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Order, OrderLine, Reminder, RepurchaseRate
from commerce.services.reminders import reminders_write
from members.models import Membership
from members.selectors import active_membership_q, active_membership_sql
from shequn_backend.audit import job_actor
from shequn_backend.calendar import business_day, business_zone

DAY_SECONDS = 86400


def repurchase_due_at(*, purchases: list[datetime], cycle_days: int | None) -> datetime | None:
    """When the last purchase runs out: declared cycle, else the median observed interval."""
    if not purchases:
        return None
    last = purchases[-1]
    if cycle_days:
        return last + timedelta(days=cycle_days)
    if len(purchases) < 2:
        return None
    intervals = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(purchases)]
    median_days = max(1, round(statistics.median(intervals) / DAY_SECONDS))
    return last + timedelta(days=median_days)


def _purchase_stream(*, since: datetime):
    """(buyer, community, product, paid_at, cycle, title) of paid goods lines, by buyer and product."""
    return (
        OrderLine.objects.filter(
            order__status__in=Order.PAID_STATUSES,
            order__kind=Order.Kind.GOODS,
            order__paid_at__gte=since,
            product__isnull=False,
        )
        .order_by("order__buyer_id", "product_id", "order__paid_at")
        .values_list(
            "order__buyer_id",
            "order__community_id",
            "product_id",
            "order__paid_at",
            "product__repurchase_cycle_days",
            "product__title",
        )
        .iterator(chunk_size=5000)
    )


def _pairs(rows):
    """Group the sorted stream into one (buyer, community, product, purchases, cycle, title) per pair."""
    key, current = None, None
    for buyer_id, community_id, product_id, paid_at, cycle, title in rows:
        if (buyer_id, product_id) != key:
            if current is not None:
                yield current
            key = (buyer_id, product_id)
            current = (buyer_id, community_id, product_id, [], cycle, title)
        if not current[3] or current[3][-1] != paid_at:
            current[3].append(paid_at)
    if current is not None:
        yield current


def _reminder(
    membership_id: int, community_id: int, product_id: int, due_at: datetime, title: str
) -> Reminder:
    return Reminder(
        membership_id=membership_id,
        community_id=community_id,
        kind=Reminder.Kind.REPURCHASE,
        product_id=product_id,
        due_on=business_day(due_at),
        due_at=due_at,
        message=_("Time to buy %(title)s again.") % {"title": title},
    )


def _flush(candidates: list[tuple], *, now: datetime) -> int:
    """Write reminders for the candidates whose buyer is still an active member."""
    if not candidates:
        return 0
    active = Membership.objects.filter(active_membership_q(), user_id__in={c[0] for c in candidates})
    memberships = {
        (user_id, community_id): pk
        for pk, user_id, community_id in active.values_list("pk", "user_id", "community_id")
    }
    reminders = []
    for buyer_id, community_id, product_id, due_at, title in candidates:
        membership_id = memberships.get((buyer_id, community_id))
        if membership_id is None:
            continue
        reminders.append(_reminder(membership_id, community_id, product_id, due_at, title))
    return reminders_write(reminders=reminders, now=now, actor=job_actor("repurchase_reminders"))


# The due pairs, computed by PostgreSQL in one set-based pass (hash joins and one sort, no row-by-row
# nested loop, nothing per purchase in Python). Per (buyer, product): the gaps between purchase times (a
# repeated time, two lines of one order, is a zero gap and left out: the distinct times), their median
# (``percentile_cont``, as ``statistics.median``), the due time (the declared cycle, else the median
# rounded half-to-even to whole days, at least one: ``round(float8)`` as Python's ``round``); kept when its
# business day is in the window and the buyer is still an active member. ``due`` is MATERIALIZED: the
# window's few thousand due pairs are then joined to their memberships, where the inlined query joined
# all 660k pairs to memberships first (estimated at 500) and looked each one's product up by index:
# 4.7 s against 7.8 s on a year of 1M lines.
_DUE_SQL = f"""
WITH gaps AS (
    SELECT o.buyer_id, o.community_id, l.product_id, o.paid_at,
           EXTRACT(EPOCH FROM o.paid_at - LAG(o.paid_at) OVER (
               PARTITION BY o.buyer_id, l.product_id ORDER BY o.paid_at))::float8 AS gap
    FROM commerce_orderline l JOIN commerce_order o ON o.id = l.order_id
    WHERE o.status = ANY(%(statuses)s) AND o.kind = 'goods' AND o.paid_at >= %(since)s
      AND l.product_id IS NOT NULL
), pairs AS (
    SELECT buyer_id, product_id, MIN(community_id) AS community_id, MAX(paid_at) AS last_paid,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY NULLIF(gap, 0)) AS median_gap
    FROM gaps GROUP BY buyer_id, product_id
), due AS MATERIALIZED (
    SELECT pairs.buyer_id, pairs.community_id, pairs.product_id, p.title,
           pairs.last_paid + make_interval(secs => 86400 * CASE
               WHEN p.repurchase_cycle_days > 0 THEN p.repurchase_cycle_days
               ELSE GREATEST(1, round(pairs.median_gap / 86400)) END) AS due_at
    FROM pairs JOIN commerce_product p ON p.id = pairs.product_id
    WHERE p.repurchase_cycle_days > 0 OR pairs.median_gap IS NOT NULL
)
SELECT m.id, due.community_id, due.product_id, due.due_at, due.title
FROM due JOIN members_membership m ON m.user_id = due.buyer_id AND m.community_id = due.community_id
WHERE (due.due_at AT TIME ZONE %(zone)s)::date BETWEEN %(first_day)s AND %(last_day)s
  AND {active_membership_sql("m", now="%(active_at)s")}
ORDER BY due.buyer_id, due.product_id
"""  # noqa: S608 - the rule's SQL, no input


def _due_rows_postgresql(*, since: datetime, first_day, last_day) -> list[tuple]:
    """(membership, community, product, due_at, title) of the due pairs of active members."""
    params = {
        "statuses": list(Order.PAID_STATUSES),
        "since": since,
        "zone": business_zone().key,
        "first_day": first_day,
        "last_day": last_day,
        "active_at": timezone.now(),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '128MB'")  # the sorts stay in memory at a million lines
        cursor.execute(_DUE_SQL, params)
        return cursor.fetchall()


def _write_due(rows: list[tuple], *, now: datetime, flush_size: int) -> int:
    created = 0
    for start in range(0, len(rows), flush_size):
        reminders = [_reminder(*row) for row in rows[start : start + flush_size]]
        created += reminders_write(reminders=reminders, now=now, actor=job_actor("repurchase_reminders"))
    return created


def repurchase_reminders_create(*, now: datetime, flush_size: int = 5000) -> int:
    """Create the repurchase reminders due by ``now`` (plus the lead days); returns how many were new.

    On PostgreSQL one set-based query finds the due pairs (``_DUE_SQL``);
    elsewhere the paid goods lines of the look-back window stream once, in
    constant memory. Writes in chunks. Idempotent and safe on two workers:
    the unique (membership, product, due date) constraint drops repeats.
    """
    today = business_day(now)
    first_day = today - timedelta(days=settings.REPURCHASE_STALE_DAYS)
    last_day = today + timedelta(days=settings.REPURCHASE_LEAD_DAYS)
    since = now - timedelta(days=settings.REPURCHASE_LOOKBACK_DAYS)
    if connection.vendor == "postgresql":
        rows = _due_rows_postgresql(since=since, first_day=first_day, last_day=last_day)
        return _write_due(rows, now=now, flush_size=flush_size)
    created = 0
    candidates: list[tuple] = []
    for buyer_id, community_id, product_id, purchases, cycle, title in _pairs(_purchase_stream(since=since)):
        due_at = repurchase_due_at(purchases=purchases, cycle_days=cycle)
        if due_at is None or not first_day <= business_day(due_at) <= last_day:
            continue
        candidates.append((buyer_id, community_id, product_id, due_at, title))
        if len(candidates) >= flush_size:
            created += _flush(candidates, now=now)
            candidates = []
    return created + _flush(candidates, now=now)


_RATES_SQL = """
SELECT community_id, {outer} AS scope_id, COUNT(*) AS buyers,
       SUM(CASE WHEN purchases >= 2 THEN 1 ELSE 0 END) AS repeat_buyers
FROM (
    SELECT o.community_id, {inner} AS scope_id_inner, o.buyer_id, COUNT(DISTINCT o.id) AS purchases
    FROM commerce_order o {join}
    WHERE o.kind = 'goods' AND o.paid_at >= %s AND o.status IN ({statuses})
    GROUP BY o.community_id, {inner}, o.buyer_id
) per_buyer
GROUP BY community_id, {outer}
"""

# scope -> (inner grouping expression, outer expression, join)
_SCOPES = {
    RepurchaseRate.Scope.COMMUNITY: ("o.community_id", "community_id", ""),
    RepurchaseRate.Scope.PRODUCT: (
        "l.product_id",
        "scope_id_inner",
        "JOIN commerce_orderline l ON l.order_id = o.id AND l.product_id IS NOT NULL",
    ),
    RepurchaseRate.Scope.CATEGORY: (
        "p.category_id",
        "scope_id_inner",
        "JOIN commerce_orderline l ON l.order_id = o.id JOIN commerce_product p ON p.id = l.product_id",
    ),
}


def _advisory_lock(name: str) -> None:
    """Serialize a job's transaction across workers on PostgreSQL (SQLite serializes writers anyway)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])


def repurchase_rates_refresh(*, now: datetime) -> int:
    """Recompute the share of repeat buyers per community, product and category; returns the rows.

    A buyer counts as repeat in a scope after two or more paid goods orders
    in it within the look-back window. Set-based (three GROUP BY queries),
    replaced in one transaction under a lock, so readers see old or new rates,
    never a mix, and two workers do not collide.
    """
    since = now - timedelta(days=settings.REPURCHASE_LOOKBACK_DAYS)
    statuses = ", ".join(f"'{status}'" for status in Order.PAID_STATUSES)
    rows = []
    with transaction.atomic():
        _advisory_lock("commerce.repurchase_rates")
        with connection.cursor() as cursor:
            for scope, (inner, outer, join) in _SCOPES.items():
                sql = _RATES_SQL.format(inner=inner, outer=outer, join=join, statuses=statuses)
                cursor.execute(sql, [since])
                for community_id, scope_id, buyers, repeat_buyers in cursor.fetchall():
                    rows.append(
                        RepurchaseRate(
                            scope=scope,
                            community_id=community_id,
                            product_id=scope_id if scope == RepurchaseRate.Scope.PRODUCT else None,
                            category_id=scope_id if scope == RepurchaseRate.Scope.CATEGORY else None,
                            buyers=buyers,
                            repeat_buyers=repeat_buyers or 0,
                            rate=(Decimal(repeat_buyers or 0) / Decimal(buyers)).quantize(Decimal("0.0001"))
                            if buyers
                            else Decimal(0),
                            computed_at=now,
                        )
                    )
        RepurchaseRate.objects.all().delete()
        RepurchaseRate.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
