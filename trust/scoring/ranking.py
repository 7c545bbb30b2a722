"""Ranking and classification figures for the scorer's evaluation, without sklearn."""

from __future__ import annotations

from collections.abc import Sequence


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half).

    Higher ``scores`` must mean "more positive". Mann-Whitney U with average ranks.
    """
    if len(labels) != len(scores):
        raise ValueError("labels and scores differ in length")
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("ROC AUC needs both classes")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = average_rank
        i = j + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label)
    return (positive_rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def precision_recall(labels: Sequence[bool], predicted: Sequence[bool]) -> tuple[float, float]:
    """Precision and recall of the positive class (here: a warning)."""
    if len(labels) != len(predicted):
        raise ValueError("labels and predictions differ in length")
    true_pos = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    false_pos = sum(1 for y, p in zip(labels, predicted, strict=True) if p and not y)
    false_neg = sum(1 for y, p in zip(labels, predicted, strict=True) if y and not p)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 0.0
    return precision, recall


def best_f1_threshold(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """Threshold on ``scores`` (predict positive when score >= it) with the best F1 on these labels.

    Used to give threshold-free peers their most favourable operating point.
    """
    best, best_f1 = float("inf"), -1.0
    for candidate in sorted(set(scores)):
        precision, recall = precision_recall(labels, [s >= candidate for s in scores])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        if f1 > best_f1:
            best, best_f1 = candidate, f1
    return best
