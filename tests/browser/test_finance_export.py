"""Finance staff (财务) export a report from the admin's export screen, in a real browser."""

import pytest
from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.utils import timezone

from commerce.reports.roles import finance_user_grant
from tests.browser.conftest import login
from tests.members.factories import PASSWORD, CommunityFactory, MembershipFactory, UserFactory
from tests.trust.health_histories import paid_order

pytestmark = pytest.mark.django_db(transaction=True)


def test_finance_staff_download_an_orders_export(page, shoot):
    # Permissions are made by post_migrate, which a live-server test's flush may have skipped.
    create_permissions(apps.get_app_config("commerce"), verbosity=0)
    community = CommunityFactory(name="财经频道书友会")
    order = paid_order(community, MembershipFactory(community=community), days_ago=0, now=timezone.now())
    finance = finance_user_grant(user=UserFactory(username="caiwu_zhao", nickname="赵会计"))
    login(page, finance.username, PASSWORD)

    page.goto("/admin/commerce/exportjob/add/")
    page.select_option("#id_report", "orders")
    today = timezone.localdate().isoformat()
    # Typed, as finance staff do: under zh-hans the screen renders its initial dates in a format that
    # <input type="date"> does not accept, so the fields start empty.
    page.fill("#id_date_from", today)
    page.fill("#id_date_to", today)
    page.select_option("#id_fmt", "csv")
    page.select_option("#id_language", "zh-hans")
    shoot("06-finance-export-form")
    with page.expect_download() as download_info:
        page.click(".submit-row input[type=submit]")
    download = download_info.value

    assert download.suggested_filename.endswith(".csv")
    content = download.path().read_bytes().decode("utf-8-sig")
    lines = [line for line in content.splitlines() if line.strip()]
    assert len(lines) >= 2  # a header and the order
    assert str(order.pk) in content and "99.00" in content
    shoot("07-finance-export-downloaded")
