"""How much of a corpus is machine-written: adjusted classify-and-count.

The share of documents at or above a threshold is not the machine-written share: the
detector misses some machine text (TPR < 1) and flags some human text (FPR > 0). With
the detector's rates measured on held-out labelled text, the observed share q gives the
estimate (q - FPR) / (TPR - FPR) (Forman, "Quantifying counts and costs via
classification", Data Min. Knowl. Disc. 2008), clipped to [0, 1]. Its 95% interval
combines the binomial uncertainty of q and of both rates (delta method). The estimate is
only as good as the assumption that the rates carry over to the corpus.

Rates come from `score_histograms.json` in a model folder: per class, counts of held-out
probabilities in fixed bins, so the rates can be read at any threshold.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BINS = 1000
HISTOGRAMS_FILE = "score_histograms.json"


@dataclass(frozen=True)
class Rates:
    threshold: float
    tpr: float
    fpr: float
    machine: int     # held-out machine-written texts the rates were counted on
    human: int


def histograms(probability: np.ndarray, is_machine: np.ndarray) -> dict[str, list[int]]:
    """Counts of probabilities per bin [i/BINS, (i+1)/BINS), the last bin closed, per class."""
    # the epsilon keeps a grid value like 0.29 (289.99999999999994 bins) in its own bin
    bins = np.minimum(np.floor(np.asarray(probability, dtype=np.float64) * BINS + 1e-9).astype(np.int64), BINS - 1)
    y = np.asarray(is_machine, dtype=bool)
    return {"machine": np.bincount(bins[y], minlength=BINS).tolist(),
            "human": np.bincount(bins[~y], minlength=BINS).tolist()}


def rates_at(counts: dict[str, list[int]], threshold: float) -> Rates:
    """TPR and FPR of `probability >= threshold` for thresholds below 1, to the bin (a
    threshold inside a bin counts the whole bin: thresholds on the 0.001 grid are exact)."""
    first = min(BINS, max(0, math.ceil(round(threshold * BINS, 9))))
    machine, human = np.asarray(counts["machine"]), np.asarray(counts["human"])
    n_machine, n_human = int(machine.sum()), int(human.sum())
    if n_machine == 0 or n_human == 0:
        raise ValueError("score histograms need held-out texts of both classes")
    return Rates(threshold, float(machine[first:].sum() / n_machine), float(human[first:].sum() / n_human),
                 n_machine, n_human)


@dataclass(frozen=True)
class ShareEstimate:
    estimate: float
    low: float          # 95% interval
    high: float
    flagged_share: float   # share at or above the threshold, uncorrected
    documents: int


def adjusted_share(flagged: int, documents: int, rates: Rates) -> ShareEstimate | None:
    """Adjusted classify-and-count; None when it cannot be computed (no documents, or a
    detector no better than chance at this threshold)."""
    separation = rates.tpr - rates.fpr
    if documents == 0 or separation <= 0.01:
        return None
    q = flagged / documents
    theta = (q - rates.fpr) / separation
    variance = (q * (1 - q) / documents
                + theta ** 2 * rates.tpr * (1 - rates.tpr) / rates.machine
                + (1 - theta) ** 2 * rates.fpr * (1 - rates.fpr) / rates.human) / separation ** 2
    half = 1.96 * math.sqrt(max(variance, 0.0))
    clip = lambda x: min(1.0, max(0.0, x))  # noqa: E731
    return ShareEstimate(clip(theta), clip(theta - half), clip(theta + half), q, documents)
