"""Coupon limits under load, on PostgreSQL: real threads and transactions, released together by a barrier."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.models import Coupon, MemberCoupon, Order, Sku
from commerce.services.coupons import coupon_create, coupon_issue
from members.models import Membership
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import body
from tests.commerce.test_concurrency import members_of, run_together
from tests.conftest import client_for
from tests.members.factories import CommunityFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

D = Decimal


def limited_coupon(community, **values) -> Coupon:
    return coupon_create(
        actor=community.owner,
        community=community,
        **{
            "name": "限量券",
            "kind": Coupon.Kind.AMOUNT,
            "amount_off": D("5.00"),
            "min_spend": D("0"),
            "valid_until": timezone.now() + timedelta(days=1),
            **values,
        },
    )


def order(user, community, sku, **extra):
    payload = {"community": community.slug, "lines": [{"sku": sku.pk, "quantity": 1}], **extra}
    return client_for(user).post("/api/v1/orders/", payload, format="json")


def test_a_3_use_coupon_code_with_10_racing_orders_pays_for_exactly_3(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=D("20.00"), stock=50)
    coupon = limited_coupon(community, code="THREE", total_limit=3)
    buyers = members_of(community, 10)

    responses = run_together(
        [lambda user=user: order(user, community, sku, coupon_code="THREE") for user in buyers]
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 3 + [409] * 7, statuses
    assert {body(r)["error"]["code"] for r in responses if r.status_code == 409} == {"coupon_sold_out"}
    assert Coupon.objects.get(pk=coupon.pk).issued_count == 3
    assert MemberCoupon.objects.filter(status=MemberCoupon.Status.RESERVED).count() == 3
    assert Order.objects.filter(discount_total=D("5.00")).count() == 3
    assert Sku.objects.get(pk=sku.pk).stock == 47  # the losers' stock came back with their rollback


def test_one_coupon_spent_by_10_racing_orders_of_its_member_pays_for_exactly_1(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), price=D("20.00"), stock=50)
    [user] = members_of(community, 1)
    membership = Membership.objects.get(user=user)
    [grant] = coupon_issue(
        actor=community.owner,
        coupon=limited_coupon(community),
        membership_ids=[membership.pk],
        issue_key="one",
    )

    responses = run_together([lambda: order(user, community, sku, coupon=grant.pk) for _ in range(10)])

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 9, statuses
    assert {body(r)["error"]["code"] for r in responses if r.status_code == 409} == {"coupon_unavailable"}
    assert Order.objects.count() == 1 and Sku.objects.get(pk=sku.pk).stock == 49
    grant.refresh_from_db()
    assert grant.status == MemberCoupon.Status.RESERVED and grant.order_id == Order.objects.get().pk


def test_the_per_member_limit_holds_when_one_member_claims_10_times_at_once():
    community = CommunityFactory()
    limited_coupon(community, code="TWICE", per_member_limit=2, total_limit=100)
    [user] = members_of(community, 1)
    url = "/api/v1/me/coupons/claim/"

    responses = run_together(
        [lambda: client_for(user).post(url, {"community": community.slug, "code": "TWICE"}, format="json")]
        * 10
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] * 2 + [409] * 8, statuses
    assert MemberCoupon.objects.count() == 2 and Coupon.objects.get().issued_count == 2


def test_racing_owner_issues_never_give_more_than_the_total_limit():
    community = CommunityFactory()
    coupon = limited_coupon(community, total_limit=5)
    members_of(community, 20)
    ids = list(Membership.objects.filter(community=community).values_list("pk", flat=True))

    given = run_together(
        [
            lambda key=key: coupon_issue(
                actor=community.owner,
                coupon=Coupon.objects.get(pk=coupon.pk),
                membership_ids=ids,
                issue_key=key,
            )
            for key in "abcdefgh"
        ]
    )

    assert sum(len(batch) for batch in given) == 5
    assert MemberCoupon.objects.count() == 5 and Coupon.objects.get().issued_count == 5
