"""Reminders and order news as WeChat subscription messages, against the local mini-program server.

Consents (the ledger fed by /me/subscriptions/), the template fields cut to WeChat's limits,
43101, retries and dead letters, quiet hours, the daily cap, the shared access token and the
delivery report.
"""

import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from commerce.models import Notification, NotificationQuota, SubscriptionConsent
from commerce.selectors import notification_delivery_report
from commerce.services.notifications import QUIET_ZONE, notification_queue, notification_send_due
from commerce.services.orders import LineInput, order_create
from commerce.services.payments import payment_record_offline
from commerce.services.renewals import renewal_reminders_create
from commerce.services.repurchase import repurchase_reminders_create
from commerce.services.shipments import shipment_create
from commerce.services.subscription_messages import field_value
from members import wechat
from members.models import Membership
from members.services.addresses import address_create
from shequn_backend.audit import SYSTEM
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.jobs_helpers import bought, day
from tests.commerce.test_console_chinese import english_phrases
from tests.commerce.test_shipments import ADDRESS
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

TEMPLATES = {
    "repurchase": ("tpl-repurchase-0001", ["thing1", "date2", "thing3", "thing4"]),
    "renewal": ("tpl-renewal-0001", ["thing1", "date2", "thing3"]),
    "shipped": ("tpl-shipped-0001", ["character_string1", "thing2", "thing3", "character_string4", "time5"]),
    "payout": ("tpl-payout-0001", ["amount1", "phrase2", "time3", "thing4"]),
}
LONG_TITLE = "五常稻花香大米新米当季东北长粒香米十斤装家庭实惠装"  # 25 characters
MORNING = datetime(2025, 4, 2, 10, 0, tzinfo=QUIET_ZONE)


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    return (MORNING + timedelta(days=days)).replace(hour=hour, minute=minute)


@pytest.fixture
def wx(miniprogram_server, settings):
    for kind, (template, keys) in TEMPLATES.items():
        setattr(settings, f"WECHAT_TEMPLATE_{kind.upper()}", template)
        miniprogram_server.add_template(template, keys)
    settings.NOTIFICATION_TRANSPORT = ""  # the default: subscription messages, WeChat being configured
    cache.clear()
    yield miniprogram_server
    cache.clear()


@pytest.fixture
def shop(wx):
    community = CommunityFactory(name="稻香社")
    rice = SkuFactory(
        product=ProductFactory(community=community, title=LONG_TITLE, repurchase_cycle_days=30), stock=100
    )
    members = [
        MembershipFactory(community=community, user=UserFactory(wechat_openid=f"oMember{n:04d}"))
        for n in range(2)
    ]
    return {"community": community, "rice": rice, "members": members, "mp": wx}


def consent(wx, user, kind: str = "repurchase", times: int = 1) -> None:
    """The member accepts ``times`` in the mini-program: WeChat and our ledger both know it."""
    template = TEMPLATES[kind][0]
    for _ in range(times):
        response = client_for(user).post(
            "/api/v1/me/subscriptions/", {"results": {template: "accept"}}, format="json"
        )
        assert response.status_code == 200, response.content
    wx.subscribe(user.wechat_openid, template, times)


def ledger(user, kind: str = "repurchase") -> int:
    row = SubscriptionConsent.objects.filter(user=user, template_id=TEMPLATES[kind][0]).first()
    return row.remaining if row else 0


def queue(user, *, kind="shipped", community=None, key=None, **data) -> Notification:
    return notification_queue(
        actor=SYSTEM,
        user=user,
        kind=kind,
        community=community,
        key=key,
        title="标题",
        body="您的订单已发货",
        data={"order_no": "1", "items": "大米×1", "carrier": "顺丰速运", "tracking_no": "SF1", **data},
        now=MORNING,
    )


def warm(wx) -> None:
    """Fetch the access token now, so that the next call WeChat answers is the message itself."""
    wechat.access_token()
    assert wx.calls[-1][0] == "/cgi-bin/stable_token"


def soon() -> datetime:
    """A moment just after rows queued with the real clock (tests using it turn quiet hours off)."""
    return timezone.now() + timedelta(minutes=1)


def sends(wx) -> list[dict]:
    return [data for path, _q, data in wx.calls if path == "/cgi-bin/message/subscribe/send"]


# --- Consent and the message itself ---------------------------------------------------------------


def test_due_reminders_reach_wechat_only_where_the_member_consented(shop):
    willing, silent = (m.user for m in shop["members"])
    for membership in shop["members"]:
        bought(membership, shop["rice"], at=day(0))
    repurchase_reminders_create(now=day(30))
    consent(shop["mp"], willing)

    assert notification_send_due(now=day(30)) == 1

    [message] = shop["mp"].sent_messages
    assert message["touser"] == willing.wechat_openid
    assert message["template_id"] == "tpl-repurchase-0001"
    assert message["data"] == {
        "thing1": {"value": LONG_TITLE[:19] + "…"},
        "date2": {"value": "2025年4月2日"},
        "thing3": {"value": "稻香社"},
        "thing4": {"value": field_value("thing4", Notification.objects.get(user=willing).body)},
    }
    assert ledger(willing) == 0
    mine = Notification.objects.get(user=willing)
    assert mine.status == "sent" and mine.consent_spent and mine.msgid == str(message["msgid"])
    theirs = Notification.objects.get(user=silent)
    assert theirs.status == "no_consent" and not theirs.consent_spent
    assert len(sends(shop["mp"])) == 1  # nothing was even tried without a consent
    reminders = client_for(silent).get("/api/v1/me/reminders/").json()
    assert [r["kind"] for r in reminders["results"]] == ["repurchase"]  # the reminder stays


def test_a_renewal_reminder_names_the_community_and_the_expiry(shop):
    membership = shop["members"][1]
    Membership.objects.filter(pk=membership.pk).update(expires_at=at(20, days=3))
    renewal_reminders_create(now=MORNING)
    consent(shop["mp"], membership.user, "renewal")

    assert notification_send_due(now=MORNING) == 1

    [message] = shop["mp"].sent_messages
    assert (message["touser"], message["template_id"]) == ("oMember0001", "tpl-renewal-0001")
    assert message["data"]["thing1"] == {"value": "稻香社"}
    assert message["data"]["date2"] == {"value": "2025年4月5日"}
    assert Notification.objects.get().kind == "renewal"


def test_a_notification_sent_again_does_not_spend_a_second_consent(shop):
    user = shop["members"][0].user
    bought(shop["members"][0], shop["rice"], at=day(0))
    repurchase_reminders_create(now=day(30))
    consent(shop["mp"], user, times=2)

    assert notification_send_due(now=day(30)) == 1
    assert notification_send_due(now=day(30) + timedelta(hours=1)) == 0

    assert ledger(user) == 1 and len(shop["mp"].sent_messages) == 1


def test_43101_spends_the_consent_without_a_message(shop):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")
    shop["mp"].consents.clear()  # the member turned the messages off in WeChat since

    assert notification_send_due(now=MORNING) == 0

    notification.refresh_from_db()
    assert notification.status == "no_consent" and notification.last_error.startswith("43101")
    assert notification.consent_spent and ledger(user, "shipped") == 0
    assert shop["mp"].sent_messages == []


def test_no_wechat_identity_or_no_template_is_not_sendable(shop, settings):
    stranger = MembershipFactory(community=shop["community"]).user  # never logged in with WeChat
    settings.WECHAT_TEMPLATE_PAYOUT = ""
    queue(stranger)
    payout = queue(shop["members"][0].user, kind="payout", amount="1.00")

    assert notification_send_due(now=MORNING) == 0

    assert set(Notification.objects.values_list("status", flat=True)) == {"skipped"}
    assert "no template" in Notification.objects.get(pk=payout.pk).last_error
    assert sends(shop["mp"]) == []


def test_a_shipment_tells_the_buyer_once_with_its_tracking_number(shop, settings):
    membership = shop["members"][0]
    buyer = membership.user
    address = address_create(actor=buyer, user=buyer, **ADDRESS)
    placed = order_create(
        actor=buyer,
        buyer=buyer,
        community=shop["community"],
        lines=[LineInput(shop["rice"].pk, 2)],
        address_id=address.pk,
    ).order
    order = payment_record_offline(actor=shop["community"].owner, order_id=placed.pk, reference="cash-1")
    shipment = shipment_create(
        actor=shop["community"].owner, order_id=order.pk, carrier="SF", tracking_no="SF1234"
    )
    consent(shop["mp"], membership.user, "shipped")
    settings.QUIET_HOURS = ""

    assert notification_send_due(now=soon()) == 1

    notification = Notification.objects.get(kind="shipped")
    assert notification.key == f"shipment:{shipment.pk}" and notification.community == shop["community"]
    [message] = shop["mp"].sent_messages
    local = shipment.shipped_at.astimezone(QUIET_ZONE)
    assert message["template_id"] == "tpl-shipped-0001" and message["touser"] == "oMember0000"
    assert message["data"] == {
        "character_string1": {"value": str(order.pk)},
        "thing2": {"value": f"{LONG_TITLE}×2"[:19] + "…"},
        "thing3": {"value": "顺丰速运"},
        "character_string4": {"value": "SF1234"},
        "time5": {"value": f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"},
    }


def test_the_same_key_queues_one_notification(shop):
    user = shop["members"][0].user
    assert queue(user, kind="payout", key="withdrawal:7:paid", amount="10.00") is not None
    assert queue(user, kind="payout", key="withdrawal:7:paid", amount="10.00") is None
    assert Notification.objects.filter(key="withdrawal:7:paid").count() == 1


def test_a_payout_message_shapes_amount_phrase_and_time(shop):
    user = shop["members"][0].user
    queue(user, kind="payout", amount=Decimal("1234.5"), status="已到账 (paid)", time=at(9, 30))
    consent(shop["mp"], user, "payout")

    assert notification_send_due(now=MORNING) == 1

    assert shop["mp"].sent_messages[0]["data"] == {
        "amount1": {"value": "¥1234.50"},
        "phrase2": {"value": "已到账"},
        "time3": {"value": "2025年4月2日 09:30"},
        "thing4": {"value": "您的订单已发货"},
    }


@pytest.mark.parametrize(
    ("key", "value", "shaped"),
    [
        ("thing1", "一二三四五六七八九十一二三四五六七八九十", "一二三四五六七八九十一二三四五六七八九十"),
        ("thing1", "一二三四五六七八九十一二三四五六七八九十多", "一二三四五六七八九十一二三四五六七八九…"),
        ("character_string2", "订单 AB-12_34", "AB-12_34"),
        ("character_string2", "x" * 40, "x" * 32),
        ("phrase3", "已发货了哦啊呀", "已发货了哦"),
        ("phrase3", "OK", "无"),
        ("name4", "欧阳娜娜娜娜娜娜娜娜娜", "欧阳娜娜娜娜娜娜娜娜"),
        ("name4", "Alexander Hamilton Jr", "Alexander Hamilton J"),
        ("amount5", Decimal("99"), "¥99.00"),
        ("number6", "12 件", "12"),
        ("date7", "2025-04-02", "2025年4月2日"),
        ("time8", "2025-04-02T01:05:00+00:00", "2025年4月2日 09:05"),
        ("thing9", "", "-"),
    ],
)
def test_values_are_cut_to_wechats_limit_for_the_key_type(key, value, shaped):
    assert field_value(key, value) == shaped


# --- /me/subscriptions/ -------------------------------------------------------------------------


def test_the_ledger_counts_accepts_and_a_ban_clears_it(shop):
    user = shop["members"][0].user
    api = client_for(user)
    url = "/api/v1/me/subscriptions/"
    zero = {template: 0 for template, _keys in TEMPLATES.values()}

    assert api.get(url).json() == zero
    api.post(url, {"results": {"tpl-repurchase-0001": "accept", "tpl-shipped-0001": "accept"}}, format="json")
    answer = api.post(
        url, {"results": {"tpl-repurchase-0001": "accept", "tpl-payout-0001": "reject"}}, format="json"
    )

    assert answer.status_code == 200
    assert answer.json() == zero | {"tpl-repurchase-0001": 2, "tpl-shipped-0001": 1}
    banned = api.post(url, {"results": {"tpl-repurchase-0001": "ban"}}, format="json").json()
    assert banned == zero | {"tpl-shipped-0001": 1}
    assert client_for(shop["members"][1].user).get(url).json() == zero  # each member their own


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ({"tpl-repurchase-0001": "accept", "tpl-someone-else": "accept"}, "results.tpl-someone-else"),
        ({"tpl-repurchase-0001": "maybe"}, "results.tpl-repurchase-0001"),
        ({}, "results"),
        ("accept", "results"),
    ],
)
def test_bad_results_are_refused_and_nothing_is_written(shop, results, field):
    response = client_for(shop["members"][0].user).post(
        "/api/v1/me/subscriptions/", {"results": results}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert not SubscriptionConsent.objects.exists()


def test_the_ledger_needs_a_login(api_client):
    assert api_client.get("/api/v1/me/subscriptions/").status_code == 401
    assert api_client.post("/api/v1/me/subscriptions/", {}, format="json").status_code == 401


# --- Retries and dead letters ---------------------------------------------------------------------


def test_a_busy_wechat_is_retried_with_backoff_then_the_message_goes(shop):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")
    warm(shop["mp"])
    shop["mp"].fail_next(-1, "system error")
    first = notification_send_due(now=MORNING)

    notification.refresh_from_db()
    assert first == 0 and notification.status == "pending" and notification.attempts == 1
    assert (
        notification.available_at == MORNING + timedelta(minutes=2)
        and notification.last_error == "-1 system error"
    )
    assert notification_send_due(now=MORNING + timedelta(minutes=1)) == 0  # not yet due
    assert notification_send_due(now=MORNING + timedelta(minutes=2)) == 1
    assert ledger(user, "shipped") == 0 and len(shop["mp"].sent_messages) == 1  # one consent for both tries


def test_a_gateway_error_is_retried(shop):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")
    warm(shop["mp"])
    shop["mp"].fail_http_next(502)

    assert notification_send_due(now=MORNING) == 0

    notification.refresh_from_db()
    assert notification.status == "pending" and "WechatUnavailable" in notification.last_error
    assert notification_send_due(now=MORNING + timedelta(minutes=2)) == 1


def test_a_timeout_is_retried(shop, settings):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")
    warm(shop["mp"])
    settings.WECHAT_TIMEOUT_SECONDS = 0.2
    shop["mp"].hang = 0.5

    assert notification_send_due(now=MORNING) == 0

    notification.refresh_from_db()
    assert notification.status == "pending" and "WechatUnavailable" in notification.last_error
    shop["mp"].hang = 0
    assert notification_send_due(now=MORNING + timedelta(minutes=2)) == 1


def test_a_refusal_is_a_dead_letter_at_once(shop):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")
    warm(shop["mp"])
    shop["mp"].fail_next(47003, "argument invalid! data.thing2.value invalid")

    assert notification_send_due(now=MORNING) == 0

    notification.refresh_from_db()
    assert (
        notification.status == "failed"
        and notification.attempts == 1
        and notification.last_error.startswith("47003")
    )


def test_dead_letters_are_resent_from_the_admin_of_their_community_only(shop, settings, client):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    user = shop["members"][0].user
    notification = queue(user, community=shop["community"])
    consent(shop["mp"], user, "shipped")
    warm(shop["mp"])
    shop["mp"].fail_next(-1, count=2)
    notification_send_due(now=MORNING)
    notification_send_due(now=MORNING + timedelta(minutes=2))
    notification.refresh_from_db()
    assert notification.status == "failed" and notification.attempts == 2

    changelist = reverse("admin:commerce_notification_changelist")
    client.force_login(CommunityFactory().owner)  # another owner
    assert notification.pk not in [n.pk for n in client.get(changelist).context["cl"].queryset]
    client.post(changelist, {"action": "resend_selected", "_selected_action": [notification.pk]})
    notification.refresh_from_db()
    assert notification.status == "failed"

    client.force_login(shop["community"].owner)
    listed = client.get(changelist + "?status__exact=failed")
    assert [n.pk for n in listed.context["cl"].queryset] == [notification.pk]
    response = client.post(
        changelist, {"action": "resend_selected", "_selected_action": [notification.pk]}, follow=True
    )

    assert "1 条通知已重新排队" in response.content.decode()
    notification.refresh_from_db()
    assert notification.status == "pending" and notification.attempts == 0
    settings.QUIET_HOURS = ""
    assert notification_send_due(now=soon()) == 1
    assert ledger(user, "shipped") == 0 and len(shop["mp"].sent_messages) == 1


# --- Quiet hours and the daily cap ----------------------------------------------------------------


def test_quiet_hours_hold_messages_until_eight(shop):
    user = shop["members"][0].user
    notification = queue(user)
    consent(shop["mp"], user, "shipped")

    assert notification_send_due(now=at(22, 0)) == 0
    assert notification_send_due(now=at(7, 59, days=1)) == 0
    notification.refresh_from_db()
    assert notification.status == "pending" and notification.attempts == 0 and shop["mp"].calls == []

    assert notification_send_due(now=at(8, 0, days=1)) == 1


def test_no_quiet_hours_when_the_setting_is_empty(shop, settings):
    settings.QUIET_HOURS = ""
    user = shop["members"][0].user
    queue(user)
    consent(shop["mp"], user, "shipped")

    assert notification_send_due(now=at(23, 30)) == 1


def test_the_daily_cap_holds_the_rest_until_the_next_morning(shop, settings):
    settings.NOTIFICATION_DAILY_CAP = 2
    user = shop["members"][0].user
    other = shop["members"][1].user
    for n in range(3):
        queue(user, key=f"news:{n}")
    queue(other)
    consent(shop["mp"], user, "shipped", times=3)
    consent(shop["mp"], other, "shipped")

    assert notification_send_due(now=at(10)) == 3  # two for the first member, one for the other
    assert notification_send_due(now=at(21)) == 0

    [held] = Notification.objects.filter(status="pending")
    assert held.user == user and held.available_at == at(8, days=1) and held.attempts == 0
    assert notification_send_due(now=at(8, days=1)) == 1
    assert [m["touser"] for m in shop["mp"].sent_messages].count(user.wechat_openid) == 3


def test_each_run_prunes_the_daily_counts_of_days_before_yesterday(shop, settings):
    settings.NOTIFICATION_DAILY_CAP = 2
    user = shop["members"][0].user
    queue(user)
    consent(shop["mp"], user, "shipped")
    assert notification_send_due(now=at(10)) == 1
    today = at(10).astimezone(QUIET_ZONE).date()
    for days in (1, 2, 30):
        NotificationQuota.objects.create(user=user, day=today - timedelta(days=days), used=2)

    notification_send_due(now=at(22))  # quiet hours: nothing is sent, the counts are still pruned

    kept = NotificationQuota.objects.filter(user=user).order_by("-day").values_list("day", "used")
    assert list(kept) == [(today, 1), (today - timedelta(days=1), 2)]


# --- The access token -----------------------------------------------------------------------------


def test_a_token_about_to_expire_is_refreshed_before_it_does(wx, monkeypatch):
    first = wechat.access_token()
    assert wechat.access_token() == first and wx.calls[-1][0] == "/cgi-bin/stable_token"  # cached
    later = time.time() + 7200 - 200  # the token's last minutes
    monkeypatch.setattr(wechat.time, "time", lambda: later)
    wx.clock = lambda: later

    fresh = wechat.access_token()

    assert fresh != first and [p for p, _q, _d in wx.calls].count("/cgi-bin/stable_token") == 2
    assert wechat.access_token() == fresh  # cached again for its whole life
    assert [p for p, _q, _d in wx.calls].count("/cgi-bin/stable_token") == 2
    user = UserFactory(wechat_openid="oLate0001")
    wx.subscribe(user.wechat_openid, TEMPLATES["payout"][0], 2)
    message = {
        "touser": user.wechat_openid,
        "template_id": TEMPLATES["payout"][0],
        "data": {key: {"value": field_value(key, "1")} for key in TEMPLATES["payout"][1]},
    }
    for token in (first, fresh):  # the old token still works until it expires
        answer = wechat.post_json("/cgi-bin/message/subscribe/send", message, params={"access_token": token})
        assert answer["errcode"] == 0


def test_a_rejected_token_is_refreshed_once_and_the_message_sent(shop):
    user = shop["members"][0].user
    queue(user)
    consent(shop["mp"], user, "shipped")
    wechat.access_token()
    shop["mp"].expire_token()

    assert notification_send_due(now=MORNING) == 1

    tokens = [data for path, _q, data in shop["mp"].calls if path == "/cgi-bin/stable_token"]
    assert [token["force_refresh"] for token in tokens] == [False, False]  # expired: normal mode renews it


# --- The delivery report ----------------------------------------------------------------------------


def test_the_delivery_report_counts_per_kind_and_community_on_the_dashboard(shop, client):
    community = shop["community"]
    user = shop["members"][0].user
    elsewhere = CommunityFactory()
    statuses = {
        ("shipped", "sent"): 3,
        ("shipped", "no_consent"): 2,
        ("shipped", "failed"): 1,
        ("repurchase", "no_consent"): 4,
        ("payout", "pending"): 1,
    }
    for (kind, status), count in statuses.items():
        for _ in range(count):
            queue(user, kind=kind, community=community)
            Notification.objects.filter(pk=Notification.objects.latest("pk").pk).update(status=status)
    queue(user, community=elsewhere)
    Notification.objects.filter(community=elsewhere).update(status="sent")

    report = {
        row.kind: row
        for row in notification_delivery_report(community=community, since=MORNING - timedelta(days=1))
    }

    assert (report["shipped"].sent, report["shipped"].no_consent, report["shipped"].failed) == (3, 2, 1)
    assert (report["repurchase"].sent, report["repurchase"].no_consent) == (0, 4)
    assert report["payout"].waiting == 1 and report["renewal"].sent == 0
    client.force_login(community.owner)
    page = client.get(reverse("admin:members_community_dashboard", args=[community.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and 'id="delivery-report"' in html
    assert page.context["delivery_report"][2].sent == 3  # shipped, on the community's own page


def test_the_notification_pages_read_in_chinese(shop, client):
    community = shop["community"]
    user = shop["members"][0].user
    for kind, status in (("shipped", "failed"), ("repurchase", "no_consent"), ("payout", "skipped")):
        queue(user, kind=kind, community=community)
        Notification.objects.filter(pk=Notification.objects.latest("pk").pk).update(
            status=status, last_error="-1 system error"
        )
    client.force_login(community.owner)
    changelist = reverse("admin:commerce_notification_changelist")
    pages = {
        "list": client.get(changelist),
        "one": client.get(
            reverse("admin:commerce_notification_change", args=[Notification.objects.first().pk])
        ),
        "dashboard": client.get(reverse("admin:members_community_dashboard", args=[community.pk])),
        "resend": client.post(
            changelist,
            {
                "action": "resend_selected",
                "_selected_action": list(Notification.objects.values_list("pk", flat=True)),
            },
            follow=True,
        ),
    }

    for name, page in pages.items():
        assert page.status_code == 200, name
        assert english_phrases(page.content.decode()) == [], name
    assert (
        "未获订阅" in pages["list"].content.decode()
        and "只有发送失败的通知可以重新发送" in pages["resend"].content.decode()
    )
