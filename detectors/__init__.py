"""Synthetic-text detectors and the text normalisation they share.

Plain Python, no Beam import: every piece here is usable and testable outside a
pipeline. Detectors take a batch of texts and return one array of scores.
"""
from detectors.textnorm import normalize_for_scoring, text_hash

__all__ = ["normalize_for_scoring", "text_hash"]
