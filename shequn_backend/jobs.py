"""The registry of scheduled jobs, by the names ``run_jobs`` and the README use.

The project package may import every app (commerce must not import trust), so
the jobs that cross apps are wired here. Each job is ``f(now) -> int``: it
judges by ``now`` and returns how many things it changed.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Job:
    run: Callable[[datetime], int]
    did: str  # what the count means, e.g. "commissions settled"


def _release_stock_holds(now: datetime) -> int:
    from commerce.services.orders import order_release_expired

    return order_release_expired(now=now)


def _settle_commissions(now: datetime) -> int:
    from commerce.services.commissions import commission_settle_due

    return commission_settle_due(now=now)


def _expire_memberships(now: datetime) -> int:
    from members.services.expiry import membership_expire_due

    return membership_expire_due(now=now)


def _renewal_reminders(now: datetime) -> int:
    from commerce.services.renewals import renewal_reminders_create

    return renewal_reminders_create(now=now)


def _repurchase_reminders(now: datetime) -> int:
    from commerce.services.repurchase import repurchase_reminders_create

    return repurchase_reminders_create(now=now)


def _repurchase_rates(now: datetime) -> int:
    from commerce.services.repurchase import repurchase_rates_refresh

    return repurchase_rates_refresh(now=now)


def _rescore_fit(now: datetime) -> int:
    """Mark every community stale and re-score them here, in-process (the beat fans out to workers)."""
    from trust import services

    services.communities_mark_all_stale(now=now)
    scored = 0
    while ids := services.stale_community_ids(now=now):
        for community_id in ids:
            scored += services.community_rescore(community_id=community_id)
    return scored


def _send_notifications(now: datetime) -> int:
    from commerce.services.notifications import notification_send_due

    return notification_send_due(now=now)


# In the order a full run takes them: expiries before reminders, reminders before sending.
JOBS: dict[str, Job] = {
    "release_stock_holds": Job(_release_stock_holds, "orders cancelled, stock released"),
    "settle_commissions": Job(_settle_commissions, "commissions settled"),
    "expire_memberships": Job(_expire_memberships, "memberships expired"),
    "renewal_reminders": Job(_renewal_reminders, "renewal reminders created"),
    "repurchase_reminders": Job(_repurchase_reminders, "repurchase reminders created"),
    "repurchase_rates": Job(_repurchase_rates, "repurchase rates stored"),
    "rescore_fit": Job(_rescore_fit, "products re-scored"),
    "send_notifications": Job(_send_notifications, "notifications sent"),
}
