"""The catalog: categories shipped as data, member-only listings, tier prices and tier-only goods."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commerce.errors import ApplicationError
from commerce.events import product_changed
from commerce.models import Category, Product
from commerce.pricing import tier_price
from commerce.services.catalog import category_create, category_update, product_update, sku_create, sku_update
from members.models import Membership
from shequn_backend.audit import SYSTEM
from shequn_backend.models import AuditEntry
from tests.commerce.factories import EventFactory, ProductFactory, SkuFactory, category
from tests.commerce.flows import body
from tests.conftest import client_for
from tests.members.factories import CommunityFactory, MembershipFactory, TierFactory, UserFactory

pytestmark = pytest.mark.django_db


def products_url(community) -> str:
    return f"/api/v1/communities/{community.slug}/products/"


@pytest.fixture
def club():
    community = CommunityFactory(slug="paotuan")
    silver = TierFactory(community=community, level=1, points_threshold=0, discount_percent=Decimal("10"))
    gold = TierFactory(community=community, level=2, points_threshold=500, discount_percent=Decimal("20"))
    shoes = ProductFactory(community=community, title="碳板跑鞋", category=category("运动户外/跑步装备"))
    SkuFactory(product=shoes, name="42码", price=Decimal("999.00"), stock=3)
    gels = ProductFactory(community=community, title="能量胶", category=category("运动户外/运动营养"))
    SkuFactory(product=gels, name="12支装", price=Decimal("99.00"))
    gold_only = ProductFactory(community=community, title="金牌会员专享跑表", min_tier=2)
    SkuFactory(product=gold_only, price=Decimal("1999.00"))
    return {
        "community": community,
        "silver": MembershipFactory(community=community, tier=silver).user,
        "gold": MembershipFactory(community=community, tier=gold).user,
        "plain": MembershipFactory(community=community, tier=None).user,
        "shoes": shoes,
        "gels": gels,
        "gold_only": gold_only,
    }


def titles(response) -> set[str]:
    return {row["title"] for row in body(response)["results"]}


def test_the_default_category_tree_ships_as_data():
    fruit = Category.objects.get(path="生鲜/水果")

    assert fruit.name_zh == "水果" and fruit.name_en == "fruit"
    assert fruit.parent.path == "生鲜" and fruit.parent.name_en == "fresh"
    assert Category.objects.filter(parent__isnull=True).count() >= 20
    assert Category.objects.count() > 100


def test_someone_who_is_not_an_active_member_gets_403_membership_required(club):
    outsider = UserFactory()
    pending = MembershipFactory(community=club["community"], status=Membership.Status.PENDING_PAYMENT).user

    for user in (outsider, pending):
        response = client_for(user).get(products_url(club["community"]))
        assert response.status_code == 403
        assert body(response)["error"]["code"] == "membership_required"
    detail = client_for(outsider).get(f"{products_url(club['community'])}{club['gels'].pk}/")
    assert detail.status_code == 403


def test_anonymous_callers_get_401_and_unknown_communities_404(api_client, club):
    assert api_client.get(products_url(club["community"])).status_code == 401
    response = client_for(club["plain"]).get("/api/v1/communities/no-such-club/products/")
    assert response.status_code == 404 and body(response)["error"]["code"] == "not_found"


def test_tier_only_goods_are_hidden_from_lower_tiers(club):
    assert "金牌会员专享跑表" in titles(client_for(club["gold"]).get(products_url(club["community"])))
    for user in (club["silver"], club["plain"]):
        assert "金牌会员专享跑表" not in titles(client_for(user).get(products_url(club["community"])))
        detail = client_for(user).get(f"{products_url(club['community'])}{club['gold_only'].pk}/")
        assert detail.status_code == 404


def test_the_owner_sees_tier_only_goods_too(club):
    owner = club["community"].owner

    assert "金牌会员专享跑表" in titles(client_for(owner).get(products_url(club["community"])))


def test_members_see_their_tier_price_next_to_the_list_price(club):
    rows = {
        r["title"]: r
        for r in body(client_for(club["silver"]).get(products_url(club["community"])))["results"]
    }

    shoes = rows["碳板跑鞋"]
    assert shoes["price"] == "899.10" and shoes["list_price"] == "999.00" and shoes["currency"] == "CNY"
    assert shoes["skus"] == [
        {
            "id": club["shoes"].skus.get().pk,
            "name": "42码",
            "price": "899.10",
            "list_price": "999.00",
            "available": 3,
        }
    ]
    assert shoes["category"] == "运动户外/跑步装备" and shoes["kind"] == "goods" and shoes["min_tier"] is None
    plain = {
        r["title"]: r for r in body(client_for(club["plain"]).get(products_url(club["community"])))["results"]
    }
    assert plain["碳板跑鞋"]["price"] == "999.00"


@pytest.mark.parametrize(
    ("list_price", "discount", "expected"),
    [
        ("99.00", "10", "89.10"),
        ("9.99", "15", "8.49"),  # 8.4915
        ("0.05", "50", "0.03"),  # 0.025 rounds half up
        ("0.01", "33.33", "0.01"),
        ("100.00", "100", "0.00"),
        ("123.45", "0", "123.45"),
    ],
)
def test_tier_price_rounds_half_up_to_the_fen(list_price, discount, expected):
    tier = TierFactory.build(discount_percent=Decimal(discount))

    assert tier_price(list_price=Decimal(list_price), tier=tier) == Decimal(expected)
    assert tier_price(list_price=Decimal(list_price), tier=None) == Decimal(list_price)


def test_listing_filters_by_category_or_its_parent_and_by_search(club):
    client = client_for(club["gold"])

    assert titles(client.get(products_url(club["community"]), {"category": "运动户外"})) == {
        "碳板跑鞋",
        "能量胶",
    }
    assert titles(client.get(products_url(club["community"]), {"category": "运动户外/运动营养"})) == {
        "能量胶"
    }
    assert titles(client.get(products_url(club["community"]), {"search": "跑"})) == {
        "碳板跑鞋",
        "金牌会员专享跑表",
    }
    assert titles(client.get(products_url(club["community"]), {"search": "读书"})) >= {"能量胶"}  # a tag


def test_inactive_products_and_other_communities_goods_are_not_listed(club):
    ProductFactory(community=club["community"], title="下架商品", is_active=False)
    SkuFactory(product=ProductFactory(title="别的社群的书"))

    listed = titles(client_for(club["gold"]).get(products_url(club["community"])))

    assert "下架商品" not in listed and "别的社群的书" not in listed


def test_event_detail_shows_start_location_and_capacity(club):
    event = EventFactory(community=club["community"], title="周末长距离拉练", capacity=20)
    SkuFactory(product=event, name="报名", price=Decimal("0.00"), stock=20)

    response = client_for(club["plain"]).get(f"{products_url(club['community'])}{event.pk}/")

    assert response.status_code == 200
    data = body(response)
    assert data["kind"] == "event" and data["capacity"] == 20 and data["location"] == "上海市静安区"
    assert data["starts_at"] and data["description"] and data["skus"][0]["available"] == 20


@pytest.mark.parametrize("page_size", [2, 20])
def test_product_list_runs_a_constant_number_of_queries(club, page_size, django_assert_num_queries):
    for n in range(25):
        product = ProductFactory(community=club["community"], title=f"商品{n}")
        SkuFactory(product=product)
        SkuFactory(product=product, name="大包装")
    client = client_for(club["gold"])
    url = products_url(club["community"])
    client.get(url)  # warm the token cache paths

    # token + user; membership and tier, products, their count and SKUs in one
    with django_assert_num_queries(2):
        response = client.get(url, {"page_size": page_size})

    assert len(body(response)["results"]) == page_size


def test_product_list_queries_do_not_grow_with_the_page(club):
    for n in range(30):
        SkuFactory(product=ProductFactory(community=club["community"], title=f"商品{n}"))
    client = client_for(club["gold"])
    counts = []
    for page_size in (1, 30):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(products_url(club["community"]), {"page_size": page_size}).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


# --- The owner console ------------------------------------------------------------------------


def owner_products_url(community) -> str:
    return f"/api/v1/owner/communities/{community.slug}/products/"


PRODUCT = {
    "title": "千岛湖杨梅 5斤装",
    "description": "现摘现发",
    "category": "生鲜/水果",
    "tags": ["杨梅", "水果", "杨梅"],
    "kind": "goods",
    "skus": [{"name": "5斤", "price": "128.00", "stock": 50}],
    "repurchase_cycle_days": 30,
}


def test_an_owner_lists_a_product_and_gets_it_back_with_a_fit_field(club):
    response = client_for(club["community"].owner).post(
        owner_products_url(club["community"]), PRODUCT, format="json"
    )

    assert response.status_code == 201, response.content
    data = body(response)
    assert data["title"] == "千岛湖杨梅 5斤装" and data["category"] == "生鲜/水果"
    assert data["tags"] == ["杨梅", "水果"]
    assert data["skus"][0]["price"] == "128.00" and data["skus"][0]["stock"] == 50
    assert "fit" in data
    product = Product.objects.get(pk=data["id"])
    assert product.community == club["community"] and product.repurchase_cycle_days == 30
    listed = body(client_for(club["community"].owner).get(owner_products_url(club["community"])))
    assert listed["results"][0]["id"] == product.pk and "fit" in listed["results"][0]


def test_an_event_lists_its_seats_as_capacity(club):
    event = {
        **PRODUCT,
        "title": "春季马拉松训练营",
        "category": "服务/线下活动",
        "kind": "event",
        "starts_at": "2030-04-01T08:00:00+08:00",
        "location": "世纪公园",
        "skus": [
            {"name": "早鸟票", "price": "50.00", "stock": 30},
            {"name": "普通票", "price": "80.00", "stock": 20},
        ],
    }

    response = client_for(club["community"].owner).post(
        owner_products_url(club["community"]), event, format="json"
    )

    assert response.status_code == 201, response.content
    assert body(response)["capacity"] == 50 and body(response)["starts_at"].startswith("2030-04-01T")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "不存在/类目"}, "category"),
        ({"kind": "event"}, "starts_at"),
        ({"min_tier": 9}, "min_tier"),
        ({"skus": []}, "skus"),
        ({"skus": [{"name": "x", "price": "-1.00", "stock": 1}]}, "skus[0].price"),
        ({"skus": [{"name": "x", "price": "1.00", "stock": -1}]}, "skus[0].stock"),
        ({"title": ""}, "title"),
        ({"tags": "not-a-list"}, "tags"),
        ({"skus": [{"name": "x", "price": 12.3, "stock": 1}]}, "skus[0].price"),  # money is a string
        ({"kind": "event", "starts_at": "0885-02-06T19:52:45+08:05:43"}, "starts_at"),  # the fuzzer's
    ],
)
def test_invalid_products_are_refused_with_the_field_named(club, change, field):
    response = client_for(club["community"].owner).post(
        owner_products_url(club["community"]), {**PRODUCT, **change}, format="json"
    )

    assert response.status_code == 400, response.content
    assert body(response)["error"]["code"] == "validation_error"
    assert field in body(response)["error"]["fields"]
    assert not Product.objects.filter(title=PRODUCT["title"]).exists()


def test_owner_product_endpoints_of_another_community_are_not_found(club):
    other_owner = CommunityFactory().owner

    assert client_for(other_owner).get(owner_products_url(club["community"])).status_code == 404
    response = client_for(other_owner).post(owner_products_url(club["community"]), PRODUCT, format="json")
    assert response.status_code == 404
    assert client_for(club["gold"]).get(owner_products_url(club["community"])).status_code == 404


def test_listing_through_the_api_records_the_owner_on_the_audit_trail(club):
    owner = club["community"].owner

    response = client_for(owner).post(owner_products_url(club["community"]), PRODUCT, format="json")

    product_id = str(body(response)["id"])
    created = AuditEntry.objects.get(action="product.created", target_id=product_id)
    assert created.actor == owner and created.community_id == club["community"].pk
    assert created.changes["title"] == [None, "千岛湖杨梅 5斤装"]
    sku = AuditEntry.objects.get(action="sku.created")
    assert (
        sku.actor == owner and sku.changes["stock"] == [None, 50] and sku.changes["price"] == [None, "128.00"]
    )


# --- The catalog services ---------------------------------------------------------------------


@pytest.fixture
def announced():
    """What commerce announced as product_changed, as trust would hear it."""
    heard = []

    def listener(sender, **kwargs):
        heard.append(kwargs)

    product_changed.connect(listener, dispatch_uid="test_catalog_announced")
    yield heard
    product_changed.disconnect(dispatch_uid="test_catalog_announced")


def test_a_product_update_writes_the_named_fields_audits_them_and_announces_them(
    club, announced, django_capture_on_commit_callbacks
):
    owner = club["community"].owner
    shoes = club["shoes"]

    with django_capture_on_commit_callbacks(execute=True):
        product_update(
            product_id=shoes.pk,
            actor=owner,
            changes={
                "title": "碳板跑鞋 二代",
                "tags": ["跑鞋", "跑鞋", " 马拉松 "],
                "description": shoes.description,
            },
        )

    shoes.refresh_from_db()
    assert shoes.title == "碳板跑鞋 二代" and shoes.tags == ["跑鞋", "马拉松"]
    entry = AuditEntry.objects.get(action="product.updated")
    assert entry.actor == owner and entry.community_id == club["community"].pk
    assert set(entry.changes) == {"title", "tags"} and entry.changes["title"] == ["碳板跑鞋", "碳板跑鞋 二代"]
    assert announced == [
        {
            "signal": product_changed,
            "product_id": shoes.pk,
            "community_id": club["community"].pk,
            "fields": ["tags", "title"],
        }
    ]


def test_a_product_update_that_changes_nothing_records_and_announces_nothing(
    club, announced, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        product_update(product_id=club["gels"].pk, actor=SYSTEM, changes={"title": club["gels"].title})

    assert not AuditEntry.objects.filter(action="product.updated").exists() and announced == []


def test_a_product_update_breaking_a_rule_is_refused_and_saves_nothing(club):
    with pytest.raises(ApplicationError) as refused:
        product_update(
            product_id=club["gels"].pk,
            actor=club["community"].owner,
            changes={"kind": "event", "title": "新"},
        )

    assert "starts_at" in refused.value.fields
    assert Product.objects.get(pk=club["gels"].pk).title == "能量胶"
    assert not AuditEntry.objects.filter(action="product.updated").exists()


def test_a_new_price_is_audited_as_a_price_change(club):
    sku = club["shoes"].skus.get()
    owner = club["community"].owner

    sku_update(sku_id=sku.pk, actor=owner, changes={"price": Decimal("899.00"), "name": "42码 宽楦"})

    sku.refresh_from_db()
    assert sku.price == Decimal("899.00") and sku.name == "42码 宽楦" and sku.stock == 3
    price = AuditEntry.objects.get(action="sku.price_changed")
    assert price.actor == owner and price.changes == {"price": ["999.00", "899.00"], "currency": "CNY"}
    assert AuditEntry.objects.get(action="sku.updated").changes == {"name": ["42码", "42码 宽楦"]}


def test_a_sku_is_added_with_its_initial_stock_and_a_product_keeps_at_most_20(club):
    owner = club["community"].owner
    sku = sku_create(product_id=club["gels"].pk, actor=owner, name="24支装", price=Decimal("189.00"), stock=7)
    assert sku.stock == 7 and AuditEntry.objects.get(action="sku.created").actor == owner
    for n in range(18):
        sku_create(product_id=club["gels"].pk, actor=owner, name=f"规格{n}", price=Decimal("1.00"))

    with pytest.raises(ApplicationError) as refused:
        sku_create(product_id=club["gels"].pk, actor=owner, name="第21个", price=Decimal("1.00"))

    assert "skus" in refused.value.fields and club["gels"].skus.count() == 20


def test_category_changes_are_audited_and_a_category_cannot_sit_under_itself():
    admin = UserFactory(is_staff=True, is_superuser=True)
    parent = category_create(actor=admin, path="测试类目", name_zh="测试类目", name_en="test")
    child = category_create(actor=admin, path="测试类目/子类", name_zh="子类", name_en="child", parent=parent)

    category_update(category_id=parent.pk, actor=admin, changes={"name_en": "testing"})
    with pytest.raises(ApplicationError) as refused:
        category_update(category_id=parent.pk, actor=admin, changes={"parent": child})

    assert "parent" in refused.value.fields and Category.objects.get(pk=parent.pk).parent is None
    assert AuditEntry.objects.filter(action="category.created", actor=admin).count() == 2
    assert AuditEntry.objects.get(action="category.updated").changes == {"name_en": ["test", "testing"]}
