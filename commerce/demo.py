"""Demo products and orders for the embedded default (``seed_demo``), after members' steps.

Each community gets goods that fit its audience, an event with limited
seats, and one misfit that the trust scorer should warn about (bayberries in
the finance book club, baijiu among young mothers, nappies in the running
club). Orders are paid offline (no Stripe in the embedded mode), some weeks
ago so that repurchase reminders have something to find. Idempotent: products
are keyed on (community, title), orders on an idempotency key per buyer.
Communities that do not exist are skipped.
"""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from commerce.models import Order, Product, Refund, Sku
from commerce.payments.base import ProviderRefund
from commerce.services.catalog import SkuInput, category_get_by_path, product_create
from commerce.services.orders import order_reserve_and_write
from commerce.services.payments import payment_settle_offline
from commerce.services.refunds import order_refunds_settle, refund_apply_state
from members.models import Community, Membership
from shequn_backend.audit import SYSTEM, job_actor

# slug -> [(title, category, kind, tags, [(sku name, price, stock)], extra fields)]
DEMO_PRODUCTS = {
    "caijing-shuyou": [
        ("《置身事内》中国政府与经济发展", "图书/经济管理", "goods", ["经济"], [("平装", "59.00", 200)], {}),
        ("《穷查理宝典》芒格的智慧箴言", "图书/投资理财", "goods", ["投资"], [("精装", "88.00", 150)], {}),
        (
            "价值投资入门课（12讲）",
            "课程培训/投资理财课",
            "goods",
            ["投资理财", "课程"],
            [("线上课", "299.00", 1000)],
            {},
        ),
        (
            "核心书友私享会：与作者面对面",
            "服务/线下活动",
            "event",
            ["读书会", "财经"],
            [("席位", "199.00", 12)],
            {"min_tier": 3, "location": "上海市黄浦区外滩书房", "days_ahead": 21},
        ),
        (
            "月度线下读书会·上海",
            "服务/线下活动",
            "event",
            ["读书会"],
            [("普通票", "49.00", 40), ("早鸟票", "39.00", 10)],
            {"location": "上海市静安区读书会客厅", "days_ahead": 14},
        ),
        # The misfit of the mission: the author's island bayberries, outside the trust he earned.
        (
            "千岛湖杨梅 5斤装",
            "生鲜/水果",
            "goods",
            ["杨梅", "水果", "千岛湖"],
            [("5斤礼盒", "128.00", 80)],
            {"repurchase_cycle_days": 365},
        ),
    ],
    "baoma-chengzhang": [
        (
            "有机婴童辅食米粉",
            "母婴/婴童辅食",
            "goods",
            ["辅食", "有机"],
            [("原味 400g", "69.00", 300), ("混合果蔬 400g", "79.00", 200)],
            {"repurchase_cycle_days": 30},
        ),
        ("0-3岁经典绘本套装（20册）", "图书/少儿绘本", "goods", ["绘本"], [("套装", "199.00", 60)], {}),
        (
            "亲子绘本共读会",
            "服务/线下活动",
            "event",
            ["绘本", "亲子"],
            [("亲子票（一大一小）", "39.00", 20)],
            {"location": "杭州市西湖区亲子书店", "days_ahead": 10},
        ),
        ("53度酱香型白酒 500ml", "酒水/白酒", "goods", ["白酒", "酱香"], [("单瓶", "899.00", 30)], {}),
    ],
    "chengshi-paotuan": [
        (
            "碳板竞速跑鞋",
            "运动户外/跑步装备",
            "goods",
            ["跑鞋", "马拉松"],
            [("42码", "899.00", 10), ("43码", "899.00", 10)],
            {},
        ),
        (
            "能量胶 12支装",
            "运动户外/运动营养",
            "goods",
            ["能量胶", "补给"],
            [("混合口味", "99.00", 500)],
            {"repurchase_cycle_days": 30},
        ),
        (
            "周末 LSD 长距离拉练",
            "服务/线下活动",
            "event",
            ["约跑", "长距离"],
            [("报名", "0.00", 50)],
            {"location": "上海世纪公园 3 号门", "days_ahead": 5},
        ),
        (
            "全马备赛训练营（8周）",
            "课程培训/健身训练",
            "goods",
            ["马拉松", "训练"],
            [("训练营名额", "299.00", 30)],
            {"min_tier": 2},
        ),
        ("婴儿纸尿裤 L码 52片", "母婴/纸尿裤", "goods", ["纸尿裤", "婴儿"], [("L码", "129.00", 100)], {}),
    ],
}

# slug -> [(buyer username, product title, quantity, days ago paid)]
DEMO_ORDERS = {
    "caijing-shuyou": [
        ("li_xiaoyu", "《置身事内》中国政府与经济发展", 1, 40),
        ("li_xiaoyu", "价值投资入门课（12讲）", 1, 12),
        ("chen_jie", "《穷查理宝典》芒格的智慧箴言", 2, 25),
        ("ma_chao", "千岛湖杨梅 5斤装", 1, 20),
        ("huang_lei", "月度线下读书会·上海", 2, 3),
    ],
    "baoma-chengzhang": [
        ("wang_fang", "有机婴童辅食米粉", 2, 35),
        ("zhang_min", "有机婴童辅食米粉", 1, 33),
        ("zhang_min", "有机婴童辅食米粉", 1, 2),
        ("xu_jing", "0-3岁经典绘本套装（20册）", 1, 15),
    ],
    "chengshi-paotuan": [
        ("liu_yang", "能量胶 12支装", 2, 45),
        ("zhou_ting", "能量胶 12支装", 1, 31),
        ("sun_hao", "碳板竞速跑鞋", 1, 18),
        ("huang_lei", "周末 LSD 长距离拉练", 1, 1),
    ],
}
# (slug, buyer, product title, amount): a partial refund, to show refunds in the admin and reports.
DEMO_REFUNDS = [("caijing-shuyou", "chen_jie", "《穷查理宝典》芒格的智慧箴言", "88.00")]


def _community(slug: str) -> Community | None:
    return Community.objects.filter(slug=slug).first()


def seed_products(ctx) -> None:
    now = timezone.now()
    for slug, products in DEMO_PRODUCTS.items():
        community = _community(slug)
        if community is None:
            continue
        for title, path, kind, tags, skus, extra in products:
            if Product.objects.filter(community=community, title=title).exists():
                continue
            extra = dict(extra)
            days_ahead = extra.pop("days_ahead", None)
            product_create(
                actor=SYSTEM,
                community=community,
                title=title,
                description=f"{community.name} 精选：{title}",
                category=category_get_by_path(path=path),
                kind=kind,
                tags=tags,
                skus=[SkuInput(name=name, price=Decimal(price), stock=stock) for name, price, stock in skus],
                starts_at=now + timedelta(days=days_ahead) if days_ahead else None,
                **extra,
            )
        ctx.extra.setdefault("products", {})[slug] = community.products.count()


DEMO_ACTOR = job_actor("seed_demo")


def _locked(order_id: int) -> Order:
    return Order.objects.select_for_update(of=("self",)).select_related("community", "plan").get(pk=order_id)


def _demo_order(*, membership: Membership, sku: Sku, quantity: int, key: str, paid_days_ago: int) -> Order:
    order = Order.objects.filter(buyer=membership.user, idempotency_key=key).first()
    if order is None:
        order = order_reserve_and_write(
            actor=DEMO_ACTOR,
            buyer=membership.user,
            community=membership.community,
            membership=membership,
            quantities={sku.pk: quantity},
            idempotency_key=key,
        )
    if order.status == Order.Status.PENDING_PAYMENT:
        order = _locked(order.pk)
        paid_at = timezone.now() - timedelta(days=paid_days_ago)
        payment_settle_offline(actor=DEMO_ACTOR, order=order, reference=f"demo-{order.pk}", now=paid_at)
        Order.objects.filter(pk=order.pk).update(created_at=paid_at - timedelta(minutes=5))
    return order


def _demo_refund(*, order: Order, amount: Decimal) -> None:
    if order.refunds.exists() or order.status != Order.Status.PAID:
        return
    order = _locked(order.pk)
    payment = order.payments.get(provider="offline")
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        provider="offline",
        amount=amount,
        currency=order.currency,
        source=Refund.Source.DEMO,
        reason="演示：少发一本，部分退款",
    )
    refund_apply_state(
        actor=DEMO_ACTOR,
        order=order,
        refund=refund,
        state=ProviderRefund(
            ref=f"offline-demo-{refund.pk}", status="succeeded", amount=amount, currency=order.currency
        ),
    )
    order_refunds_settle(actor=DEMO_ACTOR, order=order, confirmed=[refund])


def seed_orders(ctx) -> None:
    orders = {}
    for slug, rows in DEMO_ORDERS.items():
        community = _community(slug)
        if community is None:
            continue
        for index, (username, title, quantity, days_ago) in enumerate(rows):
            membership = (
                Membership.objects.select_related("user", "community", "tier")
                .filter(community=community, user__username=username, status=Membership.Status.ACTIVE)
                .first()
            )
            skus = Sku.objects.filter(product__community=community, product__title=title)
            sku = skus.order_by("pk").first()
            if membership is None or sku is None:
                continue
            orders[(slug, username, title)] = _demo_order(
                membership=membership,
                sku=sku,
                quantity=quantity,
                key=f"demo:{slug}:{index}",
                paid_days_ago=days_ago,
            )
    for slug, username, title, amount in DEMO_REFUNDS:
        order = orders.get((slug, username, title))
        if order is not None:
            _demo_refund(order=order, amount=Decimal(amount))
    ctx.extra["orders"] = len(orders)


STEPS = [("products", seed_products), ("orders", seed_orders)]
