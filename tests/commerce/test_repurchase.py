"""Repurchase reminders once per due cycle, the outbox, /me/reminders/, and repurchase rates."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest

from commerce.models import Notification, Order, Reminder, RepurchaseRate
from commerce.selectors import repurchase_rate_for_community
from commerce.services import repurchase
from commerce.services.notifications import notification_send_due
from commerce.services.repurchase import (
    repurchase_due_at,
    repurchase_rates_refresh,
    repurchase_reminders_create,
)
from members.models import Membership
from shequn_backend.calendar import business_day
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory, category
from tests.commerce.flows import body, pay, place_order, refund_as_owner
from tests.commerce.jobs_helpers import bought, day
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db

SENT: list[int] = []


def recording_transport(*, notification) -> None:
    SENT.append(notification.pk)


def failing_transport(*, notification) -> None:
    raise ConnectionError("gateway down")


@pytest.fixture
def goods():
    community = CommunityFactory()
    rice = SkuFactory(
        product=ProductFactory(community=community, title="五常大米", repurchase_cycle_days=30), stock=100
    )
    tea = SkuFactory(product=ProductFactory(community=community, title="龙井"), stock=100)
    member = MembershipFactory(community=community)
    return {"community": community, "rice": rice, "tea": tea, "member": member}


def test_given_a_declared_cycle_when_the_cycle_ends_then_one_reminder_is_due_then(goods):
    bought(goods["member"], goods["rice"], at=day(0))

    assert repurchase_reminders_create(now=day(28)) == 0
    assert repurchase_reminders_create(now=day(29)) == 1  # one lead day

    [reminder] = Reminder.objects.all()
    assert reminder.kind == "repurchase" and reminder.product == goods["rice"].product
    assert reminder.due_at == day(30) and reminder.membership == goods["member"]
    assert "五常大米" in reminder.message
    assert Notification.objects.get().reminder == reminder


def test_given_the_job_runs_twice_in_a_cycle_then_there_is_one_reminder_and_one_notification(goods):
    bought(goods["member"], goods["rice"], at=day(0))

    repurchase_reminders_create(now=day(30))
    assert repurchase_reminders_create(now=day(31)) == 0

    assert Reminder.objects.count() == 1 and Notification.objects.count() == 1
    [created] = AuditEntry.objects.filter(action="reminder.created")
    assert created.actor_label == "job:repurchase_reminders"
    assert created.target_id == str(Reminder.objects.get().pk) and created.changes["kind"] == "repurchase"


def test_given_the_member_bought_again_then_the_next_cycle_gets_its_own_reminder(goods):
    bought(goods["member"], goods["rice"], at=day(0))
    repurchase_reminders_create(now=day(30))
    bought(goods["member"], goods["rice"], at=day(32))

    assert repurchase_reminders_create(now=day(62)) == 1

    assert sorted(r.due_at for r in Reminder.objects.all()) == [day(30), day(62)]


def test_given_no_declared_cycle_then_the_median_interval_of_the_members_purchases_is_used(goods):
    for n in (0, 10, 30):  # intervals 10 and 20: median 15
        bought(goods["member"], goods["tea"], at=day(n))

    assert repurchase_reminders_create(now=day(43)) == 0
    assert repurchase_reminders_create(now=day(44)) == 1

    assert Reminder.objects.get().due_at == day(45)


def test_given_one_purchase_and_no_cycle_then_no_due_date_is_known():
    assert repurchase_due_at(purchases=[day(0)], cycle_days=None) is None
    assert repurchase_due_at(purchases=[], cycle_days=30) is None


def test_given_a_cycle_long_past_then_no_stale_reminder_is_sent(goods):
    bought(goods["member"], goods["rice"], at=day(0))

    assert repurchase_reminders_create(now=day(30 + 15)) == 0  # REPURCHASE_STALE_DAYS is 14


def test_given_a_member_who_left_then_no_reminder(goods):
    bought(goods["member"], goods["rice"], at=day(0))
    Membership.objects.filter(pk=goods["member"].pk).update(status=Membership.Status.LEFT)

    assert repurchase_reminders_create(now=day(30)) == 0


def test_given_a_refunded_order_then_it_does_not_count_as_a_purchase(goods, stripe):
    order_id = body(place_order(goods["member"].user, goods["community"], [(goods["rice"], 1)]))["id"]
    pay(stripe, order_id)
    refund_as_owner(goods["community"].owner, order_id)
    Order.objects.filter(pk=order_id).update(paid_at=day(0))
    assert Order.objects.get(pk=order_id).status == Order.Status.REFUNDED

    assert repurchase_reminders_create(now=day(30)) == 0


def test_given_a_crash_after_the_first_chunk_when_rerun_then_nothing_is_doubled_or_lost(goods, monkeypatch):
    others = [MembershipFactory(community=goods["community"]) for _ in range(3)]
    for member in [goods["member"], *others]:
        bought(member, goods["rice"], at=day(0))
    real_write = repurchase.reminders_write
    calls = []

    def crash_on_second_chunk(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker died")
        return real_write(**kwargs)

    monkeypatch.setattr(repurchase, "reminders_write", crash_on_second_chunk)
    with pytest.raises(RuntimeError):
        repurchase_reminders_create(now=day(30), flush_size=2)
    assert Reminder.objects.count() == 2
    monkeypatch.setattr(repurchase, "reminders_write", real_write)

    assert repurchase_reminders_create(now=day(30), flush_size=2) == 2
    assert Reminder.objects.count() == 4 and Notification.objects.count() == 4


def test_given_queued_notifications_when_the_sender_runs_twice_then_each_is_sent_once(goods, settings):
    settings.NOTIFICATION_TRANSPORT = "tests.commerce.test_repurchase.recording_transport"
    SENT.clear()
    bought(goods["member"], goods["rice"], at=day(0))
    repurchase_reminders_create(now=day(30))

    assert notification_send_due(now=day(30)) == 1
    assert notification_send_due(now=day(31)) == 0

    assert [Notification.objects.get().pk] == SENT
    assert Notification.objects.get().status == "sent"


def test_given_a_failing_transport_then_the_error_is_kept_and_the_send_retried_later(goods, settings):
    settings.NOTIFICATION_TRANSPORT = "tests.commerce.test_repurchase.failing_transport"
    bought(goods["member"], goods["rice"], at=day(0))
    repurchase_reminders_create(now=day(30))

    assert notification_send_due(now=day(30)) == 0

    notification = Notification.objects.get()
    assert notification.status == "pending" and notification.attempts == 1
    assert "gateway down" in notification.last_error and notification.available_at > day(30)


def test_given_reminders_of_two_members_then_each_sees_only_their_own(goods):
    other = MembershipFactory(community=goods["community"])
    bought(goods["member"], goods["rice"], at=day(0))
    bought(other, goods["rice"], at=day(1))
    repurchase_reminders_create(now=day(31))

    response = client_for(goods["member"].user).get("/api/v1/me/reminders/")

    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 1 and set(data) >= {"count", "next", "previous", "results"}
    [row] = data["results"]
    assert row["kind"] == "repurchase" and row["community"] == goods["community"].slug
    assert row["product"] == {"id": goods["rice"].product_id, "title": "五常大米"}
    assert row["id"] == Reminder.objects.get(membership=goods["member"]).pk
    assert row["due_at"] and row["message"]


def test_given_no_login_when_reading_reminders_then_401(api_client):
    assert api_client.get("/api/v1/me/reminders/").status_code == 401


def test_given_buyers_when_rates_are_computed_then_repeat_shares_are_stored_per_scope(goods):
    repeat = goods["member"]
    once = MembershipFactory(community=goods["community"])
    other = MembershipFactory(community=goods["community"])
    bought(repeat, goods["rice"], at=day(0))
    bought(repeat, goods["rice"], at=day(30))
    bought(once, goods["rice"], at=day(1))
    bought(other, goods["tea"], at=day(2))

    repurchase_rates_refresh(now=day(40))

    assert repurchase_rate_for_community(community_id=goods["community"].pk) == Decimal("0.3333")
    rice = RepurchaseRate.objects.get(scope="product", product=goods["rice"].product)
    assert (rice.buyers, rice.repeat_buyers, rice.rate) == (2, 1, Decimal("0.5000"))
    tea = RepurchaseRate.objects.get(scope="product", product=goods["tea"].product)
    assert (tea.buyers, tea.repeat_buyers) == (1, 0)
    books = RepurchaseRate.objects.get(scope="category", category=category())
    assert (books.buyers, books.repeat_buyers) == (3, 1)
    assert repurchase_rates_refresh(now=day(40)) == RepurchaseRate.objects.count()  # replaced, not added


def test_the_set_based_due_query_agrees_with_the_per_pair_python_rule_on_random_histories():
    """PostgreSQL computes due dates (median of distinct gaps, half-even days); same answers as Python's."""
    rng = random.Random(19)
    community = CommunityFactory()
    skus = [
        SkuFactory(product=ProductFactory(community=community, repurchase_cycle_days=cycle), stock=500)
        for cycle in (None, None, 7, None)
    ]
    members = [MembershipFactory(community=community) for _ in range(5)]
    for member in members:
        for sku in rng.sample(skus, 3):
            at = day(rng.uniform(0, 5))
            for _ in range(rng.randint(1, 5)):
                bought(member, sku, at=at)
                at += timedelta(days=rng.choice([0.5, 1.5, 2, 3.25, 9, 12.5, 20]))
    Membership.objects.filter(pk=members[0].pk).update(status=Membership.Status.LEFT)

    def python_rule(now):
        today = business_day(now)
        first, last = today - timedelta(days=14), today + timedelta(days=1)
        active = {(m.user_id, m.community_id): m.pk for m in members[1:]}
        found = set()
        stream = repurchase._purchase_stream(since=now - timedelta(days=365))
        for buyer, community_id, product, purchases, cycle, _title in repurchase._pairs(stream):
            due_at = repurchase_due_at(purchases=purchases, cycle_days=cycle)
            if due_at and first <= business_day(due_at) <= last and (buyer, community_id) in active:
                found.add((active[buyer, community_id], product, due_at))
        return found

    checked = 0
    for n in range(0, 90, 3):
        now = day(n)
        today = business_day(now)
        rows = repurchase._due_rows_postgresql(
            since=now - timedelta(days=365),
            first_day=today - timedelta(days=14),
            last_day=today + timedelta(days=1),
        )
        assert {(m, p, due) for m, _c, p, due, _t in rows} == python_rule(now), n
        checked += len(rows)
    assert checked > 20  # the histories do fall due inside the windows


class _Rollback(Exception):
    pass


def _written(since_audit: int) -> dict:
    """What the reminder write left, by natural key (ids and insert times differ between runs)."""
    keys = {
        pk: (membership, kind, product, due_on.isoformat())
        for pk, membership, kind, product, due_on in Reminder.objects.values_list(
            "pk", "membership_id", "kind", "product_id", "due_on"
        )
    }
    skip = {"id", "created_at"}
    reminders = sorted(
        (keys[row["id"]], sorted((k, str(v)) for k, v in row.items() if k not in skip))
        for row in Reminder.objects.values()
    )
    notifications = sorted(
        (
            keys[row["reminder_id"]],
            sorted((k, str(v)) for k, v in row.items() if k not in {*skip, "reminder_id"}),
        )
        for row in Notification.objects.values()
    )
    audit = sorted(
        (
            keys[int(row["target_id"])],
            sorted((k, str(v)) for k, v in row.items() if k not in {*skip, "target_id"}),
        )
        for row in AuditEntry.objects.filter(pk__gt=since_audit, action="reminder.created").values()
    )
    return {"reminders": reminders, "notifications": notifications, "audit": audit}


@pytest.mark.parametrize("as_user", [False, True])
def test_the_set_based_reminder_write_writes_exactly_what_the_orm_write_writes(goods, as_user):
    from zoneinfo import ZoneInfo

    from django.db import transaction
    from django.utils import timezone

    from commerce.services import reminders as writer

    others = [MembershipFactory(community=goods["community"]) for _ in range(3)]
    now = timezone.now()
    due_at = (now + timedelta(days=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    batch = [
        Reminder(
            membership=member,
            community=goods["community"],
            kind=Reminder.Kind.REPURCHASE,
            product=sku.product,
            due_on=business_day(due_at),
            due_at=due_at,
            message=f"再买 {sku.product.title}",
        )
        for member in [goods["member"], *others]
        for sku in (goods["rice"], goods["tea"])
    ] + [
        Reminder(
            membership=member,
            community=goods["community"],
            kind=Reminder.Kind.RENEWAL,
            due_on=business_day(due_at),
            due_at=due_at.replace(microsecond=0),
            message="续费",
        )
        for member in others
    ]
    # One written by an earlier run (with its notification): both paths leave it alone.
    earlier = Reminder(**{f.attname: getattr(batch[0], f.attname) for f in Reminder._meta.concrete_fields})
    assert writer.reminders_write(reminders=[earlier], now=now, actor="job:repurchase_reminders") == 1
    actor = goods["member"].user if as_user else "job:repurchase_reminders"
    since_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def copies():
        return [
            Reminder(**{f.attname: getattr(r, f.attname) for f in Reminder._meta.concrete_fields})
            for r in batch
        ]

    results = {}
    for name, write in (("orm", writer._reminders_write_orm), ("sql", writer._reminders_write_postgresql)):
        try:
            with transaction.atomic():
                created = write(reminders=copies(), now=now, actor=actor)
                results[name] = (created, _written(since_audit))
                raise _Rollback
        except _Rollback:
            pass

    assert results["orm"][0] == results["sql"][0] == len(batch) - 1
    assert results["orm"][1] == results["sql"][1]
    assert len(results["sql"][1]["notifications"]) == len(batch)  # the earlier one included
    assert len(results["sql"][1]["audit"]) == len(batch) - 1


def test_renewal_rows_are_written_alike_by_both_paths(goods, monkeypatch):
    """``renewal_reminders_create`` hands ``ReminderRow`` tuples to the writer: the set-based write and
    the ORM write (which turns them into ``Reminder`` objects) leave the same rows."""
    from types import SimpleNamespace

    from django.db import transaction
    from django.utils import timezone

    from commerce.services import reminders as writer
    from commerce.services.renewals import renewal_reminders_create

    now = timezone.now()
    for days in (1, 3, 6):
        MembershipFactory(community=goods["community"], expires_at=now + timedelta(days=days, microseconds=7))
    since_audit = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    results = {}
    for name, vendor in (("orm", "sqlite"), ("sql", "postgresql")):
        monkeypatch.setattr(
            writer, "connection", SimpleNamespace(vendor=vendor, cursor=writer.connection.cursor)
        )
        try:
            with transaction.atomic():
                results[name] = (renewal_reminders_create(now=now), _written(since_audit))
                raise _Rollback
        except _Rollback:
            pass

    assert results["orm"] == results["sql"]
    assert results["sql"][0] == 3 and len(results["sql"][1]["notifications"]) == 3
