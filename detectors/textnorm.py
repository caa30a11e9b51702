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


# --- folding before synthetic-text detection -------------------------------------------

# Invisible characters beyond _INVISIBLE that evasion tools insert: combining grapheme
# joiner, Arabic letter mark, Hangul fillers, Khmer inherent vowels, variation selectors,
# tag characters. Removing them never changes how a text reads.
_INVISIBLE_FOR_DETECTION = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff"
    "\u034f\u061c\u115f\u1160\u17b4\u17b5\u3164\uffa0\ufe00-\ufe0f\U000e0000-\U000e007f]"
)
# Letters that render like a Latin letter in common fonts: Cyrillic, Greek and Armenian
# (folded only when the text is mostly Latin, so Russian or Greek text stays intact)...
_SCRIPT_CONFUSABLES = {
    # Cyrillic
    "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
    "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ү": "y", "ѵ": "v",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "Х": "X", "У": "Y", "І": "I", "Ј": "J", "Ѕ": "S", "Ԛ": "Q", "Ԝ": "W", "Ӏ": "I",
    "Ү": "Y",
    # Greek
    "α": "a", "ο": "o", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ρ": "p", "τ": "t", "υ": "u",
    "χ": "x", "γ": "y", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϳ": "J",
    # Armenian
    "օ": "o", "ս": "u", "հ": "h", "ո": "n",
}
# ...and Latin letters outside ASCII that only impersonate ASCII ones: folded always.
_LATIN_CONFUSABLES = {"ɑ": "a", "ɡ": "g", "ı": "i", "ȷ": "j", "ɩ": "i", "ǀ": "l"}
_FOLD_SCRIPT = str.maketrans(_SCRIPT_CONFUSABLES | _LATIN_CONFUSABLES)
_FOLD_LATIN = str.maketrans(_LATIN_CONFUSABLES)
_LATIN_RUN = re.compile("[A-Za-z]+")
# Runs of Greek, Cyrillic or Armenian letters that have no Latin look-alike: real text in those scripts
_NATIVE_RUN = re.compile("[" + "".join(
    chr(c) for c in (*range(0x370, 0x530), *range(0x531, 0x590), *range(0x1F00, 0x2000))
    if chr(c).isalpha() and chr(c) not in _SCRIPT_CONFUSABLES) + "]+")
# Line breaks other than \n (what NFKC leaves of odd whitespace, with \r, \v, \f, \x1c-\x1e)
_LINE_BREAK = re.compile("\r\n?|[\x0b\x0c\x1c-\x1e\x85\u2028]")
_BLANK_LINES = re.compile("\n{3,}")
# The characters that make a text need more than the whitespace fold, found by set
# lookups on the text's few non-ASCII characters instead of regex scans of the whole text
_INVISIBLE_CHARS = frozenset(chr(c) for c in (
    0xAD, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x2070),
    0xFEFF, 0x34F, 0x61C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0xFE00, 0xFE10),
    *range(0xE0000, 0xE0080)))
_CONFUSABLE_CHARS = frozenset(_SCRIPT_CONFUSABLES) | frozenset(_LATIN_CONFUSABLES)
_UNICODE_BREAKS = frozenset("\x85\u1680\u2028\u2029")
_ASCII = bytes(range(128))
_ASCII_ODD_SPACE = b"\t\r\x0b\x0c\x1c\x1d\x1e\x1f"


def fold_for_detection(text: str) -> str:
    """The text a synthetic-text detector scores: cheap evasions undone, layout kept.

    NFKC (full-width forms, ligatures, compatibility spaces), invisible characters
    removed, Cyrillic/Greek/Armenian homoglyphs folded to the Latin letters they imitate
    when the text is mostly Latin, every line break as '\n' (at most one blank line in a
    row), every other whitespace run as one space, no spaces at line ends or at either
    end. Word, sentence and paragraph boundaries survive, so style features see the same
    structure in an attacked text as in the clean one. Never raises (lone surrogates pass
    through).
    """
    if text.isascii():  # ASCII has no compatibility forms, invisibles or homoglyphs
        encoded, breaks = text.encode("ascii"), False
    else:
        text = unicodedata.normalize("NFKC", text)
        encoded = text.encode("utf-8", "surrogatepass")
        # ASCII bytes never occur inside a multi-byte sequence: what is left decodes
        non_ascii = set(encoded.translate(None, _ASCII).decode("utf-8", "surrogatepass"))
        # Removing or replacing a character can bring a combining mark next to a new
        # base letter: normalise again so that folding a folded text changes nothing.
        if not _INVISIBLE_CHARS.isdisjoint(non_ascii):
            text = unicodedata.normalize("NFKC", _INVISIBLE_FOR_DETECTION.sub("", text))
        if not _CONFUSABLE_CHARS.isdisjoint(non_ascii):
            mostly_latin = len(_LATIN_RUN.findall(text)) >= len(_NATIVE_RUN.findall(text))
            text = unicodedata.normalize("NFKC", text.translate(_FOLD_SCRIPT if mostly_latin else _FOLD_LATIN))
        breaks = not _UNICODE_BREAKS.isdisjoint(non_ascii)
        if breaks:
            text = text.replace("\u2029", "\n\n").replace("\u1680", " ")
    # odd ASCII whitespace (tab, CR, VT, FF, information separators), counted in one C pass
    odd_space = len(encoded.translate(None, _ASCII_ODD_SPACE)) != len(encoded)
    if breaks or (odd_space and any(c in text for c in "\r\x0b\x0c\x1c\x1d\x1e")):
        text = _LINE_BREAK.sub("\n", text)
    if not (odd_space or breaks or "  " in text or " \n" in text or "\n " in text or "\n\n\n" in text
            or text[:1].isspace() or text[-1:].isspace()):
        return text
    folded = "\n".join(" ".join(line.split()) for line in text.split("\n"))  # per line, not per word
    return _BLANK_LINES.sub("\n\n", folded).strip("\n")
