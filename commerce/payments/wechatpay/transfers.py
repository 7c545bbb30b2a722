"""WeChat Pay merchant transfers (商家转账, ``/v3/fund-app/mch-transfer/transfer-bills``): commission payouts.

A transfer to a member's openid in the mini-program's app, for transfer scene
``WECHATPAY_TRANSFER_SCENE_ID`` (1005 佣金报酬, whose report infos 岗位类型 and
报酬说明 are required). WeChat answers ``WAIT_USER_CONFIRM`` with a
``package_info`` the member confirms in the mini-program
(``wx.requestMerchantTransfer``); the final state (``SUCCESS``, ``FAIL``,
``CANCELLED``) comes by notification (``MCHTRANSFER.BILL.FINISHED``) or query.
From 2,000 yuan the payee's real name is required: the library encrypts it with
the WeChat Pay public key and sends its id in ``Wechatpay-Serial``.

When WeChat Pay is not configured and the sandbox is on (the demo), the
transfers go to the sandbox's (``commerce.payments.sandbox``), which answers
the same way; ``transfer_provider`` says which.
"""

from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings

from commerce.payments import base, sandbox
from commerce.payments.wechatpay import client as wx
from commerce.pricing import from_minor_units, to_minor_units

REMARK_CHARS = 32
REPORT_INFO_CHARS = 32
REAL_NAME_FROM = Decimal("2000.00")
EVENT_FINISHED = "MCHTRANSFER.BILL.FINISHED"
# The scene whose report infos we send (佣金报酬): 岗位类型 and 报酬说明, each once.
SCENE_COMMISSION = "1005"
# Refusals that mean the request itself is wrong: WeChat made no bill, the transfer has failed.
# Any other refusal (NOT_ENOUGH "top up, then retry with the same out_bill_no", a code new to us)
# leaves the transfer in flight: it is sent again with the same out_bill_no, never a new one.
FINAL_REFUSALS = {"PARAM_ERROR", "INVALID_REQUEST", "NO_AUTH", "APPID_MCHID_NOT_MATCH", "USER_NAME"}


def refusal_is_final(code: str) -> bool:
    """Whether a refused transfer has failed (else: retry later with the same out_bill_no)."""
    return code in FINAL_REFUSALS


def real_name_required(amount: Decimal) -> bool:
    """WeChat requires the payee's real name (``user_name``) from 2,000 yuan."""
    return amount >= REAL_NAME_FROM


def transfer_provider() -> str:
    """WeChat Pay when it is configured, else the sandbox when it is on (never with ``DEBUG=0``)."""
    if not base.provider_configured("wechatpay") and base.provider_configured(sandbox.NAME):
        return sandbox.NAME
    return "wechatpay"


def transfer_payer() -> tuple[str, str]:
    """The merchant and mini-program ids ``wx.requestMerchantTransfer`` names (``mchId``, ``appId``):
    the sandbox's own in the demo, where WeChat Pay has none."""
    if transfer_provider() == sandbox.NAME:
        return sandbox.MCH_ID, sandbox.APP_ID
    return settings.WECHATPAY_MCHID, settings.WECHAT_APP_ID


def _state(data: Mapping) -> base.TransferState:
    amount = data.get("transfer_amount")
    return base.TransferState(
        reference=str(data.get("out_bill_no") or ""),
        state=str(data.get("state") or ""),
        ref=str(data.get("transfer_bill_no") or ""),
        amount=from_minor_units(int(amount)) if isinstance(amount, int) else None,
        openid=str(data.get("openid") or ""),
        package_info=str(data.get("package_info") or ""),
        fail_reason=str(data.get("fail_reason") or ""),
        raw=dict(data),
    )


def transfer_create(
    *, reference: str, openid: str, amount: Decimal, remark: str, real_name: str = ""
) -> base.TransferState:
    """Start the transfer ``reference`` (our out_bill_no); the same request again answers the same bill."""
    if real_name_required(amount) and not real_name:
        raise base.ProviderRefused(
            "WeChat Pay needs the payee's real name from 2,000 yuan.", code="USER_NAME"
        )
    if transfer_provider() == sandbox.NAME:
        return sandbox.transfer_create(reference=reference, openid=openid, amount=amount)
    kwargs = {
        "out_bill_no": reference,
        "transfer_scene_id": settings.WECHATPAY_TRANSFER_SCENE_ID,
        "openid": openid,
        "transfer_amount": to_minor_units(amount),
        "transfer_remark": remark[:REMARK_CHARS],
        "transfer_scene_report_infos": [
            {"info_type": "岗位类型", "info_content": settings.WITHDRAWAL_JOB_TYPE[:REPORT_INFO_CHARS]},
            {
                "info_type": "报酬说明",
                "info_content": settings.WITHDRAWAL_PAY_DESCRIPTION[:REPORT_INFO_CHARS],
            },
        ],
        "appid": settings.WECHAT_APP_ID,
        "notify_url": settings.WECHATPAY_NOTIFY_URL or None,
    }
    if real_name_required(amount):
        kwargs["user_name"] = real_name  # encrypted by the library with the WeChat Pay public key
    return _state(wx.call(wx.wechatpay_client().mch_transfer_bills, **kwargs))


def transfer_fetch(*, reference: str) -> base.TransferState:
    """The transfer by out_bill_no; ``ProviderRefused`` code ``NOT_FOUND`` when WeChat never got it."""
    if transfer_provider() == sandbox.NAME:
        return sandbox.transfer_fetch(reference=reference)
    return _state(wx.call(wx.wechatpay_client().mch_transfer_bills_query, out_bill_no=reference))


def transfer_cancel(*, reference: str) -> base.TransferState:
    """Ask WeChat to cancel a transfer not yet confirmed (``CANCELING``; ``CANCELLED`` is notified)."""
    if transfer_provider() == sandbox.NAME:
        return sandbox.transfer_cancel(reference=reference)
    return _state(wx.call(wx.wechatpay_client().mch_transfer_bills_cancel, reference))


def transfer_fact(event_type: str, resource: Mapping) -> base.TransferFinished | None:
    """The fact a decrypted MCHTRANSFER notification states (None for another merchant's)."""
    if event_type != EVENT_FINISHED or str(resource.get("mch_id") or "") != settings.WECHATPAY_MCHID:
        return None
    return base.TransferFinished(transfer=_state(resource))
