"""Community health: is the community alive, does its selling build trust, how far has it grown?

One selector, ``community_health``, serves the admin dashboard and the owner
API; ``community_health_series`` gives the weekly figures the dashboard
charts. Both read members' memberships, commerce's orders and trust's own
activity records in a constant number of queries, whatever the community's
size. Callers check that the user may see the community (``managed_community``
in the API, the scoped community admin in the admin).

Definitions (all windows end at ``now``; days are Asia/Shanghai calendar days):

* **active members**: memberships that are active and not past their expiry.
* **new / churned in 30 days**: memberships (other than the owner's own)
  that joined in the last 30 days / that left, were banned or expired in them.
* **activity**: a member is active on a day when they used the community's
  API or paid an order there (``ActivityDay``). DAU is the average number of
  active members per day over the last 30 days, MAU the members active at
  least once in them, and DAU/MAU the share of the month a member shows up
  ("stickiness", as Discourse and other community software report it).
* **paying conversion**: active members who paid for goods or event tickets
  in the last 30 days, over active members.
* **repurchase rate**: buyers of goods or tickets in the last 90 days who
  paid for two or more orders in them, over all those buyers.
* **referral share** (多中心 strength): members who joined in the last 90 days
  through a referral by someone other than the owner, over all who joined.
* **top KOLs**: members (the owner aside) ranked by the members they brought
  in, then by the net sales of orders they referred.

The lifecycle stage rule and the churn alarm rule are in ``lifecycle_stage``
and ``churn_alarm``; the README repeats them for owners.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import models
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models import Order
from members.models import Community, Membership
from shequn_backend.calendar import business_day, business_zone, day_bounds
from trust.models import ActivityDay

MONTH_DAYS = 30
QUARTER_DAYS = 90
SERIES_WEEKS = 12
TOP_KOLS = 5
CENT = Decimal("0.01")
MONEY_ZERO = Decimal("0.00")

# Churn alarm: an average WeChat group dies in about 36 days (the source material).
GROUP_LIFESPAN_DAYS = 36
ALARM_DECLINE_WEEKS = 3
TREND_WEEKS = 5

# Lifecycle stage thresholds (see ``lifecycle_stage``).
STAGE_MIN_MEMBERS = 20
TRUST_MIN_CONVERSION = 0.10
TRUST_MIN_REPURCHASE = 0.20
DECENTRAL_MIN_REFERRAL_SHARE = 0.30
DECENTRAL_MIN_REFERRERS = 3
DECENTRAL_MAX_TOP_REFERRER_SHARE = 0.50
SELF_GROWING_MIN_REFERRAL_SHARE = 0.50
SELF_GROWING_MIN_DAU_MAU = 0.20

PAID_STATUSES = Order.PAID_STATUSES
SALES_KINDS = (Order.Kind.GOODS, Order.Kind.EVENT)


class LifecycleStage(models.TextChoices):
    INITIALISING = "initialising", _("Initialisation")
    TRUST_ESTABLISHED = "trust_established", _("Trust and value established")
    DECENTRALISING = "decentralising", _("Decentralisation")
    SELF_GROWING = "self_growing", _("Self-growth")


@dataclass(frozen=True)
class ChurnAlarm:
    alarm: bool
    weekly_active: tuple[int, ...]  # oldest first; the last is the 7 days ending today
    declining_weeks: int
    days_to_zero: int | None  # where the trend of weekly actives reaches zero; None if not falling


@dataclass(frozen=True)
class KolFigures:
    membership_id: int
    nickname: str
    role: str
    members_brought: int
    sales_brought: Decimal


@dataclass(frozen=True)
class CommunityHealth:
    active_members: int
    new_30d: int
    churned_30d: int
    dau: float
    mau: int
    dau_mau: float
    orders_30d: int
    revenue_30d: Decimal
    buyers_30d: int
    conversion_rate: float
    repurchase_rate: float
    referral_share: float
    referrers_90d: int
    top_referrer_share: float
    top_kols: tuple[KolFigures, ...]
    churn: ChurnAlarm
    lifecycle_stage: LifecycleStage
    as_of: datetime
    currency: str = "CNY"


@dataclass(frozen=True)
class HealthSeries:
    """Weekly figures, oldest first; each week is the 7 days ending on ``week_ends[i]``."""

    week_ends: list[date] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    weekly_active: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    revenue: list[Decimal] = field(default_factory=list)
    repurchase: list[float] = field(default_factory=list)


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _week_ends(today: date, weeks: int) -> list[date]:
    return [today - timedelta(days=7 * k) for k in range(weeks - 1, -1, -1)]


def churn_alarm(*, weekly_active: Sequence[int]) -> ChurnAlarm:
    """Sound the alarm when activity decays the way a dying group's does.

    ``weekly_active`` counts the members active in each rolling 7-day window,
    oldest first. The alarm sounds when both hold:

    1. weekly actives fell for ``ALARM_DECLINE_WEEKS`` (3) weeks in a row
       (each window below the one before; a window still at zero after a
       fall continues the fall), and
    2. the least-squares trend of the last ``TREND_WEEKS`` (5) windows
       reaches zero within ``GROUP_LIFESPAN_DAYS`` (36) days: the lifetime
       of an average WeChat group, the fate a community must escape.

    A dip that recovers, or a slow decline that would take months to reach
    zero, raises no alarm; a community with no activity yet raises none.
    """
    values = list(weekly_active)
    declining = 0
    for index in range(len(values) - 1, 0, -1):
        current, previous = values[index], values[index - 1]
        fell = current < previous
        stays_dead = current == previous == 0 and any(values[:index])
        if not (fell or stays_dead):
            break
        declining += 1

    days_to_zero = _days_to_zero(values[-TREND_WEEKS:])
    alarm = (
        declining >= ALARM_DECLINE_WEEKS and days_to_zero is not None and days_to_zero <= GROUP_LIFESPAN_DAYS
    )
    return ChurnAlarm(
        alarm=alarm, weekly_active=tuple(values), declining_weeks=declining, days_to_zero=days_to_zero
    )


def _days_to_zero(points: Sequence[int]) -> int | None:
    """Days until the least-squares line through weekly ``points`` reaches zero; None if not falling."""
    if len(points) < 2:
        return None
    if points[-1] == 0 and any(points):
        return 0
    n = len(points)
    mean_x, mean_y = (n - 1) / 2, sum(points) / n
    spread = sum((x - mean_x) ** 2 for x in range(n))
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(points)) / spread
    if slope >= 0:
        return None
    fitted_now = max(mean_y + slope * (n - 1 - mean_x), 0.0)
    return round(fitted_now / -slope * 7)


def lifecycle_stage(
    *,
    active_members: int,
    conversion_rate: float,
    repurchase_rate: float,
    referral_share: float,
    referrers: int,
    top_referrer_share: float,
    new_30d: int,
    churned_30d: int,
    dau_mau: float,
    alarm: bool,
) -> LifecycleStage:
    """Place the community on the path 初始化 → 信任与价值确立 → 去中心化 → 自生长.

    Each stage needs the one before it:

    * **初始化 (initialisation)**: where every community starts, until the next
      test passes.
    * **信任与价值确立 (trust and value established)**: at least 20 active
      members, at least 10% of them paying in the last 30 days, and at least
      20% of buyers buying again within 90 days. Without repurchase it is
      traffic, not community commerce.
    * **去中心化 (decentralisation)**: also, at least 30% of the last 90 days'
      new members came through members other than the owner, from at least 3
      different referrers, none of whom brought more than half of them: the
      community has more than one centre and would survive one KOL leaving.
    * **自生长 (self-growth)**: also, at least half of new members came through
      members, more joined than left in the last 30 days, DAU/MAU is at least
      0.2, and no churn alarm: the community grows by itself.

    A community under a churn alarm is placed no higher than 信任与价值确立:
    its centres are fading, whatever its referral history says.
    """
    trust_established = (
        active_members >= STAGE_MIN_MEMBERS
        and conversion_rate >= TRUST_MIN_CONVERSION
        and repurchase_rate >= TRUST_MIN_REPURCHASE
    )
    if not trust_established:
        return LifecycleStage.INITIALISING
    decentralised = (
        referral_share >= DECENTRAL_MIN_REFERRAL_SHARE
        and referrers >= DECENTRAL_MIN_REFERRERS
        and top_referrer_share <= DECENTRAL_MAX_TOP_REFERRER_SHARE
    )
    if alarm or not decentralised:
        return LifecycleStage.TRUST_ESTABLISHED
    self_growing = (
        referral_share >= SELF_GROWING_MIN_REFERRAL_SHARE
        and new_30d > churned_30d
        and dau_mau >= SELF_GROWING_MIN_DAU_MAU
    )
    return LifecycleStage.SELF_GROWING if self_growing else LifecycleStage.DECENTRALISING


def _active_q(now: datetime, prefix: str = "") -> Q:
    return Q(**{f"{prefix}status": Membership.Status.ACTIVE}) & (
        Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now})
    )


def _exited_between_q(start: datetime | None, end: datetime) -> Q:
    """Memberships that stopped being active in (start, end]: a recorded exit, or a lapsed expiry."""
    recorded = Q(exit__exited_at__lte=end)
    lapsed = Q(
        exit__isnull=True,
        status__in=[Membership.Status.ACTIVE, Membership.Status.EXPIRED],
        expires_at__lte=end,
    )
    if start is not None:
        recorded &= Q(exit__exited_at__gt=start)
        lapsed &= Q(expires_at__gt=start)
    return recorded | lapsed


def _membership_figures(*, community: Community, now: datetime) -> dict:
    start = now - timedelta(days=MONTH_DAYS)
    not_owner = ~Q(user_id=community.owner_id)
    return Membership.objects.filter(community=community).aggregate(
        active=Count("id", filter=_active_q(now)),
        new_30d=Count("id", filter=not_owner & Q(joined_at__gt=start, joined_at__lte=now)),
        churned_30d=Count(
            "id", filter=not_owner & Q(joined_at__isnull=False) & _exited_between_q(start, now)
        ),
    )


def _activity_by_week(*, community: Community, today: date, weeks: int) -> tuple[list[int], int, int]:
    """Weekly active members (oldest first), active-member-days and MAU over the last 30 days."""
    month_start = today - timedelta(days=MONTH_DAYS - 1)
    first = min(today - timedelta(days=7 * weeks - 1), month_start)
    windows = {
        f"w{k}": Count("user", distinct=True, filter=Q(day__gte=end - timedelta(days=6), day__lte=end))
        for k, end in enumerate(_week_ends(today, weeks))
    }
    figures = ActivityDay.objects.filter(community=community, day__gte=first, day__lte=today).aggregate(
        member_days=Count("id", filter=Q(day__gte=month_start)),
        mau=Count("user", distinct=True, filter=Q(day__gte=month_start)),
        **windows,
    )
    return [figures[f"w{k}"] for k in range(weeks)], figures["member_days"], figures["mau"]


def _paid_orders(*, community: Community):
    return Order.objects.filter(community=community, status__in=PAID_STATUSES, paid_at__isnull=False)


def _order_figures(*, community: Community, now: datetime, active_member_count: int) -> dict:
    paid = _paid_orders(community=community)
    month = paid.filter(paid_at__gt=now - timedelta(days=MONTH_DAYS), paid_at__lte=now)
    totals = month.aggregate(
        orders=Count("id"),
        revenue=Coalesce(Sum(F("amount_paid") - F("amount_refunded")), MONEY_ZERO),
        buyers=Count(
            "buyer",
            distinct=True,
            filter=Q(kind__in=SALES_KINDS)
            & Exists(Membership.objects.filter(_active_q(now), community=community, user=OuterRef("buyer"))),
        ),
    )
    quarter = paid.filter(
        kind__in=SALES_KINDS, paid_at__gt=now - timedelta(days=QUARTER_DAYS), paid_at__lte=now
    )
    buyers = quarter.values("buyer").distinct().count()
    repeaters = quarter.values("buyer").annotate(n=Count("id")).filter(n__gte=2).count()
    return {
        "orders_30d": totals["orders"],
        "revenue_30d": Decimal(totals["revenue"]).quantize(CENT),
        "buyers_30d": totals["buyers"],
        "conversion_rate": _ratio(totals["buyers"], active_member_count),
        "repurchase_rate": _ratio(repeaters, buyers),
    }


def _referral_figures(*, community: Community, now: datetime) -> dict:
    joined = Membership.objects.filter(
        community=community, joined_at__gt=now - timedelta(days=QUARTER_DAYS), joined_at__lte=now
    ).exclude(user_id=community.owner_id)
    total = joined.count()
    per_referrer = list(
        joined.filter(referred_by__isnull=False)
        .exclude(referred_by__user_id=community.owner_id)
        .values("referred_by")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("n", flat=True)
    )
    referred = sum(per_referrer)
    return {
        "referral_share": _ratio(referred, total),
        "referrers_90d": len(per_referrer),
        "top_referrer_share": _ratio(per_referrer[0], referred) if per_referrer else 0.0,
    }


def top_kols(*, community: Community, limit: int = TOP_KOLS) -> list[KolFigures]:
    """Members (the owner aside) who brought the most members, then the most net sales."""
    brought = (
        Membership.objects.filter(referred_by=OuterRef("pk"))
        .order_by()
        .values("referred_by")
        .annotate(n=Count("id"))
        .values("n")
    )
    sales = (
        Order.objects.filter(referrer=OuterRef("pk"), status__in=PAID_STATUSES)
        .order_by()
        .values("referrer")
        .annotate(total=Sum(F("amount_paid") - F("amount_refunded")))
        .values("total")
    )
    rows = (
        Membership.objects.filter(community=community)
        .exclude(user_id=community.owner_id)
        .annotate(
            members_brought=Coalesce(Subquery(brought), 0),
            sales_brought=Coalesce(Subquery(sales), MONEY_ZERO),
        )
        .filter(Q(members_brought__gt=0) | Q(sales_brought__gt=0))
        .select_related("user")
        .order_by("-members_brought", "-sales_brought", "pk")[:limit]
    )
    return [
        KolFigures(
            membership_id=row.pk,
            nickname=row.user.nickname or row.user.username,
            role=row.role,
            members_brought=row.members_brought,
            sales_brought=Decimal(row.sales_brought).quantize(CENT),
        )
        for row in rows
    ]


def community_health(*, community: Community, now: datetime | None = None) -> CommunityHealth:
    """Every health figure of ``community`` as of ``now`` (default: the current time)."""
    now = now or timezone.now()
    today = business_day(now)
    members = _membership_figures(community=community, now=now)
    weekly_active, member_days, mau = _activity_by_week(
        community=community, today=today, weeks=max(TREND_WEEKS, ALARM_DECLINE_WEEKS + 1)
    )
    dau = round(member_days / MONTH_DAYS, 2)
    dau_mau = _ratio(member_days / MONTH_DAYS, mau)
    orders = _order_figures(community=community, now=now, active_member_count=members["active"])
    referrals = _referral_figures(community=community, now=now)
    churn = churn_alarm(weekly_active=weekly_active)
    stage = lifecycle_stage(
        active_members=members["active"],
        conversion_rate=orders["conversion_rate"],
        repurchase_rate=orders["repurchase_rate"],
        referral_share=referrals["referral_share"],
        referrers=referrals["referrers_90d"],
        top_referrer_share=referrals["top_referrer_share"],
        new_30d=members["new_30d"],
        churned_30d=members["churned_30d"],
        dau_mau=dau_mau,
        alarm=churn.alarm,
    )
    return CommunityHealth(
        active_members=members["active"],
        new_30d=members["new_30d"],
        churned_30d=members["churned_30d"],
        dau=dau,
        mau=mau,
        dau_mau=dau_mau,
        top_kols=tuple(top_kols(community=community)),
        churn=churn,
        lifecycle_stage=stage,
        as_of=now,
        **orders,
        **referrals,
    )


def community_health_series(
    *, community: Community, now: datetime | None = None, weeks: int = SERIES_WEEKS
) -> HealthSeries:
    """Weekly members, weekly actives, orders, revenue and repurchase for the dashboard's charts.

    Members is the count active at each week's end (joined by then, not yet
    exited); repurchase is the share of the week's buyers of goods or tickets
    who had bought before.
    """
    now = now or timezone.now()
    today = business_day(now)
    ends = _week_ends(today, weeks)
    cutoffs = [min(day_bounds(end)[1], now) for end in ends]

    joined = Q(joined_at__isnull=False)
    member_counts = Membership.objects.filter(community=community).aggregate(
        **{f"in{k}": Count("id", filter=joined & Q(joined_at__lte=cut)) for k, cut in enumerate(cutoffs)},
        **{
            f"out{k}": Count("id", filter=joined & Q(joined_at__lte=cut) & _exited_between_q(None, cut))
            for k, cut in enumerate(cutoffs)
        },
    )
    weekly_active, _, _ = _activity_by_week(community=community, today=today, weeks=weeks)

    first_day = ends[0] - timedelta(days=6)
    zone = business_zone()
    paid = _paid_orders(community=community).filter(paid_at__gte=day_bounds(first_day)[0], paid_at__lte=now)
    per_day = (
        paid.annotate(day=TruncDate("paid_at", tzinfo=zone))
        .values("day")
        .annotate(n=Count("id"), revenue=Sum(F("amount_paid") - F("amount_refunded")))
        .order_by("day")
    )
    earlier = _paid_orders(community=community).filter(
        kind__in=SALES_KINDS, buyer=OuterRef("buyer"), paid_at__lt=OuterRef("paid_at")
    )
    buyer_days = (
        paid.filter(kind__in=SALES_KINDS)
        .annotate(day=TruncDate("paid_at", tzinfo=zone), repeat=Exists(earlier))
        .values_list("day", "buyer", "repeat")
        .distinct()
    )

    def week_of(day: date) -> int:
        return weeks - 1 - (today - day).days // 7

    orders, revenue = [0] * weeks, [MONEY_ZERO] * weeks
    for row in per_day:
        index = week_of(row["day"])
        orders[index] += row["n"]
        revenue[index] += row["revenue"] or MONEY_ZERO
    buyers: list[set[int]] = [set() for _ in range(weeks)]
    repeaters: list[set[int]] = [set() for _ in range(weeks)]
    for day, buyer, repeat in buyer_days:
        index = week_of(day)
        buyers[index].add(buyer)
        if repeat:
            repeaters[index].add(buyer)

    return HealthSeries(
        week_ends=ends,
        members=[member_counts[f"in{k}"] - member_counts[f"out{k}"] for k in range(weeks)],
        weekly_active=weekly_active,
        orders=orders,
        revenue=[Decimal(value).quantize(CENT) for value in revenue],
        repurchase=[_ratio(len(repeaters[k]), len(buyers[k])) for k in range(weeks)],
    )
