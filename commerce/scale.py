"""Synthetic data at scale for benchmarks: ``seed_demo --scale --members N --orders N [--seed S]``.

Loads communities (with owners and referral rates), members in referral
chains, products with one SKU each, and paid goods orders with one or two
lines, a succeeded payment each, some full and partial refunds, and the
pending commissions their payment would have created. About 1% of the orders
(``UNPAID_SHARE``) were never paid: placed in the last two days, their stock
hold lapsed (``pending_payment``, ``hold_expires_at`` past), their lines still
holding their units (each SKU's stock is what they left) and their payment
still waiting for the buyer, as checkout leaves an abandoned order: work for
``release_stock_holds``. Distributions: buyers follow a heavy tail (a few buy
often), prices are log-normal, payment times spread over the past year, 8% of
memberships expire within +-60 days.

Seeded and repeatable (a second load with the same seed is refused rather
than doubled: usernames are keyed on the seed). PostgreSQL loads with
``COPY`` through psycopg; other databases fall back to ``bulk_create``.
Ids are assigned here and sequences moved past them afterwards.

Rows are written directly (services would take hours for a million orders),
but every figure a service would compute comes from the services' own
arithmetic: tier prices and minor units (``commerce.pricing``), commission
amounts and their reversal on refunds (``commerce.services.commissions``).
"""

import math
import random
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.utils import timezone

from commerce.models import Category, Commission, Order, OrderLine, Payment, Product, Refund, Sku
from commerce.models.orders import STATUS_SPLIT
from commerce.pricing import CENT, from_minor_units, tier_price
from commerce.services.commissions import ZERO, commission_amount, commission_reversed_target
from members.models import Community, Membership, User
from members.services.memberships import community_member_counts_refresh

RETURN_WINDOW_DAYS = 7  # every scale community's; commissions settle this long after payment
PRODUCTS_PER_COMMUNITY = 20
STOCK = 100000  # each SKU's units before any order took some
UNPAID_SHARE = 0.01  # orders never paid, their hold lapsed
HOLD_MINUTES = 30  # as ``ORDER_HOLD_MINUTES`` by default
LOADED = [User, Community, Membership, Product, Sku, Order, OrderLine, Payment, Refund, Commission]
STATUS_WEIGHTS = [
    ("completed", 70),
    ("fulfilled", 10),
    ("paid", 12),
    ("refunded", 5),
    ("partially_refunded", 3),
]


@dataclass
class ScaleReport:
    counts: dict[str, int] = field(default_factory=dict)


def _next_id(model) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {model._meta.db_table}")  # noqa: S608 - our table name
        return cursor.fetchone()[0] + 1


def _columns(model, names: list[str]) -> list[str]:
    return [model._meta.get_field(name).column for name in names]


def _load(model, names: list[str], rows: Iterable[tuple]) -> int:
    """Insert ``rows`` (tuples in the order of ``names``): COPY on PostgreSQL, bulk_create elsewhere."""
    count = 0
    if connection.vendor == "postgresql":
        columns = ", ".join(_columns(model, names))
        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
            with raw.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        return count
    batch = []
    for row in rows:
        batch.append(model(**dict(zip(names, row, strict=True))))
        if len(batch) >= 5000:
            model.objects.bulk_create(batch)
            count, batch = count + len(batch), []
    model.objects.bulk_create(batch)
    return count + len(batch)


def _reset_sequences(models) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 1)) FROM {table}"  # noqa: S608
            )


def _list_price(rng: random.Random) -> Decimal:
    """Log-normal around 55 yuan, at most 2000, to the fen."""
    return from_minor_units(round(100 * min(2000.0, math.exp(rng.gauss(4.0, 0.8)))))


def _referral_rates(community: int) -> dict[int, Decimal]:
    """Percent per level: every community pays level 1, every other one level 2 as well."""
    return {1: Decimal("10"), 2: Decimal("5") if community % 2 == 0 else Decimal("0")}


def _reversed(*, amount: Decimal, paid: Decimal, refunded: Decimal) -> Decimal:
    """What the order's refunds take back of a commission, as ``commission_reverse_for_order`` would."""
    if not refunded:
        return ZERO
    order = Order(amount_paid=paid, amount_refunded=refunded)
    return commission_reversed_target(commission=Commission(amount=amount), order=order)


def scale_load(
    *, members: int, orders: int, seed: int = 1, now: datetime | None = None, log=print
) -> ScaleReport:
    """Load the synthetic data set described above in one transaction; returns row counts."""
    now = now or timezone.now()
    rng = random.Random(seed)  # noqa: S311 - synthetic data, repeatable by design
    prefix = f"scale{seed}"
    if User.objects.filter(username=f"{prefix}-owner-0").exists():
        raise ValueError(f"Scale data for seed {seed} is already loaded; use another --seed.")
    report = ScaleReport()
    n_communities = max(1, members // 2000)
    products_per_community = PRODUCTS_PER_COMMUNITY
    categories = list(Category.objects.filter(parent__isnull=False).values_list("pk", flat=True))
    joined = now - timedelta(days=400)
    with transaction.atomic():
        # Users: one owner per community, then the members.
        user0 = _next_id(User)
        n_users = n_communities + members
        report.counts["users"] = _load(
            User,
            [
                "id",
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
                "nickname",
            ],
            (
                (
                    user0 + i,
                    "!",
                    False,
                    f"{prefix}-owner-{i}" if i < n_communities else f"{prefix}-m-{i}",
                    "",
                    "",
                    "",
                    False,
                    True,
                    joined,
                    f"会员{i}",
                )
                for i in range(n_users)
            ),
        )
        log(f"users: {report.counts['users']}")
        community0 = _next_id(Community)
        report.counts["communities"] = _load(
            Community,
            [
                "id",
                "slug",
                "name",
                "mission",
                "description",
                "rules",
                "owner_id",
                "entry_type",
                "referral_level1_percent",
                "referral_level2_percent",
                "return_window_days",
                "commission_on_entry_orders",
                "points_per_yuan",
                "created_at",
            ],
            (
                (
                    community0 + c,
                    f"{prefix}-c{c}",
                    f"规模社群{c}",
                    "",
                    "",
                    "",
                    user0 + c,
                    "free",
                    _referral_rates(c)[1],
                    _referral_rates(c)[2],
                    RETURN_WINDOW_DAYS,
                    False,
                    Decimal("1"),
                    joined,
                )
                for c in range(n_communities)
            ),
        )
        # Memberships: owners first, then members, each in one community; 60% referred by an earlier member.
        membership0 = _next_id(Membership)
        member_community = array("i", (rng.randrange(n_communities) for _ in range(members)))
        last_in = [-1] * n_communities  # the latest member index per community, for referral chains
        referred = array("i", [-1] * members)
        expiry_days = array("i", [0] * members)
        for i in range(members):
            c = member_community[i]
            if last_in[c] >= 0 and rng.random() < 0.6:
                # Usually the latest joiner (chains), sometimes someone further back (trees).
                referred[i] = (
                    last_in[c]
                    if rng.random() < 0.5
                    else rng.randrange(max(0, last_in[c] - 200), last_in[c] + 1)
                )
                while referred[i] >= 0 and member_community[referred[i]] != c:
                    referred[i] = -1
            last_in[c] = i
            if rng.random() < 0.08:
                expiry_days[i] = rng.randint(-60, 60) or 1

        def membership_rows() -> Iterator[tuple]:
            for c in range(n_communities):
                yield (
                    membership0 + c,
                    user0 + c,
                    community0 + c,
                    "owner",
                    "active",
                    0,
                    f"O{seed:03d}{c:07d}",
                    None,
                    joined,
                    None,
                    joined,
                )
            for i in range(members):
                ref = referred[i]
                expires = now + timedelta(days=expiry_days[i]) if expiry_days[i] else None
                yield (
                    membership0 + n_communities + i,
                    user0 + n_communities + i,
                    community0 + member_community[i],
                    "member",
                    "active",
                    0,
                    f"M{seed:03d}{i:08d}",
                    membership0 + n_communities + ref if ref >= 0 else None,
                    joined,
                    expires,
                    joined,
                )

        report.counts["memberships"] = _load(
            Membership,
            [
                "id",
                "user_id",
                "community_id",
                "role",
                "status",
                "points",
                "referral_code",
                "referred_by_id",
                "joined_at",
                "expires_at",
                "created_at",
            ],
            membership_rows(),
        )
        log(f"memberships: {report.counts['memberships']}")
        # Products with one SKU each; a third declare a repurchase cycle.
        product0, sku0 = _next_id(Product), _next_id(Sku)
        n_products = n_communities * products_per_community
        prices = [_list_price(rng) for _ in range(n_products)]
        unit_prices = [tier_price(list_price=price, tier=None) for price in prices]  # members have no tier
        cycles = [rng.choice([7, 14, 30, 60, 90]) if rng.random() < 0.33 else None for _ in range(n_products)]
        report.counts["products"] = _load(
            Product,
            [
                "id",
                "community_id",
                "title",
                "description",
                "category_id",
                "tags",
                "kind",
                "repurchase_cycle_days",
                "location",
                "is_active",
                "created_at",
                "updated_at",
            ],
            (
                (
                    product0 + p,
                    community0 + p // products_per_community,
                    f"商品{p}",
                    "",
                    rng.choice(categories),
                    "[]",
                    "goods",
                    cycles[p],
                    "",
                    True,
                    joined,
                    joined,
                )
                for p in range(n_products)
            ),
        )
        # Orders: heavy-tailed buyers, paid over the past year.
        order0, line0, payment0, refund0, commission0 = (
            _next_id(Order),
            _next_id(OrderLine),
            _next_id(Payment),
            _next_id(Refund),
            _next_id(Commission),
        )
        statuses, weights = zip(*STATUS_WEIGHTS, strict=True)
        buyer = array(
            "i",
            (
                min(members - 1, int(members * rng.paretovariate(1.2) - members) % members)
                for _ in range(orders)
            ),
        )
        paid_offset = array("i", (rng.randrange(365 * 86400) for _ in range(orders)))
        status_index = array("b", (rng.choices(range(len(statuses)), weights)[0] for _ in range(orders)))
        first_product = array("i", [0] * orders)
        second_product = array("i", [-1] * orders)
        quantity = array("b", [1] * orders)
        totals: list[Decimal] = [Decimal(0)] * orders
        # The unpaid orders, from a generator of their own (the paid orders stay those of earlier loads).
        unpaid_rng = random.Random(f"{seed}-unpaid")  # noqa: S311 - synthetic data, repeatable by design
        unpaid = bytearray(unpaid_rng.random() < UNPAID_SHARE for _ in range(orders))
        held = [0] * n_products  # units the unpaid orders' lines still hold, per SKU
        for o in range(orders):
            c = member_community[buyer[o]]
            base = c * products_per_community
            first_product[o] = base + min(products_per_community - 1, int(rng.expovariate(0.25)))
            quantity[o] = 1 if rng.random() < 0.8 else rng.randint(2, 4)
            total = unit_prices[first_product[o]] * quantity[o]
            if rng.random() < 0.15:
                second = base + rng.randrange(products_per_community)
                if second != first_product[o]:
                    second_product[o] = second
                    total += unit_prices[second]
            totals[o] = total
            if unpaid[o]:
                held[first_product[o]] += quantity[o]
                if second_product[o] >= 0:
                    held[second_product[o]] += 1
        _load(
            Sku,
            ["id", "product_id", "name", "price", "currency", "stock", "is_active"],
            (
                (sku0 + p, product0 + p, "标准", prices[p], "CNY", STOCK - held[p], True)
                for p in range(n_products)
            ),
        )

        def placed_at(o: int) -> datetime:
            """When an unpaid order was placed: within the last two days, its hold lapsed since."""
            return now - timedelta(minutes=HOLD_MINUTES + 1 + paid_offset[o] % (2 * 24 * 60))

        def refunded_amount(o: int) -> Decimal:
            if unpaid[o]:
                return Decimal(0)
            status = statuses[status_index[o]]
            if status == "refunded":
                return totals[o]
            if status == "partially_refunded":
                part = (totals[o] / 2).quantize(CENT, rounding=ROUND_HALF_UP)
                return part if Decimal(0) < part < totals[o] else Decimal(0)
            return Decimal(0)

        def order_rows() -> Iterator[tuple]:
            for o in range(orders):
                paid_at = now - timedelta(seconds=paid_offset[o])
                created = paid_at - timedelta(minutes=3)
                refunded = refunded_amount(o)
                status = statuses[status_index[o]]
                if status == "partially_refunded" and not refunded:
                    status = "completed"
                hold_expires_at = None
                if unpaid[o]:
                    status, created, paid_at = "pending_payment", placed_at(o), None
                    hold_expires_at = created + timedelta(minutes=HOLD_MINUTES)
                b = buyer[o]
                ref = referred[b]
                yield (
                    order0 + o,
                    community0 + member_community[b],
                    user0 + n_communities + b,
                    "goods",
                    status,
                    *STATUS_SPLIT[status],
                    "CNY",
                    totals[o],
                    Decimal(0) if unpaid[o] else totals[o],
                    refunded,
                    membership0 + n_communities + ref if ref >= 0 and o % 5 == 0 else None,
                    "",
                    "",
                    paid_at,
                    hold_expires_at,
                    "",
                    False,
                    "",
                    created,
                    paid_at or created,
                )

        report.counts["orders"] = _load(
            Order,
            [
                "id",
                "community_id",
                "buyer_id",
                "kind",
                "status",
                "payment_status",
                "fulfilment_status",
                "currency",
                "total",
                "amount_paid",
                "amount_refunded",
                "referrer_id",
                "idempotency_key",
                "request_fingerprint",
                "paid_at",
                "hold_expires_at",
                "cancel_reason",
                "needs_review",
                "review_reason",
                "created_at",
                "updated_at",
            ],
            order_rows(),
        )
        log(f"orders: {report.counts['orders']}")

        def line_rows() -> Iterator[tuple]:
            line_id = line0
            for o in range(orders):
                p = first_product[o]
                yield (
                    line_id,
                    order0 + o,
                    sku0 + p,
                    product0 + p,
                    f"商品{p}",
                    quantity[o],
                    prices[p],
                    unit_prices[p],
                    unit_prices[p] * quantity[o],
                    0,
                )
                line_id += 1
                if second_product[o] >= 0:
                    p = second_product[o]
                    yield (
                        line_id,
                        order0 + o,
                        sku0 + p,
                        product0 + p,
                        f"商品{p}",
                        1,
                        prices[p],
                        unit_prices[p],
                        unit_prices[p],
                        0,
                    )
                    line_id += 1

        report.counts["order_lines"] = _load(
            OrderLine,
            [
                "id",
                "order_id",
                "sku_id",
                "product_id",
                "title",
                "quantity",
                "list_price",
                "unit_price",
                "line_total",
                "quantity_released",
            ],
            line_rows(),
        )
        log(f"order lines: {report.counts['order_lines']}")
        report.counts["payments"] = _load(
            Payment,
            [
                "id",
                "order_id",
                "provider",
                "provider_ref",
                "status",
                "amount",
                "amount_received",
                "currency",
                "reference",
                "idempotency_key",
                "sub_merchant",
                "client_data",
                "failure_code",
                "failure_message",
                "raw",
                "succeeded_at",
                "created_at",
                "updated_at",
            ],
            (
                (
                    payment0 + o,
                    order0 + o,
                    "stripe",
                    f"pi_{prefix}_{o}",
                    "pending" if unpaid[o] else "succeeded",
                    totals[o],
                    Decimal(0) if unpaid[o] else totals[o],
                    "CNY",
                    f"P{prefix}x{o}",
                    uuid.uuid4(),
                    "",
                    "{}",
                    "",
                    "",
                    "{}",
                    None if unpaid[o] else now - timedelta(seconds=paid_offset[o]),
                    placed_at(o) if unpaid[o] else now - timedelta(seconds=paid_offset[o]),
                    placed_at(o) if unpaid[o] else now - timedelta(seconds=paid_offset[o]),
                )
                for o in range(orders)
            ),
        )

        def refund_rows() -> Iterator[tuple]:
            refund_id = refund0
            for o in range(orders):
                amount = refunded_amount(o)
                if amount > 0:
                    at = now - timedelta(seconds=paid_offset[o]) + timedelta(days=2)
                    yield (
                        refund_id,
                        order0 + o,
                        payment0 + o,
                        "stripe",
                        f"R{prefix}x{o}",
                        uuid.uuid4(),
                        f"re_{prefix}_{o}",
                        "succeeded",
                        "owner",
                        amount,
                        "CNY",
                        "质量问题",
                        "",
                        "",
                        "{}",
                        at,
                        at,
                        at,
                    )
                    refund_id += 1

        report.counts["refunds"] = _load(
            Refund,
            [
                "id",
                "order_id",
                "payment_id",
                "provider",
                "reference",
                "provider_key",
                "provider_ref",
                "status",
                "source",
                "amount",
                "currency",
                "reason",
                "idempotency_key",
                "failure_reason",
                "raw",
                "confirmed_at",
                "created_at",
                "updated_at",
            ],
            refund_rows(),
        )

        def commission_rows() -> Iterator[tuple]:
            commission_id = commission0
            for o in range(orders):
                b = buyer[o]
                level1 = referred[b]
                if level1 < 0 or unpaid[o]:  # commissions are created when the order is paid
                    continue
                c = member_community[b]
                paid_at = now - timedelta(seconds=paid_offset[o])
                rates = _referral_rates(c)
                chain = [(1, level1, rates[1])]
                if rates[2] > 0 and referred[level1] >= 0 and referred[level1] != b:
                    chain.append((2, referred[level1], rates[2]))
                refunded = refunded_amount(o)
                for level, who, rate in chain:
                    amount = commission_amount(base=totals[o], percent=rate)
                    if amount <= 0:
                        continue
                    reversed_amount = _reversed(amount=amount, paid=totals[o], refunded=refunded)
                    status = "reversed" if reversed_amount == amount else "pending"
                    yield (
                        commission_id,
                        order0 + o,
                        community0 + c,
                        membership0 + n_communities + who,
                        level,
                        status,
                        totals[o],
                        rate,
                        amount,
                        reversed_amount,
                        "CNY",
                        paid_at + timedelta(days=RETURN_WINDOW_DAYS),
                        paid_at if status == "reversed" else None,
                        paid_at,
                        paid_at,
                    )
                    commission_id += 1

        report.counts["commissions"] = _load(
            Commission,
            [
                "id",
                "order_id",
                "community_id",
                "beneficiary_id",
                "level",
                "status",
                "base_amount",
                "rate_percent",
                "amount",
                "amount_reversed",
                "currency",
                "settle_after",
                "reversed_at",
                "created_at",
                "updated_at",
            ],
            commission_rows(),
        )
        _reset_sequences(LOADED)
        community_member_counts_refresh()  # COPY bypasses the membership services that keep the counts
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return report
