"""The registry of scheduled jobs, collected from every app's ``jobs.py``.

Each app declares its own jobs (``members.jobs``, ``commerce.jobs``,
``trust.jobs``); the project package may import every app, so it collects
them here. ``run_jobs`` runs them by name in their declared order and the
Celery app builds the beat schedule from them (``beat_schedule``).
"""

from commerce.jobs import JOBS as COMMERCE_JOBS
from members.jobs import JOBS as MEMBERS_JOBS
from shequn_backend.scheduling import Job
from trust.jobs import JOBS as TRUST_JOBS

DECLARED: list[Job] = sorted([*MEMBERS_JOBS, *COMMERCE_JOBS, *TRUST_JOBS], key=lambda job: job.order)
JOBS: dict[str, Job] = {job.name: job for job in DECLARED}  # in the order a full run takes them


def beat_schedule() -> dict[str, dict]:
    """Celery's ``beat_schedule``: one entry per declared job."""
    return {job.beat_entry: {"task": job.task, "schedule": job.schedule} for job in DECLARED}
