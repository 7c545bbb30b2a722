"""A real Celery worker against the local Redis runs a task sent through the broker."""

import subprocess
import sys
import uuid

import pytest
from celery import Celery
from django.db import connection

from tests.shequn_backend.processes import ROOT, clean_env

BROKER = "redis://127.0.0.1:6379/14"


@pytest.mark.worker
@pytest.mark.django_db
def test_a_real_worker_runs_a_task_through_redis():
    queue = f"test-{uuid.uuid4().hex[:8]}"  # private queue: no other worker can take it
    db = connection.settings_dict
    env = clean_env(
        DEBUG="1",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=BROKER,
        CELERY_RESULT_BACKEND=BROKER,
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shequn_backend",
            "worker",
            "--pool",
            "solo",
            "--queues",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        client = Celery(broker=BROKER, backend=BROKER, set_as_current=False)
        result = client.send_task("shequn_backend.ping", queue=queue)
        answer = result.get(timeout=60)
        assert answer["pong"] is True
        assert answer["database_time"]
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode is not None, output


def test_celery_is_configured_for_reliability():
    from shequn_backend.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
