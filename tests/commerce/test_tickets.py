"""Event tickets: issued once per seat on payment, refunded with their seats, checked in once (核销)."""

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from threading import Barrier

import pytest
from django.db import connection
from django.urls import reverse

from commerce.models import Order, Ticket
from commerce.services.tickets import CODE_ALPHABET, CODE_LENGTH, ticket_check_in, ticket_issue_for_order
from members.models import Membership
from shequn_backend.audit import SYSTEM
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory
from tests.commerce.flows import body, charge_refunded, deliver, intent_of, pay, place_order, refund_as_owner
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

MY_TICKETS = "/api/v1/me/tickets/"


def check_in_url(community) -> str:
    return reverse("owner-check-in", args=[community.slug])


def check_in(user, community, code):
    return client_for(user).post(check_in_url(community), {"code": code}, format="json")


def bought(stripe, user, community, lines) -> Order:
    """A paid order of ``lines`` ([(sku, quantity)])."""
    response = place_order(user, community, lines)
    assert response.status_code == 201, response.content
    return pay(stripe, body(response)["id"])


def statuses(order) -> list[str]:
    return list(
        Ticket.objects.filter(order=order).order_by("line_id", "seat").values_list("status", flat=True)
    )


@pytest.fixture
def event(stripe):
    """An event with two ticket types at 40.00 and 60.00, and a member who buys."""
    community = CommunityFactory()
    product = EventFactory(community=community, location="杭州市西湖区")
    early = SkuFactory(product=product, name="早鸟票", price=Decimal("40.00"), stock=10)
    standard = SkuFactory(product=product, name="标准票", price=Decimal("60.00"), stock=10)
    member = MembershipFactory(community=community).user
    return {
        "community": community,
        "product": product,
        "early": early,
        "standard": standard,
        "member": member,
    }


# --- Issuing ------------------------------------------------------------------------------------


def test_paying_an_event_order_issues_one_ticket_per_seat_with_unguessable_codes(event, stripe):
    order = bought(stripe, event["member"], event["community"], [(event["early"], 2), (event["standard"], 1)])

    tickets = list(Ticket.objects.filter(order=order))
    assert len(tickets) == 3 and statuses(order) == ["valid"] * 3
    assert {(t.line.sku_id, t.seat) for t in tickets} == {
        (event["early"].pk, 1),
        (event["early"].pk, 2),
        (event["standard"].pk, 1),
    }
    pattern = re.compile(f"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
    assert all(pattern.match(t.code) for t in tickets) and len({t.code for t in tickets}) == 3
    assert not set("01OIL") & set(CODE_ALPHABET)
    for ticket in tickets:
        assert (ticket.buyer, ticket.community, ticket.product) == (
            event["member"],
            event["community"],
            event["product"],
        )
    assert AuditEntry.objects.filter(action="ticket.issued", target_type="commerce.ticket").count() == 3


def test_duplicate_and_repeated_payment_notifications_never_issue_twice(event, stripe):
    order_id = body(place_order(event["member"], event["community"], [(event["early"], 2)]))["id"]
    intent = stripe.succeed(intent_of(order_id))

    for event_id in ("evt_first", "evt_first", "evt_second"):  # a redelivery, then another event id
        assert deliver(stripe, "payment_intent.succeeded", intent, event_id=event_id).status_code == 200
    order = Order.objects.get(pk=order_id)
    codes = set(Ticket.objects.filter(order=order).values_list("code", flat=True))
    assert ticket_issue_for_order(actor=SYSTEM, order=order) == []  # the service itself is idempotent

    assert len(codes) == 2
    assert set(Ticket.objects.filter(order=order).values_list("code", flat=True)) == codes


def test_goods_and_unpaid_orders_have_no_tickets(event, stripe):
    goods = SkuFactory(product=ProductFactory(community=event["community"]), price=Decimal("10.00"))
    bought(stripe, event["member"], event["community"], [(goods, 3)])
    place_order(event["member"], event["community"], [(event["early"], 1)])  # never paid

    assert not Ticket.objects.exists()


def test_a_payment_after_cancellation_issues_tickets_only_for_seats_it_gets_back(event, stripe):
    from commerce.services.orders import order_cancel

    event["early"].stock = 1
    event["early"].save(update_fields=["stock"])
    late, lucky = event["member"], MembershipFactory(community=event["community"]).user
    late_id = body(place_order(late, event["community"], [(event["early"], 1)]))["id"]
    order_cancel(actor=late, order=Order.objects.get(pk=late_id))
    bought(stripe, lucky, event["community"], [(event["early"], 1)])  # the last seat

    late_order = pay(stripe, late_id)

    assert late_order.needs_review and not Ticket.objects.filter(order=late_order).exists()
    assert Ticket.objects.count() == 1  # one seat, one ticket: never oversold


def test_a_refund_reported_before_the_payment_leaves_no_valid_ticket(event, stripe):
    order_id = body(place_order(event["member"], event["community"], [(event["early"], 2)]))["id"]
    intent = stripe.succeed(intent_of(order_id))
    stripe.refund_at_provider(intent["id"], 8_000)
    assert charge_refunded(stripe, order_id).status_code == 200

    assert deliver(stripe, "payment_intent.succeeded", intent).status_code == 200

    assert statuses(Order.objects.get(pk=order_id)) == ["refunded", "refunded"]


# --- Refunds --------------------------------------------------------------------------------------


def test_a_partial_refund_refunds_whole_seats_and_a_full_refund_the_rest(event, stripe):
    order = bought(stripe, event["member"], event["community"], [(event["early"], 3)])  # 120.00

    assert refund_as_owner(event["community"].owner, order.pk, amount="50.00").status_code == 201
    assert statuses(order) == ["valid", "valid", "refunded"]  # one whole seat, the highest first
    assert refund_as_owner(event["community"].owner, order.pk).status_code == 201
    assert statuses(order) == ["refunded"] * 3
    assert Ticket.objects.filter(refunded_at__isnull=True).count() == 0
    assert AuditEntry.objects.filter(action="ticket.refunded").count() == 3


def test_a_refund_takes_valid_tickets_and_never_a_checked_in_one(event, stripe):
    owner = event["community"].owner
    order = bought(stripe, event["member"], event["community"], [(event["early"], 3)])
    seat_three = Ticket.objects.get(order=order, seat=3)
    ticket_check_in(actor=owner, community=event["community"], code=seat_three.code)

    refund_as_owner(owner, order.pk, amount="40.00")
    assert statuses(order) == ["valid", "refunded", "checked_in"]

    refund_as_owner(owner, order.pk)  # everything: the attended seat stays a record of the visit
    assert statuses(order) == ["refunded", "refunded", "checked_in"]


def test_refunded_tickets_follow_their_own_line(event, stripe):
    order = bought(stripe, event["member"], event["community"], [(event["early"], 1), (event["standard"], 2)])

    refund_as_owner(event["community"].owner, order.pk, amount="40.00")  # the first line's seat

    assert statuses(order) == ["refunded", "valid", "valid"]


# --- GET /me/tickets/ -----------------------------------------------------------------------------


def test_my_tickets_lists_one_per_seat_of_the_callers_own_orders(event, stripe):
    mine = bought(stripe, event["member"], event["community"], [(event["early"], 2)])
    stranger = MembershipFactory(community=event["community"]).user
    bought(stripe, stranger, event["community"], [(event["standard"], 1)])

    response = client_for(event["member"]).get(MY_TICKETS)

    assert response.status_code == 200
    data = body(response)
    assert data["count"] == 2 and {"next", "previous"} <= set(data)
    codes = set(Ticket.objects.filter(order=mine).values_list("code", flat=True))
    assert {row["code"] for row in data["results"]} == codes
    row = data["results"][0]
    assert row["product"] == {"id": event["product"].pk, "title": event["product"].title}
    assert row["community"] == event["community"].slug
    assert row["location"] == "杭州市西湖区" and row["status"] == "valid" and row["order"] == mine.pk
    assert datetime.fromisoformat(row["starts_at"]) == event["product"].starts_at  # an instant, any zone
    assert client_for(event["member"]).get(MY_TICKETS, {"page_size": 1}).json()["next"]
    assert client_for(UserFactory()).get(MY_TICKETS).json()["count"] == 0


def test_my_tickets_need_a_login(api_client):
    assert api_client.get(MY_TICKETS).status_code == 401


@pytest.mark.parametrize("seats", [1, 6])
def test_my_tickets_runs_the_same_queries_whatever_the_number_of_tickets(
    event, stripe, seats, django_assert_num_queries
):
    other = EventFactory(community=event["community"])
    bought(stripe, event["member"], event["community"], [(event["early"], seats)])
    bought(stripe, event["member"], event["community"], [(SkuFactory(product=other), 1)])
    client = client_for(event["member"])

    with django_assert_num_queries(3):  # the token, the count, the page
        response = client.get(MY_TICKETS)

    assert body(response)["count"] == seats + 1


# --- POST /owner/communities/{slug}/check-ins/ ---------------------------------------------------------


@pytest.fixture
def ticket(event, stripe):
    order = bought(stripe, event["member"], event["community"], [(event["early"], 2)])
    return Ticket.objects.filter(order=order).order_by("seat").first()


def test_the_owner_checks_a_ticket_in_once(event, ticket):
    owner = event["community"].owner

    first = check_in(owner, event["community"], ticket.code)
    second = check_in(owner, event["community"], ticket.code)

    assert first.status_code == 200, first.content
    assert body(first)["code"] == ticket.code and body(first)["status"] == "checked_in"
    assert body(first)["buyer"]["id"] == event["member"].pk and body(first)["checked_in_at"]
    assert second.status_code == 409 and body(second)["error"]["code"] == "already_checked_in"
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CHECKED_IN and ticket.checked_in_by == owner
    entry = AuditEntry.objects.get(action="ticket.checked_in")
    assert entry.actor == owner and entry.changes["status"] == ["valid", "checked_in"]


def test_a_code_is_read_without_case_spaces_or_dashes(event, ticket):
    typed = "-".join(ticket.code[i : i + 4] for i in range(0, 16, 4)).lower()

    response = check_in(event["community"].owner, event["community"], f" {typed} ")

    assert response.status_code == 200 and body(response)["id"] == ticket.pk


def test_unknown_codes_and_codes_of_another_community_are_not_found(event, ticket, stripe):
    other = CommunityFactory()
    other_sku = SkuFactory(product=EventFactory(community=other), price=Decimal("10.00"))
    other_order = bought(stripe, MembershipFactory(community=other).user, other, [(other_sku, 1)])
    foreign = Ticket.objects.get(order=other_order)
    owner = event["community"].owner

    for code in (foreign.code, "ABCDEFGHJKMNPQRS", "!!!"):
        response = check_in(owner, event["community"], code)
        assert response.status_code == 404 and body(response)["error"]["code"] == "not_found", code
    assert Ticket.objects.get(pk=foreign.pk).status == Ticket.Status.VALID
    empty = check_in(owner, event["community"], "")
    assert empty.status_code == 400 and "code" in body(empty)["error"]["fields"]


def test_a_refunded_ticket_is_refused(event, ticket):
    refund_as_owner(event["community"].owner, ticket.order_id)

    response = check_in(event["community"].owner, event["community"], ticket.code)

    assert response.status_code == 409 and body(response)["error"]["code"] == "ticket_refunded"
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.REFUNDED


def test_only_the_communitys_owner_and_operators_check_in(event, ticket):
    community = event["community"]
    other_owner = CommunityFactory().owner
    member = MembershipFactory(community=community).user
    operator = MembershipFactory(community=community, role=Membership.Role.OPERATOR).user

    for user in (event["member"], member, other_owner):
        response = check_in(user, community, ticket.code)
        assert response.status_code == 404 and body(response)["error"]["code"] == "not_found"
    assert client_for(UserFactory()).post(check_in_url(community), {"code": ticket.code}).status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.VALID

    assert check_in(operator, community, ticket.code).status_code == 200


# --- Two scanners at the same moment -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_scanners_at_the_same_moment_check_a_ticket_in_once(stripe):
    community = CommunityFactory()
    sku = SkuFactory(product=EventFactory(community=community), price=Decimal("30.00"))
    operator = MembershipFactory(community=community, role=Membership.Role.OPERATOR).user
    order = bought(stripe, MembershipFactory(community=community).user, community, [(sku, 1)])
    code = Ticket.objects.get(order=order).code
    barrier = Barrier(2)

    def scan(user):
        try:
            barrier.wait(timeout=30)
            return check_in(user, community, code)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(scan, [community.owner, operator]))

    assert sorted(r.status_code for r in responses) == [200, 409]
    refused = next(r for r in responses if r.status_code == 409)
    assert body(refused)["error"]["code"] == "already_checked_in"
    assert AuditEntry.objects.filter(action="ticket.checked_in").count() == 1


# --- Admin ----------------------------------------------------------------------------------------------


@pytest.fixture
def owner_admin(client, event):
    client.force_login(event["community"].owner)
    return client


CHECK_IN_PAGE = "admin:commerce_ticket_check_in"


def test_the_admin_check_in_screen_checks_a_ticket_in(owner_admin, event, ticket):
    page = owner_admin.get(reverse(CHECK_IN_PAGE))
    assert page.status_code == 200
    assert 'name="code"' in page.content.decode() and "autofocus" in page.content.decode()

    response = owner_admin.post(
        reverse(CHECK_IN_PAGE), {"community": event["community"].pk, "code": ticket.code.lower()}
    )

    assert response.status_code == 200
    assert 'data-outcome="checked_in"' in response.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.CHECKED_IN
    again = owner_admin.post(
        reverse(CHECK_IN_PAGE), {"community": event["community"].pk, "code": ticket.code}
    )
    assert 'data-outcome="already_checked_in"' in again.content.decode()


def test_the_admin_screen_refuses_another_communitys_tickets(owner_admin, event, ticket, stripe):
    other = CommunityFactory()
    other_sku = SkuFactory(product=EventFactory(community=other), price=Decimal("10.00"))
    foreign = Ticket.objects.get(
        order=bought(stripe, MembershipFactory(community=other).user, other, [(other_sku, 1)])
    )

    for community_id in (event["community"].pk, other.pk):  # the other community is not even a choice
        response = owner_admin.post(reverse(CHECK_IN_PAGE), {"community": community_id, "code": foreign.code})
        assert response.status_code == 200 and 'data-outcome="checked_in"' not in response.content.decode()
    assert Ticket.objects.get(pk=foreign.pk).status == Ticket.Status.VALID


def test_a_member_without_a_community_cannot_open_the_screen(client, event):
    member = event["member"]
    member.is_staff = True
    member.save(update_fields=["is_staff"])
    client.force_login(member)

    assert client.get(reverse(CHECK_IN_PAGE)).status_code == 403


def test_the_ticket_list_is_scoped_read_only_and_checks_in_by_its_action(owner_admin, event, ticket, stripe):
    other = CommunityFactory()
    other_sku = SkuFactory(product=EventFactory(community=other), price=Decimal("10.00"))
    bought(stripe, MembershipFactory(community=other).user, other, [(other_sku, 1)])
    url = reverse("admin:commerce_ticket_changelist")

    response = owner_admin.get(url)

    assert response.status_code == 200
    shown = list(response.context["cl"].queryset)
    assert len(shown) == 2 and {t.community_id for t in shown} == {event["community"].pk}
    assert reverse(CHECK_IN_PAGE) in response.content.decode()
    change = owner_admin.get(reverse("admin:commerce_ticket_change", args=[ticket.pk]))
    assert change.status_code == 200 and 'name="status"' not in change.content.decode()
    foreign = Ticket.objects.exclude(community=event["community"]).get()
    owner_admin.post(url, {"action": "check_in_selected", "_selected_action": [ticket.pk, foreign.pk]})
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.CHECKED_IN
    assert Ticket.objects.get(pk=foreign.pk).status == Ticket.Status.VALID


@pytest.mark.parametrize("page", ["check-in", "list"])
def test_the_ticket_pages_speak_chinese(owner_admin, ticket, page):
    from tests.test_translations import ALLOWED_WORDS, ENGLISH_PHRASE, rendered

    url = reverse(CHECK_IN_PAGE) if page == "check-in" else reverse("admin:commerce_ticket_changelist")
    text = rendered(owner_admin, url)

    phrases = [
        p for p in ENGLISH_PHRASE.findall(text) if not set(re.findall(r"[A-Za-z]+", p)) <= ALLOWED_WORDS
    ]
    assert phrases == [] and ("门票核销" in text)


def test_the_schema_describes_the_ticket_endpoints(api_client):
    schema = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    listed = schema["paths"]["/api/v1/me/tickets/"]["get"]["responses"]["200"]["content"]
    check_in_op = schema["paths"]["/api/v1/owner/communities/{slug}/check-ins/"]["post"]
    assert listed and {"200", "404", "409"} <= set(check_in_op["responses"])
    ticket = schema["components"]["schemas"]["TicketOutput"]["properties"]
    assert {"id", "code", "product", "community", "starts_at", "location", "status"} <= set(ticket)


def test_issuing_and_refunding_run_the_same_queries_for_one_seat_or_six(event, stripe):
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for seats in (1, 6):
        order_id = body(place_order(event["member"], event["community"], [(event["early"], seats)]))["id"]
        intent = stripe.succeed(intent_of(order_id))
        with CaptureQueriesContext(connection) as paying:
            deliver(stripe, "payment_intent.succeeded", intent)
        with CaptureQueriesContext(connection) as refunding:
            refund_as_owner(event["community"].owner, order_id)
        counts[seats] = (len(paying), len(refunding))
        assert statuses(Order.objects.get(pk=order_id)) == ["refunded"] * seats

    assert counts[1] == counts[6], counts
