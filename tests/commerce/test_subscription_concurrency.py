"""Subscription messages under concurrency: consents and daily slots spent once across senders,
one access-token fetch for many senders, and the sender's bounded parallel batches."""

import threading
import time
from datetime import datetime, timedelta

import pytest
from django.core.cache import cache

from commerce.models import Notification, NotificationQuota, SubscriptionConsent
from commerce.services.notifications import QUIET_ZONE, notification_queue, notification_send_due
from commerce.services.subscriptions import subscription_results_record
from members import wechat
from members.models import User
from shequn_backend.audit import SYSTEM
from tests.commerce.test_concurrency import run_together
from tests.members.factories import CommunityFactory, UserFactory

TEMPLATE, KEYS = "tpl-shipped-0001", ["character_string1", "thing2", "thing3", "character_string4", "time5"]
NOW = datetime(2025, 4, 2, 10, 0, tzinfo=QUIET_ZONE)
TOKEN = "/cgi-bin/stable_token"


@pytest.fixture
def wx(miniprogram_server, settings):
    settings.WECHAT_TEMPLATE_SHIPPED = TEMPLATE
    settings.NOTIFICATION_TRANSPORT = ""
    miniprogram_server.add_template(TEMPLATE, KEYS)
    cache.clear()
    yield miniprogram_server
    cache.clear()


def shipped_news(user, count: int, community=None) -> None:
    for n in range(count):
        notification_queue(
            actor=SYSTEM,
            user=user,
            kind="shipped",
            community=community,
            title="发货",
            body="已发货",
            data={"order_no": str(n), "items": "大米×1", "carrier": "顺丰速运", "tracking_no": f"SF{n}"},
            now=NOW,
        )


def accept(wx, user, times: int, *, wechat_side: int | None = None) -> None:
    for _ in range(times):
        subscription_results_record(actor=user, user=user, results={TEMPLATE: "accept"})
    wx.subscribe(user.wechat_openid, TEMPLATE, times if wechat_side is None else wechat_side)


def senders(count: int, **kwargs) -> list[int]:
    return run_together(
        [lambda: notification_send_due(now=NOW, **kwargs) for _ in range(count)], threads=count
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_concurrent_senders_spend_each_consent_exactly_once(wx, settings):
    settings.NOTIFICATION_DAILY_CAP = 0
    user = UserFactory(wechat_openid="oRacer0001")
    shipped_news(user, 10)
    accept(wx, user, 4, wechat_side=10)  # WeChat would take more: only our ledger limits

    sent = senders(4, batch_size=1)

    assert sum(sent) == 4 and len(wx.sent_messages) == 4
    assert SubscriptionConsent.objects.get(user=user).remaining == 0
    statuses = list(Notification.objects.values_list("status", flat=True))
    assert statuses.count("sent") == 4 and statuses.count("no_consent") == 6
    assert Notification.objects.filter(consent_spent=True).count() == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_concurrent_senders_keep_to_the_daily_cap(wx, settings):
    settings.NOTIFICATION_DAILY_CAP = 3
    user = UserFactory(wechat_openid="oRacer0002")
    shipped_news(user, 8)
    accept(wx, user, 8)

    sent = senders(4, batch_size=1)

    assert sum(sent) == 3 and len(wx.sent_messages) == 3
    assert NotificationQuota.objects.get(user=user).used == 3
    assert Notification.objects.filter(status="pending").count() == 5


@pytest.mark.django_db
def test_many_callers_at_once_fetch_the_token_once(wx):
    wx.hang = 0.2  # a slow WeChat: every caller arrives while the first fetch is under way
    tokens, barrier = [], threading.Barrier(12)

    def caller():
        barrier.wait(timeout=10)
        tokens.append(wechat.access_token())

    threads = [threading.Thread(target=caller) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert len(tokens) == 12 and len(set(tokens)) == 1
    assert [path for path, _q, _d in wx.calls].count(TOKEN) == 1


@pytest.mark.django_db
def test_parallel_senders_replace_a_rejected_token_once(wx, settings):
    users = User.objects.bulk_create(
        [User(username=f"rejected{n}", wechat_openid=f"oRejected{n:03d}", password="!") for n in range(16)]
    )
    for user in users:
        shipped_news(user, 1)
        accept(wx, user, 1)
    wechat.access_token()
    wx.expire_token()  # every sender is refused (42001) with the same token
    wx.hang = 0.05

    assert notification_send_due(now=NOW) == 16

    forced = [data["force_refresh"] for path, _q, data in wx.calls if path == TOKEN]
    assert forced == [False, False]  # one renewal for all 16 (normal mode: the token had expired)


@pytest.mark.django_db
def test_a_100_ms_wechat_still_takes_100_messages_in_about_a_second(wx, settings):
    """Issue 19: bounded parallel batches reach 200 messages/s against a transport answering in 100 ms."""
    settings.NOTIFICATION_CONCURRENCY = 32
    community = CommunityFactory()
    users = User.objects.bulk_create(
        [User(username=f"fast{n}", wechat_openid=f"oFast{n:04d}", password="!") for n in range(100)]
    )
    for user in users:
        shipped_news(user, 1, community)
        accept(wx, user, 1)
    wechat.access_token()
    wx.hang = 0.1
    in_flight, peak, lock = [0], [0], threading.Lock()
    handle = wx.handle

    def counted(*args):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            return handle(*args)
        finally:
            with lock:
                in_flight[0] -= 1

    wx.handle = counted
    started = time.monotonic()

    assert notification_send_due(now=NOW) == 100

    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed  # one at a time: 10 s
    assert 8 < peak[0] <= 32
    assert len(wx.sent_messages) == 100


class SlowTransport:
    """A transport that answers in 100 ms and counts how many calls overlap."""

    def __init__(self):
        self.lock, self.in_flight, self.peak, self.calls = threading.Lock(), 0, 0, 0

    def prepare(self, notifications, now):
        return {}

    def send(self, notification):
        from commerce.services.notifications import SENT

        with self.lock:
            self.in_flight += 1
            self.calls += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.1)
        with self.lock:
            self.in_flight -= 1
        return SENT


SLOW = SlowTransport()


@pytest.mark.django_db
def test_concurrency_is_bounded_by_the_setting(settings):
    settings.NOTIFICATION_TRANSPORT = "tests.commerce.test_subscription_concurrency.SLOW"
    settings.NOTIFICATION_CONCURRENCY = 10
    settings.NOTIFICATION_DAILY_CAP = 0
    SLOW.peak = SLOW.calls = 0
    user = UserFactory()
    shipped_news(user, 60)
    started = time.monotonic()

    assert notification_send_due(now=NOW + timedelta(minutes=1)) == 60

    assert SLOW.peak == 10 and SLOW.calls == 60
    assert time.monotonic() - started < 3  # 6 rounds of 0.1 s, not 60


class BrokenCache:
    """What django-redis answers with DJANGO_REDIS_IGNORE_EXCEPTIONS while Redis is down."""

    def get(self, key, default=None):
        return default

    def add(self, *args, **kwargs):
        return None

    def set(self, *args, **kwargs):
        return None

    def delete(self, *args, **kwargs):
        return None


@pytest.mark.django_db
def test_a_cache_that_keeps_nothing_does_not_stall_the_token(wx, monkeypatch):
    """Redis down: no lock can be taken, so the caller fetches the token itself without waiting."""
    monkeypatch.setattr(wechat, "cache", BrokenCache())
    started = time.monotonic()

    assert wechat.access_token() and wechat.access_token()

    assert time.monotonic() - started < 1
    assert [path for path, _q, _d in wx.calls].count(TOKEN) == 2
