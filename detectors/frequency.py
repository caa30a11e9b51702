"""Word frequency against a human reference: how common the words of a text are in human writing.

The reference is the `wordfreq` package's English table (Speer, wordfreq 3, 2022: Wikipedia,
subtitles, news, books, web text, Reddit and Twitter, frozen before LLM text spread; data
CC BY-SA 4.0), read from the installed package, never copied here. A word's Zipf frequency is
log10 of its occurrences per billion words (the 3 commonest English words are near 7.5; a
word seen once per 100 million words is 1).

Machine text draws its words from the thick middle of the distribution: few typos, names or
slang (out-of-vocabulary and rare words), a steady mean. Human pages, formal or not, have a
longer rare tail. These features describe that tail and spread rather than a vocabulary list,
so a formal human text is not pushed towards "machine" for being formal.

Lookups are vectorised: each word is hashed in C (`map(hash, ...)`), found in a sorted array
of the table's hashes by binary search, and every statistic is a numpy reduction over the
whole batch.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import chain
from typing import Sequence

import numpy as np

from detectors.style import word_hashes, word_lists

RARE_ZIPF = 3.0          # under 1 in a million words
MID_ZIPF = (3.0, 4.5)    # the "sophisticated but common" band LLM prose favours
QUANTILES = (0.1, 0.5)


@lru_cache(maxsize=2)
def zipf_table(lang: str = "en") -> tuple[np.ndarray, np.ndarray]:
    """(sorted word hashes, Zipf frequency of each) for wordfreq's large table of `lang`.

    Keys are tokenised as `detectors.style.prepare` leaves words (lowercase, apostrophes
    dropped): "don't" becomes "dont"; where two entries fold to one key the commoner wins.
    Cached per process: Python's str/bytes hash is salted per process, so the array is never
    pickled (detectors hold no copy of it)."""
    import wordfreq
    words: list[bytes] = []
    zipfs: list[float] = []
    # get_frequency_list gives words in buckets of one centibel, commonest first
    for centibels, bucket in enumerate(wordfreq.get_frequency_list(lang, wordlist="large")):
        zipf = 9.0 - centibels / 100.0
        for word in bucket:
            words.append(word.replace("'", "").replace("\u2019", "").encode("utf-8", "surrogatepass"))
            zipfs.append(zipf)
    hashes = word_hashes(words)
    values = np.asarray(zipfs, dtype=np.float32)
    # commonest first in the list, so the first occurrence of a hash holds its highest Zipf
    unique, first = np.unique(hashes, return_index=True)
    return unique, values[first]


def lookup(hashes: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Zipf frequency of each hashed word; 0 where the word is not in the table."""
    keys, values = table
    index = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
    return np.where(keys[index] == hashes, values[index], np.float32(0.0))


def grouped_quantiles(values: np.ndarray, owner: np.ndarray, n: int, quantiles: Sequence[float]) -> np.ndarray:
    """(n, len(quantiles)): the lower q-quantile of each group's values (0 for an empty group)."""
    out = np.zeros((n, len(quantiles)), dtype=np.float64)
    if len(values) == 0:
        return out
    order = np.lexsort((values, owner))
    counts = np.bincount(owner, minlength=n)
    starts = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    has = counts > 0
    sorted_values = values[order]
    for column, q in enumerate(quantiles):
        position = starts[has] + np.floor(q * (counts[has] - 1)).astype(np.int64)
        out[has, column] = sorted_values[position]
    return out


class FrequencyDetector:
    """Zipf-frequency profile of a text's words against wordfreq's English table."""

    name = "freq"
    version = "1"
    feature_names = (
        "zipf_mean",      # mean Zipf frequency of the words found in the table
        "zipf_std",       # their spread
        "zipf_q10",       # 10th percentile: how rare the rarer words are
        "zipf_median",
        "oov_rate",       # share of letter words not in the table (names, typos, slang, coinages)
        "rare_rate",      # share of letter words found with Zipf < 3
        "mid_rate",       # share of letter words with Zipf in [3, 4.5)
    )

    def __init__(self, lang: str = "en"):
        self.lang = lang

    def features(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, len(self.feature_names)), dtype=np.float64)
        if n == 0:
            return out.astype(np.float32)
        lists = word_lists(texts)
        words = list(chain.from_iterable(lists))
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=n)
        owner = np.repeat(np.arange(n), counts)
        # letter words only: numbers are not in the table, and ASCII bytes.isalpha is C-level;
        # words with other scripts' letters count (bytes.isascii is False for them)
        letters = (np.fromiter(map(bytes.isalpha, words), dtype=bool, count=len(words))
                   | ~np.fromiter(map(bytes.isascii, words), dtype=bool, count=len(words)))
        zipf = lookup(word_hashes(words), zipf_table(self.lang))
        owner, zipf = owner[letters], zipf[letters].astype(np.float64)
        known = zipf > 0
        total = np.bincount(owner, minlength=n).astype(np.float64)
        found = np.bincount(owner[known], minlength=n).astype(np.float64)
        per_found = 1.0 / np.maximum(found, 1.0)
        mean = np.bincount(owner[known], weights=zipf[known], minlength=n) * per_found
        squares = np.bincount(owner[known], weights=zipf[known] ** 2, minlength=n) * per_found
        out[:, 0] = mean
        out[:, 1] = np.sqrt(np.maximum(squares - mean * mean, 0.0))
        out[:, 2:4] = grouped_quantiles(zipf[known], owner[known], n, QUANTILES)
        per_word = 1.0 / np.maximum(total, 1.0)
        out[:, 4] = (total - found) * per_word
        out[:, 5] = np.bincount(owner[known & (zipf < RARE_ZIPF)], minlength=n) * per_word
        mid = known & (zipf >= MID_ZIPF[0]) & (zipf < MID_ZIPF[1])
        out[:, 6] = np.bincount(owner[mid], minlength=n) * per_word
        return out.astype(np.float32)
