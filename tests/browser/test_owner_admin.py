"""An owner runs a community from the admin, in a real browser, as owners do."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from members.models import Community
from tests.browser.conftest import login
from tests.members.factories import PASSWORD, UserFactory
from tests.trust.health_histories import multi_centred_community

pytestmark = pytest.mark.django_db(transaction=True)

# Counts the canvas's painted pixels: more than a few hundred means axes, grid and data were drawn.
PAINTED_PIXELS_JS = """(id) => {
    const canvas = document.getElementById(id);
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) painted++; }
    return painted;
}"""


def wait_for_charts(page) -> None:
    page.wait_for_function("() => window.shequnCharts && window.shequnCharts.length === 5")


def test_owner_creates_a_paid_community_lists_a_misfit_and_sees_the_dashboard(page, shoot):
    owner = UserFactory(username="wu_caijing", nickname="吴老师", is_staff=True)
    owner.user_permissions.add(Permission.objects.get(codename="add_community"))  # a founder, by a superuser
    login(page, owner.username, PASSWORD)
    assert page.get_attribute("html", "lang") == "zh-hans"

    # A community with attributes and a paid yearly plan (the entry-plan inline).
    page.goto("/admin/members/community/add/")
    page.fill("#id_name", "财经频道书友会")
    page.fill("#id_slug", "caijing-club")
    page.select_option("#id_entry_type", "paid")
    page.fill("#id_attributes_text", "财经, 投资理财, 读书")
    page.fill("#id_mission", "解读商业案例与投资逻辑")
    page.click("#plans-group .add-row a")
    page.fill("#id_plans-0-name", "年度会员")
    page.fill("#id_plans-0-price", "199.00")
    page.fill("#id_plans-0-period_days", "365")
    shoot("01-community-form")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    community = Community.objects.get(slug="caijing-club")
    assert community.owner == owner and community.attribute_tags == ["财经", "投资理财", "读书"]
    assert community.plans.get().period_days == 365
    shoot("02-community-saved")

    # Goods that do not fit a finance community: the warning says so, and why.
    page.goto("/admin/commerce/product/add/")
    page.select_option("#id_community", label="财经频道书友会")
    page.fill("#id_title", "千岛湖杨梅 5斤装")
    page.click(".field-category .select2-selection")
    page.fill(".select2-search__field", "水果")
    page.click(".select2-results__option >> text=生鲜/水果")
    page.fill("#id_tags_text", "杨梅, 水果")
    page.click("#skus-group .add-row a")
    page.fill("#id_skus-0-name", "5斤装")
    page.fill("#id_skus-0-price", "128.00")
    page.fill("#id_skus-0-initial_stock", "20")
    page.click("input[name=_save]")
    warning = page.wait_for_selector(".messagelist .warning")
    assert "生鲜/水果" in warning.inner_text()
    shoot("03-product-fit-warning")

    # The dashboard, from the community list: figures, stage, charts drawn, the misfit listed.
    page.goto("/admin/members/community/")
    page.click("a.dashboard-link")
    wait_for_charts(page)
    assert page.eval_on_selector("#fig-active", "el => el.textContent.trim()") == "1"
    assert page.get_attribute(".dashboard-stage", "data-stage") == "initialising"
    assert "千岛湖杨梅" in page.inner_text(".dashboard-fit")
    assert page.evaluate(PAINTED_PIXELS_JS, "chart-members") > 500
    shoot("04-dashboard-new-community")


def test_the_dashboard_charts_a_grown_communitys_history(page, shoot):
    community, _ = multi_centred_community(now=timezone.now())
    community.owner.set_password(PASSWORD)
    community.owner.save(update_fields=["password"])
    login(page, community.owner.username, PASSWORD)

    page.goto(f"/admin/members/community/{community.pk}/change/")
    page.click("a.dashboard-link")
    wait_for_charts(page)

    assert page.get_attribute(".dashboard-stage", "data-stage") == "self_growing"
    assert page.inner_text("#fig-revenue") == "¥1,920.00"
    for chart in ("members", "weekly_active", "orders", "revenue", "repurchase"):
        assert page.evaluate(PAINTED_PIXELS_JS, f"chart-{chart}") > 500, chart
    points = page.evaluate("() => window.shequnCharts[0].data.datasets[0].data")
    assert len(points) == 12 and points[-1] == 49
    shoot("05-dashboard-grown-community")
