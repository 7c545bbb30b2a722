"""Shape of the honest holdout fit set (tests/trust/data/fit_holdout.jsonl); no database.

The holdout was written without looking at the scorer, its lexicon terms or the other labelled
sets, with new communities and products, and labelled by the product idea only. Its labels must
not be tuned to the scorer's output; this file checks only that the set is well formed, varied,
balanced and disjoint from the sets the scorer was built on. How well the scorer does on it is
measured by ``bench/scorer_eval.py --cases tests/trust/data/fit_holdout.jsonl``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.trust.test_unseen_cases import CJK, CLASSES, SCRIPTS, _category_paths, _owner_text
from trust.scoring import evidence_from_case, product_from_case

DATA = Path(__file__).resolve().parent / "data"
HOLDOUT_CASES = DATA / "fit_holdout.jsonl"
OTHER_SETS = ("fit_dev.jsonl", "fit_extra.jsonl", "fit_unseen.jsonl")


def _load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="module")
def holdout() -> list[dict]:
    return _load(HOLDOUT_CASES)


def test_enough_cases_with_sequential_ids(holdout):
    assert len(holdout) >= 180
    assert [c["id"] for c in holdout] == [f"holdout-{n:03d}" for n in range(1, len(holdout) + 1)]


def test_every_line_follows_the_contract(holdout):
    paths = _category_paths()
    for case in holdout:
        assert set(case) == {"id", "community", "product", "expect_warning", "class", "script"}, case["id"]
        assert isinstance(case["expect_warning"], bool)
        assert case["class"] in CLASSES and case["script"] in SCRIPTS, case["id"]
        community, product = case["community"], case["product"]
        assert community["name"] and isinstance(community["description"], str), case["id"]
        assert all(isinstance(a, str) and a for a in community["attributes"]), case["id"]
        assert set(community) <= {
            "name",
            "description",
            "mission",
            "attributes",
            "member_interests",
            "content",
            "sales",
        }, case["id"]
        assert set(product) == {"title", "description", "category", "tags", "price"}, case["id"]
        assert product["title"] and product["category"] in paths, case["id"]
        assert Decimal(product["price"]) > 0 and Decimal(product["price"]).as_tuple().exponent == -2
        for count in (community.get("member_interests") or {}).values():
            assert isinstance(count, int) and count > 0, case["id"]
        for item in community.get("content", []):
            assert item["title"] and isinstance(item.get("tags", []), list), case["id"]
        for record in community.get("sales", []):
            assert record["category"] in paths, case["id"]
            assert 0 <= record["repeat_buyers"] <= record["buyers"] <= record["orders"], case["id"]
            assert 0 <= record["refunds"] <= record["orders"], case["id"]
        evidence_from_case(community)
        product_from_case(product)


def test_no_pair_appears_twice(holdout):
    pairs = Counter(
        json.dumps([c["community"], c["product"]], sort_keys=True, ensure_ascii=False) for c in holdout
    )
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_holdout_shares_no_community_or_product_with_the_sets_the_scorer_was_built_on(holdout):
    others = [case for name in OTHER_SETS if (DATA / name).exists() for case in _load(DATA / name)]
    assert others
    names = {c["community"]["name"] for c in others}
    titles = {c["product"]["title"] for c in others}
    assert [c["id"] for c in holdout if c["community"]["name"] in names] == []
    assert [c["id"] for c in holdout if c["product"]["title"] in titles] == []


def test_every_class_and_script_is_present_and_holds_both_labels(holdout):
    assert {c["class"] for c in holdout} == CLASSES
    assert {c["script"] for c in holdout} == SCRIPTS
    for key, names in (("class", CLASSES), ("script", SCRIPTS)):
        for name in names:
            labels = Counter(c["expect_warning"] for c in holdout if c[key] == name)
            assert labels[True] >= 5 and labels[False] >= 5, (key, name, labels)
    assert min(Counter(c["script"] for c in holdout).values()) >= 40
    assert min(Counter(c["class"] for c in holdout).values()) >= 20


def test_labels_are_balanced(holdout):
    share = sum(c["expect_warning"] for c in holdout) / len(holdout)
    assert 0.40 <= share <= 0.50


def test_cases_are_varied(holdout):
    communities = {json.dumps(c["community"], sort_keys=True, ensure_ascii=False) for c in holdout}
    assert len(communities) >= 80
    assert len({c["product"]["title"] for c in holdout}) == len(holdout)
    assert len({c["product"]["category"] for c in holdout}) >= 60


def test_script_tags_match_the_text(holdout):
    for case in holdout:
        text = _owner_text(case)
        has_cjk = bool(CJK.search(text))
        if case["script"] == "english":
            assert not has_cjk, case["id"]
        elif case["script"] == "mixed":
            assert has_cjk and re.search(r"[A-Za-z]{2,}", text), case["id"]
        else:
            assert has_cjk, case["id"]
    traditional = " ".join(_owner_text(c) for c in holdout if c["script"] == "traditional")
    simplified = " ".join(_owner_text(c) for c in holdout if c["script"] == "simplified")
    for trad, simp in (("讀", "读"), ("會", "会"), ("車", "车"), ("練", "练")):
        assert trad in traditional and trad not in simplified
        assert simp in simplified and simp not in traditional


def test_sparse_communities_that_say_nothing_expect_a_warning(holdout):
    sparse = [c for c in holdout if c["class"] == "sparse"]
    bare = [c for c in sparse if not c["community"]["description"] and not c["community"]["attributes"]]
    assert len(bare) == len(sparse)  # the sparse class holds name-only communities
    readable_fits = [c for c in sparse if not c["expect_warning"]]
    assert len(readable_fits) >= 5 and sum(c["expect_warning"] for c in sparse) >= 15


def test_interest_fits_rest_on_hundreds_of_members(holdout):
    interest_cases = [c for c in holdout if c["class"] == "interests"]
    assert all(c["community"].get("member_interests") for c in interest_cases)
    for case in interest_cases:
        if not case["expect_warning"]:
            assert sum(case["community"]["member_interests"].values()) >= 200, case["id"]
    small = [c for c in interest_cases if sum(c["community"]["member_interests"].values()) < 100]
    assert len(small) >= 5 and all(c["expect_warning"] for c in small)


def test_evidence_runs_both_ways(holdout):
    evidence = [c for c in holdout if c["class"] == "evidence"]
    assert all(c["community"].get("sales") for c in evidence)

    def refund_rate(case):
        sales = [r for r in case["community"]["sales"] if r["orders"] >= 100]
        return max((r["refunds"] / r["orders"] for r in sales), default=0.0)

    heavy_refunds = [c for c in evidence if refund_rate(c) >= 0.10]
    assert len(heavy_refunds) >= 8 and all(c["expect_warning"] for c in heavy_refunds)
    earned = [c for c in evidence if not c["expect_warning"] and c["community"].get("content")]
    assert len(earned) >= 8
    handful = [c for c in evidence if all(r["orders"] < 30 for r in c["community"]["sales"])]
    assert {c["expect_warning"] for c in handful} == {True, False}  # a handful of orders decides nothing


def test_own_merchandise_fits_even_in_generic_categories(holdout):
    own = [c for c in holdout if c["class"] == "own_merch" and not c["expect_warning"]]
    generic = {"服饰鞋包", "文化艺术", "服务", "家居日用", "办公文具"}
    assert sum(1 for c in own if c["product"]["category"].split("/")[0] in generic) >= 15
