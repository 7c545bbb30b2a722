"""The WeChat Pay API v3 client: the only module that imports ``wechatpayv3``.

Settings are read at call time (see ``docs/wechat.md``). Responses are verified
with WeChat Pay's public key (public key mode, ``WECHATPAY_PUBLIC_KEY_ID``);
``WECHATPAY_API_BASE`` lets tests and local runs use a local server (the
library has no public setting for it). Errors become the provider
interface's two kinds: ``ProviderUnavailable`` (no answer, a 5xx,
``SYSTEM_ERROR``, ``FREQUENCY_LIMITED``, an answer whose signature does not
verify) and ``ProviderRefused`` (any other refusal, with WeChat's code).
"""

import json
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
        base_url,
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
    client._core._gate_way = base_url.rstrip("/")  # the library has no setting for it
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
    }
    missing = [name for name, value in required.items() if not value]
    if missing:
        raise base.ProviderUnavailable(f"WeChat Pay is not configured: {', '.join(missing)} not set.")
    appid = settings.WECHATPAY_SP_APPID if partner_mode() else settings.WECHAT_APP_ID
    return _client(
        (
            settings.WECHATPAY_MCHID,
            settings.WECHATPAY_PRIVATE_KEY,
            settings.WECHATPAY_CERT_SERIAL_NO,
            appid,
            settings.WECHATPAY_APIV3_KEY,
            settings.WECHATPAY_NOTIFY_URL or None,
            settings.WECHATPAY_PUBLIC_KEY,
            settings.WECHATPAY_PUBLIC_KEY_ID,
            settings.WECHATPAY_API_BASE,
            settings.WECHATPAY_TIMEOUT_SECONDS,
            partner_mode(),
        )
    )


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
