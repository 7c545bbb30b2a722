"""Reads for the scorer: a community's evidence, products to assess, assessments for owners."""

from collections import defaultdict
from collections.abc import Iterator

from django.db.models import Count, Q, QuerySet

from commerce.models import Order, OrderLine, Product
from members.models import Community, UserInterest
from members.selectors import active_membership_q
from trust.models import ContentPost, FitAssessment
from trust.scoring.engine import CommunityEvidence, ContentItem, ProductInput, SalesRecord

CONTENT_LIMIT = 200  # the most recent posts carry the evidence; older ones add little
REFUNDED_STATUSES = (Order.Status.PARTIALLY_REFUNDED, Order.Status.REFUNDED)


def member_interest_counts(*, community_id: int) -> dict[str, int]:
    """How many active members declare each interest."""
    rows = (
        UserInterest.objects.filter(
            active_membership_q("user__memberships__"), user__memberships__community_id=community_id
        )
        .values("tag")
        .annotate(n=Count("user", distinct=True))
    )
    return {row["tag"]: row["n"] for row in rows}


def sales_by_category(*, community_id: int) -> list[SalesRecord]:
    """Orders, buyers, repeat buyers and refunds per category path of paid goods and events."""
    rows = (
        OrderLine.objects.filter(order__community_id=community_id, order__status__in=Order.EVER_PAID_STATUSES)
        .exclude(product__isnull=True)
        .values("product__category__path", "order__buyer_id")
        .annotate(
            orders=Count("order", distinct=True),
            refunds=Count("order", distinct=True, filter=Q(order__status__in=REFUNDED_STATUSES)),
        )
        .order_by()
    )
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # orders, buyers, repeat, refunds
    for row in rows:
        total = totals[row["product__category__path"]]
        total[0] += row["orders"]
        total[1] += 1
        total[2] += row["orders"] >= 2
        total[3] += row["refunds"]
    return [SalesRecord(path, *numbers) for path, numbers in sorted(totals.items())]


def community_evidence(*, community: Community) -> CommunityEvidence:
    posts = ContentPost.objects.filter(community=community).values_list("title", "tags")[:CONTENT_LIMIT]
    return CommunityEvidence(
        name=community.name,
        description=community.description,
        mission=community.mission,
        attributes=tuple(community.attributes.values_list("tag", flat=True)),
        member_interests=member_interest_counts(community_id=community.pk),
        content=tuple(ContentItem(title, tuple(tags or ())) for title, tags in posts),
        sales=tuple(sales_by_category(community_id=community.pk)),
    )


def product_input(product: Product) -> ProductInput:
    return ProductInput(
        title=product.title,
        description=product.description,
        category=product.category.path,
        tags=tuple(product.tags or ()),
    )


def products_to_assess(*, community_id: int) -> QuerySet[Product]:
    return Product.objects.filter(community_id=community_id).select_related("category").order_by("pk")


def product_inputs_to_assess(*, community_id: int, chunk_size: int) -> Iterator[tuple[int, ProductInput]]:
    """(product id, engine input) of every product of a community: plain rows, no model instances."""
    rows = (
        Product.objects.filter(community_id=community_id)
        .order_by("pk")
        .values_list("pk", "title", "description", "category__path", "tags")
    )
    for pk, title, description, path, tags in rows.iterator(chunk_size=chunk_size):
        yield (
            pk,
            ProductInput(title=title, description=description, category=path or "", tags=tuple(tags or ())),
        )


def fit_warnings_for_community(*, community: Community) -> QuerySet[FitAssessment]:
    """Products whose fit needs the owner's attention, worst first."""
    return (
        FitAssessment.objects.filter(product__community=community, warning=True)
        .select_related("product", "product__category")
        .order_by("score")
    )
