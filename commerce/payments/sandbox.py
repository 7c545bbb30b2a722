"""The sandbox payment provider: a stand-in for WeChat Pay for the demo and local runs.

It behaves like the real providers, so that the demo exercises the real
payment path end to end:

* ``create_payment`` opens a trade in the sandbox's own ledger
  (``SandboxTrade``, the provider's side, never read by commerce) and answers
  a pending payment whose client payload is shaped like WeChat Pay's:
  ``{"client_secret": None, "request_payment": {"timeStamp", "nonceStr",
  "package": "prepay_id=sandbox_...", "signType": "RSA", "paySign"}}``.
  ``paySign`` is base64(HMAC-SHA256(key, "sandbox\\n" + timeStamp + "\\n" +
  nonceStr + "\\n" + package + "\\n")) with a key derived from ``SECRET_KEY``
  (WeChat's message; an HMAC instead of the merchant's RSA signature):
  ``wx.requestPayment`` refuses it, by design. Instead the payer "pays" with
  ``POST /api/v1/payments/sandbox/pay/ {"order_id"}`` (``sandbox_pay``).
* The payment is confirmed asynchronously, through the same path as WeChat
  Pay's: a signed ``TRANSACTION.SUCCESS`` notification is built by the
  ``commerce.sandbox_notify`` task, queued on commit, and handed to
  ``webhook_receive(provider_name="sandbox")`` (which stores each delivery
  and applies each notification id once). ``POST
  /api/v1/payments/sandbox/notify/`` takes the same notifications over HTTP.
* A refund is answered ``PROCESSING``; the same task settles it and notifies
  ``REFUND.SUCCESS``.
* ``fetch_payment``, ``fetch_refund`` and ``fetch_refunds`` answer the
  ledger's current state (consistent with what was notified): it is pollable.
* Merchant transfers (商家转账, withdrawals): ``transfer_create`` answers
  ``WAIT_USER_CONFIRM`` with a sandbox ``package_info`` (``SandboxTransfer``);
  instead of ``wx.requestMerchantTransfer`` the payee confirms with ``POST
  /api/v1/payments/sandbox/transfer/confirm/ {"withdrawal_id"}``
  (``sandbox_transfer_confirm``), and the sandbox notifies
  ``MCHTRANSFER.BILL.FINISHED`` the same way. ``transfer_fetch`` and
  ``transfer_cancel`` answer like WeChat's query and cancel.
  ``commerce.payments.wechatpay.transfers`` uses them when WeChat Pay is not
  configured and the sandbox is on.

Notifications carry the headers ``Sandbox-Timestamp``, ``Sandbox-Nonce``,
``Sandbox-Serial`` and ``Sandbox-Signature`` = base64(HMAC-SHA256(key,
timestamp + "\\n" + nonce + "\\n" + body + "\\n")), another key derived from
``SECRET_KEY``; the serial names that key. A wrong signature or serial, or a
timestamp more than ``NOTIFY_TOLERANCE_SECONDS`` off, is refused.

Only when ``PAYMENT_SANDBOX_ENABLED`` (default: ``DEBUG``); ``check --deploy``
fails when it is on with ``DEBUG=0``.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.crypto import salted_hmac

from commerce.models import SandboxRefund, SandboxTrade, SandboxTransfer
from commerce.payments import base

logger = logging.getLogger(__name__)

NAME = "sandbox"
APP_ID = "sandbox"
NOTIFY_TOLERANCE_SECONDS = 300
TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_SUCCESS = "REFUND.SUCCESS"
TRANSFER_FINISHED = "MCHTRANSFER.BILL.FINISHED"
MCH_ID = "sandbox"
HEADERS = ("Sandbox-Timestamp", "Sandbox-Nonce", "Sandbox-Serial", "Sandbox-Signature")


class SandboxRefused(Exception):
    """The sandbox refuses what the payer asked (not theirs, closed, expired)."""


# --- Keys and signatures ----------------------------------------------------------------------


def _key(purpose: str) -> bytes:
    return salted_hmac("commerce.payments.sandbox", purpose, secret=settings.SECRET_KEY).digest()


def _hmac64(key: bytes, message: str) -> str:
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def serial() -> str:
    """The notification key's serial (like WeChat Pay's ``Wechatpay-Serial``)."""
    return "SANDBOX_" + hashlib.sha256(_key("notify")).hexdigest()[:24].upper()


def pay_sign(*, timestamp: str, nonce: str, package: str) -> str:
    return _hmac64(_key("pay-sign"), f"{APP_ID}\n{timestamp}\n{nonce}\n{package}\n")


def sign_notification(body: bytes, *, timestamp: int | None = None, nonce: str | None = None) -> dict:
    """The headers of a sandbox notification of ``body`` signed now (or at ``timestamp``)."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    signature = _hmac64(_key("notify"), f"{timestamp}\n{nonce}\n{body.decode()}\n")
    return dict(zip(HEADERS, (timestamp, nonce, serial(), signature), strict=True))


def _verify(payload: bytes, headers: Mapping[str, str]) -> None:
    lowered = {str(name).lower(): value for name, value in headers.items()}
    timestamp, nonce, key_serial, signature = (lowered.get(name.lower(), "") for name in HEADERS)
    if not (timestamp and nonce and signature):
        raise base.InvalidWebhook("Missing sandbox signature headers.")
    if key_serial != serial():
        raise base.InvalidWebhook("Unknown sandbox key serial.")
    try:
        message = f"{timestamp}\n{nonce}\n{payload.decode()}\n"
        sent_at = int(timestamp)
    except (UnicodeDecodeError, ValueError) as exc:
        raise base.InvalidWebhook("Unreadable timestamp or body.") from exc
    if not hmac.compare_digest(_hmac64(_key("notify"), message), signature):
        raise base.InvalidWebhook("Bad sandbox signature.")
    if abs(time.time() - sent_at) > NOTIFY_TOLERANCE_SECONDS:
        raise base.InvalidWebhook("Stale sandbox notification.")


# --- Amounts ------------------------------------------------------------------------------------


def _fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def _yuan(fen) -> Decimal:
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise base.InvalidWebhook("Amounts are integers in fen.")
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


# --- The provider -------------------------------------------------------------------------------

_PAYMENT_STATUS = {
    SandboxTrade.State.NOTPAY: "pending",
    SandboxTrade.State.SUCCESS: "succeeded",
    SandboxTrade.State.CLOSED: "canceled",
}
_REFUND_STATUS = {SandboxRefund.State.PROCESSING: "pending", SandboxRefund.State.SUCCESS: "succeeded"}


def _provider_payment(trade: SandboxTrade) -> base.ProviderPayment:
    paid = trade.state == SandboxTrade.State.SUCCESS
    return base.ProviderPayment(
        ref=trade.transaction_id,
        status=_PAYMENT_STATUS[trade.state],
        amount=trade.amount,
        currency=trade.currency,
        amount_received=trade.amount if paid else Decimal("0"),
        client={"prepay_id": trade.prepay_id, "issued_at": trade.created_at.isoformat()},
        raw=_trade_resource(trade),
    )


def _provider_refund(refund: SandboxRefund, local_id: int | None = None) -> base.ProviderRefund:
    return base.ProviderRefund(
        ref=refund.refund_id,
        status=_REFUND_STATUS[refund.state],
        amount=refund.amount,
        currency=refund.trade.currency,
        local_id=local_id,
        reference=refund.out_refund_no,
        raw=_refund_resource(refund),
    )


def _trade(handle: base.PaymentHandle) -> SandboxTrade:
    trade = SandboxTrade.objects.filter(out_trade_no=handle.reference).first()
    if trade is None:
        raise base.ProviderRefused("ORDER_NOT_EXIST", code="ORDER_NOT_EXIST")
    return trade


class SandboxProvider:
    name = NAME
    pollable = True
    needs_wechat_identity = False

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
        """Open the trade (once per reference: a repeat with other parameters is refused, as WeChat does)."""
        try:
            with transaction.atomic():
                trade, _created = SandboxTrade.objects.get_or_create(
                    out_trade_no=handle.reference,
                    defaults={
                        "prepay_id": f"sandbox_{secrets.token_hex(12)}",
                        "order_id": order_id,
                        "payer_id": payer.user_id,
                        "amount": handle.amount,
                        "currency": handle.currency,
                        "description": description.encode()[:127].decode(errors="ignore"),
                        "expires_at": expires_at,
                    },
                )
        except IntegrityError as exc:  # a concurrent create of the same reference
            raise base.ProviderUnavailable("Sandbox busy, retry.") from exc
        if (trade.amount, trade.currency, trade.payer_id) != (handle.amount, handle.currency, payer.user_id):
            raise base.ProviderRefused("INVALID_REQUEST: parameters differ", code="INVALID_REQUEST")
        return _provider_payment(trade)

    def client_payload(self, *, handle: base.PaymentHandle, client: Mapping) -> dict:
        """WeChat's ``wx.requestPayment`` shape, signed anew on each call (an HMAC: see the module)."""
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        package = f"prepay_id={client.get('prepay_id', '')}"
        return {
            "client_secret": None,
            "request_payment": {
                "timeStamp": timestamp,
                "nonceStr": nonce,
                "package": package,
                "signType": "RSA",
                "paySign": pay_sign(timestamp=timestamp, nonce=nonce, package=package),
            },
        }

    def close_payment(self, *, handle: base.PaymentHandle, idempotency_key: str) -> None:
        with transaction.atomic():
            trade = SandboxTrade.objects.select_for_update().filter(out_trade_no=handle.reference).first()
            if trade is None or trade.state == SandboxTrade.State.CLOSED:
                return
            if trade.state == SandboxTrade.State.SUCCESS:
                raise base.ProviderRefused("ORDERPAID", code="ORDERPAID")
            trade.state = SandboxTrade.State.CLOSED
            trade.save(update_fields=["state"])

    def fetch_payment(self, *, handle: base.PaymentHandle) -> base.ProviderPayment:
        return _provider_payment(_trade(handle))

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
        """Accept the refund (``PROCESSING``); the sandbox settles and notifies it after commit."""
        local_id = int(metadata["refund_id"]) if metadata.get("refund_id") else None
        with transaction.atomic():
            trade = SandboxTrade.objects.select_for_update().filter(out_trade_no=handle.reference).first()
            if trade is None or trade.state != SandboxTrade.State.SUCCESS:
                raise base.ProviderRefused("TRADE_NOT_PAID", code="INVALID_REQUEST")
            existing = trade.refunds.filter(out_refund_no=refund.reference).first()
            if existing is not None:
                return _provider_refund(existing, local_id)
            refunded = trade.refunds.aggregate(total=Sum("amount"))["total"] or Decimal("0")
            if amount <= 0 or refunded + amount > trade.amount:
                raise base.ProviderRefused("NOT_ENOUGH: more than was paid", code="NOT_ENOUGH")
            made = SandboxRefund.objects.create(
                trade=trade,
                out_refund_no=refund.reference,
                refund_id=f"sandbox_rf_{secrets.token_hex(12)}",
                amount=amount,
                reason=reason[:500],
            )
            notify_on_commit(event_type=REFUND_SUCCESS, reference=made.out_refund_no)
        return _provider_refund(made, local_id)

    def fetch_refund(self, *, handle: base.PaymentHandle, refund: base.RefundHandle) -> base.ProviderRefund:
        found = SandboxRefund.objects.select_related("trade").filter(out_refund_no=refund.reference).first()
        if found is None or found.trade.out_trade_no != handle.reference:
            raise base.ProviderRefused("RESOURCE_NOT_EXISTS", code="RESOURCE_NOT_EXISTS")
        return _provider_refund(found)

    def fetch_refunds(
        self, *, handle: base.PaymentHandle, known: list[base.RefundHandle]
    ) -> list[base.ProviderRefund]:
        trade = _trade(handle)
        return [_provider_refund(refund) for refund in trade.refunds.select_related("trade").order_by("pk")]

    def parse_webhook(self, *, payload: bytes, headers: Mapping[str, str]) -> base.WebhookDelivery:
        _verify(payload, headers)
        try:
            body = json.loads(payload)
            event_id, event_type, resource = body["id"], body["event_type"], body["resource"]
            if not (isinstance(event_id, str) and isinstance(event_type, str) and isinstance(resource, dict)):
                raise TypeError
            fact = _fact(event_type, resource)
        except (ValueError, KeyError, TypeError) as exc:
            raise base.InvalidWebhook("Unreadable sandbox notification.") from exc
        return base.WebhookDelivery(event_id=event_id, type=event_type, payload=body, fact=fact)


def _fact(event_type: str, resource: dict) -> base.Fact | None:
    amount = resource.get("amount") or {}
    if event_type == TRANSACTION_SUCCESS:
        return base.PaymentSucceeded(
            order_id=None,
            payment_ref=str(resource["transaction_id"]),
            amount=_yuan(amount["total"]),
            currency=str(amount["currency"]),
            payment_reference=str(resource["out_trade_no"]),
        )
    if event_type == REFUND_SUCCESS:
        return base.RefundSettled(
            payment_ref=str(resource["transaction_id"]),
            payment_reference=str(resource["out_trade_no"]),
            refund=base.ProviderRefund(
                ref=str(resource["refund_id"]),
                status="succeeded",
                amount=_yuan(amount["refund"]),
                currency=str(amount["currency"]),
                reference=str(resource["out_refund_no"]),
                raw=resource,
            ),
        )
    if event_type == TRANSFER_FINISHED:
        if resource.get("mch_id") != MCH_ID:
            return None
        return base.TransferFinished(transfer=_transfer_state(resource))
    return None


# --- Merchant transfers (commerce.payments.wechatpay.transfers' counterpart) --------------------


def _transfer_resource(transfer: SandboxTransfer) -> dict:
    """The transfer as WeChat's answers and notifications show it (amount in fen)."""
    return {
        "mch_id": MCH_ID,
        "out_bill_no": transfer.out_bill_no,
        "transfer_bill_no": transfer.transfer_bill_no,
        "state": transfer.state,
        "transfer_amount": _fen(transfer.amount),
        "openid": transfer.openid,
        "create_time": transfer.created_at.isoformat(),
        "update_time": (transfer.finished_at or transfer.created_at).isoformat(),
    }


def _transfer_state(resource: Mapping, *, package_info: str = "") -> base.TransferState:
    amount = resource.get("transfer_amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise TypeError("transfer_amount")
    return base.TransferState(
        reference=str(resource["out_bill_no"]),
        state=str(resource["state"]),
        ref=str(resource.get("transfer_bill_no") or ""),
        amount=_yuan(amount),
        openid=str(resource.get("openid") or ""),
        package_info=package_info,
        raw=dict(resource),
    )


def _transfer(reference: str) -> SandboxTransfer:
    transfer = SandboxTransfer.objects.filter(out_bill_no=reference).first()
    if transfer is None:
        raise base.ProviderRefused("NOT_FOUND", code="NOT_FOUND")
    return transfer


def transfer_create(*, reference: str, openid: str, amount: Decimal) -> base.TransferState:
    """Open the transfer (once per reference; a repeat answers the same bill, with its package_info).

    A repeat with another payee or amount is refused, as WeChat does.
    """
    try:
        with transaction.atomic():
            transfer, _created = SandboxTransfer.objects.get_or_create(
                out_bill_no=reference,
                defaults={
                    "transfer_bill_no": f"sandbox_tb_{secrets.token_hex(12)}",
                    "package_info": f"sandbox_pkg_{secrets.token_hex(16)}",
                    "openid": openid,
                    "amount": amount,
                },
            )
    except IntegrityError as exc:  # a concurrent create of the same reference
        raise base.ProviderUnavailable("Sandbox busy, retry.") from exc
    if (transfer.openid, transfer.amount) != (openid, amount):
        raise base.ProviderRefused("INVALID_REQUEST: parameters differ", code="INVALID_REQUEST")
    return _transfer_state(_transfer_resource(transfer), package_info=transfer.package_info)


def transfer_fetch(*, reference: str) -> base.TransferState:
    """The transfer as the sandbox holds it (no package_info, like WeChat's query); NOT_FOUND if none."""
    return _transfer_state(_transfer_resource(_transfer(reference)))


def transfer_cancel(*, reference: str, now: datetime | None = None) -> base.TransferState:
    """Cancel a transfer the payee has not confirmed; a transferred one is refused (``INVALID_REQUEST``)."""
    with transaction.atomic():
        transfer = SandboxTransfer.objects.select_for_update().filter(out_bill_no=reference).first()
        if transfer is None:
            raise base.ProviderRefused("NOT_FOUND", code="NOT_FOUND")
        if transfer.state == SandboxTransfer.State.SUCCESS:
            raise base.ProviderRefused("INVALID_REQUEST: already transferred", code="INVALID_REQUEST")
        if transfer.state == SandboxTransfer.State.WAIT_USER_CONFIRM:
            transfer.state, transfer.finished_at = SandboxTransfer.State.CANCELLED, now or timezone.now()
            transfer.save(update_fields=["state", "finished_at"])
    return _transfer_state(_transfer_resource(transfer))


def sandbox_transfer_confirm(*, reference: str, openid: str, now: datetime | None = None) -> SandboxTransfer:
    """The payee confirms the transfer (``wx.requestMerchantTransfer``); it is notified after commit.

    Confirming it again sends its notification again (applied once). Refuses
    another payee's transfer and a cancelled one.
    """
    with transaction.atomic():
        transfer = SandboxTransfer.objects.select_for_update().filter(out_bill_no=reference).first()
        if transfer is None or not openid or transfer.openid != openid:
            raise SandboxRefused("not_found")
        if transfer.state == SandboxTransfer.State.CANCELLED:
            raise SandboxRefused("closed")
        if transfer.state == SandboxTransfer.State.WAIT_USER_CONFIRM:
            transfer.state, transfer.finished_at = SandboxTransfer.State.SUCCESS, now or timezone.now()
            transfer.save(update_fields=["state", "finished_at"])
        notify_on_commit(event_type=TRANSFER_FINISHED, reference=transfer.out_bill_no)
    return transfer


# --- The sandbox's side: the payer pays, the sandbox notifies ------------------------------------


def _trade_resource(trade: SandboxTrade) -> dict:
    return {
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.transaction_id,
        "trade_state": trade.state,
        "success_time": trade.paid_at.isoformat() if trade.paid_at else None,
        "amount": {"total": _fen(trade.amount), "currency": trade.currency},
    }


def _refund_resource(refund: SandboxRefund) -> dict:
    trade = refund.trade
    return {
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.transaction_id,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": refund.state,
        "success_time": refund.succeeded_at.isoformat() if refund.succeeded_at else None,
        "amount": {"total": _fen(trade.amount), "refund": _fen(refund.amount), "currency": trade.currency},
    }


def sandbox_pay(*, reference: str, payer_id: int, now: datetime | None = None) -> SandboxTrade:
    """The payer pays the trade at the sandbox; the success is notified after commit.

    Paying a trade already paid sends its notification again (applied once).
    Refuses another payer's trade, a closed one and one whose hold ended.
    """
    now = now or timezone.now()
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().filter(out_trade_no=reference).first()
        if trade is None or trade.payer_id != payer_id:
            raise SandboxRefused("not_found")
        if trade.state == SandboxTrade.State.CLOSED or (
            trade.state == SandboxTrade.State.NOTPAY and trade.expires_at and trade.expires_at <= now
        ):
            raise SandboxRefused("closed")
        if trade.state == SandboxTrade.State.NOTPAY:
            trade.state = SandboxTrade.State.SUCCESS
            trade.transaction_id = f"sandbox_tx_{secrets.token_hex(12)}"
            trade.paid_at = now
            trade.save(update_fields=["state", "transaction_id", "paid_at"])
        notify_on_commit(event_type=TRANSACTION_SUCCESS, reference=trade.out_trade_no)
    return trade


def notify_on_commit(*, event_type: str, reference: str) -> None:
    """Queue the sandbox's notification after the current transaction commits (eager when embedded)."""
    from commerce.tasks import sandbox_notify_task

    def queue() -> None:
        sandbox_notify_task.apply_async(
            kwargs={"event_type": event_type, "reference": reference},
            countdown=settings.PAYMENT_SANDBOX_NOTIFY_DELAY_SECONDS,
        )

    transaction.on_commit(queue, robust=True)


def notification(*, event_type: str, reference: str, now: datetime | None = None) -> bytes:
    """The body of the sandbox's notification of a paid trade, a settled refund or a finished transfer.

    A refund is settled (``SUCCESS``) here first: the sandbox finishes refunds when it notifies them.
    Its id is fixed per event and reference, so that every delivery of it is the same notification.
    """
    now = now or timezone.now()
    if event_type == TRANSACTION_SUCCESS:
        trade = SandboxTrade.objects.get(out_trade_no=reference, state=SandboxTrade.State.SUCCESS)
        resource, summary = _trade_resource(trade), "支付成功"
    elif event_type == REFUND_SUCCESS:
        with transaction.atomic():
            refund = (
                SandboxRefund.objects.select_for_update().select_related("trade").get(out_refund_no=reference)
            )
            if refund.state != SandboxRefund.State.SUCCESS:
                refund.state, refund.succeeded_at = SandboxRefund.State.SUCCESS, now
                refund.save(update_fields=["state", "succeeded_at"])
        resource, summary = _refund_resource(refund), "退款成功"
    elif event_type == TRANSFER_FINISHED:
        transfer = SandboxTransfer.objects.get(
            out_bill_no=reference, state__in=[SandboxTransfer.State.SUCCESS, SandboxTransfer.State.CANCELLED]
        )
        resource, summary = _transfer_resource(transfer), "商家转账单据终态通知"
    else:
        raise ValueError(event_type)
    body = {
        "id": f"{event_type}:{reference}",
        "create_time": now.isoformat(),
        "event_type": event_type,
        "resource_type": "sandbox.resource",
        "summary": summary,
        "resource": resource,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def deliver(*, event_type: str, reference: str) -> str:
    """Build, sign and hand one notification to our notification path; returns its outcome."""
    from commerce.services.payments import webhook_receive

    body = notification(event_type=event_type, reference=reference)
    event = webhook_receive(provider_name=NAME, payload=body, headers=sign_notification(body))
    return event.outcome
