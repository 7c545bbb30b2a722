"""The jobs run concurrently in threads (real transactions on PostgreSQL): nothing is done twice.

These tests commit, so the database is flushed after each; the shipped
categories are loaded again before each test and the serialized data restored
after the module, as in ``test_concurrency.py``.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from commerce.models import Commission, CommissionEntry, Notification, Reminder
from commerce.services.commissions import commission_balance, commission_settle_due
from commerce.services.repurchase import repurchase_reminders_create
from members.models import Membership
from members.services.expiry import membership_expire_due
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.jobs_helpers import bought, day
from tests.commerce.test_commissions import buy, shop
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

D = Decimal


def test_given_two_workers_settling_at_once_then_each_commission_is_settled_once(stripe):
    world = shop()
    orders = [buy(stripe, world) for _ in range(5)]
    later = timezone.now() + timedelta(days=8)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(commission_settle_due(now=later, batch_size=3))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(results) == 10
    assert CommissionEntry.objects.filter(kind="settlement").count() == 10
    assert Commission.objects.filter(order__in=orders, status="settled").count() == 10
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("50.00")
    audited = AuditEntry.objects.filter(action="commission.settled")
    assert audited.count() == audited.values("target_id").distinct().count() == 10


def test_given_a_beneficiarys_membership_row_locked_elsewhere_when_settling_then_the_commission_settles(
    stripe,
):
    """A member's row being written meanwhile (points, status) must not hide their commission from the job."""
    world = shop()
    order = buy(stripe, world)
    locked, release = threading.Event(), threading.Event()

    def update_the_member_meanwhile():
        try:
            with transaction.atomic():
                Membership.objects.select_for_update(no_key=True).get(pk=world["parent"].pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    writer = threading.Thread(target=update_the_member_meanwhile)
    writer.start()
    try:
        assert locked.wait(timeout=30)
        settled = commission_settle_due(now=order.paid_at + timedelta(days=7))
    finally:
        release.set()
        writer.join()

    assert settled == 2
    assert Commission.objects.filter(order=order, status="settled").count() == 2
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("10.00")


def test_given_a_worker_holding_its_chunk_when_another_runs_then_it_settles_all_the_rest_and_stops(stripe):
    """The second worker neither waits for nor stops at the chunk the first holds; those rows stay pending."""
    world = shop()
    orders = [buy(stripe, world) for _ in range(4)]
    later = timezone.now() + timedelta(days=8)
    held_ids = list(Commission.objects.order_by("settle_after", "pk").values_list("pk", flat=True)[:3])
    locked, release = threading.Event(), threading.Event()

    def first_worker_mid_chunk():
        try:
            with transaction.atomic():
                list(Commission.objects.select_for_update().filter(pk__in=held_ids))
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    first = threading.Thread(target=first_worker_mid_chunk)
    first.start()
    try:
        assert locked.wait(timeout=30)
        settled_by_second = commission_settle_due(now=later, batch_size=2)
    finally:
        release.set()
        first.join()

    assert settled_by_second == 8 - len(held_ids)
    assert set(Commission.objects.filter(status="pending").values_list("pk", flat=True)) == set(held_ids)
    assert commission_settle_due(now=later, batch_size=2) == len(held_ids)
    assert Commission.objects.filter(order__in=orders, status="settled").count() == 8
    assert CommissionEntry.objects.filter(kind="settlement").count() == 8


def test_given_two_workers_creating_reminders_at_once_then_each_cycle_has_one_reminder():
    community = CommunityFactory()
    rice = SkuFactory(product=ProductFactory(community=community, repurchase_cycle_days=30), stock=100)
    members = [MembershipFactory(community=community) for _ in range(6)]
    for member in members:
        bought(member, rice, at=day(0))
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            repurchase_reminders_create(now=day(30), flush_size=2)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert Reminder.objects.count() == 6 and Notification.objects.count() == 6


def test_given_two_workers_expiring_at_once_then_each_membership_is_counted_once():
    now = timezone.now()
    community = CommunityFactory()
    for _ in range(10):
        MembershipFactory(community=community, expires_at=now - timedelta(hours=1))
    barrier = threading.Barrier(3)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(membership_expire_due(now=now, batch_size=2))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(results) == 10
    assert Membership.objects.filter(status="expired").count() == 10
