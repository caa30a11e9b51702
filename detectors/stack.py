"""The detector stack: fold once, run every detector, combine into one calibrated probability.

A trained stack is a folder of plain files, never a pickle:
  stack.json   feature names, detector versions, the logistic stacker, the isotonic
               calibration, the date prior, and the sha256 of every other file
  ngram.ftz    the quantised fastText model
The stacker sees the fastText score as one feature among the others; it is trained on
out-of-fold fastText scores, so it learns how much to trust fastText on unseen text.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from detectors.calibration import IsotonicCalibrator, LogisticModel, fit_isotonic, fit_logistic
from detectors.textnorm import fold_for_detection

FORMAT = 1
STACK_FILE = "stack.json"
NGRAM_FILE = "ngram.ftz"
# ChatGPT's public release: before it, machine-written web text was rare.
DATE_PRIOR_CUTOFF = dt.datetime(2022, 11, 30, tzinfo=dt.timezone.utc)
DEFAULT_DATE_PRIOR_ODDS = 0.05


class ModelFileError(ValueError):
    """A stack folder that is missing, incomplete, altered or of an unknown format."""


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def apply_date_prior(probabilities: np.ndarray, dates: Sequence[dt.datetime | None],
                     odds_ratio: float, cutoff: dt.datetime = DATE_PRIOR_CUTOFF) -> np.ndarray:
    """Bayes with a prior: a text first seen before `cutoff` has its odds of being
    machine-written multiplied by `odds_ratio` (1.0 switches the prior off)."""
    before = np.array([d is not None and d < cutoff for d in dates], dtype=bool)
    if odds_ratio == 1.0 or not before.any():
        return probabilities
    p = probabilities.astype(np.float64)
    scaled = p * odds_ratio / (p * odds_ratio + (1.0 - p))
    return np.where(before, scaled, p).astype(np.float32)


@dataclass
class StackScores:
    probability: np.ndarray                 # (n,) calibrated P(machine-written), date prior applied
    features: np.ndarray                    # (n, k) every detector's features, named by feature_names
    feature_names: tuple[str, ...]
    residue: list[str | None]               # the first chatbot-residue phrase found, if any


class DetectorStack:
    def __init__(self, detectors: list, stacker: LogisticModel, calibrator: IsotonicCalibrator,
                 date_prior_odds: float = DEFAULT_DATE_PRIOR_ODDS):
        self.detectors = detectors
        self.stacker = stacker
        self.calibrator = calibrator
        self.date_prior_odds = date_prior_odds
        self.feature_names = tuple(f"{d.name}.{f}" for d in detectors for f in d.feature_names)
        self.versions = {d.name: d.version for d in detectors}

    def features(self, texts: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        folded = [fold_for_detection(t) for t in texts]
        columns = [d.features(folded) for d in self.detectors]
        return (np.concatenate(columns, axis=1) if columns else np.zeros((len(texts), 0), np.float32)), folded

    def score(self, texts: Sequence[str], dates: Sequence[dt.datetime | None] | None = None) -> StackScores:
        features, folded = self.features(texts)
        probability = self.calibrator(self.stacker.decision(features)).astype(np.float32)
        if dates is not None:
            probability = apply_date_prior(probability, dates, self.date_prior_odds)
        residue = next((d for d in self.detectors if d.name == "residue"), None)
        matches = residue.matches(folded) if residue is not None else [None] * len(texts)
        return StackScores(probability, features, self.feature_names, matches)
