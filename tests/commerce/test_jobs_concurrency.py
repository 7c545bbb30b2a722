"""The jobs run concurrently in threads (real transactions on PostgreSQL): nothing is done twice.

These tests commit, so the database is flushed after each; the shipped
categories are loaded again before each test and the serialized data restored
after the module, as in ``test_concurrency.py``.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from commerce.models import Commission, CommissionEntry, Notification, Reminder
from commerce.services.commissions import commission_balance, commission_settle_due
from commerce.services.repurchase import repurchase_reminders_create
from members.models import Membership
from members.services.expiry import membership_expire_due
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
