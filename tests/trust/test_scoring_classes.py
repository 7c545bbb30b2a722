"""Issue 18: each class of misreading fixed at its cause (trust.scoring), in Traditional and
Simplified Chinese, English and mixed text. Pure Python except the lexicon-table tests at the end."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest

from shequn_backend.audit import SYSTEM
from trust import services
from trust.lexicon_store import current_lexicon
from trust.models import Domain, DomainTerm
from trust.scoring import (
    CommunityEvidence,
    ContentItem,
    Lexicon,
    ProductInput,
    SalesRecord,
    assess,
    build_profile,
    evidence_from_case,
    product_from_case,
)
from trust.scoring.engine import OFF_CATEGORY_FACTOR, product_domains
from trust.scoring.lexicon import GLUED_CHARACTER_FACTOR, normalise, simplified

DATA = Path(__file__).resolve().parent / "data"
LEXICON_JSON = Path(__file__).resolve().parents[2] / "trust" / "data" / "lexicon.json"
C = CommunityEvidence
P = ProductInput


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load()


def verdict(lexicon: Lexicon, community: CommunityEvidence, product: ProductInput):
    return assess(lexicon, build_profile(lexicon, community), product)


def tiny_lexicon(**extra_terms) -> Lexicon:
    """Three domains; ``extra_terms`` maps a term to its {domain: weight} senses."""
    terms = {
        "tea": [("普洱", 1.0), ("茶", 1.0)],
        "programming": [("编程", 1.0), ("python", 1.0)],
        "fashion": [("手包", 1.0), ("皮具", 1.0)],
    }
    for term, senses in extra_terms.items():
        for domain, weight in senses.items():
            terms[domain].append((term, weight))
    return Lexicon.from_dict(
        {
            "domains": [
                {
                    "key": key,
                    "name_zh": key,
                    "name_en": key,
                    "terms": [{"term": t, "lang": "zh", "kind": "synonym", "weight": w} for t, w in rows],
                }
                for key, rows in terms.items()
            ],
            "categories": [
                {"path": "服饰鞋包/箱包", "domains": [{"domain": "fashion", "weight": 1.0}]},
                {"path": "茶叶/普洱", "domains": [{"domain": "tea", "weight": 1.0}]},
            ],
        }
    )


# ---------------------------------------------------------------- 1. Traditional Chinese


def test_traditional_script_and_taiwan_phrases_read_as_simplified():
    assert simplified("軟體工程師") == "软件工程师"  # Taiwan phrase, not just characters
    assert simplified("腳踏車") == "自行车"
    assert simplified("單車 頭髮 烏龍茶") == "单车 头发 乌龙茶"
    assert simplified("Python 3.12") == "Python 3.12"  # no Chinese: untouched
    assert normalise("ＧＰＳ 寶媽") == "gps 宝妈"


def test_traditional_terms_entered_by_an_operator_match_simplified_text_and_back():
    tiny = Lexicon.from_dict(
        {
            "domains": [
                {
                    "key": "tea",
                    "name_zh": "茶",
                    "name_en": "Tea",
                    "terms": [{"term": "烏龍茶", "lang": "zh", "kind": "synonym", "weight": 1.0}],
                }
            ]
        }
    )
    assert tiny.match_text("乌龙茶 礼盒") == tiny.match_text("烏龍茶 禮盒") == {"tea": 1.0}
    assert "乌龙茶" in tiny.terms  # stored in one script


@pytest.mark.parametrize(
    ("community", "product", "warning"),
    [
        (
            C("腳踏車同好會", attributes=("單車", "公路車")),
            P("自行车骑行头盔", category="运动户外/骑行"),
            False,
        ),
        (C("城西讀書會", attributes=("讀書", "文學")), P("腳踏車 安全帽", category="运动户外/骑行"), True),
        (
            C("軟體工程師社群", attributes=("軟體開發", "程式設計")),
            P("《程式設計師修煉之道》", category="图书/科技编程"),
            False,
        ),
        (
            C("軟體工程師社群", attributes=("軟體開發", "程式設計")),
            P("有機高山烏龍茶 150g", category="茶叶/乌龙茶"),
            True,
        ),
        (
            C("Hiking HK 行山隊", attributes=("行山", "戶外")),
            P("Trekking poles 登山杖 一對", category="运动户外/户外装备"),
            False,
        ),
    ],
)
def test_traditional_and_mixed_texts_get_the_verdict_of_their_meaning(lexicon, community, product, warning):
    assert verdict(lexicon, community, product).warning is warning


def test_a_traditional_pair_scores_like_its_simplified_twin(lexicon):
    traditional = verdict(
        lexicon, C("台北寶媽群", attributes=("育兒", "親子")), P("嬰兒紙尿褲", category="母婴/纸尿裤")
    )
    simplified_ = verdict(
        lexicon, C("台北宝妈群", attributes=("育儿", "亲子")), P("婴儿纸尿裤", category="母婴/纸尿裤")
    )
    assert traditional.score == simplified_.score and traditional.level == "fit"


def test_assess_stays_under_one_millisecond_with_converted_texts(lexicon):
    cases = [json.loads(line) for line in (DATA / "fit_dev.jsonl").open(encoding="utf-8")]
    traditional = [
        (
            C("台北咖啡烘焙同好會", attributes=("咖啡", "手沖")),
            P("衣索比亞 耶加雪菲 淺焙咖啡豆", category="食品饮料/咖啡"),
        ),
        (C("軟體工程師社群", attributes=("軟體開發",)), P("機械鍵盤 茶軸", category="数码/电子配件")),
    ]
    pairs = [(build_profile(lexicon, c), p) for c, p in traditional] + [
        (build_profile(lexicon, evidence_from_case(c["community"])), product_from_case(c["product"]))
        for c in cases
    ]
    for profile, product in pairs:  # first sight converts and caches each text
        assess(lexicon, profile, product)
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for profile, product in pairs:
            assess(lexicon, profile, product)
        runs.append((time.perf_counter() - start) * 1000 / len(pairs))
    assert statistics.median(runs) < 1.0


# ---------------------------------------------------------------- 2. words read in context


def test_a_word_of_unrelated_senses_has_several_sense_groups(lexicon):
    assert len(lexicon.sense_groups("苹果")) == 2  # phones, fruit
    assert len(lexicon.sense_groups("自驾")) == 1  # cars and outdoor: one sense
    assert len(lexicon.sense_groups("瑜伽")) == 1  # fitness and mind share a neighbour (health)


def test_the_category_decides_which_sense_a_word_carries():
    tiny = tiny_lexicon(python={"fashion": 0.5})
    bag = product_domains(tiny, P("Python 手包", category="服饰鞋包/箱包"))
    assert "programming" not in bag and bag["fashion"] == 1.0
    course = product_domains(tiny, P("Python 编程入门"))
    assert "programming" in course and "fashion" not in course  # the rest of the text decides


def test_a_word_whose_senses_all_contradict_the_category_cannot_outvote_it():
    tiny = tiny_lexicon(python={"fashion": 0.5})  # two senses: the language, python-skin leather
    cake = product_domains(tiny, P("Python 普洱茶饼", category="茶叶/普洱"))
    assert cake["tea"] == 1.0
    assert 0 < cake["programming"] == pytest.approx(0.9 * OFF_CATEGORY_FACTOR)  # counted, below the category


def test_a_one_character_word_glued_into_a_name_counts_half(lexicon):
    assert dict(lexicon.hits("猫小胖牌 辣条"))["猫"] == GLUED_CHARACTER_FACTOR
    assert dict(lexicon.hits("猫 抓板"))["猫"] == 1.0


@pytest.mark.parametrize(
    ("community", "product", "warning"),
    [
        (
            C("烟台果园直供群", attributes=("水果", "产地直发")),
            P("苹果 iPhone 15 手机壳", category="数码/电子配件"),
            True,
        ),
        (
            C("烟台果园直供群", attributes=("水果", "产地直发")),
            P("烟台红富士苹果 5斤", category="生鲜/水果"),
            False,
        ),
        (C("果粉俱乐部", attributes=("iPhone", "数码")), P("烟台苹果 5斤装", category="生鲜/水果"), True),
        (
            C("果粉俱樂部", attributes=("iPhone", "數碼")),
            P("蘋果 AirPods Pro 2", category="数码/耳机音响"),
            False,
        ),
        (
            C("五谷杂粮铺", attributes=("粗粮", "健康饮食")),
            P("沁州黄小米 2.5kg", category="食品饮料/粮油调味"),
            False,
        ),
        (C("五谷杂粮铺", attributes=("粗粮", "健康饮食")), P("小米 14 Pro 手机", category="数码/手机"), True),
        (
            C("Python Developers", attributes=("Python", "programming")),
            P("Python 蟒纹真皮手包", category="服饰鞋包/箱包"),
            True,
        ),
        (
            C("Orchard Fruit Club", attributes=("fruit", "orchard")),
            P("Apple Watch Series 10 sport band", category="数码/智能手表"),
            True,
        ),
        (C("猫奴俱乐部", attributes=("养猫", "猫咪")), P("猫山王榴莲 400g", category="生鲜/水果"), True),
        (C("猫奴俱乐部", attributes=("养猫", "猫咪")), P("冻干猫粮 1.5kg", category="宠物/猫粮"), False),
    ],
)
def test_words_with_several_senses_follow_the_category(lexicon, community, product, warning):
    assert verdict(lexicon, community, product).warning is warning


def test_a_fan_clubs_nickname_is_read_in_the_sense_of_its_attributes(lexicon):
    fans = C("米粉之家", attributes=("小米", "数码", "手机"))
    profile = build_profile(lexicon, fans)
    assert "food" not in profile.declared and profile.declared["digital"] == 1.0
    assert verdict(lexicon, fans, P("桂林米粉 10袋装", category="食品饮料/休闲零食")).warning
    assert not verdict(lexicon, fans, P("小米手环 9", category="数码/智能手表")).warning


# ---------------------------------------------------------------- 3. brands as data


def test_the_lexicon_ships_hundreds_of_brands_across_the_domains():
    data = json.loads(LEXICON_JSON.read_text(encoding="utf-8"))
    brands = [(d["key"], t["term"]) for d in data["domains"] for t in d["terms"] if t["kind"] == "brand"]
    assert len({term.lower() for _, term in brands}) >= 300
    assert len({key for key, _ in brands}) >= 38
    merch = [t["term"] for d in data["domains"] for t in d["terms"] if t["kind"] == "merch"]
    assert {"T恤", "帆布袋", "sticker", "ticket"} <= set(merch)


def test_a_brand_names_the_domain_of_its_goods_even_without_a_category(lexicon):
    assert lexicon.match_text("兰蔻小黑瓶") == {"beauty": 1.0}
    assert "兰蔻" in lexicon.brands
    serum = P("兰蔻小黑瓶精华 30ml")
    assert not verdict(lexicon, C("护肤研究所", attributes=("护肤", "美妆")), serum).warning
    assert verdict(lexicon, C("价值投资读书会", attributes=("财经", "投资理财")), serum).warning
    assert verdict(
        lexicon, C("一壺茶社", attributes=("茶文化", "普洱")), P("茅台 飛天 53度", category="酒水/白酒")
    ).warning


def test_a_sportswear_brand_keeps_its_sport_when_the_text_says_so(lexicon):
    runners = C("滨江夜跑团", attributes=("跑步", "马拉松"))
    assert not verdict(lexicon, runners, P("安踏 C202 竞速跑鞋", category="服饰鞋包/鞋靴")).warning


def test_merchandise_words_are_not_audience_words(lexicon):
    assert "帆布袋" in lexicon.merch and "帆布袋" not in lexicon.terms  # a tote says nothing of its buyers
    assert set(lexicon.merch_words("Club tee and sticker pack")) == {"tee", "sticker"}


# ---------------------------------------------------------------- 4. members' interests


READING = ("读书", "文学")
BEANS = P("云南小粒咖啡豆 500g", category="食品饮料/咖啡")


def test_a_broad_interest_earns_a_fit_on_its_own(lexicon):
    club = C("城西读书会", attributes=READING, member_interests={"读书": 420, "咖啡": 300})
    result = verdict(lexicon, club, BEANS)
    assert result.level == "fit"
    assert build_profile(lexicon, club).standing["coffee"] >= 0.5
    assert any("成员兴趣" in r for r in result.reasons_zh[:-1])
    assert any("members' interests" in r for r in result.reasons_en[:-1])


def test_a_narrow_interest_raises_the_match_but_not_trust(lexicon):
    narrow = C("城西读书会", attributes=READING, member_interests={"读书": 2000, "咖啡": 300})
    bare = C("城西读书会", attributes=READING)
    with_interest, without = verdict(lexicon, narrow, BEANS), verdict(lexicon, bare, BEANS)
    assert with_interest.warning and with_interest.audience_match > without.audience_match
    assert "coffee" not in build_profile(lexicon, narrow).standing


def test_a_large_share_of_few_members_is_not_broad(lexicon):
    few = C("城西读书会", attributes=READING, member_interests={"读书": 10, "咖啡": 8})
    assert verdict(lexicon, few, BEANS).warning


def test_broad_interests_in_english_and_traditional(lexicon):
    daypack = P("Lightweight hiking daypack, 22 L", category="运动户外/户外装备")
    broad = C("Brooklyn Book Club", attributes=("books",), member_interests={"reading": 400, "hiking": 300})
    narrow = C("Brooklyn Book Club", attributes=("books",), member_interests={"reading": 3000, "hiking": 300})
    assert not verdict(lexicon, broad, daypack).warning
    assert verdict(lexicon, narrow, daypack).warning
    parents = C("台北新手爸媽群", attributes=("育兒",), member_interests={"育兒": 380, "露營": 300})
    assert not verdict(lexicon, parents, P("四人家庭 露營帳篷", category="运动户外/露营")).warning


# ---------------------------------------------------------------- 5. the community's own goods


TEA_HOUSE = C("一壶茶社", attributes=("茶文化", "普洱"))


@pytest.mark.parametrize(
    ("community", "product"),
    [
        (TEA_HOUSE, P("一壶茶社 定制帆布袋", category="服饰鞋包/箱包")),
        (TEA_HOUSE, P("一壺茶社 帆布袋", category="服饰鞋包/箱包")),  # Traditional
        (C("城西读书会", attributes=READING), P("城西读书会 年度读书之夜 门票", category="服务/线下活动")),
        (
            C("Shanghai Trail Runners", attributes=("trail running",)),
            P("Shanghai Trail Runners club tee", category="服饰鞋包/男装"),
        ),
        (
            C("NYRR Running Club", attributes=("running",)),
            P("NYRR finisher sticker pack", category="办公文具/文具"),
        ),
        (
            C("阿强的朋友们"),
            P("阿强的朋友们 纪念T恤", category="服饰鞋包/男装"),
        ),  # even when nothing else is readable
    ],
)
def test_goods_that_carry_the_communitys_name_are_its_own(lexicon, community, product):
    result = verdict(lexicon, community, product)
    assert result.level == "fit"
    assert community.name in result.reasons_zh[0] and "own" in result.reasons_en[0]


def test_the_name_alone_or_the_goods_alone_are_not_own_merchandise(lexicon):
    assert verdict(lexicon, TEA_HOUSE, P("棉麻帆布袋", category="服饰鞋包/箱包")).warning
    assert verdict(lexicon, TEA_HOUSE, P("一壶茶社 推荐 飞天茅台", category="酒水/白酒")).warning


def test_a_domain_word_is_not_a_distinctive_name(lexicon):
    runners = C("跑步俱乐部", attributes=("跑步",))
    assert build_profile(lexicon, runners).own_names == ("跑步俱乐部",)
    assert build_profile(lexicon, C("AFOL 乐高成人玩家")).own_names[-1] == "afol"


def test_own_goods_rest_on_the_communitys_standing(lexicon):
    burnt = C(
        "一壶茶社",
        attributes=("茶文化", "普洱"),
        sales=(SalesRecord("茶叶/普洱", orders=600, buyers=580, repeat_buyers=3, refunds=200),),
    )
    result = verdict(lexicon, burnt, P("一壶茶社 定制帆布袋", category="服饰鞋包/箱包"))
    assert result.warning and "信任受损" in result.reasons_zh[0]


# ---------------------------------------------------------------- 6. honest uncertainty


@pytest.mark.parametrize("name", ["阿强的朋友们", "The Crew", "好友團 2024", "Fam 一家人 🏠"])
def test_a_community_we_cannot_read_gets_caution_not_a_confident_mismatch(lexicon, name):
    community = C(name, attributes=("快乐", "分享"))
    profile = build_profile(lexicon, community)
    assert not profile.readable
    for product in (
        P("冻干猫粮 1.5kg", category="宠物/猫粮"),
        P("Carbon plate racing shoes", category="运动户外/跑步装备"),
    ):
        result = assess(lexicon, profile, product)
        assert result.level == "caution"
        assert "无法识别本社群的属性" in result.reasons_zh[0]
        assert "could not read this community's attributes" in result.reasons_en[0]


def test_evidence_makes_a_community_readable(lexicon):
    community = C("阿强的朋友们", content=(ContentItem("手冲咖啡入门", ("咖啡",)),))
    assert build_profile(lexicon, community).readable


# ---------------------------------------------------------------- 7. reasons agree with the verdict

FIT_AGAINST_ZH = ("信任受损", "无关联", "仅部分相关", "无内容与复购记录", "建议谨慎", "无法识别")
WARNING_AGAINST_ZH = ("相符", "适合在本社群上架", "复购良好", "主业", "显示成员买")
FIT_AGAINST_EN = (
    "trust damaged",
    "do not cover",
    "only loosely",
    "no content and no repurchase",
    "list with care",
)
WARNING_AGAINST_EN = ("fits", "healthy repurchase", "declared field", "show members buy")


def contradictions(result) -> list[str]:
    """Reasons that speak for the other verdict without saying 'despite'."""
    found = []
    for reasons, despite, against in (
        (result.reasons_zh, "尽管", WARNING_AGAINST_ZH if result.warning else FIT_AGAINST_ZH),
        (result.reasons_en, "Despite", WARNING_AGAINST_EN if result.warning else FIT_AGAINST_EN),
    ):
        found += [r for r in reasons if not r.startswith(despite) and any(a in r for a in against)]
    return found


def test_a_fit_despite_one_damaged_record_says_despite_after_the_deciding_evidence(lexicon):
    runners = C(
        "滨江夜跑团",
        attributes=("跑步", "马拉松"),
        content=tuple(ContentItem(f"马拉松训练第 {i} 课", ("跑步",)) for i in range(8)),
        sales=(SalesRecord("运动户外/跑步装备", orders=70, buyers=70, repeat_buyers=2, refunds=25),),
    )
    result = verdict(lexicon, runners, P("碳板竞速跑鞋", category="运动户外/跑步装备"))
    assert result.level == "fit"
    assert contradictions(result) == []
    assert result.reasons_zh[-1].endswith("适合在本社群上架")
    despite = [r for r in result.reasons_zh if r.startswith("尽管")]
    assert despite and "退款率 35.7%" in despite[0] and "信任受损" not in despite[0]
    assert result.reasons_zh.index(despite[0]) > 0


def test_a_caution_from_refunds_leads_with_the_refunds_not_the_matching_field(lexicon):
    burnt = C(
        "21天减脂营",
        attributes=("健身", "减脂"),
        sales=(SalesRecord("医药保健/代餐", orders=420, buyers=400, repeat_buyers=6, refunds=130),),
    )
    result = verdict(lexicon, burnt, P("减脂代餐奶昔", category="医药保健/代餐", tags=("代餐",)))
    assert result.level == "caution"
    assert "信任受损" in result.reasons_zh[0] and "trust damaged" in result.reasons_en[0]
    assert contradictions(result) == []
    assert any(r.startswith("尽管商品类目") and "相符" in r for r in result.reasons_zh)


@pytest.mark.parametrize(
    "cases", ["fit_dev.jsonl", "fit_extra.jsonl", "fit_unseen.jsonl", "fit_holdout.jsonl"]
)
def test_no_reason_contradicts_its_verdict_on_the_labelled_sets(lexicon, cases):
    for line in (DATA / cases).open(encoding="utf-8"):
        case = json.loads(line)
        result = verdict(lexicon, evidence_from_case(case["community"]), product_from_case(case["product"]))
        assert contradictions(result) == [], case["id"]
        assert len(result.reasons_zh) == len(result.reasons_en)


# ---------------------------------------------------------------- the lexicon tables (admin-edited)


@pytest.mark.django_db
def test_brands_are_rows_of_the_admin_edited_lexicon():
    assert DomainTerm.objects.filter(kind=DomainTerm.Kind.BRAND).count() >= 300
    assert DomainTerm.objects.filter(kind=DomainTerm.Kind.MERCH, domain__universal=True).exists()


@pytest.mark.django_db
def test_an_operators_new_brand_is_read_by_the_next_assessment():
    term = DomainTerm(
        domain=Domain.objects.get(key="tea"), term="茶研社精选", lang="zh", kind="brand", weight=1.0
    )
    services.lexicon_entry_save(entry=term, actor=SYSTEM)
    lexicon = current_lexicon()
    assert "茶研社精选" in lexicon.brands
    assert lexicon.match_text("茶研社精选") == {"tea": 1.0}


@pytest.mark.django_db
def test_operators_list_brands_and_add_one_in_the_admin(client):
    from django.urls import reverse

    from shequn_backend.models import AuditEntry
    from tests.members.factories import UserFactory

    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    listed = client.get(reverse("admin:trust_domainterm_changelist"), {"kind__exact": "brand", "q": "兰蔻"})
    assert listed.status_code == 200 and "兰蔻" in listed.content.decode()

    added = client.post(
        reverse("admin:trust_domainterm_add"),
        {
            "domain": Domain.objects.get(key="coffee").pk,
            "term": "挪瓦咖啡",
            "lang": "zh",
            "kind": "brand",
            "weight": "1.0",
        },
    )
    assert added.status_code == 302
    term = DomainTerm.objects.get(term="挪瓦咖啡", kind="brand")
    assert AuditEntry.objects.filter(target_id=str(term.pk), actor=operator).exists()
    assert current_lexicon().match_text("挪瓦咖啡 生椰拿铁").get("coffee", 0) >= 1.0


# ---------------------------------------------------------------- issue 18, second round: causes


@pytest.mark.parametrize(
    ("community", "product"),
    [
        (
            C("周末半马小分队", attributes=("跑步", "半马")),
            P("耐克 Pegasus 41 缓震鞋", category="服饰鞋包/鞋靴"),
        ),
        (
            C("Track Tuesday Crew", attributes=("running",)),
            P("Adidas Adizero Boston", category="服饰鞋包/鞋靴"),
        ),
        (C("流瑜伽晨练营", attributes=("瑜伽", "健身")), P("Lululemon 速干背心", category="服饰鞋包/女装")),
        (
            C("City Hikers", attributes=("hiking", "camping")),
            P("Arc'teryx Beta AR", category="服饰鞋包/男装"),
        ),
        (C("羽毛球周末局", attributes=("羽毛球",)), P("李宁 运动短袖", category="服饰鞋包/男装")),
    ],
)
def test_a_sportswear_brand_reaches_its_sport_under_a_fashion_category(lexicon, community, product):
    """A brand is one maker's goods: under 鞋靴 or 女装 its shoes are fashion and sports gear at once."""
    assert not verdict(lexicon, community, product).warning


def test_a_brand_reaches_only_the_audiences_of_its_goods(lexicon):
    assert {"running", "fitness", "ball_sports", "fashion"} <= lexicon.brand_domains["nike"]
    readers = C("深夜读书会", attributes=("读书", "文学"))
    assert verdict(lexicon, readers, P("Nike Pegasus 41", category="服饰鞋包/鞋靴")).warning
    # a word that names two makers (长城 cars, 长城 wine) is still read in context
    drivers = C("越野车友会", attributes=("汽车", "自驾"))
    assert verdict(lexicon, drivers, P("长城干红葡萄酒 750ml", category="酒水/葡萄酒")).warning


def test_a_running_shoe_word_carries_running_beside_a_brand_named_twice(lexicon):
    domains = product_domains(lexicon, P("特步 160X 竞速跑鞋", category="服饰鞋包/鞋靴", tags=("特步",)))
    assert domains["running"] >= 0.9


@pytest.mark.parametrize(
    ("community", "product", "warning"),
    [
        (
            C("Lake Bass Fishing Team", attributes=("fishing", "bass")),
            P("Bass guitar strings, 4-pack", category="文化艺术/乐器"),
            True,
        ),
        (
            C("Lake Bass Fishing Team", attributes=("fishing", "bass")),
            P("Bass crankbait lure set", category="运动户外/钓具"),
            False,
        ),
        (
            C("Groove Bass Society", attributes=("music", "bass")),
            P("Largemouth bass jig set", category="运动户外/钓具"),
            True,
        ),
        (
            C("Rust Beijing Meetup", attributes=("rust", "programming")),
            P("Rust remover gel for car wheels", category="汽车用品/养护用品"),
            True,
        ),
        (
            C("Classic Car Restorers", attributes=("cars", "restoration")),
            P("Rust remover gel for car wheels", category="汽车用品/养护用品"),
            False,
        ),
        (
            C("精品咖啡烘焙坊", attributes=("咖啡", "烘焙", "手冲")),
            P("舟山冻虾仁 500g", category="生鲜/海鲜水产"),
            True,
        ),
        (
            C("家庭烘焙小课堂", attributes=("烘焙", "面包", "蛋糕")),
            P("低筋面粉 2.5kg", category="食品饮料/粮油调味"),
            False,
        ),
        (
            C("Pour Over Club", attributes=("coffee", "pour-over")),
            P("Stoneware coffee mug 12 oz", category="家居日用/厨具"),
            False,
        ),
        (
            C("Golf Weekenders", attributes=("golf",)),
            P("Golf club head cover", category="运动户外/球类"),
            False,
        ),
        (
            C("Archery Range Friends", attributes=("archery",)),
            P("Violin bow rosin", category="文化艺术/乐器"),
            True,
        ),
    ],
)
def test_more_words_with_several_senses_follow_their_context(lexicon, community, product, warning):
    assert verdict(lexicon, community, product).warning is warning


def test_roasting_is_coffee_among_coffee_words_and_baking_among_bread_words(lexicon):
    roasters = build_profile(lexicon, C("烘豆研究社", attributes=("咖啡", "烘焙")))
    bakers = build_profile(lexicon, C("周末面包房", attributes=("烘焙", "面包")))
    assert roasters.declared["coffee"] == 1.0 and roasters.declared["food"] <= 0.5
    assert bakers.declared["food"] == 1.0 and bakers.declared.get("coffee", 0.0) < 0.5


def doer_lexicon() -> Lexicon:
    words = ("baking", "angling", "cycling", "investing", "photography", "guitar", "piano", "knitting")
    return Lexicon.from_dict(
        {"domains": [{"key": "hobby", "terms": [{"term": w, "weight": 1.0} for w in words]}]}
    )


@pytest.mark.parametrize(
    ("phrase", "term"),
    [
        ("bakers", "baking"),
        ("angler", "angling"),
        ("cyclists", "cycling"),
        ("investors", "investing"),
        ("photographers", "photography"),
        ("knitters", "knitting"),
        ("guitarists", "guitar"),
        ("pianist", "piano"),
        ("weekend bakers", None),  # only the last word of a phrase is a doer: "weekend baking" is no term
    ],
)
def test_english_doers_are_read_as_their_activity(phrase, term):
    assert doer_lexicon()._english_term(phrase) == term


def test_the_stem_of_a_doer_is_not_guessed():
    lexicon = Lexicon.from_dict({"domains": [{"key": "fresh", "terms": [{"term": "corn"}, {"term": "pok"}]}]})
    assert lexicon._english_term("corner") is None
    assert lexicon._english_term("pokers") is None
    assert doer_lexicon().match_text("Bakers and anglers") == {"hobby": 2.0}


@pytest.mark.parametrize(
    ("community", "product"),
    [
        (
            C("Weekend Bread Bakers"),
            P("Cast iron dutch oven for bread", category="家居日用/厨具", tags=("sourdough",)),
        ),
        (C("Saltwater Anglers"), P("Spinning reel 4000", category="运动户外/钓具")),
        (C("Hill Climbers Cycling Crew"), P("Carbon road bike wheelset", category="运动户外/骑行")),
        (C("Sunday Painters"), P("Watercolor paint set, 24 colours", category="文化艺术/画材")),
    ],
)
def test_a_community_named_by_its_members_is_readable(lexicon, community, product):
    result = verdict(lexicon, community, product)
    assert build_profile(lexicon, community).readable
    assert not result.warning


def test_content_items_count_fully_for_their_subject(lexicon):
    """Five tea articles written for parents are five tea articles, not half as many."""
    content = tuple(
        ContentItem(title, tags=("tea",))
        for title in (
            "Tea with toddlers: a calm afternoon",
            "A family guide to green tea",
            "Brewing oolong with the kids",
            "Tea farm weekend for families",
            "Caffeine-free teas for children",
        )
    )
    parents = C("Calm Parents Circle", attributes=("parenting",), content=content)
    profile = build_profile(lexicon, parents)
    assert profile.content_counts["tea"] >= 4.5
    assert not verdict(lexicon, parents, P("Longjing green tea, 100 g", category="茶叶/绿茶")).warning
    without = verdict(
        lexicon,
        C("Calm Parents Circle", attributes=("parenting",)),
        P("Longjing green tea, 100 g", category="茶叶/绿茶"),
    )
    assert without.warning


@pytest.mark.django_db
def test_version_three_rows_are_in_the_admin_edited_tables():
    data = json.loads(LEXICON_JSON.read_text(encoding="utf-8"))
    rows = {(d["key"], t["term"]) for d in data["domains"] for t in d["terms"] if t.get("since") == 3}
    assert len(rows) >= 300
    stored = set(DomainTerm.objects.values_list("domain__key", "term"))
    assert rows <= stored
    lexicon = current_lexicon()
    assert {"running", "fashion"} <= lexicon.brand_domains["nike"]


@pytest.mark.parametrize(
    ("community", "product", "warning"),
    [
        (
            C("Saltwater Anglers", attributes=("fishing",)),
            P("Salmon fish fillet 500 g", category="生鲜/海鲜水产"),
            True,
        ),
        (
            C("Home Cooks", attributes=("cooking",)),
            P("Salmon fish fillet 500 g", category="生鲜/海鲜水产"),
            False,
        ),
        (
            C("Auto Club", attributes=("cars",)),
            P("Titleist golf driver 10.5", category="运动户外/球类"),
            True,
        ),
        (
            C("Coffee Geeks", attributes=("coffee",)),
            P("Baked beans in tomato sauce", category="食品饮料/粮油调味"),
            True,
        ),
        (C("Weekend Readers"), P("Kindle Paperwhite", category="数码/电子配件"), False),
        (
            C("Marathon Mates", attributes=("running",)),
            P("Ultra HD 4K monitor 27 inch", category="数码/电脑"),
            True,
        ),
        (C("Dog Walkers of Pudong"), P("Hot dog sausages 1 kg", category="生鲜/肉禽蛋"), True),
    ],
)
def test_everyday_words_with_a_second_sense_do_not_mislead(lexicon, community, product, warning):
    assert verdict(lexicon, community, product).warning is warning


def test_a_maker_of_different_product_lines_is_read_by_the_line(lexicon):
    """Shimano bicycle parts and fishing reels are different goods: the category picks the line."""
    cyclists = C("Cycling Club", attributes=("cycling",))
    assert "fishing" not in lexicon.brand_domains.get("shimano", frozenset())
    assert not verdict(lexicon, cyclists, P("Shimano 105 groupset", category="运动户外/骑行")).warning
    assert verdict(
        lexicon, C("Car Club", attributes=("cars",)), P("Yamaha U1 upright piano", category="文化艺术/乐器")
    ).warning


# ---------------------------------------------------------------- holdout pass: causes, own cases


def names(lexicon: Lexicon, name: str) -> tuple[str, ...]:
    return build_profile(lexicon, C(name)).own_names


def test_a_leading_place_is_not_part_of_the_distinctive_name(lexicon):
    assert "昆曲票友会" in names(lexicon, "苏州昆曲票友会")
    assert "单车骑士团" in names(lexicon, "新竹單車騎士團")  # Taiwan city, Traditional script
    assert "行山队" in names(lexicon, "香港九龍行山隊")  # Hong Kong: both places stripped
    # a place with a generic ending, or a place and a domain word, names no community of its own
    assert names(lexicon, "北京读书会") == ("北京读书会",)
    assert names(lexicon, "广东深圳市摄影协会") == ("广东深圳市摄影协会",)


def test_the_organisation_word_is_what_is_left_after_place_and_topic(lexicon):
    assert names(lexicon, "苏州昆曲票友会")[-1] == "票友会"
    assert names(lexicon, "成都汉服同好团")[-1] == "同好团"
    assert names(lexicon, "新竹單車騎士團")[-1] == "骑士团"
    # nothing distinctive left: a domain word with an ending (跑团) or an ending alone (协会)
    assert not any(n in ("跑团", "协会", "俱乐部") for n in names(lexicon, "上海马拉松跑团"))
    assert names(lexicon, "深圳南山羽毛球俱乐部") == ("深圳南山羽毛球俱乐部",)


KUNQU = C("苏州昆曲票友会", attributes=("昆曲", "戏曲"))


@pytest.mark.parametrize(
    ("community", "product"),
    [
        (KUNQU, P("票友会 会徽 刺绣徽章", category="文化艺术/文创")),
        (KUNQU, P("票友会 中秋游园会 入场券", category="服务/线下活动")),
        (C("成都汉服同好团", attributes=("汉服",)), P("同好团 团服 短袖", category="服饰鞋包/男装")),
        (C("新竹單車騎士團", attributes=("單車",)), P("騎士團 團服 車衣 印團徽", category="服饰鞋包/男装")),
    ],
)
def test_group_merchandise_and_events_under_the_organisation_word_are_own_goods(lexicon, community, product):
    result = verdict(lexicon, community, product)
    assert result.level == "fit"
    assert "本社群的名字" in result.reasons_zh[0] and "own" in result.reasons_en[0]


def test_group_merchandise_and_event_words_are_data(lexicon):
    assert {"团服", "会徽", "团徽", "团扇", "刺绣"} <= set(lexicon.merch_words("团服 会徽 团徽 刺绣团扇"))
    assert all(lexicon.is_universal(k) for k in lexicon.terms["游园会"])
    assert "arts" in lexicon.terms["刺绣"]  # embroidery as a craft stays a term of its domain


def test_the_organisation_word_on_someone_elses_goods_is_not_own_merchandise(lexicon):
    assert verdict(lexicon, KUNQU, P("票友会 推荐 酱香白酒", category="酒水/白酒")).warning


@pytest.mark.parametrize(
    ("community", "product"),
    [
        (C("Sydney Harbour Sailors"), P("Sailing gloves, fingerless", category="运动户外/户外装备")),
        (C("厦门赛艇俱乐部"), P("赛艇 划船手套", category="运动户外/户外装备")),
        (C("青岛冬泳协会"), P("冬泳 防寒泳帽", category="运动户外/户外装备")),
        (C("Cornwall Sea Swimmers"), P("Open water tow float", category="运动户外/户外装备")),
        (C("Lisbon Kayak Club"), P("Dry bag 20L", category="运动户外/户外装备")),
        (C("上海国际象棋俱乐部"), P("国际象棋 磁性折叠棋盘", category="文化艺术/文创")),
        (C("北京武术协会"), P("太极拳 练功服", category="运动户外/运动服饰")),
    ],
)
def test_everyday_hobbies_make_a_name_only_community_readable(lexicon, community, product):
    assert build_profile(lexicon, community).readable
    assert verdict(lexicon, community, product).level == "fit"


def test_a_readable_hobby_community_still_gets_a_mismatch_off_its_field(lexicon):
    swimmers = C("Cornwall Sea Swimmers")
    assert verdict(lexicon, swimmers, P("Single malt whisky 700ml", category="酒水/洋酒")).level == "mismatch"


WHISKY = P("Macallan 12 单一麦芽威士忌", category="酒水/洋酒")


def test_a_few_dozen_members_naming_one_interest_are_not_the_membership(lexicon):
    """Members who name no interest are invisible: 50 whisky fans among colleagues are no share."""
    few = C("销售部 同事群", attributes=("同事",), member_interests={"威士忌": 30, "whisky": 20})
    profile = build_profile(lexicon, few)
    assert profile.interest_shares["alcohol"] == pytest.approx(50 / 200)
    assert profile.standing["alcohol"] < 0.2  # far from a declared attribute
    assert verdict(lexicon, few, WHISKY).warning
    many = C("销售部 同事群", attributes=("同事",), member_interests={"威士忌": 300, "whisky": 200})
    assert not verdict(lexicon, many, WHISKY).warning  # hundreds: a broad interest


def test_a_small_interest_beside_a_declared_field_earns_no_fit(lexicon):
    emba = C("EMBA 2019 班", attributes=("EMBA", "同学"), member_interests={"网球": 16, "tennis": 9})
    assert verdict(lexicon, emba, P("Wilson 网球拍", category="运动户外/球类")).warning


def candle_workshop(repeat_buyers: int, refunds: int) -> CommunityEvidence:
    record = SalesRecord(
        "家居日用/香薰", orders=300, buyers=280, repeat_buyers=repeat_buyers, refunds=refunds
    )
    return C("手作蜡烛工坊", attributes=("香薰蜡烛", "手工"), sales=(record,))


def test_refunds_in_the_products_own_category_turn_the_verdict_whatever_domain_it_reaches(lexicon):
    """A handmade candle reaches a crafts audience through arts; its category's refunds still count."""
    candle = P("手工 大豆香薰蜡烛", category="家居日用/香薰")
    burnt = verdict(lexicon, candle_workshop(4, 70), candle)
    assert burnt.warning and burnt.trust < 0.1
    assert "信任受损" in burnt.reasons_zh[0] and contradictions(burnt) == []
    assert not verdict(lexicon, candle_workshop(120, 3), candle).warning


SWITCH_PLAYERS = C("Switch 联机群", attributes=("Switch", "任天堂"))


def test_a_wall_switch_is_read_by_its_category(lexicon):
    assert len(lexicon.sense_groups("switch")) == 2
    panel = P("Switch 单开 开关面板", category="家居日用/装修建材")
    assert "gaming" not in product_domains(lexicon, panel)
    assert verdict(lexicon, SWITCH_PLAYERS, panel).warning
    assert not verdict(lexicon, SWITCH_PLAYERS, P("Switch Pro 手柄", category="游戏动漫/游戏设备")).warning


def test_a_hair_designer_is_beauty_and_a_rice_cooker_brand_is_home(lexicon):
    stylists = build_profile(lexicon, C("美发设计师交流群", attributes=("美发", "染烫")))
    assert "home" not in stylists.declared
    cooker = P("大同电锅 六人份", category="家用电器/厨房电器")
    assert verdict(lexicon, C("美发设计师交流群", attributes=("美发", "染烫")), cooker).warning
    assert not verdict(lexicon, C("家常菜研究所", attributes=("烹饪", "家常菜")), cooker).warning


@pytest.mark.django_db
def test_version_four_rows_are_in_the_admin_edited_tables():
    data = json.loads(LEXICON_JSON.read_text(encoding="utf-8"))
    rows = {(d["key"], t["term"]) for d in data["domains"] for t in d["terms"] if t.get("since") == 4}
    assert len(rows) >= 100
    stored = set(DomainTerm.objects.values_list("domain__key", "term"))
    assert rows <= stored
    lexicon = current_lexicon()
    assert "outdoor" in lexicon.terms["帆船"] and "会徽" in lexicon.merch
