"""Operations: run_jobs by hand with --now, renewal reminders, stock holds, the beat schedule."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from commerce.models import Commission, Order, Reminder, Sku
from commerce.services.renewals import renewal_reminders_create
from members.models import Membership
from shequn_backend.celery import app
from shequn_backend.jobs import JOBS
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order
from tests.commerce.jobs_helpers import bought, day
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def run_jobs(*args) -> str:
    out = StringIO()
    call_command("run_jobs", *args, stdout=out)
    return out.getvalue()


def test_given_the_contracts_job_names_then_each_is_registered_and_on_the_beat_schedule():
    contract = {
        "settle_commissions",
        "repurchase_reminders",
        "expire_memberships",
        "release_stock_holds",
        "rescore_fit",
    }
    assert contract <= set(JOBS)
    app.finalize()  # builds the beat schedule from the declared jobs
    scheduled = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "commerce.release_stock_holds",
        "commerce.commissions_settle",
        "commerce.repurchase_reminders",
        "commerce.renewal_reminders",
        "commerce.repurchase_rates",
        "commerce.notifications_send",
        "members.memberships_expire",
        "trust.rescore_all",
    } <= scheduled
    app.loader.import_default_modules()
    assert scheduled <= set(app.tasks)
    for name in scheduled:
        assert app.tasks[name].acks_late


def test_given_a_commission_when_run_jobs_runs_with_now_after_the_window_then_it_settles_and_says_so(stripe):
    community = CommunityFactory(referral_level1_percent=10)
    sku = SkuFactory(product=ProductFactory(community=community), stock=5)
    parent = MembershipFactory(community=community)
    buyer = MembershipFactory(community=community, referred_by=parent)
    order = pay(stripe, body(place_order(buyer.user, community, [(sku, 1)]))["id"])

    early = run_jobs("settle_commissions", "--now", (order.paid_at + timedelta(days=1)).isoformat())
    late = run_jobs("settle_commissions", "--now", (order.paid_at + timedelta(days=7)).isoformat())

    assert "settle_commissions: 0 commissions settled" in early
    assert "settle_commissions: 1 commissions settled" in late
    assert Commission.objects.get().status == "settled"


def test_given_an_unpaid_order_when_release_stock_holds_runs_after_the_hold_then_stock_comes_back(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), stock=5)
    buyer = MembershipFactory(community=community)
    order_id = body(place_order(buyer.user, community, [(sku, 2)]))["id"]
    assert Sku.objects.get(pk=sku.pk).stock == 3

    output = run_jobs("release_stock_holds", "--now", (timezone.now() + timedelta(hours=1)).isoformat())

    assert "release_stock_holds: 1" in output
    assert Order.objects.get(pk=order_id).status == "cancelled"
    assert Sku.objects.get(pk=sku.pk).stock == 5


def test_given_no_job_names_when_run_jobs_runs_then_every_job_runs_in_order():
    output = run_jobs("--now", "2025-06-01T09:00:00+08:00")

    assert "Running at 2025-06-01T09:00:00+08:00" in output
    lines = [line.split(":")[0] for line in output.splitlines()[1:]]
    assert lines == list(JOBS)


def test_given_an_unknown_job_or_a_bad_time_then_run_jobs_refuses():
    with pytest.raises(CommandError, match="Unknown job"):
        run_jobs("settle_everything")
    with pytest.raises(CommandError, match="ISO 8601"):
        run_jobs("settle_commissions", "--now", "yesterday")


def test_given_a_membership_expiring_soon_when_the_job_runs_twice_then_one_renewal_reminder():
    member = MembershipFactory(expires_at=day(5))
    MembershipFactory(expires_at=day(30))  # outside the 7 days

    assert renewal_reminders_create(now=day(0)) == 1
    assert renewal_reminders_create(now=day(1)) == 0

    [reminder] = Reminder.objects.all()
    assert reminder.kind == "renewal" and reminder.membership == member and reminder.due_at == day(5)
    assert reminder.notification.user == member.user


def test_given_a_renewed_membership_then_the_new_expiry_gets_its_own_reminder():
    member = MembershipFactory(expires_at=day(5))
    renewal_reminders_create(now=day(0))
    Membership.objects.filter(pk=member.pk).update(expires_at=day(370))

    assert renewal_reminders_create(now=day(365)) == 1

    assert Reminder.objects.filter(membership=member, kind="renewal").count() == 2


def test_given_an_expired_membership_when_run_jobs_expires_it_then_member_only_goods_are_refused():
    community = CommunityFactory()
    SkuFactory(product=ProductFactory(community=community))
    member = MembershipFactory(community=community, expires_at=timezone.now() + timedelta(days=1))
    url = f"/api/v1/communities/{community.slug}/products/"
    assert client_for(member.user).get(url).status_code == 200

    output = run_jobs("expire_memberships", "--now", (timezone.now() + timedelta(days=2)).isoformat())

    assert "expire_memberships: 1 memberships expired" in output
    assert Membership.objects.get(pk=member.pk).status == "expired"
    assert client_for(member.user).get(url).status_code == 403


def test_given_due_goods_and_a_renewal_when_reminders_run_then_both_show_at_me_reminders():
    community = CommunityFactory()
    rice = SkuFactory(product=ProductFactory(community=community, repurchase_cycle_days=10), stock=5)
    member = MembershipFactory(community=community, expires_at=timezone.now() + timedelta(days=3))
    bought(member, rice, at=timezone.now() - timedelta(days=10))

    run_jobs("repurchase_reminders", "renewal_reminders", "send_notifications")

    data = client_for(member.user).get("/api/v1/me/reminders/").json()
    assert sorted(row["kind"] for row in data["results"]) == ["renewal", "repurchase"]
    renewal = next(row for row in data["results"] if row["kind"] == "renewal")
    assert renewal["product"] is None and renewal["community"] == community.slug
