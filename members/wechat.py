"""The WeChat mini-program code-to-session call (``jscode2session``).

It is called under ``WECHAT_API_BASE`` (default ``https://api.weixin.qq.com``) so
that tests and local runs point it at a local HTTP server. WeChat's answer is checked before
it reaches the database: an odd one is WeChat's fault (502), a busy WeChat is
worth retrying (503), a refused code is the client's (400).
"""

import re
from dataclasses import dataclass

import requests
from django.conf import settings

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
