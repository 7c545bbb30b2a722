"""Thin Celery tasks over trust's services. Each is idempotent: it upserts assessments by product."""

from celery import shared_task
from django.db import DatabaseError
from django.utils import timezone

from members.models import Community
from trust import services
from trust.jobs import RESCORE_FIT, RESCORE_STALE_FIT

RETRY = {"autoretry_for": (DatabaseError,), "retry_backoff": True, "retry_backoff_max": 300, "max_retries": 5}


@shared_task(name="trust.rescore_community", acks_late=True, **RETRY)
def rescore_community_task(community_id: int) -> int:
    try:
        return services.community_rescore(community_id=community_id)
    except Community.DoesNotExist:
        return 0  # deleted since: nothing to score


@shared_task(name=RESCORE_STALE_FIT.task, acks_late=True, **RETRY)
def rescore_stale_task() -> int:
    """The periodic scan: re-score communities marked stale (catches missed or crashed tasks)."""
    ids = services.stale_community_ids(now=timezone.now())
    for community_id in ids:
        rescore_community_task.delay(community_id)
    return len(ids)


@shared_task(name=RESCORE_FIT.task, acks_late=True, **RETRY)
def rescore_all_task() -> int:
    """Nightly: mark every community stale and fan out one chunked task per community."""
    services.communities_mark_all_stale(now=timezone.now())
    return rescore_stale_task()
