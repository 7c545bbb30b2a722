"""The trust app's scheduled jobs (collected by ``shequn_backend.jobs``).

By hand (``run_jobs``) the re-scoring runs here, in-process; beat's tasks fan
it out to the workers instead, one task per community (``trust.tasks``).
"""

from datetime import datetime

from celery.schedules import crontab

from shequn_backend.scheduling import Job
from trust import services


def rescore_stale(*, now: datetime) -> int:
    """Re-score every community marked stale by ``now``; returns the products scored."""
    scored = 0
    while ids := services.stale_community_ids(now=now):
        for community_id in ids:
            scored += services.community_rescore(community_id=community_id)
    return scored


def rescore_all(*, now: datetime) -> int:
    """Mark every community stale, then re-score them all."""
    services.communities_mark_all_stale(now=now)
    return rescore_stale(now=now)


RESCORE_FIT = Job(
    name="rescore_fit",
    service=rescore_all,
    task="trust.rescore_all",
    schedule=crontab(hour=3, minute=30),
    did="products re-scored",
    order=70,
)
RESCORE_STALE_FIT = Job(
    name="rescore_stale_fit",
    service=rescore_stale,
    task="trust.rescore_stale",
    schedule=60.0,  # the scan that catches re-scoring lost with the broker or a crashed worker
    did="products re-scored",
    order=80,
)

JOBS = [RESCORE_FIT, RESCORE_STALE_FIT]
