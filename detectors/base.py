"""What every synthetic-text detector offers: a name, a version, named features, a batch API.

A detector takes a batch of texts that were already folded by
`detectors.textnorm.fold_for_detection` (the stack folds once, then hands the same folded
texts to every detector) and returns one float32 row of features per text. The stacker
combines the features of all detectors into one calibrated probability.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Detector(Protocol):
    name: str                          # short, stable: it prefixes the feature names in outputs
    version: str                       # bumped whenever the same text would score differently
    feature_names: tuple[str, ...]     # one per column of `features`

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(feature_names)) float32; never raises on any str, empty included."""
        ...
