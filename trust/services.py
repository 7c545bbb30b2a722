"""Assess products' fit, keep assessments current, and record communities' content.

One code path serves the admin, the owner API, the batch job and the
``assess_fit`` command: ``fit_result`` on engine inputs.
"""

import dataclasses
import json
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from commerce.models import Product
from members.models import Community
from shequn_backend.audit import Actor, audit_diff, audit_record, audit_snapshot
from shequn_backend.events import enqueue_on_commit
from trust import selectors
from trust.lexicon_store import current_lexicon, current_lexicon_versioned
from trust.models import (
    CategoryAudience,
    CommunityAudience,
    ContentPost,
    Domain,
    DomainRelation,
    DomainTerm,
    FitAssessment,
)
from trust.scoring.engine import (
    ENGINE_VERSION,
    AudienceProfile,
    CommunityEvidence,
    FitResult,
    ProductInput,
    SalesSignal,
    assess,
    build_profile,
)
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


def _assessment_row(product_id: int, result: FitResult) -> dict:
    """An assessment's stored fields (but its time) as plain data: a batch needs no model instances."""
    return {
        "product_id": product_id,
        "audience_match": round(result.audience_match, 4),
        "trust": round(result.trust, 4),
        "score": round(result.score, 4),
        "level": result.level,
        "warning": result.warning,
        "reasons_zh": list(result.reasons_zh),
        "reasons_en": list(result.reasons_en),
        "product_domains": _rounded(result.product_domains),
    }


def _rounded(weights) -> dict[str, float]:
    return {key: round(value, 4) for key, value in weights.items()}


def _save_assessments(rows: list[dict]) -> None:
    """Upsert ``_assessment_row``s by product, stamped now. On PostgreSQL the whole batch travels as
    one JSON parameter that the server unpacks (``jsonb_to_recordset``): a fraction of the cost of
    binding each row's values, and products deleted meanwhile are skipped instead of failing it."""
    if not rows:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        FitAssessment.objects.bulk_create(
            [FitAssessment(**row, assessed_at=now) for row in rows],
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=ASSESSMENT_FIELDS,
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_SQL, [now, json.dumps(rows, ensure_ascii=False)])


_UPSERT_SQL = f"""
INSERT INTO {FitAssessment._meta.db_table}
    (product_id, audience_match, trust, score, level, warning, reasons_zh, reasons_en, product_domains,
     assessed_at)
SELECT r.product_id, r.audience_match, r.trust, r.score, r.level, r.warning, r.reasons_zh, r.reasons_en,
       r.product_domains, %s::timestamptz
FROM jsonb_to_recordset(%s::jsonb) AS r(
    product_id bigint, audience_match double precision, trust double precision, score double precision,
    level varchar, warning boolean, reasons_zh jsonb, reasons_en jsonb, product_domains jsonb)
JOIN {Product._meta.db_table} AS p ON p.id = r.product_id
ON CONFLICT (product_id) DO UPDATE SET
    {", ".join(f"{name} = EXCLUDED.{name}" for name in ASSESSMENT_FIELDS)}
"""  # noqa: S608 - table names from the models


def product_assess(*, product_id: int) -> FitAssessment:
    """Score one product against its community now and store the verdict (idempotent).

    Uses the audience profile stored by the last re-score (a new listing
    costs three queries, not the community's whole evidence); builds it
    from the evidence when none is stored or the lexicon changed since.
    """
    product = Product.objects.select_related("category", "community__audience").get(pk=product_id)
    version, lexicon = current_lexicon_versioned()
    profile = _stored_profile(community=product.community, lexicon_version=version)
    if profile is None:
        profile = build_profile(lexicon, selectors.community_evidence(community=product.community))
    row = _assessment_row(product.pk, assess(lexicon, profile, selectors.product_input(product)))
    _save_assessments([row])
    return FitAssessment(**row, assessed_at=timezone.now())


def _profile_as_json(profile: AudienceProfile, lexicon_version: str) -> dict:
    return {"lexicon": lexicon_version, "engine": ENGINE_VERSION, **dataclasses.asdict(profile)}


def _stored_profile(*, community: Community, lexicon_version: str) -> AudienceProfile | None:
    """The profile of the community's last re-score, if it was built with this lexicon."""
    try:
        stored = community.audience.profile
    except CommunityAudience.DoesNotExist:
        return None
    if not stored or stored.get("lexicon") != lexicon_version or stored.get("engine") != ENGINE_VERSION:
        return None  # built with another lexicon, or by an engine whose profile meant something else
    fields = {key: value for key, value in stored.items() if key not in ("lexicon", "engine")}
    try:
        return AudienceProfile(
            **{
                **fields,
                "sales": tuple(SalesSignal(**signal) for signal in fields.get("sales", ())),
                "attributes": tuple(fields.get("attributes", ())),
                "own_names": tuple(fields.get("own_names", ())),
            }
        )
    except TypeError:  # stored by an older engine whose profile had other fields
        return None


def community_rescore(*, community_id: int) -> int:
    """Re-score every product of a community with one profile, in chunks; returns how many.

    Idempotent and safe to repeat: each chunk upserts by product. The stale
    mark is cleared when the run starts, so a change arriving meanwhile marks
    the community stale again and queues the next run; a run that fails
    marks it stale again for the periodic scan.
    """
    CommunityAudience.objects.filter(community_id=community_id, stale_since__isnull=False).update(
        stale_since=None
    )
    try:
        return _rescore(community_id=community_id)
    except Exception:
        CommunityAudience.objects.filter(community_id=community_id, stale_since__isnull=True).update(
            stale_since=timezone.now()
        )
        raise


def _rescore(*, community_id: int) -> int:
    community = Community.objects.get(pk=community_id)
    started = timezone.now()
    version, lexicon = current_lexicon_versioned()
    profile = build_profile(lexicon, selectors.community_evidence(community=community))
    count, batch = 0, []
    for pk, product in selectors.product_inputs_to_assess(
        community_id=community_id, chunk_size=RESCORE_CHUNK
    ):
        batch.append(_assessment_row(pk, assess(lexicon, profile, product)))
        if len(batch) >= RESCORE_CHUNK:
            _save_assessments(batch)
            count, batch = count + len(batch), []
    if batch:
        _save_assessments(batch)
        count += len(batch)
    CommunityAudience.objects.bulk_create(  # one upsert, not update_or_create's four round trips
        [
            CommunityAudience(
                community_id=community_id,
                domains=_rounded(profile.domains),
                trust=_rounded(profile.trust),
                profile=_profile_as_json(profile, version),
                scored_at=started,
            )
        ],
        update_conflicts=True,
        unique_fields=["community"],
        update_fields=["domains", "trust", "profile", "scored_at"],
    )
    return count


def community_mark_stale(*, community_id: int) -> bool:
    """Note that a community's audience evidence changed; True if this call turned it stale.

    Only the turn from fresh to stale queues a re-score (after commit; an
    unreachable broker is logged and the every-minute stale scan picks the
    community up), so two payments in a row queue one run, not two.
    """
    now = timezone.now()
    turned = CommunityAudience.objects.filter(community_id=community_id, stale_since__isnull=True).update(
        stale_since=now
    )
    if not turned:
        _, turned = CommunityAudience.objects.get_or_create(
            community_id=community_id, defaults={"stale_since": now}
        )
    if turned:
        from trust.tasks import rescore_community_task  # tasks import services: import here, not at top

        enqueue_on_commit(rescore_community_task, community_id)
    return bool(turned)


def community_mark_stale_many(*, community_ids) -> list[int]:
    """``community_mark_stale`` for many communities in one statement on PostgreSQL, whatever their
    number; returns the ids this call turned stale (each queues one re-score after commit)."""
    from trust.tasks import rescore_community_task  # tasks import services: import here, not at top

    now, ids = timezone.now(), sorted(set(community_ids))
    if not ids:
        return []
    if connection.vendor == "postgresql":
        turned = _mark_stale_many_sql(community_ids=ids, now=now)
    else:
        turned = _mark_stale_many_orm(community_ids=ids, now=now)
    for community_id in turned:
        enqueue_on_commit(rescore_community_task, community_id)
    return turned


# Fresh rows turn stale and missing rows are created stale (the upsert's WHERE leaves stale rows
# alone); RETURNING gives exactly the rows this statement turned or created, as the ORM path counts.
_MARK_STALE_MANY_SQL = """
INSERT INTO {audience} (community_id, domains, trust, profile, stale_since, scored_at)
SELECT id, '{{}}'::jsonb, '{{}}'::jsonb, '{{}}'::jsonb, %(now)s, NULL FROM unnest(%(ids)s::bigint[]) AS id
ON CONFLICT (community_id) DO UPDATE SET stale_since = EXCLUDED.stale_since
WHERE {audience}.stale_since IS NULL
RETURNING community_id
"""


def _mark_stale_many_sql(*, community_ids: list[int], now: datetime) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            _MARK_STALE_MANY_SQL.format(audience=CommunityAudience._meta.db_table),
            {"ids": community_ids, "now": now},
        )
        return sorted(community_id for (community_id,) in cursor.fetchall())


def _mark_stale_many_orm(*, community_ids: list[int], now: datetime) -> list[int]:
    ids = set(community_ids)
    with transaction.atomic():
        fresh = CommunityAudience.objects.filter(community_id__in=ids, stale_since__isnull=True)
        turned = set(fresh.select_for_update().values_list("community_id", flat=True))
        CommunityAudience.objects.filter(community_id__in=turned).update(stale_since=now)
        known = CommunityAudience.objects.filter(community_id__in=ids).values_list("community_id", flat=True)
        missing = ids - set(known)
        CommunityAudience.objects.bulk_create(
            [CommunityAudience(community_id=pk, stale_since=now) for pk in missing], ignore_conflicts=True
        )
    return sorted(turned | missing)


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


POST_FIELDS = ["title", "tags", "published_at"]


@transaction.atomic
def content_post_create(
    *,
    community: Community,
    title: str,
    tags: list[str],
    published_at: datetime | None,
    actor: Actor,
) -> ContentPost:
    """Record content the community published: evidence of its trust, so its products are re-scored."""
    post = ContentPost.objects.create(
        community=community,
        title=title,
        tags=tags,
        published_at=published_at or timezone.now(),
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
    )
    audit_record(
        actor=actor,
        action="content_post.created",
        target=post,
        community_id=community.pk,
        changes=audit_diff({}, audit_snapshot(post, POST_FIELDS)),
    )
    community_mark_stale(community_id=community.pk)
    return post


@transaction.atomic
def content_post_update(
    *, post_id: int, actor: Actor, title: str, tags: list[str], published_at: datetime
) -> ContentPost:
    post = ContentPost.objects.select_for_update().get(pk=post_id)
    before = audit_snapshot(post, POST_FIELDS)
    post.title, post.tags, post.published_at = title, tags, published_at
    post.save(update_fields=POST_FIELDS)
    changes = audit_diff(before, audit_snapshot(post, POST_FIELDS))
    if changes:
        audit_record(
            actor=actor,
            action="content_post.changed",
            target=post,
            community_id=post.community_id,
            changes=changes,
        )
        community_mark_stale(community_id=post.community_id)
    return post


@transaction.atomic
def content_post_delete(*, post_id: int, actor: Actor) -> None:
    post = ContentPost.objects.select_for_update().filter(pk=post_id).first()
    if post is None:
        return  # already gone: deleting is idempotent
    audit_record(
        actor=actor,
        action="content_post.deleted",
        target=post,
        community_id=post.community_id,
        changes={key: [value, None] for key, value in audit_snapshot(post, POST_FIELDS).items()},
    )
    post.delete()
    community_mark_stale(community_id=post.community_id)


# The scorer's knowledge, edited by operators: each edit is audited; the next assessment reads it.
LEXICON_ENTRIES = {
    Domain: ("domain", ["key", "name_zh", "name_en", "universal"]),
    DomainTerm: ("domain_term", ["domain", "term", "lang", "kind", "weight"]),
    CategoryAudience: ("category_audience", ["category", "domain", "weight"]),
    DomainRelation: ("domain_relation", ["source", "target", "weight"]),
}
LexiconEntry = Domain | DomainTerm | CategoryAudience | DomainRelation


@transaction.atomic
def lexicon_entry_save(*, entry: LexiconEntry, actor: Actor) -> LexiconEntry:
    """Save an operator's new or edited lexicon entry (validated by the caller's form) with an audit row."""
    name, fields = LEXICON_ENTRIES[type(entry)]
    stored = type(entry).objects.select_for_update().filter(pk=entry.pk).first() if entry.pk else None
    before = audit_snapshot(stored, fields) if stored is not None else {}
    entry.save()
    changes = audit_diff(before, audit_snapshot(entry, fields))
    if changes:
        verb = "changed" if stored is not None else "created"
        audit_record(actor=actor, action=f"{name}.{verb}", target=entry, changes=changes)
    return entry


@transaction.atomic
def lexicon_entry_delete(*, entry: LexiconEntry, actor: Actor) -> None:
    """Delete a lexicon entry (a domain takes its terms and mappings with it) with an audit row."""
    name, fields = LEXICON_ENTRIES[type(entry)]
    audit_record(
        actor=actor,
        action=f"{name}.deleted",
        target=entry,
        changes={key: [value, None] for key, value in audit_snapshot(entry, fields).items()},
    )
    entry.delete()
