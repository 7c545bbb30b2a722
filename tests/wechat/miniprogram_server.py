"""A local stand-in for the mini-program server APIs under ``WECHAT_API_BASE``.

Answers like api.weixin.qq.com: HTTP 200 with ``{"errcode", "errmsg"}`` (errcode 0 on success where
WeChat sends it). Endpoints:

* ``GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code``: codes come from
  ``issue_code(openid, unionid=None)`` and work once (40029 invalid, 40163 already used);
* ``POST /cgi-bin/stable_token`` ``{grant_type, appid, secret, force_refresh}``: the same token until
  its last 5 minutes (7200 s), then a new one while the old one lives on until it expires;
  ``force_refresh`` replaces it (the old one stops working; 20 a day, then 45009); ``force_refresh``
  must be a JSON boolean (47001);
* ``POST /cgi-bin/message/subscribe/send?access_token=``: needs a template (``add_template``) and a
  member's unused consent (``subscribe``); 43101 without one; values within WeChat's limits per key
  type (length, and what a phrase, number, amount ... may hold) or 47003;
* ``POST /wxa/sec/order/upload_shipping_info?access_token=``: the payment must be known
  (``add_payment`` or a linked ``WechatPayServer``; 10060001 otherwise), one re-upload allowed;
* ``POST /wxa/business/getuserphonenumber?access_token=`` ``{code}`` (a string, else 47001): codes from
  ``issue_phone_code``; the answer's ``phone_info.watermark.appid`` is the app the code was issued to.

Token errors: 41001 missing, 40001 invalid, 42001 expired. ``fail_next(errcode, errmsg)`` makes the
next call answer an error (e.g. -1 system busy, 45011 quota), ``fail_http_next(502)`` a gateway error,
``hang`` delays answers.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_LIFETIME = 7200
RENEW_BEFORE = 300  # normal mode hands out a new token in the last 5 minutes; the old one lives on
FORCE_REFRESH_DAILY = 20
# The longest value WeChat accepts per subscription-message key type (characters).
KEY_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "time": 64,
    "date": 64,
    "amount": 32,
    "phone_number": 17,
    "car_number": 8,
    "name": 10,
    "phrase": 5,
}
# What each key type may hold beyond its length (WeChat's "参数值内容限制").
KEY_PATTERNS = {
    "number": re.compile(r"\d+(\.\d+)?"),
    "letter": re.compile(r"[A-Za-z]+"),
    "character_string": re.compile(r"[\x21-\x7e]+"),  # digits, letters or symbols, no Chinese
    "phrase": re.compile(r"[\u4e00-\u9fff]+"),  # Chinese characters only
    "amount": re.compile(r"[¥￥$€£]?\d{1,10}(\.\d{1,2})?元?"),  # one currency sign, at most 10 digits
}
CJK = re.compile(r"[\u4e00-\u9fff]")
EXPRESS_COMPANIES = {"SF", "ZTO", "YTO", "JTSD", "YD", "STO", "EMS", "JD", "DBL"}


class _Refusal(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(errcode, errmsg)
        self.errcode, self.errmsg = errcode, errmsg


@dataclass
class Shipment:
    uploads: list[dict] = field(default_factory=list)  # every accepted upload, in order
    completed: bool = False


class MiniProgramServer:
    """api.weixin.qq.com for one mini-program, on 127.0.0.1:<random port>."""

    def __init__(
        self,
        appid: str = "wx1234567890abcdef",
        secret: str = "test-app-secret",  # noqa: S107
        pay_server: Any = None,
    ):
        self.appid, self.secret = appid, secret
        self.pay_server = pay_server  # a WechatPayServer whose paid orders are known payments
        self.clock = time.time
        self.hang = 0.0
        self.calls: list[tuple[str, dict, Any]] = []  # (path, query, JSON body)
        self.sent_messages: list[dict] = []
        self.templates: dict[str, set[str]] = {}
        self.consents: Counter[tuple[str, str]] = Counter()
        self.payments: dict[str, str] = {}  # transaction_id or "mchid:out_trade_no" -> payer openid
        self.shipments: dict[str, Shipment] = {}
        self._codes: dict[str, dict] = {}
        self._phone_codes: dict[str, str] = {}
        self._token: tuple[str, float] | None = None  # the current token and its expiry
        self._tokens: dict[str, float] = {}  # every token still accepted, with its expiry
        self.forced_refreshes = 0  # force_refresh calls today (WeChat allows 20)
        self._faults: list[_Refusal] = []
        self._http_faults: list[int] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> MiniProgramServer:
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    # -- test controls

    def issue_code(self, openid: str, unionid: str | None = None) -> str:
        """A ``wx.login`` code for this member (valid once)."""
        code = secrets.token_hex(16)
        self._codes[code] = {"openid": openid, "unionid": unionid, "used": False}
        return code

    def issue_phone_code(self, phone: str, country_code: str = "86", *, appid: str | None = None) -> str:
        """A ``getPhoneNumber`` code (valid once); ``appid`` puts another app in the watermark."""
        code = secrets.token_hex(16)
        self._phone_codes[code] = (country_code, phone, appid or self.appid)
        return code

    def add_template(self, template_id: str, keys: list[str]) -> None:
        """A subscription-message template and its keys, e.g. ``["thing1", "time2"]``."""
        self.templates[template_id] = set(keys)

    def subscribe(self, openid: str, template_id: str, times: int = 1) -> None:
        """The member accepted the template in ``wx.requestSubscribeMessage`` (one message each)."""
        self.consents[(openid, template_id)] += times

    def add_payment(self, openid: str, *, transaction_id: str | None = None, mchid: str | None = None,
                    out_trade_no: str | None = None) -> None:  # fmt: skip
        if transaction_id:
            self.payments[transaction_id] = openid
        if mchid and out_trade_no:
            self.payments[f"{mchid}:{out_trade_no}"] = openid

    def expire_token(self) -> None:
        if self._token is not None:
            self._token = (self._token[0], 0.0)
            self._tokens[self._token[0]] = 0.0

    def fail_next(self, errcode: int = -1, errmsg: str = "system error", count: int = 1) -> None:
        self._faults.extend([_Refusal(errcode, errmsg)] * count)

    def fail_http_next(self, status: int = 502, count: int = 1) -> None:
        """The next calls end at the gateway: HTTP ``status`` with an HTML page, nothing done."""
        self._http_faults.extend([status] * count)

    def http_fault(self) -> int | None:
        with self._lock:
            return self._http_faults.pop(0) if self._http_faults else None

    # -- HTTP entry point

    def handle(self, method: str, target: str, body: str) -> dict:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        with self._lock:
            self.calls.append((split.path, query, data))
        if self.hang:
            time.sleep(self.hang)
        routes = {
            ("GET", "/sns/jscode2session"): self._code2session,
            ("POST", "/cgi-bin/stable_token"): self._stable_token,
            ("POST", "/cgi-bin/message/subscribe/send"): self._subscribe_send,
            ("POST", "/wxa/sec/order/upload_shipping_info"): self._upload_shipping,
            ("POST", "/wxa/business/getuserphonenumber"): self._phone_number,
        }
        handler = routes.get((method, split.path))
        try:
            if handler is None:
                raise _Refusal(40066, "invalid url")
            with self._lock:
                if self._faults:
                    raise self._faults.pop(0)
                if handler != self._code2session and handler != self._stable_token:
                    self._check_token(query.get("access_token"))
                if method == "POST" and not isinstance(data, dict):
                    raise _Refusal(47001, "data format error")
                return handler(query, data)
        except _Refusal as refusal:
            return {"errcode": refusal.errcode, "errmsg": refusal.errmsg}

    def _check_credentials(self, appid: Any, secret: Any) -> None:
        if appid != self.appid:
            raise _Refusal(40013, "invalid appid")
        if secret != self.secret:
            raise _Refusal(40125, "invalid appsecret")

    def _check_token(self, token: str | None) -> None:
        if not token:
            raise _Refusal(41001, "access_token missing")
        if token not in self._tokens:
            raise _Refusal(40001, "invalid credential, access_token is invalid or not latest")
        if self.clock() >= self._tokens[token]:
            raise _Refusal(42001, "access_token expired")

    # -- endpoints

    def _code2session(self, query: dict, _data: Any) -> dict:
        self._check_credentials(query.get("appid"), query.get("secret"))
        if query.get("grant_type") != "authorization_code":
            raise _Refusal(40002, "invalid grant_type")
        entry = self._codes.get(query.get("js_code", ""))
        if entry is None:
            raise _Refusal(40029, "invalid code")
        if entry["used"]:
            raise _Refusal(40163, "code been used")
        entry["used"] = True
        answer = {"openid": entry["openid"], "session_key": secrets.token_urlsafe(16)}
        if entry["unionid"]:
            answer["unionid"] = entry["unionid"]
        return answer

    def _stable_token(self, _query: dict, data: dict) -> dict:
        if data.get("grant_type") != "client_credential":
            raise _Refusal(40002, "invalid grant_type")
        self._check_credentials(data.get("appid"), data.get("secret"))
        if "force_refresh" in data and not isinstance(data["force_refresh"], bool):
            raise _Refusal(47001, "data format error")
        now = self.clock()
        if data.get("force_refresh"):
            if self.forced_refreshes >= FORCE_REFRESH_DAILY:
                raise _Refusal(45009, "reach max api daily quota limit")
            self.forced_refreshes += 1
            self._tokens.clear()  # the last token stops working at once
        if data.get("force_refresh") or self._token is None or self._token[1] - now <= RENEW_BEFORE:
            self._token = (secrets.token_urlsafe(48), now + TOKEN_LIFETIME)
            self._tokens[self._token[0]] = self._token[1]
        return {"access_token": self._token[0], "expires_in": round(self._token[1] - self.clock())}

    def _subscribe_send(self, _query: dict, data: dict) -> dict:
        touser, template_id, values = data.get("touser"), data.get("template_id"), data.get("data")
        if not isinstance(touser, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", touser):
            raise _Refusal(40003, "invalid openid")
        if template_id not in self.templates:
            raise _Refusal(40037, "invalid template_id")
        if data.get("miniprogram_state", "formal") not in {"developer", "trial", "formal"}:
            raise _Refusal(47003, "argument invalid! miniprogram_state invalid")
        if not isinstance(values, dict) or set(values) != self.templates[template_id]:
            raise _Refusal(47003, "argument invalid! data.keys invalid")
        for key, item in values.items():
            value = item.get("value") if isinstance(item, dict) else None
            kind = re.sub(r"\d+$", "", key)
            limit = KEY_LIMITS.get(kind, 20)
            if kind == "name" and isinstance(value, str) and not CJK.search(value):
                limit = 20  # 10 Chinese characters, or 20 letters
            pattern = KEY_PATTERNS.get(kind)
            if (
                not isinstance(value, str)
                or not value
                or len(value) > limit
                or (pattern is not None and not pattern.fullmatch(value))
            ):
                raise _Refusal(47003, f"argument invalid! data.{key}.value invalid")
        if self.consents[(touser, template_id)] <= 0:
            raise _Refusal(43101, "user refuse to accept the msg")
        self.consents[(touser, template_id)] -= 1
        message = {"msgid": int(secrets.randbelow(10**12))} | data
        self.sent_messages.append(message)
        return {"errcode": 0, "errmsg": "ok", "msgid": message["msgid"]}

    def _payment_payer(self, order_key: Any) -> tuple[str, str]:
        if not isinstance(order_key, dict) or order_key.get("order_number_type") not in (1, 2):
            raise _Refusal(10060014, "参数错误：order_key.order_number_type 须为 1 或 2")
        if order_key["order_number_type"] == 2:
            key = str(order_key.get("transaction_id", ""))
        else:
            key = f"{order_key.get('mchid', '')}:{order_key.get('out_trade_no', '')}"
        known = dict(self.payments)
        if self.pay_server is not None:
            for order in list(self.pay_server.orders.values()):
                if order.transaction_id:
                    known[order.transaction_id] = order.openid
                    known[f"{order.mchid}:{order.out_trade_no}"] = order.openid
        if key not in known:
            raise _Refusal(10060001, "支付单不存在")
        return key, known[key]

    def _upload_shipping(self, _query: dict, data: dict) -> dict:
        key, payer = self._payment_payer(data.get("order_key"))
        payer_openid = (
            (data.get("payer") or {}).get("openid") if isinstance(data.get("payer"), dict) else None
        )
        if payer_openid != payer:
            raise _Refusal(10060031, "该笔订单不属于该用户")
        logistics, mode = data.get("logistics_type"), data.get("delivery_mode")
        if logistics not in (1, 2, 3, 4):
            raise _Refusal(10060005, "物流类型有误")
        if mode not in (1, 2):
            raise _Refusal(10060014, "参数错误：delivery_mode 须为 1 或 2")
        if mode == 2 and logistics != 1:
            raise _Refusal(10060006, "非快递发货时不允许分拆发货")
        if mode == 2 and not isinstance(data.get("is_all_delivered"), bool):
            raise _Refusal(10060007, "分拆发货模式下必须填写 is_all_delivered 字段")
        upload_time = data.get("upload_time")
        if not isinstance(upload_time, str) or not re.fullmatch(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)", upload_time
        ):
            raise _Refusal(10060014, "参数错误：upload_time 须为 RFC 3339 时间")
        self._check_shipping_list(data.get("shipping_list"), logistics, mode)
        shipment = self.shipments.setdefault(key, Shipment())
        if shipment.completed and len(shipment.uploads) >= 2:
            raise _Refusal(10060003, "支付单已使用重新发货机会")
        if shipment.completed and data == shipment.uploads[-1]:
            raise _Refusal(10060023, "发货信息未更新")
        shipment.uploads.append(data)
        shipment.completed = mode == 1 or bool(data.get("is_all_delivered"))
        return {"errcode": 0, "errmsg": "ok"}

    @staticmethod
    def _check_shipping_list(items: Any, logistics: int, mode: int) -> None:
        if not isinstance(items, list) or not items:
            raise _Refusal(10060014, "参数错误：shipping_list 不能为空")
        if len(items) > (15 if mode == 2 else 1) or len(items) > 15:
            raise _Refusal(10060024, "物流信息列表太长")
        for item in items:
            if not isinstance(item, dict):
                raise _Refusal(10060014, "参数错误：shipping_list 的元素须为对象")
            desc = item.get("item_desc")
            if not isinstance(desc, str) or not desc:
                raise _Refusal(10060008, "商品描述 item_desc 字段不能为空")
            if len(desc) > 120:
                raise _Refusal(10060009, "商品描述 item_desc 字段太长")
            if logistics != 1:
                continue
            company, tracking = item.get("express_company"), item.get("tracking_no")
            if company not in EXPRESS_COMPANIES:
                raise _Refusal(10060014, "参数错误：express_company 不是有效的快递公司编码")
            if not isinstance(tracking, str) or not tracking or len(tracking) > 128:
                raise _Refusal(10060026, "物流单号太长或为空")
            contact = item.get("contact") if isinstance(item.get("contact"), dict) else {}
            if company == "SF" and not (contact.get("receiver_contact") or contact.get("consignor_contact")):
                raise _Refusal(10060014, "参数错误：顺丰快递须填写 contact（收件人或寄件人联系方式）")

    def _phone_number(self, _query: dict, data: dict) -> dict:
        code = data.get("code")
        if not isinstance(code, str) or not code:
            raise _Refusal(47001, "data format error")
        entry = self._phone_codes.pop(code, None)
        if entry is None:
            raise _Refusal(40029, "invalid code")
        country, phone, appid = entry
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {
                "phoneNumber": phone if country == "86" else f"+{country}{phone}",
                "purePhoneNumber": phone,
                "countryCode": country,
                "watermark": {"timestamp": int(self.clock()), "appid": appid},
            },
        }


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # bursts of parallel senders queue as at WeChat, not refused at 5


def _handler_for(server: MiniProgramServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like api.weixin.qq.com

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            status, content_type = server.http_fault(), "text/html"
            if status is not None:
                raw = b"<html><body>502 Bad Gateway</body></html>"
            else:
                raw = json.dumps(server.handle(self.command, self.path, body), ensure_ascii=False).encode()
                status, content_type = 200, "application/json; charset=UTF-8"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler
