"""The WeChat Pay API v3 client: the only module that imports ``wechatpayv3``.

Settings are read at call time (see ``docs/wechat.md``). Responses are verified
with WeChat Pay's public key (public key mode, ``WECHATPAY_PUBLIC_KEY_ID``);
``WECHATPAY_API_BASE`` lets tests and local runs use a local server (the
library has no public setting for it). Errors become the provider
interface's two kinds: ``ProviderUnavailable`` (no answer, a 5xx,
``SYSTEM_ERROR``, ``FREQUENCY_LIMITED``, an answer whose signature does not
verify) and ``ProviderRefused`` (any other refusal, with WeChat's code).
"""

import gzip
import hashlib
import json
import time
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

import requests
from django.conf import settings
from wechatpayv3 import SignType, WeChatPay, WeChatPayType

from commerce.payments import base

# Answers that say "try again later" (https://pay.weixin.qq.com/doc/v3/merchant/4012081606).
RETRYABLE_CODES = {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANKERROR", "SYSTEMERROR"}


def partner_mode() -> bool:
    return settings.WECHATPAY_MODE == "partner"


@lru_cache(maxsize=4)
def _client(config: tuple) -> WeChatPay:
    (
        mchid,
        private_key,
        serial,
        appid,
        apiv3_key,
        notify_url,
        public_key,
        public_key_id,
        timeout,
        partner,
    ) = config
    client = WeChatPay(
        wechatpay_type=WeChatPayType.MINIPROG,
        mchid=mchid,
        private_key=private_key,
        cert_serial_no=serial,
        appid=appid,
        apiv3_key=apiv3_key,
        notify_url=notify_url,
        partner_mode=partner,
        timeout=(min(3.0, timeout), timeout),
        public_key=public_key,
        public_key_id=public_key_id,
    )
    return client


def wechatpay_client() -> WeChatPay:
    """The configured client; ``ProviderUnavailable`` when WeChat Pay is not configured."""
    required = {
        "WECHATPAY_MCHID": settings.WECHATPAY_MCHID,
        "WECHATPAY_PRIVATE_KEY": settings.WECHATPAY_PRIVATE_KEY,
        "WECHATPAY_CERT_SERIAL_NO": settings.WECHATPAY_CERT_SERIAL_NO,
        "WECHATPAY_APIV3_KEY": settings.WECHATPAY_APIV3_KEY,
        "WECHATPAY_PUBLIC_KEY": settings.WECHATPAY_PUBLIC_KEY,
        "WECHATPAY_PUBLIC_KEY_ID": settings.WECHATPAY_PUBLIC_KEY_ID,
        "WECHAT_APP_ID": settings.WECHAT_APP_ID,
        "WECHATPAY_NOTIFY_URL": settings.WECHATPAY_NOTIFY_URL,
    }
    if partner_mode():
        required["WECHATPAY_SP_APPID"] = settings.WECHATPAY_SP_APPID
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise base.ProviderUnavailable(f"WeChat Pay is not configured: {', '.join(missing)} not set.")
    appid = settings.WECHATPAY_SP_APPID if partner_mode() else settings.WECHAT_APP_ID
    client = _client(
        (
            settings.WECHATPAY_MCHID,
            settings.WECHATPAY_PRIVATE_KEY,
            settings.WECHATPAY_CERT_SERIAL_NO,
            appid,
            settings.WECHATPAY_APIV3_KEY,
            settings.WECHATPAY_NOTIFY_URL or None,
            settings.WECHATPAY_PUBLIC_KEY,
            settings.WECHATPAY_PUBLIC_KEY_ID,
            settings.WECHATPAY_TIMEOUT_SECONDS,
            partner_mode(),
        )
    )
    # The library has no setting for the API base. Not in the cache key: building a client checks
    # the RSA key (slow), and only tests and local runs change the base.
    client._core._gate_way = settings.WECHATPAY_API_BASE.rstrip("/")
    return client


def call(function, *args, **kwargs) -> dict | bytes:
    """Run one library call: the decoded JSON answer (``{}`` for 204), raw bytes for a file."""
    try:
        status, body = function(*args, **kwargs)
    except requests.RequestException as exc:
        raise base.ProviderUnavailable(f"WeChat Pay did not answer: {exc}") from exc
    except Exception as exc:  # the library raises bare Exception for a response that fails verification
        raise base.ProviderUnavailable(f"WeChat Pay's answer was not verified: {exc}") from exc
    if isinstance(body, bytes) and 200 <= status < 300:
        return body
    try:
        data = json.loads(body) if body else {}
    except (TypeError, ValueError):
        data = {}
    if 200 <= status < 300:
        return data
    code, message = str(data.get("code") or ""), str(data.get("message") or body or "")[:500]
    if status >= 500 or status == 429 or code in RETRYABLE_CODES:
        raise base.ProviderUnavailable(f"WeChat Pay {status} {code}: {message}")
    raise base.ProviderRefused(f"WeChat Pay {status} {code}: {message}", code=code)


def sign(fields: list[str]) -> str:
    """RSA-SHA256 with the merchant key over ``fields`` joined by newlines (``wx.requestPayment``)."""
    return wechatpay_client().sign(fields, SignType.RSA_SHA256)


def download_trade_bill(day: date, sub_merchant: str = "") -> bytes | None:
    """The day's trade bill (``bill_type=ALL``), as the CSV bytes WeChat Pay made (UTF-8).

    ``None`` for a day without trades (``NO_STATEMENT_EXIST``); ``ProviderUnavailable``
    while the bill is being made (``STATEMENT_CREATING``, until about 10:00 the next day),
    when WeChat does not answer, or when the file's SHA1 differs from the signed
    ``hash_value`` (the file itself is not signed). Partner mode: ``sub_merchant`` narrows
    the bill to one sub-merchant; without it, the service provider's whole bill.
    """
    client = wechatpay_client()
    kwargs = {"bill_date": day.isoformat(), "bill_type": "ALL", "tar_type": "GZIP"}
    if partner_mode() and sub_merchant:
        kwargs["sub_mchid"] = sub_merchant
    try:
        answer = call(client.trade_bill, **kwargs)
    except base.ProviderRefused as exc:
        if exc.code == "NO_STATEMENT_EXIST":
            return None
        if exc.code == "STATEMENT_CREATING":
            raise base.ProviderUnavailable(str(exc)) from exc
        raise
    content = call(client.download_bill, answer.get("download_url") or "")
    if isinstance(content, dict):  # a JSON answer where a file was expected
        raise base.ProviderUnavailable("WeChat Pay's bill download gave no file.")
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError) as exc:
            raise base.ProviderUnavailable(f"WeChat Pay's bill file is damaged: {exc}") from exc
    expected = str(answer.get("hash_value") or "").lower()
    actual = hashlib.sha1(content).hexdigest()  # noqa: S324 (WeChat's documented digest)
    if str(answer.get("hash_type") or "SHA1").upper() != "SHA1" or actual != expected:
        raise base.ProviderUnavailable(
            "WeChat Pay's bill file does not match its hash_value: downloaded again later."
        )
    return content


# The headers a notification is signed with, as the library looks them up.
NOTIFY_HEADERS = (
    "Wechatpay-Signature",
    "Wechatpay-Timestamp",
    "Wechatpay-Nonce",
    "Wechatpay-Serial",
    "Wechatpay-Signature-Type",
)


def notification_open(headers: Mapping[str, str], body: bytes) -> dict:
    """A notification verified and decrypted: its JSON with ``resource`` replaced by the plaintext.

    Raises ``InvalidWebhook`` unless ``Wechatpay-Serial`` names our WeChat Pay public key
    (``WECHATPAY_PUBLIC_KEY_ID``), ``Wechatpay-Timestamp`` is within
    ``WECHATPAY_NOTIFY_TOLERANCE_SECONDS`` of our clock (the library does not check it),
    ``Wechatpay-Signature`` verifies over ``timestamp\\nnonce\\nbody\\n`` and the resource
    decrypts (AEAD_AES_256_GCM with the APIv3 key). The serial is checked first: the library
    would otherwise go and download platform certificates for an unknown one.
    """
    lower = {str(name).lower(): str(value) for name, value in headers.items()}
    signed = {name: lower.get(name.lower(), "") for name in NOTIFY_HEADERS}
    if not settings.WECHATPAY_PUBLIC_KEY_ID or signed["Wechatpay-Serial"] != settings.WECHATPAY_PUBLIC_KEY_ID:
        raise base.InvalidWebhook("Wechatpay-Serial does not name our WeChat Pay public key.")
    stamp = signed["Wechatpay-Timestamp"]
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > settings.WECHATPAY_NOTIFY_TOLERANCE_SECONDS:
        raise base.InvalidWebhook("Wechatpay-Timestamp is missing or too far from our clock.")
    client = wechatpay_client()
    try:
        text = body.decode("utf-8")
        data = client.callback(signed, text)
    except Exception as exc:  # the library raises bare Exception (algorithm), ValueError (JSON)
        raise base.InvalidWebhook(f"The notification could not be opened: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resource"), dict):
        raise base.InvalidWebhook("The signature or the encrypted resource does not verify.")
    return data
