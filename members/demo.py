"""Demo people and communities for the embedded default (``seed_demo``).

Everything here is idempotent: keyed on usernames and slugs, so running it
twice changes nothing.
"""

from dataclasses import dataclass, field

from members.models import User
from members.services.users import user_set_interests

DEMO_PASSWORD = "demo-pass-2026"


@dataclass
class DemoContext:
    """What the demo steps hand each other and what the command prints at the end."""

    users: dict[str, User] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (username, password, who)
    extra: dict = field(default_factory=dict)


# username, nickname, interests, who
DEMO_PEOPLE = [
    ("admin", "平台管理员", [], "superuser: everything"),
    ("wu_caijing", "吴老师", ["财经", "读书"], "owner of 财经频道书友会"),
    ("mama_lin", "林妈妈", ["育儿", "母婴"], "owner of 宝妈成长营"),
    ("pao_ge", "跑哥", ["跑步", "马拉松"], "owner of 城市跑团"),
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


STEPS = [("users", seed_users)]
