"""Referral commissions: two levels at most, pending until the return window closes, reversed by refunds."""

from datetime import timedelta
from decimal import Decimal

import pytest

from commerce.models import Commission, CommissionEntry, Order
from commerce.services.commissions import (
    commission_amount,
    commission_balance,
    commission_payout_record,
    commission_reverse_for_order,
    commission_settle_due,
)
from members.models import Community, Membership
from shequn_backend.audit import SYSTEM
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, EntryPlanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

D = Decimal


def shop(**community_fields):
    """A community paying 10% at level 1 and 5% at level 2, a 100.00 product, and a referral chain.

    grand -> parent -> buyer (``->`` reads "referred").
    """
    fields = {"referral_level1_percent": D("10"), "referral_level2_percent": D("5"), **community_fields}
    community = CommunityFactory(**fields)
    sku = SkuFactory(product=ProductFactory(community=community), price=D("100.00"), stock=100)
    grand = MembershipFactory(community=community)
    parent = MembershipFactory(community=community, referred_by=grand)
    buyer = MembershipFactory(community=community, referred_by=parent)
    return {"community": community, "sku": sku, "grand": grand, "parent": parent, "buyer": buyer}


def buy(stripe, world, *, membership=None, quantity=1, referral_code=None) -> Order:
    membership = membership or world["buyer"]
    response = place_order(
        membership.user, world["community"], [(world["sku"], quantity)], referral_code=referral_code
    )
    assert response.status_code == 201, response.content
    return pay(stripe, body(response)["id"])


def commissions(order) -> dict[int, Commission]:
    return {c.level: c for c in Commission.objects.filter(order=order)}


@pytest.fixture
def world():
    return shop()


def test_given_a_two_level_chain_when_the_order_is_paid_then_both_referrers_get_pending_commissions(
    world, stripe
):
    order = buy(stripe, world)

    by_level = commissions(order)
    assert set(by_level) == {1, 2}
    assert by_level[1].beneficiary == world["parent"] and by_level[1].amount == D("10.00")
    assert by_level[2].beneficiary == world["grand"] and by_level[2].amount == D("5.00")
    assert all(c.status == Commission.Status.PENDING for c in by_level.values())
    assert by_level[1].settle_after == order.paid_at + timedelta(days=7)
    assert not CommissionEntry.objects.exists()  # nothing payable before settlement


def test_given_a_longer_chain_when_paid_then_no_more_than_two_levels_earn(world, stripe):
    top = MembershipFactory(community=world["community"])
    Membership.objects.filter(pk=world["grand"].pk).update(referred_by=top)

    order = buy(stripe, world)

    assert set(commissions(order)) == {1, 2}
    assert not Commission.objects.filter(beneficiary=top).exists()


def test_given_a_referral_code_on_the_order_when_paid_then_its_owner_is_level_1_over_referred_by(
    world, stripe
):
    sharer = MembershipFactory(community=world["community"], referred_by=world["grand"])

    order = buy(stripe, world, referral_code=sharer.referral_code)

    by_level = commissions(order)
    assert by_level[1].beneficiary == sharer and by_level[2].beneficiary == world["grand"]


def test_given_ones_own_referral_code_when_ordering_then_it_is_refused_and_nothing_is_earned(world, stripe):
    response = place_order(
        world["buyer"].user,
        world["community"],
        [(world["sku"], 1)],
        referral_code=world["buyer"].referral_code,
    )

    assert response.status_code == 400
    assert not Commission.objects.exists()


def test_given_a_referral_loop_when_paid_then_the_buyer_never_earns_on_their_own_purchase(world, stripe):
    Membership.objects.filter(pk=world["parent"].pk).update(referred_by=world["buyer"])

    order = buy(stripe, world)

    by_level = commissions(order)
    assert set(by_level) == {1} and by_level[1].beneficiary == world["parent"]


def test_given_a_banned_level_1_referrer_when_paid_then_only_level_2_earns(world, stripe):
    Membership.objects.filter(pk=world["parent"].pk).update(status=Membership.Status.BANNED)

    order = buy(stripe, world)

    assert set(commissions(order)) == {2}


def test_given_a_buyer_without_referrer_when_paid_then_no_commission(world, stripe):
    order = buy(stripe, world, membership=world["grand"])

    assert commissions(order) == {}


def test_given_rates_with_fractions_when_computed_then_amounts_round_half_up_to_the_fen():
    assert commission_amount(base=D("99.99"), percent=D("5")) == D("5.00")  # 4.9995
    assert commission_amount(base=D("33.33"), percent=D("10")) == D("3.33")
    assert commission_amount(base=D("0.05"), percent=D("10")) == D("0.01")  # 0.005


def test_given_a_product_return_window_override_when_paid_then_settlement_waits_for_it(stripe):
    world = shop(return_window_days=3)
    world["sku"].product.return_window_days = 30
    world["sku"].product.save()

    order = buy(stripe, world)

    assert commissions(order)[1].settle_after == order.paid_at + timedelta(days=30)


def entry_world(*, on_entry: bool):
    community = CommunityFactory(
        entry_type=Community.EntryType.PAID,
        referral_level1_percent=D("10"),
        commission_on_entry_orders=on_entry,
    )
    plan = EntryPlanFactory(community=community, price=D("199.00"))
    sharer = MembershipFactory(community=community)
    return community, plan, sharer


def join_and_pay(stripe, community, plan, sharer) -> Order:
    user = UserFactory()
    response = client_for(user).post(
        f"/api/v1/communities/{community.slug}/join/",
        {"plan": plan.pk, "referral_code": sharer.referral_code},
        format="json",
    )
    assert response.status_code == 201, response.content
    return pay(stripe, body(response)["payment"]["order_id"])


def test_given_commissions_on_entry_off_by_default_when_an_entry_fee_is_paid_then_nothing_is_earned(stripe):
    community, plan, sharer = entry_world(on_entry=False)

    order = join_and_pay(stripe, community, plan, sharer)

    assert order.kind == Order.Kind.ENTRY and order.status == Order.Status.PAID
    assert commissions(order) == {}


def test_given_commissions_on_entry_enabled_when_an_entry_fee_is_paid_then_the_referrer_earns(stripe):
    community, plan, sharer = entry_world(on_entry=True)

    order = join_and_pay(stripe, community, plan, sharer)

    [commission] = commissions(order).values()
    assert commission.beneficiary == sharer and commission.amount == D("19.90")


def test_given_an_open_return_window_when_the_job_runs_then_nothing_settles(world, stripe):
    order = buy(stripe, world)

    assert commission_settle_due(now=order.paid_at + timedelta(days=6, hours=23)) == 0
    assert all(c.status == "pending" for c in commissions(order).values())


def test_given_a_closed_return_window_when_the_job_runs_then_commissions_settle_into_the_ledger(
    world, stripe
):
    order = buy(stripe, world)

    settled = commission_settle_due(now=order.paid_at + timedelta(days=7))

    assert settled == 2
    assert all(c.status == "settled" for c in commissions(order).values())
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("10.00")
    assert commission_balance(beneficiary_id=world["grand"].pk) == D("5.00")


def test_given_settled_commissions_when_the_job_runs_again_then_nothing_is_doubled(world, stripe):
    order = buy(stripe, world)
    later = order.paid_at + timedelta(days=8)
    commission_settle_due(now=later)

    assert commission_settle_due(now=later) == 0
    assert CommissionEntry.objects.count() == 2
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("10.00")


def test_given_a_partial_refund_before_settlement_then_the_commission_shrinks_proportionally(world, stripe):
    order = buy(stripe, world, quantity=3)  # 300.00: 30.00 and 15.00

    refund_as_owner(world["community"].owner, order.pk, amount="100.00")
    commission_settle_due(now=order.paid_at + timedelta(days=7))

    by_level = commissions(order)
    assert by_level[1].amount_reversed == D("10.00") and by_level[2].amount_reversed == D("5.00")
    assert by_level[1].status == "settled"
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("20.00")
    assert commission_balance(beneficiary_id=world["grand"].pk) == D("10.00")


def test_given_a_full_refund_before_settlement_then_the_commission_is_reversed_and_never_paid(world, stripe):
    order = buy(stripe, world)

    refund_as_owner(world["community"].owner, order.pk)
    settled = commission_settle_due(now=order.paid_at + timedelta(days=30))

    assert settled == 0
    assert all(c.status == "reversed" and c.amount_reversed == c.amount for c in commissions(order).values())
    assert not CommissionEntry.objects.exists()


def test_given_a_refund_after_settlement_then_a_negative_adjustment_is_written(world, stripe):
    order = buy(stripe, world)
    commission_settle_due(now=order.paid_at + timedelta(days=7))

    refund_as_owner(world["community"].owner, order.pk, amount="40.00")

    level1 = commissions(order)[1]
    assert level1.status == "settled" and level1.amount_reversed == D("4.00")
    [adjustment] = CommissionEntry.objects.filter(beneficiary=world["parent"], kind="adjustment")
    assert adjustment.amount == D("-4.00")
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("6.00")


def test_given_a_refund_after_payout_then_a_negative_balance_is_carried_forward(world, stripe):
    first = buy(stripe, world)
    commission_settle_due(now=first.paid_at + timedelta(days=7))
    commission_payout_record(
        beneficiary_id=world["parent"].pk, amount=D("10.00"), reference="wx-transfer-1", actor=SYSTEM
    )
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("0.00")

    refund_as_owner(world["community"].owner, first.pk)

    assert commissions(first)[1].status == "reversed"
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("-10.00")
    second = buy(stripe, world, quantity=2)  # earns 20.00
    commission_settle_due(now=second.paid_at + timedelta(days=7))
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("10.00")


def test_given_the_same_payout_reference_twice_then_it_is_recorded_once(world, stripe):
    order = buy(stripe, world)
    commission_settle_due(now=order.paid_at + timedelta(days=7))

    commission_payout_record(
        beneficiary_id=world["parent"].pk, amount=D("10.00"), reference="wx-1", actor=SYSTEM
    )
    commission_payout_record(
        beneficiary_id=world["parent"].pk, amount=D("10.00"), reference="wx-1", actor=SYSTEM
    )

    assert commission_balance(beneficiary_id=world["parent"].pk) == D("0.00")
    assert AuditEntry.objects.filter(action="commission.payout_recorded").count() == 1


def test_given_a_banned_beneficiary_when_the_job_runs_then_their_commission_stays_pending(world, stripe):
    order = buy(stripe, world)
    Membership.objects.filter(pk=world["parent"].pk).update(status=Membership.Status.BANNED)

    commission_settle_due(now=order.paid_at + timedelta(days=7))

    by_level = commissions(order)
    assert by_level[1].status == "pending" and by_level[2].status == "settled"


def test_given_a_crash_half_way_through_a_chunk_when_rerun_then_the_end_state_is_the_same(world, stripe):
    orders = [buy(stripe, world) for _ in range(3)]
    later = orders[-1].paid_at + timedelta(days=7)

    with pytest.raises(RuntimeError):
        commission_settle_due(now=later, batch_size=4, fail_after=2)
    assert CommissionEntry.objects.count() == 0  # the chunk rolled back as a whole
    assert commission_settle_due(now=later, batch_size=4) == 6

    assert CommissionEntry.objects.filter(kind="settlement").count() == 6
    assert commission_balance(beneficiary_id=world["parent"].pk) == D("30.00")


def test_given_a_paid_order_when_commissions_are_created_then_each_has_an_audit_row(world, stripe):
    order = buy(stripe, world)

    rows = {row.target_id: row for row in AuditEntry.objects.filter(action="commission.created")}
    level1 = commissions(order)[1]
    assert set(rows) == {str(c.pk) for c in commissions(order).values()}
    assert rows[str(level1.pk)].community_id == world["community"].pk
    assert rows[str(level1.pk)].changes["amount"] == [None, "10.00"]
    assert rows[str(level1.pk)].changes["beneficiary"] == [None, world["parent"].pk]


def test_given_due_commissions_when_the_job_settles_them_then_each_leaves_one_audit_row_by_the_job(
    world, stripe
):
    order = buy(stripe, world)
    now = order.paid_at + timedelta(days=7)

    commission_settle_due(now=now)
    commission_settle_due(now=now)  # nothing left: no second row

    rows = AuditEntry.objects.filter(action="commission.settled").order_by("target_id")
    assert [(row.target_type, row.target_id) for row in rows] == [
        ("commerce.commission", str(c.pk)) for c in sorted(commissions(order).values(), key=lambda c: c.pk)
    ]
    assert {row.actor_label for row in rows} == {"job:settle_commissions"}
    assert {row.community_id for row in rows} == {world["community"].pk}
    assert rows[0].changes == {"status": ["pending", "settled"], "settled_at": [None, now.isoformat()]}


def test_given_a_refund_when_commissions_are_taken_back_then_each_change_is_audited(world, stripe):
    order = buy(stripe, world)

    refund_as_owner(world["community"].owner, order.pk, amount="40.00")

    level1 = commissions(order)[1]
    [row] = AuditEntry.objects.filter(action="commission.reversed", target_id=str(level1.pk))
    assert row.community_id == world["community"].pk
    assert row.changes == {"amount_reversed": ["0.00", "4.00"]}


def test_given_an_acting_user_when_a_commission_is_reversed_then_the_audit_row_names_them(world, stripe):
    order = buy(stripe, world)
    owner = world["community"].owner
    order.amount_refunded = order.amount_paid  # as the order's confirmed refunds stand after a full refund

    commission_reverse_for_order(order=order, now=order.paid_at, actor=owner)

    rows = AuditEntry.objects.filter(action="commission.reversed")
    assert rows.count() == 2
    assert {(row.actor_id, row.actor_label) for row in rows} == {(owner.pk, f"user:{owner.pk}")}
    assert rows.first().changes["status"] == ["pending", "reversed"]


def test_given_my_commissions_when_i_read_my_referrals_then_i_see_pending_settled_and_reversed(world, stripe):
    first = buy(stripe, world)
    commission_settle_due(now=first.paid_at + timedelta(days=7))
    buy(stripe, world, quantity=2)  # pending 20.00
    refund_as_owner(world["community"].owner, first.pk, amount="30.00")  # 3.00 of the settled 10.00 back

    response = client_for(world["parent"].user).get("/api/v1/me/referrals/")

    assert response.status_code == 200
    [row] = [m for m in body(response)["memberships"] if m["community"] == world["community"].slug]
    assert row["commissions"] == {
        "pending": "20.00",
        "settled": "7.00",
        "reversed": "3.00",
        "currency": "CNY",
    }
    assert row["invited_count"] == 1
