"""Checks that hold only for the hand-labelled unseen fit set (tests/trust/data/fit_unseen.jsonl),
and the bench's per-group figures; no database.

The labels follow the product idea (docs/scorer-contract.md), not the scorer's output; these tests
and tests/trust/test_fit_sets.py check only that the set is well formed, varied and balanced. How
well the scorer does on it is measured by bench/scorer_eval.py and asserted elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.trust.test_fit_sets import CLASSES, REPO_ROOT, SCRIPTS, load_cases, owner_text


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return load_cases("fit_unseen.jsonl")


def test_the_traditional_class_uses_regional_words(cases):
    text = " ".join(owner_text(c) for c in cases if c["class"] == "traditional")
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
