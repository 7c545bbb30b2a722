"""Coupons: giving out, applying to orders and paid joins, returning, and money that reconciles to the fen."""

import io
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from commerce.models import Commission, Coupon, MemberCoupon, Order, Reminder, Sku
from commerce.pricing import allocate_largest_remainder
from commerce.reports.filters import ReportFilters
from commerce.reports.reconciliation import reconciliation_rows
from commerce.reports.services import report_export
from commerce.reports.settlement import settlement_figures
from commerce.services.coupons import coupon_create, coupon_issue, member_coupon_restore
from commerce.services.orders import order_release_expired
from commerce.services.renewals import renewal_reminders_create
from members.models import Community, Membership, PointsEntry
from shequn_backend.audit import SYSTEM
from shequn_backend.audit_labels import action_label
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import body, pay, place_order, refund_as_owner
from tests.commerce.reports_world import column, read_csv
from tests.conftest import client_for
from tests.members.factories import (
    CommunityFactory,
    EntryPlanFactory,
    MembershipFactory,
    TierFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

D = Decimal
ORDERS_URL = "/api/v1/orders/"
MY_COUPONS_URL = "/api/v1/me/coupons/"
CLAIM_URL = "/api/v1/me/coupons/claim/"


def make_coupon(community, **values) -> Coupon:
    defaults = {
        "name": "满100减30",
        "kind": Coupon.Kind.AMOUNT,
        "amount_off": D("30.00"),
        "min_spend": D("100.00"),
        "valid_until": timezone.now() + timedelta(days=30),
    }
    return coupon_create(actor=community.owner, community=community, **{**defaults, **values})


def give(coupon, membership) -> MemberCoupon:
    [grant] = coupon_issue(
        actor=coupon.community.owner,
        coupon=coupon,
        membership_ids=[membership.pk],
        issue_key=str(membership.pk),
    )
    return grant


def order_with(user, community, lines, **extra):
    payload = {
        "community": community.slug,
        "lines": [{"sku": sku.pk, "quantity": q} for sku, q in lines],
        **extra,
    }
    return client_for(user).post(ORDERS_URL, payload, format="json")


@pytest.fixture
def shop(stripe):
    community = CommunityFactory(referral_level1_percent=D("10"), points_per_yuan=D("1"))
    book = SkuFactory(product=ProductFactory(community=community), price=D("33.33"), stock=20)
    pen = SkuFactory(product=ProductFactory(community=community, title="钢笔"), price=D("10.01"), stock=20)
    referrer = MembershipFactory(community=community)
    member = MembershipFactory(community=community, referred_by=referrer)
    return {"community": community, "book": book, "pen": pen, "member": member, "referrer": referrer}


# --- Allocation ---------------------------------------------------------------------------------


def test_largest_remainder_adds_up_exactly_and_gives_the_odd_fen_to_the_largest_remainders():
    assert allocate_largest_remainder(amount=D("10.00"), weights=[D("1"), D("1"), D("1")]) == [
        D("3.34"),
        D("3.33"),
        D("3.33"),
    ]
    assert allocate_largest_remainder(amount=D("0.05"), weights=[D("66.66"), D("10.01")]) == [
        D("0.04"),
        D("0.01"),
    ]
    rng = random.Random(20)
    for _ in range(500):
        weights = [D(rng.randint(1, 100_000)) / 100 for _ in range(rng.randint(1, 8))]
        amount = D(rng.randint(0, int(sum(weights) * 100))) / 100
        parts = allocate_largest_remainder(amount=amount, weights=weights)
        assert sum(parts) == amount
        assert all(D("0") <= part <= weight for part, weight in zip(parts, weights, strict=True))


# --- Claiming and listing -----------------------------------------------------------------------


def test_a_member_claims_with_a_code_and_sees_it_in_their_coupons(shop):
    coupon = make_coupon(shop["community"], code="new100", total_limit=5)
    user = shop["member"].user

    response = client_for(user).post(
        CLAIM_URL, {"community": shop["community"].slug, "code": " NEW100 "}, format="json"
    )

    assert response.status_code == 201, response.content
    data = body(response)
    assert data["status"] == "available" and data["source"] == "claimed"
    assert data["coupon"]["amount_off"] == "30.00" and data["coupon"]["min_spend"] == "100.00"
    listed = body(client_for(user).get(MY_COUPONS_URL))["results"]
    assert [row["id"] for row in listed] == [data["id"]]
    assert body(client_for(shop["referrer"].user).get(MY_COUPONS_URL))["results"] == []
    assert Coupon.objects.get(pk=coupon.pk).issued_count == 1


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ({"code": "GONE", "total_limit": 1}, 409, "coupon_sold_out"),
        ({"code": "ONCE", "per_member_limit": 1}, 409, "coupon_limit_reached"),
        ({"code": "LATE", "valid_from": timezone.now() - timedelta(days=2)}, 400, "invalid_coupon_code"),
    ],
)
def test_claims_past_a_limit_or_out_of_date_are_refused_and_write_nothing(shop, setup, status, code):
    coupon = make_coupon(shop["community"], **setup)
    other = MembershipFactory(community=shop["community"])
    if code == "coupon_sold_out":
        give(coupon, other)
    elif code == "coupon_limit_reached":
        give(coupon, shop["member"])
    else:
        Coupon.objects.filter(pk=coupon.pk).update(valid_until=timezone.now() - timedelta(days=1))
    before = MemberCoupon.objects.count()

    response = client_for(shop["member"].user).post(
        CLAIM_URL, {"community": shop["community"].slug, "code": setup["code"]}, format="json"
    )

    assert response.status_code == status and body(response)["error"]["code"] == code
    assert MemberCoupon.objects.count() == before


def test_a_non_member_cannot_claim(shop):
    make_coupon(shop["community"], code="MEMBERS")
    response = client_for(UserFactory()).post(
        CLAIM_URL, {"community": shop["community"].slug, "code": "MEMBERS"}, format="json"
    )
    assert response.status_code == 403 and not MemberCoupon.objects.exists()


# --- Orders -------------------------------------------------------------------------------------


def test_an_order_with_a_coupon_allocates_the_discount_to_the_lines_and_charges_the_rest(shop, stripe):
    grant = give(make_coupon(shop["community"]), shop["member"])

    response = order_with(
        shop["member"].user, shop["community"], [(shop["book"], 3), (shop["pen"], 1)], coupon=grant.pk
    )

    assert response.status_code == 201, response.content
    data = body(response)
    # 99.99 + 10.01 = 110.00; 30.00 off split 27.27 / 2.73 (by line total, to the fen).
    assert (data["total"], data["discount"]) == ("80.00", "30.00")
    assert data["coupon"] == {"id": grant.pk, "name": "满100减30", "kind": "amount"}
    assert [(line["line_total"], line["discount"], line["paid_amount"]) for line in data["lines"]] == [
        ("99.99", "27.27", "72.72"),
        ("10.01", "2.73", "7.28"),
    ]
    assert data["payment"]["amount"] == "80.00"
    assert next(iter(stripe.payment_intents.values()))["amount"] == 8000
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.RESERVED and grant.order_id == data["id"]

    order = pay(stripe, data["id"])
    grant.refresh_from_db()
    assert order.amount_paid == D("80.00") and grant.status == MemberCoupon.Status.USED
    [commission] = Commission.objects.filter(order=order)
    assert commission.base_amount == D("80.00") and commission.amount == D("8.00")  # on what was paid
    award = PointsEntry.objects.get(idempotency_key=f"order:{order.pk}:award")
    assert award.delta == 80
    assert body(client_for(shop["member"].user).get(MY_COUPONS_URL))["results"][0]["status"] == "used"


def test_percent_off_is_capped_and_the_cap_is_the_discount(shop):
    grant = give(
        make_coupon(
            shop["community"],
            kind=Coupon.Kind.PERCENT,
            percent_off=D("20"),
            max_discount=D("15.00"),
            min_spend=D("0"),
        ),
        shop["member"],
    )
    data = body(order_with(shop["member"].user, shop["community"], [(shop["book"], 3)], coupon=grant.pk))
    assert (data["discount"], data["total"]) == ("15.00", "84.99")


def test_a_coupon_code_is_claimed_and_applied_with_the_order(shop):
    make_coupon(shop["community"], code="FIRST", min_spend=D("0"), amount_off=D("5.00"))
    data = body(order_with(shop["member"].user, shop["community"], [(shop["pen"], 1)], coupon_code="first"))
    assert data["discount"] == "5.00" and data["total"] == "5.01"
    assert MemberCoupon.objects.get().status == MemberCoupon.Status.RESERVED


@pytest.mark.parametrize(
    ("values", "quantity", "reason"),
    [
        ({}, 1, "Spend at least 100.00"),  # 满100 not reached: 33.33
        ({"scope": Coupon.Scope.ENTRY, "min_spend": D("0")}, 1, "only"),
    ],
)
def test_a_coupon_that_does_not_fit_is_refused_with_400_and_nothing_is_written(
    shop, values, quantity, reason
):
    grant = give(make_coupon(shop["community"], **values), shop["member"])

    payload = {"community": shop["community"].slug, "lines": [{"sku": shop["book"].pk, "quantity": quantity}]}
    with_translation = client_for(shop["member"].user).post(
        ORDERS_URL, {**payload, "coupon": grant.pk}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert with_translation.status_code == 400
    error = body(with_translation)["error"]
    assert error["code"] == "coupon_not_applicable" and list(error["fields"]) == ["coupon"]
    assert reason in error["fields"]["coupon"][0]
    assert not Order.objects.exists() and Sku.objects.get(pk=shop["book"].pk).stock == 20
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.AVAILABLE


def test_another_members_coupon_is_not_found_and_a_held_one_is_a_conflict(shop):
    other = MembershipFactory(community=shop["community"])
    theirs = give(make_coupon(shop["community"], min_spend=D("0")), other)
    response = order_with(shop["member"].user, shop["community"], [(shop["pen"], 1)], coupon=theirs.pk)
    assert response.status_code == 404 and not Order.objects.exists()

    mine = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("1.00")), shop["member"])
    assert (
        order_with(shop["member"].user, shop["community"], [(shop["pen"], 1)], coupon=mine.pk).status_code
        == 201
    )
    again = order_with(shop["member"].user, shop["community"], [(shop["pen"], 1)], coupon=mine.pk)
    assert again.status_code == 409 and body(again)["error"]["code"] == "coupon_unavailable"
    assert Order.objects.count() == 1 and Sku.objects.get(pk=shop["pen"].pk).stock == 19


def test_coupon_and_coupon_code_together_are_a_validation_error(shop):
    response = order_with(
        shop["member"].user, shop["community"], [(shop["pen"], 1)], coupon=1, coupon_code="X"
    )
    assert response.status_code == 400 and "coupon" in body(response)["error"]["fields"]
    assert not Order.objects.exists() and Sku.objects.get(pk=shop["pen"].pk).stock == 20


def test_a_replay_with_the_same_key_returns_the_same_discounted_order(shop):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("2.00")), shop["member"])
    payload = {
        "community": shop["community"].slug,
        "lines": [{"sku": shop["pen"].pk, "quantity": 1}],
        "coupon": grant.pk,
    }
    client = client_for(shop["member"].user)

    first = client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = client.post(ORDERS_URL, payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == second.status_code == 201
    assert body(first)["id"] == body(second)["id"] and body(second)["discount"] == "2.00"
    assert Order.objects.count() == 1


def test_cancelling_an_unpaid_order_or_its_hold_expiring_returns_the_coupon(shop):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("3.00")), shop["member"])
    user = shop["member"].user
    first = body(order_with(user, shop["community"], [(shop["pen"], 1)], coupon=grant.pk))

    assert client_for(user).post(f"/api/v1/orders/{first['id']}/cancel/").status_code == 200
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.AVAILABLE and grant.order_id is None

    second = body(order_with(user, shop["community"], [(shop["pen"], 1)], coupon=grant.pk))
    order_release_expired(now=timezone.now() + timedelta(days=1))
    grant.refresh_from_db()
    assert Order.objects.get(pk=second["id"]).status == Order.Status.CANCELLED
    assert grant.status == MemberCoupon.Status.AVAILABLE
    # The cancelled orders still show what they were offered.
    assert body(client_for(user).get(f"/api/v1/orders/{second['id']}/"))["discount"] == "3.00"


def test_refunds_give_back_at_most_what_was_paid_and_the_coupon_stays_used(shop, stripe):
    grant = give(make_coupon(shop["community"]), shop["member"])
    order_id = body(
        order_with(
            shop["member"].user, shop["community"], [(shop["book"], 3), (shop["pen"], 1)], coupon=grant.pk
        )
    )["id"]
    pay(stripe, order_id)
    owner = shop["community"].owner

    over = refund_as_owner(owner, order_id, amount="80.01")
    assert over.status_code == 400 and body(over)["error"]["code"] == "refund_exceeds_paid"
    assert refund_as_owner(owner, order_id, amount="30.00").status_code == 201
    commission = Commission.objects.get(order_id=order_id)
    assert commission.amount_reversed == D("3.00")  # 30 of 80 paid: 3 of the 8.00 commission
    assert refund_as_owner(owner, order_id).status_code == 201  # the rest: 50.00

    order = Order.objects.get(pk=order_id)
    assert order.status == Order.Status.REFUNDED and order.amount_refunded == D("80.00")
    assert sum(line.paid_amount for line in order.lines.all()) == order.amount_refunded
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.USED  # the owner did not say it comes back

    member_coupon_restore(actor=owner, member_coupon=grant)
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.AVAILABLE


def test_a_coupon_returned_on_refund_comes_back_when_the_order_is_fully_refunded(shop, stripe):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), return_on_refund=True), shop["member"])
    order_id = body(order_with(shop["member"].user, shop["community"], [(shop["book"], 3)], coupon=grant.pk))[
        "id"
    ]
    pay(stripe, order_id)

    assert refund_as_owner(shop["community"].owner, order_id, amount="10.00").status_code == 201
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.USED  # a partial refund keeps it used
    assert refund_as_owner(shop["community"].owner, order_id).status_code == 201
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.AVAILABLE and grant.order_id is None


def test_a_partial_refund_of_discounted_tickets_releases_the_seats_it_pays_for(shop, stripe):
    community = shop["community"]
    seat = SkuFactory(product=EventFactory(community=community, capacity=10), price=D("50.00"), stock=10)
    grant = give(make_coupon(community, min_spend=D("0"), amount_off=D("30.00")), shop["member"])
    order_id = body(order_with(shop["member"].user, community, [(seat, 3)], coupon=grant.pk))["id"]
    pay(stripe, order_id)  # 150 - 30 = 120 paid: 40.00 a seat

    assert refund_as_owner(community.owner, order_id, amount="45.00").status_code == 201
    [line] = Order.objects.get(pk=order_id).lines.all()
    assert line.paid_for_units(1) == D("40.00") and line.quantity_released == 1
    assert Sku.objects.get(pk=seat.pk).stock == 8


# --- Paid join and the renewal offer ------------------------------------------------------------


@pytest.fixture
def paid_club(stripe):
    community = CommunityFactory(entry_type=Community.EntryType.PAID)
    plan = EntryPlanFactory(community=community, price=D("199.00"), period_days=365)
    return community, plan


def test_renew_at_half_price_end_to_end_reminder_coupon_join_and_payment(paid_club, stripe, settings):
    community, plan = paid_club
    settings.RENEWAL_REMIND_DAYS = 7
    expires = timezone.now() + timedelta(days=3)
    member = MembershipFactory(community=community, plan=plan, expires_at=expires)
    Order.objects.create(
        community=community, buyer=member.user, kind=Order.Kind.ENTRY, total=0, membership=member, plan=plan
    ).delete()  # nothing: the member has no earlier order in this test
    make_coupon(
        community,
        name="续费半价",
        kind=Coupon.Kind.PERCENT,
        percent_off=D("50"),
        min_spend=D("0"),
        scope=Coupon.Scope.ENTRY,
        trigger=Coupon.Trigger.RENEWAL_REMINDER,
    )

    assert renewal_reminders_create(now=timezone.now()) == 1
    assert renewal_reminders_create(now=timezone.now()) == 0  # a rerun gives no second coupon
    reminder = Reminder.objects.get()
    assert reminder.coupon is not None and "续费半价" in reminder.message
    assert MemberCoupon.objects.count() == 1
    shown = body(client_for(member.user).get("/api/v1/me/reminders/"))["results"][0]
    assert shown["coupon"] == {"id": reminder.coupon_id, "name": "续费半价"}

    response = client_for(member.user).post(
        f"/api/v1/communities/{community.slug}/join/",
        {"plan": plan.pk, "coupon": shown["coupon"]["id"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert body(response)["payment"]["amount"] == "99.50"
    order = pay(stripe, body(response)["payment"]["order_id"])
    member.refresh_from_db()
    assert order.total == order.amount_paid == D("99.50") and order.discount_total == D("99.50")
    assert member.expires_at > expires + timedelta(days=364)
    assert MemberCoupon.objects.get().status == MemberCoupon.Status.USED


def test_an_entry_coupon_below_its_minimum_is_refused_on_join_and_no_order_is_made(paid_club):
    community, plan = paid_club
    member = MembershipFactory(community=community, plan=plan, expires_at=timezone.now() + timedelta(days=3))
    grant = give(make_coupon(community, scope=Coupon.Scope.ENTRY, min_spend=D("500.00")), member)

    response = client_for(member.user).post(
        f"/api/v1/communities/{community.slug}/join/", {"plan": plan.pk, "coupon": grant.pk}, format="json"
    )

    assert response.status_code == 400 and body(response)["error"]["code"] == "coupon_not_applicable"
    assert not Order.objects.exists()


def test_join_and_referral_coupons_are_given_once_when_a_member_joins(django_capture_on_commit_callbacks):
    community = CommunityFactory()
    welcome = make_coupon(community, name="新人券", trigger=Coupon.Trigger.JOIN)
    thanks = make_coupon(community, name="邀请奖励", trigger=Coupon.Trigger.REFERRAL)
    referrer = MembershipFactory(community=community)
    user = UserFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(user).post(
            f"/api/v1/communities/{community.slug}/join/",
            {"referral_code": referrer.referral_code},
            format="json",
        )

    assert response.status_code == 201, response.content
    newcomer = Membership.objects.get(user=user)
    assert MemberCoupon.objects.get(coupon=welcome).membership == newcomer
    assert MemberCoupon.objects.get(coupon=thanks).membership == referrer
    from commerce.receivers import coupons_on_join

    coupons_on_join(sender=Membership, membership_id=newcomer.pk, old_status=None, new_status="active")
    assert MemberCoupon.objects.count() == 2  # the same join gives nothing twice


def test_a_paid_renewal_gives_the_renewal_coupon(paid_club, stripe, django_capture_on_commit_callbacks):
    community, plan = paid_club
    make_coupon(community, name="续费礼", trigger=Coupon.Trigger.RENEWAL)
    user = UserFactory()
    url = f"/api/v1/communities/{community.slug}/join/"
    with django_capture_on_commit_callbacks(execute=True):
        pay(stripe, body(client_for(user).post(url, {"plan": plan.pk}, format="json"))["payment"]["order_id"])
    assert not MemberCoupon.objects.filter(coupon__name="续费礼").exists()  # a first join is no renewal

    with django_capture_on_commit_callbacks(execute=True):
        pay(stripe, body(client_for(user).post(url, {"plan": plan.pk}, format="json"))["payment"]["order_id"])
    assert MemberCoupon.objects.filter(coupon__name="续费礼", membership__user=user).count() == 1


# --- Reports ------------------------------------------------------------------------------------


def test_reports_show_discounts_and_the_settlement_subtracts_them(shop, stripe):
    grant = give(make_coupon(shop["community"]), shop["member"])
    paid_id = body(
        order_with(
            shop["member"].user, shop["community"], [(shop["book"], 3), (shop["pen"], 1)], coupon=grant.pk
        )
    )["id"]
    pay(stripe, paid_id)
    pay(stripe, body(place_order(shop["member"].user, shop["community"], [(shop["pen"], 2)]))["id"])
    today = timezone.localdate()
    filters = ReportFilters(date_from=today - timedelta(days=1), date_to=today + timedelta(days=1))

    def export(name):
        stream = io.BytesIO()
        report_export(report_name=name, filters=filters, fmt="csv", stream=stream, language="en")
        return read_csv(stream.getvalue())

    header, _rows, [totals] = export("orders")
    assert totals[header.index("Coupon discount")] == "30.00"
    assert D(totals[header.index("Before discount")]) - D("30.00") == D(totals[header.index("Order total")])
    line_header, lines, _line_totals = export("order_lines")
    assert sum(D(v) for v in column(line_header, lines, "Coupon discount")) == D("30.00")
    assert sum(D(v) for v in column(line_header, lines, "Paid for the line")) == D(
        totals[header.index("Order total")]
    )

    figures = settlement_figures(filters=filters)[(shop["community"].pk, "CNY")]
    assert figures["discounts"] == D("30.00") and figures["gross"] == D("100.02")
    s_header, s_rows, _totals = export("settlement")
    [row] = s_rows
    assert D(row[s_header.index("Sales before discounts")]) - D(row[s_header.index("Coupon discounts")]) == D(
        row[s_header.index("Gross sales")]
    )
    assert list(reconciliation_rows(filters)) == []


# --- Admin --------------------------------------------------------------------------------------


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop["community"].owner)
    return client


def test_the_owner_creates_a_coupon_in_the_admin_and_bad_values_are_shown_in_chinese(owner_client, shop):
    url = reverse("admin:commerce_coupon_add")
    values = {
        "community": shop["community"].pk,
        "name": "满200减50",
        "kind": "amount",
        "amount_off": "",
        "min_spend": "200",
        "scope": "goods",
        "valid_from_0": "2026-01-01",
        "valid_from_1": "00:00:00",
        "valid_until_0": "2030-01-01",
        "valid_until_1": "00:00:00",
        "per_member_limit": "1",
        "trigger": "manual",
        "code": "",
        "is_active": "on",
    }
    refused = owner_client.post(url, values, HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert refused.status_code == 200 and not Coupon.objects.exists()
    assert "amount_off" in refused.context["adminform"].form.errors

    response = owner_client.post(url, {**values, "amount_off": "50", "percent_off": "20", "code": "vip"})
    assert response.status_code == 302, response.context["adminform"].form.errors
    coupon = Coupon.objects.get()
    assert (coupon.amount_off, coupon.min_spend, coupon.percent_off) == (D("50.00"), D("200.00"), None)
    assert coupon.code == "VIP" and coupon.issued_count == 0


def test_giving_to_a_tier_asks_first_and_a_second_confirmation_gives_nothing_more(owner_client, shop):
    coupon = make_coupon(shop["community"], per_member_limit=3)
    gold = TierFactory(community=shop["community"], name="金卡")
    golden = [MembershipFactory(community=shop["community"], tier=gold) for _ in range(2)]
    url = reverse("admin:commerce_coupon_issue", args=[coupon.pk])

    preview = owner_client.post(url, {"tiers": [gold.pk], "key": "k-1"})
    assert preview.status_code == 200 and preview.context["receivers"] == 2
    assert not MemberCoupon.objects.exists()

    for _ in range(2):
        done = owner_client.post(url, {"tiers": [gold.pk], "key": "k-1", "confirm": "yes"})
        assert done.status_code == 302
    assert sorted(MemberCoupon.objects.values_list("membership_id", flat=True)) == sorted(
        m.pk for m in golden
    )


def test_another_owner_cannot_open_the_coupon_or_give_it(client, shop):
    coupon = make_coupon(shop["community"])
    client.force_login(CommunityFactory().owner)
    assert client.get(reverse("admin:commerce_coupon_issue", args=[coupon.pk])).status_code == 404
    listed = client.get(reverse("admin:commerce_coupon_changelist"))
    assert listed.status_code == 200 and coupon not in listed.context["cl"].queryset
    response = client.post(
        reverse("admin:commerce_coupon_issue", args=[coupon.pk]),
        {"members": [shop["member"].pk], "key": "x", "confirm": "yes"},
    )
    assert response.status_code == 404 and not MemberCoupon.objects.exists()


def test_issue_skips_members_of_other_communities_and_inactive_ones(shop):
    coupon = make_coupon(shop["community"])
    outsider = MembershipFactory()
    left = MembershipFactory(community=shop["community"], status=Membership.Status.LEFT)

    given = coupon_issue(
        actor=SYSTEM, coupon=coupon, membership_ids=[outsider.pk, left.pk, shop["member"].pk], issue_key="a"
    )

    assert [grant.membership_id for grant in given] == [shop["member"].pk]
    entry = AuditEntry.objects.get(action="coupon.given")
    assert entry.actor_label == SYSTEM and entry.community_id == shop["community"].pk
    with translation.override("zh-hans"):
        assert action_label("coupon.given") == "向成员发放优惠券"


def test_the_coupon_pages_read_in_chinese(owner_client, shop):
    from tests.commerce.test_console_chinese import english_phrases

    coupon = make_coupon(shop["community"], code="HELLO")
    make_coupon(
        shop["community"], name="续费半价", kind=Coupon.Kind.PERCENT, percent_off=D("50"), min_spend=D("0")
    )
    give(coupon, shop["member"])
    gold = TierFactory(community=shop["community"], name="金卡")
    MembershipFactory(community=shop["community"], tier=gold)
    issue_url = reverse("admin:commerce_coupon_issue", args=[coupon.pk])
    pages = {
        "list": owner_client.get(reverse("admin:commerce_coupon_changelist")),
        "add": owner_client.get(reverse("admin:commerce_coupon_add")),
        "change": owner_client.get(reverse("admin:commerce_coupon_change", args=[coupon.pk])),
        "issue": owner_client.get(issue_url),
        "issue preview": owner_client.post(issue_url, {"tiers": [gold.pk], "key": "k"}),
        "member coupons": owner_client.get(reverse("admin:commerce_membercoupon_changelist")),
    }

    assert all(response.status_code == 200 for response in pages.values())
    assert "1 位成员将收到" in pages["issue preview"].content.decode()
    assert (
        "减 50%" in pages["list"].content.decode() and "满¥100.00减¥30.00" in pages["list"].content.decode()
    )
    found = {name: english_phrases(response.content.decode()) for name, response in pages.items()}
    assert {name: phrases for name, phrases in found.items() if phrases} == {}


def test_a_late_payment_of_a_cancelled_order_whose_coupon_went_elsewhere_is_flagged(shop, stripe):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("4.00")), shop["member"])
    user = shop["member"].user
    first = body(order_with(user, shop["community"], [(shop["pen"], 1)], coupon=grant.pk))["id"]
    assert client_for(user).post(f"/api/v1/orders/{first}/cancel/").status_code == 200
    second = body(order_with(user, shop["community"], [(shop["pen"], 1)], coupon=grant.pk))["id"]

    late = pay(stripe, first)  # the buyer paid the first one anyway

    grant.refresh_from_db()
    assert late.amount_paid == D("6.01") and late.needs_review and "优惠券" in late.review_reason
    assert grant.status == MemberCoupon.Status.RESERVED and grant.order_id == second


def test_a_late_payment_of_a_cancelled_order_takes_its_returned_coupon_again(shop, stripe):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("4.00")), shop["member"])
    user = shop["member"].user
    order_id = body(order_with(user, shop["community"], [(shop["pen"], 1)], coupon=grant.pk))["id"]
    assert client_for(user).post(f"/api/v1/orders/{order_id}/cancel/").status_code == 200

    late = pay(stripe, order_id)

    grant.refresh_from_db()
    assert late.amount_paid == D("6.01") and not late.needs_review
    assert grant.status == MemberCoupon.Status.USED and grant.order_id == order_id


def test_the_owner_gives_back_a_refunded_orders_coupon_from_the_admin_and_finance_only_reads(
    owner_client, client, shop, stripe
):
    from commerce.reports.roles import finance_user_grant

    grant = give(make_coupon(shop["community"], min_spend=D("0")), shop["member"])
    order_id = body(order_with(shop["member"].user, shop["community"], [(shop["book"], 3)], coupon=grant.pk))[
        "id"
    ]
    pay(stripe, order_id)
    url = reverse("admin:commerce_membercoupon_changelist")
    refused = owner_client.post(url, {"action": "restore", "_selected_action": [grant.pk]}, follow=True)
    assert MemberCoupon.objects.get(pk=grant.pk).status == MemberCoupon.Status.USED  # not refunded yet
    assert any("全额退款" in str(m) for m in refused.context["messages"])

    assert refund_as_owner(shop["community"].owner, order_id).status_code == 201
    owner_client.post(url, {"action": "restore", "_selected_action": [grant.pk]})
    assert MemberCoupon.objects.get(pk=grant.pk).status == MemberCoupon.Status.AVAILABLE

    finance = UserFactory(is_staff=True)
    finance_user_grant(user=finance)
    client.force_login(finance)
    page = client.get(reverse("admin:commerce_coupon_changelist"))
    assert page.status_code == 200 and not page.context["cl"].model_admin.get_actions(page.wsgi_request)
    assert client.get(reverse("admin:commerce_coupon_issue", args=[grant.coupon_id])).status_code == 404


def test_the_total_limit_cannot_go_below_what_was_given_out_and_the_page_says_so(owner_client, shop):
    coupon = make_coupon(shop["community"], total_limit=5)
    give(coupon, shop["member"])
    give(coupon, shop["referrer"])
    page = owner_client.get(reverse("admin:commerce_coupon_change", args=[coupon.pk]))
    values = {
        key: value
        for key, value in page.context["adminform"].form.initial.items()
        if key in page.context["adminform"].form.fields and value is not None
    }
    values.update(
        valid_from_0="2026-01-01",
        valid_from_1="00:00:00",
        valid_until_0="2030-01-01",
        valid_until_1="00:00:00",
    )
    for key in ("valid_from", "valid_until"):
        values.pop(key, None)

    response = owner_client.post(
        reverse("admin:commerce_coupon_change", args=[coupon.pk]), {**values, "total_limit": "1"}, follow=True
    )

    assert Coupon.objects.get(pk=coupon.pk).total_limit == 5
    assert any("已发放 2 张" in str(m) for m in response.context["messages"]), response.content.decode()[:500]

    owner_client.post(
        reverse("admin:commerce_coupon_change", args=[coupon.pk]), {**values, "total_limit": "9"}
    )
    assert Coupon.objects.get(pk=coupon.pk).total_limit == 9


def test_a_coupon_worth_the_whole_order_settles_it_at_once_and_uses_the_coupon(shop):
    grant = give(make_coupon(shop["community"], min_spend=D("0"), amount_off=D("500.00")), shop["member"])

    data = body(order_with(shop["member"].user, shop["community"], [(shop["pen"], 2)], coupon=grant.pk))

    assert (data["total"], data["discount"], data["status"]) == ("0.00", "20.02", "paid")
    assert [line["paid_amount"] for line in data["lines"]] == ["0.00"]
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.USED and not Commission.objects.exists()
