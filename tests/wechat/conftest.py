"""Fixtures for testing the local WeChat servers themselves (the suite-wide ones are in fixtures.py)."""

import functools

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from tests.wechat.wechatpay_server import WechatPayServer

NOTIFY_URL = "http://127.0.0.1:9/wechatpay/notify/"


class Inbox:
    """A notify endpoint that answers each notification with a scripted status (200 by default)."""

    def __init__(self):
        self.received, self.status = [], 200

    def __call__(self, notification):
        self.received.append(notification)
        return self.status, ""


def make_client(server: WechatPayServer, *, partner: bool = False, **overrides) -> WeChatPay:
    """The real ``wechatpayv3`` client pointed at the local server (its only way: ``_gate_way``)."""
    config = server.config
    options = {
        "wechatpay_type": WeChatPayType.MINIPROG,
        "mchid": config.mchid,
        "private_key": config.merchant_private_key,
        "cert_serial_no": config.merchant_serial,
        "appid": config.sp_appid if partner else config.appid,
        "apiv3_key": config.apiv3_key,
        "notify_url": NOTIFY_URL,
        "public_key": config.platform_public_key,
        "public_key_id": config.public_key_id,
        "partner_mode": partner,
        "timeout": (2, 5),
    } | overrides
    client = _client(tuple(sorted(options.items(), key=lambda item: item[0])))
    client._core._gate_way = server.url
    return client


@functools.cache
def _client(options: tuple) -> WeChatPay:
    """The library checks the RSA key on load (a quarter second): one client per configuration."""
    return WeChatPay(**dict(options))


@pytest.fixture
def server():
    server = WechatPayServer().start()
    server.transport = Inbox()
    yield server
    server.stop()


@pytest.fixture
def pay_client(server):
    return make_client(server)


@pytest.fixture
def partner_client(server):
    return make_client(server, partner=True)
