"""The ledger of one-time subscription consents (一次性订阅) per member and template.

The mini-program reports what the member chose in ``wx.requestSubscribeMessage``:
each ``accept`` is one more message allowed, ``ban`` (the member turned the
template off for good) leaves none, ``reject`` and ``filter`` change nothing.
Every message sent spends one consent (``consent_spend``).
"""

from django.conf import settings
from django.db import transaction
from django.db.models import F

from commerce.models import Notification, SubscriptionConsent
from members.models import User
from shequn_backend.audit import Actor, audit_record

ACCEPT, REJECT, BAN, FILTER = "accept", "reject", "ban", "filter"
RESULTS = (ACCEPT, REJECT, BAN, FILTER)


def subscription_templates() -> dict[str, str]:
    """The configured template id of each notification kind (kinds without one are left out)."""
    configured = {
        Notification.Kind.REPURCHASE: settings.WECHAT_TEMPLATE_REPURCHASE,
        Notification.Kind.RENEWAL: settings.WECHAT_TEMPLATE_RENEWAL,
        Notification.Kind.SHIPPED: settings.WECHAT_TEMPLATE_SHIPPED,
        Notification.Kind.PAYOUT: settings.WECHAT_TEMPLATE_PAYOUT,
    }
    return {str(kind): template for kind, template in configured.items() if template}


def subscription_consents_for_user(*, user: User) -> dict[str, int]:
    """``{template id: unused consents}`` for every configured template (0 when none)."""
    templates = sorted(set(subscription_templates().values()))
    held = dict(
        SubscriptionConsent.objects.filter(user=user, template_id__in=templates).values_list(
            "template_id", "remaining"
        )
    )
    return {template: held.get(template, 0) for template in templates}


def subscription_results_record(*, actor: Actor, user: User, results: dict[str, str]) -> dict[str, int]:
    """Apply the member's choices per template id (ids already checked to be configured).

    One transaction; an accept adds one consent atomically (concurrent reports
    and sends never lose one). Returns the ledger as ``subscription_consents_for_user``.
    """
    with transaction.atomic():
        for template_id, result in sorted(results.items()):
            if result == ACCEPT:
                SubscriptionConsent.objects.get_or_create(user=user, template_id=template_id)
                SubscriptionConsent.objects.filter(user=user, template_id=template_id).update(
                    remaining=F("remaining") + 1
                )
            elif result == BAN:
                SubscriptionConsent.objects.filter(user=user, template_id=template_id).update(remaining=0)
        changed = {key: value for key, value in results.items() if value in (ACCEPT, BAN)}
        if changed:
            audit_record(
                actor=actor, action="subscription.recorded", target=user, changes={"results": changed}
            )
    return subscription_consents_for_user(user=user)


def consent_spend(*, notification: Notification, template_id: str) -> bool:
    """Spend one of the member's consents on ``notification``; False when there is none.

    A conditional UPDATE (never below zero) and the notification's mark commit
    together: each consent is spent once, whatever other senders do, and a
    notification sent again (a retry, a lapsed lease) does not spend another.
    """
    if notification.consent_spent:
        return True
    with transaction.atomic():
        spent = SubscriptionConsent.objects.filter(
            user_id=notification.user_id, template_id=template_id, remaining__gt=0
        ).update(remaining=F("remaining") - 1)
        if spent:
            Notification.objects.filter(pk=notification.pk).update(
                consent_spent=True, template_id=template_id
            )
    notification.consent_spent = bool(spent)
    return bool(spent)
