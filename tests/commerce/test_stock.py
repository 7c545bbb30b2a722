"""Stock moves only by deltas: an admin form never writes back a figure it read earlier."""

from decimal import Decimal

import pytest
from django.forms import MultiWidget
from django.urls import reverse

from commerce.models import Sku
from tests.commerce.factories import ProductFactory, SkuFactory
from tests.commerce.flows import place_order
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
