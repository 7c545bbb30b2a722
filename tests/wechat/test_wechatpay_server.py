"""The local WeChat Pay server, driven by the real ``wechatpayv3`` pay_client, refuses what WeChat refuses."""

import csv
import gzip
import hashlib
import io
import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from wechatpayv3.type import RequestType
from wechatpayv3.utils import build_authorization, load_private_key

from tests.wechat.conftest import NOTIFY_URL, make_client
from tests.wechat.wechatpay_server import CHINA, _rsa_key_pem, http_transport, rfc3339, rsa_sign

# The suite's session fixtures load shipped rows into the test database: it must exist.
pytestmark = pytest.mark.django_db

JSAPI = "/v3/pay/transactions/jsapi"
PARTNER_JSAPI = "/v3/pay/partner/transactions/jsapi"


def prepay_body(server, **changes):
    body = {
        "appid": server.config.appid,
        "mchid": server.config.mchid,
        "description": "社群年费",
        "out_trade_no": "order_0001",
        "notify_url": NOTIFY_URL,
        "amount": {"total": 9900, "currency": "CNY"},
        "payer": {"openid": "o-member-1"},
    }
    return body | changes


def post(pay_client, path, body):
    code, text = pay_client._core.request(path, method=RequestType.POST, data=body)
    return code, (json.loads(text) if text else None)


def get(pay_client, path):
    code, text = pay_client._core.request(path)
    return code, (json.loads(text) if isinstance(text, str) and text else text)


def paid_order(server, pay_client, out_trade_no="order_0001", total=9900, **pay):
    assert (
        post(pay_client, JSAPI, prepay_body(server, out_trade_no=out_trade_no, amount={"total": total}))[0]
        == 200
    )
    return server.pay(out_trade_no, **pay)


def refund_body(out_refund_no="refund_01", refund=1000, total=9900, **changes):
    body = {
        "out_trade_no": "order_0001",
        "out_refund_no": out_refund_no,
        "notify_url": NOTIFY_URL,
        "amount": {"refund": refund, "total": total, "currency": "CNY"},
    }
    return body | changes


def error_of(answer):
    code, body = answer
    return code, body["code"]


# --------------------------------------------------------------------------- signatures


class TestSignatures:
    def test_prepay_answers_a_prepay_id_signed_with_the_platform_key(self, server, pay_client):
        code, text = pay_client.pay(
            description="社群年费", out_trade_no="order_0001", amount={"total": 9900}, payer={"openid": "o-1"}
        )
        assert code == 200, text  # the pay_client verified the answer's signature or it would have raised
        assert json.loads(text)["prepay_id"].startswith("wx")
        assert server.requests[0].json["payer"] == {"openid": "o-1"}

    def test_a_tampered_answer_fails_the_client_verification(self, server, pay_client):
        server.tamper_responses = True
        with pytest.raises(Exception, match="failed to verify the signature"):
            post(pay_client, JSAPI, prepay_body(server))

    @pytest.mark.parametrize(
        "overrides",
        [
            {"private_key": _rsa_key_pem("stranger")},
            {"mchid": "1900000999"},
            {"cert_serial_no": "0" * 40},
        ],
        ids=["foreign-key", "wrong-mchid", "wrong-serial"],
    )
    def test_a_request_not_signed_by_the_merchant_is_401(self, server, overrides):
        pay_client = make_client(server, **overrides)
        assert error_of(post(pay_client, JSAPI, prepay_body(server))) == (401, "SIGN_ERROR")
        assert not server.orders

    @pytest.mark.parametrize("age", [301, -301])
    def test_a_timestamp_more_than_5_minutes_off_is_401(self, server, age):
        body, stamp, nonce = json.dumps(prepay_body(server)), int(time.time()) - age, "N0NCE"
        signature = rsa_sign(server.config.merchant_private_key, f"POST\n{JSAPI}\n{stamp}\n{nonce}\n{body}\n")
        auth = (
            f'WECHATPAY2-SHA256-RSA2048 mchid="{server.config.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{stamp}",serial_no="{server.config.merchant_serial}"'
        )
        answer = requests.post(server.url + JSAPI, data=body, headers={"Authorization": auth}, timeout=5)
        assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
        assert "5分钟" in answer.json()["message"]

    def test_body_changed_after_signing_and_missing_authorization_are_401_with_signed_answers(self, server):
        key = load_private_key(server.config.merchant_private_key)
        auth = build_authorization(
            JSAPI, "POST", server.config.mchid, server.config.merchant_serial, key, "{}"
        )
        answers = [
            requests.post(server.url + JSAPI, data='{"a": 1}', headers={"Authorization": auth}, timeout=5),
            requests.post(server.url + JSAPI, data="{}", timeout=5),
        ]
        for answer in answers:
            assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
            assert make_client(server)._core._verify_signature(answer.headers, answer.text)

    def test_the_query_string_is_part_of_the_signature(self, server):
        key = load_private_key(server.config.merchant_private_key)
        path = "/v3/pay/transactions/out-trade-no/order_0001"
        auth = build_authorization(
            f"{path}?mchid=1", "GET", server.config.mchid, server.config.merchant_serial, key
        )
        answer = requests.get(
            f"{server.url}{path}?mchid={server.config.mchid}", headers={"Authorization": auth}, timeout=5
        )
        assert answer.status_code == 401

    def test_wechatpay_serial_must_name_the_public_key_id(self, server):
        pay_client = make_client(server, public_key_id="PUB_KEY_ID_SOMEONE_ELSE")
        assert error_of(post(pay_client, JSAPI, prepay_body(server))) == (400, "INVALID_REQUEST")


# --------------------------------------------------------------------------- prepay rules

LONG_DESCRIPTION = "好" * 43  # 129 bytes in UTF-8


class TestPrepay:
    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"description": LONG_DESCRIPTION}, "PARAM_ERROR"),
            ({"description": ""}, "PARAM_ERROR"),
            ({"out_trade_no": "ab123"}, "PARAM_ERROR"),
            ({"out_trade_no": "a" * 33}, "PARAM_ERROR"),
            ({"out_trade_no": "order 0001"}, "PARAM_ERROR"),
            ({"amount": {"total": 0}}, "PARAM_ERROR"),
            ({"amount": {"total": "9900"}}, "PARAM_ERROR"),
            ({"amount": {"total": 99.5}}, "PARAM_ERROR"),
            ({"amount": {"total": 9900, "currency": "USD"}}, "PARAM_ERROR"),
            ({"payer": {"openid": None}}, "PARAM_ERROR"),
            ({"payer": {}}, "PARAM_ERROR"),
            ({"time_expire": "2099-12-01T10:00:00"}, "PARAM_ERROR"),
            ({"time_expire": "2099-12-01T10:00:00Z"}, "PARAM_ERROR"),
            ({"time_expire": "2020-12-01T10:00:00+08:00"}, "PARAM_ERROR"),
            ({"notify_url": NOTIFY_URL + "?order=1"}, "PARAM_ERROR"),
            ({"notify_url": "ftp://example.com/notify"}, "PARAM_ERROR"),
            ({"mchid": "1900000999"}, "PARAM_ERROR"),
            ({"appid": "wx0000000000000000"}, "APPID_MCHID_NOT_MATCH"),
        ],
    )
    def test_bad_parameters_are_400_and_create_nothing(self, server, pay_client, changes, expected):
        assert error_of(post(pay_client, JSAPI, prepay_body(server, **changes))) == (400, expected)
        assert not server.orders

    def test_limits_are_inclusive_and_unknown_fields_ignored(self, server, pay_client):
        expire = rfc3339(datetime.now(CHINA) + timedelta(minutes=15))
        body = prepay_body(
            server, description="好" * 42 + "x", out_trade_no="a" * 32, time_expire=expire, unknown_field=1
        )
        assert post(pay_client, JSAPI, body)[0] == 200

    def test_https_notify_url_can_be_required(self, server, pay_client):
        server.require_https_notify = True
        assert error_of(post(pay_client, JSAPI, prepay_body(server))) == (400, "PARAM_ERROR")
        assert (
            post(pay_client, JSAPI, prepay_body(server, notify_url="https://shop.example/notify"))[0] == 200
        )

    def test_identical_prepay_repeats_the_prepay_id_and_a_changed_one_is_refused(self, server, pay_client):
        first = post(pay_client, JSAPI, prepay_body(server))
        assert post(pay_client, JSAPI, prepay_body(server)) == first
        changed = post(pay_client, JSAPI, prepay_body(server, amount={"total": 9800, "currency": "CNY"}))
        assert changed == (400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"})
        assert server.order("order_0001").total == 9900

    def test_prepay_of_a_paid_or_closed_order_is_refused(self, server, pay_client):
        paid_order(server, pay_client)
        assert error_of(post(pay_client, JSAPI, prepay_body(server, amount={"total": 9900}))) == (
            400,
            "ORDERPAID",
        )
        post(pay_client, JSAPI, prepay_body(server, out_trade_no="order_0002"))
        pay_client.close("order_0002")
        assert error_of(post(pay_client, JSAPI, prepay_body(server, out_trade_no="order_0002"))) == (
            400,
            "ORDER_CLOSED",
        )


# --------------------------------------------------------------------------- query, pay, notify, close


class TestOrders:
    def test_query_answers_the_documented_object_before_and_after_payment(self, server, pay_client):
        post(pay_client, JSAPI, prepay_body(server, attach="c:1"))
        code, before = get(
            pay_client, f"/v3/pay/transactions/out-trade-no/order_0001?mchid={server.config.mchid}"
        )
        assert code == 200 and (before["trade_state"], before["amount"]["total"]) == ("NOTPAY", 9900)
        assert "transaction_id" not in before
        server.pay("order_0001")
        after = json.loads(pay_client.query(out_trade_no="order_0001")[1])
        assert after["trade_state"] == "SUCCESS" and after["trade_state_desc"] == "支付成功"
        assert after["payer"] == {"openid": "o-member-1"} and after["attach"] == "c:1"
        assert after["amount"] == {
            "total": 9900,
            "payer_total": 9900,
            "currency": "CNY",
            "payer_currency": "CNY",
        }
        assert len(after["transaction_id"]) == 28
        assert datetime.fromisoformat(after["success_time"]).utcoffset() == timedelta(hours=8)
        assert json.loads(pay_client.query(transaction_id=after["transaction_id"])[1]) == after

    def test_unknown_order_and_foreign_mchid_are_refused(self, server, pay_client):
        assert error_of(get(pay_client, "/v3/pay/transactions/out-trade-no/nothing1?mchid=1900000100")) == (
            404,
            "ORDER_NOT_EXIST",
        )
        post(pay_client, JSAPI, prepay_body(server))
        path = "/v3/pay/transactions/out-trade-no/order_0001?mchid=1900000999"
        assert error_of(get(pay_client, path)) == (400, "PARAM_ERROR")

    def test_payment_notification_is_signed_encrypted_and_decryptable_by_the_client(self, server, pay_client):
        order = paid_order(server, pay_client)
        (notification,) = server.transport.received
        data = pay_client.callback(notification.headers, notification.body)
        assert data["event_type"] == "TRANSACTION.SUCCESS" and data["resource_type"] == "encrypt-resource"
        assert data["resource"]["transaction_id"] == order.transaction_id
        assert data["resource"] == json.loads(pay_client.query(out_trade_no="order_0001")[1])
        assert notification.headers["Wechatpay-Serial"] == server.config.public_key_id
        assert server.deliveries[0].status == 200

    def test_notifications_can_be_held_replayed_doubled_dropped_tampered_or_stale(self, server, pay_client):
        server.notify_mode = "hold"
        paid_order(server, pay_client, "order_hold")
        assert not server.transport.received and len(server.held) == 1
        server.deliver(server.held[0])
        server.notify_mode = "twice"
        paid_order(server, pay_client, "order_twice")
        server.notify_mode = "drop"
        paid_order(server, pay_client, "order_drop")
        ids = [n.id for n in server.transport.received]
        assert len(ids) == 3 and ids[1] == ids[2] and len(server.notifications) == 3
        server.notify_mode = "tamper"
        paid_order(server, pay_client, "order_tamper")
        assert (
            pay_client.callback(server.transport.received[-1].headers, server.transport.received[-1].body)
            is None
        )
        server.notify_mode = "stale"
        paid_order(server, pay_client, "order_stale")
        stale = server.transport.received[-1]
        assert (
            pay_client.callback(stale.headers, stale.body) is not None
        )  # the library checks no timestamp...
        assert time.time() - int(stale.headers["Wechatpay-Timestamp"]) >= 600  # ...so our code must

    def test_deliveries_record_the_answer_and_reach_an_http_endpoint(self, server, pay_client):
        received = []

        class Endpoint(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(500)
                self.end_headers()
                self.wfile.write(b'{"code": "FAIL", "message": "try again"}')

            def log_message(self, *args):
                pass

        endpoint = HTTPServer(("127.0.0.1", 0), Endpoint)
        threading.Thread(target=endpoint.serve_forever, args=(0.05,), daemon=True).start()
        try:
            server.transport = http_transport
            notify_url = f"http://127.0.0.1:{endpoint.server_port}/notify/"
            post(pay_client, JSAPI, prepay_body(server, notify_url=notify_url))
            server.pay("order_0001")
        finally:
            endpoint.shutdown()
            endpoint.server_close()
        (delivery,) = server.deliveries
        assert delivery.status == 500 and "FAIL" in delivery.body and not delivery.accepted
        server.transport = lambda notification: (204, "")
        assert [d.accepted for d in server.retry_failed()] == [True]
        assert server.retry_failed() == []
        headers, body = received[0]
        assert pay_client.callback(headers, body)["resource"]["out_trade_no"] == "order_0001"

    def test_only_an_unpaid_unexpired_order_can_be_paid(self, server, pay_client):
        paid_order(server, pay_client)
        with pytest.raises(ValueError, match="cannot be paid"):
            server.pay("order_0001")
        expire = rfc3339(datetime.now(CHINA) + timedelta(minutes=1))
        post(pay_client, JSAPI, prepay_body(server, out_trade_no="order_0002", time_expire=expire))
        server.clock = lambda: time.time() + 120
        with pytest.raises(ValueError, match="cannot be paid"):
            server.pay("order_0002")

    def test_close_is_204_idempotent_and_refused_for_paid_or_unknown_orders(self, server, pay_client):
        post(pay_client, JSAPI, prepay_body(server))
        assert pay_client.close("order_0001") == (204, b"")
        assert pay_client.close("order_0001")[0] == 204
        assert json.loads(pay_client.query(out_trade_no="order_0001")[1])["trade_state"] == "CLOSED"
        paid_order(server, pay_client, "order_0002")
        assert json.loads(pay_client.close("order_0002")[1])["code"] == "ORDERPAID"
        assert pay_client.close("order_0003")[0] == 404


# --------------------------------------------------------------------------- refunds


class TestRefunds:
    def test_refund_processing_then_success_with_notification(self, server, pay_client):
        order = paid_order(server, pay_client)
        code, created = post(pay_client, "/v3/refund/domestic/refunds", refund_body(reason="缺货"))
        assert code == 200 and created["status"] == "PROCESSING"
        assert created["amount"]["refund"] == 1000 and created["transaction_id"] == order.transaction_id
        server.settle_refund("refund_01")
        notice = pay_client.callback(
            server.transport.received[-1].headers, server.transport.received[-1].body
        )
        assert notice["event_type"] == "REFUND.SUCCESS"
        assert (
            notice["resource"]["refund_status"] == "SUCCESS"
            and notice["resource"]["amount"]["refund"] == 1000
        )
        queried = json.loads(pay_client.query_refund("refund_01")[1])
        assert queried["status"] == "SUCCESS" and "success_time" in queried
        assert json.loads(pay_client.query(out_trade_no="order_0001")[1])["trade_state"] == "REFUND"

    @pytest.mark.parametrize("status", ["ABNORMAL", "CLOSED"])
    def test_abnormal_and_closed_refunds_are_notified(self, server, pay_client, status):
        paid_order(server, pay_client)
        post(pay_client, "/v3/refund/domestic/refunds", refund_body())
        server.settle_refund("refund_01", status)
        assert server.transport.received[-1].event_type == f"REFUND.{status}"
        assert json.loads(pay_client.query_refund("refund_01")[1])["status"] == status

    def test_refunds_never_exceed_the_paid_total(self, server, pay_client):
        paid_order(server, pay_client)
        assert post(pay_client, "/v3/refund/domestic/refunds", refund_body("r1", 9000))[0] == 200
        over = post(pay_client, "/v3/refund/domestic/refunds", refund_body("r2", 901))
        assert error_of(over) == (400, "INVALID_REQUEST")
        server.settle_refund("r1", "CLOSED")  # a closed refund gives its amount back
        assert post(pay_client, "/v3/refund/domestic/refunds", refund_body("r3", 9900))[0] == 200

    def test_repeated_out_refund_no_is_one_refund(self, server, pay_client):
        paid_order(server, pay_client)
        first = post(pay_client, "/v3/refund/domestic/refunds", refund_body())
        assert post(pay_client, "/v3/refund/domestic/refunds", refund_body()) == first
        assert error_of(post(pay_client, "/v3/refund/domestic/refunds", refund_body(refund=999))) == (
            400,
            "INVALID_REQUEST",
        )
        assert len(server.refunds) == 1

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (refund_body(total=9800), (400, "INVALID_REQUEST")),
            (refund_body(amount={"refund": 100, "total": 9900}), (400, "PARAM_ERROR")),
            (refund_body(out_refund_no="bad refund no"), (400, "PARAM_ERROR")),
            (refund_body(refund=0), (400, "PARAM_ERROR")),
            (refund_body(out_trade_no="unknown_1"), (404, "RESOURCE_NOT_EXISTS")),
            (refund_body(out_trade_no="unpaid_01"), (400, "INVALID_REQUEST")),
        ],
        ids=["total-differs", "no-currency", "bad-no", "zero", "unknown-order", "unpaid-order"],
    )
    def test_bad_refunds_are_refused(self, server, pay_client, body, expected):
        paid_order(server, pay_client)
        post(pay_client, JSAPI, prepay_body(server, out_trade_no="unpaid_01"))
        assert error_of(post(pay_client, "/v3/refund/domestic/refunds", body)) == expected
        assert not server.refunds

    def test_low_merchant_balance_is_403_not_enough_and_unknown_refund_404(self, server, pay_client):
        paid_order(server, pay_client)
        server.merchant_balance = 500
        assert error_of(post(pay_client, "/v3/refund/domestic/refunds", refund_body())) == (403, "NOT_ENOUGH")
        assert json.loads(pay_client.query_refund("refund_01")[1])["code"] == "RESOURCE_NOT_EXISTS"


# --------------------------------------------------------------------------- partner mode


class TestPartner:
    def test_partner_prepay_query_close_and_refund_per_sub_merchant(self, server, pay_client, partner_client):
        sub = server.config.sub_mchids[0]
        code, text = partner_client.pay(
            description="社群年费", out_trade_no="order_0001", amount={"total": 500},
            payer={"sub_openid": "o-sub-1"}, sub_mchid=sub, sub_appid=server.config.appid,
        )  # fmt: skip
        assert code == 200, text
        assert pay_client.query(out_trade_no="order_0001")[0] == 404  # direct orders are another space
        server.pay("order_0001", sub_mchid=sub)
        answer = json.loads(partner_client.query(out_trade_no="order_0001", sub_mchid=sub)[1])
        assert (answer["sub_mchid"], answer["payer"], answer["trade_state"]) == (
            sub,
            {"sub_openid": "o-sub-1"},
            "SUCCESS",
        )
        other = server.config.sub_mchids[1]
        assert partner_client.query(out_trade_no="order_0001", sub_mchid=other)[0] == 404
        code, refund = post(
            partner_client, "/v3/refund/domestic/refunds", refund_body(refund=500, total=500, sub_mchid=sub)
        )
        assert code == 200 and refund["sub_mchid"] == sub
        assert (
            json.loads(partner_client.query_refund("refund_01", sub_mchid=sub)[1])["status"] == "PROCESSING"
        )
        notice = pay_client.callback(server.transport.received[0].headers, server.transport.received[0].body)
        assert notice["resource"]["sp_mchid"] == server.config.mchid

    def test_a_merchant_uses_only_its_own_kind_of_api(self, server, pay_client, partner_client):
        server.mode = "partner"
        assert error_of(post(pay_client, JSAPI, prepay_body(server))) == (403, "NO_AUTH")
        assert error_of(post(pay_client, "/v3/refund/domestic/refunds", refund_body())) == (
            400,
            "PARAM_ERROR",
        )
        server.mode = "direct"
        assert (
            partner_client.query(out_trade_no="order_0001", sub_mchid=server.config.sub_mchids[0])[0] == 403
        )
        assert post(pay_client, JSAPI, prepay_body(server))[0] == 200

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ({"sub_mchid": "1999999999"}, "INVALID_REQUEST"),
            ({"payer": {"sub_openid": "o-1", "sp_openid": "o-2"}}, "PARAM_ERROR"),
            ({"payer": {"sub_openid": "o-1"}, "sub_appid": None}, "PARAM_ERROR"),
            ({"sp_appid": "wx0000000000000000"}, "APPID_MCHID_NOT_MATCH"),
        ],
    )
    def test_bad_partner_prepay_is_refused(self, server, partner_client, changes, expected):
        body = {
            "sp_appid": server.config.sp_appid, "sp_mchid": server.config.mchid,
            "sub_mchid": server.config.sub_mchids[0], "sub_appid": server.config.appid,
            "description": "x", "out_trade_no": "order_0001", "notify_url": NOTIFY_URL,
            "amount": {"total": 1}, "payer": {"sub_openid": "o-1"},
        } | changes  # fmt: skip
        body = {k: v for k, v in body.items() if v is not None}
        assert error_of(post(partner_client, PARTNER_JSAPI, body)) == (400, expected)


# --------------------------------------------------------------------------- trade bill


class TestTradeBill:
    def test_yesterdays_bill_lists_payments_and_refunds_and_matches_its_hash(self, server, pay_client):
        today = datetime.now(CHINA).replace(hour=11, minute=0, second=0, microsecond=0)
        yesterday = today - timedelta(days=1)
        paid_order(server, pay_client, "order_0001", 9900, at=yesterday)
        paid_order(server, pay_client, "order_0002", 100, at=yesterday)
        post(pay_client, "/v3/refund/domestic/refunds", refund_body(refund=900))
        server.settle_refund("refund_01", at=yesterday + timedelta(hours=1))
        server.clock = lambda: today.timestamp()
        code, text = pay_client.trade_bill(bill_date=yesterday.date().isoformat())
        assert code == 200, text
        answer = json.loads(text)
        assert answer["hash_type"] == "SHA1" and answer["download_url"].startswith(server.url)
        code, content = pay_client.download_bill(answer["download_url"])
        content = gzip.decompress(content)
        assert hashlib.sha1(content).hexdigest() == answer["hash_value"]  # noqa: S324
        rows = list(csv.reader(io.StringIO(content.decode())))
        assert rows[0][:3] == ["交易时间", "公众账号ID", "商户号"] and rows[4][0] == "总交易单数"
        trades = [[value.lstrip("`") for value in row] for row in rows[1:4]]
        assert all(value.startswith("`") for value in rows[1])
        assert [(t[6], t[9], t[12], t[16]) for t in trades] == [
            ("order_0001", "SUCCESS", "99.00", "0.00"),
            ("order_0002", "SUCCESS", "1.00", "0.00"),
            ("order_0001", "REFUND", "0.00", "9.00"),
        ]
        assert [v.lstrip("`") for v in rows[5][:3]] == ["3", "100.00", "9.00"]

    def test_bill_availability_rules(self, server, pay_client):
        now = datetime.now(CHINA).replace(hour=9, minute=0)
        server.clock = lambda: now.timestamp()
        paid_order(server, pay_client, at=now - timedelta(days=1))

        def code_for(day):
            return error_of(get(pay_client, f"/v3/bill/tradebill?bill_date={day}&bill_type=ALL"))

        assert code_for((now - timedelta(days=1)).date()) == (400, "STATEMENT_CREATING")  # before 10:00
        assert code_for(now.date()) == (400, "STATEMENT_CREATING")
        assert code_for((now - timedelta(days=2)).date()) == (400, "NO_STATEMENT_EXIST")
        assert code_for((now - timedelta(days=120)).date()) == (400, "PARAM_ERROR")
        assert code_for("2026-13-01") == (400, "PARAM_ERROR")


# --------------------------------------------------------------------------- faults


class TestFaults:
    def test_fail_next_answers_an_error_once_and_requests_are_recorded(self, server, pay_client):
        server.fail_next(status=500, code="SYSTEM_ERROR")
        assert error_of(post(pay_client, JSAPI, prepay_body(server))) == (500, "SYSTEM_ERROR")
        assert post(pay_client, JSAPI, prepay_body(server))[0] == 200
        assert [r.path for r in server.requests] == [JSAPI, JSAPI]

    def test_hang_makes_the_client_time_out(self, server):
        server.hang = 0.5
        pay_client = make_client(server, timeout=(1, 0.1))
        with pytest.raises(requests.exceptions.Timeout):
            pay_client.query(out_trade_no="order_0001")


# --------------------------------------------------------------------------- merchant transfer

REPORT_INFOS = [
    {"info_type": "岗位类型", "info_content": "社群推广"},
    {"info_type": "报酬说明", "info_content": "11月佣金"},
]


def transfer(pay_client, **changes):
    options = {
        "out_bill_no": "W20261201001", "transfer_scene_id": "1005", "openid": "o-kol-1",
        "transfer_amount": 5000, "transfer_remark": "佣金提现", "transfer_scene_report_infos": REPORT_INFOS,
        "notify_url": NOTIFY_URL,
    } | changes  # fmt: skip
    code, text = pay_client.mch_transfer_bills(**options)
    return code, json.loads(text)


class TestTransfers:
    def test_transfer_waits_for_the_member_then_succeeds_with_notification(self, server, pay_client):
        code, created = transfer(pay_client)
        assert code == 200 and created["state"] == "WAIT_USER_CONFIRM" and created["package_info"]
        assert transfer(pay_client) == (200, created)  # the same request again is the same bill
        queried = json.loads(pay_client.mch_transfer_bills_query(out_bill_no="W20261201001")[1])
        assert (queried["state"], queried["transfer_amount"]) == ("WAIT_USER_CONFIRM", 5000)
        server.settle_transfer("W20261201001")
        notice = pay_client.callback(
            server.transport.received[-1].headers, server.transport.received[-1].body
        )
        assert notice["event_type"] == "MCHTRANSFER.BILL.FINISHED"
        assert (
            notice["resource"]["state"] == "SUCCESS" and notice["resource"]["out_bill_no"] == "W20261201001"
        )

    def test_a_large_transfer_needs_the_encrypted_real_name(self, server, pay_client):
        assert transfer(pay_client, transfer_amount=200000, user_name="张三")[0] == 200
        assert server.transfers["W20261201001"].user_name == "张三"
        body = {**server.requests[-1].json, "out_bill_no": "W20261201002"}
        del body["user_name"]
        assert error_of(post(pay_client, "/v3/fund-app/mch-transfer/transfer-bills", body)) == (
            400,
            "PARAM_ERROR",
        )

    @pytest.mark.parametrize(
        "changes",
        [
            {"transfer_remark": "佣" * 33},
            {"out_bill_no": "W2026-12-01"},
            {"out_bill_no": "W1"},
            {"transfer_scene_report_infos": REPORT_INFOS[:1]},
            {"out_bill_no": "W20261201001", "transfer_amount": 5001},
        ],
        ids=["remark-33", "dash", "short", "report-infos", "changed-repeat"],
    )
    def test_bad_transfers_are_refused(self, server, pay_client, changes):
        transfer(pay_client)
        code, answer = transfer(pay_client, **changes)
        assert code == 400 and answer["code"] in {"PARAM_ERROR", "INVALID_REQUEST"}
        assert len(server.transfers) == 1

    def test_cancel_then_cancelled_and_unknown_bill_404(self, server, pay_client):
        transfer(pay_client)
        assert json.loads(pay_client.mch_transfer_bills_cancel("W20261201001")[1])["state"] == "CANCELING"
        server.settle_transfer("W20261201001", "CANCELLED")
        assert (
            json.loads(pay_client.mch_transfer_bills_query(out_bill_no="W20261201001")[1])["state"]
            == "CANCELLED"
        )
        assert pay_client.mch_transfer_bills_query(out_bill_no="W404")[0] == 404


# --------------------------------------------------------------------------- suite fixtures


def test_the_suite_fixture_points_settings_at_the_server(wechatpay_server, settings):
    config = wechatpay_server.config
    assert wechatpay_server.url == settings.WECHATPAY_API_BASE and settings.WECHATPAY_MODE == "direct"
    pay_client = make_client(
        wechatpay_server, mchid=settings.WECHATPAY_MCHID, private_key=settings.WECHATPAY_PRIVATE_KEY,
        cert_serial_no=settings.WECHATPAY_CERT_SERIAL_NO, apiv3_key=settings.WECHATPAY_APIV3_KEY,
        public_key=settings.WECHATPAY_PUBLIC_KEY, public_key_id=settings.WECHATPAY_PUBLIC_KEY_ID,
        appid=settings.WECHAT_APP_ID, notify_url=settings.WECHATPAY_NOTIFY_URL,
    )  # fmt: skip
    assert (
        pay_client.pay(
            description="x", out_trade_no="order_0001", amount={"total": 1}, payer={"openid": "o"}
        )[0]
        == 200
    )
    assert config.public_key_id.startswith("PUB_KEY_ID_")
