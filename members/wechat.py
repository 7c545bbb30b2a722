"""The WeChat mini-program code-to-session call (``jscode2session``).

The endpoint is configurable (``WECHAT_CODE2SESSION_URL``) so that tests and
local runs point it at a local HTTP server.
"""

from dataclasses import dataclass

import requests
from django.conf import settings

from members.errors import WechatLoginFailed, WechatUnavailable


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str | None = None


def code_to_session(code: str) -> WechatSession:
    try:
        response = requests.get(
            settings.WECHAT_CODE2SESSION_URL,
            params={
                "appid": settings.WECHAT_APP_ID,
                "secret": settings.WECHAT_APP_SECRET,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=settings.WECHAT_TIMEOUT_SECONDS,
        )
        payload = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise WechatUnavailable() from exc
    if payload.get("errcode") or not payload.get("openid"):
        raise WechatLoginFailed()
    return WechatSession(openid=payload["openid"], unionid=payload.get("unionid"))
