import time
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from shequn_backend.jobs import JOBS


def _parse_now(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--now must be ISO 8601, e.g. 2025-01-31T09:00:00+08:00 (got {value!r})") from exc
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "Run scheduled jobs now, by name (all of them when none is named), judging by --now."

    def add_arguments(self, parser):
        parser.add_argument("jobs", nargs="*", metavar="JOB", help="Any of: " + ", ".join(JOBS))
        parser.add_argument("--now", help="ISO 8601 time the jobs judge by (default: the real time).")

    def handle(self, *args, jobs, now, **options):
        unknown = [name for name in jobs if name not in JOBS]
        if unknown:
            raise CommandError(f"Unknown job(s): {', '.join(unknown)}. Choose from: {', '.join(JOBS)}.")
        moment = _parse_now(now) if now else timezone.now()
        self.stdout.write(f"Running at {moment.isoformat()}")
        for name in jobs or list(JOBS):
            started = time.perf_counter()
            count = JOBS[name].run(moment)
            elapsed = time.perf_counter() - started
            self.stdout.write(f"{name}: {count} {JOBS[name].did} ({elapsed:.2f}s)")
