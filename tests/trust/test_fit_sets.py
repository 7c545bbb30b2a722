"""Shape checks shared by the hand-labelled fit sets (unseen and holdout); no database.

The labels follow the product idea (docs/scorer-contract.md), not the scorer's output; these tests
check only that each set is well formed, varied and balanced. Checks that hold for one set only
live in tests/trust/test_unseen_cases.py and tests/trust/test_holdout_cases.py; how well the scorer
does is measured by bench/scorer_eval.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from trust.scoring import evidence_from_case, product_from_case

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
CATEGORIES = REPO_ROOT / "commerce" / "data" / "categories.txt"

CLASSES = {"traditional", "polysemy", "brand", "sparse", "own_merch", "interests", "evidence"}
SCRIPTS = {"traditional", "simplified", "english", "mixed"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True)
class FitSet:
    """One labelled set and the figures its shape must reach."""

    file: str
    id_prefix: str
    min_cases: int
    min_per_script: int
    min_titles: int | None  # None: every product title is distinct
    script_pairs: tuple[tuple[str, str], ...]  # (traditional, simplified) characters
    min_small_interests: int
    generic_categories: frozenset[str]
    names_required: bool


FIT_SETS = (
    FitSet(
        file="fit_unseen.jsonl",
        id_prefix="unseen",
        min_cases=200,
        min_per_script=35,
        min_titles=200,
        script_pairs=(("讀", "读"), ("會", "会"), ("車", "车"), ("體", "体")),
        min_small_interests=1,
        generic_categories=frozenset({"服饰鞋包", "文化艺术", "服务", "家居日用"}),
        names_required=False,
    ),
    FitSet(
        file="fit_holdout.jsonl",
        id_prefix="holdout",
        min_cases=180,
        min_per_script=40,
        min_titles=None,
        script_pairs=(("讀", "读"), ("會", "会"), ("車", "车"), ("練", "练")),
        min_small_interests=5,
        generic_categories=frozenset({"服饰鞋包", "文化艺术", "服务", "家居日用", "办公文具"}),
        names_required=True,
    ),
)


def load_cases(name: str) -> list[dict]:
    with (DATA / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def category_paths() -> set[str]:
    lines = CATEGORIES.read_text(encoding="utf-8").splitlines()
    return {line.split("\t")[0].strip() for line in lines if line.strip() and not line.startswith("#")}


def owner_text(case: dict) -> str:
    """Everything an owner wrote for the case (the category path comes from the tree)."""
    community, product = case["community"], case["product"]
    parts = [community.get("name", ""), community.get("description", ""), community.get("mission", "")]
    parts += community.get("attributes", [])
    parts += list((community.get("member_interests") or {}).keys())
    for item in community.get("content", []):
        parts += [item["title"], *item.get("tags", [])]
    parts += [product["title"], product["description"], *product["tags"]]
    return " ".join(parts)


@pytest.fixture(scope="module", params=FIT_SETS, ids=lambda fit_set: fit_set.id_prefix)
def fit_set(request) -> tuple[FitSet, list[dict]]:
    return request.param, load_cases(request.param.file)


def test_enough_cases_with_sequential_ids(fit_set):
    spec, cases = fit_set
    assert len(cases) >= spec.min_cases
    assert [c["id"] for c in cases] == [f"{spec.id_prefix}-{n:03d}" for n in range(1, len(cases) + 1)]


def test_every_line_follows_the_contract(fit_set):
    spec, cases = fit_set
    paths = category_paths()
    for case in cases:
        assert set(case) == {"id", "community", "product", "expect_warning", "class", "script"}, case["id"]
        assert isinstance(case["expect_warning"], bool)
        assert case["class"] in CLASSES and case["script"] in SCRIPTS, case["id"]
        community, product = case["community"], case["product"]
        assert isinstance(community["name"], str) and isinstance(community["description"], str), case["id"]
        assert community["name"] or not spec.names_required, case["id"]
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
        # the production parsers of the contract accept the line
        evidence_from_case(community)
        product_from_case(product)


def test_no_pair_appears_twice(fit_set):
    _, cases = fit_set
    pairs = Counter(
        json.dumps([c["community"], c["product"]], sort_keys=True, ensure_ascii=False) for c in cases
    )
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_every_class_and_script_is_present_and_holds_both_labels(fit_set):
    spec, cases = fit_set
    assert {c["class"] for c in cases} == CLASSES
    assert {c["script"] for c in cases} == SCRIPTS
    for key, names in (("class", CLASSES), ("script", SCRIPTS)):
        for name in names:
            labels = Counter(c["expect_warning"] for c in cases if c[key] == name)
            assert labels[True] >= 5 and labels[False] >= 5, (key, name, labels)
    scripts = Counter(c["script"] for c in cases)
    assert min(scripts.values()) >= spec.min_per_script, scripts
    assert min(Counter(c["class"] for c in cases).values()) >= 20


def test_labels_are_balanced(fit_set):
    _, cases = fit_set
    share = sum(c["expect_warning"] for c in cases) / len(cases)
    assert 0.40 <= share <= 0.50


def test_cases_are_varied(fit_set):
    spec, cases = fit_set
    communities = {json.dumps(c["community"], sort_keys=True, ensure_ascii=False) for c in cases}
    assert len(communities) >= 80
    assert len({c["product"]["title"] for c in cases}) >= (spec.min_titles or len(cases))
    assert len({c["product"]["category"] for c in cases}) >= 60


def test_script_tags_match_the_text(fit_set):
    spec, cases = fit_set
    for case in cases:
        text = owner_text(case)
        has_cjk = bool(CJK.search(text))
        if case["script"] == "english":
            assert not has_cjk, case["id"]
        elif case["script"] == "mixed":
            assert has_cjk and re.search(r"[A-Za-z]{2,}", text), case["id"]
        else:
            assert has_cjk, case["id"]
    traditional = " ".join(owner_text(c) for c in cases if c["script"] == "traditional")
    simplified = " ".join(owner_text(c) for c in cases if c["script"] == "simplified")
    for trad, simp in spec.script_pairs:
        assert trad in traditional and trad not in simplified
        assert simp in simplified and simp not in traditional


def test_interest_fits_rest_on_hundreds_of_members(fit_set):
    spec, cases = fit_set
    interest_cases = [c for c in cases if c["class"] == "interests"]
    assert all(c["community"].get("member_interests") for c in interest_cases)
    for case in interest_cases:
        if not case["expect_warning"]:
            assert sum(case["community"]["member_interests"].values()) >= 200, case["id"]
    small = [c for c in interest_cases if sum(c["community"]["member_interests"].values()) < 100]
    assert len(small) >= spec.min_small_interests and all(c["expect_warning"] for c in small)


def test_own_merchandise_fits_even_in_generic_categories(fit_set):
    spec, cases = fit_set
    own = [c for c in cases if c["class"] == "own_merch" and not c["expect_warning"]]
    assert sum(1 for c in own if c["product"]["category"].split("/")[0] in spec.generic_categories) >= 15
