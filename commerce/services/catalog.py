"""Listing goods and events in a community."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from commerce import errors
from commerce.events import product_changed, product_listed
from commerce.models import Category, Product, Sku
from members.models import Community, Tier
from members.services.users import normalise_tags
from shequn_backend.events import send_on_commit

MAX_TAGS = 20
MAX_SKUS = 20


@dataclass(frozen=True)
class SkuInput:
    name: str
    price: Decimal
    stock: int


def product_saved_announce(*, product: Product, created: bool, fields: list[str] = ()) -> None:
    """Announce a product saved outside ``product_create`` (the admin form), after commit."""
    ids = {"product_id": product.pk, "community_id": product.community_id}
    if created:
        send_on_commit(product_listed, sender=Product, **ids)
    else:
        send_on_commit(product_changed, sender=Product, fields=list(fields), **ids)


def category_get_by_path(*, path: str) -> Category:
    category = Category.objects.filter(path=path.strip().strip("/"), is_active=True).first()
    if category is None:
        raise errors.ApplicationError(
            code="validation_error",
            fields={"category": [_("Unknown category. Use a path such as 生鲜/水果.")]},
        )
    return category


@transaction.atomic
def product_create(
    *,
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
    is_active: bool = True,
) -> Product:
    """List a product with its SKUs. The caller checked that the actor manages ``community``.

    An event needs a start time; its capacity is the seats of its ticket SKUs.
    ``min_tier`` must name one of the community's tier levels.
    """
    fields: dict[str, list[str]] = {}
    if not skus or len(skus) > MAX_SKUS:
        fields["skus"] = [_("A product has 1 to %(n)d SKUs.") % {"n": MAX_SKUS}]
    if kind == Product.Kind.EVENT and starts_at is None:
        fields["starts_at"] = [_("An event needs a start time.")]
    if min_tier is not None and not Tier.objects.filter(community=community, level=min_tier).exists():
        fields["min_tier"] = [_("This community has no tier of this level.")]
    if fields:
        raise errors.ApplicationError(code="validation_error", fields=fields)
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
        starts_at=starts_at if kind == Product.Kind.EVENT else None,
        location=location,
        capacity=sum(sku.stock for sku in skus) if kind == Product.Kind.EVENT else None,
        is_active=is_active,
    )
    Sku.objects.bulk_create(
        [Sku(product=product, name=sku.name, price=sku.price, stock=sku.stock) for sku in skus]
    )
    send_on_commit(product_listed, sender=Product, product_id=product.pk, community_id=community.pk)
    return product
