"""MinHash signatures and LSH band keys for near-duplicate detection, many texts at a time.

The permutation scheme is datasketch's default (`affine32`: each 32-bit shingle hash is
MurmurHash3-finalised, then mapped by `a*h + b mod 2**32` with datasketch's seeded
parameters), so a signature here equals `datasketch.MinHash(num_perm, seed).update_batch`
over the same shingle hashes, bit for bit. What differs is the cost: datasketch hashes
one shingle at a time in Python; here every shingle of a whole batch of documents is
hashed with a few numpy passes over the batch's code points (a polynomial rolling hash
over substrings), and the permutations run on one (shingles x permutations) array.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

WORD, CHAR = "word", "char"
_NON_WORD = re.compile(r"[\W_]+")
_DIGIT = re.compile(r"\d")
_BASE = np.uint64(0x100000001B3)           # odd, so invertible mod 2**64
_CHUNK_CELLS = 4_000_000                    # shingles x permutations per numpy pass (16 MB)
_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35), np.uint32(16))
_MIX64 = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27), np.uint64(0x94D049BB133111EB), np.uint64(31))
_ASCII_FOLD = bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(128)) + bytes(128)
_ASCII_FOLD_DIGITS = _ASCII_FOLD.translate(bytes(48 if chr(c).isdigit() else c for c in range(256)))
# UTF-8 bytes: ASCII folded as above, bytes of multi-byte characters kept for _fold_run
_MIXED_FOLD = _ASCII_FOLD[:128] + bytes(range(128, 256))
_MIXED_FOLD_DIGITS = _ASCII_FOLD_DIGITS[:128] + bytes(range(128, 256))
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
EMPTY = np.uint32(0xFFFFFFFF)              # signature value of a document with no shingles


@dataclass(frozen=True)
class MinHashConfig:
    """How documents become sets of shingles and how those sets are sketched."""
    ngram: int = 5
    unit: str = WORD                # word n-grams; `char` for languages written without spaces
    fold_digits: bool = False
    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    seed: int = 1

    def __post_init__(self) -> None:
        if self.unit not in (WORD, CHAR):
            raise ValueError(f"shingle unit must be '{WORD}' or '{CHAR}', not {self.unit!r}")
        if self.ngram < 1:
            raise ValueError(f"n-gram size must be at least 1, not {self.ngram}")
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ValueError(f"{self.bands} bands x {self.rows} rows needs at least {self.bands * self.rows} "
                             f"permutations; {self.num_perm} were configured")


def normalize_for_shingling(text: str, fold_digits: bool = False) -> str:
    """Lowercase, NFKC, every run of punctuation/space/underscore as one space, trimmed.

    Same result as `normalize_unicode`, faster: ASCII is folded by one bytes.translate,
    and only the runs of non-ASCII characters go through the Unicode regex (which costs
    ~35 us per KB of text); most web text has a handful of such runs."""
    if text.isascii():
        table = _ASCII_FOLD_DIGITS if fold_digits else _ASCII_FOLD
        return " ".join(text.encode("ascii").translate(table).decode("ascii").split())
    lowered = unicodedata.normalize("NFKC", text).lower().encode("utf-8", "surrogatepass")
    table = _MIXED_FOLD_DIGITS if fold_digits else _MIXED_FOLD
    fold_run = _fold_run_digits if fold_digits else _fold_run
    folded = _NON_ASCII_RUN.sub(fold_run, lowered.translate(table))
    return " ".join(folded.decode("utf-8", "surrogatepass").split())


def _fold_run_text(run: bytes, fold_digits: bool) -> bytes:
    folded = _NON_WORD.sub(" ", run.decode("utf-8", "surrogatepass"))
    return (_DIGIT.sub("0", folded) if fold_digits else folded).encode("utf-8", "surrogatepass")


_fold_short_run = lru_cache(maxsize=16384)(_fold_run_text)  # curly quotes, dashes, accented letters recur


def _fold_run(match: re.Match, fold_digits: bool = False) -> bytes:
    run = match.group()
    return _fold_short_run(run, fold_digits) if len(run) <= 16 else _fold_run_text(run, fold_digits)


def _fold_run_digits(match: re.Match) -> bytes:
    return _fold_run(match, True)


def normalize_unicode(text: str, fold_digits: bool = False) -> str:
    """The general path of normalize_for_shingling, for any text."""
    folded = _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()
    return _DIGIT.sub("0", folded) if fold_digits else folded


def shingles(text: str, config: MinHashConfig = MinHashConfig()) -> set[str]:
    """The shingle set of one text: the plain reference that the batch hashing follows.

    Too-short texts (fewer than n words or characters) have no shingles.
    """
    norm = normalize_for_shingling(text, config.fold_digits)
    n = config.ngram
    if config.unit == CHAR:
        return {norm[i:i + n] for i in range(len(norm) - n + 1)}
    words = norm.split(" ") if norm else []
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def mix64(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _MIX64  # splitmix64 finaliser: spreads the polynomial hash over all bits
    h = (h ^ (h >> s1)) * m1
    h = (h ^ (h >> s2)) * m2
    return h ^ (h >> s3)


def _fmix32(h: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX32  # what datasketch applies to every hash in the affine32 scheme
    h = (h ^ (h >> s1)) * m1
    h = (h ^ (h >> s2)) * m2
    return h ^ (h >> s3)


@lru_cache(maxsize=1)
def _power_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i mod 2**64 for i < size."""
    inverse = np.uint64(pow(int(_BASE), -1, 2**64))
    with np.errstate(over="ignore"):
        powers = np.multiply.accumulate(np.full(size, _BASE, dtype=np.uint64))
        inverses = np.multiply.accumulate(np.full(size, inverse, dtype=np.uint64))
    powers = np.concatenate(([np.uint64(1)], powers[:-1]))
    inverses = np.concatenate(([np.uint64(1)], inverses[:-1]))
    return powers, inverses


def _powers(size: int) -> tuple[np.ndarray, np.ndarray]:
    return _power_tables(1 << max(16, (size - 1).bit_length()))


def shingle_hashes(texts: Sequence[str], config: MinHashConfig = MinHashConfig()) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every shingle of every text, and the owning text's index of each.

    A shingle is a substring of the normalised text (n words with their single spaces, or
    n characters), so its hash is a substring hash of one prefix-sum array over the whole
    batch: no Python loop per word or per shingle.
    """
    normalized = [normalize_for_shingling(t, config.fold_digits) for t in texts]
    lengths = np.fromiter((len(s) for s in normalized), dtype=np.int64, count=len(normalized))
    offsets = np.zeros(len(normalized) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return np.zeros(0, np.uint32), np.zeros(0, np.int64)
    points = np.frombuffer("".join(normalized).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    doc_of_point = np.repeat(np.arange(len(normalized), dtype=np.int64), lengths)
    n = config.ngram
    if config.unit == CHAR:
        starts = np.flatnonzero(np.arange(total) + n <= offsets[doc_of_point + 1])
        ends = starts + n
    else:
        is_word = points != 32
        previous_space = np.ones(total, dtype=bool)
        previous_space[1:] = ~is_word[:-1]
        previous_space[offsets[:-1][lengths > 0]] = True
        next_space = np.ones(total, dtype=bool)
        next_space[:-1] = ~is_word[1:]
        next_space[offsets[1:][lengths > 0] - 1] = True
        word_starts = np.flatnonzero(is_word & previous_space)
        word_ends = np.flatnonzero(is_word & next_space) + 1
        if len(word_starts) < n:
            return np.zeros(0, np.uint32), np.zeros(0, np.int64)
        same_doc = doc_of_point[word_starts[:len(word_starts) - n + 1]] == doc_of_point[word_starts[n - 1:]]
        starts = word_starts[:len(word_starts) - n + 1][same_doc]
        ends = word_ends[n - 1:][same_doc]
    powers, inverses = _powers(total + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(points.astype(np.uint64) * powers[:total], out=prefix[1:])
        raw = (prefix[ends] - prefix[starts]) * inverses[starts] + (ends - starts).astype(np.uint64)
        hashes = (mix64(raw) >> np.uint64(32)).astype(np.uint32)
    return hashes, doc_of_point[starts]


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters for (num_perm, seed)."""
    from datasketch import MinHash  # imported here: only the parameters are taken from it
    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


class MinHasher:
    """Batch API: texts in, one (len(texts), num_perm) uint32 signature array out."""

    def __init__(self, config: MinHashConfig = MinHashConfig()):
        self.config = config
        self._a, self._b = permutations(config.num_perm, config.seed)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of texts too short to shingle are all EMPTY (see `has_shingles`)."""
        hashes, owner = shingle_hashes(texts, self.config)
        return self.signatures_from_hashes(hashes, owner, len(texts))

    def signatures_from_hashes(self, hashes: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
        """Signatures from shingle hashes grouped by owner (owner ascending)."""
        signatures = np.full((count, self.config.num_perm), EMPTY, dtype=np.uint32)
        if len(hashes) == 0:
            return signatures
        mixed = _fmix32(hashes.astype(np.uint32))
        step = max(1, _CHUNK_CELLS // self.config.num_perm)
        for lo in range(0, len(mixed), step):
            chunk, chunk_owner = mixed[lo:lo + step], owner[lo:lo + step]
            # (permutations x shingles): reduceat along the contiguous axis is ~20x faster
            permuted = self._a[:, None] * chunk[None, :]
            permuted += self._b[:, None]
            firsts = np.flatnonzero(np.r_[True, chunk_owner[1:] != chunk_owner[:-1]])
            minima = np.minimum.reduceat(permuted, firsts, axis=1).T
            rows = chunk_owner[firsts]
            signatures[rows] = np.minimum(signatures[rows], minima)
        return signatures

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(documents, bands) uint64: one hash of each band's rows, salted by the band index."""
        config = self.config
        bands = signatures[:, :config.bands * config.rows].reshape(len(signatures), config.bands, config.rows)
        with np.errstate(over="ignore"):
            keys = np.broadcast_to(np.arange(1, config.bands + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15),
                                   (len(signatures), config.bands)).copy()
            for row in range(config.rows):
                keys = mix64(keys ^ bands[:, :, row].astype(np.uint64))
        return keys


def bottom_k_sets(hashes: np.ndarray, owner: np.ndarray, count: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per text, its k smallest distinct shingle hashes, sorted: the whole hashed shingle set
    for texts with fewer than k distinct shingles, a bottom-k sketch of it otherwise.

    Returned packed, as (values, offsets): text i's set is values[offsets[i]:offsets[i + 1]].
    """
    combined = np.sort((owner.astype(np.uint64) << np.uint64(32)) | hashes.astype(np.uint64))
    combined = combined[np.r_[True, combined[1:] != combined[:-1]]] if len(combined) else combined
    owners = (combined >> np.uint64(32)).astype(np.int64)
    values = (combined & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    bounds = np.searchsorted(owners, np.arange(count + 1))
    rank = np.arange(len(values)) - np.repeat(bounds[:-1], np.diff(bounds))
    keep = rank < k
    sizes = np.minimum(np.diff(bounds), k)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return values[keep], offsets


def set_similarity(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Jaccard similarity of two `bottom_k_sets` entries: exact when both are whole sets
    (fewer than k hashes), else the bottom-k estimate over the k smallest of their union."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    if len(a) >= k or len(b) >= k:  # only the union's k smallest are known to be complete
        cut = np.union1d(a, b)[:k][-1]
        a, b = a[a <= cut], b[b <= cut]
        if len(a) == 0 or len(b) == 0:
            return 0.0
    index = np.searchsorted(b, a)
    shared = int(np.count_nonzero(b[np.minimum(index, len(b) - 1)] == a))
    return shared / (len(a) + len(b) - shared)


def has_shingles(signatures: np.ndarray) -> np.ndarray:
    """True for rows that were computed from at least one shingle."""
    return signatures[:, 0] != EMPTY if signatures.shape[1] else np.zeros(len(signatures), bool)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise share of equal signature values: the MinHash estimate of Jaccard similarity."""
    return np.count_nonzero(a == b, axis=-1) / a.shape[-1]


def collision_probability(similarity: float | np.ndarray, bands: int, rows: int) -> float | np.ndarray:
    """Chance that two sets of this Jaccard similarity share at least one band."""
    return 1.0 - (1.0 - np.power(similarity, rows)) ** bands


def bands_rows_for_threshold(threshold: float, num_perm: int, false_positive_weight: float = 0.5) -> tuple[int, int]:
    """The bands x rows (within num_perm) that minimise the weighted area of false positives
    (collision probability below the threshold) plus false negatives (non-collision above it).

    This is the criterion of Leskovec, Rajaraman and Ullman, Mining of Massive Datasets
    ch. 3.4, also used by datasketch's MinHashLSH.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, not {threshold}")
    below = np.linspace(0.0, threshold, 512)
    above = np.linspace(threshold, 1.0, 512)
    best, best_error = (1, 1), math.inf
    for rows in range(1, num_perm + 1):
        for bands in range(1, num_perm // rows + 1):
            fp = np.trapezoid(collision_probability(below, bands, rows), below)
            fn = np.trapezoid(1.0 - collision_probability(above, bands, rows), above)
            error = false_positive_weight * fp + (1.0 - false_positive_weight) * fn
            if error < best_error - 1e-12:
                best, best_error = (bands, rows), error
    return best
