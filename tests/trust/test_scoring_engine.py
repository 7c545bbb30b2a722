"""The trust and audience-match scorer (trust.scoring): pure Python, no database."""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
from pathlib import Path

import pytest

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
from trust.scoring.engine import FIT_THRESHOLD
from trust.scoring.ranking import best_f1_threshold, precision_recall, roc_auc

REPO_ROOT = Path(__file__).resolve().parents[2]
CATEGORIES = REPO_ROOT / "commerce" / "data" / "categories.txt"
DEV_CASES = Path(__file__).resolve().parent / "data" / "fit_dev.jsonl"
EXTRA_CASES = Path(__file__).resolve().parent / "data" / "fit_extra.jsonl"
LEXICON_JSON = REPO_ROOT / "trust" / "data" / "lexicon.json"


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(LEXICON_JSON)


def _cases(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _evaluate(lexicon: Lexicon, cases: list[dict]) -> tuple[float, float, float]:
    labels, warn_scores, warnings = [], [], []
    for case in cases:
        profile = build_profile(lexicon, evidence_from_case(case["community"]))
        result = assess(lexicon, profile, product_from_case(case["product"]))
        labels.append(bool(case["expect_warning"]))
        warn_scores.append(1.0 - result.score)  # warning is the positive class
        warnings.append(result.warning)
    precision, recall = precision_recall(labels, warnings)
    return roc_auc(labels, warn_scores), precision, recall


def _category_paths() -> list[str]:
    lines = CATEGORIES.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[0].strip() for line in lines if line.strip() and not line.startswith("#")]


# ---------------------------------------------------------------- knowledge


def test_every_default_category_maps_to_a_known_domain():
    data = json.loads(LEXICON_JSON.read_text(encoding="utf-8"))
    domain_keys = {d["key"] for d in data["domains"]}
    mapped = {c["path"]: c["domains"] for c in data["categories"]}
    paths = _category_paths()
    assert len(paths) > 100
    missing = [p for p in paths if not mapped.get(p)]
    assert missing == []
    unknown = [(p, d["domain"]) for p in paths for d in mapped[p] if d["domain"] not in domain_keys]
    assert unknown == []
    assert all(0 < d["weight"] <= 1 for p in paths for d in mapped[p])


def test_domains_carry_many_chinese_and_english_terms():
    data = json.loads(LEXICON_JSON.read_text(encoding="utf-8"))
    for domain in data["domains"]:
        langs = [t["lang"] for t in domain["terms"]]
        assert langs.count("zh") >= 20, domain["key"]
        assert langs.count("en") >= 5, domain["key"]
        assert {t["kind"] for t in domain["terms"]} <= {"synonym", "related", "brand", "merch"}


def test_generic_categories_are_not_in_the_finance_or_reading_audience(lexicon):
    for path in ("生鲜/水果", "酒水/白酒", "食品饮料/休闲零食"):
        assert not {"finance", "reading", "business"} & set(lexicon.category_domains(path))


def test_unknown_category_falls_back_to_its_siblings(lexicon):
    assert "tea" in lexicon.category_domains("茶叶/白茶")


def test_chinese_text_without_spaces_is_segmented_onto_lexicon_terms(lexicon):
    found = lexicon.match_text("我们每周一起跑马拉松并分享配速心得")
    assert max(found, key=found.get) == "running"
    assert {"投资", "理财", "投资理财"} <= set(lexicon.segment("投资理财"))
    assert max(lexicon.match_text("碳板竞速跑鞋"), key=lexicon.match_text("碳板竞速跑鞋").get) == "running"


def test_english_words_match_case_and_plural_insensitively(lexicon):
    assert "running" in lexicon.match_text("Carbon Plate Racing SHOES for Marathons")
    assert "tea" in lexicon.match_text("Aged pu-erh teas")


def test_lexicon_builds_from_the_plain_data_shape():
    tiny = Lexicon.from_dict(
        {
            "domains": [
                {
                    "key": "tea",
                    "name_zh": "茶",
                    "name_en": "Tea",
                    "terms": [
                        {"term": "普洱", "lang": "zh", "kind": "synonym", "weight": 1.0},
                        {"term": "teapot", "lang": "en", "kind": "related", "weight": 0.5},
                    ],
                },
            ],
            "categories": [{"path": "茶叶/普洱", "domains": [{"domain": "tea", "weight": 1.0}]}],
        }
    )
    assert tiny.match_text("老班章普洱茶饼") == {"tea": pytest.approx(0.8)}  # found inside a longer token
    assert tiny.match_text("Two teapots") == {"tea": 0.5}
    assert tiny.category_domains("茶叶/普洱") == {"tea": 1.0}


# ---------------------------------------------------------------- quality on labelled cases


def test_dev_set_meets_the_quality_bar(lexicon):
    auc, precision, recall = _evaluate(lexicon, _cases(DEV_CASES))
    assert auc >= 0.95
    assert precision >= 0.90
    assert recall >= 0.90


def test_extra_set_meets_the_quality_bar(lexicon):
    cases = _cases(EXTRA_CASES)
    assert len(cases) >= 80
    assert len({c["community"]["name"] for c in cases}) >= 20
    auc, precision, recall = _evaluate(lexicon, cases)
    assert auc >= 0.95
    assert precision >= 0.90
    assert recall >= 0.90


# ---------------------------------------------------------------- evidence moves the verdict both ways

READING_CLUB = CommunityEvidence(name="周末读书会", description="每周共读一本书", attributes=("读书", "人文"))
PUER = ProductInput(title="2015 年老班章普洱茶饼", category="茶叶/普洱", tags=("普洱",))
FAT_LOSS = CommunityEvidence(name="21天减脂营", description="教练带队打卡", attributes=("健身", "减脂"))
SHAKE = ProductInput(title="减脂代餐奶昔", category="医药保健/代餐", tags=("代餐",))


def test_content_and_repurchase_turn_an_off_attribute_product_into_a_fit(lexicon):
    bare = assess(lexicon, build_profile(lexicon, READING_CLUB), PUER)
    earned = CommunityEvidence(
        name=READING_CLUB.name,
        description=READING_CLUB.description,
        attributes=READING_CLUB.attributes,
        content=(ContentItem("普洱茶的年份与仓储", ("普洱", "茶")), ContentItem("如何泡好一泡生普", ("茶",))),
        sales=(SalesRecord("茶叶/普洱", orders=500, buyers=250, repeat_buyers=140, refunds=3),),
    )
    backed = assess(lexicon, build_profile(lexicon, earned), PUER)
    assert bare.warning and bare.level == "mismatch"
    assert not backed.warning and backed.level == "fit"
    assert backed.trust > bare.trust
    assert backed.audience_match > bare.audience_match


def test_refunds_and_no_repurchase_turn_an_on_attribute_product_into_a_warning(lexicon):
    fresh = assess(lexicon, build_profile(lexicon, FAT_LOSS), SHAKE)
    burnt = CommunityEvidence(
        name=FAT_LOSS.name,
        description=FAT_LOSS.description,
        attributes=FAT_LOSS.attributes,
        sales=(SalesRecord("医药保健/代餐", orders=420, buyers=400, repeat_buyers=6, refunds=130),),
    )
    result = assess(lexicon, build_profile(lexicon, burnt), SHAKE)
    assert fresh.level == "fit"
    assert result.warning and result.level == "caution"
    assert result.audience_match == fresh.audience_match  # the audience still fits; trust does not
    assert result.trust < 0.2 < fresh.trust


def test_one_off_buying_lowers_trust_and_repurchase_raises_it(lexicon):
    def trust_with(repeat_buyers: int) -> float:
        evidence = CommunityEvidence(
            name=FAT_LOSS.name,
            attributes=FAT_LOSS.attributes,
            sales=(
                SalesRecord("医药保健/代餐", orders=300, buyers=300, repeat_buyers=repeat_buyers, refunds=0),
            ),
        )
        return assess(lexicon, build_profile(lexicon, evidence), SHAKE).trust

    prior = assess(lexicon, build_profile(lexicon, FAT_LOSS), SHAKE).trust
    assert trust_with(0) < prior < trust_with(120)


def test_a_small_noisy_sales_record_does_not_flip_an_on_attribute_fit(lexicon):
    evidence = CommunityEvidence(
        name=FAT_LOSS.name,
        attributes=FAT_LOSS.attributes,
        sales=(SalesRecord("医药保健/代餐", orders=30, buyers=28, repeat_buyers=5, refunds=2),),
    )
    assert assess(lexicon, build_profile(lexicon, evidence), SHAKE).level == "fit"


def test_members_interests_count_towards_the_audience(lexicon):
    base = CommunityEvidence(name="车友会", attributes=("车主", "自驾"))
    with_interests = CommunityEvidence(
        name="车友会", attributes=("车主", "自驾"), member_interests={"露营": 400, "自驾": 300}
    )
    tent = ProductInput(title="双人帐篷", category="运动户外/露营", tags=("露营",))
    plain = assess(lexicon, build_profile(lexicon, base), tent)
    informed = assess(lexicon, build_profile(lexicon, with_interests), tent)
    assert informed.audience_match > plain.audience_match


# ---------------------------------------------------------------- reasons


def test_a_mismatch_names_the_attributes_the_category_and_the_missing_evidence(lexicon):
    finance = CommunityEvidence(name="财经频道书友会", attributes=("财经", "投资理财"))
    result = assess(
        lexicon, build_profile(lexicon, finance), ProductInput("千岛湖杨梅 5斤装", "", "生鲜/水果")
    )
    assert result.level == "mismatch" and result.warning
    headline = result.reasons_zh[0]
    assert "财经" in headline and "投资理财" in headline and "生鲜/水果" in headline
    assert "无内容与复购记录" in headline
    assert len(result.reasons_en) == len(result.reasons_zh)
    assert "生鲜/水果" in result.reasons_en[0] and "attributes" in result.reasons_en[0]
    assert "Fresh Produce" in result.reasons_en[0]


def test_reasons_name_content_count_and_repurchase_and_refund_rates(lexicon):
    burnt = CommunityEvidence(
        name=FAT_LOSS.name,
        attributes=FAT_LOSS.attributes,
        content=(ContentItem("代餐怎么吃才不反弹", ("代餐", "减脂")),),
        sales=(SalesRecord("医药保健/代餐", orders=420, buyers=400, repeat_buyers=6, refunds=130),),
    )
    result = assess(lexicon, build_profile(lexicon, burnt), SHAKE)
    text = " ".join(result.reasons_zh)
    assert "1 篇专业内容" in text
    assert "复购率 1.5%" in text and "退款率 31.0%" in text
    assert "repurchase rate 1.5%" in " ".join(result.reasons_en)


def test_result_fields_are_in_range_and_consistent(lexicon):
    for case in _cases(DEV_CASES):
        result = assess(
            lexicon,
            build_profile(lexicon, evidence_from_case(case["community"])),
            product_from_case(case["product"]),
        )
        for value in (result.audience_match, result.trust, result.score):
            assert 0.0 <= value <= 1.0
        assert result.level in {"fit", "caution", "mismatch"}
        assert result.warning == (result.level != "fit")
        assert (result.score >= FIT_THRESHOLD) == (result.level == "fit")
        assert result.product_domains and result.reasons_zh and result.reasons_en


def test_case_adapters_accept_the_contract_shape_with_optional_parts_missing():
    evidence = evidence_from_case({"name": "社群", "attributes": ["茶"]})
    assert evidence.member_interests == {} and evidence.content == () and evidence.sales == ()
    product = product_from_case({"title": "t", "category": "茶叶/普洱", "tags": ["普洱"], "price": "1.00"})
    assert product == ProductInput(title="t", description="", category="茶叶/普洱", tags=("普洱",))


def test_profiles_and_results_pickle_and_serialise(lexicon):
    case = _cases(DEV_CASES)[36]  # with content and sales
    profile = build_profile(lexicon, evidence_from_case(case["community"]))
    result = assess(lexicon, profile, product_from_case(case["product"]))
    assert pickle.loads(pickle.dumps(profile)) == profile  # noqa: S301 - our own bytes, round trip
    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301 - our own bytes, round trip
    assert json.loads(json.dumps(dataclasses.asdict(result), ensure_ascii=False))["level"] == result.level


# ---------------------------------------------------------------- speed and purity


def test_assess_takes_well_under_ten_milliseconds_per_product(lexicon):
    cases = _cases(DEV_CASES)
    pairs = [
        (build_profile(lexicon, evidence_from_case(c["community"])), product_from_case(c["product"]))
        for c in cases
    ]
    runs = 5
    start = time.perf_counter()
    for _ in range(runs):
        for profile, product in pairs:
            assess(lexicon, profile, product)
    mean_ms = (time.perf_counter() - start) * 1000 / (runs * len(pairs))
    assert mean_ms < 10.0


def test_the_scoring_package_does_not_import_django():
    for source in (REPO_ROOT / "trust" / "scoring").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert "import django" not in text and "from django" not in text, source.name


# ---------------------------------------------------------------- ranking helpers


def test_roc_auc_counts_pairs_and_ties():
    assert roc_auc([True, False], [0.9, 0.1]) == 1.0
    assert roc_auc([True, False], [0.1, 0.9]) == 0.0
    assert roc_auc([True, False, True, False], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([True, True, False, False], [0.9, 0.4, 0.5, 0.1]) == 0.75
    with pytest.raises(ValueError):
        roc_auc([True, True], [0.1, 0.2])


def test_precision_recall_and_best_threshold():
    labels = [True, True, False, False]
    assert precision_recall(labels, [True, False, True, False]) == (0.5, 0.5)
    assert precision_recall(labels, [False, False, False, False]) == (0.0, 0.0)
    assert best_f1_threshold(labels, [0.9, 0.8, 0.2, 0.1]) == 0.8
