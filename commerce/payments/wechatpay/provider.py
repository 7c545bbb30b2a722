"""WeChat Pay (API v3, JSAPI in the mini-program) behind the provider interface.

Our ``Payment.reference`` is WeChat's ``out_trade_no`` and ``Refund.reference``
its ``out_refund_no``; the provider's reference is the ``transaction_id``
(known once paid) and the ``refund_id``. Amounts go in fen, currency ``CNY``.

Direct mode (``WECHATPAY_MODE=direct``) orders for ``WECHATPAY_MCHID`` with
``WECHAT_APP_ID``; partner mode orders through the service provider
(``WECHATPAY_MCHID``, ``WECHATPAY_SP_APPID``) for the payment's sub-merchant
(``PaymentHandle.sub_merchant``, copied from the community), with the
mini-program ``WECHAT_APP_ID`` as ``sub_appid`` and the payer's ``sub_openid``
(``sp_openid`` when the mini-program is the service provider's own).

The client part kept on the payment is ``{"prepay_id", "issued_at"}``; the
exact prepay request is kept in the payment's provider data (``raw``) so that
an expiring prepay id can be renewed by repeating it identically
(``renew_client``). ``request_payment`` is signed anew on every call.
"""

import secrets
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.conf import settings
from django.utils import timezone as django_timezone
from django.utils.translation import gettext as _

from commerce.payments import base
from commerce.payments.wechatpay import client as wx
from commerce.payments.wechatpay import transfers
from commerce.pricing import from_minor_units, to_minor_units

CHINA = timezone(timedelta(hours=8))
DESCRIPTION_BYTES = 127
REASON_BYTES = 80
# A prepay id lives 2 hours; renew it well before.
PREPAY_RENEW_AFTER = timedelta(minutes=100)

TRADE_STATES = {
    "SUCCESS": "succeeded",
    "REFUND": "succeeded",  # paid, then (partly) refunded
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "ACCEPT": "pending",
    "CLOSED": "canceled",
    "REVOKED": "canceled",
    "PAYERROR": "failed",
}
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "pending", "ABNORMAL": "pending", "CLOSED": "failed"}
REFUND_EVENTS = ("REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED")


def cut_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, on a character boundary."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def rfc3339(moment: datetime) -> str:
    """WeChat's time format, in China time: ``2026-12-01T20:30:00+08:00``."""
    return moment.astimezone(CHINA).replace(microsecond=0).isoformat()


def _fen(amount: Decimal, currency: str) -> int:
    if currency.upper() != "CNY":
        raise base.ProviderRefused(f"WeChat Pay takes CNY only, not {currency}.", code="CURRENCY_NOT_CNY")
    return to_minor_units(amount)


def _sub_merchant(handle: base.PaymentHandle) -> str | None:
    """The sub-merchant every partner-mode call names; None in direct mode."""
    if not wx.partner_mode():
        return None
    if not handle.sub_merchant:
        raise base.ProviderRefused("No WeChat Pay sub-merchant for this payment.", code="SUB_MCHID_MISSING")
    return handle.sub_merchant


def _payer(openid: str) -> dict:
    """``{"openid"}``; partner mode: ``sub_appid`` and ``sub_openid`` (``sp_openid``: the provider's app)."""
    if not wx.partner_mode():
        return {"payer": {"openid": openid}}
    if settings.WECHAT_APP_ID and settings.WECHAT_APP_ID != settings.WECHATPAY_SP_APPID:
        return {"payer": {"sub_openid": openid}, "sub_appid": settings.WECHAT_APP_ID}
    return {"payer": {"sp_openid": openid}}


def _refund_state(data: Mapping) -> base.ProviderRefund:
    """A refund answer, query or notification resource (``status`` or ``refund_status``)."""
    wx_status = str(data.get("status") or data.get("refund_status") or "")
    amount = data.get("amount") or {}
    attention = failure = ""
    if wx_status == "ABNORMAL":
        attention = _(
            "WeChat Pay could not return refund %(ref)s to the payer's original account (ABNORMAL: "
            "a closed or frozen bank card, for instance). Handle it in the WeChat Pay merchant platform "
            "(交易中心 > 退款管理 > 异常退款: refund to the payer's balance or a bank account); "
            "it is completed when WeChat Pay reports it succeeded."
        ) % {"ref": data.get("out_refund_no", "")}
    elif wx_status == "CLOSED":
        failure = _("WeChat Pay closed the refund: no money was returned. Request a new refund if needed.")
    return base.ProviderRefund(
        ref=str(data.get("refund_id") or ""),
        status=REFUND_STATES.get(wx_status, "pending"),
        amount=from_minor_units(int(amount.get("refund") or 0)),
        currency=str(amount.get("currency") or "CNY"),
        reference=str(data.get("out_refund_no") or ""),
        failure_reason=failure,
        attention=attention,
        raw=dict(data),
    )


def _ours(resource: Mapping) -> bool:
    """A resource of our merchant account (a shared notify URL may receive others')."""
    mchid = resource.get("sp_mchid") if "sp_mchid" in resource else resource.get("mchid")
    return mchid is None or str(mchid) == settings.WECHATPAY_MCHID


def fact_of(event_type: str, resource: Mapping) -> base.Fact | None:
    """The fact a decrypted notification states, or None (not ours, or not about payments)."""
    if event_type.startswith("MCHTRANSFER."):
        return transfers.transfer_fact(event_type, resource)
    if not _ours(resource):
        return None
    if event_type == "TRANSACTION.SUCCESS" and resource.get("trade_state") == "SUCCESS":
        amount = resource.get("amount") or {}
        return base.PaymentSucceeded(
            order_id=None,
            payment_ref=str(resource.get("transaction_id") or ""),
            amount=from_minor_units(int(amount.get("total") or 0)),
            currency=str(amount.get("currency") or "CNY"),
            payment_reference=str(resource.get("out_trade_no") or ""),
        )
    if event_type in REFUND_EVENTS:
        return base.RefundSettled(
            payment_ref=str(resource.get("transaction_id") or ""),
            payment_reference=str(resource.get("out_trade_no") or ""),
            refund=_refund_state(resource),
        )
    return None


class WechatPayProvider:
    name = "wechatpay"
    pollable = True  # WeChat notifies successes only, and not reliably: query by out_trade_no
    needs_wechat_identity = True

    # --- paying

    def create_payment(
        self,
        *,
        handle: base.PaymentHandle,
        order_id: int,
        payer: base.Payer,
        description: str,
        expires_at: datetime | None,
        idempotency_key: str,
    ) -> base.ProviderPayment:
        """JSAPI prepay for ``handle.reference``; the same request again answers the same order."""
        if not payer.wechat_openid:
            raise base.ProviderRefused("The payer has no openid in our mini-program.", code="NO_OPENID")
        request = {
            "description": cut_bytes(description, DESCRIPTION_BYTES) or str(order_id),
            "out_trade_no": handle.reference,
            "amount": {"total": _fen(handle.amount, handle.currency), "currency": "CNY"},
            **_payer(payer.wechat_openid),
        }
        if expires_at is not None:
            request["time_expire"] = rfc3339(expires_at)
        sub_mchid = _sub_merchant(handle)
        if sub_mchid:
            request["sub_mchid"] = sub_mchid
        return self._prepay(handle=handle, request=request)

    def _prepay(self, *, handle: base.PaymentHandle, request: dict) -> base.ProviderPayment:
        answer = wx.call(wx.wechatpay_client().pay, **request)
        prepay_id = str(answer.get("prepay_id") or "")
        if not prepay_id:
            raise base.ProviderUnavailable("WeChat Pay answered the prepay without a prepay_id.")
        return base.ProviderPayment(
            ref="",  # the transaction_id comes with the payment
            status="pending",
            amount=handle.amount,
            currency=handle.currency,
            client={"prepay_id": prepay_id, "issued_at": django_timezone.now().isoformat()},
            raw={"prepay": request, "prepay_id": prepay_id},
        )

    def renew_client(self, *, handle: base.PaymentHandle, client: Mapping, raw: Mapping) -> dict | None:
        """A new client part when the prepay id is about to lapse (it lives 2 hours), else None.

        Repeats the identical prepay (WeChat answers a prepay id for the same
        ``out_trade_no`` and the same parameters). ``ProviderRefused`` when it
        cannot (the order closed or paid at WeChat, or the request was not kept):
        the caller then starts a new attempt or applies what WeChat says.
        """
        issued = client.get("issued_at")
        try:
            issued_at = datetime.fromisoformat(issued) if issued else None
        except (TypeError, ValueError):
            issued_at = None
        if issued_at is not None and django_timezone.now() - issued_at < PREPAY_RENEW_AFTER:
            return None
        request = raw.get("prepay")
        if not isinstance(request, dict):
            raise base.ProviderRefused("The original prepay request was not kept.", code="PREPAY_UNKNOWN")
        return self._prepay(handle=handle, request=dict(request)).client

    def client_payload(self, *, handle: base.PaymentHandle, client: Mapping) -> dict:
        """``request_payment`` for ``wx.requestPayment``, freshly signed with the merchant key."""
        prepay_id = client.get("prepay_id")
        if not prepay_id:
            return {"client_secret": None, "request_payment": None}
        fields = {
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id={prepay_id}",
            "signType": "RSA",
        }
        # The appId of the mini-program that calls wx.requestPayment (partner mode: the sub_appid,
        # or the service provider's own app when they are the same).
        message = [settings.WECHAT_APP_ID, fields["timeStamp"], fields["nonceStr"], fields["package"]]
        return {"client_secret": None, "request_payment": fields | {"paySign": wx.sign(message)}}

    def close_payment(self, *, handle: base.PaymentHandle, idempotency_key: str) -> None:
        """Close the WeChat order (nothing to close if WeChat never had it). ``ORDERPAID``: refused."""
        kwargs = {"out_trade_no": handle.reference}
        sub_mchid = _sub_merchant(handle)
        if sub_mchid:
            kwargs["sub_mchid"] = sub_mchid
        try:
            wx.call(wx.wechatpay_client().close, **kwargs)
        except base.ProviderRefused as exc:
            if exc.code != "ORDER_NOT_EXIST":
                raise

    def fetch_payment(self, *, handle: base.PaymentHandle) -> base.ProviderPayment:
        """The WeChat order by ``out_trade_no``; ``ProviderRefused`` code ``ORDER_NOT_EXIST`` if none."""
        kwargs = {"out_trade_no": handle.reference}
        sub_mchid = _sub_merchant(handle)
        if sub_mchid:
            kwargs["sub_mchid"] = sub_mchid
        data = wx.call(wx.wechatpay_client().query, **kwargs)
        amount = data.get("amount") or {}
        status = TRADE_STATES.get(str(data.get("trade_state") or ""), "pending")
        total = from_minor_units(int(amount.get("total") or 0))
        return base.ProviderPayment(
            ref=str(data.get("transaction_id") or ""),
            status=status,
            amount=total,
            currency=str(amount.get("currency") or "CNY"),
            amount_received=total if status == "succeeded" else Decimal("0"),
            raw=data,
        )

    # --- refunds

    def refund(
        self,
        *,
        handle: base.PaymentHandle,
        refund: base.RefundHandle,
        amount: Decimal,
        idempotency_key: str,
        reason: str,
        metadata: Mapping[str, str],
    ) -> base.ProviderRefund:
        """A refund with our ``out_refund_no``; the same request again answers the same refund."""
        kwargs = {
            "out_refund_no": refund.reference,
            "out_trade_no": handle.reference,
            "amount": {
                "refund": _fen(amount, handle.currency),
                "total": _fen(handle.amount, handle.currency),
                "currency": "CNY",
            },
            "notify_url": settings.WECHATPAY_NOTIFY_URL or None,
        }
        if reason.strip():
            kwargs["reason"] = cut_bytes(reason.strip(), REASON_BYTES)
        sub_mchid = _sub_merchant(handle)
        if sub_mchid:
            kwargs["sub_mchid"] = sub_mchid
        return _refund_state(wx.call(wx.wechatpay_client().refund, **kwargs))

    def fetch_refund(self, *, handle: base.PaymentHandle, refund: base.RefundHandle) -> base.ProviderRefund:
        """The refund by ``out_refund_no``; ``ProviderRefused`` code ``RESOURCE_NOT_EXISTS`` if none."""
        kwargs = {"out_refund_no": refund.reference}
        sub_mchid = _sub_merchant(handle)
        if sub_mchid:
            kwargs["sub_mchid"] = sub_mchid
        return _refund_state(wx.call(wx.wechatpay_client().query_refund, **kwargs))

    def fetch_refunds(
        self, *, handle: base.PaymentHandle, known: list[base.RefundHandle]
    ) -> list[base.ProviderRefund]:
        """Each known refund queried (WeChat has no list by payment); ones WeChat never got are left out."""
        states = []
        for refund in known:
            try:
                states.append(self.fetch_refund(handle=handle, refund=refund))
            except base.ProviderRefused as exc:
                if exc.code != "RESOURCE_NOT_EXISTS":
                    raise
        return states

    # --- notifications

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        """Verify and decrypt a notification; the stored payload keeps the plaintext resource only."""
        data = wx.notification_open(headers, payload)
        event_id, event_type = str(data.get("id") or ""), str(data.get("event_type") or "")
        if not event_id:
            raise base.InvalidWebhook("The notification has no id.")
        return base.WebhookDelivery(
            event_id=event_id,
            type=event_type,
            payload=data,
            fact=fact_of(event_type, data["resource"]),
        )
