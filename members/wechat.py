"""The WeChat mini-program code-to-session call (``jscode2session``).

It is called under ``WECHAT_API_BASE`` (default ``https://api.weixin.qq.com``) so
that tests and local runs point it at a local HTTP server. WeChat's answer is checked before
it reaches the database: an odd one is WeChat's fault (502), a busy WeChat is
worth retrying (503), a refused code is the client's (400).
"""

import json
import re
from dataclasses import dataclass

import requests
from django.conf import settings
from django.core.cache import cache

from members.errors import WechatBadAnswer, WechatBusy, WechatLoginFailed, WechatUnavailable

# WeChat's documented "system busy, retry later" and "API call frequency limit reached".
RETRYABLE_ERRCODES = {-1, 45011}
# openid and unionid are 28-character base64url-like strings; our column holds 64.
IDENTITY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None = None


def api_url(path: str) -> str:
    """A mini-program server API's URL under ``WECHAT_API_BASE``."""
    return settings.WECHAT_API_BASE.rstrip("/") + path


def code_to_session(code: str) -> WechatSession:
    try:
        response = requests.get(
            api_url("/sns/jscode2session"),
            params={
                "appid": settings.WECHAT_APP_ID,
                "secret": settings.WECHAT_APP_SECRET,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=settings.WECHAT_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise WechatUnavailable() from exc
    if response.status_code >= 500:
        raise WechatUnavailable()
    return session_from_answer(_json_object(response))


def _json_object(response: requests.Response) -> dict:
    try:
        payload = response.json()
    except (ValueError, RecursionError) as exc:  # includes UnicodeDecodeError
        raise WechatBadAnswer() from exc
    if not isinstance(payload, dict):
        raise WechatBadAnswer()
    return payload


def session_from_answer(payload: dict) -> WechatSession:
    errcode = payload.get("errcode")
    if isinstance(errcode, int) and errcode in RETRYABLE_ERRCODES:
        raise WechatBusy()
    if errcode:
        raise WechatLoginFailed()
    openid, unionid = payload.get("openid"), payload.get("unionid")
    if not _identity(openid) or (unionid is not None and not _identity(unionid)):
        raise WechatBadAnswer()
    return WechatSession(openid=openid, unionid=unionid)


def _identity(value) -> bool:
    return isinstance(value, str) and IDENTITY_PATTERN.fullmatch(value) is not None


ACCESS_TOKEN_CACHE_KEY = "wechat:access_token"


def access_token(*, force_refresh: bool = False) -> str:
    """The mini-program's access token from ``/cgi-bin/stable_token``, kept in the shared cache.

    The stable token stays the same until it expires, so every worker may
    fetch it. ``force_refresh=True`` replaces one WeChat refused (40001, 42001):
    WeChat's normal mode first (it hands out a new token once the old one
    expired, and the current one if another worker renewed it); its force mode
    (at most 20 a day, it voids the current token) only when normal mode still
    hands out the refused token. Raises ``WechatUnavailable``/``WechatBusy``/``WechatBadAnswer``.
    """
    cached = cache.get(ACCESS_TOKEN_CACHE_KEY)
    if cached and not force_refresh:
        return cached
    token = _stable_token(force_refresh=False)
    if force_refresh and (not cached or token == cached):
        token = _stable_token(force_refresh=True)
    return token


def _stable_token(*, force_refresh: bool) -> str:
    body = {
        "grant_type": "client_credential",
        "appid": settings.WECHAT_APP_ID,
        "secret": settings.WECHAT_APP_SECRET,
        "force_refresh": force_refresh,
    }
    payload = post_json("/cgi-bin/stable_token", body)
    token, expires_in = payload.get("access_token"), payload.get("expires_in")
    if payload.get("errcode") in RETRYABLE_ERRCODES:
        raise WechatBusy()
    if not isinstance(token, str) or not token or not isinstance(expires_in, int):
        raise WechatBadAnswer()
    cache.set(ACCESS_TOKEN_CACHE_KEY, token, timeout=max(expires_in - 300, 60))
    return token


def post_json(path: str, body: dict, *, params: dict | None = None) -> dict:
    """POST ``body`` to a mini-program server API; WeChat's JSON answer (its errcode unread)."""
    try:
        response = requests.post(
            api_url(path),
            params=params,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
            timeout=settings.WECHAT_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise WechatUnavailable() from exc
    if response.status_code >= 500:
        raise WechatUnavailable()
    return _json_object(response)


PHONE_PATH = "/wxa/business/getuserphonenumber"
# The answer: {errcode, errmsg, phone_info: {phoneNumber, purePhoneNumber, countryCode,
# watermark: {timestamp, appid}}}; the watermark's appid must be ours.
TOKEN_ERRCODES = {40001, 42001}
PHONE_PATTERN = re.compile(r"\+?[0-9]{5,20}")


def phone_number(code: str) -> str:
    """The phone number the member shared through ``getPhoneNumber`` (``code`` lives 5 minutes, once).

    Raises ``WechatPhoneCodeInvalid`` (400) for a refused code, ``WechatBusy`` (503),
    ``WechatUnavailable`` (503) or ``WechatBadAnswer`` (502) otherwise.
    """
    from members.errors import WechatPhoneCodeInvalid

    answer = post_json(PHONE_PATH, {"code": code}, params={"access_token": access_token()})
    if answer.get("errcode") in TOKEN_ERRCODES:
        answer = post_json(
            PHONE_PATH, {"code": code}, params={"access_token": access_token(force_refresh=True)}
        )
    errcode = answer.get("errcode") or 0
    if errcode in RETRYABLE_ERRCODES:
        raise WechatBusy()
    if errcode:
        raise WechatPhoneCodeInvalid()
    info = answer.get("phone_info")
    phone = info.get("phoneNumber") if isinstance(info, dict) else None
    if not isinstance(phone, str) or not PHONE_PATTERN.fullmatch(phone):
        raise WechatBadAnswer()
    watermark = info.get("watermark")
    if not isinstance(watermark, dict) or watermark.get("appid") != settings.WECHAT_APP_ID:
        raise WechatBadAnswer()  # a number given to another app is not this member's to keep
    return phone
