import pytest
from django.core.management import call_command

from commerce.models import AfterSale, Order, Refund, Shipment, Withdrawal
from commerce.reports.roles import user_is_finance
from members.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_prints_logins(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    counts = User.objects.count()
    call_command("seed_demo")
    assert User.objects.count() == counts
    assert "admin" in first and "demo-pass-2026" in first
    assert User.objects.get(username="li_xiaoyu").interests.count() == 3
    assert User.objects.get(username="admin").is_superuser
    assert user_is_finance(user=User.objects.get(username="caiwu_zhao"))
    # the sandbox is off here (DEBUG=0): the demo purchase is paid offline; refunds go through the service
    assert Order.objects.filter(status=Order.Status.PARTIALLY_REFUNDED).count() == 2
    assert set(Refund.objects.values_list("provider", "status")) == {("offline", "succeeded")}
    # the new features' data, once: an open after-sale, a withdrawal waiting for finance
    assert AfterSale.objects.filter(status=AfterSale.Status.REQUESTED).count() == 1
    assert Withdrawal.objects.filter(status=Withdrawal.Status.REQUESTED).count() == 1
    assert Shipment.objects.count() == 2


STAFF_PAGES = {
    "caiwu_zhao": [
        "/admin/commerce/order/",
        "/admin/commerce/refund/",
        "/admin/commerce/exportjob/",
        "/admin/commerce/withdrawal/",
    ],
    "wu_caijing": ["/admin/commerce/order/", "/admin/commerce/product/", "/admin/commerce/aftersale/"],
    "qian_yunying": ["/admin/commerce/order/", "/admin/commerce/product/"],
}


def test_every_staff_login_opens_its_admin_pages(client):
    call_command("seed_demo")
    for username, pages in STAFF_PAGES.items():
        client.force_login(User.objects.get(username=username))
        for page in pages:
            response = client.get(page)
            assert response.status_code == 200, (username, page, response.status_code)
            assert "你没有查看或编辑的权限" not in response.content.decode()
