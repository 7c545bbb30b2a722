"""``membership_get_active_by_slug`` on PostgreSQL is SQL built once; it answers as the ORM query does."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Value
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members import selectors
from members.models import Membership
from tests.members.factories import CommunityFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def orm(user, slug):
    """The ORM's query (an annotation takes that path)."""
    return selectors.membership_get_active_by_slug(user=user, slug=slug, annotations={"probe": Value(1)})


def fields(instance) -> dict | None:
    if instance is None:
        return None
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


def same(user, slug):
    with CaptureQueriesContext(connection) as queries:
        fast = selectors.membership_get_active_by_slug(user=user, slug=slug)
        if fast is not None:
            community, tier = fast.community, fast.tier  # cached: no query
    assert len(queries) == 1
    slow = orm(user, slug)
    assert slow is None or slow.probe == 1
    assert fields(fast) == fields(slow)
    if fast is not None:
        assert fields(community) == fields(slow.community)
        assert fields(tier) == fields(slow.tier)
    return fast


def test_the_sql_lookup_gives_what_the_orm_gives():
    community = CommunityFactory(name="跑团", referral_level1_percent=Decimal("7.5"))
    gold = TierFactory(community=community, level=3, discount_percent=Decimal("12.5"))
    with_tier = MembershipFactory(community=community, tier=gold, points=420)
    plain = MembershipFactory(community=community, expires_at=timezone.now() + timedelta(days=3))
    expired = MembershipFactory(community=community, expires_at=timezone.now() - timedelta(seconds=1))
    banned = MembershipFactory(community=community, status=Membership.Status.BANNED)
    owner = Membership.objects.get(community=community, role=Membership.Role.OWNER)

    assert same(with_tier.user, community.slug).tier.discount_percent == Decimal("12.5")
    assert same(plain.user, community.slug).tier is None
    assert same(owner.user, community.slug).is_manager
    assert same(expired.user, community.slug) is None
    assert same(banned.user, community.slug) is None
    assert same(with_tier.user, "no-such-community") is None
    assert same(UserFactory(), community.slug) is None
    assert model_to_dict(same(with_tier.user, community.slug).community)["name"] == "跑团"


def test_the_rule_in_sql_selects_what_its_q_selects():
    """``active_membership_sql`` (the raw queries' form) and ``active_membership_q`` keep one rule."""
    now = timezone.now()
    community = CommunityFactory()
    for status in Membership.Status.values:
        for expires_at in (None, now - timedelta(seconds=1), now + timedelta(days=1)):
            MembershipFactory(community=community, status=status, expires_at=expires_at)
    with connection.cursor() as cursor:
        rule = selectors.active_membership_sql("m")
        cursor.execute(f"SELECT m.id FROM members_membership m WHERE {rule}", [now])  # noqa: S608
        by_sql = {row[0] for row in cursor.fetchall()}
    by_q = set(Membership.objects.filter(selectors.active_membership_q()).values_list("pk", flat=True))
    assert by_sql == by_q
    assert len(by_q) == 3  # the owner's, and the active ones without an expiry or not past it
