"""Listing goods and events in a community, their SKUs, and the shared category tree.

Every write here takes the acting user (or a system actor), records an audit
row with before/after and announces product changes on commit. Stock moves
live in ``commerce.services.stock``.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from commerce import errors
from commerce.events import product_changed, product_listed
from commerce.models import Category, Product, Sku
from commerce.services.stock import MAX_STOCK
from members.models import Community, Tier
from members.services.users import normalise_tags
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_record_many, audit_snapshot
from shequn_backend.events import send_on_commit

MAX_TAGS = 20
MAX_SKUS = 20
MAX_PRICE = Decimal("9999999.99")

# What an owner may change on a listed product (the community is fixed once listed).
PRODUCT_FIELDS = (
    "title",
    "description",
    "category",
    "tags",
    "kind",
    "min_tier",
    "repurchase_cycle_days",
    "return_window_days",
    "starts_at",
    "location",
    "capacity",
    "is_active",
)
SKU_FIELDS = ("name", "price", "is_active")
CATEGORY_FIELDS = ("path", "name_zh", "name_en", "parent", "position", "is_active")


@dataclass(frozen=True)
class SkuInput:
    name: str
    price: Decimal
    stock: int
    is_active: bool = True


def category_get_by_path(*, path: str) -> Category:
    category = Category.objects.filter(path=path.strip().strip("/"), is_active=True).first()
    if category is None:
        raise errors.ApplicationError(
            code="validation_error",
            fields={"category": [_("Unknown category. Use a path such as 生鲜/水果.")]},
        )
    return category


def product_field_errors(
    *, community: Community, kind: str, starts_at: datetime | None, min_tier: int | None
) -> dict[str, list[str]]:
    """The product rules a form checks before it saves and the services check again under the lock."""
    fields: dict[str, list[str]] = {}
    if kind == Product.Kind.EVENT and starts_at is None:
        fields["starts_at"] = [_("An event needs a start time.")]
    if min_tier is not None and not Tier.objects.filter(community=community, level=min_tier).exists():
        fields["min_tier"] = [_("This community has no tier of this level.")]
    return fields


def sku_field_errors(*, name: str, price: Decimal, stock: int = 0) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if not (name or "").strip():
        fields["name"] = [_("Give the SKU a name.")]
    if price is None or not Decimal("0") <= price <= MAX_PRICE:
        fields["price"] = [_("Enter a price from 0 to %(max)s.") % {"max": MAX_PRICE}]
    if stock is None or not 0 <= stock <= MAX_STOCK:
        fields["stock"] = [_("Enter a stock from 0 to %(max)d.") % {"max": MAX_STOCK}]
    return fields


def _raise_if(fields: dict[str, list[str]]) -> None:
    if fields:
        raise errors.ApplicationError(code="validation_error", fields=fields)


def _skus_insert(*, product: Product, skus: list[SkuInput], actor: Actor) -> list[Sku]:
    for index, sku in enumerate(skus):
        problems = sku_field_errors(name=sku.name, price=sku.price, stock=sku.stock)
        _raise_if({f"skus[{index}].{name}": messages for name, messages in problems.items()})
    created = Sku.objects.bulk_create(
        [
            Sku(
                product=product,
                name=sku.name.strip(),
                price=sku.price,
                stock=sku.stock,
                is_active=sku.is_active,
            )
            for sku in skus
        ]
    )
    audit_record_many(
        actor=actor,
        action="sku.created",
        rows=[
            (sku, product.community_id, audit_diff({}, audit_snapshot(sku, (*SKU_FIELDS, "stock"))))
            for sku in created
        ],
    )
    return created


@transaction.atomic
def product_create(
    *,
    actor: Actor,
    community: Community,
    title: str,
    category: Category,
    kind: str,
    skus: list[SkuInput],
    description: str = "",
    tags: list[str] | None = None,
    min_tier: int | None = None,
    repurchase_cycle_days: int | None = None,
    return_window_days: int | None = None,
    starts_at: datetime | None = None,
    location: str = "",
    capacity: int | None = None,
    is_active: bool = True,
) -> Product:
    """List a product with its SKUs. The caller checked that the actor manages ``community``.

    An event needs a start time; its capacity defaults to the seats of its
    ticket SKUs. ``min_tier`` must name one of the community's tier levels.
    """
    fields = product_field_errors(community=community, kind=kind, starts_at=starts_at, min_tier=min_tier)
    if not skus or len(skus) > MAX_SKUS:
        fields["skus"] = [_("A product has 1 to %(n)d SKUs.") % {"n": MAX_SKUS}]
    _raise_if(fields)
    is_event = kind == Product.Kind.EVENT
    product = Product.objects.create(
        community=community,
        title=title,
        description=description,
        category=category,
        tags=normalise_tags(tags or [], limit=MAX_TAGS),
        kind=kind,
        min_tier=min_tier,
        repurchase_cycle_days=repurchase_cycle_days,
        return_window_days=return_window_days,
        starts_at=starts_at if is_event else None,
        location=location,
        capacity=(capacity if capacity is not None else sum(sku.stock for sku in skus)) if is_event else None,
        is_active=is_active,
    )
    audit_record(
        actor=actor,
        action="product.created",
        target=product,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(product, PRODUCT_FIELDS)),
    )
    _skus_insert(product=product, skus=skus, actor=actor)
    send_on_commit(product_listed, sender=Product, product_id=product.pk, community_id=community.pk)
    return product


def _only(changes: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise ValueError(f"Not changeable here: {sorted(unknown)}")


@transaction.atomic
def product_update(*, product_id: int, actor: Actor, changes: Mapping[str, Any]) -> Product:
    """Change a product's description and terms; only the fields named in ``changes`` are written.

    Announces ``product_changed`` with the changed field names on commit.
    """
    _only(changes, PRODUCT_FIELDS)
    product = Product.objects.select_for_update(of=("self",)).select_related("community").get(pk=product_id)
    before = audit_snapshot(product, PRODUCT_FIELDS)
    for name, value in changes.items():
        setattr(product, name, value)
    product.tags = normalise_tags(product.tags or [], limit=MAX_TAGS)
    if product.kind != Product.Kind.EVENT:
        product.starts_at = None
    _raise_if(
        product_field_errors(
            community=product.community,
            kind=product.kind,
            starts_at=product.starts_at,
            min_tier=product.min_tier,
        )
    )
    diff = audit_diff(before, audit_snapshot(product, PRODUCT_FIELDS))
    if not diff:
        return product
    product.save(update_fields=[*diff, "updated_at"])
    audit_record(
        actor=actor, action="product.updated", target=product, community_id=product.community_id, changes=diff
    )
    send_on_commit(
        product_changed,
        sender=Product,
        product_id=product.pk,
        community_id=product.community_id,
        fields=sorted(diff),
    )
    return product


@transaction.atomic
def sku_create(
    *, product_id: int, actor: Actor, name: str, price: Decimal, stock: int = 0, is_active: bool = True
) -> Sku:
    """Add a SKU to a listed product, with its initial stock (later moves go through the stock service)."""
    product = Product.objects.select_for_update(of=("self",)).get(pk=product_id)
    if product.skus.count() >= MAX_SKUS:
        _raise_if({"skus": [_("A product has 1 to %(n)d SKUs.") % {"n": MAX_SKUS}]})
    _raise_if(sku_field_errors(name=name, price=price, stock=stock))
    [sku] = _skus_insert(
        product=product,
        skus=[SkuInput(name=name, price=price, stock=stock, is_active=is_active)],
        actor=actor,
    )
    return sku


@transaction.atomic
def sku_update(*, sku_id: int, actor: Actor, changes: Mapping[str, Any]) -> Sku:
    """Rename a SKU, reprice it or take it off sale. A new price is audited as ``sku.price_changed``."""
    _only(changes, SKU_FIELDS)
    sku = Sku.objects.select_for_update(of=("self",)).select_related("product").get(pk=sku_id)
    before = audit_snapshot(sku, SKU_FIELDS)
    for name, value in changes.items():
        setattr(sku, name, value)
    sku.name = (sku.name or "").strip()
    _raise_if(sku_field_errors(name=sku.name, price=sku.price))
    diff = audit_diff(before, audit_snapshot(sku, SKU_FIELDS))
    if not diff:
        return sku
    sku.save(update_fields=list(diff))
    community_id = sku.product.community_id
    if "price" in diff:
        audit_record(
            actor=actor,
            action="sku.price_changed",
            target=sku,
            community_id=community_id,
            changes={"price": diff.pop("price"), "currency": sku.currency},
        )
    if diff:
        audit_record(actor=actor, action="sku.updated", target=sku, community_id=community_id, changes=diff)
    return sku


def category_field_errors(
    *, category_id: int | None, path: str, parent: Category | None
) -> dict[str, list[str]]:
    """A unique, non-empty path and a parent that is not the category itself or below it."""
    fields: dict[str, list[str]] = {}
    if not path:
        fields["path"] = [_("Enter a path such as 生鲜/水果.")]
    elif Category.objects.filter(path=path).exclude(pk=category_id).exists():
        fields["path"] = [_("Another category already has this path.")]
    ancestor, seen = parent, set()
    while ancestor is not None and ancestor.pk not in seen:
        if category_id is not None and ancestor.pk == category_id:
            fields["parent"] = [_("A category cannot be placed under itself or its own subcategory.")]
            break
        seen.add(ancestor.pk)
        ancestor = ancestor.parent
    return fields


def _category_check(category: Category) -> None:
    category.path = (category.path or "").strip().strip("/")
    _raise_if(category_field_errors(category_id=category.pk, path=category.path, parent=category.parent))


@transaction.atomic
def category_create(
    *,
    actor: Actor,
    path: str,
    name_zh: str,
    name_en: str,
    parent: Category | None = None,
    position: int = 0,
    is_active: bool = True,
) -> Category:
    """Add a node to the shared category tree (superusers only; the caller checked)."""
    category = Category(
        path=path, name_zh=name_zh, name_en=name_en, parent=parent, position=position, is_active=is_active
    )
    _category_check(category)
    category.save()
    audit_record(
        actor=actor,
        action="category.created",
        target=category,
        changes=audit_diff({}, audit_snapshot(category, CATEGORY_FIELDS)),
    )
    return category


@transaction.atomic
def category_update(*, category_id: int, actor: Actor, changes: Mapping[str, Any]) -> Category:
    """Rename, move or retire a category (retired ones are no longer offered for new listings)."""
    _only(changes, CATEGORY_FIELDS)
    category = Category.objects.select_for_update().get(pk=category_id)
    before = audit_snapshot(category, CATEGORY_FIELDS)
    for name, value in changes.items():
        setattr(category, name, value)
    _category_check(category)
    diff = audit_diff(before, audit_snapshot(category, CATEGORY_FIELDS))
    if diff:
        category.save(update_fields=list(diff))
        audit_record(actor=actor, action="category.updated", target=category, changes=diff)
    return category
