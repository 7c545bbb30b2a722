"""Reads on commerce data, each named for whom it is scoped to, prefetched for its caller."""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet, prefetch_related_objects
from django.utils import timezone

from commerce.models import AfterSale, MemberCoupon, Order, OrderLine, Payment, Product, Shipment, Sku
from members.models import Community, Membership, User
from members.selectors import active_membership_sql, community_ids_managed_by
from shequn_backend.sql import prepared_cursor


def _with_fit(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """Join trust's assessment (a one-to-one declared by trust as ``fit``) when it is installed."""
    if any(relation.name == "fit" for relation in Product._meta.related_objects):
        return queryset.select_related("fit")
    return queryset


def _filter_catalog(queryset: QuerySet[Product], *, category: str | None, search: str | None):
    if category:
        path = category.strip().strip("/")
        queryset = queryset.filter(Q(category__path=path) | Q(category__path__startswith=f"{path}/"))
    if search:
        search = search.strip()
        queryset = queryset.filter(
            Q(title__icontains=search) | Q(description__icontains=search) | Q(tags__icontains=search)
        )
    return queryset


def product_list_for_member(
    *, membership: Membership, category: str | None = None, search: str | None = None
) -> QuerySet[Product]:
    """Products on sale in the membership's community that its tier may see, with active SKUs.

    The caller passes an *active* membership (``membership_get_active``).
    Owners and operators see tier-only goods too.
    """
    queryset = (
        Product.objects.filter(community_id=membership.community_id, is_active=True)
        .select_related("category")
        .prefetch_related(
            Prefetch("skus", queryset=Sku.objects.filter(is_active=True).order_by("price", "pk"))
        )
    )
    if not membership.is_manager:
        level = membership.tier.level if membership.tier_id else 0
        queryset = queryset.filter(Q(min_tier__isnull=True) | Q(min_tier__lte=level))
    return _filter_catalog(queryset, category=category, search=search)


def product_get_for_member(*, membership: Membership, product_id: int) -> Product:
    """One visible product; ``Product.DoesNotExist`` (a 404) if hidden from this member or absent."""
    return product_list_for_member(membership=membership).get(pk=product_id)


def product_list_for_manager(*, community: Community) -> QuerySet[Product]:
    """All products of a community for its owner console, with every SKU and the fit assessment."""
    queryset = (
        Product.objects.filter(community=community)
        .select_related("category")
        .prefetch_related(Prefetch("skus", queryset=Sku.objects.order_by("pk")))
    )
    return _with_fit(queryset)


# Payment columns the order body reads (``payment_summary``): not the provider's raw answers.
_PAYMENT_BODY_FIELDS = (
    "id", "order_id", "provider", "provider_ref", "reference", "status", "amount", "currency",
    "client_data", "sub_merchant",
)  # fmt: skip
# Most orders have no shipment and no after-sale: flagged in the order query, fetched only where set.
_ORDER_RELATIONS = {
    "shipments": ("has_shipments", lambda: Shipment.objects.order_by("pk").prefetch_related("lines")),
    "after_sales": ("has_after_sales", lambda: AfterSale.objects.order_by("pk").prefetch_related("lines")),
}


def _orders_prefetched(queryset: QuerySet[Order]) -> QuerySet[Order]:
    return (
        queryset.select_related("community", "coupon__coupon")
        .annotate(
            has_shipments=Exists(Shipment.objects.filter(order_id=OuterRef("pk"))),
            has_after_sales=Exists(AfterSale.objects.filter(order_id=OuterRef("pk"))),
        )
        .prefetch_related(
            "lines",
            Prefetch("payments", queryset=Payment.objects.only(*_PAYMENT_BODY_FIELDS).order_by("pk")),
        )
    )


def orders_prefetch_fulfilment(orders: list[Order]) -> list[Order]:
    """Shipments and after-sales (with lines) of ``orders``: one query each, for the orders having any.

    Orders from ``_orders_prefetched`` say whether they have any (``has_*``); the
    others get an empty result without a query. Orders of any other origin are
    fetched as they are. Already prefetched relations are kept.
    """
    for name, (flag, queryset) in _ORDER_RELATIONS.items():
        missing = [order for order in orders if name not in getattr(order, "_prefetched_objects_cache", {})]
        having = [order for order in missing if getattr(order, flag, True)]
        if having:
            prefetch_related_objects(having, Prefetch(name, queryset=queryset()))
        for order in missing:
            if not getattr(order, flag, True):
                _cache(order, name, [])
    return orders


def _cache(order: Order, name: str, rows: list) -> None:
    """``order.<name>.all()`` holds ``rows`` and runs no query, as after a prefetch."""
    model = order._meta.get_field(name).related_model
    order.__dict__.setdefault("_prefetched_objects_cache", {})[name] = _known(model.objects.none(), rows)


def _known(queryset: QuerySet, rows: list) -> QuerySet:
    """``queryset`` as a prefetch leaves it, holding ``rows``: ``.all()`` then runs no query."""
    queryset._result_cache, queryset._prefetch_done = list(rows), True
    return queryset


def order_as_placed(*, order: Order, lines: list[OrderLine], payment: Payment | None) -> Order:
    """A just placed order, ready for its body without a read: what ``order_get_for_buyer`` loads.

    ``order``, ``lines`` and ``payment`` are what the checkout wrote (their
    related community and coupon attached); a new order has no shipment and no
    after-sale yet.
    """
    order.has_shipments = order.has_after_sales = False
    _cache(order, "lines", sorted(lines, key=lambda line: line.pk))
    _cache(order, "payments", [payment] if payment is not None else [])
    _cache(order, "shipments", [])
    _cache(order, "after_sales", [])
    return order


def idempotency_key_used(*, buyer: User, key: str) -> Exists:
    """Whether ``buyer`` placed an order under the Idempotency-Key ``key``: an expression, to read
    along with another query (the checkout reads it with the buyer's membership)."""
    return Exists(Order.objects.filter(buyer=buyer, idempotency_key=key))


def order_list_for_buyer(*, buyer: User) -> QuerySet[Order]:
    """The caller's own orders, newest first, lines and payments prefetched."""
    return _orders_prefetched(Order.objects.filter(buyer=buyer))


def order_get_for_buyer(*, buyer: User, order_id: int) -> Order:
    """``Order.DoesNotExist`` (a 404) unless the order is the caller's."""
    return order_list_for_buyer(buyer=buyer).get(pk=order_id)


def order_list_for_manager(*, user: User) -> QuerySet[Order]:
    """Orders of the communities ``user`` owns or operates; superusers see all."""
    queryset = Order.objects.all()
    if not user.is_superuser:
        queryset = queryset.filter(community_id__in=community_ids_managed_by(user=user))
    return _orders_prefetched(queryset)


def order_get_for_manager(*, user: User, order_id: int) -> Order:
    """``Order.DoesNotExist`` (a 404) unless ``user`` manages the order's community."""
    return order_list_for_manager(user=user).get(pk=order_id)


def after_sale_list_for_buyer(*, buyer: User, order_id: int) -> QuerySet[AfterSale]:
    """The after-sale requests of the caller's order ``order_id`` (none for another member's order)."""
    return (
        AfterSale.objects.filter(order_id=order_id, order__buyer=buyer)
        .prefetch_related("lines")
        .order_by("pk")
    )


def after_sale_list_for_manager(*, user: User) -> QuerySet[AfterSale]:
    """After-sale requests of the communities ``user`` owns or operates; superusers see all."""
    queryset = AfterSale.objects.select_related("order", "order__community", "requested_by")
    if not user.is_superuser:
        queryset = queryset.filter(order__community_id__in=community_ids_managed_by(user=user))
    return queryset.prefetch_related("lines")


def order_payment(order: Order) -> Payment | None:
    """The payment the customer is asked to complete: the online one if any (uses the prefetch)."""
    payments = [payment for payment in order.payments.all() if payment.provider != "free"]
    return payments[-1] if payments else None


@dataclass(frozen=True)
class RefundPreview:
    """What a refund of ``order`` would move: at most ``refundable``, to ``buyer`` through ``provider``."""

    order: Order
    refundable: Decimal
    provider: str  # the provider's name (``commerce.payments.labels.provider_label`` shows it)


def order_refund_preview(*, order: Order) -> RefundPreview:
    """The refundable remainder and the provider of the payment a refund would go back through."""
    from commerce.services.refunds import order_refundable_amount

    payment = order.payments.filter(status=Payment.Status.SUCCEEDED).exclude(provider="free").first()
    refundable = order_refundable_amount(order=order) if payment is not None else Decimal("0.00")
    return RefundPreview(order=order, refundable=refundable, provider=payment.provider if payment else "")


# --- Commissions, reminders, repurchase rates (issue 7) ------------------------------------------


def commission_totals_by_membership(*, membership_ids: list[int]) -> dict[int, dict[str, str]]:
    """Pending, settled and reversed commission totals per beneficiary membership, as money strings.

    ``pending`` and ``settled`` are what is still kept (amount less reversals);
    ``reversed`` is what refunds took back, whatever the status; ``currency`` is the commissions'
    (CNY when there are none). One query.
    """
    from django.db.models import DecimalField, F, Max, Sum, Value
    from django.db.models.functions import Coalesce

    from commerce.models import Commission
    from commerce.models.catalog import CURRENCY_CNY
    from commerce.pricing import money

    zero = Value(0, output_field=DecimalField(max_digits=12, decimal_places=2))
    kept = F("amount") - F("amount_reversed")
    rows = (
        Commission.objects.filter(beneficiary_id__in=membership_ids)
        .values("beneficiary_id")
        .annotate(
            currency=Max("currency"),
            pending=Coalesce(Sum(kept, filter=Q(status=Commission.Status.PENDING)), zero),
            settled=Coalesce(Sum(kept, filter=Q(status=Commission.Status.SETTLED)), zero),
            reversed=Coalesce(Sum("amount_reversed"), zero),
        )
        .order_by()
    )
    zeros = {"pending": "0.00", "settled": "0.00", "reversed": "0.00", "currency": CURRENCY_CNY}
    totals = {pk: dict(zeros) for pk in membership_ids}
    for row in rows:
        totals[row["beneficiary_id"]] = {
            **{key: money(row[key]) for key in ("pending", "settled", "reversed")},
            "currency": row["currency"],
        }
    return totals


def reminder_list_for_user(*, user: User) -> QuerySet:
    """The caller's own reminders (repurchase and renewal), newest due first."""
    from commerce.models import Reminder

    return Reminder.objects.filter(membership__user=user).select_related(
        "community", "product", "coupon__coupon"
    )


def repurchase_rate_list(*, community_id: int | None = None) -> QuerySet:
    """Stored repurchase rates (per community, product, category) as the last job run computed them."""
    from commerce.models import RepurchaseRate

    queryset = RepurchaseRate.objects.all()
    if community_id is not None:
        queryset = queryset.filter(community_id=community_id)
    return queryset


def repurchase_rate_for_community(*, community_id: int):
    """The community-wide repurchase rate (a ``Decimal`` in 0..1), or None before the job first ran."""
    from commerce.models import RepurchaseRate

    return (
        RepurchaseRate.objects.filter(scope=RepurchaseRate.Scope.COMMUNITY, community_id=community_id)
        .values_list("rate", flat=True)
        .first()
    )


# --- Tickets (issue 16) --------------------------------------------------------------------------


def ticket_list_for_buyer(*, buyer: User) -> QuerySet:
    """The caller's own tickets, one per seat bought, newest first, with their event and community."""
    from commerce.models import Ticket

    return Ticket.objects.filter(buyer=buyer).select_related("product", "community")


def ticket_list_for_manager(*, user: User) -> QuerySet:
    """Tickets of the communities ``user`` owns or operates; superusers see all."""
    from commerce.models import Ticket

    queryset = Ticket.objects.select_related("product", "community", "buyer", "checked_in_by")
    if not user.is_superuser:
        queryset = queryset.filter(community_id__in=community_ids_managed_by(user=user))
    return queryset


def withdrawal_list_for_user(*, user: User) -> QuerySet:
    """The caller's own withdrawals, newest first."""
    from commerce.models import Withdrawal

    return Withdrawal.objects.filter(user=user).order_by("-created_at", "-pk")


@dataclass(frozen=True)
class DeliveryRow:
    kind: str
    label: str
    sent: int
    no_consent: int
    failed: int
    waiting: int


def notification_delivery_report(*, community: Community, since) -> list[DeliveryRow]:
    """Per kind, how the community's notifications queued since ``since`` fared: sent, no consent
    (none left, or the member refused), failed (dead letters and kinds that cannot be sent), waiting."""
    from django.db.models import Count

    from commerce.models import Notification

    S = Notification.Status
    counts = {
        row["kind"]: row
        for row in Notification.objects.filter(community=community, created_at__gte=since)
        .values("kind")
        .annotate(
            sent=Count("pk", filter=Q(status=S.SENT)),
            no_consent=Count("pk", filter=Q(status=S.NO_CONSENT)),
            failed=Count("pk", filter=Q(status__in=[S.FAILED, S.SKIPPED])),
            waiting=Count("pk", filter=Q(status=S.PENDING)),
        )
        .order_by()
    }
    return [
        DeliveryRow(
            kind=kind,
            label=str(label),
            **{
                name: counts.get(kind, {}).get(name, 0)
                for name in ("sent", "no_consent", "failed", "waiting")
            },
        )
        for kind, label in Notification.Kind.choices
    ]


def member_coupon_list_for_user(*, user: User, community_slug: str | None = None) -> QuerySet[MemberCoupon]:
    """The caller's own coupons in every community they belong to (or one), newest first."""
    queryset = MemberCoupon.objects.filter(membership__user=user).select_related(
        "coupon", "membership__community"
    )
    if community_slug:
        queryset = queryset.filter(membership__community__slug=community_slug)
    return queryset.order_by("-issued_at", "-pk")


def member_coupon_list_for_manager(*, user: User) -> QuerySet[MemberCoupon]:
    """Coupons held by members of the communities ``user`` owns or operates; superusers see all."""
    queryset = MemberCoupon.objects.select_related("coupon__community", "membership__user", "order")
    if not user.is_superuser:
        queryset = queryset.filter(coupon__community_id__in=community_ids_managed_by(user=user))
    return queryset


# --- Member list pages in one query each (issue 19) ---------------------------------------------

# The caller's active membership of a community (by slug), its tier's level and discount.
_MEMBERSHIP_CTE = f"""
    m AS (
        SELECT ms.community_id, ms.role IN ('owner', 'operator') AS manager,
               COALESCE(t.level, 0) AS level, t.discount_percent
        FROM members_membership ms
        JOIN members_community c ON c.id = ms.community_id
        LEFT JOIN members_tier t ON t.id = ms.tier_id
        WHERE ms.user_id = %s AND c.slug = %s AND {active_membership_sql("ms")}
        ORDER BY ms.id LIMIT 1
    )"""  # noqa: S608 - the rule's SQL, no input

# The page of products (visible to the membership, with the whole list's count) and their active SKUs
# as [id, name, price, currency, stock] (prices as text: "99.00"), cheapest first. ``{filters}``: the
# category and search conditions, compiled by the ORM against the same table names.
_PRODUCT_PAGE_SQL = f"""
    WITH {_MEMBERSHIP_CTE},
    page AS (
        SELECT commerce_product.id, commerce_product.title, commerce_category.path,
               commerce_product.kind, commerce_product.delivery_kind, commerce_product.min_tier,
               commerce_product.created_at, COUNT(*) OVER () AS total
        FROM m
        JOIN commerce_product ON commerce_product.community_id = m.community_id
        JOIN commerce_category ON commerce_category.id = commerce_product.category_id
        WHERE commerce_product.is_active
          AND (m.manager OR commerce_product.min_tier IS NULL OR commerce_product.min_tier <= m.level)
          {{filters}}
        ORDER BY commerce_product.created_at DESC, commerce_product.id DESC
        LIMIT %s OFFSET %s
    )
    SELECT m.discount_percent, page.total, page.id, page.title, page.path, page.kind,
           page.delivery_kind, page.min_tier,
           (SELECT json_agg(json_build_array(s.id, s.name, s.price::text, s.currency, s.stock)
                            ORDER BY s.price, s.id)
            FROM commerce_sku s WHERE s.product_id = page.id AND s.is_active) AS skus
    FROM m LEFT JOIN page ON true
    ORDER BY page.created_at DESC, page.id DESC"""  # noqa: S608 - no input in the text


@dataclass(frozen=True)
class ProductPage:
    """One page of ``product_list_for_member`` as rows: ``total`` is the whole list's count."""

    discount_percent: Decimal | None  # the membership's tier discount (None without a tier)
    total: int
    # (id, title, category path, kind, delivery_kind, min_tier, [[sku id, name, price, currency, stock]])
    rows: list[tuple]


def product_page_for_member(
    *, user: User, slug: str, category: str | None, search: str | None, limit: int, offset: int
) -> ProductPage | None:
    """A page of what ``product_list_for_member`` lists for ``user``'s active membership of ``slug``, in
    one query (membership and tier, products, count, SKUs); None when there is no such membership,
    or when the database is not PostgreSQL (the JSON functions): the caller lists as before."""
    if connection.vendor != "postgresql":
        return None

    filters, filter_params = "", []
    if category or search:
        queryset = _filter_catalog(Product.objects.all(), category=category, search=search)
        sql, filter_params = queryset.query.get_compiler(connection=connection).compile(queryset.query.where)
        filters = f"AND {sql}"
    with prepared_cursor() as cursor:
        cursor.execute(
            _PRODUCT_PAGE_SQL.format(filters=filters),
            [user.pk, slug, timezone.now(), *filter_params, limit, offset],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    discount = rows[0][0]
    if rows[0][2] is None:  # a member, no product on this page
        return ProductPage(discount_percent=discount, total=0, rows=[])
    return ProductPage(
        discount_percent=discount, total=rows[0][1], rows=[(*row[2:8], row[8] or []) for row in rows]
    )


# The buyer's page of orders as one JSON array (parsed once), each order an array: the whole list's
# count, the order's columns, community, coupon, lines, the payment shown (the last one not free),
# shipments (with lines), whether there are after-sales (fetched apart: they are rare). Money as
# text ("99.00"); times as JSON writes them (ISO 8601, in the session's UTC).
_ORDER_PAGE_SQL = """
    WITH page AS (
        SELECT o.id, o.status, o.payment_status, o.fulfilment_status, o.kind, o.total,
               o.discount_total, o.currency, o.amount_paid, o.amount_refunded,
               o.created_at, o.hold_expires_at, o.paid_at, o.delivery, o.address,
               o.community_id, o.coupon_id, COUNT(*) OVER () AS n
        FROM commerce_order o
        WHERE o.buyer_id = %s
        ORDER BY o.created_at DESC, o.id DESC
        LIMIT %s OFFSET %s
    )
    SELECT json_agg(json_build_array(
           page.n, page.id, c.slug, page.status, page.payment_status, page.fulfilment_status,
           page.kind, page.total::text, page.discount_total::text, mc.id, cp.name, cp.kind, page.currency,
           page.amount_paid::text, page.amount_refunded::text,
           (SELECT json_agg(json_build_array(l.id, l.sku_id, l.title, l.quantity, l.unit_price::text,
                                             l.line_total::text, l.discount::text,
                                             (l.line_total - l.discount)::text) ORDER BY l.id)
            FROM commerce_orderline l WHERE l.order_id = page.id),
           (SELECT json_build_array(p.id, p.provider, p.provider_ref, p.reference, p.status,
                                    p.amount::text, p.currency, p.client_data, p.sub_merchant)
            FROM commerce_payment p WHERE p.order_id = page.id AND p.provider <> 'free'
            ORDER BY p.id DESC LIMIT 1),
           page.created_at, page.hold_expires_at, page.paid_at, page.delivery, page.address,
           (SELECT json_agg(json_build_array(
                       sh.id, sh.carrier, sh.tracking_no, sh.shipped_at, sh.confirmed_at,
                       (SELECT json_agg(json_build_array(sl.line_id, sl.quantity) ORDER BY sl.id)
                        FROM commerce_shipmentline sl WHERE sl.shipment_id = sh.id)) ORDER BY sh.id)
            FROM commerce_shipment sh WHERE sh.order_id = page.id),
           EXISTS (SELECT 1 FROM commerce_aftersale a WHERE a.order_id = page.id)
        ) ORDER BY page.created_at DESC, page.id DESC)::text
    FROM page
    JOIN members_community c ON c.id = page.community_id
    LEFT JOIN commerce_membercoupon mc ON mc.id = page.coupon_id
    LEFT JOIN commerce_coupon cp ON cp.id = mc.coupon_id"""


def order_page_for_buyer(*, buyer: User, limit: int, offset: int) -> tuple[int, list[list]] | None:
    """A page of ``order_list_for_buyer`` in one query: (the whole list's count, the orders as
    ``_ORDER_PAGE_SQL`` builds them, the count first); the count is 0 when the page is empty.
    None when the database is not PostgreSQL (the JSON functions): the caller lists as before."""

    if connection.vendor != "postgresql":
        return None
    with prepared_cursor() as cursor:
        cursor.execute(_ORDER_PAGE_SQL, [buyer.pk, limit, offset])
        text = cursor.fetchone()[0]
    rows = json.loads(text) if text else []
    return (rows[0][0] if rows else 0), rows


def after_sales_by_order(order_ids: list[int]) -> dict[int, list[AfterSale]]:
    """The after-sales (with lines) of ``order_ids``, oldest first, by order: two queries, none if no id."""
    found: dict[int, list[AfterSale]] = {}
    if order_ids:
        for after_sale in (
            AfterSale.objects.filter(order_id__in=order_ids).order_by("pk").prefetch_related("lines")
        ):
            found.setdefault(after_sale.order_id, []).append(after_sale)
    return found
