"""Shape of the hand-labelled unseen fit set (tests/trust/data/fit_unseen.jsonl); no database.

The labels follow the product idea (docs/scorer-contract.md), not the scorer's output; this file
checks only that the set is well formed, varied and balanced. How well the scorer does on it is
measured by bench/scorer_eval.py and asserted elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from trust.scoring import evidence_from_case, product_from_case

REPO_ROOT = Path(__file__).resolve().parents[2]
UNSEEN_CASES = Path(__file__).resolve().parent / "data" / "fit_unseen.jsonl"
CATEGORIES = REPO_ROOT / "commerce" / "data" / "categories.txt"

CLASSES = {"traditional", "polysemy", "brand", "sparse", "own_merch", "interests", "evidence"}
SCRIPTS = {"traditional", "simplified", "english", "mixed"}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    with UNSEEN_CASES.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _category_paths() -> set[str]:
    lines = CATEGORIES.read_text(encoding="utf-8").splitlines()
    return {line.split("\t")[0].strip() for line in lines if line.strip() and not line.startswith("#")}


def _owner_text(case: dict) -> str:
    """Everything an owner wrote for the case (the category path comes from the tree)."""
    community, product = case["community"], case["product"]
    parts = [community.get("name", ""), community.get("description", ""), community.get("mission", "")]
    parts += community.get("attributes", [])
    parts += list((community.get("member_interests") or {}).keys())
    for item in community.get("content", []):
        parts += [item["title"], *item.get("tags", [])]
    parts += [product["title"], product["description"], *product["tags"]]
    return " ".join(parts)


def test_enough_cases_with_sequential_ids(cases):
    assert len(cases) >= 200
    assert [c["id"] for c in cases] == [f"unseen-{n:03d}" for n in range(1, len(cases) + 1)]


def test_every_line_follows_the_contract(cases):
    paths = _category_paths()
    for case in cases:
        assert set(case) == {"id", "community", "product", "expect_warning", "class", "script"}, case["id"]
        assert isinstance(case["expect_warning"], bool)
        community, product = case["community"], case["product"]
        assert isinstance(community["name"], str) and isinstance(community["description"], str)
        assert all(isinstance(a, str) and a for a in community["attributes"])
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


def test_no_pair_appears_twice(cases):
    pairs = Counter(
        json.dumps([c["community"], c["product"]], sort_keys=True, ensure_ascii=False) for c in cases
    )
    assert [pair for pair, n in pairs.items() if n > 1] == []


def test_every_class_and_script_is_present_and_holds_both_labels(cases):
    assert {c["class"] for c in cases} == CLASSES
    assert {c["script"] for c in cases} == SCRIPTS
    for key, names in (("class", CLASSES), ("script", SCRIPTS)):
        for name in names:
            labels = Counter(c["expect_warning"] for c in cases if c[key] == name)
            assert labels[True] >= 5 and labels[False] >= 5, (key, name, labels)
    scripts = Counter(c["script"] for c in cases)
    assert min(scripts.values()) >= 35, scripts
    assert min(Counter(c["class"] for c in cases).values()) >= 20


def test_labels_are_balanced(cases):
    share = sum(c["expect_warning"] for c in cases) / len(cases)
    assert 0.40 <= share <= 0.50


def test_cases_are_varied(cases):
    communities = {json.dumps(c["community"], sort_keys=True, ensure_ascii=False) for c in cases}
    assert len(communities) >= 80
    assert len({c["product"]["title"] for c in cases}) >= 200
    assert len({c["product"]["category"] for c in cases}) >= 60


def test_script_tags_match_the_text(cases):
    for case in cases:
        text = _owner_text(case)
        has_cjk = bool(CJK.search(text))
        if case["script"] == "english":
            assert not has_cjk, case["id"]
        elif case["script"] == "mixed":
            assert has_cjk and re.search(r"[A-Za-z]{2,}", text), case["id"]
        else:
            assert has_cjk, case["id"]
    traditional = " ".join(_owner_text(c) for c in cases if c["script"] == "traditional")
    simplified = " ".join(_owner_text(c) for c in cases if c["script"] == "simplified")
    for trad, simp in (("讀", "读"), ("會", "会"), ("車", "车"), ("體", "体")):
        assert trad in traditional and trad not in simplified
        assert simp in simplified and simp not in traditional


def test_the_traditional_class_uses_regional_words(cases):
    text = " ".join(_owner_text(c) for c in cases if c["class"] == "traditional")
    for word in ("咖啡豆", "烘焙", "讀書會", "親子", "馬拉松", "理財", "單車", "腳踏車", "軟體", "程式"):
        assert word in text, word


def test_sparse_communities_that_say_nothing_expect_a_warning(cases):
    sparse = [c for c in cases if c["class"] == "sparse"]
    bare = [
        c
        for c in sparse
        if not c["community"]["description"]
        and not c["community"]["attributes"]
        and not any(c["community"].get(k) for k in ("mission", "member_interests", "content", "sales"))
    ]
    assert len(bare) >= 15
    assert sum(c["expect_warning"] for c in sparse) >= 15


def test_interest_fits_rest_on_hundreds_of_members(cases):
    interest_cases = [c for c in cases if c["class"] == "interests"]
    assert all(c["community"].get("member_interests") for c in interest_cases)
    for case in interest_cases:
        if not case["expect_warning"]:
            assert sum(case["community"]["member_interests"].values()) >= 200, case["id"]
    small = [c for c in interest_cases if sum(c["community"]["member_interests"].values()) < 100]
    assert small and all(c["expect_warning"] for c in small)


def test_evidence_fits_carry_evidence_and_the_evidence_runs_both_ways(cases):
    evidence = [c for c in cases if c["class"] == "evidence"]
    for case in evidence:
        if not case["expect_warning"]:
            assert case["community"].get("content") or case["community"].get("sales"), case["id"]

    def refund_rate(case):
        """Highest refund rate among records with enough orders to mean something."""
        sales = [r for r in case["community"].get("sales", []) if r["orders"] >= 100]
        return max((r["refunds"] / r["orders"] for r in sales), default=0.0)

    heavy_refunds = [c for c in evidence if refund_rate(c) >= 0.10]
    assert len(heavy_refunds) >= 8 and all(c["expect_warning"] for c in heavy_refunds)
    assert sum(1 for c in evidence if not c["expect_warning"] and c["community"].get("content")) >= 5
    noise = [c for c in evidence if any(r["orders"] < 30 for r in c["community"].get("sales", []))]
    assert noise and not any(c["expect_warning"] for c in noise)  # a handful of orders decides nothing


def test_own_merchandise_fits_even_in_generic_categories(cases):
    own = [c for c in cases if c["class"] == "own_merch" and not c["expect_warning"]]
    generic = {"服饰鞋包", "文化艺术", "服务", "家居日用"}
    assert sum(1 for c in own if c["product"]["category"].split("/")[0] in generic) >= 15


# ---------------------------------------------------------------- the bench's per-group figures


def _scorer_eval():
    spec = importlib.util.spec_from_file_location("scorer_eval", REPO_ROOT / "bench" / "scorer_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_bench_figures_leave_undefined_figures_out():
    bench = _scorer_eval()
    mixed = bench.figures([True, False, True, False], [0.9, 0.1, 0.4, 0.6], [True, False, False, True])
    assert (mixed.auc, mixed.precision, mixed.recall, mixed.accuracy) == (0.75, 0.5, 0.5, 0.5)
    only_fits = bench.figures([False, False], [0.2, 0.8], [False, True])
    assert only_fits.auc is None and only_fits.recall is None
    assert only_fits.precision == 0.0 and only_fits.accuracy == 0.5
    no_warning_given = bench.figures([True, False], [0.2, 0.1], [False, False])
    assert no_warning_given.precision is None and no_warning_given.recall == 0.0


def test_bench_breaks_every_scorer_down_per_script_and_class(cases, capsys):
    bench = _scorer_eval()
    labels = [c["expect_warning"] for c in cases]
    perfect = bench.Scored(bench.Row("perfect", None, None, None, None), [float(y) for y in labels], labels)
    contrary = bench.Scored(
        bench.Row("contrary", None, None, None, None), [float(not y) for y in labels], [not y for y in labels]
    )
    for key, groups in (("script", SCRIPTS), ("class", CLASSES)):
        bench.print_breakdown(key, cases, [perfect, contrary])
        lines = capsys.readouterr().out.splitlines()
        rows = {line.split(" | ")[0].strip("| "): line for line in lines if line.startswith("| ")}
        assert set(rows) == {key, "---"} | groups
        for group in groups:
            n = sum(1 for c in cases if c[key] == group)
            assert f"| {group} | {n} (" in rows[group]
            assert rows[group].endswith("| 1.000, 1.00 / 1.00, 1.000 | 0.000, 0.00 / 0.00, 0.000 |"), rows[
                group
            ]
