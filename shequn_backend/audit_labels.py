"""The audit trail in owners' words: action codes and changed fields as labels, choices as their names.

The trail stores codes (``order.refund_requested``, ``{"status": ["paid", "refunded"]}``);
pages show them through these helpers, in the active language.
"""

import json
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

ACTION_LABELS = {
    "order.created": _("Order placed"),
    "order.paid": _("Order paid"),
    "order.cancelled": _("Order cancelled"),
    "order.fulfilled": _("Order fulfilled"),
    "order.completed": _("Order completed"),
    "order.refunded": _("Order refunded"),
    "order.partially_refunded": _("Order partly refunded"),
    "order.flagged_for_review": _("Order flagged for review"),
    "order.refund_requested": _("Refund requested"),
    "order.refunds_settled": _("Refunds settled (points, seats, membership)"),
    "refund.retried": _("Refund sent again"),
    "refund.failed": _("Refund refused by the provider"),
    "refund.unanswered": _("Refund not answered by the provider yet"),
    "refund.confirmed": _("Refund confirmed"),
    "refund.pending": _("Refund waiting for the provider"),
    "refund.succeeded": _("Refund confirmed"),
    "refund.canceled": _("Refund cancelled by the provider"),
    "payment.offline_recorded": _("Offline payment recorded"),
    "payment.failed": _("Payment failed"),
    "points.awarded": _("Points awarded"),
    "commission.created": _("Commission created"),
    "commission.settled": _("Commission settled"),
    "commission.reversed": _("Commission reversed"),
    "commission.payout_recorded": _("Commission payout recorded"),
    "withdrawal.requested": _("Withdrawal requested"),
    "withdrawal.approved": _("Withdrawal approved"),
    "withdrawal.rejected": _("Withdrawal rejected"),
    "withdrawal.transfer_started": _("Withdrawal transfer started"),
    "withdrawal.transferring": _("Withdrawal transfer in progress"),
    "withdrawal.awaiting_confirmation": _("Withdrawal awaiting the member's confirmation"),
    "withdrawal.paid": _("Withdrawal paid"),
    "withdrawal.failed": _("Withdrawal transfer failed"),
    "withdrawal.cancelled": _("Withdrawal transfer cancelled"),
    "community.commission_rates_changed": _("Commission rates changed"),
    "user.phone_verified": _("Phone number shared from WeChat"),
    "membership.joined": _("Member joined"),
    "membership.approved": _("Membership approved"),
    "membership.tier_changed": _("Tier changed"),
    "membership.role_changed": _("Role changed"),
    "membership.banned": _("Member banned"),
    "membership.unbanned": _("Member unbanned"),
    "membership.left": _("Member left"),
    "membership.referrer_changed": _("Referrer changed"),
    "membership.expiry_changed": _("Expiry changed"),
    "membership.expired": _("Membership expired"),
    "membership.ended_paid": _("Paid membership ended"),
    "membership.activated_paid": _("Paid membership started"),
    "membership.renewed": _("Membership renewed"),
    "membership.owner_ensured": _("Owner's membership ensured"),
    "community.created": _("Community created"),
    "community.updated": _("Community settings changed"),
    "community.attributes_changed": _("Community attributes changed"),
    "entry_plan.created": _("Entry plan created"),
    "entry_plan.updated": _("Entry plan changed"),
    "tier.created": _("Tier created"),
    "tier.updated": _("Tier changed"),
    "tier.deleted": _("Tier deleted"),
    "invite_code.created": _("Invite code created"),
    "invite_code.updated": _("Invite code changed"),
    "product.created": _("Product listed"),
    "product.updated": _("Product changed"),
    "sku.created": _("SKU added"),
    "sku.updated": _("SKU changed"),
    "sku.price_changed": _("SKU price changed"),
    "sku.stock_adjusted": _("Stock adjusted"),
    "category.created": _("Category created"),
    "category.updated": _("Category changed"),
    "content_post.created": _("Post published"),
    "content_post.changed": _("Post changed"),
    "content_post.deleted": _("Post deleted"),
    "reminder.created": _("Reminder created"),
    "coupon.created": _("Coupon created"),
    "coupon.changed": _("Coupon changed"),
    "coupon.given": _("Coupon given to a member"),
    "coupon.claimed": _("Coupon claimed with its code"),
    "coupon.reserved": _("Coupon reserved by an order"),
    "coupon.revoked": _("Coupon revoked"),
    "coupon.restored": _("Coupon given back after a refund"),
    "user.password_changed": _("Password changed"),
    "user.tokens_revoked": _("Sign-ins revoked"),
    "user.staff_granted": _("Admin access granted"),
    "user.nickname_changed": _("Nickname changed"),
    "user.interests_changed": _("Interests changed"),
}
# Keys that name no field of the target (facts the services add to a change).
JOB_LABELS = {
    "coupons": _("giving coupons"),
    "expire_memberships": _("ending expired memberships"),
    "release_stock_holds": _("releasing unpaid orders' stock"),
    "renewal_reminders": _("renewal reminders"),
    "repurchase_reminders": _("repurchase reminders"),
    "seed_demo": _("demo data"),
    "settle_commissions": _("settling commissions"),
}
KEY_LABELS = {
    "provider": _("provider"),
    "refund": _("refund"),
    "refund_amount": _("refund amount"),
    "points": _("points"),
}


def actor_text(label: str) -> str:
    """A system actor as a reader knows it: 系统, 定时任务 …, 支付通知 (stripe)."""
    kind, _sep, name = label.partition(":")
    if label == "system":
        return gettext("System")
    if kind == "job":
        return gettext("Scheduled job: %(name)s") % {"name": JOB_LABELS.get(name, name)}
    if kind == "provider":
        return gettext("Payment notification (%(name)s)") % {"name": _provider(name)}
    return label


def _provider(name: str) -> str:
    from commerce.payments.labels import provider_label  # the project's payment providers, by name

    return provider_label(name)


def action_label(code: str) -> str:
    """An action's name in the active language (its code when there is none)."""
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def target_type_label(target_type: str) -> str:
    """``commerce.order`` as its model's name (订单)."""
    try:
        return str(apps.get_model(target_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return target_type


def _field(target_type: str, key: str):
    """The target's own (concrete) field named ``key``; reverse relations and unknown keys give None."""
    try:
        field = apps.get_model(target_type)._meta.get_field(key)
    except (LookupError, ValueError, FieldDoesNotExist):
        return None
    return field if getattr(field, "concrete", False) else None


def _value(field, value: Any, key: str = "") -> str:
    if value is None or value == "":
        return "—"
    if key == "provider":
        return _provider(str(value))
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list):
        return "、".join(_value(field, item, key) for item in value) or "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    choices = dict(field.flatchoices) if field is not None and field.choices else {}
    return str(choices.get(value, value))


def changes_text(*, target_type: str, changes: dict) -> str:
    """``status: 已付款 → 已退款; 退款金额: — → 20.00``: field labels and choice names, not codes."""
    parts = []
    for key, change in (changes or {}).items():
        field = _field(target_type, key)
        label = field.verbose_name if field is not None and hasattr(field, "verbose_name") else None
        label = str(label or KEY_LABELS.get(key, key))
        if isinstance(change, list) and len(change) == 2:
            parts.append(f"{label}: {_value(field, change[0], key)} → {_value(field, change[1], key)}")
        else:
            parts.append(f"{label}: {_value(field, change, key)}")
    return "; ".join(parts)
