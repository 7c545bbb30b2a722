"""The notification sender's two paths: PostgreSQL's set-based statements and the ORM's, the same rows.

One batch exercises every branch of a claim: the daily cap (a member over
it, a member with slots already used, a retry keeping its slot), what the
transport settles without sending, a transient failure (retried with
backoff), the last attempt (a dead letter), a refusal and WeChat's message
ids; both paths must leave the same notifications and daily counts.
"""

from datetime import datetime, timedelta

import pytest
from django.db import connection, transaction

from commerce.models import Notification, NotificationQuota
from commerce.services import notifications as sender
from commerce.services.notifications import QUIET_ZONE, Delivery, notification_queue, notification_send_due
from shequn_backend.audit import SYSTEM
from tests.members.factories import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the set-based path is PostgreSQL's"),
]

NOW = datetime(2025, 4, 2, 10, 0, tzinfo=QUIET_ZONE)


class ScriptedTransport:
    """Settles "skip" in ``prepare``; the rest go by their body: flaky (retry), refused (failed), or sent."""

    def prepare(self, notifications, now):
        return {
            n.pk: Delivery("skipped", "nothing to send it with") for n in notifications if n.body == "skip"
        }

    def send(self, notification):
        if notification.body == "flaky":
            return Delivery("retry", "busy")
        if notification.body == "refused":
            return Delivery("failed", "refused")
        return Delivery("sent", msgid=f"msg-{notification.key}")


SCRIPTED = ScriptedTransport()


class _Rollback(Exception):
    pass


@pytest.fixture
def scripted(settings):
    settings.NOTIFICATION_TRANSPORT = "tests.commerce.test_notification_sender_paths.SCRIPTED"
    settings.NOTIFICATION_DAILY_CAP = 2
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    settings.NOTIFICATION_CONCURRENCY = 4
    settings.QUIET_HOURS = ""


def _queue(user, key: str, body: str, **fields) -> None:
    notification_queue(
        actor=SYSTEM, user=user, kind="shipped", title="发货", body=body, data={}, key=key, now=NOW
    )
    if fields:
        Notification.objects.filter(key=key).update(**fields)


def _scenario(users) -> None:
    crowded, flaky, odd, counted, kept = users
    today = NOW.date()
    for n in range(3):  # over the cap of 2: the last waits for the next morning
        _queue(crowded, f"crowded-{n}", "ok")
    _queue(flaky, "flaky-first", "flaky")  # retried with backoff
    _queue(flaky, "flaky-last", "flaky", attempts=2)  # its third attempt: a dead letter
    _queue(odd, "odd-skip", "skip")  # settled by the transport: takes no slot
    _queue(odd, "odd-refused", "refused")
    NotificationQuota.objects.create(user=counted, day=today, used=1)  # one slot left
    _queue(counted, "counted-0", "ok")
    _queue(counted, "counted-1", "ok")
    NotificationQuota.objects.create(user=kept, day=today, used=2)  # full, but this retry holds a slot
    _queue(kept, "kept", "ok", quota_day=today, attempts=1)
    _queue(kept, "kept-later", "ok", available_at=NOW + timedelta(hours=1))  # not due


def _rows() -> dict:
    return {
        "notifications": sorted(
            Notification.objects.values_list(
                "key", "status", "attempts", "available_at", "sent_at", "quota_day", "last_error", "msgid"
            )
        ),
        "quotas": sorted(NotificationQuota.objects.values_list("user_id", "day", "used")),
    }


@pytest.mark.parametrize("batch_size", [None, 3])
def test_both_paths_write_the_same_rows(scripted, monkeypatch, batch_size):
    users = [UserFactory() for _ in range(5)]
    results = {}
    for name, set_based in (("orm", False), ("sql", True)):
        monkeypatch.setattr(sender, "_set_based", lambda set_based=set_based: set_based)
        try:
            with transaction.atomic():
                _scenario(users)
                results[name] = (notification_send_due(now=NOW, batch_size=batch_size), _rows())
                raise _Rollback
        except _Rollback:
            pass

    assert results["orm"] == results["sql"]
    sent, rows = results["sql"]
    assert sent == 4  # two of crowded's, one of counted's, kept
    by_key = {row[0]: row[1:] for row in rows["notifications"]}
    next_morning = datetime(2025, 4, 3, 0, 0, tzinfo=QUIET_ZONE)  # no quiet hours: midnight
    assert [by_key[f"crowded-{n}"][0] for n in range(3)] == ["sent", "sent", "pending"]
    assert by_key["crowded-2"][1:4] == (0, next_morning, None)
    assert by_key["crowded-0"][6] == "msg-crowded-0"
    assert by_key["flaky-first"][:3] == ("pending", 1, NOW + timedelta(minutes=2))
    assert by_key["flaky-last"][:2] == ("failed", 3)
    assert by_key["odd-skip"][0] == "skipped" and by_key["odd-skip"][4] is None
    assert by_key["odd-refused"][0] == "failed"
    assert sorted(by_key[f"counted-{n}"][0] for n in range(2)) == ["pending", "sent"]
    assert by_key["kept"][0] == "sent" and by_key["kept-later"][:2] == ("pending", 0)
    users_used = {user_id: used for user_id, _day, used in rows["quotas"]}
    crowded, flaky, odd, counted, kept = (user.pk for user in users)
    assert users_used == {crowded: 2, flaky: 2, odd: 1, counted: 2, kept: 2}
