"""A strict local WeChat Pay API v3 server for tests.

It answers the endpoints our provider uses, the way the official v3 documentation describes them:

* ``POST /v3/pay/transactions/jsapi`` and ``POST /v3/pay/partner/transactions/jsapi`` (prepay);
* ``GET .../out-trade-no/{no}?mchid=`` (partner: ``?sp_mchid=&sub_mchid=``) and ``GET .../id/{id}``;
* ``POST .../out-trade-no/{no}/close`` (204);
* ``POST /v3/refund/domestic/refunds`` and ``GET /v3/refund/domestic/refunds/{no}[?sub_mchid=]``;
* ``GET /v3/bill/tradebill`` and the (unsigned) file at its ``download_url``;
* ``POST /v3/fund-app/mch-transfer/transfer-bills``, ``GET .../out-bill-no/{no}``, ``POST .../cancel``.

Every request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization made with the
merchant key (mchid, certificate serial, timestamp within 5 minutes, signature over
``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``); a ``Wechatpay-Serial`` header, when sent, must
name the WeChat Pay public key id. Every JSON answer (errors included) and every notification is
signed with the platform key in public-key mode (``Wechatpay-Serial: PUB_KEY_ID_...``).
Notifications carry their resource encrypted with AEAD_AES_256_GCM and the APIv3 key.

Unknown body fields are ignored (as the v3 gateway does), except by 发起转账, which refuses any field
its page does not list (so tests prove we send only documented ones); known ones are checked
strictly for type, length and format, including ``null`` values, which are refused.

Merchant transfers (商家转账, https://pay.weixin.qq.com/doc/v3/merchant/4012716434): appid (the
merchant's), out_bill_no ``[0-9A-Za-z]{5,32}``, transfer_scene_id (string, 1000 or 1005 here),
openid, transfer_amount (integer fen, from 10 = 0.1 yuan), transfer_remark (<= 32 characters),
notify_url, user_recv_perception (one of the scene's values), transfer_scene_report_infos (exactly
the scene's info_types, each once: 1005 岗位类型 and 报酬说明; info_type <= 15 and info_content
<= 32 characters) and user_name (RSA-OAEP ciphertext with the WeChat Pay public key, named by
``Wechatpay-Serial``; refused below 0.3 yuan, required from 2,000 yuan). The same out_bill_no with
the same parameters (user_name compared in clear) answers the same bill; otherwise ``400
INVALID_REQUEST``. ``403 NOT_ENOUGH`` when ``merchant_balance`` is below the amount (retry with the
same out_bill_no after a top-up).

Choices where the documentation leaves the exact answer open (kept in one place here):

* same ``out_trade_no`` with any parameter changed: ``400 INVALID_REQUEST "201 商户订单号重复"``
  (WeChat's observed answer); identical parameters answer the same ``prepay_id``;
* prepay or close of a paid order: ``400 ORDERPAID``; prepay of a closed one: ``400 ORDER_CLOSED``;
  closing a closed order is a no-op 204; unknown order: ``404 ORDER_NOT_EXIST``;
* a refund above what remains refundable: ``400 INVALID_REQUEST`` (business rule); ``403
  NOT_ENOUGH`` is the documented "merchant balance too low" and is produced when
  ``server.merchant_balance`` (fen, ``None`` = unlimited) is smaller than the refund or transfer;
* refund of an unknown order: ``404 RESOURCE_NOT_EXISTS``; of an unpaid one: ``400 INVALID_REQUEST``;
* ``notify_url`` must be http(s) without a query; ``require_https_notify=True`` demands https as
  WeChat does for public domains (tests use http://127.0.0.1 or http://testserver, so it is off);
* an expired order (past ``time_expire``) still queries as NOTPAY but cannot be paid;
* ``server.mode`` ("direct" / "partner", set by the suite fixtures; ``None`` accepts both): the other
  kind's order APIs answer ``403 NO_AUTH``; partner refunds must name ``sub_mchid`` (PARAM_ERROR).

Test controls:

* ``pay()``, ``settle_refund()``, ``settle_transfer()``: what the member / WeChat does; each notifies;
* ``notify_mode``: deliver (default), hold (kept in ``held``), drop, twice, tamper (body changed after
  signing), stale (signed 10 minutes ago); ``deliver()`` replays, ``retry_failed()`` is WeChat's retry
  round; ``deliveries`` records each attempt and the answer; ``transport`` is how they are sent;
* ``requests`` (every request received), ``hang`` (seconds before answering), ``fail_next()``,
  ``tamper_responses``, ``merchant_balance``, ``require_https_notify``;
* ``clock``: a ``time.time``-like callable for business time (bill days, ``time_expire``, success
  times); signatures always use the real clock.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CHINA = timezone(timedelta(hours=8))
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
CLOCK_SKEW = 300  # seconds WeChat tolerates between the Authorization timestamp and its clock
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-*|]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
OUT_BILL_NO = re.compile(r"[0-9A-Za-z]{5,32}")
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}")
BILL_HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
BILL_SUMMARY_HEADER = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
FEE_RATE = Decimal("0.006")
# Report infos WeChat requires per transfer scene (商家转账 "转账场景报备信息").
TRANSFER_SCENES = {"1000": ("活动名称", "奖励说明"), "1005": ("岗位类型", "报酬说明")}
# What ``user_recv_perception`` may say per scene (absent: the scene's default is shown).
TRANSFER_PERCEPTIONS = {"1000": ("活动奖励", "现金奖励"), "1005": ("劳务报酬", "报酬收入")}
# The documented body of 发起转账; anything else is refused (see the module docstring).
TRANSFER_FIELDS = {
    "appid", "out_bill_no", "transfer_scene_id", "openid", "user_name", "transfer_amount",
    "transfer_remark", "notify_url", "user_recv_perception", "transfer_scene_report_infos",
}  # fmt: skip
# user_name may be sent from 0.30 yuan and must be from 2,000 yuan (fen).
USER_NAME_FROM, USER_NAME_REQUIRED_FROM = 30, 200000
NOTIFY_MODES = {"deliver", "hold", "drop", "twice", "tamper", "stale"}


# --------------------------------------------------------------------------- keys and config


@functools.cache
def _rsa_key_pem(name: str) -> str:
    """One 2048-bit key per name and process: generation is slow, tests need only a few."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@functools.cache
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    """Loaded once: checking an RSA key on load is slow, and these keys were made here."""
    return serialization.load_pem_private_key(
        pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
    )


@functools.cache
def _public_key(pem: str) -> rsa.RSAPublicKey:
    return serialization.load_pem_public_key(pem.encode())


def _public_pem(private_pem: str) -> str:
    key = _private_key(private_pem)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@functools.cache
def _merchant_certificate_serial(private_pem: str) -> str:
    """The serial of a self-signed "merchant API certificate" for the key (40 upper-case hex)."""
    key = _private_key(private_pem)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "shequn test merchant")])
    now = datetime.now(UTC)
    serial = x509.random_serial_number()
    x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(
        serial
    ).not_valid_before(now).not_valid_after(now + timedelta(days=3650)).sign(key, hashes.SHA256())
    return f"{serial:040X}"


@dataclass(frozen=True)
class WechatPayConfig:
    """What WeChat and the merchant share: the merchant's half and WeChat Pay's half."""

    mchid: str
    appid: str
    sp_appid: str
    sub_mchids: tuple[str, ...]
    merchant_private_key: str  # PEM, the merchant's secret (our WECHATPAY_PRIVATE_KEY)
    merchant_public_key: str  # what WeChat holds to verify the merchant's signatures
    merchant_serial: str  # WECHATPAY_CERT_SERIAL_NO
    platform_private_key: str  # WeChat Pay's secret: signs answers and notifications
    platform_public_key: str  # WECHATPAY_PUBLIC_KEY
    public_key_id: str  # WECHATPAY_PUBLIC_KEY_ID
    apiv3_key: str  # 32 characters, WECHATPAY_APIV3_KEY


def make_config(**overrides: Any) -> WechatPayConfig:
    """A complete matching configuration; the RSA keys are generated once per process."""
    merchant = _rsa_key_pem("merchant")
    platform = _rsa_key_pem("platform")
    config = WechatPayConfig(
        mchid="1900000100",
        appid="wx1234567890abcdef",
        sp_appid="wxsp567890abcdef12",
        sub_mchids=("1900000109", "1900000110"),
        merchant_private_key=merchant,
        merchant_public_key=_public_pem(merchant),
        merchant_serial=_merchant_certificate_serial(merchant),
        platform_private_key=platform,
        platform_public_key=_public_pem(platform),
        public_key_id="PUB_KEY_ID_0119000001002026120100000000000001",
        apiv3_key="0123456789abcdefghijABCDEFGHIJ01",
    )
    return replace(config, **overrides)


# --------------------------------------------------------------------------- small helpers


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def fen_to_yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def _nonce(length: int = 32) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def rsa_sign(private_pem: str, message: str) -> str:
    key = _private_key(private_pem)
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(public_pem: str, message: str, signature: str) -> bool:
    key = _public_key(public_pem)
    try:
        key.verify(
            base64.b64decode(signature, validate=True), message.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def rsa_decrypt(private_pem: str, ciphertext: str) -> str:
    """Sensitive fields (``user_name``) are RSA-OAEP(SHA1) with the WeChat Pay public key."""
    key = _private_key(private_pem)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303
    return key.decrypt(base64.b64decode(ciphertext, validate=True), oaep).decode()


class WxError(Exception):
    """An error answer: HTTP status and ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _param_error(message: str) -> WxError:
    return WxError(400, "PARAM_ERROR", message)


class Fields:
    """Strict reading of a JSON object's documented fields, with WeChat-style messages."""

    def __init__(self, data: Any, path: str = "/body"):
        if not isinstance(data, dict):
            raise _param_error(f"输入源“{path}”类型不符，应为对象")
        self.data, self.path = data, path

    def _get(self, name: str, required: bool) -> Any:
        if name not in self.data:
            if required:
                raise _param_error(
                    f"输入源“{self.path}/{name}”映射到值字段“{name}”必填性规则校验失败，此字段为必填项"
                )
            return None
        if self.data[name] is None:
            raise _param_error(f"输入源“{self.path}/{name}”映射到值字段“{name}”类型不符，不能为null")
        return self.data[name]

    def _type_error(self, name: str, kind: str) -> WxError:
        return _param_error(f"输入源“{self.path}/{name}”映射到值字段“{name}”类型不符，应为{kind}")

    def str(
        self,
        name: str,
        *,
        required: bool = True,
        max_bytes: int | None = None,
        max_chars: int | None = None,
        pattern: re.Pattern | None = None,
        choices: tuple | None = None,
    ) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._type_error(name, "string")
        where = f"输入源“{self.path}/{name}”映射到值字段“{name}”字符串规则校验失败"
        if required and value == "":
            raise _param_error(f"{where}，不能为空")
        size = len(value.encode())
        if max_bytes is not None and size > max_bytes:
            raise _param_error(f"{where}，字节数 {size}，大于最大值 {max_bytes}")
        if max_chars is not None and len(value) > max_chars:
            raise _param_error(f"{where}，字符数 {len(value)}，大于最大值 {max_chars}")
        if pattern is not None and not pattern.fullmatch(value):
            raise _param_error(f"{where}，格式不符")
        if choices is not None and value not in choices:
            raise _param_error(f"{where}，取值不在 {'/'.join(choices)} 之中")
        return value

    def int(self, name: str, *, required: bool = True, minimum: int | None = None) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._type_error(name, "integer")
        if minimum is not None and value < minimum:
            raise _param_error(
                f"输入源“{self.path}/{name}”映射到值字段“{name}”数值规则校验失败，小于最小值 {minimum}"
            )
        return value

    def bool(self, name: str) -> bool | None:
        value = self._get(name, required=False)
        if value is not None and not isinstance(value, bool):
            raise self._type_error(name, "boolean")
        return value

    def obj(self, name: str, *, required: bool = True) -> Fields | None:
        value = self._get(name, required)
        return None if value is None else Fields(value, f"{self.path}/{name}")

    def list(self, name: str, *, required: bool = False) -> list | None:
        value = self._get(name, required)
        if value is not None and not isinstance(value, list):
            raise self._type_error(name, "array")
        return value


# --------------------------------------------------------------------------- records and state


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Notification:
    """One notification as WeChat builds it: where it goes, its signed headers and JSON body."""

    url: str
    event_type: str
    resource: dict
    headers: dict[str, str]
    body: str

    @property
    def id(self) -> str:
        return json.loads(self.body)["id"]


@dataclass
class Delivery:
    notification: Notification
    status: int | None  # None: the notify URL could not be reached
    body: str

    @property
    def accepted(self) -> bool:
        """WeChat takes only HTTP 200 or 204 as "received"; anything else is retried."""
        return self.status in (200, 204)


@dataclass
class Order:
    mchid: str
    sub_mchid: str | None
    out_trade_no: str
    request: dict  # the prepay body as received: any change is a different order
    prepay_id: str
    created: datetime
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: datetime | None = None
    openid: str | None = None

    @property
    def total(self) -> int:
        return self.request["amount"]["total"]

    @property
    def partner(self) -> bool:
        return self.sub_mchid is not None

    def expired(self, now: datetime) -> bool:
        expire = self.request.get("time_expire")
        return bool(expire) and datetime.fromisoformat(expire) <= now


@dataclass
class Refund:
    order: Order
    out_refund_no: str
    refund_id: str
    amount: int
    request: dict
    created: datetime
    status: str = "PROCESSING"
    success_time: datetime | None = None


@dataclass
class Transfer:
    out_bill_no: str
    transfer_bill_no: str
    request: dict
    user_name: str | None
    created: datetime
    state: str = "WAIT_USER_CONFIRM"
    fail_reason: str | None = None
    updated: datetime | None = None


@dataclass
class _Answer:
    status: int
    payload: Any = None  # JSON answer, or bytes for a file download
    signed: bool = True


# --------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the standard library's 5 drops a burst's connections (a second each)


class WechatPayServer:
    """WeChat Pay API v3 on 127.0.0.1:<random port>, in a thread; see the module docstring."""

    def __init__(self, config: WechatPayConfig | None = None, *, require_https_notify: bool = False):
        self.config = config or make_config()
        self.require_https_notify = require_https_notify
        self.clock: Callable[[], float] = time.time
        self.requests: list[RecordedRequest] = []
        self.notifications: list[Notification] = []  # every notification built, in order
        self.held: list[Notification] = []  # built but not sent (notify_mode "hold")
        self.deliveries: list[Delivery] = []
        self.notify_mode = "deliver"
        self.transport: Callable[[Notification], tuple[int | None, str]] = http_transport
        self.hang = 0.0
        self.tamper_responses = False
        self.merchant_balance: int | None = None
        self.mode: str | None = None  # "direct", "partner", or None: both kinds of merchant
        self.orders: dict[tuple[str | None, str], Order] = {}
        self.refunds: dict[tuple[str | None, str], Refund] = {}
        self.transfers: dict[str, Transfer] = {}
        self._faults: list[WxError] = []
        self._bills: dict[str, bytes] = {}
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle

    def start(self) -> WechatPayServer:
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> WechatPayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), CHINA)

    # -- test controls

    def fail_next(
        self,
        status: int = 500,
        code: str = "SYSTEM_ERROR",
        message: str = "系统异常，请稍后重试",
        count: int = 1,
    ) -> None:
        """The next ``count`` requests (after their signature check) get this error answer."""
        with self._lock:
            self._faults.extend([WxError(status, code, message)] * count)

    def order(self, out_trade_no: str, sub_mchid: str | None = None) -> Order:
        return self.orders[(sub_mchid, out_trade_no)]

    def refund(self, out_refund_no: str, sub_mchid: str | None = None) -> Refund:
        return self.refunds[(sub_mchid, out_refund_no)]

    def pay(
        self,
        out_trade_no: str,
        openid: str | None = None,
        *,
        sub_mchid: str | None = None,
        at: datetime | None = None,
    ) -> Order:
        """The member confirms in ``wx.requestPayment``: the order succeeds and WeChat notifies."""
        with self._lock:
            order = self.order(out_trade_no, sub_mchid)
            if order.state != "NOTPAY" or order.expired(self.now()):
                raise ValueError(f"order {out_trade_no} cannot be paid ({order.state}, past time_expire?)")
            payer = order.request["payer"]
            order.openid = openid or payer.get("openid") or payer.get("sub_openid") or payer.get("sp_openid")
            order.state = "SUCCESS"
            order.transaction_id = "4200" + (at or self.now()).strftime("%Y%m%d") + _digits(16)
            order.success_time = (at or self.now()).replace(microsecond=0)
            notification = self._notification(
                order.request["notify_url"],
                "TRANSACTION.SUCCESS",
                "支付成功",
                "transaction",
                self._transaction(order),
            )
        self._dispatch(notification)
        return order

    def settle_refund(
        self,
        out_refund_no: str,
        status: str = "SUCCESS",
        *,
        sub_mchid: str | None = None,
        at: datetime | None = None,
    ) -> Refund:
        """A PROCESSING refund ends: SUCCESS, ABNORMAL or CLOSED; WeChat notifies the final state."""
        summaries = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}
        if status not in summaries:
            raise ValueError(f"a refund ends SUCCESS, ABNORMAL or CLOSED, not {status}")
        with self._lock:
            refund = self.refund(out_refund_no, sub_mchid)
            if refund.status != "PROCESSING":
                raise ValueError(f"refund {out_refund_no} is already {refund.status}")
            refund.status = status
            if status == "SUCCESS":
                refund.success_time = (at or self.now()).replace(microsecond=0)
            notify_url = refund.request.get("notify_url")
            resource = self._refund_notice(refund)
        if notify_url:
            self._dispatch(
                self._notification(notify_url, f"REFUND.{status}", summaries[status], "refund", resource)
            )
        return refund

    def settle_transfer(
        self, out_bill_no: str, state: str = "SUCCESS", *, fail_reason: str | None = None
    ) -> Transfer:
        """The member confirms (SUCCESS), or the transfer fails / is cancelled; WeChat notifies."""
        if state not in {"SUCCESS", "FAIL", "CANCELLED"}:
            raise ValueError(f"a transfer ends SUCCESS, FAIL or CANCELLED, not {state}")
        with self._lock:
            transfer = self.transfers[out_bill_no]
            if transfer.state in {"SUCCESS", "FAIL", "CANCELLED"}:
                raise ValueError(f"transfer {out_bill_no} is already {transfer.state}")
            transfer.state, transfer.updated = state, self.now()
            transfer.fail_reason = fail_reason or ("PAYEE_ACCOUNT_ABNORMAL" if state == "FAIL" else None)
            resource = self._transfer_view(transfer, notice=True)
            notify_url = transfer.request.get("notify_url")
        if notify_url:
            self._dispatch(
                self._notification(
                    notify_url, "MCHTRANSFER.BILL.FINISHED", "商家转账单据终态通知", "mch_payment", resource
                )
            )
        return transfer

    def deliver(self, notification: Notification) -> Delivery:
        """POST a notification to its URL now (replays included) and record WeChat's view of it."""
        try:
            status, body = self.transport(notification)
        except OSError as exc:
            status, body = None, repr(exc)
        delivery = Delivery(notification, status, body)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def retry_failed(self) -> list[Delivery]:
        """WeChat's retry round: deliver again every notification never accepted (not held ones)."""
        with self._lock:
            accepted = {d.notification.id for d in self.deliveries if d.accepted}
            pending = {d.notification.id: d.notification for d in self.deliveries if not d.accepted}
        return [self.deliver(n) for key, n in pending.items() if key not in accepted]

    # -- notifications

    def sign_message(self, timestamp: str, nonce: str, body: str) -> str:
        return rsa_sign(self.config.platform_private_key, f"{timestamp}\n{nonce}\n{body}\n")

    def _signed_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        stamp, nonce = str(int(time.time()) if timestamp is None else timestamp), _nonce()
        return {
            "Wechatpay-Serial": self.config.public_key_id,
            "Wechatpay-Signature": self.sign_message(stamp, nonce, body),
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def _notification(
        self, url: str, event_type: str, summary: str, original_type: str, resource: dict
    ) -> Notification:
        nonce = _nonce(12)
        plaintext = json.dumps(resource, ensure_ascii=False).encode()
        ciphertext = AESGCM(self.config.apiv3_key.encode()).encrypt(
            nonce.encode(), plaintext, original_type.encode()
        )
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(self.now()),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False)
        stale = int(time.time()) - 600 if self.notify_mode == "stale" else None
        headers = {"Content-Type": "application/json", "Request-ID": str(uuid.uuid4())}
        headers |= self._signed_headers(body, timestamp=stale)
        if self.notify_mode == "tamper":
            body = body.replace('"summary": "', '"summary": "!', 1)
        return Notification(url, event_type, resource, headers, body)

    def _dispatch(self, notification: Notification) -> None:
        if self.notify_mode not in NOTIFY_MODES:
            raise ValueError(f"notify_mode must be one of {sorted(NOTIFY_MODES)}")
        with self._lock:
            self.notifications.append(notification)
            if self.notify_mode == "hold":
                self.held.append(notification)
        if self.notify_mode in {"hold", "drop"}:
            return
        self.deliver(notification)
        if self.notify_mode == "twice":
            self.deliver(notification)

    # -- HTTP entry point

    def handle(self, method: str, target: str, headers: dict[str, str], body: str) -> _Answer:
        with self._lock:
            self.requests.append(RecordedRequest(method, target, headers, body))
        if self.hang:
            time.sleep(self.hang)
        try:
            self._authenticate(method, target, headers, body)
            with self._lock:
                if self._faults:
                    raise self._faults.pop(0)
                return self._route(method, target, headers, body)
        except WxError as error:
            return _Answer(error.status, {"code": error.code, "message": error.message})

    def _authenticate(self, method: str, target: str, headers: dict[str, str], body: str) -> None:
        authorization = headers.get("authorization", "")
        scheme, _, params = authorization.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        required = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"}
        if scheme != SIGNATURE_TYPE or not required <= fields.keys() or not all(fields[k] for k in required):
            raise WxError(
                401, "SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
            )
        if fields["mchid"] != self.config.mchid:
            raise WxError(401, "SIGN_ERROR", "商户号不存在或与Authorization中的证书不匹配")
        if fields["serial_no"].upper() != self.config.merchant_serial:
            raise WxError(401, "SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
        if not fields["timestamp"].isdigit() or abs(int(fields["timestamp"]) - time.time()) > CLOCK_SKEW:
            raise WxError(401, "SIGN_ERROR", "Http头Authorization中的timestamp与当前时间相差超过5分钟")
        message = f"{method}\n{target}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n"
        if not rsa_verify(self.config.merchant_public_key, message, fields["signature"]):
            raise WxError(401, "SIGN_ERROR", "错误的签名，验签失败")
        serial = headers.get("wechatpay-serial")
        if serial is not None and serial != self.config.public_key_id:
            raise WxError(400, "INVALID_REQUEST", "Wechatpay-Serial 对应的微信支付公钥或平台证书不存在")

    def _route(self, method: str, target: str, headers: dict[str, str], body: str) -> _Answer:
        split = urlsplit(target)
        path, query = split.path, {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        data = None
        if method == "POST" and body:
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise _param_error("请求体不是合法的JSON") from exc
        self._check_mode(path)
        for route_method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(*[unquote(g) for g in match.groups()], query=query, data=data, headers=headers)
        raise WxError(404, "NOT_FOUND", f"{method} {path} 不存在")

    def _check_mode(self, path: str) -> None:
        """A direct merchant has no service-provider APIs; a service provider orders for sub-merchants."""
        if self.mode == "direct" and "/partner/" in path:
            raise WxError(403, "NO_AUTH", "商户号无服务商权限，不能调用服务商接口")
        if self.mode == "partner" and path.startswith("/v3/pay/transactions/"):
            raise WxError(403, "NO_AUTH", "服务商商户号请使用服务商下单接口（/v3/pay/partner/...）")

    def _sub_mchid_of_refund(self, value: str | None) -> str | None:
        """Refunds of a service provider always name the sub-merchant; a direct merchant's never do."""
        if self.mode == "partner" and value is None:
            raise _param_error("服务商模式下 sub_mchid 必填")
        if value is not None:
            if self.mode == "direct":
                raise WxError(403, "NO_AUTH", "商户号无服务商权限，不能传入 sub_mchid")
            self._check_sub_mchid(value)
        return value

    def _routes(self):
        return (
            ("POST", r"/v3/pay/transactions/jsapi", self._prepay),
            ("POST", r"/v3/pay/partner/transactions/jsapi", self._prepay_partner),
            ("GET", r"/v3/pay/transactions/out-trade-no/([^/]+)", self._query),
            ("GET", r"/v3/pay/partner/transactions/out-trade-no/([^/]+)", self._query_partner),
            ("GET", r"/v3/pay/transactions/id/([^/]+)", self._query_by_id),
            ("GET", r"/v3/pay/partner/transactions/id/([^/]+)", self._query_by_id_partner),
            ("POST", r"/v3/pay/transactions/out-trade-no/([^/]+)/close", self._close),
            ("POST", r"/v3/pay/partner/transactions/out-trade-no/([^/]+)/close", self._close_partner),
            ("POST", r"/v3/refund/domestic/refunds", self._create_refund),
            ("GET", r"/v3/refund/domestic/refunds/([^/]+)", self._query_refund),
            ("GET", r"/v3/bill/tradebill", self._trade_bill),
            ("GET", r"/v3/billdownload/file", self._download_bill),
            ("POST", r"/v3/fund-app/mch-transfer/transfer-bills", self._create_transfer),
            ("GET", r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/([^/]+)", self._query_transfer),
            (
                "POST",
                r"/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/([^/]+)/cancel",
                self._cancel_transfer,
            ),
        )

    # -- prepay

    def _prepay(self, *, data: Any, **_: Any) -> _Answer:
        body = Fields(data if data is not None else {})
        appid = body.str("appid", max_bytes=32)
        mchid = body.str("mchid", max_bytes=32)
        self._check_mchid(mchid, "mchid")
        if appid != self.config.appid:
            raise WxError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配，请检查后再试")
        self._check_order_fields(body)
        body.obj("payer").str("openid", max_bytes=128)
        return self._place_order(None, data)

    def _prepay_partner(self, *, data: Any, **_: Any) -> _Answer:
        body = Fields(data if data is not None else {})
        sp_appid = body.str("sp_appid", max_bytes=32)
        self._check_mchid(body.str("sp_mchid", max_bytes=32), "sp_mchid")
        sub_mchid = self._check_sub_mchid(body.str("sub_mchid", max_bytes=32))
        sub_appid = body.str("sub_appid", required=False, max_bytes=32)
        if sp_appid != self.config.sp_appid:
            raise WxError(400, "APPID_MCHID_NOT_MATCH", "sp_appid和sp_mchid不匹配，请检查后再试")
        if sub_appid is not None and sub_appid != self.config.appid:
            raise WxError(400, "APPID_MCHID_NOT_MATCH", "sub_appid和sub_mchid不匹配，请检查后再试")
        self._check_order_fields(body)
        payer = body.obj("payer")
        sp_openid = payer.str("sp_openid", required=False, max_bytes=128)
        sub_openid = payer.str("sub_openid", required=False, max_bytes=128)
        if (sp_openid is None) == (sub_openid is None):
            raise _param_error("payer 须且只须填写 sp_openid 或 sub_openid 之一")
        if sub_openid is not None and sub_appid is None:
            raise _param_error("sub_openid 有传的情况下，sub_appid 必填")
        return self._place_order(sub_mchid, data)

    def _check_mchid(self, value: str | None, name: str) -> None:
        if value != self.config.mchid:
            raise _param_error(f"{name} 与 Authorization 中的商户号不一致")

    def _check_sub_mchid(self, value: str | None) -> str:
        if value not in self.config.sub_mchids:
            raise WxError(400, "INVALID_REQUEST", "特约商户号与服务商商户号无受理关系")
        return value

    def _check_order_fields(self, body: Fields) -> None:
        body.str("description", max_bytes=127)
        body.str("out_trade_no", pattern=OUT_TRADE_NO)
        self._check_notify_url(body.str("notify_url", max_bytes=255))
        body.str("attach", required=False, max_bytes=128)
        body.str("goods_tag", required=False, max_bytes=32)
        body.bool("support_fapiao")
        for name in ("detail", "settle_info"):
            body.obj(name, required=False)
        scene = body.obj("scene_info", required=False)
        if scene is not None:
            scene.str("payer_client_ip", max_bytes=45)
        amount = body.obj("amount")
        amount.int("total", minimum=1)
        amount.str("currency", required=False, choices=("CNY",))
        expire = body.str("time_expire", required=False, max_bytes=64)
        if expire is not None:
            if not RFC3339.fullmatch(expire):
                raise _param_error("time_expire 须为 rfc3339 格式 yyyy-MM-DDTHH:mm:ss+TIMEZONE")
            if datetime.fromisoformat(expire) <= self.now():
                raise _param_error("time_expire 交易结束时间已过")

    def _check_notify_url(self, url: str | None) -> None:
        if url is None:
            return
        parts = urlsplit(url)
        schemes = {"https"} if self.require_https_notify else {"http", "https"}
        if parts.scheme not in schemes or not parts.netloc or parts.query or parts.fragment:
            raise _param_error("notify_url 须为外网可访问的 https 地址，且不能携带参数")

    def _place_order(self, sub_mchid: str | None, data: dict) -> _Answer:
        key = (sub_mchid, data["out_trade_no"])
        order = self.orders.get(key)
        if order is not None:
            if order.state in {"SUCCESS", "REFUND"}:
                raise WxError(400, "ORDERPAID", "该订单已支付")
            if order.state == "CLOSED":
                raise WxError(400, "ORDER_CLOSED", "订单已关闭")
            if order.request != data:
                raise WxError(400, "INVALID_REQUEST", "201 商户订单号重复")
            return _Answer(200, {"prepay_id": order.prepay_id})
        now = self.now()
        prepay_id = "wx" + now.strftime("%d%H%M%S") + secrets.token_hex(13)
        self.orders[key] = Order(self.config.mchid, sub_mchid, data["out_trade_no"], data, prepay_id, now)
        return _Answer(200, {"prepay_id": prepay_id})

    # -- query and close

    def _query(self, out_trade_no: str, *, query: dict, **_: Any) -> _Answer:
        self._check_mchid(query.get("mchid"), "mchid")
        return _Answer(200, self._transaction(self._find_order(None, out_trade_no)))

    def _query_partner(self, out_trade_no: str, *, query: dict, **_: Any) -> _Answer:
        self._check_mchid(query.get("sp_mchid"), "sp_mchid")
        sub_mchid = self._check_sub_mchid(query.get("sub_mchid"))
        return _Answer(200, self._transaction(self._find_order(sub_mchid, out_trade_no)))

    def _query_by_id(
        self, transaction_id: str, *, query: dict, sub_mchid: str | None = None, **_: Any
    ) -> _Answer:
        if sub_mchid is None:
            self._check_mchid(query.get("mchid"), "mchid")
        for order in self.orders.values():
            if order.transaction_id == transaction_id and order.sub_mchid == sub_mchid:
                return _Answer(200, self._transaction(order))
        raise WxError(404, "ORDER_NOT_EXIST", "订单不存在")

    def _query_by_id_partner(self, transaction_id: str, *, query: dict, **_: Any) -> _Answer:
        self._check_mchid(query.get("sp_mchid"), "sp_mchid")
        sub_mchid = self._check_sub_mchid(query.get("sub_mchid"))
        return self._query_by_id(transaction_id, query=query, sub_mchid=sub_mchid)

    def _close(self, out_trade_no: str, *, data: Any, **_: Any) -> _Answer:
        self._check_mchid(Fields(data if data is not None else {}).str("mchid"), "mchid")
        return self._close_order(self._find_order(None, out_trade_no))

    def _close_partner(self, out_trade_no: str, *, data: Any, **_: Any) -> _Answer:
        body = Fields(data if data is not None else {})
        self._check_mchid(body.str("sp_mchid"), "sp_mchid")
        sub_mchid = self._check_sub_mchid(body.str("sub_mchid"))
        return self._close_order(self._find_order(sub_mchid, out_trade_no))

    def _close_order(self, order: Order) -> _Answer:
        if order.state in {"SUCCESS", "REFUND"}:
            raise WxError(400, "ORDERPAID", "订单已支付，不能发起关单")
        order.state = "CLOSED"
        return _Answer(204)

    def _find_order(self, sub_mchid: str | None, out_trade_no: str) -> Order:
        order = self.orders.get((sub_mchid, out_trade_no))
        if order is None:
            raise WxError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def _transaction(self, order: Order) -> dict:
        """The documented transaction object (query answer and TRANSACTION.SUCCESS resource)."""
        request = order.request
        if order.partner:
            payer_key = "sub_openid" if "sub_openid" in request["payer"] else "sp_openid"
            view = {"sp_appid": request["sp_appid"], "sp_mchid": order.mchid, "sub_mchid": order.sub_mchid}
            if "sub_appid" in request:
                view["sub_appid"] = request["sub_appid"]
        else:
            payer_key = "openid"
            view = {"appid": request["appid"], "mchid": order.mchid}
        descriptions = {
            "NOTPAY": "订单未支付",
            "SUCCESS": "支付成功",
            "CLOSED": "订单已关闭",
            "REFUND": "订单发生过退款",
        }
        view |= {
            "out_trade_no": order.out_trade_no,
            "trade_state": order.state,
            "trade_state_desc": descriptions[order.state],
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
            "promotion_detail": [],
        }
        if order.transaction_id is not None:
            view |= {
                "transaction_id": order.transaction_id,
                "trade_type": "JSAPI",
                "bank_type": "OTHERS",
                "attach": request.get("attach", ""),
                "success_time": rfc3339(order.success_time),
                "payer": {payer_key: order.openid},
            }
            view["amount"]["payer_total"] = order.total
        return view

    # -- refunds

    def _create_refund(self, *, data: Any, **_: Any) -> _Answer:
        body = Fields(data if data is not None else {})
        sub_mchid = self._sub_mchid_of_refund(body.str("sub_mchid", required=False, max_bytes=32))
        transaction_id = body.str("transaction_id", required=False, max_bytes=32)
        out_trade_no = body.str("out_trade_no", required=False, max_bytes=32)
        if transaction_id is None and out_trade_no is None:
            raise _param_error("transaction_id 和 out_trade_no 必须二选一进行传参")
        out_refund_no = body.str("out_refund_no", pattern=OUT_REFUND_NO)
        body.str("reason", required=False, max_bytes=80)
        self._check_notify_url(body.str("notify_url", required=False, max_bytes=256))
        body.str("funds_account", required=False, choices=("AVAILABLE", "UNSETTLED"))
        body.list("goods_detail")
        amount = body.obj("amount")
        refund_fen = amount.int("refund", minimum=1)
        total = amount.int("total", minimum=1)
        amount.str("currency", choices=("CNY",))
        amount.list("from")
        order = self._refund_target(sub_mchid, transaction_id, out_trade_no)
        existing = self.refunds.get((sub_mchid, out_refund_no))
        if existing is not None:
            if existing.request != data:
                raise WxError(400, "INVALID_REQUEST", "同一商户退款单号的退款参数与之前请求不一致")
            return _Answer(200, self._refund_view(existing))
        if total != order.total:
            raise WxError(400, "INVALID_REQUEST", "订单金额与原支付单金额不一致")
        refunded = sum(r.amount for r in self.refunds.values() if r.order is order and r.status != "CLOSED")
        if refund_fen > order.total - refunded:
            raise WxError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if self.merchant_balance is not None and refund_fen > self.merchant_balance:
            raise WxError(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
        refund = Refund(order, out_refund_no, "50" + _digits(30), refund_fen, data, self.now())
        self.refunds[(sub_mchid, out_refund_no)] = refund
        order.state = "REFUND"
        return _Answer(200, self._refund_view(refund))

    def _refund_target(
        self, sub_mchid: str | None, transaction_id: str | None, out_trade_no: str | None
    ) -> Order:
        for order in self.orders.values():
            if order.sub_mchid != sub_mchid:
                continue
            if (transaction_id is not None and order.transaction_id == transaction_id) or (
                transaction_id is None and order.out_trade_no == out_trade_no
            ):
                if order.state not in {"SUCCESS", "REFUND"}:
                    raise WxError(400, "INVALID_REQUEST", "订单未支付，不能发起退款")
                return order
        raise WxError(404, "RESOURCE_NOT_EXISTS", "订单不存在")

    def _query_refund(self, out_refund_no: str, *, query: dict, **_: Any) -> _Answer:
        sub_mchid = self._sub_mchid_of_refund(query.get("sub_mchid"))
        refund = self.refunds.get((sub_mchid, out_refund_no))
        if refund is None:
            raise WxError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return _Answer(200, self._refund_view(refund))

    def _refund_view(self, refund: Refund) -> dict:
        order = refund.order
        view = {"sub_mchid": order.sub_mchid} if order.partner else {}
        view |= {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": order.transaction_id,
            "out_trade_no": order.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": rfc3339(refund.created),
            "status": refund.status,
            "funds_account": refund.request.get("funds_account", "AVAILABLE"),
            "amount": self._refund_amount(refund)
            | {
                "from": [],
                "settlement_refund": refund.amount,
                "settlement_total": order.total,
                "discount_refund": 0,
                "currency": "CNY",
                "refund_fee": 0,
            },
            "promotion_detail": [],
        }
        if refund.success_time is not None:
            view["success_time"] = rfc3339(refund.success_time)
        return view

    @staticmethod
    def _refund_amount(refund: Refund) -> dict:
        total = refund.order.total
        return {"total": total, "refund": refund.amount, "payer_total": total, "payer_refund": refund.amount}

    def _refund_notice(self, refund: Refund) -> dict:
        order = refund.order
        view = (
            {"sp_mchid": order.mchid, "sub_mchid": order.sub_mchid}
            if order.partner
            else {"mchid": order.mchid}
        )
        view |= {
            "out_trade_no": order.out_trade_no,
            "transaction_id": order.transaction_id,
            "out_refund_no": refund.out_refund_no,
            "refund_id": refund.refund_id,
            "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": self._refund_amount(refund),
        }
        if refund.success_time is not None:
            view["success_time"] = rfc3339(refund.success_time)
        return view

    # -- trade bill

    def _trade_bill(self, *, query: dict, **_: Any) -> _Answer:
        bill_date = query.get("bill_date")
        if bill_date is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", bill_date):
            raise _param_error("bill_date 须为 yyyy-MM-DD 格式")
        try:
            day = date.fromisoformat(bill_date)
        except ValueError as exc:
            raise _param_error("bill_date 不是有效日期") from exc
        bill_type = query.get("bill_type", "ALL")
        if bill_type not in {"ALL", "SUCCESS", "REFUND"}:
            raise _param_error("bill_type 取值不在 ALL/SUCCESS/REFUND 之中")
        tar_type = query.get("tar_type")
        if tar_type not in {None, "GZIP"}:
            raise _param_error("tar_type 取值须为 GZIP")
        sub_mchid = query.get("sub_mchid")
        if sub_mchid is not None:
            self._check_sub_mchid(sub_mchid)
        now = self.now()
        if day > now.date() or day < (now - timedelta(days=92)).date():
            raise _param_error("仅支持三个月内的账单下载申请，且账单日期不能晚于今天")
        if now < datetime.combine(day + timedelta(days=1), datetime.min.time(), CHINA) + timedelta(hours=10):
            raise WxError(400, "STATEMENT_CREATING", "账单生成中，请稍后重试")
        rows = self._bill_rows(day, bill_type, sub_mchid)
        if not rows:
            raise WxError(400, "NO_STATEMENT_EXIST", "当日无交易，账单不存在")
        content = self._bill_file(rows).encode()
        token = secrets.token_urlsafe(16)
        self._bills[token] = gzip.compress(content) if tar_type == "GZIP" else content
        return _Answer(
            200,
            {
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(content).hexdigest(),  # noqa: S324 (WeChat's documented digest)
                "download_url": f"{self.url}/v3/billdownload/file?token={token}",
            },
        )

    def _download_bill(self, *, query: dict, **_: Any) -> _Answer:
        content = self._bills.get(query.get("token", ""))
        if content is None:
            raise WxError(400, "INVALID_REQUEST", "下载地址无效或已过期")
        return _Answer(200, content, signed=False)

    def _bill_rows(self, day: date, bill_type: str, sub_mchid: str | None) -> list[dict]:
        rows = []
        for order in self.orders.values():
            if sub_mchid is not None and order.sub_mchid != sub_mchid:
                continue
            if (
                bill_type != "REFUND"
                and order.success_time
                and order.success_time.astimezone(CHINA).date() == day
            ):
                rows.append({"time": order.success_time, "order": order, "refund": None})
        if bill_type != "SUCCESS":
            for refund in self.refunds.values():
                if sub_mchid is not None and refund.order.sub_mchid != sub_mchid:
                    continue
                moment = refund.success_time or refund.created
                if refund.status in {"SUCCESS", "PROCESSING"} and moment.astimezone(CHINA).date() == day:
                    rows.append({"time": moment, "order": refund.order, "refund": refund})
        return sorted(rows, key=lambda row: row["time"])

    def _bill_file(self, rows: list[dict]) -> str:
        """The documented CSV: header, one backquote-prefixed line per trade, then the summary.

        A payment row counts on its success day; a refund row (交易状态 REFUND) on its success day, or
        its request day while PROCESSING, carrying 0.00 as 应结订单金额/订单金额 and the refund in
        退款金额/申请退款金额. Fees are 0.60% of the net, in yuan with five decimals.
        """
        lines, paid, refunded, fees = [BILL_HEADER], 0, 0, Decimal(0)
        for row in rows:
            order, refund = row["order"], row["refund"]
            amount = order.total if refund is None else 0
            refund_amount = 0 if refund is None else refund.amount
            fee = ((Decimal(amount) - Decimal(refund_amount)) * FEE_RATE / 100).quantize(Decimal("0.00001"))
            paid, refunded, fees = paid + amount, refunded + refund_amount, fees + fee
            appid = order.request.get("appid") or order.request.get("sp_appid")
            values = [
                rfc3339(row["time"]).replace("T", " ")[:19],
                appid,
                order.mchid,
                order.sub_mchid or "0",
                "",
                order.transaction_id,
                order.out_trade_no,
                order.openid,
                "JSAPI",
                "SUCCESS" if refund is None else "REFUND",
                "OTHERS",
                "CNY",
                fen_to_yuan(amount),
                "0.00",
                refund.refund_id if refund else "0",
                refund.out_refund_no if refund else "0",
                fen_to_yuan(refund_amount),
                "0.00",
                "ORIGINAL" if refund else "",
                refund.status if refund else "",
                order.request["description"],
                order.request.get("attach", ""),
                f"{fee:.5f}",
                "0.60%",
                fen_to_yuan(amount),
                fen_to_yuan(refund_amount),
                "",
            ]
            lines.append(",".join(f"`{value}" for value in values))
        lines.append(BILL_SUMMARY_HEADER)
        summary = [
            len(rows),
            fen_to_yuan(paid),
            fen_to_yuan(refunded),
            "0.00",
            f"{fees:.5f}",
            fen_to_yuan(paid),
            fen_to_yuan(refunded),
        ]
        lines.append(",".join(f"`{value}" for value in summary))
        return "\r\n".join(lines) + "\r\n"

    # -- merchant transfers (商家转账)

    def _create_transfer(self, *, data: Any, headers: dict[str, str], **_: Any) -> _Answer:
        body = Fields(data if data is not None else {})
        unknown = sorted(set(body.data) - TRANSFER_FIELDS)
        if unknown:
            raise _param_error(f"输入源“/body/{unknown[0]}”不是发起转账接口的参数")
        if body.str("appid", max_bytes=32) != self.config.appid:
            raise WxError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配，请检查后再试")
        out_bill_no = body.str("out_bill_no", pattern=OUT_BILL_NO)
        scene = body.str("transfer_scene_id", max_bytes=36)
        body.str("openid", max_bytes=64)
        amount = body.int("transfer_amount", minimum=10)
        body.str("transfer_remark", max_chars=32)
        self._check_notify_url(body.str("notify_url", required=False, max_bytes=256))
        perception = body.str("user_recv_perception", required=False, max_chars=32)
        infos = body.list("transfer_scene_report_infos", required=True)
        types = []
        for index, item in enumerate(infos):
            info = Fields(item, f"/body/transfer_scene_report_infos/{index}")
            if set(info.data) - {"info_type", "info_content"}:
                raise _param_error("转账场景报备信息明细只含 info_type、info_content")
            types.append(info.str("info_type", max_chars=15))
            info.str("info_content", max_chars=32)
        if scene not in TRANSFER_SCENES:
            raise WxError(403, "NO_AUTH", "商户未开通该转账场景")
        if sorted(types) != sorted(TRANSFER_SCENES[scene]):
            raise _param_error("未传入完整且对应的转账场景报备信息，请根据接口文档检查")
        if perception is not None and perception not in TRANSFER_PERCEPTIONS.get(scene, ()):
            raise WxError(400, "INVALID_REQUEST", "暂不支持展示当前传入的用户收款感知")
        user_name = self._transfer_user_name(body.str("user_name", required=False), amount, headers)
        existing = self.transfers.get(out_bill_no)
        if existing is not None:
            # The same bill again answers the bill; user_name is compared in clear (OAEP differs each time).
            same = {k: v for k, v in existing.request.items() if k != "user_name"} == {
                k: v for k, v in data.items() if k != "user_name"
            }
            if not same or existing.user_name != user_name:
                raise WxError(400, "INVALID_REQUEST", "商户单号重复，且请求参数与之前不一致")
            return _Answer(200, self._transfer_created(existing))
        if self.merchant_balance is not None and amount > self.merchant_balance:
            raise WxError(
                403, "NOT_ENOUGH", "商户运营账户资金不足，充值后可以原单号发起重试，请勿更换商户单号"
            )
        transfer = Transfer(out_bill_no, "1330" + _digits(36), data, user_name, self.now())
        self.transfers[out_bill_no] = transfer
        return _Answer(200, self._transfer_created(transfer))

    def _transfer_user_name(self, ciphertext: str | None, amount: int, headers: dict[str, str]) -> str | None:
        if ciphertext is None:
            if amount >= USER_NAME_REQUIRED_FROM:
                raise _param_error("转账金额 >= 2000元 时，收款用户姓名 user_name 必填")
            return None
        if amount < USER_NAME_FROM:
            raise _param_error("转账金额 < 0.3元 时，不允许填写收款用户姓名 user_name")
        if headers.get("wechatpay-serial") != self.config.public_key_id:
            raise _param_error("加密敏感字段时须在 Wechatpay-Serial 头中传入微信支付公钥ID")
        try:
            return rsa_decrypt(self.config.platform_private_key, ciphertext)
        except ValueError as exc:
            raise _param_error("user_name 解密失败，请使用微信支付公钥加密") from exc

    @staticmethod
    def _transfer_created(transfer: Transfer) -> dict:
        return {
            "out_bill_no": transfer.out_bill_no,
            "transfer_bill_no": transfer.transfer_bill_no,
            "create_time": rfc3339(transfer.created),
            "state": transfer.state,
            "package_info": base64.b64encode(transfer.transfer_bill_no.encode()).decode(),
        }

    def _transfer_view(self, transfer: Transfer, *, notice: bool = False) -> dict:
        request = transfer.request
        view = {
            "mch_id": self.config.mchid,
            "out_bill_no": transfer.out_bill_no,
            "transfer_bill_no": transfer.transfer_bill_no,
            "state": transfer.state,
            "transfer_amount": request["transfer_amount"],
            "openid": request["openid"],
            "create_time": rfc3339(transfer.created),
            "update_time": rfc3339(transfer.updated or transfer.created),
        }
        if not notice:
            view |= {"appid": request["appid"], "transfer_remark": request["transfer_remark"]}
            if "user_name" in request:
                view["user_name"] = request["user_name"]
        if transfer.fail_reason:
            view["fail_reason"] = transfer.fail_reason
        return view

    def _query_transfer(self, out_bill_no: str, **_: Any) -> _Answer:
        return _Answer(200, self._transfer_view(self._find_transfer(out_bill_no)))

    def _cancel_transfer(self, out_bill_no: str, **_: Any) -> _Answer:
        transfer = self._find_transfer(out_bill_no)
        if transfer.state not in {"ACCEPTED", "PROCESSING", "WAIT_USER_CONFIRM", "CANCELING"}:
            raise WxError(400, "INVALID_REQUEST", f"转账单状态为 {transfer.state}，不可撤销")
        transfer.state, transfer.updated = "CANCELING", self.now()
        return _Answer(
            200,
            {
                "out_bill_no": out_bill_no,
                "transfer_bill_no": transfer.transfer_bill_no,
                "state": "CANCELING",
                "update_time": rfc3339(transfer.updated),
            },
        )

    def _find_transfer(self, out_bill_no: str) -> Transfer:
        if out_bill_no not in self.transfers:
            raise WxError(404, "NOT_FOUND", "记录不存在")
        return self.transfers[out_bill_no]


# --------------------------------------------------------------------------- HTTP plumbing


def _handler_for(server: WechatPayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = server.handle(self.command, self.path, headers, body)
            if isinstance(answer.payload, bytes):
                raw, content_type = answer.payload, "application/octet-stream"
            elif answer.payload is None:
                raw, content_type = b"", None
            else:
                raw, content_type = (
                    json.dumps(answer.payload, ensure_ascii=False).encode(),
                    "application/json",
                )
            self.send_response(answer.status)
            self.send_header("Request-ID", str(uuid.uuid4()))
            if content_type:
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            if answer.signed:
                text = raw.decode()
                signed = server._signed_headers(text + ("x" if server.tamper_responses else ""))
                for name, value in signed.items():
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            # A client that stopped waiting (a timeout test) gets nothing: WeChat's work is done anyway.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(raw)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def http_transport(notification: Notification) -> tuple[int | None, str]:
    """POST the notification over HTTP, as WeChat does (5 s timeout)."""
    request = urllib.request.Request(
        notification.url, data=notification.body.encode(), headers=notification.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", errors="replace")


def django_client_transport(client: Any = None) -> Callable[[Notification], tuple[int | None, str]]:
    """Deliver through Django's test client (same thread, same test transaction): no live server."""
    from django.test import Client

    client = client or Client(raise_request_exception=False)

    def transport(notification: Notification) -> tuple[int | None, str]:
        parts = urlsplit(notification.url)
        headers = {k: v for k, v in notification.headers.items() if k.lower() != "content-type"}
        response = client.post(
            parts.path,
            data=notification.body,
            content_type="application/json",
            headers=headers,
            secure=parts.scheme == "https",
        )
        return response.status_code, response.content.decode("utf-8", errors="replace")

    return transport
