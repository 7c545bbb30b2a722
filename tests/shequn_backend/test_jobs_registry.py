"""Each app declares its jobs once; run_jobs and the beat schedule derive from the declarations."""

import subprocess
import sys
import time
from collections import Counter
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from commerce import jobs as commerce_jobs
from members import jobs as members_jobs
from shequn_backend.celery import app
from shequn_backend.jobs import JOBS
from tests.shequn_backend.processes import ROOT, clean_env
from trust import jobs as trust_jobs

DECLARED = [*members_jobs.JOBS, *commerce_jobs.JOBS, *trust_jobs.JOBS]
BROKER = "redis://127.0.0.1:6379/14"


def beat_schedule() -> dict:
    app.finalize()
    return app.conf.beat_schedule


def test_job_names_orders_and_tasks_are_each_declared_once():
    for field in ["name", "order", "task"]:
        values = Counter(getattr(job, field) for job in DECLARED)
        assert values.most_common(1)[0][1] == 1, field


def test_every_declared_job_is_a_run_jobs_job_exactly_once():
    assert sorted(JOBS) == sorted(job.name for job in DECLARED)
    assert all(JOBS[job.name] is job for job in DECLARED)


def test_every_declared_job_is_on_the_beat_schedule_exactly_once_and_nothing_else_is():
    schedule = beat_schedule()

    assert Counter(entry["task"] for entry in schedule.values()) == Counter(job.task for job in DECLARED)
    for job in DECLARED:
        assert schedule[job.beat_entry] == {"task": job.task, "schedule": job.schedule}
    assert not hasattr(settings, "CELERY_BEAT_SCHEDULE")  # one source: the apps' declarations


def test_every_scheduled_task_is_a_registered_task_that_acknowledges_late():
    app.loader.import_default_modules()
    for job in DECLARED:
        assert app.tasks[job.task].acks_late, job.task


@pytest.mark.django_db
def test_run_jobs_runs_every_declared_job_in_the_declared_order():
    out = StringIO()
    call_command("run_jobs", "--now", "2025-06-01T09:00:00+08:00", stdout=out)

    ran = [line.split(":")[0] for line in out.getvalue().splitlines()[1:]]
    assert ran == [job.name for job in sorted(DECLARED, key=lambda job: job.order)]


@pytest.mark.worker
def test_a_real_beat_process_schedules_the_declared_jobs(tmp_path):
    """The schedule is built when Celery finalizes the app: after Django is set up, before beat reads it."""
    env = clean_env(DEBUG="1", CELERY_BROKER_URL=BROKER, PYTHONUNBUFFERED="1")
    log = tmp_path / "beat.log"
    command = [sys.executable, "-m", "celery", "-A", "shequn_backend", "beat", "--loglevel", "DEBUG"]
    command += ["--schedule", str(tmp_path / "schedule"), "--logfile", str(log)]
    beat = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Waking up" not in (text := log.read_text() if log.exists() else ""):
            assert beat.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.5)
    finally:
        beat.terminate()
        beat.wait(timeout=30)

    for job in DECLARED:
        assert f"<ScheduleEntry: {job.beat_entry} {job.task}()" in text, job.name
