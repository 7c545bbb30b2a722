"""Finance (财务) reads and exports every community's money; owners only theirs; members nothing."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order
from commerce.reports.roles import FINANCE_GROUP, finance_group_ensure, finance_user_grant
from tests.commerce.reports_world import build_ledger, read_csv
from tests.members.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger(stripe):
    return build_ledger(stripe)


@pytest.fixture
def finance(client, ledger):
    client.force_login(finance_user_grant(user=UserFactory()))
    return client


def export_form(client, **fields):
    today = timezone.localdate()
    data = {
        "report": "orders",
        "date_from": (today - timedelta(days=30)).isoformat(),
        "date_to": (today + timedelta(days=1)).isoformat(),
        "fmt": "csv",
        "language": "en",
        "status": "",
        "kind": "",
        "community": "",
        **fields,
    }
    return client.post(reverse("admin:commerce_exportjob_add"), data)


def test_the_finance_group_exists_after_migrate_and_ensuring_it_again_changes_nothing(db):
    group = Group.objects.get(name=FINANCE_GROUP)
    before = set(group.permissions.values_list("codename", flat=True))

    finance_group_ensure()

    assert "export_all_communities" in before and "view_order" in before
    assert not {codename for codename in before if codename.startswith(("change_", "delete_", "add_order"))}
    assert set(Group.objects.get(name=FINANCE_GROUP).permissions.values_list("codename", flat=True)) == before


@pytest.mark.parametrize(
    ("model", "expected"), [("order", {"jia", "yi"}), ("payment", {"jia", "yi"}), ("refund", {"jia"})]
)
def test_finance_lists_every_communitys_money_rows(finance, ledger, model, expected):
    response = finance.get(reverse(f"admin:commerce_{model}_changelist"))

    assert response.status_code == 200
    communities = {
        (row.community if hasattr(row, "community") else row.order.community).slug
        for row in response.context["cl"].queryset
    }
    assert communities == expected


def test_finance_opens_any_order_read_only(finance, ledger):
    url = reverse("admin:commerce_order_change", args=[ledger["b_order"].pk])

    response = finance.get(url)

    assert response.status_code == 200
    assert not response.context["has_change_permission"] and not response.context["has_delete_permission"]
    assert finance.post(url, {}).status_code == 403
    assert finance.get(reverse("admin:commerce_order_delete", args=[ledger["b_order"].pk])).status_code == 403
    assert finance.get(reverse("admin:commerce_order_add")).status_code == 403


def test_finance_cannot_refund_or_change_orders_through_actions(finance, ledger):
    order = ledger["b_order"]

    response = finance.post(
        reverse("admin:commerce_order_changelist"),
        {
            "action": "refund",
            "_selected_action": [order.pk],
            "confirm": "yes",
            "reason": "x",
            f"amount_{order.pk}": "1.00",
        },
        follow=True,
    )

    assert response.status_code == 200
    assert not response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PAID


@pytest.mark.parametrize("page", ["commerce_product_changelist", "members_community_changelist"])
def test_finance_sees_nothing_beyond_money(finance, page):
    assert finance.get(reverse(f"admin:{page}")).status_code == 403


def test_finance_exports_every_community_from_the_screen(finance, ledger):
    response = export_form(finance)

    assert response.status_code == 200, response.content[:500]
    _header, rows, _totals = read_csv(b"".join(response.streaming_content))
    assert {row[2] for row in rows} == {"jia", "yi"}


def test_an_owner_exports_only_their_own_communities(client, ledger):
    client.force_login(ledger["b"].owner)
    ledger["b"].owner.__class__.objects.filter(pk=ledger["b"].owner.pk).update(is_staff=True)

    own = export_form(client)
    other = export_form(client, community=ledger["a"].pk)

    _header, rows, _totals = read_csv(b"".join(own.streaming_content))
    assert {row[2] for row in rows} == {"yi"}
    assert other.status_code == 200 and "community" in other.context["form"].errors


def test_a_member_cannot_reach_the_export_screen_or_the_money_pages(client, ledger):
    member = ledger["buyer"].user
    member.__class__.objects.filter(pk=member.pk).update(is_staff=True)  # even staff without a community
    client.force_login(member)

    assert client.get(reverse("admin:commerce_exportjob_add")).status_code == 403
    assert export_form(client).status_code == 403
    assert client.get(reverse("admin:commerce_exportjob_reconciliation")).status_code == 403
    assert client.get(reverse("admin:commerce_order_changelist")).status_code == 403


def test_a_non_staff_member_is_sent_to_the_admin_login(client, ledger):
    client.force_login(ledger["buyer"].user)

    response = client.get(reverse("admin:commerce_exportjob_add"))

    assert response.status_code == 302 and "login" in response["Location"]
