"""Demo people and communities for the embedded default (``seed_demo``).

Everything here is idempotent: keyed on usernames and slugs, so running it
twice changes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from members import wechat
from members.models import Address, Community, EntryPlan, Membership, Tier, User
from members.services.addresses import address_create
from members.services.communities import community_create, community_set_attributes, community_update
from members.services.memberships import (
    membership_activate_paid,
    membership_approve,
    membership_join,
    membership_set_role,
)
from members.services.points import points_award
from members.services.tiers import tier_create, tier_update
from members.services.users import user_bind_wechat_session, user_set_interests
from shequn_backend.audit import SYSTEM

DEMO_PASSWORD = "demo-pass-2026"


@dataclass
class DemoContext:
    """What the demo steps hand each other and what the command prints at the end."""

    users: dict[str, User] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, password, who)
    extra: dict = field(default_factory=dict)
    # Pays a paid join's entry fee (set by the command: commerce pays it; members cannot import commerce).
    settle_entry: Callable[[Membership, EntryPlan], Membership] | None = None


# username, nickname, interests, who
DEMO_PEOPLE = [
    ("admin", "平台管理员", [], "superuser: everything"),
    ("wu_caijing", "吴老师", ["财经", "读书"], "owner of 财经频道书友会"),
    ("mama_lin", "林妈妈", ["育儿", "母婴"], "owner of 宝妈成长营"),
    ("pao_ge", "跑哥", ["跑步", "马拉松"], "owner of 城市跑团"),
    ("qian_yunying", "钱运营", ["跑步", "活动策划"], "operator of 城市跑团"),
    ("caiwu_zhao", "赵会计", [], "finance staff (财务)"),
    ("li_xiaoyu", "李晓雨", ["理财", "基金", "读书"], "member"),
    ("chen_jie", "陈杰", ["投资", "商业", "历史"], "member"),
    ("wang_fang", "王芳", ["育儿", "早教", "绘本"], "member"),
    ("zhang_min", "张敏", ["母婴", "辅食", "烘焙"], "member"),
    ("liu_yang", "刘洋", ["跑步", "健身", "越野"], "member"),
    ("zhou_ting", "周婷", ["马拉松", "瑜伽", "健康饮食"], "member"),
    ("sun_hao", "孙浩", ["摄影", "跑步", "旅行"], "member"),
    ("huang_lei", "黄磊", ["理财", "咖啡", "跑步"], "member"),
    ("xu_jing", "徐静", ["绘本", "亲子游", "烹饪"], "member"),
    ("ma_chao", "马超", ["基金", "股票", "茶"], "member"),
]
MEMBER_LOGIN_SHOWN = "li_xiaoyu"


def seed_users(ctx: DemoContext) -> None:
    for username, nickname, interests, who in DEMO_PEOPLE:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, nickname=nickname)
            user.set_password(DEMO_PASSWORD)
        user.nickname = nickname
        user.is_staff = who != "member"
        user.is_superuser = username == "admin"
        user.save()
        user_set_interests(user=user, interests=interests)
        ctx.users[username] = user
        if who != "member" or username == MEMBER_LOGIN_SHOWN:
            ctx.logins.append((username, DEMO_PASSWORD, who))


DEMO_COMMUNITIES = [
    {
        "slug": "caijing-shuyou",
        "name": "财经频道书友会",
        "owner": "wu_caijing",
        "mission": "用商业案例读懂中国经济，每周一本好书",
        "description": "财经作家主理，每周解读商业案例与投资逻辑，线下读书会每月一次。",
        "rules": "1. 只谈商业与投资，不发广告。2. 尊重不同观点。",
        "attributes": ["财经", "商业", "投资理财", "读书"],
        "entry_type": "paid",
        "plans": [{"name": "年度会员", "price": "199.00", "period_days": 365, "refund_window_days": 3}],
        "tiers": [("书友", 1, 0, "0"), ("资深书友", 2, 500, "5"), ("核心书友", 3, 2000, "10")],
        "members": ["li_xiaoyu", "chen_jie", "huang_lei", "ma_chao"],
        "referral": {"level1_percent": "10", "level2_percent": "3"},
        "return_address": "上海市黄浦区中山东一路 18 号 财经频道书友会 售后组（吴老师 13800138000）",
    },
    {
        "slug": "baoma-chengzhang",
        "name": "宝妈成长营",
        "owner": "mama_lin",
        "mission": "科学育儿，妈妈们一起成长",
        "description": "0-6 岁宝宝的妈妈互助社群：辅食、早教、绘本共读与好物团购。",
        "rules": "仅限宝妈宝爸加入，入群需审核。",
        "attributes": ["宝妈", "母婴", "育儿", "早教"],
        "entry_type": "approval",
        "plans": [],
        "tiers": [("新手妈妈", 1, 0, "0"), ("达人妈妈", 2, 300, "5")],
        "members": ["wang_fang", "zhang_min", "xu_jing"],
        "referral": {"level1_percent": "8"},
    },
    {
        "slug": "chengshi-paotuan",
        "name": "城市跑团",
        "owner": "pao_ge",
        "mission": "每周三次晨跑，一起跑完第一个全马",
        "description": "城市跑步爱好者的社群：约跑、配速训练、马拉松报名互助。",
        "rules": "约跑准时，安全第一。",
        "attributes": ["跑步", "马拉松", "健康生活"],
        "entry_type": "free",
        "plans": [],
        "tiers": [("跑者", 1, 0, "0"), ("半马跑者", 2, 200, "5"), ("全马跑者", 3, 800, "12")],
        "members": ["liu_yang", "zhou_ting", "sun_hao", "huang_lei"],
        "operators": ["qian_yunying"],
        "referral": {"level1_percent": "5"},
    },
]


def seed_tiers(community: Community, tiers: list[tuple[str, int, int, str]]) -> None:
    for name, level, threshold, discount in tiers:
        values = {"name": name, "points_threshold": threshold, "discount_percent": Decimal(discount)}
        tier = Tier.objects.filter(community=community, level=level).first()
        if tier is None:
            tier_create(actor=SYSTEM, community=community, level=level, **values)
        else:
            tier_update(actor=SYSTEM, tier=tier, **values)


def seed_member(
    community: Community, user: User, referrer: Membership | None, ctx: DemoContext | None = None
) -> Membership:
    """Join the way a member would: by referral, paying or being approved as the community requires."""
    membership = Membership.objects.filter(user=user, community=community).first()
    if membership is not None:
        return membership
    plan = community.plans.filter(is_active=True).first()
    result = membership_join(
        user=user,
        community=community,
        plan=plan if community.entry_type == Community.EntryType.PAID else None,
        referral_code=referrer.referral_code if referrer is not None else None,
    )
    membership = result.membership
    if result.needs_payment and ctx is not None and ctx.settle_entry is not None:
        membership = ctx.settle_entry(membership, plan)  # an entry order, paid (commerce's services)
    elif result.needs_payment:  # members' steps alone: no orders to pay with
        membership = membership_activate_paid(
            membership_id=membership.pk, plan=plan, paid_at=timezone.now(), actor=SYSTEM
        )
    if membership.status == Membership.Status.PENDING_APPROVAL:
        membership = membership_approve(actor=SYSTEM, membership_id=membership.pk, community=community)
    return membership


def seed_communities(ctx: DemoContext) -> None:
    for spec in DEMO_COMMUNITIES:
        owner = ctx.users[spec["owner"]]
        community = Community.objects.filter(slug=spec["slug"]).first()
        if community is None:
            community = community_create(
                actor=SYSTEM,
                owner=owner,
                slug=spec["slug"],
                name=spec["name"],
                mission=spec["mission"],
                description=spec["description"],
                rules=spec["rules"],
                attributes=spec["attributes"],
                entry_type=spec["entry_type"],
                plans=spec["plans"],
            )
        community_set_attributes(community=community, attributes=spec["attributes"], actor=SYSTEM)
        community_update(
            actor=SYSTEM,
            community=community,
            referral=spec["referral"],
            **{name: spec[name] for name in ("return_address",) if name in spec},
        )
        seed_tiers(community, spec["tiers"])
        previous = None
        for index, username in enumerate(spec["members"]):
            membership = seed_member(community, ctx.users[username], previous, ctx)
            if index == 0 and membership.role == Membership.Role.MEMBER:
                membership_set_role(actor=SYSTEM, membership=membership, role=Membership.Role.KOL)
            points_award(
                membership_id=membership.pk,
                delta=120 * (index + 1),
                reason="欢迎积分",
                idempotency_key="demo:welcome",
                actor=SYSTEM,
            )
            previous = membership  # a referral chain: each brought in the next
        for username in spec.get("operators", []):
            membership = seed_member(community, ctx.users[username], None, ctx)
            if membership.role != Membership.Role.OPERATOR:
                membership_set_role(actor=owner, membership=membership, role=Membership.Role.OPERATOR)
        ctx.extra.setdefault("communities", {})[spec["slug"]] = community


# The member login's default address, and a WeChat identity at the sandbox (withdrawals pay to it).
DEMO_ADDRESS = {
    "name": "李晓雨",
    "phone": "13900139000",
    "province": "上海市",
    "city": "上海市",
    "district": "徐汇区",
    "detail": "漕溪北路 88 号 1201 室",
}


def seed_member_login(ctx: DemoContext) -> None:
    user = User.objects.filter(username=MEMBER_LOGIN_SHOWN).first()
    if user is None:
        return
    if not Address.objects.filter(user=user).exists():
        address_create(actor=SYSTEM, user=user, is_default=True, **DEMO_ADDRESS)
    if not user.wechat_openid:
        session = wechat.WechatSession(openid=f"sandbox-openid-{user.username}")
        user_bind_wechat_session(user=user, session=session, actor=SYSTEM)


STEPS = [("users", seed_users), ("communities", seed_communities), ("member login", seed_member_login)]
