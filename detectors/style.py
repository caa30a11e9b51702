"""Style and compression features: how a text is written, not which rare words it uses.

Instruction-tuned models write evenly: sentences of similar length, a steady share of
function words, predictable (compressible) wording, lists and markdown. These features
measure that shape. None of them rewards rare words alone, because false positives must
not concentrate on non-native or young writers, whose plain vocabulary is what fools
detectors built on lexical sophistication (Liang et al. 2023).

Everything runs as C-level passes (str.lower, bytes.translate/replace/split, hashing via
`map`, zstd) and numpy over the whole batch: no Python code runs per word.
"""
from __future__ import annotations

import unicodedata
from functools import lru_cache
from itertools import chain
from typing import Sequence

import numpy as np
import zstandard

MATTR_WINDOW = 50

# English function words: closed-class words whose rate reflects syntax, not topic or
# vocabulary. Contractions are spelled without the apostrophe, as the tokeniser leaves them.
FUNCTION_WORDS = frozenset("""
a an the this that these those each every either neither some any no all both few many much
more most several such other another own same what which whose whatever whichever
i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his
himself she her hers herself it its itself they them their theirs themselves who whom
someone anyone everyone nobody nothing something anything everything one
about above across after against along among around as at before behind below beneath
beside besides between beyond by despite down during except for from in inside into like
near of off on onto out outside over past since through throughout till to toward towards
under until unlike up upon via with within without
and but or nor so yet because although though if unless whether while whereas than once
am is are was were be been being have has had having do does did doing will would shall
should can could may might must ought
not very too also just only even still then there here now when where why how again ever
never always often quite rather almost already perhaps however thus therefore
dont doesnt didnt cant couldnt wont wouldnt isnt arent wasnt werent im ive id youre theyre
""".split())
_FUNCTION_WORDS = tuple(sorted(FUNCTION_WORDS))

# UTF-8 -> ASCII letters lowercased, digits kept, '!' and '?' as '.', newlines kept, every
# other ASCII byte a space, apostrophes deleted (don't -> dont); bytes of multi-byte
# characters kept (letters of other scripts: their punctuation is mapped before).
_TOKEN_TABLE = bytes(
    ord(chr(c).lower()) if chr(c).isalnum() and c < 128 else c if c in b".\n" or c >= 128 else 46 if c in b"!?" else 32
    for c in range(256))
# Non-ASCII characters rendered as ASCII for tokenising, so "word\u2014word" is two words,
# "\u201cquoted\u201d" a word without its quotes and "don\u2019t" one word.
_PUNCT_MAP = {"\u2014": " ", "\u2013": " ", "\u2026": ".", "\u3002": ".", "\uff01": ".", "\uff1f": ".",
              "\u2019": "'", "\u2018": "'", "\u02bc": "'"}
_ASCII = bytes(range(128))

# Single bytes counted from each text's byte histogram. Punctuation leaves out quotes and
# apostrophes: straight or curly depends on the keyboard and platform, not the writer.
_PUNCT_BYTES = np.frombuffer(b"!#$%&()*+,-./:;<=>?@[\\]^_{|}~", dtype=np.uint8)
_EM_DASH, _EN_DASH, _BULLET = "\u2014".encode(), "\u2013".encode(), "\u2022".encode()
_UNICODE_PUNCT = (_EM_DASH, _EN_DASH, "\u2026".encode(), _BULLET)  # all start with 0xE2
_DIGITS_TO_ZERO = bytes(48 if 48 <= c <= 57 else c for c in range(256))


@lru_cache(maxsize=65536)
def _token_char(char: str) -> str:
    """What a non-ASCII character becomes for tokenising: letters, digits and marks stay,
    ellipses and CJK full stops end sentences, apostrophes are dropped, other punctuation,
    symbols, spaces and controls become a space."""
    if char in _PUNCT_MAP:
        return _PUNCT_MAP[char]
    return " " if unicodedata.category(char)[0] in "PSZC" else char


def prepare(text: str) -> bytes:
    """Lowercased UTF-8 with a '\\n' between sentences, spaces between words and nothing
    else: `.split()` gives the words, `.split(b'\\n')` the sentences.

    A dot, '!' or '?' ends a sentence only before whitespace; inside a word it is dropped
    (3.5 -> 35, e.g. -> eg), like apostrophes (don't -> dont).
    """
    data = text.encode("utf-8", "surrogatepass")  # ASCII letters are lowercased by _TOKEN_TABLE
    if not data.isascii():
        chars = set(data.translate(None, _ASCII).decode("utf-8", "surrogatepass"))
        if any(map(str.isupper, chars)):
            data = text.lower().encode("utf-8", "surrogatepass")
            chars = set(data.translate(None, _ASCII).decode("utf-8", "surrogatepass"))
        for char in chars:
            if (replacement := _token_char(char)) != char:
                data = data.replace(char.encode("utf-8", "surrogatepass"), replacement.encode())
    data = data.translate(_TOKEN_TABLE, b"'").replace(b". ", b"\n").replace(b".\n", b"\n")
    return data.translate(None, b".")


def word_lists(texts: Sequence[str]) -> list[list[bytes]]:
    """The words of each text, lowercased bytes as `prepare` leaves them."""
    return [prepare(text).split() for text in texts]


def word_hashes(words: list[bytes]) -> np.ndarray:
    """Python's hash of each word (run in C through `map`): equal words, equal values.
    Salted per process, so compare only with hashes made in the same process."""
    return np.fromiter(map(hash, words), dtype=np.int64, count=len(words))


@lru_cache(maxsize=16)
def sorted_hashes(words: tuple[str, ...]) -> np.ndarray:
    """Sorted hashes of a word list, for `is_member`. Cached per process and never stored
    on a detector: the hash salt differs between processes, so a pickled array would not
    match the words of the process that unpickles it."""
    return np.unique(word_hashes([word.lower().encode() for word in words]))


def is_member(hashes: np.ndarray, members: np.ndarray) -> np.ndarray:
    """hashes[i] in members (sorted), by binary search: cheaper than np.isin's sort."""
    if len(members) == 0:
        return np.zeros(len(hashes), dtype=bool)
    index = np.minimum(np.searchsorted(members, hashes), len(members) - 1)
    return members[index] == hashes


def mattr(hashes: np.ndarray, offsets: np.ndarray, window: int = MATTR_WINDOW,
          owner: np.ndarray | None = None) -> np.ndarray:
    """Moving-average type-token ratio of each text, exactly, for a whole batch at once.

    `hashes` are the words of all texts (equal words equal), text i owning
    hashes[offsets[i]:offsets[i + 1]]. The window [s, s + W) holds
    W - #{i in window : prev[i] >= s} distinct words, prev[i] being the previous
    position of word i's word in its text; word i with prev p repeats in the windows
    s in [i - W + 1, p], so one difference array over all positions counts the repeats of
    every window of every text. Texts shorter than the window get their plain TTR.
    `owner` (each word's text index) may be passed when the caller has it.
    """
    total = len(hashes)
    counts = np.diff(offsets)
    result = np.zeros(len(counts), dtype=np.float64)
    if total == 0:
        return result
    if owner is None:
        owner = np.repeat(np.arange(len(counts)), counts)
    # Sort (text, word, position) as one uint64: the text in the top bits, a hash of the
    # word in the middle, the position in the low bits; equal words of a text end up
    # adjacent and in text order. Texts are already in order, so the stable sort
    # (timsort/radix) merges runs and beats an index argsort about 3x.
    position_bits = int(total).bit_length()
    text_bits = int(len(counts)).bit_length()
    word_bits = 64 - position_bits - text_bits
    word_key = hashes.view(np.uint64) >> np.uint64(64 - word_bits)
    keys = owner.astype(np.uint64) << np.uint64(64 - text_bits)
    keys |= word_key << np.uint64(position_bits)
    keys |= np.arange(total, dtype=np.uint64)
    keys.sort(kind="stable")
    order = (keys & np.uint64((1 << position_bits) - 1)).astype(np.int64)
    group = keys >> np.uint64(position_bits)
    same = group[1:] == group[:-1]
    prev = np.full(total, -1, dtype=np.int64)
    prev[order[1:][same]] = order[:-1][same]
    start, end = offsets[:-1][owner], offsets[1:][owner]
    # short texts: distinct words = words - repeats
    repeats = np.bincount(owner[prev >= 0], minlength=len(counts))
    short = (counts > 0) & (counts < window)
    result[short] = (counts[short] - repeats[short]) / counts[short]
    # long texts: repeats of every window start, from a difference array
    lo = np.maximum(start, np.arange(total) - window + 1)
    hi = np.minimum(prev, end - window)
    valid = (prev >= 0) & (lo <= hi)
    difference = np.bincount(lo[valid], minlength=total + 1) - np.bincount(hi[valid] + 1, minlength=total + 1)
    cumulative = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(np.cumsum(difference[:total]), out=cumulative[1:])
    long = counts >= window
    first, last = offsets[:-1][long], offsets[1:][long] - window  # window starts, inclusive
    windows = last - first + 1
    repeated = cumulative[last + 1] - cumulative[first]
    result[long] = (window * windows - repeated) / (window * windows)
    return result


class StyleDetector:
    """Compression, sentence rhythm, lexical variety, function words, punctuation, layout."""

    name = "style"
    version = "1"
    feature_names = (
        "zstd_ratio",              # compressed / raw UTF-8 bytes, zstd level 3, frame overhead removed
        "sent_len_mean",           # words per sentence
        "sent_len_cv",             # burstiness: std / mean of sentence lengths
        "mattr",                   # moving-average type-token ratio, window of 50 words
        "function_word_rate",      # share of words that are function words
        "mean_word_len",           # characters per word
        "punct_per_kchar",         # punctuation marks (quotes and apostrophes aside) per 1,000 characters
        "comma_per_kchar",
        "colon_semicolon_per_kchar",
        "dash_per_kchar",          # em and en dashes, and " - " used as a dash
        "exclaim_per_kchar",
        "question_per_kchar",
        "newline_per_kchar",
        "list_line_share",         # share of non-empty lines that are bullet or numbered items
        "markdown_per_kchar",      # ** bold markers and # headings
    )

    def __init__(self, level: int = 3):
        self.level = level
        self._overhead = len(self._compressor().compress(b""))  # frame and empty-block headers

    def _compressor(self) -> zstandard.ZstdCompressor:
        # one per call: a compressor must not be shared between threads, and this keeps
        # the detector picklable
        return zstandard.ZstdCompressor(level=self.level, write_content_size=False, write_checksum=False)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, len(self.feature_names)), dtype=np.float64)
        if n == 0:
            return out.astype(np.float32)
        prepared = [prepare(text) for text in texts]
        self._word_features(prepared, out)
        self._text_features(texts, out)
        return out.astype(np.float32)

    def _word_features(self, prepared: list[bytes], out: np.ndarray) -> None:
        """Sentence lengths, MATTR, function words and word length, from the words of
        every sentence of every text."""
        n = len(prepared)
        sentences = [list(map(bytes.split, data.split(b"\n"))) for data in prepared]
        sentence_counts = np.fromiter(map(len, sentences), dtype=np.int64, count=n)
        lengths = np.fromiter(map(len, chain.from_iterable(sentences)), dtype=np.int64,
                              count=int(sentence_counts.sum()))
        sentence_owner = np.repeat(np.arange(n), sentence_counts)
        word_counts = np.bincount(sentence_owner, weights=lengths, minlength=n).astype(np.int64)
        counted = lengths > 0  # blank pieces between two sentence ends are no sentences
        lengths, sentence_owner = lengths[counted].astype(np.float64), sentence_owner[counted]
        count = np.maximum(np.bincount(sentence_owner, minlength=n), 1)
        mean = np.bincount(sentence_owner, weights=lengths, minlength=n) / count
        squares = np.bincount(sentence_owner, weights=lengths * lengths, minlength=n) / count
        out[:, 1] = mean
        out[:, 2] = np.sqrt(np.maximum(squares - mean * mean, 0.0)) / np.maximum(mean, 1e-9)

        words = word_hashes(list(chain.from_iterable(chain.from_iterable(sentences))))
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(word_counts, out=offsets[1:])
        owner = np.repeat(np.arange(n), word_counts)
        per_word = 1.0 / np.maximum(word_counts, 1)
        out[:, 3] = mattr(words, offsets, owner=owner)
        function_words = owner[is_member(words, sorted_hashes(_FUNCTION_WORDS))]
        out[:, 4] = np.bincount(function_words, minlength=n) * per_word
        word_chars = np.fromiter(map(_word_chars, prepared), dtype=np.float64, count=n)
        out[:, 5] = word_chars * per_word

    def _text_features(self, texts: Sequence[str], out: np.ndarray) -> None:
        """Compression, punctuation and layout: per text, a zstd call, a byte histogram and
        a few substring counts, each skipped when the histogram says it would be zero."""
        n = len(texts)
        compressor = self._compressor()
        histogram = np.zeros((n, 256), dtype=np.int64)
        extra = np.zeros((n, 5), dtype=np.float64)  # unicode punct, dashes, paragraphs, list lines, markdown
        for row, text in enumerate(texts):
            encoded = text.encode("utf-8", "surrogatepass")
            if not encoded:
                out[row, 0] = 1.0
                continue
            out[row, 0] = max(len(compressor.compress(encoded)) - self._overhead, 0) / len(encoded)
            counts = np.bincount(np.frombuffer(encoded, dtype=np.uint8), minlength=256)
            histogram[row] = counts
            extra[row] = _layout_counts(encoded, counts)
        chars = np.fromiter(map(len, texts), dtype=np.float64, count=n)
        per_kchar = 1000.0 / np.maximum(chars, 1)
        newlines = histogram[:, 10]
        out[:, 6] = (histogram[:, _PUNCT_BYTES].sum(axis=1) + extra[:, 0]) * per_kchar
        out[:, 7] = histogram[:, ord(",")] * per_kchar
        out[:, 8] = (histogram[:, ord(":")] + histogram[:, ord(";")]) * per_kchar
        out[:, 9] = extra[:, 1] * per_kchar
        out[:, 10] = histogram[:, ord("!")] * per_kchar
        out[:, 11] = histogram[:, ord("?")] * per_kchar
        out[:, 12] = newlines * per_kchar
        out[:, 13] = extra[:, 3] / np.maximum(newlines + 1 - extra[:, 2], 1)
        out[:, 14] = extra[:, 4] * per_kchar


def _layout_counts(encoded: bytes, counts: np.ndarray) -> tuple[int, int, int, int, int]:
    """Counts that span several bytes: non-ASCII punctuation, dashes, blank lines (paragraph
    breaks), list lines (bullets and numbers at a line start), markdown bold and headings."""
    unicode_punct = dashes = paragraphs = list_lines = markdown = 0
    if counts[0xE2]:
        unicode_punct = sum(map(encoded.count, _UNICODE_PUNCT))
        dashes = encoded.count(_EM_DASH) + encoded.count(_EN_DASH)
    if counts[ord("-")]:
        dashes += encoded.count(b" - ")
    if counts[ord("*")] > 1:
        markdown += encoded.count(b"**")
    if counts[10]:
        lines = b"\n" + encoded
        paragraphs = encoded.count(b"\n\n")
        if counts[ord("#")]:
            markdown += lines.count(b"\n#")
        if counts[ord("-")]:
            list_lines += lines.count(b"\n- ")
        if counts[ord("*")]:
            list_lines += lines.count(b"\n* ")
        if counts[0xE2]:
            list_lines += lines.count(b"\n" + _BULLET + b" ")
        if counts[ord(".")] and counts[48:58].any():
            numbered = lines.translate(_DIGITS_TO_ZERO)
            list_lines += numbered.count(b"\n0. ") + numbered.count(b"\n00. ")
    return unicode_punct, dashes, paragraphs, list_lines, markdown


def _word_chars(data: bytes) -> int:
    """Characters in the words of a prepared text (everything but spaces and newlines)."""
    letters = data.translate(None, b" \n")
    return len(letters) if letters.isascii() else len(letters.decode("utf-8", "surrogatepass"))
