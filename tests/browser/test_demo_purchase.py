"""The README's demo purchase, end to end in a real browser, on the seeded demo.

The member buys from the API docs page (the page's own fetch(), as the "Try it out" buttons do),
pays at the sandbox, and the page waits until the sandbox's asynchronous notification has made
the order paid; the owner refunds part of it through the admin's confirmation page; finance
staff find the refund in the refunds export.
"""

from decimal import Decimal

import pytest
from django.utils import timezone

from commerce.models import Order, Refund
from members.demo import DEMO_PASSWORD
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_every_page import DATA_SELECTOR, VISIBLE_TEXT_JS, database_words, english_words

pytestmark = pytest.mark.django_db  # reads only: the demo is seeded and served once (conftest)

# Calls the API with the page's fetch(), the member's token once logged in; answers status and body.
API_JS = """async ([method, path, body, token, key]) => {
    const headers = {"Content-Type": "application/json", "Accept": "application/json"};
    if (token) headers["Authorization"] = "Bearer " + token;
    if (key) headers["Idempotency-Key"] = key;
    const response = await fetch("/api/v1" + path, {
        method, headers, body: body === null ? undefined : JSON.stringify(body),
    });
    return {status: response.status, body: await response.json()};
}"""

# True once the order reads ``status``: asks the API again on each poll (the page's own fetch).
ORDER_STATUS_JS = """([path, token, status]) => {
    fetch("/api/v1" + path, {headers: {"Authorization": "Bearer " + token}})
        .then(response => response.json()).then(order => { window.orderStatus = order.status; });
    return window.orderStatus === status;
}"""


def shoot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / "demo-purchase" / f"{name}.png"), full_page=True)


def call(page, method, path, body=None, *, token=None, key=None) -> dict:
    return page.evaluate(API_JS, [method, path, body, token, key])


def test_a_member_buys_and_pays_in_the_browser_the_owner_refunds_and_finance_exports_it(staff_pages):
    # The member, on the API docs page (served offline, from our static files).
    member = staff_pages(None)
    member.goto("/api/v1/docs/")
    member.wait_for_selector(".swagger-ui .opblock", state="attached")
    (ARTIFACTS / "demo-purchase").mkdir(parents=True, exist_ok=True)

    login = call(member, "POST", "/auth/login/", {"username": "li_xiaoyu", "password": DEMO_PASSWORD})
    assert login["status"] == 200, login
    token = login["body"]["token"]
    products = call(member, "GET", "/communities/caijing-shuyou/products/", token=token)
    book = next(p for p in products["body"]["results"] if p["title"].startswith("《置身事内》"))
    line = {"sku": book["skus"][0]["id"], "quantity": 1}
    placed = call(
        member,
        "POST",
        "/orders/",
        {"community": "caijing-shuyou", "lines": [line]},
        token=token,
        key="browser-demo-purchase",
    )
    assert placed["status"] == 201, placed
    order = placed["body"]
    assert order["status"] == "pending_payment" and order["payment"]["provider"] == "sandbox"

    paid = call(member, "POST", "/payments/sandbox/pay/", {"order_id": order["id"]}, token=token)
    assert paid["status"] == 202 and paid["body"]["trade_state"] == "SUCCESS", paid
    # The sandbox confirms through its signed notification: wait for the order to say so.
    member.wait_for_function(ORDER_STATUS_JS, arg=[f"/orders/{order['id']}/", token, "paid"], polling=200)
    assert Order.objects.get(pk=order["id"]).status == Order.Status.PAID
    shoot(member, "1-member-paid-from-the-api-docs-page")

    # The owner refunds part of it from the order list: the action asks amount and reason first.
    owner = staff_pages("wu_caijing")
    owner.goto(f"/admin/commerce/order/?q={order['id']}")
    owner.check(f"input[name=_selected_action][value='{order['id']}']")
    owner.select_option("select[name=action]", "refund")
    owner.click("button[name=index]")
    row = owner.wait_for_selector(f"#refund-{order['id']}")
    assert f"¥{Decimal(order['total']):,.2f}" in row.inner_text()  # refundable: everything paid
    amount = owner.locator(f"#refund-{order['id']} input")
    amount.fill("20.00")
    assert owner.inner_text(f"#refund-{order['id']} .refund-amount") == "¥20.00"  # what will move
    owner.fill("#id_reason", "书角压坏，补偿")
    shoot(owner, "2-owner-refund-confirmation")
    assert not english_words(owner.evaluate(VISIBLE_TEXT_JS, DATA_SELECTOR), database_words())
    owner.click(".submit-row input[type=submit]")
    message = owner.wait_for_selector(".messagelist .success").inner_text()
    assert f"#{order['id']}" in message and "¥20.00" in message
    shoot(owner, "3-owner-refund-sent")

    refund = Refund.objects.get(order_id=order["id"])
    assert (refund.amount, refund.reason) == (Decimal("20.00"), "书角压坏，补偿")
    assert refund.source == Refund.Source.ADMIN
    member.wait_for_function(
        ORDER_STATUS_JS, arg=[f"/orders/{order['id']}/", token, "partially_refunded"], polling=200
    )

    # Finance staff export today's refunds and find it.
    finance = staff_pages("caiwu_zhao")
    finance.goto("/admin/commerce/exportjob/add/")
    finance.select_option("#id_report", "refunds")
    today = timezone.localdate().isoformat()
    finance.fill("#id_date_from", today)
    finance.fill("#id_date_to", today)
    finance.select_option("#id_fmt", "csv")
    finance.select_option("#id_language", "zh-hans")
    shoot(finance, "4-finance-refunds-export")
    with finance.expect_download() as download:
        finance.click(".submit-row input[type=submit]")
    rows = download.value.path().read_bytes().decode("utf-8-sig").splitlines()
    ours = [row for row in rows if str(order["id"]) in row and "20.00" in row]
    assert ours and "书角压坏，补偿" in ours[0], rows[:3]
