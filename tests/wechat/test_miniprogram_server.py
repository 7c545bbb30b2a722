"""The local mini-program API stand-in answers errcode/errmsg like api.weixin.qq.com."""

import pytest
import requests

from members.models import User
from tests.wechat.conftest import make_client
from tests.wechat.wechatpay_server import Notification, django_client_transport

pytestmark = pytest.mark.django_db


def call(server, path, *, token=None, json=None, params=None):
    params = dict(params or {}) | ({"access_token": token} if token else {})
    method = requests.post if json is not None else requests.get
    answer = method(server.url + path, params=params, json=json, timeout=5)
    assert answer.status_code == 200  # WeChat answers its errors with HTTP 200
    return answer.json()


def token_of(server, **changes):
    body = {"grant_type": "client_credential", "appid": server.appid, "secret": server.secret} | changes
    return call(server, "/cgi-bin/stable_token", json=body)


def session(server, code, secret=None):
    params = {"appid": server.appid, "secret": secret or server.secret, "js_code": code}
    return call(server, "/sns/jscode2session", params=params | {"grant_type": "authorization_code"})


def test_code2session_codes_work_once(miniprogram_server):
    code = miniprogram_server.issue_code("o-member-1", unionid="u-1")
    assert session(miniprogram_server, code, secret="wrong")["errcode"] == 40125
    answer = session(miniprogram_server, code)
    assert (answer["openid"], answer["unionid"]) == ("o-member-1", "u-1") and answer["session_key"]
    assert "errcode" not in answer
    assert session(miniprogram_server, code)["errcode"] == 40163
    assert session(miniprogram_server, "made-up")["errcode"] == 40029


def test_members_wechat_login_goes_through_the_fixture(miniprogram_server, api_client):
    code = miniprogram_server.issue_code("o-member-2")
    answer = api_client.post("/api/v1/auth/wechat/", {"code": code}, format="json")
    assert answer.status_code == 200
    assert User.objects.filter(wechat_openid="o-member-2").exists()


def test_stable_token_is_stable_until_forced_or_expired(miniprogram_server):
    first = token_of(miniprogram_server)
    assert (
        first["expires_in"] == 7200 and token_of(miniprogram_server)["access_token"] == first["access_token"]
    )
    assert token_of(miniprogram_server, secret="wrong")["errcode"] == 40125
    assert token_of(miniprogram_server, grant_type="authorization_code")["errcode"] == 40002
    fresh = token_of(miniprogram_server, force_refresh=True)["access_token"]
    assert fresh != first["access_token"]
    phone = {"code": miniprogram_server.issue_phone_code("13800138000")}
    path = "/wxa/business/getuserphonenumber"
    assert call(miniprogram_server, path, token=first["access_token"], json=phone)["errcode"] == 40001
    assert call(miniprogram_server, path, json=phone)["errcode"] == 41001
    miniprogram_server.expire_token()
    assert call(miniprogram_server, path, token=fresh, json=phone)["errcode"] == 42001


def test_subscribe_send_spends_one_consent_per_message(miniprogram_server):
    token = token_of(miniprogram_server)["access_token"]
    miniprogram_server.add_template("TPL_RENEWAL", ["thing1", "time2"])
    message = {
        "touser": "o-member-1",
        "template_id": "TPL_RENEWAL",
        "page": "pages/me/index",
        "data": {"thing1": {"value": "续费提醒"}, "time2": {"value": "2026-12-01 10:00"}},
    }
    path = "/cgi-bin/message/subscribe/send"
    assert call(miniprogram_server, path, token=token, json=message)["errcode"] == 43101
    miniprogram_server.subscribe("o-member-1", "TPL_RENEWAL")
    too_long = message | {"data": message["data"] | {"thing1": {"value": "长" * 21}}}
    assert call(miniprogram_server, path, token=token, json=too_long)["errcode"] == 47003
    assert (
        call(miniprogram_server, path, token=token, json=message | {"template_id": "TPL_X"})["errcode"]
        == 40037
    )
    sent = call(miniprogram_server, path, token=token, json=message)
    assert sent["errcode"] == 0 and sent["msgid"]
    assert call(miniprogram_server, path, token=token, json=message)["errcode"] == 43101
    assert len(miniprogram_server.sent_messages) == 1


@pytest.mark.parametrize(
    ("key", "value", "errcode"),
    [
        ("phrase1", "已发货", 43101),
        ("phrase1", "shipped", 47003),
        ("phrase1", "已经发货了吗", 47003),
        ("character_string1", "SF-123_4", 43101),
        ("character_string1", "单号SF1", 47003),
        ("amount1", "¥1234.50", 43101),
        ("amount1", "12元", 43101),
        ("amount1", "¥12345678901", 47003),
        ("number1", "12.5", 43101),
        ("number1", "12件", 47003),
        ("name1", "Alexander Hamilton J", 43101),
        ("name1", "欧阳娜娜娜娜娜娜娜娜娜", 47003),
    ],
)
def test_subscribe_send_refuses_values_a_key_type_cannot_hold(miniprogram_server, key, value, errcode):
    """Valid values reach the consent check (43101 here); invalid ones are refused first (47003)."""
    token = token_of(miniprogram_server)["access_token"]
    miniprogram_server.add_template("TPL", [key])
    message = {"touser": "o-member-1", "template_id": "TPL", "data": {key: {"value": value}}}
    answer = call(miniprogram_server, "/cgi-bin/message/subscribe/send", token=token, json=message)
    assert answer["errcode"] == errcode


def test_shipping_upload_needs_a_known_payment_and_allows_one_reupload(miniprogram_server):
    token = token_of(miniprogram_server)["access_token"]
    miniprogram_server.add_payment("o-member-1", transaction_id="4200000001")
    shipping = {
        "order_key": {"order_number_type": 2, "transaction_id": "4200000001"},
        "logistics_type": 1,
        "delivery_mode": 1,
        "shipping_list": [
            {"tracking_no": "SF1234567890", "express_company": "SF", "item_desc": "有机大米 5kg"}
        ],
        "upload_time": "2026-12-01T10:00:00+08:00",
        "payer": {"openid": "o-member-1"},
    }
    path = "/wxa/sec/order/upload_shipping_info"
    unknown = shipping | {"order_key": {"order_number_type": 2, "transaction_id": "4209999999"}}
    assert call(miniprogram_server, path, token=token, json=unknown)["errcode"] == 10060001
    assert (
        call(miniprogram_server, path, token=token, json=shipping)["errcode"] == 10060014
    )  # SF needs contact
    item = shipping["shipping_list"][0] | {"contact": {"receiver_contact": "138****8000"}}
    shipping["shipping_list"] = [item]
    stranger = shipping | {"payer": {"openid": "o-other"}}
    assert call(miniprogram_server, path, token=token, json=stranger)["errcode"] == 10060031
    assert call(miniprogram_server, path, token=token, json=shipping)["errcode"] == 0
    again = shipping | {"shipping_list": [item | {"tracking_no": "SF0000000001"}]}
    assert call(miniprogram_server, path, token=token, json=again)["errcode"] == 0
    third = shipping | {"shipping_list": [item | {"tracking_no": "SF0000000002"}]}
    assert call(miniprogram_server, path, token=token, json=third)["errcode"] == 10060003


def test_shipping_knows_the_linked_pay_servers_payments(wechatpay_server, miniprogram_server):
    config = wechatpay_server.config
    wechatpay_server.notify_mode = "drop"  # no notify endpoint is needed here
    prepay = make_client(wechatpay_server).pay(
        description="社群年费", out_trade_no="order_0001", amount={"total": 100}, payer={"openid": "o-1"}
    )
    assert prepay[0] == 200
    token = token_of(miniprogram_server)["access_token"]
    shipping = {
        "order_key": {"order_number_type": 1, "mchid": config.mchid, "out_trade_no": "order_0001"},
        "logistics_type": 3,
        "delivery_mode": 1,
        "shipping_list": [{"item_desc": "社群年费"}],
        "upload_time": "2026-12-01T10:00:00+08:00",
        "payer": {"openid": "o-1"},
    }
    path = "/wxa/sec/order/upload_shipping_info"
    assert call(miniprogram_server, path, token=token, json=shipping)["errcode"] == 10060001  # not paid yet
    wechatpay_server.pay("order_0001")
    assert call(miniprogram_server, path, token=token, json=shipping)["errcode"] == 0


def test_phone_number_codes_and_scripted_failures(miniprogram_server):
    token = token_of(miniprogram_server)["access_token"]
    body = {"code": miniprogram_server.issue_phone_code("13800138000")}
    path = "/wxa/business/getuserphonenumber"
    miniprogram_server.fail_next(-1, "system error")
    assert call(miniprogram_server, path, token=token, json=body)["errcode"] == -1
    info = call(miniprogram_server, path, token=token, json=body)["phone_info"]
    assert (info["purePhoneNumber"], info["countryCode"]) == ("13800138000", "86")
    assert call(miniprogram_server, path, token=token, json=body)["errcode"] == 40029


def test_django_client_transport_posts_the_exact_body_and_wechat_headers():
    seen = {}

    class Client:
        def post(self, path, **kwargs):
            seen.update(kwargs, path=path)
            return type("Answer", (), {"status_code": 204, "content": b""})()

    notification = Notification(
        "https://testserver/api/v1/payments/wechatpay/notify/", "TRANSACTION.SUCCESS", {},
        {"Content-Type": "application/json", "Wechatpay-Serial": "PUB_KEY_ID_1"}, '{"id": "x"}',
    )  # fmt: skip
    assert django_client_transport(Client())(notification) == (204, "")
    assert seen["path"] == "/api/v1/payments/wechatpay/notify/" and seen["data"] == '{"id": "x"}'
    assert seen["headers"] == {"Wechatpay-Serial": "PUB_KEY_ID_1"} and seen["secure"] is True
