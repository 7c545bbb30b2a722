"""The jobs through real Celery workers on Redis: a crash half-way, a re-run, two workers at once."""

import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone

from commerce.models import Commission, CommissionEntry, Notification, Reminder
from commerce.services.commissions import commission_balance, commission_settle_due
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.jobs_helpers import bought
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.shequn_backend.processes import ROOT, clean_env

BROKER = "redis://127.0.0.1:6379/14"

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def start_worker(queue: str) -> subprocess.Popen:
    db = connection.settings_dict
    env = clean_env(
        DEBUG="1",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        CELERY_BROKER_URL=BROKER,
        CELERY_RESULT_BACKEND=BROKER,
    )
    command = [sys.executable, "-m", "celery", "-A", "shequn_backend", "worker", "--pool", "solo"]
    command += ["--queues", queue, "--without-heartbeat", "--without-gossip", "--without-mingle"]
    command += ["--loglevel", "WARNING"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture
def workers():
    """Start workers on a private queue; returns (start(n), send(task, *args))."""
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    started: list[subprocess.Popen] = []
    client = Celery(broker=BROKER, backend=BROKER, set_as_current=False)

    def start(count: int = 1):
        started.extend(start_worker(queue) for _ in range(count))

    def send(task: str, *args):
        return client.send_task(task, args=args, queue=queue)

    yield start, send
    for worker in started:
        worker.terminate()
    for worker in started:
        worker.communicate(timeout=30)


def paid_orders_with_commissions(count: int):
    community = CommunityFactory(referral_level1_percent=10, referral_level2_percent=5)
    sku = SkuFactory(
        product=ProductFactory(community=community, repurchase_cycle_days=30), price=100, stock=1000
    )
    grand = MembershipFactory(community=community)
    parent = MembershipFactory(community=community, referred_by=grand)
    buyers = [MembershipFactory(community=community, referred_by=parent) for _ in range(count)]
    paid_at = timezone.now() - timedelta(days=30)
    for buyer in buyers:
        bought(buyer, sku, at=paid_at)
    return {"parent": parent, "grand": grand, "paid_at": paid_at, "buyers": buyers}


def test_given_a_crash_half_way_when_a_real_worker_reruns_the_job_then_nothing_is_doubled_or_lost(workers):
    start, send = workers
    world = paid_orders_with_commissions(6)
    now = timezone.now().isoformat()
    with pytest.raises(RuntimeError):
        commission_settle_due(now=timezone.now(), batch_size=5, fail_after=3)  # dies inside the first chunk

    start(1)
    first = send("commerce.commissions_settle", now).get(timeout=90)
    again = send("commerce.commissions_settle", now).get(timeout=90)

    assert (first, again) == (12, 0)
    assert Commission.objects.filter(status="settled").count() == 12
    assert CommissionEntry.objects.count() == 12
    assert commission_balance(beneficiary_id=world["parent"].pk) == 60
    assert commission_balance(beneficiary_id=world["grand"].pk) == 30


def test_given_two_workers_running_the_same_jobs_at_once_then_nothing_is_created_twice(workers):
    start, send = workers
    world = paid_orders_with_commissions(10)
    now = timezone.now().isoformat()
    start(2)

    settles = [send("commerce.commissions_settle", now) for _ in range(2)]
    reminders = [send("commerce.repurchase_reminders", now) for _ in range(2)]
    settled = sum(result.get(timeout=120) for result in settles)
    created = sum(result.get(timeout=120) for result in reminders)

    assert settled == 20 and CommissionEntry.objects.count() == 20
    assert created == 10
    assert Reminder.objects.count() == len(world["buyers"]) == Notification.objects.count()
