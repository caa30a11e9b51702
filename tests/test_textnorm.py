from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import normalize_for_scoring, text_hash


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
