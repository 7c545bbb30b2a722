"""Stock moves. The order path's callers hold the transaction (and, when releasing, the order's row lock).

Rows are always locked or updated in one fixed order, by SKU primary key, so
that two orders over the same SKUs queue behind each other instead of
deadlocking. Counters move with ``F()`` so no update is lost. ``stock`` is
what is free to sell: unpaid orders already took what they hold.

Owners change stock only by deltas (``sku_stock_adjust``, ``sku_stock_count``),
computed and applied under the SKU's row lock, never by writing back a
figure a form read earlier.
"""

from functools import cache

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils.translation import gettext as _

from commerce.errors import ApplicationError, NotFound, OutOfStock
from commerce.models import Order, OrderLine, Product, Sku
from shequn_backend.audit import Actor, audit_record
from shequn_backend.sql import joined_columns, joined_instances, prepared_cursor

MAX_STOCK = 1_000_000


def skus_lock(*, sku_ids) -> dict[int, Sku]:
    """Lock the SKU rows (not their products) in primary-key order; returns them by id."""
    queryset = (
        Sku.objects.select_for_update(of=("self",))
        .select_related("product")
        .filter(pk__in=sorted(set(sku_ids)))
        .order_by("pk")
    )
    return {sku.pk: sku for sku in queryset}


def stock_take(*, skus: dict[int, Sku], quantities: dict[int, int]) -> None:
    """Take ``quantities`` from locked ``skus``; OutOfStock if any is short (nothing is taken then)."""
    for sku_id in sorted(quantities):
        if skus[sku_id].stock < quantities[sku_id]:
            raise OutOfStock()
    for sku_id in sorted(quantities):
        Sku.objects.filter(pk=sku_id).update(stock=F("stock") - quantities[sku_id])
        skus[sku_id].stock -= quantities[sku_id]


_SKU_AND_PRODUCT = (("s", Sku), ("p", Product))


@cache
def _skus_read_query(count: int) -> str:
    """The read of ``count`` SKUs by id, ``IN`` one parameter each: PostgreSQL keeps the generic
    plan of such a prepared statement, where it replanned ``= ANY(array)`` on every call."""
    ids = ", ".join(["%s"] * count)
    return (
        f"SELECT {joined_columns(_SKU_AND_PRODUCT)} FROM {Sku._meta.db_table} s"  # noqa: S608 - names from the models
        f" JOIN {Product._meta.db_table} p ON p.id = s.product_id WHERE s.id IN ({ids})"
    )


def skus_read(*, sku_ids) -> dict[int, Sku]:
    """The SKU rows with their products, unlocked (checkout takes its stock last: ``stock_take_last``).

    On PostgreSQL the SQL is built once per process and number of SKUs (every checkout and
    refused racer reads it).
    """
    ids = sorted(set(sku_ids))
    if not ids:
        return {}
    if connection.vendor != "postgresql":
        return {sku.pk: sku for sku in Sku.objects.select_related("product").filter(pk__in=ids).order_by()}
    with prepared_cursor() as cursor:
        cursor.execute(_skus_read_query(len(ids)), ids)
        rows = cursor.fetchall()
    skus = {}
    for row in rows:
        sku, product = joined_instances(row, _SKU_AND_PRODUCT)
        Sku.product.field.set_cached_value(sku, product)
        skus[sku.pk] = sku
    return skus


def stock_take_last(*, quantities: dict[int, int]) -> None:
    """Take ``quantities`` with one conditional UPDATE per SKU (``stock >= quantity``), in id order.

    Meant as the last write of the caller's transaction: the row lock it takes
    is then held only until the commit, so buyers racing for one SKU queue
    for a commit, not for a whole checkout. OutOfStock when a SKU is short; the
    caller's transaction then rolls back whatever it wrote (earlier SKUs too).
    """
    for sku_id in sorted(quantities):
        taken = Sku.objects.filter(pk=sku_id, stock__gte=quantities[sku_id]).update(
            stock=F("stock") - quantities[sku_id]
        )
        if not taken:
            raise OutOfStock()


_TAKE = "UPDATE commerce_sku SET stock = stock - %s WHERE id = %s"


def stock_take_in_one_message(*, quantities: dict[int, int], writes: str) -> None:
    """Send ``writes`` (an order's INSERTs, ``insert_sql``) and take the stock last, in one message.

    PostgreSQL runs the statements of one message as one transaction: all of them
    commit, or none. Each UPDATE takes its units unconditionally and the
    database's ``stock >= 0`` constraint refuses a short SKU, so the SKU's row
    lock lasts as long as the server's commit, never as long as a Python thread
    takes to be scheduled again (under load, seconds of queueing for every
    buyer of a hot SKU). OutOfStock when short (nothing is written); an
    IntegrityError of the writes is raised as is. Only on PostgreSQL, outside
    any transaction.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        raise RuntimeError("stock_take_in_one_message runs on PostgreSQL outside any transaction.")
    try:
        with connection.cursor() as cursor:
            takes = [cursor.mogrify(_TAKE, [quantities[sku_id], sku_id]) for sku_id in sorted(quantities)]
            cursor.execute("; ".join([writes, *takes] if writes else takes))  # bound: no parameters
    except IntegrityError as exc:
        if "sku_stock_gte_0" in str(exc):
            raise OutOfStock() from exc
        raise


def stock_release(*, order: Order, released_targets: dict[int, int] | None = None) -> int:
    """Give units of ``order``'s lines back, up to ``released_targets[line_id]`` (default: all of them).

    Idempotent: each line remembers how much it released and never releases
    more than it took. Returns the number of units given back.
    """
    lines = list(OrderLine.objects.filter(order=order, sku__isnull=False).order_by("sku_id", "pk"))
    given_back = 0
    for line in lines:
        target = line.quantity if released_targets is None else released_targets.get(line.pk, 0)
        target = min(line.quantity, max(target, line.quantity_released))
        delta = target - line.quantity_released
        if delta <= 0:
            continue
        Sku.objects.filter(pk=line.sku_id).update(stock=F("stock") + delta)
        OrderLine.objects.filter(pk=line.pk).update(quantity_released=target)
        given_back += delta
    return given_back


def stock_take_back(*, order: Order) -> bool:
    """Reserve again what a cancelled order released (it was paid late); False if stock ran out."""
    lines = [
        line
        for line in OrderLine.objects.filter(order=order, sku__isnull=False).order_by("pk")
        if line.quantity_released
    ]
    if not lines:
        return True
    quantities: dict[int, int] = {}
    for line in lines:
        quantities[line.sku_id] = quantities.get(line.sku_id, 0) + line.quantity_released
    skus = skus_lock(sku_ids=quantities)
    try:
        stock_take(skus=skus, quantities=quantities)
    except OutOfStock:
        return False
    OrderLine.objects.filter(pk__in=[line.pk for line in lines]).update(quantity_released=0)
    return True


def sku_units_held(*, sku_id: int) -> int:
    """Units of ``sku_id`` that unpaid orders hold (already taken out of its stock)."""
    held = (
        OrderLine.objects.filter(sku_id=sku_id, order__status=Order.Status.PENDING_PAYMENT)
        .aggregate(units=Sum(F("quantity") - F("quantity_released")))
        .get("units")
    )
    return held or 0


def _sku_lock(sku_id: int) -> Sku:
    sku = Sku.objects.select_for_update(of=("self",)).select_related("product").filter(pk=sku_id).first()
    if sku is None:
        raise NotFound()
    return sku


def _stock_apply(*, sku: Sku, delta: int, reason: str, actor: Actor, field: str) -> Sku:
    """Move the locked ``sku``'s stock by ``delta``; never below zero (unpaid holds are already out of it)."""
    before = sku.stock
    after = before + delta
    if after < 0:
        message = _(
            "This would leave %(after)d in stock: only %(stock)d are free to sell "
            "(%(held)d more are held by unpaid orders)."
        ) % {"after": after, "stock": before, "held": sku_units_held(sku_id=sku.pk)}
        raise ApplicationError(code="validation_error", fields={field: [message]})
    if after > MAX_STOCK:
        message = _("At most %(max)d units can be in stock.") % {"max": MAX_STOCK}
        raise ApplicationError(code="validation_error", fields={field: [message]})
    Sku.objects.filter(pk=sku.pk).update(stock=F("stock") + delta)
    sku.stock = after
    audit_record(
        actor=actor,
        action="sku.stock_adjusted",
        target=sku,
        community_id=sku.product.community_id,
        changes={"stock": [before, after], "delta": delta},
        note=reason,
    )
    return sku


def _reason_checked(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(code="validation_error", fields={"reason": [_("Say why the stock changes.")]})
    return reason


def sku_stock_adjust(*, sku_id: int, delta: int, reason: str, actor: Actor) -> Sku:
    """Receive (+n) or write off (-n) units of a SKU. Refused if the stock would go below zero."""
    reason = _reason_checked(reason)
    if delta == 0:
        raise ApplicationError(code="validation_error", fields={"delta": [_("Enter a change other than 0.")]})
    with transaction.atomic(durable=True):
        return _stock_apply(sku=_sku_lock(sku_id), delta=delta, reason=reason, actor=actor, field="delta")


def sku_stock_count(*, sku_id: int, counted: int, reason: str, actor: Actor) -> Sku:
    """Correct the stock to a counted figure of what is free to sell (units unpaid orders hold are not in it).

    The delta is ``counted`` minus the stock read under the row lock, so it is
    applied to the stock as it is now, not as some page showed it earlier.
    """
    reason = _reason_checked(reason)
    with transaction.atomic(durable=True):
        sku = _sku_lock(sku_id)
        return _stock_apply(sku=sku, delta=counted - sku.stock, reason=reason, actor=actor, field="counted")


def stock_put_back(*, quantities: dict[int, int], reason: str, actor: Actor) -> None:
    """Put returned goods back into stock: ``quantities`` by SKU id, locked in key order. Audited per SKU.

    The caller holds the transaction (and the order's row lock).
    """
    skus = skus_lock(sku_ids=quantities)
    for sku_id in sorted(skus):
        _stock_apply(sku=skus[sku_id], delta=quantities[sku_id], reason=reason, actor=actor, field="restock")
