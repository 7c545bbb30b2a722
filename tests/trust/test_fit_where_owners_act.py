"""Owners see fit warnings where they act (admin on save, list and filter, owner API); members never."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from commerce.models import Category, Product
from members.models import Membership
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory
from tests.trust.builders import committed

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_club():
    return CommunityFactory(
        name="财经频道书友会", mission="解读商业案例与投资逻辑", attributes=["财经", "投资理财"]
    )


def create_via_owner_api(community, **fields):
    body = {
        "title": "千岛湖杨梅 5斤装",
        "description": "",
        "category": "生鲜/水果",
        "tags": ["杨梅", "水果"],
        "kind": "goods",
        "skus": [{"name": "5斤装", "price": "128.00", "stock": 20}],
        **fields,
    }
    with committed():
        return client_for(community.owner).post(
            f"/api/v1/owner/communities/{community.slug}/products/", body, format="json"
        )


@pytest.mark.django_db(transaction=True)  # the request commits, so trust assesses before the answer
def test_owner_api_returns_the_fit_object_with_reasons(finance_club):
    response = create_via_owner_api(finance_club)
    assert response.status_code == 201, response.content
    fit = response.json()["fit"]
    assert set(fit) >= {"audience_match", "trust", "score", "level", "warning", "reasons"}
    assert fit["warning"] is True and fit["level"] in {"caution", "mismatch"}
    assert any("生鲜/水果" in reason for reason in fit["reasons"])

    fitting = create_via_owner_api(
        finance_club, title="《聪明的投资者》", category="图书/投资理财", tags=["价值投资"]
    )
    assert fitting.json()["fit"]["level"] == "fit" and fitting.json()["fit"]["warning"] is False

    listed = (
        client_for(finance_club.owner).get(f"/api/v1/owner/communities/{finance_club.slug}/products/").json()
    )
    assert {row["fit"]["level"] for row in listed["results"]} >= {"fit"} and len(listed["results"]) == 2


def test_english_reasons_on_request(finance_club):
    product = Product.objects.get(pk=create_via_owner_api(finance_club).json()["id"])
    client = client_for(finance_club.owner)
    url = f"/api/v1/owner/communities/{finance_club.slug}/products/"
    english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["results"][0]["fit"]["reasons"]
    chinese = client.get(url).json()["results"][0]["fit"]["reasons"]
    assert english == product.fit.reasons_en and chinese == product.fit.reasons_zh
    assert "do not cover category" in " ".join(english) and english != chinese


def test_members_never_see_the_fit(finance_club):
    product_id = create_via_owner_api(finance_club).json()["id"]
    member = MembershipFactory(community=finance_club, status=Membership.Status.ACTIVE).user
    client = client_for(member)
    listing = client.get(f"/api/v1/communities/{finance_club.slug}/products/")
    detail = client.get(f"/api/v1/communities/{finance_club.slug}/products/{product_id}/")
    assert listing.status_code == detail.status_code == 200
    assert "fit" not in listing.json()["results"][0] and "fit" not in detail.json()
    assert "score" not in str(detail.json()) and "reasons" not in str(listing.json())


def test_admin_warns_on_save_and_lists_the_level_with_a_filter(client, finance_club):
    client.force_login(finance_club.owner)
    response = client.post(
        reverse("admin:commerce_product_add"),
        {
            "community": finance_club.pk,
            "title": "法国波尔多红酒 750ml",
            "category": Category.objects.get(path="酒水/葡萄酒").pk,
            "tags_text": "红酒",
            "kind": "goods",
            "is_active": "on",
            "description": "",
            "skus-TOTAL_FORMS": "1",
            "skus-INITIAL_FORMS": "0",
            "skus-0-name": "单瓶",
            "skus-0-price": "199.00",
            "skus-0-stock": "10",
            "skus-0-is_active": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    product = Product.objects.get(title="法国波尔多红酒 750ml")
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings, [str(m) for m in get_messages(response.wsgi_request)]
    assert "财经" in warnings[0] and product.fit.warning

    changelist = reverse("admin:commerce_product_changelist")
    page = client.get(changelist).content.decode()
    assert product.fit.get_level_display() in page
    filtered = client.get(changelist, {"fit__level__exact": "fit"}).content.decode()
    assert "法国波尔多红酒" not in filtered
    flagged = client.get(changelist, {"fit__level__exact": product.fit.level}).content.decode()
    assert "法国波尔多红酒" in flagged


def _add_wine(client, community):
    return client.post(
        reverse("admin:commerce_product_add"),
        {
            "community": community.pk,
            "title": "法国波尔多红酒 750ml",
            "category": Category.objects.get(path="酒水/葡萄酒").pk,
            "tags_text": "红酒",
            "kind": "goods",
            "is_active": "on",
            "description": "",
            "skus-TOTAL_FORMS": "1",
            "skus-INITIAL_FORMS": "0",
            "skus-0-name": "单瓶",
            "skus-0-price": "199.00",
            "skus-0-initial_stock": "10",
            "skus-0-is_active": "on",
            "_continue": "1",
        },
        follow=True,
    )


def test_after_saving_the_product_page_states_the_verdict_and_lists_the_reasons(client, finance_club):
    client.force_login(finance_club.owner)

    response = _add_wine(client, finance_club)

    product = Product.objects.get(title="法国波尔多红酒 750ml")
    warning = next(str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning")
    assert "财经" in warning and "匹配度 0" not in warning and f"{product.fit.score:.2f}" not in warning
    content = response.content.decode()  # "save and continue": the product's own page
    verdict = content[content.index('class="fit-verdict"') :]
    verdict = verdict[: verdict.index("</div>")]
    items = verdict.split("<li>")[1:]
    assert len(items) == len(product.fit.reasons_zh) and "财经" in items[0]
    assert not any("匹配度 0" in item for item in items)  # the reasons in words ...
    assert f"{product.fit.score:.2f}" in verdict  # ... the scores apart
    assert "不适合" in verdict or "谨慎" in verdict
