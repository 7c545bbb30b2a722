"""Assess products' fit, keep assessments current, and record communities' content.

One code path serves the admin, the owner API, the batch job and the
``assess_fit`` command: ``fit_result`` on engine inputs.
"""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from commerce.models import Product
from members.models import Community, User
from trust import selectors
from trust.lexicon_store import current_lexicon
from trust.models import CommunityAudience, ContentPost, FitAssessment
from trust.scoring.engine import CommunityEvidence, FitResult, ProductInput, assess, build_profile
from trust.scoring.lexicon import Lexicon

RESCORE_CHUNK = 500
ASSESSMENT_FIELDS = [
    "audience_match",
    "trust",
    "score",
    "level",
    "warning",
    "reasons_zh",
    "reasons_en",
    "product_domains",
    "assessed_at",
]


def fit_result(
    *, evidence: CommunityEvidence, product: ProductInput, lexicon: Lexicon | None = None
) -> FitResult:
    """The verdict for one product given a community's evidence (builds the profile)."""
    lexicon = lexicon or current_lexicon()
    return assess(lexicon, build_profile(lexicon, evidence), product)


def _assessment(product_id: int, result: FitResult) -> FitAssessment:
    return FitAssessment(
        product_id=product_id,
        audience_match=round(result.audience_match, 4),
        trust=round(result.trust, 4),
        score=round(result.score, 4),
        level=result.level,
        warning=result.warning,
        reasons_zh=list(result.reasons_zh),
        reasons_en=list(result.reasons_en),
        product_domains=_rounded(result.product_domains),
        assessed_at=timezone.now(),
    )


def _rounded(weights) -> dict[str, float]:
    return {key: round(value, 4) for key, value in weights.items()}


def _save_assessments(assessments: list[FitAssessment]) -> None:
    FitAssessment.objects.bulk_create(
        assessments, update_conflicts=True, unique_fields=["product"], update_fields=ASSESSMENT_FIELDS
    )


def product_assess(*, product_id: int) -> FitAssessment:
    """Score one product against its community now and store the verdict (idempotent)."""
    product = Product.objects.select_related("category", "community").get(pk=product_id)
    evidence = selectors.community_evidence(community=product.community)
    assessment = _assessment(
        product.pk, fit_result(evidence=evidence, product=selectors.product_input(product))
    )
    _save_assessments([assessment])
    return assessment


def community_rescore(*, community_id: int) -> int:
    """Re-score every product of a community with one profile, in chunks; returns how many.

    Idempotent and safe to repeat: each chunk upserts by product. The stale
    mark is cleared only if no new change arrived while this ran.
    """
    community = Community.objects.get(pk=community_id)
    started = timezone.now()
    lexicon = current_lexicon()
    profile = build_profile(lexicon, selectors.community_evidence(community=community))
    count, batch = 0, []
    for product in selectors.products_to_assess(community_id=community_id).iterator(chunk_size=RESCORE_CHUNK):
        batch.append(_assessment(product.pk, assess(lexicon, profile, selectors.product_input(product))))
        if len(batch) >= RESCORE_CHUNK:
            _save_assessments(batch)
            count, batch = count + len(batch), []
    if batch:
        _save_assessments(batch)
        count += len(batch)
    CommunityAudience.objects.update_or_create(
        community_id=community_id,
        defaults={
            "domains": _rounded(profile.domains),
            "trust": _rounded(profile.trust),
            "scored_at": started,
        },
    )
    CommunityAudience.objects.filter(community_id=community_id, stale_since__lte=started).update(
        stale_since=None
    )
    return count


def community_mark_stale(*, community_id: int) -> None:
    """Note that a community's audience evidence changed; re-score after the change commits."""
    now = timezone.now()
    audience, created = CommunityAudience.objects.get_or_create(
        community_id=community_id, defaults={"stale_since": now}
    )
    if not created and audience.stale_since is None:
        CommunityAudience.objects.filter(pk=community_id, stale_since__isnull=True).update(stale_since=now)

    from trust.tasks import rescore_community_task  # tasks import services: import here, not at module top

    transaction.on_commit(lambda: rescore_community_task.delay(community_id))


def stale_community_ids(*, now: datetime, limit: int = 1000) -> list[int]:
    return list(
        CommunityAudience.objects.filter(stale_since__lte=now)
        .order_by("stale_since")
        .values_list("community_id", flat=True)[:limit]
    )


def communities_mark_all_stale(*, now: datetime) -> int:
    """The nightly full re-score: every community, including ones never scored."""
    unscored = Community.objects.filter(audience__isnull=True).values_list("pk", flat=True)
    CommunityAudience.objects.bulk_create(
        [CommunityAudience(community_id=pk, stale_since=now) for pk in unscored], ignore_conflicts=True
    )
    CommunityAudience.objects.filter(stale_since__isnull=True).update(stale_since=now)
    return CommunityAudience.objects.filter(stale_since__isnull=False).count()


@transaction.atomic
def content_post_create(
    *, community: Community, title: str, tags: list[str], published_at: datetime | None, created_by: User
) -> ContentPost:
    post = ContentPost.objects.create(
        community=community,
        title=title,
        tags=tags,
        published_at=published_at or timezone.now(),
        created_by=created_by,
    )
    community_mark_stale(community_id=community.pk)
    return post
