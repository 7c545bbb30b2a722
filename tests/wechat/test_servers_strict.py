"""The local servers refuse what WeChat refuses: merchant transfers (商家转账) and the phone number API.

Each refusal is checked against a request that differs from an accepted one in one point only, so a
test fails if the server starts accepting it, and our own code's requests pass the same checks.
"""

import json
import time
from decimal import Decimal as D

import pytest
import requests
from wechatpayv3.utils import build_authorization, load_private_key

from commerce.payments.wechatpay import transfers
from tests.wechat.conftest import NOTIFY_URL, make_client
from tests.wechat.test_miniprogram_server import call, token_of
from tests.wechat.wechatpay_server import rsa_decrypt

pytestmark = pytest.mark.django_db
PATH = "/v3/fund-app/mch-transfer/transfer-bills"
INFOS = [
    {"info_type": "岗位类型", "info_content": "社群推广员"},
    {"info_type": "报酬说明", "info_content": "11月佣金"},
]


def bill(server, **changes):
    body = {
        "appid": server.config.appid,
        "out_bill_no": "WD20261201001",
        "transfer_scene_id": "1005",
        "openid": "o-kol-1",
        "transfer_amount": 5000,
        "transfer_remark": "佣金提现",
        "notify_url": NOTIFY_URL,
        "transfer_scene_report_infos": INFOS,
    }
    return {k: v for k, v in (body | changes).items() if v is not ...}


def send(server, body, *, serial: str | None = "public-key-id"):
    """POST signed with the merchant key; ``serial=None`` leaves ``Wechatpay-Serial`` out."""
    config = server.config
    text = json.dumps(body, ensure_ascii=False)
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": build_authorization(
            PATH,
            "POST",
            config.mchid,
            config.merchant_serial,
            load_private_key(config.merchant_private_key),
            text,
        ),
    }
    if serial is not None:
        headers["Wechatpay-Serial"] = config.public_key_id if serial == "public-key-id" else serial
    answer = requests.post(server.url + PATH, data=text.encode(), headers=headers, timeout=5)
    return answer.status_code, answer.json()


def encrypted(server, name: str) -> str:
    return make_client(server)._core.encrypt(name)


def test_the_documented_body_is_accepted(server):
    code, answer = send(server, bill(server))
    assert code == 200, answer
    assert set(answer) == {"out_bill_no", "transfer_bill_no", "create_time", "state", "package_info"}
    assert answer["state"] == "WAIT_USER_CONFIRM" and answer["out_bill_no"] == "WD20261201001"


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"extra_field": "x"}, 400, "PARAM_ERROR"),
        ({"appid": ...}, 400, "PARAM_ERROR"),
        ({"openid": ...}, 400, "PARAM_ERROR"),
        ({"transfer_remark": ...}, 400, "PARAM_ERROR"),
        ({"transfer_scene_report_infos": ...}, 400, "PARAM_ERROR"),
        ({"transfer_amount": "50.00"}, 400, "PARAM_ERROR"),
        ({"transfer_amount": 50.0}, 400, "PARAM_ERROR"),
        ({"transfer_amount": 9}, 400, "PARAM_ERROR"),
        ({"transfer_scene_id": 1005}, 400, "PARAM_ERROR"),
        ({"notify_url": None}, 400, "PARAM_ERROR"),
        ({"out_bill_no": "WD-2026-12"}, 400, "PARAM_ERROR"),
        ({"out_bill_no": "W" * 33}, 400, "PARAM_ERROR"),
        ({"transfer_remark": "佣" * 33}, 400, "PARAM_ERROR"),
        ({"transfer_scene_report_infos": INFOS[:1]}, 400, "PARAM_ERROR"),
        ({"transfer_scene_report_infos": [INFOS[0], INFOS[0]]}, 400, "PARAM_ERROR"),
        ({"transfer_scene_report_infos": [*INFOS, {"info_type": "活动名称", "info_content": "x"}]}, 400,
         "PARAM_ERROR"),
        ({"transfer_scene_report_infos": [{"type": "岗位类型", "content": "x"}, INFOS[1]]}, 400,
         "PARAM_ERROR"),
        ({"transfer_scene_report_infos": [{**INFOS[0], "info_content": "推" * 33}, INFOS[1]]}, 400,
         "PARAM_ERROR"),
        ({"transfer_scene_report_infos": [{**INFOS[0], "info_content": ""}, INFOS[1]]}, 400, "PARAM_ERROR"),
        ({"user_recv_perception": "佣金"}, 400, "INVALID_REQUEST"),
        ({"transfer_scene_id": "1001"}, 403, "NO_AUTH"),
        ({"appid": "wx0000000000000000"}, 400, "APPID_MCHID_NOT_MATCH"),
        ({"transfer_amount": 200000}, 400, "PARAM_ERROR"),  # 2,000 yuan without user_name
    ],
    ids=lambda v: json.dumps(v, ensure_ascii=False, default=str)[:40] if isinstance(v, dict) else None,
)  # fmt: skip
def test_what_wechat_refuses_is_refused(server, changes, status, code):
    answer = send(server, bill(server, **changes))
    assert (answer[0], answer[1]["code"]) == (status, code)
    assert server.transfers == {}


def test_user_name_is_encrypted_named_by_wechatpay_serial_and_only_from_30_fen(server):
    name = encrypted(server, "张三")
    assert send(server, bill(server, transfer_amount=200000, user_name="张三"))[1]["code"] == "PARAM_ERROR"
    assert send(server, bill(server, transfer_amount=200000, user_name=name), serial=None)[0] == 400
    assert send(server, bill(server, transfer_amount=200000, user_name=name), serial="PUB_KEY_ID_X")[0] == 400
    assert send(server, bill(server, transfer_amount=29, user_name=name))[1]["code"] == "PARAM_ERROR"
    assert server.transfers == {}

    assert send(server, bill(server, transfer_amount=30, user_name=name))[0] == 200
    assert server.transfers["WD20261201001"].user_name == "张三"


def test_the_same_bill_again_is_the_same_bill_and_a_changed_one_is_refused(server):
    first = send(server, bill(server, transfer_amount=200000, user_name=encrypted(server, "张三")))
    # A resend encrypts the name again (OAEP is randomised): still the same request.
    again = send(server, bill(server, transfer_amount=200000, user_name=encrypted(server, "张三")))
    other_name = send(server, bill(server, transfer_amount=200000, user_name=encrypted(server, "李四")))
    other_amount = send(server, bill(server, transfer_amount=200001, user_name=encrypted(server, "张三")))

    assert first[0] == again[0] == 200 and again[1]["transfer_bill_no"] == first[1]["transfer_bill_no"]
    assert other_name[1]["code"] == other_amount[1]["code"] == "INVALID_REQUEST"


def test_not_enough_leaves_no_bill_and_the_same_bill_goes_through_after_a_top_up(server):
    server.merchant_balance = 4999
    assert send(server, bill(server)) == (
        403,
        {"code": "NOT_ENOUGH", "message": send(server, bill(server))[1]["message"]},
    )
    assert server.transfers == {}
    server.merchant_balance = 5000
    assert send(server, bill(server))[0] == 200


def test_the_notification_resource_has_the_documented_fields(server):
    send(server, bill(server))
    server.settle_transfer("WD20261201001", "FAIL", fail_reason="PAYEE_ACCOUNT_ABNORMAL")

    notice = make_client(server).callback(
        server.transport.received[-1].headers, server.transport.received[-1].body
    )
    assert (
        notice["event_type"] == "MCHTRANSFER.BILL.FINISHED" and notice["resource_type"] == "encrypt-resource"
    )
    assert set(notice["resource"]) == {
        "mch_id", "out_bill_no", "transfer_bill_no", "state", "transfer_amount", "openid", "fail_reason",
        "create_time", "update_time",
    }  # fmt: skip
    assert notice["resource"]["transfer_amount"] == 5000 and notice["resource"]["state"] == "FAIL"


# --------------------------------------------------------------------------- our client passes


def test_our_transfer_request_passes_every_check(server, settings):
    settings.WECHATPAY_MODE, settings.WECHATPAY_API_BASE = "direct", server.url
    config = server.config
    settings.WECHATPAY_MCHID, settings.WECHAT_APP_ID = config.mchid, config.appid
    settings.WECHATPAY_PRIVATE_KEY, settings.WECHATPAY_CERT_SERIAL_NO = (
        config.merchant_private_key,
        config.merchant_serial,
    )
    settings.WECHATPAY_APIV3_KEY, settings.WECHATPAY_NOTIFY_URL = config.apiv3_key, NOTIFY_URL
    settings.WECHATPAY_PUBLIC_KEY, settings.WECHATPAY_PUBLIC_KEY_ID = (
        config.platform_public_key,
        config.public_key_id,
    )

    small = transfers.transfer_create(
        reference="WDSMALL0001", openid="o-kol-1", amount=D("0.10"), remark="佣金提现"
    )
    large = transfers.transfer_create(
        reference="WDLARGE0001", openid="o-kol-1", amount=D("2000.00"), remark="佣金提现", real_name="张三"
    )

    assert small.state == large.state == "WAIT_USER_CONFIRM" and small.package_info
    assert server.transfers["WDLARGE0001"].user_name == "张三"
    assert "user_name" not in server.transfers["WDSMALL0001"].request
    assert (
        rsa_decrypt(config.platform_private_key, server.transfers["WDLARGE0001"].request["user_name"])
        == "张三"
    )
    assert transfers.transfer_fetch(reference="WDSMALL0001").amount == D("0.10")
    assert transfers.transfer_cancel(reference="WDSMALL0001").state == "CANCELING"


# --------------------------------------------------------------------------- phone number and token


def test_phone_code_must_be_a_string_and_the_watermark_names_the_app(miniprogram_server):
    token = token_of(miniprogram_server)["access_token"]
    path = "/wxa/business/getuserphonenumber"
    assert call(miniprogram_server, path, token=token, json={"code": 12345})["errcode"] == 47001
    assert call(miniprogram_server, path, token=token, json={})["errcode"] == 47001
    code = miniprogram_server.issue_phone_code("13800138000", appid="wxOther0000000000")
    answer = call(miniprogram_server, path, token=token, json={"code": code})
    assert (answer["errcode"], answer["errmsg"]) == (0, "ok")
    assert set(answer["phone_info"]) == {"phoneNumber", "purePhoneNumber", "countryCode", "watermark"}
    assert answer["phone_info"]["watermark"]["appid"] == "wxOther0000000000"
    assert abs(answer["phone_info"]["watermark"]["timestamp"] - time.time()) < 60


def test_stable_token_force_refresh_is_a_boolean_and_20_a_day(miniprogram_server):
    assert token_of(miniprogram_server, force_refresh="true")["errcode"] == 47001
    assert token_of(miniprogram_server, force_refresh=1)["errcode"] == 47001
    assert token_of(miniprogram_server, appid="wx0000000000000000")["errcode"] == 40013
    for _ in range(20):
        assert "access_token" in token_of(miniprogram_server, force_refresh=True)
    assert token_of(miniprogram_server, force_refresh=True)["errcode"] == 45009
    assert "access_token" in token_of(miniprogram_server, force_refresh=False)
