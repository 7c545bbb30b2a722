"""Reads on members' data, each named for whom it is scoped to."""

from functools import cache

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from members.models import Address, Community, EntryPlan, Membership, PointsEntry, Tier, User
from shequn_backend.sql import joined_columns, joined_instances, prepared_cursor


def user_get_with_profile(*, user_id: int) -> User:
    return User.objects.prefetch_related("interests").get(pk=user_id)


def active_membership_q(prefix: str = "") -> Q:
    """Active and not past its expiry: the test for member-only access."""
    now = timezone.now()
    return Q(**{f"{prefix}status": Membership.Status.ACTIVE}) & (
        Q(**{f"{prefix}expires_at__isnull": True}) | Q(**{f"{prefix}expires_at__gt": now})
    )


def active_membership_sql(alias: str, now: str = "%s") -> str:
    """``active_membership_q`` as SQL, for the membership table named ``alias`` in raw queries;
    ``now`` is the placeholder of the current time."""
    return (
        f"{alias}.status = '{Membership.Status.ACTIVE}'"
        f" AND ({alias}.expires_at IS NULL OR {alias}.expires_at > {now})"
    )


def _the_one(queryset: QuerySet):
    """The row of a lookup by a unique key, or None, without ``first``'s ORDER BY (costly to compile)."""
    return next(iter(queryset.order_by()[:1]), None)


def membership_get_active(*, user: User, community: Community) -> Membership | None:
    """The caller's active membership (with tier), or None: callers refuse member-only data on None."""
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.select_related("tier")
    return _the_one(memberships.filter(active_membership_q(), user=user, community=community))


def membership_get_active_by_slug(
    *, user: User, slug: str, annotations: dict | None = None
) -> Membership | None:
    """``membership_get_active`` for the community ``slug``, community and tier in the same query.

    ``annotations``: more values the caller reads along (set on the membership by name). Without
    them, on PostgreSQL, the query is SQL built once per process (checkout and the member pages
    run it on every request; the ORM would compile it each time).
    """
    if not user.is_authenticated:
        return None
    if not annotations and connection.vendor == "postgresql":
        return _active_by_slug_sql(user_id=user.pk, slug=slug)
    memberships = Membership.objects.select_related("tier", "community")
    if annotations:
        memberships = memberships.annotate(**annotations)
    return _the_one(memberships.filter(active_membership_q(), user=user, community__slug=slug))


_JOINED = (("m", Membership), ("c", Community), ("t", Tier))


@cache
def _active_by_slug_query() -> str:
    return (
        f"SELECT {joined_columns(_JOINED)} FROM {Membership._meta.db_table} m"  # noqa: S608 - names from the models
        f" JOIN {Community._meta.db_table} c ON c.id = m.community_id"
        f" LEFT JOIN {Tier._meta.db_table} t ON t.id = m.tier_id"
        f" WHERE m.user_id = %s AND c.slug = %s AND {active_membership_sql('m')} LIMIT 1"
    )


def _active_by_slug_sql(*, user_id: int, slug: str) -> Membership | None:
    """``membership_get_active_by_slug``'s row read with ``_active_by_slug_query``: the membership
    with its community and tier cached on it, as ``select_related`` leaves them."""
    with prepared_cursor() as cursor:
        cursor.execute(_active_by_slug_query(), [user_id, slug, timezone.now()])
        row = cursor.fetchone()
    if row is None:
        return None
    membership, community, tier = joined_instances(row, _JOINED)
    Membership.community.field.set_cached_value(membership, community)
    Membership.tier.field.set_cached_value(membership, tier)
    return membership


def community_list_public(*, search: str | None = None, attribute: str | None = None) -> QuerySet[Community]:
    """Communities for the mini-program's list: plans, attributes, member counts in constant queries.

    ``member_count`` is stored on the community (kept by the membership services), so neither the
    page nor the paginator's count reads a single membership, however many a community has.
    """
    queryset = Community.objects.order_by("-created_at", "-id").prefetch_related(
        "attributes",
        Prefetch("plans", queryset=EntryPlan.objects.filter(is_active=True), to_attr="active_plans"),
    )
    if search:
        queryset = queryset.filter(
            Q(name__icontains=search) | Q(mission__icontains=search) | Q(attributes__tag__icontains=search)
        ).distinct()
    if attribute:
        queryset = queryset.filter(attributes__tag__iexact=attribute).distinct()
    return queryset


# One page of the public list with the whole list's count, attributes and active plans as JSON (plan
# prices as text: "99.00"). ``{filters}``: ``AND id IN (<the filtered list>)`` when searching, or the
# detail's slug; ``{detail}``: the detail's description and rules after the list's columns.
_COMMUNITY_PAGE_SQL = """
    WITH page AS (
        SELECT c.id, c.slug, c.name, c.mission, c.entry_type, c.member_count, c.created_at,
               COUNT(*) OVER () AS total
        FROM members_community c
        WHERE true {filters}
        ORDER BY c.created_at DESC, c.id DESC
        LIMIT %s OFFSET %s
    )
    SELECT page.total, page.slug, page.name, page.mission,
           (SELECT json_agg(a.tag ORDER BY a.position, a.id)
            FROM members_communityattribute a WHERE a.community_id = page.id) AS attributes,
           page.entry_type,
           (SELECT json_agg(json_build_array(p.id, p.name, p.price::text, p.currency, p.period_days,
                                             p.trial_days, p.refund_window_days) ORDER BY p.price, p.id)
            FROM members_entryplan p WHERE p.community_id = page.id AND p.is_active) AS plans,
           page.member_count{detail}
    FROM page
    ORDER BY page.created_at DESC, page.id DESC"""


def community_page_public(
    *, search: str | None, attribute: str | None, limit: int, offset: int
) -> tuple[int, list[tuple]] | None:
    """A page of ``community_list_public`` in one query: (the whole list's count, rows as
    ``_COMMUNITY_PAGE_SQL`` selects them); the count is 0 when the page is empty. None outside
    PostgreSQL (the embedded SQLite mode lists through the ORM)."""
    if connection.vendor != "postgresql":
        return None
    filters, params = "", []
    if search or attribute:
        ids = community_list_public(search=search, attribute=attribute).order_by().values("id")
        sql, params = ids.query.sql_with_params()
        filters = f"AND c.id IN ({sql})"
    with prepared_cursor() as cursor:
        cursor.execute(_COMMUNITY_PAGE_SQL.format(filters=filters, detail=""), [*params, limit, offset])
        rows = cursor.fetchall()
    return (rows[0][0] if rows else 0), rows


_DETAIL_COLUMNS = """,
           (SELECT d.description FROM members_community d WHERE d.id = page.id),
           (SELECT d.rules FROM members_community d WHERE d.id = page.id)"""


def community_row_public(*, slug: str) -> tuple | None:
    """``community_get_public`` in one query: a row of ``community_page_public`` with the description
    and rules after it; ``Community.DoesNotExist`` for no such slug. None outside PostgreSQL."""
    if connection.vendor != "postgresql":
        return None
    with prepared_cursor() as cursor:
        sql = _COMMUNITY_PAGE_SQL.format(filters="AND c.slug = %s", detail=_DETAIL_COLUMNS)
        cursor.execute(sql, [slug, 1, 0])
        row = cursor.fetchone()
    if row is None:
        raise Community.DoesNotExist(slug)
    return row


def community_get_public(*, slug: str) -> Community:
    return community_list_public().get(slug=slug)


def community_ids_managed_by(*, user: User) -> set[int]:
    """Ids of the communities ``user`` owns or operates (active owner/operator membership)."""
    if not user.is_authenticated:
        return set()
    managed = Membership.objects.filter(
        user=user, role__in=Membership.MANAGER_ROLES, status=Membership.Status.ACTIVE
    ).values_list("community_id", flat=True)
    return set(managed) | set(Community.objects.filter(owner=user).values_list("id", flat=True))


def community_list_for_manager(*, user: User) -> QuerySet[Community]:
    return community_list_public().filter(id__in=community_ids_managed_by(user=user))


def community_get_for_manager(*, user: User, slug: str) -> Community:
    """The community ``slug`` if ``user`` owns or operates it; DoesNotExist (a 404) otherwise."""
    return community_list_for_manager(user=user).get(slug=slug)


def membership_list_for_user(*, user: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=user).select_related("community", "tier")


def membership_list_for_community(*, community: Community, status: str | None = None) -> QuerySet[Membership]:
    queryset = Membership.objects.filter(community=community).select_related(
        "user", "tier", "referred_by__user"
    )
    if status:
        queryset = queryset.filter(status=status)
    return queryset


def membership_list_for_referrals(*, user: User) -> QuerySet[Membership]:
    """The caller's memberships with how many people each brought in."""
    return (
        Membership.objects.filter(user=user)
        .select_related("community")
        .annotate(invited_count=Count("referrals", distinct=True))
    )


def points_entries_for_user(*, user: User) -> QuerySet[PointsEntry]:
    return PointsEntry.objects.filter(membership__user=user).select_related("membership__community")


def address_list_for_user(*, user: User) -> QuerySet[Address]:
    """The caller's own addresses, the default first."""
    return Address.objects.filter(user=user)


def address_get_for_user(*, user: User, address_id: int) -> Address:
    """``Address.DoesNotExist`` (a 404) unless the address is the caller's."""
    return address_list_for_user(user=user).get(pk=address_id)
