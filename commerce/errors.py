"""Errors the commerce services raise; the API renders them as the contract's error shape."""

from django.utils.translation import gettext_lazy as _

from members.errors import InvalidReferralCode, MembershipRequired, SelfReferral
from shequn_backend.errors import ApplicationError, Conflict, NotFound

__all__ = [
    "ApplicationError",
    "Conflict",
    "CouponLimitReached",
    "CouponNotApplicable",
    "CouponSoldOut",
    "CouponUnavailable",
    "EventStarted",
    "IdempotencyKeyReused",
    "InvalidCouponCode",
    "InvalidOrderLines",
    "InvalidReferralCode",
    "MembershipRequired",
    "NotFound",
    "OrderNotCancellable",
    "OrderNotRefundable",
    "OutOfStock",
    "PaymentProviderUnavailable",
    "RefundExceedsPaid",
    "RefundWindowClosed",
    "SelfReferral",
]


class OutOfStock(ApplicationError):
    code = "out_of_stock"
    message = _("Not enough stock left for this order. Lower the quantity or choose another item.")
    http_status = 409


class InvalidFields(ApplicationError):
    """Some fields of a request are invalid: a 400 naming each field and what to correct there."""

    code = "validation_error"
    http_status = 400

    def __init__(self, fields: dict[str, list[str]]):
        super().__init__(fields=fields)


class InvalidOrderLines(InvalidFields):
    """A line names a SKU the caller cannot buy here: unknown, another community's, hidden or off sale."""

    message = _("Some order lines are invalid. Correct them and send the order again.")


class InvalidShipment(InvalidFields):
    message = _("Some shipment details are invalid. Correct them and send them again.")


class InvalidAfterSale(InvalidFields):
    message = _("Some after-sale details are invalid. Correct them and send the request again.")


class EventStarted(ApplicationError):
    code = "event_started"
    message = _("This event has already started; tickets are no longer sold.")
    http_status = 400


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    message = _("This Idempotency-Key was already used for a different request. Use a new key.")
    http_status = 409


class OrderNotCancellable(ApplicationError):
    code = "order_not_cancellable"
    message = _("Only unpaid orders can be cancelled.")
    http_status = 409


class OrderNotRefundable(ApplicationError):
    code = "order_not_refundable"
    message = _("This order has no confirmed payment to refund.")
    http_status = 409


class RefundExceedsPaid(ApplicationError):
    code = "refund_exceeds_paid"
    message = _("The refund is larger than what is left to refund on this order. Lower the amount.")
    http_status = 400


class RefundWindowClosed(ApplicationError):
    code = "refund_window_closed"
    message = _("The unconditional refund window of this entry fee has closed. Ask the community's owner.")
    http_status = 409


class PaymentProviderUnavailable(ApplicationError):
    """The provider did not answer or refused; the order or refund is kept and can be retried."""

    code = "payment_provider_unavailable"
    message = _(
        "The payment service is unavailable right now. Your order is kept: "
        "retry in a moment with the same Idempotency-Key."
    )
    http_status = 503


class WechatBindingRequired(ApplicationError):
    """Paying by WeChat Pay needs the payer's openid in our mini-program."""

    code = "wechat_binding_required"
    message = _(
        "To pay with WeChat Pay, bind your WeChat first: call wx.login in the mini-program "
        "and send the code to /api/v1/auth/wechat/bind/."
    )
    http_status = 409


class SandboxTransferNotConfirmable(ApplicationError):
    """The sandbox has no transfer of this withdrawal waiting for the payee (not approved yet, or over)."""

    code = "transfer_not_confirmable"
    message = _(
        "This withdrawal has no transfer waiting for your confirmation: finance staff approve it first, "
        "and an unconfirmed transfer is cancelled after a while."
    )
    http_status = 409


class SandboxNotPayable(ApplicationError):
    """The sandbox cannot take this payment (no sandbox payment waiting, closed, or its hold ended)."""

    code = "payment_not_payable"
    message = _(
        "This order has no sandbox payment waiting to be paid. Place the order (or join) with "
        '"provider": "sandbox" first, and pay before its hold ends.'
    )
    http_status = 409


class PaymentProviderNotOffered(ApplicationError):
    """The member named a provider this deployment or community does not take."""

    code = "payment_provider_not_offered"
    message = _("This payment method is not available here. Choose another one, or leave it out.")
    http_status = 400


class NothingToPay(ApplicationError):
    code = "nothing_to_pay"
    message = _("This order is not waiting for a payment.")
    http_status = 409


class WechatPaySubMerchantMissing(ApplicationError):
    """Partner mode: the community names no WeChat Pay sub-merchant to receive its takings."""

    code = "wechatpay_sub_merchant_missing"
    message = _(
        "This community cannot take WeChat Pay yet: its owner must first set the community's "
        "WeChat Pay sub-merchant id (特约商户号). Choose another payment method, or try again later."
    )
    http_status = 409


class TicketAlreadyCheckedIn(ApplicationError):
    """A ticket checks in once: a second scan (or a second scanner) is told so."""

    code = "already_checked_in"
    message = _("This ticket was already checked in. Do not let it in a second time.")
    http_status = 409


class TicketRefunded(ApplicationError):
    """The seat of a refunded ticket was given back: the ticket no longer lets anyone in."""

    code = "ticket_refunded"
    message = _("This ticket was refunded and is no longer valid.")
    http_status = 409


class AmountBelowMinimum(ApplicationError):
    """The provider takes no payment this small (Stripe: 0.50 USD or its equivalent)."""

    code = "amount_below_minimum"
    message = _("This amount is below the smallest payment this payment method accepts.")
    http_status = 400


class WithdrawalBelowMinimum(ApplicationError):
    code = "amount_below_minimum"
    message = _("This amount is below the smallest withdrawal.")
    http_status = 400


class RealNameRequired(ApplicationError):
    """WeChat Pay needs the payee's real name for transfers from 2,000 yuan."""

    code = "validation_error"
    message = _("From 2,000 yuan WeChat Pay needs your real name: send it as real_name.")
    http_status = 400

    def __init__(self):
        super().__init__(fields={"real_name": [str(self.message)]})


class InsufficientBalance(ApplicationError):
    code = "insufficient_balance"
    message = _("Your available commission is less than this amount.")
    http_status = 409


class NegativeBalance(ApplicationError):
    code = "negative_balance"
    message = _(
        "A refund took back commission you were already paid, so withdrawals wait until new "
        "settled commission covers it."
    )
    http_status = 409


class AfterSaleWindowClosed(ApplicationError):
    code = "after_sale_window_closed"
    message = _(
        "After-sale requests for this order closed %(days)d days after delivery. "
        "Contact the community's owner."
    )
    http_status = 409

    def __init__(self, *, days: int):
        super().__init__(self.message % {"days": days})


class AfterSaleNotAllowed(ApplicationError):
    """Only paid goods orders take after-sale requests (tickets and entry fees have their own refunds)."""

    code = "after_sale_not_allowed"
    message = _("This order takes no after-sale requests: only paid goods orders do.")
    http_status = 409


class ReturnAddressMissing(ApplicationError):
    code = "return_address_missing"
    message = _(
        "Set the community's return address first (community settings, Referral and points): "
        "members need it to send goods back."
    )
    http_status = 409


class WithdrawalNotReviewable(ApplicationError):
    code = "withdrawal_not_reviewable"
    message = _("This withdrawal was already decided or sent to WeChat Pay. Reload the list.")
    http_status = 409


class ReturnNotShipped(ApplicationError):
    code = "return_not_shipped"
    message = _("The member has not posted the return's tracking number yet: wait for the goods to be sent.")
    http_status = 409


class CouponNotApplicable(ApplicationError):
    """The coupon cannot pay for this order: another kind, under its minimum spend, or not valid now."""

    code = "coupon_not_applicable"
    message = _("This coupon cannot be used on this order. Choose another coupon or leave it out.")
    http_status = 400

    def __init__(self, reason: str):
        super().__init__(fields={"coupon": [reason]})


class CouponUnavailable(ApplicationError):
    """The member's coupon is held by another order, used, or revoked (or not theirs: then 404)."""

    code = "coupon_unavailable"
    message = _(
        "This coupon is already used or held by another unpaid order. "
        "Cancel that order or choose another coupon."
    )
    http_status = 409


class CouponSoldOut(ApplicationError):
    code = "coupon_sold_out"
    message = _("All of these coupons have been given out.")
    http_status = 409


class CouponLimitReached(ApplicationError):
    code = "coupon_limit_reached"
    message = _("You already hold as many of these coupons as one member may.")
    http_status = 409


class InvalidCouponCode(ApplicationError):
    code = "invalid_coupon_code"
    message = _("No coupon with this code can be claimed in this community. Check the code.")
    http_status = 400
