"""The demo's "pay" and "confirm transfer" buttons at the sandbox (demo and local runs only)."""

from commerce import errors
from commerce.models import Order, Payment, Withdrawal
from commerce.payments import sandbox
from commerce.services.withdrawals import withdrawal_get_own


def sandbox_pay_order(*, buyer, order_id: int) -> dict:
    """Pay the buyer's live sandbox attempt; the sandbox then notifies it like WeChat Pay would.

    ``NotFound`` for an order that is not the buyer's; ``SandboxNotPayable`` (409) when there is no
    payment to confirm. Returns the trade's state and the order's status as they are now.
    """
    if not Order.objects.filter(pk=order_id, buyer=buyer).exists():
        raise errors.NotFound()
    payment = (
        Payment.objects.filter(order_id=order_id, provider=sandbox.NAME)
        .exclude(status__in=[Payment.Status.CREATING, Payment.Status.CANCELED])
        .order_by("-pk")
        .first()
    )
    if payment is None:
        raise errors.SandboxNotPayable()
    try:
        trade = sandbox.sandbox_pay(reference=payment.reference, payer_id=buyer.pk)
    except sandbox.SandboxRefused as exc:
        raise errors.SandboxNotPayable() from exc
    status = Order.objects.values_list("status", flat=True).get(pk=order_id)
    return {"order_id": order_id, "trade_state": trade.state, "order_status": status}


def sandbox_confirm_withdrawal(*, user, withdrawal_id: int) -> dict:
    """The member confirms their withdrawal's sandbox transfer, as ``wx.requestMerchantTransfer`` would.

    The sandbox then notifies ``MCHTRANSFER.BILL.FINISHED``; the withdrawal is paid when it is applied.
    ``NotFound`` for another member's withdrawal; ``SandboxTransferNotConfirmable`` (409) when no
    sandbox transfer of it waits for confirmation. Returns the transfer's and the withdrawal's states now.
    """
    withdrawal = withdrawal_get_own(user=user, withdrawal_id=withdrawal_id)
    if withdrawal.status not in (Withdrawal.Status.AWAITING_CONFIRMATION, Withdrawal.Status.PAID):
        raise errors.SandboxTransferNotConfirmable()
    try:
        transfer = sandbox.sandbox_transfer_confirm(
            reference=withdrawal.out_bill_no, openid=withdrawal.openid
        )
    except sandbox.SandboxRefused as exc:
        raise errors.SandboxTransferNotConfirmable() from exc
    withdrawal.refresh_from_db(fields=["status"])
    return {
        "withdrawal_id": withdrawal.pk,
        "transfer_state": transfer.state,
        "withdrawal_status": withdrawal.status,
    }
