"""Demo products and orders for the embedded default (``seed_demo``), after members' steps.

Each community gets goods that fit its audience, an event with limited
seats, and one misfit that the trust scorer should warn about (bayberries in
the finance book club, baijiu among young mothers, nappies in the running
club). The history orders were paid offline some weeks ago (back-dated, so that
repurchase reminders have something to find); entry fees of paid joins are
entry orders paid offline. With the sandbox provider on (the embedded
default), one order is bought, paid and partly refunded through it, its
payment and refund confirmed by the sandbox's notifications; refunds go
through ``refund_request``. The member login has two express orders (one
shipped, one delivered with a refund-only after-sale request waiting for the
owner); its referral commission is settled and one withdrawal waits for
finance. The finance login is put in the 财务 group and queues an export.
Idempotent: products are keyed on (community, title), orders on an
idempotency key per buyer. Communities that do not exist are skipped.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from commerce.models import AfterSale, Coupon, ExportJob, Order, Product, Refund, Sku, Withdrawal
from commerce.payments import sandbox
from commerce.payments.base import provider_configured
from commerce.reports.roles import finance_user_grant
from commerce.reports.services import export_job_create
from commerce.services.after_sales import LineQuantity, after_sale_request
from commerce.services.catalog import SkuInput, category_get_by_path, product_create
from commerce.services.checkout import order_checkout
from commerce.services.commissions import commission_settle_due
from commerce.services.coupons import coupon_create
from commerce.services.entry import entry_order_create
from commerce.services.orders import LineInput, order_create
from commerce.services.payments import payment_settle_offline
from commerce.services.refunds import refund_request
from commerce.services.shipments import order_confirm_receipt, shipment_create
from commerce.services.withdrawals import withdrawal_available, withdrawal_request
from members.models import Address, Community, EntryPlan, Membership, User
from shequn_backend.audit import SYSTEM, job_actor
from shequn_backend.calendar import business_day

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
        ("chen_jie", "价值投资入门课（12讲）", 1, 20),  # commission for li_xiaoyu, who referred him
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
# Bought now and paid through the sandbox provider (offline when it is off): (slug, buyer, title, quantity).
SANDBOX_PURCHASE = ("caijing-shuyou", "huang_lei", "月度线下读书会·上海", 2)
# (slug, buyer, product title, amount, reason): partial refunds by the owner, through refund_request.
DEMO_REFUNDS = [
    ("caijing-shuyou", "chen_jie", "《穷查理宝典》芒格的智慧箴言", "88.00", "演示：少发一本，部分退款"),
    ("caijing-shuyou", "huang_lei", "月度线下读书会·上海", "49.00", "演示：一位书友去不了，退一张票"),
]
FINANCE_LOGIN = "caiwu_zhao"
# The member login's express orders to its default address: (key, slug, buyer, title, quantity,
# days ago paid, shipped, received (None: on its way), tracking no, after-sale (reason, amount) or None).
DEMO_EXPRESS = [
    (
        "demo:express:1",
        "caijing-shuyou",
        "li_xiaoyu",
        "《穷查理宝典》芒格的智慧箴言",
        1,
        3,
        2,
        None,
        "SF1400000001",
        None,
    ),
    (
        "demo:express:2",
        "caijing-shuyou",
        "li_xiaoyu",
        "《置身事内》中国政府与经济发展",
        1,
        6,
        5,
        2,
        "SF1400000002",
        ("收到时书角压坏，申请部分退款", "20.00"),
    ),
]
# (username, amount): a withdrawal of settled commission waiting for the finance login's review.
DEMO_WITHDRAWAL = ("li_xiaoyu", Decimal("20.00"))


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


def _demo_order(
    *,
    membership: Membership,
    sku: Sku,
    quantity: int,
    key: str,
    paid_days_ago: int,
    address: Address | None = None,
) -> Order:
    """An order placed as checkout places it and paid offline ``paid_days_ago`` (shipped goods: picked
    up, or by express to ``address``); the same ``key`` again finds the same order."""
    order = order_create(
        actor=DEMO_ACTOR,
        buyer=membership.user,
        community=membership.community,
        membership=membership,
        lines=[LineInput(sku_id=sku.pk, quantity=quantity)],
        idempotency_key=key,
        address_id=address.pk if address is not None else None,
    ).order
    if order.status == Order.Status.PENDING_PAYMENT:
        with transaction.atomic():
            order = _locked(order.pk)
            paid_at = timezone.now() - timedelta(days=paid_days_ago)
            payment_settle_offline(actor=DEMO_ACTOR, order=order, reference=f"demo-{order.pk}", now=paid_at)
            Order.objects.filter(pk=order.pk).update(created_at=paid_at - timedelta(minutes=5))
    return order


def settle_entry(membership: Membership, plan: EntryPlan) -> Membership:
    """A paid join's entry fee: an entry order paid offline (the owner recorded it); activates the member."""
    order = entry_order_create(
        actor=DEMO_ACTOR, membership=membership, plan=plan, idempotency_key=f"demo:entry:{membership.pk}"
    )
    if order.status == Order.Status.PENDING_PAYMENT:
        payment_settle_offline(
            actor=DEMO_ACTOR, order=_locked(order.pk), reference=f"demo-entry-{order.pk}", now=timezone.now()
        )
    return Membership.objects.get(pk=membership.pk)


def seed_staff(ctx) -> None:
    """The finance login in the 财务 group: it reads every community's money pages and exports."""
    user = User.objects.filter(username=FINANCE_LOGIN).first()
    if user is not None:
        finance_user_grant(user=user)


def _own_transactions(step):
    """Mark a step that runs services with durable transactions of their own (not wrapped in one)."""
    step.own_transactions = True
    return step


@_own_transactions
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
    ctx.extra["orders"] = len(orders)


def _active_membership(slug: str, username: str) -> Membership | None:
    return (
        Membership.objects.select_related("user", "community")
        .filter(community__slug=slug, user__username=username, status=Membership.Status.ACTIVE)
        .first()
    )


@_own_transactions
def seed_sandbox_purchase(ctx) -> None:
    """A purchase as a member makes it: checkout, then paid at the sandbox, which notifies the payment."""
    slug, username, title, quantity = SANDBOX_PURCHASE
    membership = _active_membership(slug, username)
    sku = Sku.objects.filter(product__community__slug=slug, product__title=title).order_by("pk").first()
    if membership is None or sku is None:
        return
    if not provider_configured(sandbox.NAME):
        _demo_order(membership=membership, sku=sku, quantity=quantity, key="demo:sandbox:1", paid_days_ago=3)
        return
    result = order_checkout(
        actor=membership.user,
        buyer=membership.user,
        community=membership.community,
        lines=[LineInput(sku_id=sku.pk, quantity=quantity)],
        idempotency_key="demo:sandbox:1",
        provider_name=sandbox.NAME,
    )
    if result.order.status == Order.Status.PENDING_PAYMENT and result.payment is not None:
        sandbox.sandbox_pay(reference=result.payment.reference, payer_id=membership.user_id)


@_own_transactions
def seed_refunds(ctx) -> None:
    """Partial refunds by the owner, through the order's provider (the sandbox confirms by notification).

    An order not paid yet (with a Celery worker the sandbox notifies a moment
    later) is refunded by the next ``seed_demo`` run.
    """
    for slug, username, title, amount, reason in DEMO_REFUNDS:
        order = (
            Order.objects.filter(
                community__slug=slug, buyer__username=username, lines__sku__product__title=title
            )
            .select_related("community__owner")
            .order_by("pk")
            .first()
        )
        if order is None or order.status != Order.Status.PAID or order.refunds.exists():
            continue
        refund_request(
            actor=order.community.owner,
            order_id=order.pk,
            amount=Decimal(amount),
            reason=reason,
            source=Refund.Source.OWNER,
            idempotency_key=f"demo:refund:{order.pk}",
        )


@_own_transactions
def seed_express(ctx) -> None:
    """Express orders: shipped by the owner, one received and under a refund-only after-sale request."""
    now = timezone.now()
    for key, slug, username, title, quantity, paid, shipped, received, tracking_no, claim in DEMO_EXPRESS:
        membership = _active_membership(slug, username)
        sku = Sku.objects.filter(product__community__slug=slug, product__title=title).order_by("pk").first()
        address = Address.objects.filter(user__username=username, is_default=True).first()
        if membership is None or sku is None or address is None:
            continue
        order = _demo_order(
            membership=membership, sku=sku, quantity=quantity, key=key, paid_days_ago=paid, address=address
        )
        owner = membership.community.owner
        if not order.shipments.exists():
            shipment_create(
                actor=owner,
                order_id=order.pk,
                carrier="SF",
                tracking_no=tracking_no,
                now=now - timedelta(days=shipped),
            )
        if received is None:
            continue
        order_confirm_receipt(actor=membership.user, order_id=order.pk, now=now - timedelta(days=received))
        if claim is not None and not AfterSale.objects.filter(order=order).exists():
            reason, amount = claim
            after_sale_request(
                actor=membership.user,
                order_id=order.pk,
                type=AfterSale.Type.REFUND_ONLY,
                lines=[LineQuantity(line_id=order.lines.order_by("pk").first().pk, quantity=1)],
                reason=reason,
                amount=Decimal(amount),
                idempotency_key=f"demo:after-sale:{order.pk}",
            )


@_own_transactions
def seed_withdrawal(ctx) -> None:
    """The KOL's commission settled (the job, run now), then a withdrawal waiting for finance."""
    username, amount = DEMO_WITHDRAWAL
    user = User.objects.filter(username=username).first()
    if user is None or not user.wechat_openid:
        return
    if Withdrawal.objects.filter(user=user, idempotency_key="demo:withdrawal:1").exists():
        return
    commission_settle_due(now=timezone.now())
    if withdrawal_available(user_id=user.pk) >= amount:
        withdrawal_request(actor=user, user=user, amount=amount, idempotency_key="demo:withdrawal:1")


def seed_export(ctx) -> None:
    """The finance login's export of the last 60 days' order lines (written in the background)."""
    user = User.objects.filter(username=FINANCE_LOGIN).first()
    if user is None or ExportJob.objects.filter(requested_by=user).exists():
        return
    today = business_day(timezone.now())
    export_job_create(
        user=user, report_name="order_lines", fmt="csv", date_from=today - timedelta(days=60), date_to=today
    )


# slug -> [(name, values)]: a renewal offer (续费半价), a welcome coupon and one to claim with a code.
DEMO_COUPONS = {
    "caijing-shuyou": [
        (
            "续费半价",
            {
                "kind": "percent",
                "percent_off": Decimal("50"),
                "scope": "entry",
                "trigger": "renewal_reminder",
            },
        ),
        (
            "新人满100减20",
            {"amount_off": Decimal("20.00"), "min_spend": Decimal("100.00"), "trigger": "join"},
        ),
        (
            "书友专享满50减10",
            {"amount_off": Decimal("10.00"), "min_spend": Decimal("50.00"), "code": "SHUYOU10"},
        ),
    ],
}


def seed_coupons(ctx) -> None:
    """The demo coupons, keyed on (community, name); valid for a year from the first seeding."""
    for slug, rows in DEMO_COUPONS.items():
        community = _community(slug)
        if community is None:
            continue
        for name, values in rows:
            if not Coupon.objects.filter(community=community, name=name).exists():
                coupon_create(
                    actor=DEMO_ACTOR,
                    community=community,
                    name=name,
                    valid_until=timezone.now() + timedelta(days=365),
                    **{"kind": "amount", **values},
                )


STEPS = [
    ("finance staff", seed_staff),
    ("coupons", seed_coupons),
    ("products", seed_products),
    ("orders", seed_orders),
    ("sandbox purchase", seed_sandbox_purchase),
    ("refunds", seed_refunds),
    ("express orders and after-sales", seed_express),
    ("withdrawal", seed_withdrawal),
    ("export", seed_export),
]
