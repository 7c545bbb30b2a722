"""The audit trail: who changed what, before and after; read-only and scoped in the admin."""

from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.reports.roles import finance_user_grant
from members.models import Community
from shequn_backend.audit import STRIPE, audit_diff, audit_record, audit_record_many, audit_update, job_actor
from shequn_backend.models import AuditEntry
from tests.members.factories import CommunityFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_actor_is_stored_as_the_user_and_a_system_actor_by_name():
    owner = UserFactory()
    community = CommunityFactory(owner=owner)

    by_user = audit_record(
        actor=owner, action="community.updated", target=community, community_id=community.pk
    )
    by_job = audit_record(
        actor=job_actor("settle_commissions"), action="commission.settled", target=("commerce.commission", 7)
    )
    by_provider = audit_record(actor=STRIPE, action="order.paid", target=("commerce.order", 9))

    assert (by_user.actor, by_user.actor_label) == (owner, f"user:{owner.pk}")
    assert (by_user.target_type, by_user.target_id) == ("members.community", str(community.pk))
    assert (by_job.actor, by_job.actor_label, by_job.target_id) == (None, "job:settle_commissions", "7")
    assert by_provider.actor_label == "provider:stripe"


def test_the_diff_keeps_only_changed_fields_with_exact_money_and_iso_times():
    moment = timezone.now()
    before = {"price": Decimal("99.00"), "title": "杨梅", "published_at": None}
    after = {"price": Decimal("89.90"), "title": "杨梅", "published_at": moment}

    diff = audit_diff(before, after)

    assert diff == {"price": ["99.00", "89.90"], "published_at": [None, moment.isoformat()]}


def test_many_rows_are_written_at_once_for_set_based_jobs():
    written = audit_record_many(
        actor=job_actor("release_stock_holds"),
        action="order.cancelled",
        rows=[
            (("commerce.order", pk), None, {"status": ["pending_payment", "cancelled"]}) for pk in range(5)
        ],
    )

    assert written == 5
    assert (
        AuditEntry.objects.filter(action="order.cancelled", actor_label="job:release_stock_holds").count()
        == 5
    )


def _entries(client, user):
    client.force_login(user)
    return client.get("/admin/shequn_backend/auditentry/")


def test_owners_see_their_own_communities_history_and_finance_sees_all(client):
    mine, theirs = CommunityFactory(name="我的社群"), CommunityFactory(name="别人的社群")
    audit_record(actor=mine.owner, action="tier.changed", target=mine, community_id=mine.pk, note="mine-note")
    audit_record(actor=theirs.owner, action="tier.changed", target=theirs, community_id=theirs.pk, note="x")
    finance = UserFactory(is_staff=True)
    finance_user_grant(user=finance)

    as_owner = _entries(client, mine.owner)
    as_finance = _entries(client, finance)

    assert as_owner.status_code == 200
    seen_by_owner = as_owner.context["cl"].result_list
    assert {e.community_id for e in seen_by_owner} == {mine.pk}
    assert "mine-note" in {e.note for e in seen_by_owner}
    assert "别人的社群" not in as_owner.content.decode()
    assert {mine.pk, theirs.pk} <= {e.community_id for e in as_finance.context["cl"].result_list}


def test_nobody_changes_or_deletes_the_trail(client):
    community = CommunityFactory()
    entry = audit_record(
        actor=community.owner, action="community.updated", target=community, community_id=community.pk
    )
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)

    page = client.get(f"/admin/shequn_backend/auditentry/{entry.pk}/change/")
    deleted = client.post(f"/admin/shequn_backend/auditentry/{entry.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert deleted.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_an_update_records_only_what_really_changed_and_nothing_when_nothing_did():
    community = Community.objects.get(pk=CommunityFactory(points_per_yuan=1).pk)  # as services lock it

    changed = audit_update(
        actor=community.owner,
        instance=community,
        values={"points_per_yuan": 2, "mission": community.mission},
        action="community.updated",
        community_id=community.pk,
    )
    unchanged = audit_update(
        actor=community.owner,
        instance=community,
        values={"points_per_yuan": 2},
        action="community.updated",
        community_id=community.pk,
    )

    assert changed == {"points_per_yuan": ["1.00", "2.00"]} and unchanged == {}
    [entry] = AuditEntry.objects.filter(action="community.updated", target_id=str(community.pk))
    assert entry.changes == {"points_per_yuan": ["1.00", "2.00"]} and entry.actor == community.owner
