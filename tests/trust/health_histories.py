"""Seeded community histories for the health figures: a dying group and a multi-centred community.

Histories are built from the same rows the live system writes (memberships,
paid orders, activity days), dated relative to ``now``, and announce what
happened with the apps' own events, committed, so trust hears them as it
would live (a paid order marks its buyer active, an exit is recorded).
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from commerce.events import order_paid_announce
from commerce.models import Order
from members.events import membership_status_announce
from members.models import Community, Membership
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.trust.builders import committed
from trust.models import ActivityDay, MembershipExit


def join(community: Community, *, days_ago: float, now: datetime, **fields) -> Membership:
    return MembershipFactory(community=community, joined_at=now - timedelta(days=days_ago), **fields)


def paid_order(
    community: Community,
    membership: Membership,
    *,
    days_ago: float,
    now: datetime,
    amount: str = "99.00",
    kind: str = Order.Kind.GOODS,
    referrer: Membership | None = None,
) -> Order:
    money = Decimal(amount)
    with committed():
        order = Order.objects.create(
            community=community,
            buyer=membership.user,
            kind=kind,
            status=Order.Status.PAID,
            payment_status=Order.PaymentStatus.PAID,
            total=money,
            amount_paid=money,
            paid_at=now - timedelta(days=days_ago),
            referrer=referrer,
        )
        order_paid_announce(order=order)
    return order


def active_on(community: Community, membership: Membership, days_ago: list[int], *, now: datetime) -> None:
    today = timezone.localdate(now)
    ActivityDay.objects.bulk_create(
        [
            ActivityDay(community=community, user=membership.user, day=today - timedelta(days=d))
            for d in days_ago
        ],
        ignore_conflicts=True,
    )


def change_status(membership: Membership, status: str) -> None:
    with committed():
        old_status = membership.status
        membership.status = status
        membership.save(update_fields=["status"])
        membership_status_announce(membership=membership, old_status=old_status)


def leave(membership: Membership, *, days_ago: float, now: datetime) -> None:
    change_status(membership, Membership.Status.LEFT)
    MembershipExit.objects.filter(membership=membership).update(exited_at=now - timedelta(days=days_ago))


# Weekly active members of the dying group, newest week first: a flat month, then five weeks of decay.
DYING_WEEKLY_ACTIVE = [1, 4, 9, 16, 25, 28, 28, 28, 28, 28, 28, 28]


def dying_community(*, now: datetime) -> Community:
    """30 members who joined two to three months ago; activity decays over five weeks; few sales."""
    community = CommunityFactory(name="临时拼团群", attributes=["团购"])
    members = [join(community, days_ago=60 + i, now=now) for i in range(30)]
    for week, count in enumerate(DYING_WEEKLY_ACTIVE):
        for member in members[:count]:
            active_on(community, member, [7 * week + 2], now=now)
    for member in members[25:28]:
        leave(member, days_ago=5, now=now)
    for member in members[:3]:
        paid_order(community, member, days_ago=50, now=now)
    return community


def multi_centred_community(*, now: datetime) -> tuple[Community, list[Membership]]:
    """Ten KOLs each bring three members (plus ten who came alone); members buy and buy again."""
    community = CommunityFactory(name="跑步读书会", attributes=["跑步", "读书"])
    owner_membership = Membership.objects.get(community=community, user=community.owner)
    kols = [
        join(community, days_ago=120, now=now, role=Membership.Role.KOL, referred_by=owner_membership)
        for _ in range(10)
    ]
    members = []
    for index, kol in enumerate(kols):
        for offset in range(3):
            members.append(join(community, days_ago=5 + index * 3 + offset * 20, now=now, referred_by=kol))
    members += [join(community, days_ago=10 + 7 * i, now=now) for i in range(10)]
    for member in members[-2:]:
        leave(member, days_ago=3, now=now)

    everyone = kols + members[:-2]
    for index, member in enumerate(everyone):
        joined_days_ago = (now - member.joined_at).days
        active_on(community, member, list(range(index % 2, min(84, joined_days_ago), 2)), now=now)
    for index, buyer in enumerate(everyone[:15]):
        paid_order(community, buyer, days_ago=4, now=now, amount="128.00", referrer=kols[index % 10])
        if index < 8:
            paid_order(community, buyer, days_ago=40, now=now, amount="128.00")
    return community, kols
