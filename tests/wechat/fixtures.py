"""Pytest fixtures for the local WeChat servers (registered for the whole suite in tests/conftest.py).

``wechatpay_server`` (direct mode) and ``wechatpay_partner_server`` start a ``WechatPayServer`` and point
the ``WECHATPAY_*`` settings at it; ``miniprogram_server`` does the same for ``WECHAT_API_BASE``.
Notifications to ``http://testserver/...`` (the default ``WECHATPAY_NOTIFY_URL``) go through Django's
test client in the test's own thread and transaction; any other URL is POSTed over HTTP (a live server).

Typical use (the test needs the database: notifications reach our views)::

    def test_paid_order(wechatpay_server, user_client):
        payment = user_client.post(...).json()["payment"]          # our code prepays
        order = wechatpay_server.order(out_trade_no)                # what WeChat received
        wechatpay_server.pay(out_trade_no)                          # the member pays; WeChat notifies
        assert wechatpay_server.deliveries[-1].accepted             # our notify view answered 200/204

    wechatpay_server.notify_mode = "hold"; ...; wechatpay_server.deliver(wechatpay_server.held[0])
    wechatpay_server.fail_next(429, "FREQUENCY_LIMITED", "频率超限")
    wechatpay_server.settle_refund(out_refund_no, "ABNORMAL")
    wechatpay_server.settle_transfer(out_bill_no, "FAIL", fail_reason="PAYEE_ACCOUNT_ABNORMAL")
    miniprogram_server.issue_code(openid) / subscribe(openid, template_id) / add_template(...)

In partner mode a community's ``wechatpay_sub_mchid`` must be one of ``server.config.sub_mchids``.
``wechatpayv3`` checks the RSA key each time a ``WeChatPay`` is built (about 0.25 s): build one per
configuration, not one per call.
"""

from urllib.parse import urlsplit

import pytest

from tests.wechat.miniprogram_server import MiniProgramServer
from tests.wechat.wechatpay_server import WechatPayServer, django_client_transport, http_transport

NOTIFY_URL = "http://testserver/api/v1/payments/wechatpay/notify/"
APP_SECRET = "test-app-secret"


def _transport(notification):
    if urlsplit(notification.url).hostname == "testserver":
        return django_client_transport()(notification)
    return http_transport(notification)


def _start(settings, mode: str):
    server = WechatPayServer().start()
    server.transport = _transport
    server.mode = mode
    config = server.config
    settings.WECHATPAY_MODE = mode
    settings.WECHATPAY_MCHID = config.mchid
    settings.WECHATPAY_SP_APPID = config.sp_appid if mode == "partner" else ""
    settings.WECHATPAY_PRIVATE_KEY = config.merchant_private_key
    settings.WECHATPAY_CERT_SERIAL_NO = config.merchant_serial
    settings.WECHATPAY_APIV3_KEY = config.apiv3_key
    settings.WECHATPAY_PUBLIC_KEY = config.platform_public_key
    settings.WECHATPAY_PUBLIC_KEY_ID = config.public_key_id
    settings.WECHATPAY_API_BASE = server.url
    settings.WECHATPAY_NOTIFY_URL = NOTIFY_URL
    settings.WECHAT_APP_ID = config.appid
    return server


@pytest.fixture
def wechatpay_server(settings):
    server = _start(settings, "direct")
    yield server
    server.stop()


@pytest.fixture
def wechatpay_partner_server(settings):
    """Service-provider mode: ``WECHATPAY_MCHID`` is the provider's; sub-merchants are
    ``server.config.sub_mchids``; the mini-program (``WECHAT_APP_ID``) is the sub_appid."""
    server = _start(settings, "partner")
    yield server
    server.stop()


@pytest.fixture
def miniprogram_server(request, settings):
    pay_server = None
    for name in ("wechatpay_server", "wechatpay_partner_server"):
        if name in request.fixturenames:
            pay_server = request.getfixturevalue(name)
    appid = pay_server.config.appid if pay_server else "wx1234567890abcdef"
    server = MiniProgramServer(appid=appid, secret=APP_SECRET, pay_server=pay_server).start()
    settings.WECHAT_APP_ID = appid
    settings.WECHAT_APP_SECRET = APP_SECRET
    settings.WECHAT_API_BASE = server.url
    yield server
    server.stop()
