"""Trust as a listener: re-scored once per turn to stale, new listings cheap, never failing a write."""

import logging
from decimal import Decimal

import pytest
from celery.signals import task_prerun
from django.contrib.messages import get_messages
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from commerce.events import order_paid, product_listed
from commerce.models import Category, Order, Product
from commerce.services.orders import LineInput, order_create
from commerce.services.payments import payment_record_offline, payment_settle_offline
from members.models import Membership
from shequn_backend.audit import SYSTEM
from tests.commerce.factories import SkuFactory
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.trust.builders import committed, list_product
from trust import services
from trust.lexicon_store import current_lexicon_versioned
from trust.models import ActivityDay, CommunityAudience, FitAssessment
from trust.scoring.engine import ENGINE_VERSION

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_club():
    return CommunityFactory(
        name="财经频道书友会", mission="解读商业案例与投资逻辑", attributes=["财经", "投资理财"]
    )


@pytest.fixture
def rescores():
    """Community ids of the re-score tasks that actually ran (eager Celery, the embedded default)."""
    ran: list[int] = []

    def count(sender=None, args=(), **kwargs):
        if sender is not None and sender.name == "trust.rescore_community":
            ran.append(args[0])

    task_prerun.connect(count, weak=False, dispatch_uid="test_rescores")
    yield ran
    task_prerun.disconnect(dispatch_uid="test_rescores")


@pytest.fixture
def failing_receiver():
    """A listener that raises, connected to commerce's public events like any other app's would be."""

    def explode(**kwargs):
        raise RuntimeError("listener broke")

    for signal in (product_listed, order_paid):
        signal.connect(explode, weak=False, dispatch_uid="test_explode")
    yield
    for signal in (product_listed, order_paid):
        signal.disconnect(dispatch_uid="test_explode")


def unpaid_orders(community, count: int) -> list[Order]:
    sku = SkuFactory(product=list_product(community, title="《聪明的投资者》", category="图书/投资理财"))
    buyers = [MembershipFactory(community=community).user for _ in range(count)]
    return [
        order_create(actor=buyer, buyer=buyer, community=community, lines=[LineInput(sku.pk, 1)]).order
        for buyer in buyers
    ]


# --- Re-scoring is queued once per turn to stale ---------------------------------------------------


def test_two_payments_in_one_transaction_queue_one_rescore(finance_club, rescores):
    first, second = unpaid_orders(finance_club, 2)

    with committed(), transaction.atomic():
        for order in (first, second):
            locked = Order.objects.select_for_update().get(pk=order.pk)
            payment_settle_offline(
                actor=SYSTEM, order=locked, reference=f"cash-{order.pk}", now=locked.created_at
            )

    assert rescores == [finance_club.pk]
    assert CommunityAudience.objects.get(community=finance_club).stale_since is None


def test_payments_in_a_row_before_the_worker_runs_queue_one_rescore_and_a_later_one_another(
    finance_club, rescores
):
    first, second, third = unpaid_orders(finance_club, 3)

    with committed():  # both commit before the queued task runs
        payment_record_offline(actor=SYSTEM, order_id=first.pk, reference="cash-1")
        payment_record_offline(actor=SYSTEM, order_id=second.pk, reference="cash-2")
    assert rescores == [finance_club.pk]

    with committed():  # re-scored since: the next change queues again
        payment_record_offline(actor=SYSTEM, order_id=third.pk, reference="cash-3")
    assert rescores == [finance_club.pk, finance_club.pk]


def test_mark_stale_says_whether_this_call_turned_the_community_stale(finance_club):
    assert services.community_mark_stale(community_id=finance_club.pk) is True
    assert services.community_mark_stale(community_id=finance_club.pk) is False
    services.community_rescore(community_id=finance_club.pk)
    assert services.community_mark_stale(community_id=finance_club.pk) is True


def test_a_change_during_a_rescore_marks_the_community_stale_again(finance_club):
    services.community_mark_stale(community_id=finance_club.pk)
    services.community_rescore(community_id=finance_club.pk)
    services.community_mark_stale(community_id=finance_club.pk)  # arrived after the run began

    assert services.stale_community_ids(now=timezone.now()) == [finance_club.pk]


# --- A new listing is scored against the stored profile ----------------------------------------


def test_a_new_listing_uses_the_stored_profile_and_costs_fewer_queries(
    finance_club, django_assert_num_queries
):
    fruit = list_product(finance_club, title="千岛湖杨梅 5斤装", category="生鲜/水果", tags=["杨梅"])
    # No profile stored: the community's whole evidence, as every assessment cost before.
    with django_assert_num_queries(7):
        built = services.product_assess(product_id=fruit.pk)
    services.community_rescore(community_id=finance_club.pk)

    with django_assert_num_queries(3):  # product with its community's profile, lexicon version, upsert
        stored = services.product_assess(product_id=fruit.pk)

    assert (stored.score, stored.level, stored.reasons_zh) == (built.score, built.level, built.reasons_zh)
    assert stored.warning and "财经" in " ".join(stored.reasons_zh)


def test_a_profile_built_with_another_lexicon_is_not_used(finance_club, django_assert_num_queries):
    book = list_product(finance_club, title="《聪明的投资者》", category="图书/投资理财")
    services.community_rescore(community_id=finance_club.pk)
    CommunityAudience.objects.filter(community=finance_club).update(
        profile={"lexicon": "an older lexicon", "domains": {}, "affinity": {}}
    )

    with django_assert_num_queries(7):
        assert services.product_assess(product_id=book.pk).level == "fit"


# --- A scorer or listener error never fails the write -------------------------------------------


def corrupt_stored_profile(community) -> None:
    """A stored profile the engine cannot read: assessing any product of ``community`` raises."""
    version, _ = current_lexicon_versioned()
    CommunityAudience.objects.update_or_create(
        community=community,
        defaults={
            "scored_at": timezone.now(),
            "profile": {"lexicon": version, "engine": ENGINE_VERSION, "domains": {}, "affinity": "x"},
        },
    )


def test_a_scorer_error_never_fails_the_owners_admin_save(client, finance_club, caplog):
    corrupt_stored_profile(finance_club)
    client.force_login(finance_club.owner)

    with committed(), caplog.at_level(logging.ERROR):
        response = client.post(
            reverse("admin:commerce_product_add"),
            {
                "community": finance_club.pk,
                "title": "法国波尔多红酒 750ml",
                "category": Category.objects.get(path="酒水/葡萄酒").pk,
                "tags_text": "红酒",
                "kind": "goods",
                "is_active": "on",
                "description": "",
                "skus-TOTAL_FORMS": "1",
                "skus-INITIAL_FORMS": "0",
                "skus-0-name": "单瓶",
                "skus-0-price": "199.00",
                "skus-0-stock": "10",
                "skus-0-is_active": "on",
            },
            follow=True,
        )

    assert response.status_code == 200
    assert Product.objects.filter(title="法国波尔多红酒 750ml", community=finance_club).exists()
    assert [m.level_tag for m in get_messages(response.wsgi_request)] == ["success"]
    assert "Could not assess product" in caplog.text  # the admin's own assessment
    assert "event receiver" in caplog.text  # and the on-commit one, each logged


def test_a_failing_listener_never_fails_the_listing_and_the_others_still_run(
    finance_club, failing_receiver, caplog
):
    with committed(), caplog.at_level(logging.ERROR):
        response = client_for(finance_club.owner).post(
            f"/api/v1/owner/communities/{finance_club.slug}/products/",
            {
                "title": "千岛湖杨梅 5斤装",
                "category": "生鲜/水果",
                "kind": "goods",
                "skus": [{"name": "5斤装", "price": "128.00", "stock": 20}],
            },
            format="json",
        )

    assert response.status_code == 201, response.content
    assert FitAssessment.objects.get(product_id=response.json()["id"]).warning  # trust still assessed it
    assert "listener broke" in caplog.text


def test_a_failing_listener_never_fails_a_payment_and_trust_still_hears_it(
    finance_club, failing_receiver, caplog
):
    (order,) = unpaid_orders(finance_club, 1)

    with committed(), caplog.at_level(logging.ERROR):
        paid = payment_record_offline(actor=SYSTEM, order_id=order.pk, reference="cash-1")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID and paid.amount_paid == Decimal("99.00")
    assert ActivityDay.objects.filter(community=finance_club, user=order.buyer).exists()
    assert "listener broke" in caplog.text


# --- Content posts: services with an audit trail ------------------------------------------------


def test_content_posts_are_written_through_services_with_an_audit_row(finance_club):
    from shequn_backend.models import AuditEntry

    post = services.content_post_create(
        community=finance_club,
        title="基金定投入门",
        tags=["基金"],
        published_at=None,
        actor=finance_club.owner,
    )
    services.community_rescore(community_id=finance_club.pk)
    services.content_post_update(
        post_id=post.pk,
        actor=finance_club.owner,
        title="基金定投进阶",
        tags=["基金"],
        published_at=post.published_at,
    )
    assert CommunityAudience.objects.get(community=finance_club).stale_since is not None
    services.content_post_delete(post_id=post.pk, actor=finance_club.owner)

    entries = AuditEntry.objects.filter(community_id=finance_club.pk, action__startswith="content_post.")
    assert list(entries.order_by("pk").values_list("action", flat=True)) == [
        "content_post.created",
        "content_post.changed",
        "content_post.deleted",
    ]
    changed = entries.get(action="content_post.changed")
    assert changed.changes == {"title": ["基金定投入门", "基金定投进阶"]}
    assert changed.actor == finance_club.owner


def test_the_admin_records_content_through_the_services(client, finance_club):
    from shequn_backend.models import AuditEntry

    client.force_login(finance_club.owner)
    response = client.post(
        reverse("admin:trust_contentpost_add"),
        {
            "community": finance_club.pk,
            "title": "普洱茶的投资价值",
            "tags": '["普洱"]',
            "published_at_0": "2026-11-30",
            "published_at_1": "10:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    post = finance_club.posts.get()
    assert post.created_by == finance_club.owner and post.tags == ["普洱"]
    assert AuditEntry.objects.filter(action="content_post.created", target_id=str(post.pk)).exists()
    assert CommunityAudience.objects.get(community=finance_club).stale_since is not None


# --- Activity survives a cache outage -----------------------------------------------------------


@pytest.fixture
def cache_down(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }


def test_a_member_is_recorded_active_when_the_cache_is_down(cache_down, caplog):
    community = CommunityFactory()
    member = MembershipFactory(community=community, status=Membership.Status.ACTIVE)
    client = client_for(member.user)

    for _ in range(2):
        with committed():
            response = client.get(f"/api/v1/communities/{community.slug}/products/")
        assert response.status_code == 200

    assert ActivityDay.objects.filter(community=community, user=member.user).count() == 1
    assert "activity cache unavailable" in caplog.text


def test_a_paid_order_marks_its_buyer_active_when_the_cache_is_down(finance_club, cache_down, caplog):
    (order,) = unpaid_orders(finance_club, 1)

    with committed():
        payment_record_offline(actor=SYSTEM, order_id=order.pk, reference="cash-1")

    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
    assert ActivityDay.objects.filter(community=finance_club, user=order.buyer).count() == 1
    assert "activity cache unavailable" in caplog.text


# --- Lexicon edits: audited services, used by the next assessment --------------------------------


def test_an_operators_lexicon_edits_in_the_admin_are_audited(client):
    from shequn_backend.models import AuditEntry
    from tests.members.factories import UserFactory
    from trust.models import CategoryAudience, Domain

    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    category = Category.objects.get(path="生鲜/水果")
    tea = Domain.objects.get(key="tea")

    added = client.post(
        reverse("admin:trust_categoryaudience_add"),
        {"category": category.pk, "domain": tea.pk, "weight": "0.3"},
    )
    mapping = CategoryAudience.objects.get(category=category, domain=tea)
    changed = client.post(
        reverse("admin:trust_categoryaudience_change", args=[mapping.pk]),
        {"category": category.pk, "domain": tea.pk, "weight": "0.5"},
    )
    deleted = client.post(reverse("admin:trust_categoryaudience_delete", args=[mapping.pk]), {"post": "yes"})

    assert added.status_code == changed.status_code == deleted.status_code == 302
    entries = AuditEntry.objects.filter(target_type="trust.categoryaudience", target_id=str(mapping.pk))
    assert [(e.action, e.actor_id) for e in entries.order_by("pk")] == [
        ("category_audience.created", operator.pk),
        ("category_audience.changed", operator.pk),
        ("category_audience.deleted", operator.pk),
    ]
    assert entries.get(action="category_audience.changed").changes == {"weight": [0.3, 0.5]}
    assert not CategoryAudience.objects.filter(pk=mapping.pk).exists()


def test_marking_many_communities_stale_costs_the_same_for_one_or_forty(django_assert_max_num_queries):
    from members.models import Community
    from tests.members.factories import CommunityFactory

    communities = [CommunityFactory() for _ in range(40)]
    ids = [community.pk for community in communities]
    services.community_mark_stale(community_id=ids[0])  # already stale: not turned again
    services.community_rescore(community_id=ids[1])  # fresh with a stored profile: turned

    with django_assert_max_num_queries(6):
        turned = services.community_mark_stale_many(community_ids=ids)

    assert turned == sorted(ids[1:])
    assert services.community_mark_stale_many(community_ids=ids) == []
    assert set(services.stale_community_ids(now=timezone.now(), limit=100)) == set(ids)
    assert Community.objects.filter(pk__in=ids).count() == 40


# --- The expiry job's receiver: one statement each on PostgreSQL, the same rows as the ORM path ----


class _Rollback(Exception):
    pass


def _each_path(paths, run):
    """``run(path)`` for each named path on the same data, each in a transaction rolled back after."""
    results = {}
    for name, path in paths.items():
        try:
            with transaction.atomic():
                results[name] = run(path)
                raise _Rollback
        except _Rollback:
            pass
    return results


def test_the_one_statement_stale_marking_writes_what_the_orm_path_writes(django_assert_num_queries):
    ids = [CommunityFactory().pk for _ in range(4)]
    services.community_mark_stale(community_id=ids[0])  # already stale: left as it is
    services.community_rescore(community_id=ids[1])  # fresh with a stored profile: turned
    now = timezone.now()  # ids[2] and ids[3] have no audience row yet: created stale

    def run(mark):
        turned, again = mark(community_ids=ids, now=now), mark(community_ids=ids, now=now)
        fields = ["community_id", "domains", "trust", "profile", "stale_since", "scored_at"]
        return turned, again, sorted(CommunityAudience.objects.values_list(*fields))

    results = _each_path({"orm": services._mark_stale_many_orm, "sql": services._mark_stale_many_sql}, run)

    assert results["orm"] == results["sql"]
    turned, again, rows = results["sql"]
    assert turned == ids[1:] and again == []
    assert [row[4] == now for row in rows] == [False, True, True, True]
    with django_assert_num_queries(1):
        assert services.community_mark_stale_many(community_ids=ids) == ids[1:]


def test_the_one_statement_exits_sync_writes_what_the_orm_path_writes(django_assert_num_queries):
    from datetime import timedelta

    from trust import activity
    from trust.models import MembershipExit

    now, day = timezone.now(), timedelta(days=1)
    status = Membership.Status
    lapsed = MembershipFactory(status=status.EXPIRED, expires_at=now - 3 * day)  # dated at expires_at
    early = MembershipFactory(status=status.EXPIRED, expires_at=now + day)  # dated now
    undated = MembershipFactory(status=status.EXPIRED, expires_at=None)
    left = MembershipFactory(status=status.LEFT)
    banned = MembershipFactory(status=status.BANNED, expires_at=now - day)  # not an expiry: dated now
    pending = MembershipFactory(status=status.PENDING_PAYMENT)  # no record, none made
    returned = MembershipFactory(status=status.ACTIVE)  # renewed: loses its record
    recorded = MembershipFactory(status=status.EXPIRED, expires_at=now - 2 * day)  # record kept as it is
    elsewhere = MembershipFactory(status=status.ACTIVE)  # not in the chunk: record kept
    for membership, exited_at in ((returned, now - 5 * day), (recorded, now - 9 * day), (elsewhere, now)):
        MembershipExit.objects.create(
            membership=membership, community_id=membership.community_id, status="left", exited_at=exited_at
        )
    chunk = [lapsed, early, undated, left, banned, pending, returned, recorded]
    ids = [membership.pk for membership in chunk]

    def run(sync):
        sync(membership_ids=ids, now=now)
        return sorted(
            MembershipExit.objects.values_list("membership_id", "community_id", "status", "exited_at")
        )

    results = _each_path({"orm": activity._exits_sync_orm, "sql": activity._exits_sync_sql}, run)

    assert results["orm"] == results["sql"]
    assert {row[0]: (row[2], row[3]) for row in results["sql"]} == {
        lapsed.pk: ("expired", lapsed.expires_at),
        early.pk: ("expired", now),
        undated.pk: ("expired", now),
        left.pk: ("left", now),
        banned.pk: ("banned", now),
        recorded.pk: ("left", now - 9 * day),
        elsewhere.pk: ("left", now),
    }
    communities = {membership.pk: membership.community_id for membership in [*chunk, elsewhere]}
    assert all(row[1] == communities[row[0]] for row in results["sql"])
    with django_assert_num_queries(1):
        activity.membership_exits_sync_many(membership_ids=ids, now=now)
