"""LLM style vocabulary: how often a text uses the words instruction-tuned models over-use.

The word list (detectors/data/llm_vocabulary.txt, from Kobak et al. 2024 and Liang et al.
2024; its header says how it was selected) ships as package data. Words are matched whole,
after the tokenisation of `detectors.style.prepare` (lowercase, apostrophes dropped), by
comparing word hashes with numpy: no regex alternation, no Python code per word.
"""
from __future__ import annotations

from importlib import resources
from itertools import chain
from typing import Sequence

import numpy as np

from detectors.style import is_member, sorted_hashes, word_hashes, word_lists

VOCABULARY_FILE = "llm_vocabulary.txt"


def load_vocabulary(name: str = VOCABULARY_FILE) -> tuple[str, ...]:
    """The words of a vocabulary file shipped in detectors/data (comments and blanks skipped)."""
    text = resources.files("detectors").joinpath("data", name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


class LexiconDetector:
    """Rate and variety of LLM style words, per 1,000 words."""

    name = "lexicon"
    version = "1"
    feature_names = ("llm_vocab_rate", "llm_vocab_distinct")

    def __init__(self, words: Sequence[str] | None = None):
        self.words = tuple(words) if words is not None else load_vocabulary()

    def features(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        words = word_lists(texts)
        counts = np.fromiter(map(len, words), dtype=np.int64, count=n)
        hashes = word_hashes(list(chain.from_iterable(words)))
        owner = np.repeat(np.arange(n), counts)
        hit = is_member(hashes, sorted_hashes(self.words))
        matches = np.bincount(owner[hit], minlength=n)
        # distinct (text, word) pairs among the hits: few, so sorting them is cheap
        pairs = np.unique(np.stack([owner[hit], hashes[hit]]), axis=1) if hit.any() else np.zeros((2, 0), np.int64)
        distinct = np.bincount(pairs[0], minlength=n)
        per_kword = 1000.0 / np.maximum(counts, 1)
        return np.stack([matches * per_kword, distinct * per_kword], axis=1).astype(np.float32)
