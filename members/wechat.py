"""The WeChat mini-program server API client: code-to-session, the access token, token-taking calls.

Every API is called under ``WECHAT_API_BASE`` (default ``https://api.weixin.qq.com``) so
that tests and local runs point it at a local HTTP server. WeChat's answer is checked before
it reaches the database: an odd one is WeChat's fault (502), a busy WeChat is
worth retrying (503), a refused code is the client's (400). ``access_token`` and ``call`` are
shared by every server API that takes the token (shipping information, subscription messages,
phone numbers): one cached token, fetched by one caller at a time.
"""

import json
import re
import threading
import time
import uuid
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
ACCESS_TOKEN_LOCK_KEY = "wechat:access_token:lock"
# Refresh this long before the token expires: senders never hold a token about to lapse. WeChat
# hands out a new stable token in its last 5 minutes (the old one still works until it expires).
REFRESH_MARGIN_SECONDS = 240
TOKEN_ERRCODES = {40001, 42001}  # invalid, expired: fetch a fresh token once and call again
_LOCK_POLL_SECONDS = 0.05


def _cached_token() -> tuple[str, float] | None:
    entry = cache.get(ACCESS_TOKEN_CACHE_KEY)
    if isinstance(entry, dict) and isinstance(entry.get("token"), str):
        return entry["token"], float(entry.get("expires_at", 0))
    return None


def _fetch_token(*, force_refresh: bool, rejected: str | None = None) -> str:
    """WeChat's normal mode first (a new token once the old one is in its last minutes, or the one
    another worker renewed); its force mode (at most 20 a day, it voids the current token) only
    when normal mode hands out the refused token again."""
    token = _stable_token(force_refresh=False)
    if force_refresh and (rejected is None or token == rejected):
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
    cache.set(
        ACCESS_TOKEN_CACHE_KEY,
        {"token": token, "expires_at": time.time() + expires_in},
        timeout=max(expires_in, 60),
    )
    return token


def access_token(*, force_refresh: bool = False, rejected: str | None = None) -> str:
    """The mini-program's access token from ``/cgi-bin/stable_token``, kept in the shared cache.

    Single flight: one caller at a time (a cache lock) fetches it, the others
    keep using the cached token while it is valid, or wait for the fetch.
    A token is refreshed ``REFRESH_MARGIN_SECONDS`` before it expires.
    ``force_refresh`` replaces a token WeChat refused (40001, 42001): pass it as
    ``rejected`` and a token another caller fetched since is used instead
    (WeChat allows few forced refreshes a day, and each one voids the last).
    Raises ``WechatUnavailable``/``WechatBusy``/``WechatBadAnswer``.
    """
    deadline, lockless = time.monotonic() + settings.WECHAT_TIMEOUT_SECONDS + 1, 0

    def usable(entry) -> bool:
        if entry is None:
            return False
        if force_refresh:
            return rejected is not None and entry[0] != rejected
        return entry[1] - time.time() > REFRESH_MARGIN_SECONDS

    while True:
        entry = _cached_token()
        if usable(entry):
            return entry[0]
        owner = uuid.uuid4().hex
        if cache.add(ACCESS_TOKEN_LOCK_KEY, owner, timeout=settings.WECHAT_TIMEOUT_SECONDS + 1):
            try:
                entry = _cached_token()  # another caller may have fetched it just before
                if usable(entry):
                    return entry[0]
                return _fetch_token(force_refresh=force_refresh, rejected=rejected)
            finally:
                if cache.get(ACCESS_TOKEN_LOCK_KEY) == owner:
                    cache.delete(ACCESS_TOKEN_LOCK_KEY)
        if not force_refresh and entry is not None and entry[1] > time.time():
            return entry[0]  # still valid: the lock holder is refreshing it ahead of time
        if cache.get(ACCESS_TOKEN_LOCK_KEY) is None:
            lockless += 1  # released just now, or a cache that keeps nothing (Redis down)
        if time.monotonic() > deadline or lockless >= 3:
            # No one else will: do it ourselves.
            return _fetch_token(force_refresh=force_refresh, rejected=rejected)
        time.sleep(_LOCK_POLL_SECONDS)


def call(path: str, body: dict) -> dict:
    """POST ``body`` to a server API that takes the access token; a refused token is replaced once.

    Returns WeChat's JSON answer (its errcode unread); raises like ``post_json``.
    """
    token = access_token()
    answer = post_json(path, body, params={"access_token": token})
    if answer.get("errcode") in TOKEN_ERRCODES:
        token = access_token(force_refresh=True, rejected=token)
        answer = post_json(path, body, params={"access_token": token})
    return answer


_local = threading.local()


def _session() -> requests.Session:
    """One HTTP session per thread: parallel senders reuse their connections (no TLS handshake each)."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def post_json(path: str, body: dict, *, params: dict | None = None) -> dict:
    """POST ``body`` to a mini-program server API; WeChat's JSON answer (its errcode unread)."""
    try:
        response = _session().post(
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

    answer = call(PHONE_PATH, {"code": code})
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
