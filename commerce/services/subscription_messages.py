"""WeChat subscription messages (订阅消息) as the notification transport.

Each kind has its template (``WECHAT_TEMPLATE_*``) and field mapping
(``WECHAT_TEMPLATE_FIELDS``: kind -> {template key: source}, the source a key
of the notification's ``data``, or ``title``/``body``). Values are shaped and
cut to WeChat's limits for the key's type (the name without its digits:
``thing3`` is a thing, at most 20 characters).

``prepare`` (the sender's thread, database) spends one of the member's
consents per message, and settles the messages that cannot go: no template
or no WeChat identity (skipped), no consent left (no_consent). ``send`` (any
thread, no database) calls ``/cgi-bin/message/subscribe/send``: 43101 (the
member refused) spends the consent without a message; -1, 45009/45011,
network trouble, 5xx and timeouts are retried; anything else is a dead letter.
"""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.dateparse import parse_date, parse_datetime

from commerce.models import Notification
from commerce.services.notifications import QUIET_ZONE, Delivery
from commerce.services.subscriptions import consents_spend, subscription_templates
from members import wechat
from members.errors import WechatBadAnswer, WechatBusy, WechatUnavailable

SEND_PATH = "/cgi-bin/message/subscribe/send"
REFUSED = 43101
RETRY_ERRCODES = {-1, 45009, 45011, 40001, 42001}
ELLIPSIS = "…"
# The longest value per key type (characters), from WeChat's documentation of subscribeMessage.send.
LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "name": 10,  # 10 Chinese characters, or 20 letters when there is no Chinese
    "phrase": 5,
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def key_type(key: str) -> str:
    """``thing12`` -> ``thing``."""
    return re.sub(r"\d+$", "", key)


def _cut(text: str, limit: int, *, mark: bool = False) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS if mark else text[:limit]


def _moment(text: str) -> datetime | None:
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        return datetime(day.year, day.month, day.day, tzinfo=QUIET_ZONE) if day else None
    return moment if moment.tzinfo else moment.replace(tzinfo=QUIET_ZONE)


def _chinese_date(moment: datetime) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"


def field_value(key: str, value) -> str:
    """``value`` shaped for a template key of WeChat's type: cut to its limit, never empty."""
    kind, text = key_type(key), " ".join(str(value if value is not None else "").split())
    if kind in ("time", "date"):
        moment = _moment(text)
        if moment is not None:
            local = moment.astimezone(QUIET_ZONE)
            text = _chinese_date(local) + (f" {local:%H:%M}" if kind == "time" else "")
        return _cut(text, 64) or "-"
    if kind == "amount":
        try:
            amount = Decimal(text.lstrip("¥￥").removesuffix("元")).quantize(Decimal("0.01"))
        except InvalidOperation:
            return "¥0.00"
        return "¥" + _cut(f"{abs(amount):.2f}", 11)
    if kind == "phrase":
        return _cut("".join(CJK.findall(text)), LIMITS["phrase"]) or "无"
    if kind == "number":
        return _cut(re.sub(r"[^0-9.]", "", text), LIMITS["number"]) or "0"
    if kind == "letter":
        return _cut(re.sub(r"[^A-Za-z]", "", text), LIMITS["letter"]) or "-"
    if kind == "character_string":
        return _cut(re.sub(r"[^\x21-\x7e]", "", text), LIMITS["character_string"]) or "-"
    if kind == "name":
        return _cut(text, LIMITS["name"] if CJK.search(text) else 20, mark=False) or "-"
    return _cut(text, LIMITS.get(kind, 20), mark=kind == "thing") or "-"


def message_data(notification: Notification) -> dict:
    """The template's ``data`` for ``notification``: each mapped key with its value shaped."""
    mapping = settings.WECHAT_TEMPLATE_FIELDS.get(notification.kind, {})
    sources = {"title": notification.title, "body": notification.body, **(notification.data or {})}
    return {key: {"value": field_value(key, sources.get(source, ""))} for key, source in mapping.items()}


class SubscriptionMessageTransport:
    """The notification transport of WeChat subscription messages (see the module's docstring)."""

    def prepare(self, notifications: list[Notification], now: datetime) -> dict[int, Delivery]:
        templates = subscription_templates()
        settled: dict[int, Delivery] = {}
        wanted = []
        for notification in notifications:
            template = templates.get(notification.kind)
            if not template:
                settled[notification.pk] = Delivery("skipped", f"no template for {notification.kind}")
            elif not notification.user.wechat_openid:
                settled[notification.pk] = Delivery("skipped", "the member has no WeChat identity")
            else:
                notification.template_id = template
                wanted.append((notification, template))
        granted = consents_spend(wanted=wanted)
        for notification, _template in wanted:
            if notification.pk not in granted:
                settled[notification.pk] = Delivery("no_consent", "no unused consent")
        return settled

    def send(self, notification: Notification) -> Delivery:
        body = {
            "touser": notification.user.wechat_openid,
            "template_id": notification.template_id,
            "data": message_data(notification),
            "miniprogram_state": settings.WECHAT_MINIPROGRAM_STATE,
            "lang": "zh_CN",
        }
        page = (notification.data or {}).get("page")
        if page:
            body["page"] = page
        try:
            answer = wechat.call(SEND_PATH, body)
        except (WechatUnavailable, WechatBusy, WechatBadAnswer) as exc:
            return Delivery("retry", f"{type(exc).__name__}: {exc.message}")
        errcode = answer.get("errcode") or 0
        error = f"{errcode} {answer.get('errmsg', '')}".strip()
        if errcode == 0:
            return Delivery("sent", msgid=str(answer.get("msgid", ""))[:32])
        if errcode == REFUSED:
            return Delivery("no_consent", error)
        return Delivery("retry" if errcode in RETRY_ERRCODES else "failed", error)


TRANSPORT = SubscriptionMessageTransport()
