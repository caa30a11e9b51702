"""Detector quality measures: AUROC, TPR at a fixed FPR, expected calibration error.

Plain numpy, rank-based, ties handled exactly (a tied human/machine pair counts one half).
`labels` are 1 for machine-written, 0 for human.
"""
from __future__ import annotations

import math

import numpy as np


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.shape[0]} scores for {labels.shape[0]} labels")
    return scores, labels


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random machine text outscores a random human one; NaN without both."""
    scores, labels = _check(scores, labels)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # mid-ranks of tie groups, 1-based
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def threshold_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """The smallest threshold t such that at most `fpr` of human texts score above t."""
    scores, labels = _check(scores, labels)
    human = np.sort(scores[~labels])
    if len(human) == 0:
        return float("nan")
    allowed = int(np.floor(fpr * len(human)))  # human texts that may score above t
    return float(human[len(human) - allowed - 1]) if allowed < len(human) else float("-inf")


def tpr_at_fpr(scores: np.ndarray, labels: np.ndarray, fpr: float) -> float:
    """Share of machine texts scoring strictly above the threshold that keeps FPR <= fpr."""
    scores, labels = _check(scores, labels)
    if labels.sum() == 0:
        return float("nan")
    return float((scores[labels] > threshold_at_fpr(scores, labels, fpr)).mean())


def class_balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Weights that give each class half the total: what a 50% machine prior looks like."""
    labels = np.asarray(labels).astype(bool)
    n_machine = max(int(labels.sum()), 1)
    n_human = max(int((~labels).sum()), 1)
    return np.where(labels, 0.5 / n_machine, 0.5 / n_human) * len(labels)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10,
                               weights: np.ndarray | None = None) -> float:
    """Mean |observed machine share - mean predicted probability| over equal-width bins,
    weighted by bin size (or by the total of `weights` in the bin)."""
    probabilities, labels = _check(probabilities, labels)
    if len(probabilities) == 0:
        return float("nan")
    w = np.ones(len(probabilities)) if weights is None else np.asarray(weights, np.float64)
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    predicted = np.bincount(which, weights=w * probabilities, minlength=bins)
    observed = np.bincount(which, weights=w * labels.astype(np.float64), minlength=bins)
    return float(np.abs(observed - predicted).sum() / w.sum())


def threshold_for_max_fpr(human_scores: np.ndarray, max_fpr: float, step: float = 0.001,
                          floor: float = 0.5) -> float:
    """The smallest threshold on a grid of `step` (and at least `floor`) at which the rule
    `score >= threshold` flags at most `max_fpr` of the human texts.

    The k = floor(max_fpr * n) highest human scores may be flagged; the (k+1)-th highest must
    not, so the threshold is the first grid value strictly above it. A grid value, not the
    score itself, so the default reads as a plain number and does not fit one text's score."""
    scores = np.sort(np.asarray(human_scores, dtype=np.float64))[::-1]
    if len(scores) == 0:
        raise ValueError("choosing a threshold needs human texts")
    allowed = int(np.floor(max_fpr * len(scores) + 1e-9))
    if allowed >= len(scores):
        return floor
    highest_unflagged = scores[allowed]
    grid = math.floor(highest_unflagged / step + 1e-9) + 1     # first grid point strictly above it
    return float(max(floor, round(grid * step, 10)))
