"""Stock moves only by deltas: an admin form never writes back a figure it read earlier."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.forms import MultiWidget
from django.test import Client
from django.urls import reverse

from commerce.errors import ApplicationError
from commerce.models import Sku
from commerce.services.stock import sku_stock_adjust, sku_stock_count, sku_units_held
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import place_order
from tests.commerce.test_concurrency import run_together
from tests.members.factories import CommunityFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _field_values(form) -> dict:
    """What the browser would send back for ``form``: the values the page held."""
    data = {}
    for bound in form:
        value = bound.value()
        widget = bound.field.widget
        if isinstance(widget, MultiWidget):
            for index, part in enumerate(widget.decompress(value)):
                data[f"{bound.html_name}_{index}"] = "" if part is None else part
        elif value is True:
            data[bound.html_name] = "on"
        elif value is False or value is None:
            continue
        else:
            data[bound.html_name] = value
    return data


def page_values(response) -> dict:
    """The change page's form and inline rows, as a POST would submit them unchanged."""
    data = _field_values(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(_field_values(formset.management_form))
        for form in formset.forms:
            data.update(_field_values(form))
    return data


@pytest.fixture
def shop(stripe):
    community = CommunityFactory(name="跑团")
    product = ProductFactory(community=community, title="碳板跑靴")
    sku = SkuFactory(product=product, name="42码", price=Decimal("499.00"), stock=79)
    return {"community": community, "product": product, "sku": sku}


def test_saving_a_title_typo_fix_keeps_units_sold_meanwhile(client, shop):
    # Given the owner opened the product's change page while the stock was 79
    client.force_login(shop["community"].owner)
    url = reverse("admin:commerce_product_change", args=[shop["product"].pk])
    page = client.get(url)
    values = page_values(page)
    # and a member bought 3 meanwhile
    buyer = MembershipFactory(community=shop["community"]).user
    assert place_order(buyer, shop["community"], [(shop["sku"], 3)]).status_code == 201

    # When the owner fixes the title and saves the values the page held
    values["title"] = "碳板跑鞋"
    response = client.post(url, values)

    # Then the title changed and the 3 units stay sold
    assert response.status_code == 302, response.context["adminform"].form.errors
    shop["product"].refresh_from_db()
    assert shop["product"].title == "碳板跑鞋"
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 76


def test_the_sku_inline_shows_stock_read_only_with_an_adjust_link(client, shop):
    client.force_login(shop["community"].owner)

    page = client.get(reverse("admin:commerce_product_change", args=[shop["product"].pk]))

    values = page_values(page)
    assert "skus-0-stock" not in values and "skus-0-name" in values
    adjust = reverse("admin:commerce_product_stock_adjust", args=[shop["product"].pk, shop["sku"].pk])
    assert adjust in page.content.decode()


def test_a_new_sku_added_on_the_change_page_gets_its_initial_stock(client, shop):
    client.force_login(shop["community"].owner)
    url = reverse("admin:commerce_product_change", args=[shop["product"].pk])
    values = page_values(client.get(url))
    values.update(
        {
            "skus-TOTAL_FORMS": "2",
            "skus-1-name": "43码",
            "skus-1-price": "519.00",
            "skus-1-initial_stock": "12",
            "skus-1-is_active": "on",
            "skus-1-product": shop["product"].pk,
        }
    )

    response = client.post(url, values)

    assert response.status_code == 302, response.context["inline_admin_formsets"][0].formset.errors
    added = Sku.objects.get(product=shop["product"], name="43码")
    assert added.stock == 12 and added.price == Decimal("519.00")
    entry = AuditEntry.objects.get(action="sku.created", target_id=str(added.pk))
    assert entry.actor == shop["community"].owner and entry.changes["stock"] == [None, 12]


# --- The stock services -------------------------------------------------------------------------


def test_receiving_stock_adds_the_delta_and_audits_it_with_the_actor(shop):
    owner = shop["community"].owner

    sku = sku_stock_adjust(sku_id=shop["sku"].pk, delta=20, reason="到货 20 双", actor=owner)

    assert sku.stock == 99 and Sku.objects.get(pk=shop["sku"].pk).stock == 99
    entry = AuditEntry.objects.get(action="sku.stock_adjusted")
    assert entry.actor == owner and entry.community_id == shop["community"].pk
    assert entry.changes == {"stock": [79, 99], "delta": 20} and entry.note == "到货 20 双"


def test_a_count_correction_applies_to_the_stock_as_it_is_after_a_purchase(shop):
    # Given the owner counted 70 free units and a member bought 3 before the count was saved
    buyer = MembershipFactory(community=shop["community"]).user
    assert place_order(buyer, shop["community"], [(shop["sku"], 3)]).status_code == 201

    # When the count is saved
    sku_stock_count(sku_id=shop["sku"].pk, counted=70, reason="盘点", actor=shop["community"].owner)

    # Then the stock is the counted figure and the delta was computed from 76, not 79
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 70
    assert AuditEntry.objects.get(action="sku.stock_adjusted").changes == {"stock": [76, 70], "delta": -6}


@pytest.mark.parametrize(
    "adjust",
    [
        lambda sku, owner: sku_stock_adjust(sku_id=sku.pk, delta=-80, reason="报损", actor=owner),
        lambda sku, owner: sku_stock_count(sku_id=sku.pk, counted=-1, reason="盘点", actor=owner),
    ],
)
def test_an_adjustment_below_zero_is_refused_and_changes_nothing(shop, adjust):
    with pytest.raises(ApplicationError) as refused:
        adjust(shop["sku"], shop["community"].owner)

    assert refused.value.code == "validation_error"
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 79
    assert not AuditEntry.objects.filter(action="sku.stock_adjusted").exists()


def test_units_unpaid_orders_hold_cannot_be_written_off(shop):
    # Given an unpaid order holds 70 of the 79 units
    buyer = MembershipFactory(community=shop["community"]).user
    assert place_order(buyer, shop["community"], [(shop["sku"], 70)]).status_code == 201
    assert sku_units_held(sku_id=shop["sku"].pk) == 70

    # When the owner writes off 10 units
    with pytest.raises(ApplicationError) as refused:
        sku_stock_adjust(sku_id=shop["sku"].pk, delta=-10, reason="报损", actor=shop["community"].owner)

    # Then it is refused: only 9 are free, the 70 stay with the order
    assert "70" in str(refused.value.fields["delta"][0])
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 9


def test_the_database_refuses_a_negative_stock_whatever_writes_it(shop):
    with pytest.raises(IntegrityError), transaction.atomic():
        Sku.objects.filter(pk=shop["sku"].pk).update(stock=-1)


def test_an_adjustment_needs_a_reason(shop):
    with pytest.raises(ApplicationError) as refused:
        sku_stock_adjust(sku_id=shop["sku"].pk, delta=5, reason="  ", actor=shop["community"].owner)

    assert "reason" in refused.value.fields and Sku.objects.get(pk=shop["sku"].pk).stock == 79


# --- The admin's adjust page ----------------------------------------------------------------------


def adjust_url(shop) -> str:
    return reverse("admin:commerce_product_stock_adjust", args=[shop["product"].pk, shop["sku"].pk])


def test_the_owner_receives_stock_on_the_adjust_page_and_sees_the_result(client, shop):
    client.force_login(shop["community"].owner)
    assert client.get(adjust_url(shop)).status_code == 200

    response = client.post(adjust_url(shop), {"mode": "delta", "amount": "21", "reason": "到货"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "admin:commerce_product_change", args=[shop["product"].pk]
    )
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 100
    assert any("100" in str(message) for message in response.context["messages"])
    assert AuditEntry.objects.get(action="sku.stock_adjusted").actor == shop["community"].owner


def test_the_adjust_page_shows_a_refusal_on_the_form(client, shop):
    client.force_login(shop["community"].owner)

    response = client.post(adjust_url(shop), {"mode": "counted", "amount": "-5", "reason": "盘点"})

    assert response.status_code == 200 and response.context["form"].errors["amount"]
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 79


def test_an_owner_of_another_community_cannot_reach_the_adjust_page(client, shop):
    client.force_login(CommunityFactory().owner)

    assert client.get(adjust_url(shop)).status_code in (403, 404)
    response = client.post(adjust_url(shop), {"mode": "delta", "amount": "5", "reason": "x"})

    assert response.status_code in (403, 404)
    assert Sku.objects.get(pk=shop["sku"].pk).stock == 79


def test_a_sku_of_another_product_is_not_found_through_this_products_page(client, shop):
    other = SkuFactory(product=ProductFactory(community=shop["community"]))
    client.force_login(shop["community"].owner)

    url = reverse("admin:commerce_product_stock_adjust", args=[shop["product"].pk, other.pk])

    assert client.get(url).status_code == 404


def test_the_adjust_page_needs_the_csrf_token(shop):
    client = Client(enforce_csrf_checks=True)
    client.force_login(shop["community"].owner)

    response = client.post(adjust_url(shop), {"mode": "delta", "amount": "5", "reason": "到货"})

    assert response.status_code == 403 and Sku.objects.get(pk=shop["sku"].pk).stock == 79


# --- Concurrency --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_and_purchases_never_lose_a_unit(stripe):
    # Given 100 units, 20 members buying 2 each, 10 receipts of +5 and 10 write-offs of -1, all at once
    community = CommunityFactory()
    sku = SkuFactory(product=ProductFactory(community=community), stock=100)
    owner = community.owner
    buyers = [MembershipFactory(community=community).user for _ in range(20)]
    calls = [lambda user=user: place_order(user, community, [(sku, 2)]).status_code for user in buyers]
    calls += [lambda: sku_stock_adjust(sku_id=sku.pk, delta=5, reason="到货", actor=owner).pk] * 10
    calls += [lambda: sku_stock_adjust(sku_id=sku.pk, delta=-1, reason="报损", actor=owner).pk] * 10

    # When they run together
    results = run_together(calls)

    # Then every order and every adjustment counted: 100 - 40 + 50 - 10
    assert results[:20] == [201] * 20
    assert Sku.objects.get(pk=sku.pk).stock == 100
    entries = AuditEntry.objects.filter(action="sku.stock_adjusted")
    assert entries.count() == 20
    assert sum(entry.changes["delta"] for entry in entries) == 40
