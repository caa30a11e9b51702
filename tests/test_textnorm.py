import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import normalize_for_scoring, text_hash
from detectors.textnorm import fold_for_detection


def test_nfkc_folds_compatibility_forms():
    assert normalize_for_scoring("Ｆｕｌｌ ﬁle\u00a0here") == "Full file here"


def test_invisible_characters_and_whitespace_runs_are_removed():
    attacked = "de\u200blve  into\u00ad the\t\n tap\ufeffestry\u2060"
    assert normalize_for_scoring(attacked) == "delve into the tapestry"


def test_hash_equal_for_texts_that_read_the_same_and_differs_otherwise():
    assert text_hash("Hello  world\n") == text_hash("\u200bHello world")
    assert text_hash("Hello world") != text_hash("Hello world!")
    assert len(text_hash("x")) == 32


def test_case_is_kept_so_exact_duplicates_stay_exact():
    assert text_hash("Hello") != text_hash("hello")


def test_normalisation_leaves_non_latin_scripts_intact():
    assert normalize_for_scoring("Встреча  жильцов") == "Встреча жильцов"
    assert normalize_for_scoring("数据 来源") == "数据 来源"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_whitespace_folding_matches_the_regex_definition(text):
    import re
    import unicodedata
    from detectors.textnorm import _INVISIBLE
    expected = re.sub(r"\s+", " ", _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))).strip()
    assert normalize_for_scoring(text) == expected


# --- fold_for_detection: one example per character class it handles --------------------

@pytest.mark.parametrize("invisible", [
    # also removed before hashing: soft hyphen, Mongolian vowel separator, the first and last
    # of each range (zero-width space to right-to-left mark, bidi embeddings, word joiner to
    # invisible plus, bidi isolates to nominal digit shapes), BOM
    "\u00ad", "\u180e", "\u200b", "\u200f", "\u202a", "\u202e", "\u2060", "\u2064", "\u2066", "\u206f",
    "\ufeff",
    # removed before detection only
    "\u034f",                  # combining grapheme joiner
    "\u061c",                  # Arabic letter mark
    "\u115f", "\u1160",        # Hangul choseong and jungseong fillers
    "\u3164", "\uffa0",        # Hangul filler and half-width filler (NFKC makes them U+1160)
    "\u17b4", "\u17b5",        # Khmer inherent vowels
    "\ufe00", "\ufe0f",        # variation selectors 1 and 16
    "\U000e0000", "\U000e0001", "\U000e0041", "\U000e007f",   # tag characters: first, language tag, A, cancel
])
def test_fold_removes_each_detection_only_invisible(invisible):
    assert fold_for_detection(f"de{invisible}lve in{invisible}to") == "delve into"
    assert fold_for_detection(invisible * 3 + "text") == "text"


@pytest.mark.parametrize("attacked, clean", [
    ("\u0251n \u0251pple", "an apple"),              # ɑ Latin alpha
    ("\u0261ood \u0261ame", "good game"),            # ɡ script g
    ("th\u0131s \u0131s", "this is"),                 # ı dotless i
    ("\u0237ust \u0237am", "just jam"),               # ȷ dotless j
    ("l\u0269ke m\u0269ne", "like mine"),            # ɩ Latin iota
    ("\u01c0ook \u01c0eft", "look left"),            # ǀ dental click, for l
])
def test_fold_maps_latin_look_alikes_to_ascii(attacked, clean):
    assert fold_for_detection(attacked) == clean


def test_latin_look_alikes_fold_even_in_cyrillic_text_that_keeps_its_own_letters():
    assert fold_for_detection("\u0412\u0441\u0442\u0440\u0435\u0447\u0430 \u0261ame") == \
        "\u0412\u0441\u0442\u0440\u0435\u0447\u0430 game"


def test_fold_maps_armenian_homoglyphs_in_latin_text_but_not_armenian_words():
    # օ -> o, ս -> u, հ -> h, ո -> n
    assert fold_for_detection("\u0570\u0585me r\u057d\u0578s \u0585\u057dt") == "home runs out"
    armenian = "\u0540\u0561\u0575\u0561\u057d\u057f\u0561\u0576\u0568 \u0578\u0582 \u0570\u0578\u0575\u0565\u0580"
    assert fold_for_detection(armenian) == armenian


@pytest.mark.parametrize("letter", [
    "\u0370", "\u03ff", "\u0400", "\u04ff", "\u052f",   # Greek and Coptic, Cyrillic and its supplement: ends
    "\u0531", "\u0586",                               # Armenian: first and last letter
    "\u1f00", "\u1ffc",                               # Greek Extended: first and last letter
])
def test_letters_at_the_edges_of_greek_cyrillic_and_armenian_are_native_script(letter):
    # two runs of native letters outnumber the one Latin run: the text is not mostly Latin,
    # so its Cyrillic o (a homoglyph in Latin text) stays
    text = f"a {letter}\u043e {letter}\u043e"
    assert fold_for_detection(text) == unicodedata.normalize("NFKC", text)


def test_as_many_latin_runs_as_native_ones_counts_as_latin():
    # one Greek run (omega) and one Latin run ("at"): a tie folds the Cyrillic c
    assert fold_for_detection("\u03a9 \u0441at") == "\u03a9 cat"
    assert fold_for_detection("\u03a9\u03a9 \u03a9 \u0441at") == "\u03a9\u03a9 \u03a9 \u0441at"   # two to one


@pytest.mark.parametrize("brk", ["\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028"])
def test_every_line_break_becomes_a_newline(brk):
    assert fold_for_detection(f"one{brk}two") == "one\ntwo"


def test_a_text_with_every_ascii_line_break_at_once_folds_each():
    assert fold_for_detection("a\rb\x0bc\x0cd\x1ce\x1df\x1eg") == "a\nb\nc\nd\ne\nf\ng"


def test_a_text_of_homoglyphs_only_is_latin_and_folds():
    # Cyrillic letters that all look Latin are no evidence of Russian: no native run, so fold
    assert fold_for_detection("\u0422\u04bb\u0435 \u0441\u043e\u0440\u0443 \u0430 \u0440\u043e\u0440") == "The copy a pop"


def test_fold_maps_cyrillic_and_greek_homoglyphs_in_latin_text():
    cyrillic = "\u0421\u043e\u0501\u0435 \u04bb\u0435\u04cf\u0440\u0455 \u0443\u043eu \u051d\u0456n"  # Соԁе һеӏрѕ уоu ԝіn
    assert fold_for_detection(cyrillic + " at chess") == "Code helps you win at chess"
    greek = "\u039a\u03b5\u03b3 \u03c1\u03b1\u03c4\u03b9\u03bf"   # Κεγ ρατιο
    assert fold_for_detection(greek + " in the garden") == "Key patio in the garden"


@pytest.mark.parametrize("text, folded", [
    # removing the grapheme joiner brings the acute next to its e: NFKC must run again
    ("cafe\u034f\u0301 au lait", "caf\u00e9 au lait"),
    # replacing Cyrillic а brings the acute next to a Latin a, which has a precomposed form
    ("c\u0430\u0301fe au lait", "c\u00e1fe au lait"),
])
def test_fold_of_a_fold_changes_nothing_where_folding_forms_new_pairs(text, folded):
    assert fold_for_detection(text) == folded
    assert fold_for_detection(folded) == folded
