"""Normalisation applied before scoring or hashing a text; never to the text written out."""
from __future__ import annotations

import hashlib
import re
import unicodedata

# Zero-width and invisible format characters used to split words without changing
# how a text looks: ZW space/non-joiner/joiner, word joiner, invisible operators,
# BOM, soft hyphen, Mongolian vowel separator, bidi marks and embeddings.
_INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def normalize_for_scoring(text: str) -> str:
    """NFKC, invisible characters removed, whitespace runs folded to one space, stripped.

    NFKC folds compatibility forms (full-width letters, ligatures, non-breaking
    spaces) so that texts that read the same compare the same.
    """
    if not text.isascii():  # ASCII is already NFKC and has no invisible characters
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return " ".join(text.split())  # str.split and regex \s share one definition of whitespace


def text_hash(text: str) -> str:
    """128-bit BLAKE2b of the normalised text, hex: the exact-duplicate key."""
    normalized = normalize_for_scoring(text).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(normalized, digest_size=16).hexdigest()
