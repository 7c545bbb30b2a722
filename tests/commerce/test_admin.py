"""The commerce admin: owners see and act on their own communities' rows only; money is read-only."""

from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from commerce.events import product_changed
from commerce.models import Category, Order, Product, Refund, Sku
from shequn_backend.models import AuditEntry
from tests.commerce.factories import ProductFactory, SkuFactory, category
from tests.commerce.flows import body, pay, place_order
from tests.members.factories import CommunityFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(stripe):
    a, b = CommunityFactory(name="A社群"), CommunityFactory(name="B社群")
    rows = {"a": a, "b": b}
    for key, community in (("a", a), ("b", b)):
        product = ProductFactory(community=community, title=f"{key.upper()}的好书")
        sku = SkuFactory(product=product, price=Decimal("50.00"))
        buyer = MembershipFactory(community=community).user
        order_id = body(place_order(buyer, community, [(sku, 1)]))["id"]
        pay(stripe, order_id)
        rows[f"{key}_product"], rows[f"{key}_order"] = product, Order.objects.get(pk=order_id)
    return rows


@pytest.fixture
def owner_a(client, world):
    client.force_login(world["a"].owner)
    return client


@pytest.mark.parametrize("model", ["product", "order", "payment", "refund"])
def test_owners_list_only_their_own_communities_rows(owner_a, world, stripe, model):
    from commerce.services.refunds import refund_request
    from shequn_backend.audit import SYSTEM

    for key in ("a", "b"):
        refund_request(actor=SYSTEM, order_id=world[f"{key}_order"].pk, amount=Decimal("1.00"), reason="x")

    response = owner_a.get(reverse(f"admin:commerce_{model}_changelist"))

    assert response.status_code == 200
    shown = list(response.context["cl"].queryset)
    assert shown, model
    for row in shown:
        community = row.community if hasattr(row, "community") else row.order.community
        assert community == world["a"]


def test_the_community_filter_offers_only_the_owners_communities(owner_a, world):
    response = owner_a.get(reverse("admin:commerce_order_changelist"))

    content = response.content.decode()
    assert "A社群" in content and "B社群" not in content


@pytest.mark.parametrize("model", ["product", "order"])
def test_crafted_ids_of_another_owner_are_not_found(owner_a, world, model):
    response = owner_a.get(reverse(f"admin:commerce_{model}_change", args=[world[f"b_{model}"].pk]))

    assert response.status_code in (302, 404)


def _refund_post(client, order_ids, **fields):
    data = {"action": "refund", "_selected_action": order_ids, "key": "page-1", **fields}
    return client.post(reverse("admin:commerce_order_changelist"), data, follow=True)


def test_the_refund_action_asks_first_and_states_what_money_will_move(owner_a, world, stripe):
    response = _refund_post(owner_a, [world["a_order"].pk, world["b_order"].pk])

    assert response.status_code == 200
    assert response.templates[0].name == "admin/commerce/order/refund_confirmation.html"
    content = response.content.decode()
    buyer = world["a_order"].buyer
    assert "¥50.00" in content and (buyer.nickname or buyer.username) in content and "Stripe" in content
    assert f'id="refund-{world["b_order"].pk}"' not in content  # another owner's order is not offered
    assert f'name="amount_{world["a_order"].pk}" value="50.00"' in content
    assert 'type="hidden" name="key"' in content
    assert not Refund.objects.exists()


def test_a_confirmed_refund_moves_the_amount_asked_with_the_reason_and_the_owner_as_actor(
    owner_a, world, stripe
):
    order = world["a_order"]

    response = _refund_post(
        owner_a,
        [order.pk, world["b_order"].pk],
        confirm="yes",
        reason="缺货",
        **{f"amount_{order.pk}": "20.00", f"amount_{world['b_order'].pk}": "50.00"},
    )

    refund = Refund.objects.get()
    assert (refund.order_id, refund.amount, refund.reason) == (order.pk, Decimal("20.00"), "缺货")
    assert refund.source == Refund.Source.ADMIN and refund.requested_by == world["a"].owner
    assert Order.objects.get(pk=order.pk).status == Order.Status.PARTIALLY_REFUNDED
    assert Order.objects.get(pk=world["b_order"].pk).status == Order.Status.PAID
    messages_shown = [str(m) for m in response.context["messages"]]
    assert any("¥20.00" in text and f"#{order.pk}" in text for text in messages_shown), messages_shown
    requested = AuditEntry.objects.get(action="order.refund_requested")
    assert requested.actor_id == world["a"].owner_id and requested.target_id == str(order.pk)


@pytest.mark.parametrize(("amount", "reason"), [("50.01", "太多"), ("0", "零"), ("20.00", "")])
def test_a_refund_beyond_the_remainder_or_without_a_reason_is_refused_on_the_page(
    owner_a, world, stripe, amount, reason
):
    order = world["a_order"]

    response = _refund_post(
        owner_a, [order.pk], confirm="yes", reason=reason, **{f"amount_{order.pk}": amount}
    )

    assert response.templates[0].name == "admin/commerce/order/refund_confirmation.html"
    assert response.context["form"].errors
    assert not Refund.objects.exists()


def test_submitting_the_confirmation_page_twice_refunds_once(owner_a, world, stripe):
    order = world["a_order"]
    fields = {"confirm": "yes", "reason": "缺货", f"amount_{order.pk}": "20.00"}

    _refund_post(owner_a, [order.pk], **fields)
    _refund_post(owner_a, [order.pk], **fields)  # back and submit again: the same page key

    assert Refund.objects.count() == 1 and len(stripe.refunds) == 1
    assert Order.objects.get(pk=order.pk).amount_refunded == Decimal("20.00")
    _refund_post(owner_a, [order.pk], **{**fields, "key": "page-2"})  # a new page: a new refund
    assert Refund.objects.count() == 2


def test_when_the_provider_does_not_answer_the_owner_is_told_what_to_do(owner_a, world, stripe):
    order = world["a_order"]
    stripe.fail_next(503, 503, 503)

    response = _refund_post(
        owner_a, [order.pk], confirm="yes", reason="缺货", **{f"amount_{order.pk}": "20.00"}
    )

    [message] = [m for m in response.context["messages"] if m.level_tag == "error"]
    assert "¥20.00" in str(message) and "Stripe" in str(message) and "不要" in str(message)
    assert Refund.objects.get().status == Refund.Status.PENDING


def test_unpaid_orders_are_not_offered_for_refund(owner_a, world, stripe):
    sku = world["a_product"].skus.get()
    buyer = MembershipFactory(community=world["a"]).user
    unpaid = body(place_order(buyer, world["a"], [(sku, 1)]))["id"]

    response = _refund_post(owner_a, [unpaid])

    assert response.templates[0].name != "admin/commerce/order/refund_confirmation.html"
    shown = list(response.context["messages"])
    assert [m.level_tag for m in shown] == ["warning"] and "退款" in str(shown[0])
    assert not Refund.objects.exists()


@pytest.mark.parametrize("who", ["owner", "superuser"])
def test_the_order_page_shows_lines_payments_refunds_and_history(client, world, stripe, who):
    from commerce.services.refunds import refund_request

    order = world["a_order"]
    refund_request(actor=world["a"].owner, order_id=order.pk, amount=Decimal("5.00"), reason="破损补偿")
    user = world["a"].owner if who == "owner" else UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)

    response = client.get(reverse("admin:commerce_order_change", args=[order.pk]))

    rows = {
        type(inline.opts).__name__: len(list(inline)) for inline in response.context["inline_admin_formsets"]
    }
    assert rows == {"OrderLineInline": 1, "PaymentInline": 1, "RefundInline": 1, "AfterSaleInline": 0}
    content = response.content.decode()
    assert order.payments.get().provider_ref in content and "破损补偿" in content
    assert "发起退款" in content and "order.refund_requested" not in content  # the history, in words
    assert 'name="lines-0-quantity"' not in content  # read-only rows, no inputs
    assert "add-row" not in content


def test_marking_orders_fulfilled_in_the_admin_is_recorded_with_the_owner(owner_a, world):
    url = reverse("admin:commerce_order_changelist")

    owner_a.post(url, {"action": "mark_fulfilled", "_selected_action": [world["a_order"].pk]}, follow=True)

    assert Order.objects.get(pk=world["a_order"].pk).status == Order.Status.FULFILLED
    entry = AuditEntry.objects.get(action="order.fulfilled")
    assert entry.actor_id == world["a"].owner_id and entry.changes["status"] == ["paid", "fulfilled"]


def test_orders_are_read_only_in_the_admin(owner_a, world):
    url = reverse("admin:commerce_order_change", args=[world["a_order"].pk])

    assert owner_a.get(url).status_code == 200
    owner_a.post(url, {"status": "cancelled", "total": "0.01"})

    order = Order.objects.get(pk=world["a_order"].pk)
    assert order.status == Order.Status.PAID and order.total == Decimal("50.00")
    assert owner_a.get(reverse("admin:commerce_order_add")).status_code == 403


def test_an_owner_lists_a_product_with_skus_inline(owner_a, world):
    data = {
        "community": world["a"].pk,
        "title": "精装投资笔记",
        "category": category().pk,
        "tags_text": "投资, 笔记，理财",
        "kind": "goods",
        "is_active": "on",
        "description": "",
        "skus-TOTAL_FORMS": "1",
        "skus-INITIAL_FORMS": "0",
        "skus-MIN_NUM_FORMS": "0",
        "skus-MAX_NUM_FORMS": "1000",
        "skus-0-name": "精装",
        "skus-0-price": "68.00",
        "skus-0-initial_stock": "12",
        "skus-0-is_active": "on",
    }

    response = owner_a.post(reverse("admin:commerce_product_add"), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    product = Product.objects.get(title="精装投资笔记")
    assert product.tags == ["投资", "笔记", "理财"] and product.community == world["a"]
    sku = Sku.objects.get(product=product)
    assert sku.price == Decimal("68.00") and sku.stock == 12
    created = AuditEntry.objects.get(action="product.created", target_id=str(product.pk))
    assert created.actor == world["a"].owner and created.community_id == world["a"].pk
    assert AuditEntry.objects.get(action="sku.created", target_id=str(sku.pk)).actor == world["a"].owner


def test_an_owner_cannot_list_a_product_in_another_community(owner_a, world):
    data = {
        "community": world["b"].pk,
        "title": "越权商品",
        "category": category().pk,
        "kind": "goods",
        "skus-TOTAL_FORMS": "0",
        "skus-INITIAL_FORMS": "0",
        "skus-MIN_NUM_FORMS": "0",
        "skus-MAX_NUM_FORMS": "1000",
    }

    response = owner_a.post(reverse("admin:commerce_product_add"), data)

    assert response.status_code == 200  # the form is shown again with an error
    assert not Product.objects.filter(title="越权商品").exists()


def test_categories_are_readable_by_owners_and_editable_by_superusers(owner_a, client, world):
    assert owner_a.get(reverse("admin:commerce_category_changelist")).status_code == 200
    assert owner_a.get(reverse("admin:commerce_category_add")).status_code == 403
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(reverse("admin:commerce_category_add")).status_code == 200


def test_superusers_see_every_community(client, world):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(reverse("admin:commerce_order_changelist"))

    assert {row.pk for row in response.context["cl"].queryset} == {world["a_order"].pk, world["b_order"].pk}


def test_staff_without_communities_see_no_commerce_pages(client, world):
    client.force_login(UserFactory(is_staff=True))

    assert client.get(reverse("admin:commerce_order_changelist")).status_code == 403


def test_owners_move_paid_orders_to_fulfilled_and_completed(owner_a, world, stripe):
    url = reverse("admin:commerce_order_changelist")
    pending = MembershipFactory(community=world["a"]).user
    sku = world["a_product"].skus.get()
    unpaid = body(place_order(pending, world["a"], [(sku, 1)]))["id"]

    owner_a.post(url, {"action": "mark_fulfilled", "_selected_action": [world["a_order"].pk, unpaid]})
    assert Order.objects.get(pk=world["a_order"].pk).status == Order.Status.FULFILLED
    assert Order.objects.get(pk=unpaid).status == Order.Status.PENDING_PAYMENT
    owner_a.post(
        url, {"action": "mark_completed", "_selected_action": [world["a_order"].pk, world["b_order"].pk]}
    )

    assert Order.objects.get(pk=world["a_order"].pk).status == Order.Status.COMPLETED
    assert Order.objects.get(pk=world["b_order"].pk).status == Order.Status.PAID


@pytest.mark.parametrize("model", ["product", "order", "payment", "refund", "category"])
def test_change_and_add_pages_render_for_owners(owner_a, world, model):
    from commerce.models import Category, Payment

    row = {
        "product": world["a_product"],
        "order": world["a_order"],
        "payment": Payment.objects.filter(order=world["a_order"]).first(),
        "refund": None,
        "category": Category.objects.get(path="生鲜/水果"),
    }[model]
    if row is not None:
        assert owner_a.get(reverse(f"admin:commerce_{model}_change", args=[row.pk])).status_code == 200
    if model == "product":
        assert owner_a.get(reverse("admin:commerce_product_add")).status_code == 200


ADD_EVENT = {
    "title": "读书会线下分享",
    "kind": "event",
    "is_active": "on",
    "description": "",
    "starts_at_0": "",
    "starts_at_1": "",
    "skus-TOTAL_FORMS": "1",
    "skus-INITIAL_FORMS": "0",
    "skus-MIN_NUM_FORMS": "0",
    "skus-MAX_NUM_FORMS": "1000",
    "skus-0-name": "门票",
    "skus-0-price": "20.00",
    "skus-0-initial_stock": "30",
    "skus-0-is_active": "on",
}


def test_a_rule_the_service_checks_appears_on_the_add_form_and_nothing_is_saved(owner_a, world):
    data = {**ADD_EVENT, "community": world["a"].pk, "category": category().pk}

    response = owner_a.post(reverse("admin:commerce_product_add"), data)

    assert response.status_code == 200
    assert "starts_at" in response.context["adminform"].form.errors
    assert (
        not Product.objects.filter(title="读书会线下分享").exists()
        and not Sku.objects.filter(name="门票").exists()
    )


def test_a_product_without_skus_is_refused_on_the_add_form(owner_a, world):
    data = {
        **ADD_EVENT,
        "community": world["a"].pk,
        "category": category().pk,
        "kind": "goods",
        "skus-TOTAL_FORMS": "0",
    }

    response = owner_a.post(reverse("admin:commerce_product_add"), data)

    assert (
        response.status_code == 200 and response.context["inline_admin_formsets"][0].formset.non_form_errors()
    )
    assert not Product.objects.filter(title="读书会线下分享").exists()


def _change_values(product, sku, **changes) -> dict:
    values = {
        "title": product.title,
        "category": product.category_id,
        "tags_text": ", ".join(product.tags),
        "kind": product.kind,
        "is_active": "on",
        "description": product.description,
        "starts_at_0": "",
        "starts_at_1": "",
        "skus-TOTAL_FORMS": "1",
        "skus-INITIAL_FORMS": "1",
        "skus-MIN_NUM_FORMS": "0",
        "skus-MAX_NUM_FORMS": "1000",
        "skus-0-id": sku.pk,
        "skus-0-product": product.pk,
        "skus-0-name": sku.name,
        "skus-0-price": str(sku.price),
        "skus-0-is_active": "on",
    }
    return {**values, **changes}


def test_an_admin_edit_goes_through_the_services_with_the_owner_as_actor(
    owner_a, world, django_capture_on_commit_callbacks
):
    product, heard = world["a_product"], []
    sku = product.skus.get()
    product_changed.connect(
        lambda sender, **kw: heard.append(kw["fields"]), weak=False, dispatch_uid="t_admin"
    )
    url = reverse("admin:commerce_product_change", args=[product.pk])

    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_a.post(
                url, _change_values(product, sku, title="A的好书 修订版", **{"skus-0-price": "45.00"})
            )
    finally:
        product_changed.disconnect(dispatch_uid="t_admin")

    assert response.status_code == 302
    owner = world["a"].owner
    assert AuditEntry.objects.get(action="product.updated").changes == {
        "title": ["A的好书", "A的好书 修订版"]
    }
    assert AuditEntry.objects.get(action="product.updated").actor == owner
    assert AuditEntry.objects.get(action="sku.price_changed", actor=owner).changes["price"] == [
        "50.00",
        "45.00",
    ]
    assert heard == [["title"]]


def test_a_listed_product_stays_in_its_community_and_cannot_be_deleted(owner_a, world):
    product = world["a_product"]
    url = reverse("admin:commerce_product_change", args=[product.pk])
    sku = product.skus.get()

    owner_a.post(url, _change_values(product, sku, community=world["b"].pk))

    assert Product.objects.get(pk=product.pk).community == world["a"]
    assert owner_a.get(reverse("admin:commerce_product_delete", args=[product.pk])).status_code == 403


def test_superusers_edit_categories_through_the_audited_services(client, world):
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    fruit = Category.objects.get(path="生鲜/水果")
    data = {
        "path": "生鲜/水果/杨梅",
        "name_zh": "杨梅",
        "name_en": "bayberry",
        "parent": fruit.pk,
        "position": 1,
    }

    response = client.post(reverse("admin:commerce_category_add"), {**data, "is_active": "on"})

    assert response.status_code == 302
    added = Category.objects.get(path="生鲜/水果/杨梅")
    assert AuditEntry.objects.get(action="category.created", target_id=str(added.pk)).actor == admin_user
    fruit_values = {"path": fruit.path, "name_zh": fruit.name_zh, "name_en": fruit.name_en, "position": 0}
    response = client.post(
        reverse("admin:commerce_category_change", args=[fruit.pk]), {**fruit_values, "parent": added.pk}
    )
    assert response.status_code == 200 and "parent" in response.context["adminform"].form.errors
    assert Category.objects.get(pk=fruit.pk).parent_id != added.pk


def test_the_product_list_shows_yuan_and_the_category_filter_as_one_drop_down(owner_a, world):
    SkuFactory(product=world["a_product"], price=Decimal("1234.00"))

    response = owner_a.get(reverse("admin:commerce_product_changelist"))

    content = response.content.decode()
    assert "¥50.00" in content and "¥1,234.00" not in content  # the lowest price, with the sign
    assert content.count('class="dropdown-filter"') == 1
    select = content[content.index('class="dropdown-filter"') :]
    select = select[: select.index("</select>")]
    assert select.count("<option") == 3  # all, the one parent category in use, top level: not 118 links
    assert "顶级" in select
    assert "commerce/admin.css" in content


def test_the_admin_stylesheet_gives_titles_room(client):
    from django.contrib.staticfiles import finders

    css = Path(finders.find("commerce/admin.css")).read_text(encoding="utf-8")
    assert "td.field-title" in css and "min-width" in css


def test_webhook_deliveries_are_for_superusers_and_finance_not_owners(owner_a, client, world):
    from commerce.reports.roles import finance_user_grant

    url = reverse("admin:commerce_webhookevent_changelist")
    assert owner_a.get(url).status_code == 403
    assert "webhookevent" not in owner_a.get(reverse("admin:index")).content.decode()
    finance = UserFactory()
    finance_user_grant(user=finance)
    for user in (finance, UserFactory(is_staff=True, is_superuser=True)):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200 and len(response.context["cl"].queryset) == 2


def test_the_minimum_tier_is_chosen_from_the_communitys_tiers(owner_a, world):
    from tests.members.factories import TierFactory

    gold = TierFactory(community=world["a"], level=2, name="金卡")
    TierFactory(community=world["b"], level=3, name="别家钻石")
    url = reverse("admin:commerce_product_change", args=[world["a_product"].pk])

    field = owner_a.get(url).context["adminform"].form.fields["min_tier"]

    labels = dict(field.choices)
    assert labels[""] and "金卡" in str(labels[2]) and 3 not in labels
    sku = world["a_product"].skus.get()
    owner_a.post(url, _change_values(world["a_product"], sku, min_tier="2"))
    assert Product.objects.get(pk=world["a_product"].pk).min_tier == gold.level
    listing = owner_a.get(reverse("admin:commerce_product_changelist")).content.decode()
    assert '<td class="field-min_tier_name">金卡</td>' in listing


def test_payments_show_provider_names_and_keep_the_raw_provider_data_from_owners(owner_a, client, world):
    from commerce.reports.roles import finance_user_grant
    from commerce.services.payments import payment_record_offline

    sku = world["a_product"].skus.get()
    buyer = MembershipFactory(community=world["a"]).user
    order_id = body(place_order(buyer, world["a"], [(sku, 1)]))["id"]
    payment_record_offline(actor=world["a"].owner, order_id=order_id, reference="现金")
    stripe_payment = world["a_order"].payments.get()

    listing = owner_a.get(reverse("admin:commerce_payment_changelist")).content.decode()
    page = owner_a.get(reverse("admin:commerce_payment_change", args=[stripe_payment.pk]))

    assert "线下收款" in listing and ">offline<" not in listing and "¥50.00" in listing
    assert "raw" not in page.context["adminform"].form.fields and "livemode" not in page.content.decode()
    finance = UserFactory()
    finance_user_grant(user=finance)
    client.force_login(finance)
    page = client.get(reverse("admin:commerce_payment_change", args=[stripe_payment.pk]))
    assert "livemode" in page.content.decode()


def test_the_history_link_opens_the_orders_audit_trail(owner_a, world):
    order = world["a_order"]

    response = owner_a.get(reverse("admin:commerce_order_history", args=[order.pk]), follow=True)

    shown = list(response.context["cl"].queryset)
    assert shown and {(entry.target_type, entry.target_id) for entry in shown} == {
        ("commerce.order", str(order.pk))
    }
    other = owner_a.get(reverse("admin:commerce_order_history", args=[world["b_order"].pk]))
    assert other.status_code == 404


def test_the_community_column_shows_only_for_those_running_several(owner_a, world):
    url = reverse("admin:commerce_order_changelist")
    assert "community" not in owner_a.get(url).context["cl"].list_display

    CommunityFactory(owner=world["a"].owner)

    assert "community" in owner_a.get(url).context["cl"].list_display
