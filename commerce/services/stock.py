"""Stock moves. Callers hold the transaction (and, when releasing, the order's row lock).

Rows are always locked or updated in one fixed order, by SKU primary key, so
that two orders over the same SKUs queue behind each other instead of
deadlocking. Counters move with ``F()`` so no update is lost.
"""

from django.db.models import F

from commerce.errors import OutOfStock
from commerce.models import Order, OrderLine, Sku


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
