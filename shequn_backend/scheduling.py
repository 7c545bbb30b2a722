"""What an app declares about each of its scheduled jobs (in its ``jobs.py``).

``shequn_backend.jobs`` collects the declarations; ``run_jobs``, the beat
schedule and the Celery task names all derive from them, so a job is declared
once, by the app that owns it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from celery.schedules import crontab


@dataclass(frozen=True)
class Job:
    """A scheduled job: run by beat as ``task`` on ``schedule``, by hand as ``run_jobs <name>``."""

    name: str  # the run_jobs name, e.g. "settle_commissions"
    service: Callable[..., int]  # service(now=...) judges by ``now``, returns how many things it changed
    task: str  # the Celery task beat sends, e.g. "commerce.commissions_settle"
    schedule: crontab | float  # a crontab (in CELERY_TIMEZONE) or every so many seconds
    did: str  # what the count means, e.g. "commissions settled"
    order: int  # position in a full run: expiries before reminders, reminders before sending

    @property
    def beat_entry(self) -> str:
        return self.name.replace("_", "-")

    def run(self, now: datetime) -> int:
        return self.service(now=now)
