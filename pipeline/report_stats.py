"""Figures for the run report, as pure functions of column values (no Beam, no I/O).

Tail retention follows what model collapse removes first (Shumailov et al., Nature 2024): the
rare words and phrasings. The filter should not thin them itself, so the report compares the
input with the kept output on the same number of tokens, since distinct-n-gram ratios and
tail mass both depend on sample size.
"""
from __future__ import annotations

import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np

_WORD = re.compile(r"\w+")
_DIGITS = re.compile(r"\d+")


def source_group(path: str) -> str:
    """An input file's name with digit runs as '#': the shards of one source fall together."""
    return _DIGITS.sub("#", path.rsplit("/", 1)[-1])


def domain_of(url: str | None) -> str:
    if not url:
        return "(no url)"
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    host = host.removeprefix("www.")
    return host or "(no host)"


def histogram(values: np.ndarray, bins: int = 20, low: float = 0.0, high: float = 1.0) -> list[int]:
    """Counts in `bins` equal bins over [low, high]; the top edge is inside the last bin."""
    if len(values) == 0:
        return [0] * bins
    index = np.clip(((np.asarray(values, dtype=np.float64) - low) / (high - low) * bins).astype(np.int64), 0, bins - 1)
    return np.bincount(index, minlength=bins).tolist()


def size_histogram(sizes: Iterable[int]) -> list[tuple[str, int]]:
    """Cluster sizes in powers-of-two bins: 2, 3-4, 5-8, ..."""
    counts: dict[int, int] = {}
    for size in sizes:
        if size >= 2:
            exponent = int(np.ceil(np.log2(size)))
            counts[exponent] = counts.get(exponent, 0) + 1
    out = []
    for exponent in range(1, max(counts, default=0) + 1):
        low, high = 2 ** (exponent - 1) + 1, 2 ** exponent
        out.append((str(high) if low == high else f"{low}-{high}", counts.get(exponent, 0)))
    return out


def tokens(texts: Iterable[str], limit: int) -> list[str]:
    """Lower-cased word tokens of the texts in order, at most `limit`."""
    out: list[str] = []
    for text in texts:
        out.extend(m.lower() for m in _WORD.findall(text))
        if len(out) >= limit:
            return out[:limit]
    return out


@dataclass(frozen=True)
class TailStats:
    tokens: int
    vocabulary: int
    tail_mass: float          # share of tokens outside the reference top-k words (of both streams)
    distinct: dict[int, float]  # distinct n-grams / n-grams, n = 1, 2, 3
    zipf_slope: float         # slope of log frequency on log rank, ranks 1..zipf_ranks
    rank_frequency: list[tuple[int, int]]  # (rank, count) at log-spaced ranks, for the plot


def _ids(words: list[str], vocabulary: dict[str, int]) -> np.ndarray:
    return np.fromiter((vocabulary.setdefault(w, len(vocabulary)) for w in words), dtype=np.int64, count=len(words))


def _distinct_ratio(ids: np.ndarray, n: int, size: int) -> float:
    if len(ids) < n:
        return 0.0
    code = ids[: len(ids) - n + 1].copy()
    for k in range(1, n):   # base-`size` digits; size < 2**21 keeps trigram codes inside int64
        code = code * size + ids[k: len(ids) - n + 1 + k]
    return len(np.unique(code)) / len(code)


def _zipf(counts: np.ndarray, ranks: int) -> tuple[float, list[tuple[int, int]]]:
    ordered = np.sort(counts)[::-1]
    top = ordered[:ranks]
    if len(top) < 2:
        return 0.0, [(i + 1, int(c)) for i, c in enumerate(top)]
    slope = float(np.polyfit(np.log(np.arange(1, len(top) + 1)), np.log(top), 1)[0])
    marks = np.unique(np.geomspace(1, len(ordered), num=min(60, len(ordered))).astype(np.int64))
    return slope, [(int(r), int(ordered[r - 1])) for r in marks]


def tail_statistics(words: list[str], reference_top: set[str], zipf_ranks: int = 1000) -> TailStats:
    """Tail figures of one token stream; `reference_top` is the input's top-k words, so the
    tail mass of the input and of the kept output count the same words as common."""
    vocabulary: dict[str, int] = {}
    ids = _ids(words, vocabulary)
    counts = np.bincount(ids, minlength=len(vocabulary)) if len(ids) else np.zeros(0, dtype=np.int64)
    size = max(len(vocabulary), 1)
    if size >= 1 << 21:
        raise ValueError("too many distinct words for the n-gram codes; lower the token budget")
    in_top = sum(int(counts[i]) for w, i in vocabulary.items() if w in reference_top)
    slope, marks = _zipf(counts, zipf_ranks)
    return TailStats(tokens=len(words), vocabulary=len(vocabulary),
                     tail_mass=1 - in_top / len(words) if words else 0.0,
                     distinct={n: _distinct_ratio(ids, n, size) for n in (1, 2, 3)},
                     zipf_slope=slope, rank_frequency=marks)


def top_words(words: list[str], k: int) -> set[str]:
    counts = Counter(words)
    return set(sorted(counts, key=lambda w: (-counts[w], w))[:k])


def compare_tails(input_texts: Iterable[str], kept_texts: Iterable[str], max_tokens: int = 1_000_000,
                  top_k: int = 1000) -> tuple[TailStats, TailStats] | None:
    """Tail figures of the input and the kept output on the same number of tokens (the smaller
    stream's, up to max_tokens); None when either has no token."""
    words_in, words_kept = tokens(input_texts, max_tokens), tokens(kept_texts, max_tokens)
    budget = min(len(words_in), len(words_kept))
    if budget == 0:
        return None
    words_in, words_kept = words_in[:budget], words_kept[:budget]
    # Common words counted over both streams: taken from the input alone, they would be the
    # input's own head by construction and make its tail look thinner than the kept output's.
    reference = top_words(words_in + words_kept, top_k)
    return tail_statistics(words_in, reference), tail_statistics(words_kept, reference)
