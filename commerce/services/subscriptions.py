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


def consents_spend(*, wanted: list[tuple[Notification, str]]) -> set[int]:
    """Spend one of the member's consents on each notification for its template id; returns the
    ids of the notifications that hold one (spent now, or on an earlier try).

    The ledger rows are locked (in one order: no deadlock between senders)
    while they are read and lowered, in the transaction that marks the
    notifications: each consent is spent once, whatever other senders do, and
    a notification sent again (a retry, a lapsed lease) does not spend another.
    """
    from commerce.services.notifications import add_by_id  # it imports the models this module does

    granted = {notification.pk for notification, _template in wanted if notification.consent_spent}
    needing = [(n, template) for n, template in wanted if n.pk not in granted]
    if not needing:
        return granted
    fresh: dict[str, list[Notification]] = {}
    with transaction.atomic():
        ledger = {
            (user_id, template): (pk, remaining)
            for pk, user_id, template, remaining in SubscriptionConsent.objects.select_for_update()
            .filter(
                user_id__in={n.user_id for n, _t in needing},
                template_id__in={template for _n, template in needing},
                remaining__gt=0,
            )
            .order_by("pk")
            .values_list("pk", "user_id", "template_id", "remaining")
        }
        spent: dict[int, int] = {}
        for notification, template in sorted(needing, key=lambda pair: pair[0].pk):
            pk, remaining = ledger.get((notification.user_id, template), (None, 0))
            if pk is None or spent.get(pk, 0) >= remaining:
                continue
            spent[pk] = spent.get(pk, 0) + 1
            granted.add(notification.pk)
            fresh.setdefault(template, []).append(notification)
        add_by_id(SubscriptionConsent, "remaining", {pk: -count for pk, count in spent.items()})
        for template, notifications in fresh.items():
            Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(
                consent_spent=True, template_id=template
            )
    for notifications in fresh.values():
        for notification in notifications:
            notification.consent_spent = True
    return granted
