"""Checks that hold only for the honest holdout fit set (tests/trust/data/fit_holdout.jsonl); no database.

The holdout was written without looking at the scorer, its lexicon terms or the other labelled
sets, with new communities and products, and labelled by the product idea only. Its labels must
not be tuned to the scorer's output; these tests and tests/trust/test_fit_sets.py check only that
the set is well formed, varied, balanced and disjoint from the sets the scorer was built on. How
well the scorer does on it is measured by
``bench/scorer_eval.py --cases tests/trust/data/fit_holdout.jsonl``.
"""

from __future__ import annotations

import pytest

from tests.trust.test_fit_sets import DATA, load_cases

OTHER_SETS = ("fit_dev.jsonl", "fit_extra.jsonl", "fit_unseen.jsonl")


@pytest.fixture(scope="module")
def holdout() -> list[dict]:
    return load_cases("fit_holdout.jsonl")


def test_holdout_shares_no_community_or_product_with_the_sets_the_scorer_was_built_on(holdout):
    others = [case for name in OTHER_SETS if (DATA / name).exists() for case in load_cases(name)]
    assert others
    names = {c["community"]["name"] for c in others}
    titles = {c["product"]["title"] for c in others}
    assert [c["id"] for c in holdout if c["community"]["name"] in names] == []
    assert [c["id"] for c in holdout if c["product"]["title"] in titles] == []


def test_sparse_communities_that_say_nothing_expect_a_warning(holdout):
    sparse = [c for c in holdout if c["class"] == "sparse"]
    bare = [c for c in sparse if not c["community"]["description"] and not c["community"]["attributes"]]
    assert len(bare) == len(sparse)  # the sparse class holds name-only communities
    readable_fits = [c for c in sparse if not c["expect_warning"]]
    assert len(readable_fits) >= 5 and sum(c["expect_warning"] for c in sparse) >= 15


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
