"""The owner's console in a real browser: home, refunds on a confirmation page, filters, charts."""

from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.models import Order, Refund
from commerce.services.payments import payment_record_offline
from shequn_backend.audit import SYSTEM
from tests.browser.conftest import login
from tests.commerce.factories import ProductFactory, SkuFactory, category
from tests.members.factories import PASSWORD, CommunityFactory, MembershipFactory
from tests.trust.health_histories import dying_community

pytestmark = pytest.mark.django_db(transaction=True)

FITS_THE_SCREEN = """() => {
    const table = document.querySelector("#result_list");
    return table.scrollWidth <= document.querySelector(".results").clientWidth;
}"""


def paid_offline(community, amount="99.00") -> Order:
    """An order paid in cash and recorded by staff (refunds are paid back by hand, confirmed at once)."""
    buyer = MembershipFactory(community=community).user
    order = Order.objects.create(
        community=community, buyer=buyer, kind=Order.Kind.GOODS, total=Decimal(amount)
    )
    return payment_record_offline(actor=SYSTEM, order_id=order.pk, reference="现金")


def test_owner_refunds_part_of_an_order_after_reading_what_money_will_move(page, shoot):
    community = CommunityFactory(name="财经频道书友会")
    order = paid_offline(community)
    buyer = order.buyer.nickname
    login(page, community.owner.username, PASSWORD)

    page.goto("/admin/commerce/order/")
    shoot("09-order-list")
    assert page.evaluate(FITS_THE_SCREEN)
    page.check(f"input[name=_selected_action][value='{order.pk}']")
    page.select_option("select[name=action]", "refund")
    page.click("button[name=index]")
    statement = page.wait_for_selector(f"#refund-{order.pk} .refund-statement")
    assert "¥99.00" in statement.inner_text() and buyer in statement.inner_text()
    assert "线下收款" in statement.inner_text()
    page.fill(f"#id_amount_{order.pk}", "30")
    assert "¥30.00" in statement.inner_text()  # the sentence follows the amount typed
    page.fill("#id_reason", "少发一件，按件退款")
    shoot("10-refund-confirmation")
    page.click(".submit-row input[type=submit]")

    success = page.wait_for_selector(".messagelist .success")
    assert "¥30.00" in success.inner_text() and buyer in success.inner_text()
    refund = Refund.objects.get()
    assert (refund.amount, refund.requested_by) == (Decimal("30.00"), community.owner)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED

    page.goto(f"/admin/commerce/order/{order.pk}/change/")
    assert "少发一件" in page.inner_text("#refunds-group")
    assert page.locator("#lines-group tbody tr").count() >= 0 and "发起退款" in page.inner_text(
        ".order-history"
    )
    shoot("11-order-page-after-refund")


def test_owners_home_and_the_category_drop_down(page, shoot):
    community = CommunityFactory(name="读书会")
    book = ProductFactory(
        community=community, title="一本很长很长的书名：投资理财入门与实践", category=category()
    )
    SkuFactory(product=book, price=Decimal("1234.00"))
    login(page, community.owner.username, PASSWORD)

    page.goto("/admin/")
    assert "读书会" in page.inner_text(".owner-home")
    shoot("12-owner-home")

    page.goto("/admin/commerce/product/")
    assert "¥1,234.00" in page.inner_text("#result_list")
    title_width = page.eval_on_selector("#result_list .field-title", "el => el.getBoundingClientRect().width")
    assert title_width > 150  # no more two characters a line
    assert page.evaluate(FITS_THE_SCREEN)  # every column on a 1280 px screen, with the menu open
    options = page.locator("select.dropdown-filter option")
    assert options.count() <= 3
    page.select_option("select.dropdown-filter", index=1)
    page.wait_for_url("**category__parent__id__exact=*")
    assert "一本很长很长的书名" in page.inner_text("#result_list")
    shoot("13-product-list")


def test_count_charts_tick_in_whole_numbers(page):
    community = dying_community(now=timezone.now())
    community.owner.set_password(PASSWORD)
    community.owner.save(update_fields=["password"])
    login(page, community.owner.username, PASSWORD)

    page.goto(f"/admin/members/community/{community.pk}/dashboard/")
    page.wait_for_function("() => window.shequnCharts && window.shequnCharts.length === 5")

    ticks = page.evaluate(
        "() => window.shequnCharts.slice(0, 3).map(c => c.scales.y.ticks.map(t => t.value))"
    )
    assert all(ticks) and all(float(v).is_integer() for chart in ticks for v in chart), ticks
