import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.lexicon import LexiconDetector, load_vocabulary
from detectors.residue import ResidueDetector
from detectors.style import MATTR_WINDOW, StyleDetector, mattr
from detectors.textnorm import fold_for_detection

DETECTORS = [ResidueDetector(), LexiconDetector(), StyleDetector()]
STYLE = StyleDetector()

CLEAN = (
    "Certainly! Here's a short overview of the project.\n\n"
    "The team meticulously examined every record, and the findings underscore a pivotal point: "
    "data provenance matters. As an AI language model, I don't have personal opinions.\n"
    "- First, the pipeline reads each shard.\n"
    "- Second, it scores every document; then it writes the results!\n\n"
    "Overall, the approach is robust, efficient and easy to extend. Is it perfect? No."
)


def attack(text: str) -> str:
    """Homoglyphs, zero-width characters, odd spaces and line separators a reader would not see."""
    homoglyphs = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441",
                                "x": "\u0445", "y": "\u0443", "i": "\u0456", "A": "\u0391", "T": "\u03a4"})
    attacked = text.translate(homoglyphs)
    attacked = attacked.replace("ro", "r\u200bo").replace("th", "t\u200dh").replace("me", "m\ufeffe")
    attacked = attacked.replace(" the ", " the\u00a0").replace(", ", ",\u2003").replace(". ", ".\u3000 ")
    return "\u2060" + attacked.replace("\n\n", "\u2029").replace("\n", "\u2028") + " \t"


def style_column(name: str, texts: list[str]) -> np.ndarray:
    return STYLE.features(texts)[:, STYLE.feature_names.index(name)]


# --- fold_for_detection -------------------------------------------------------------------

def test_fold_undoes_homoglyphs_invisibles_and_odd_spaces_but_keeps_lines():
    assert fold_for_detection("\u0410s \u0430n \u0391\u0406\u00a0l\u0430ngu\u0430g\u0435 m\u03bfd\u0435l") == "As an AI language model"
    assert fold_for_detection("de\u200blve\u2003into  it\t\r\nnext\u2028line\u2029para\n\n\n\nend ") == \
        "delve into it\nnext\nline\n\npara\n\nend"
    assert fold_for_detection("\uff26\uff55\uff4c\uff4c \ufb01le") == "Full file"


def test_fold_leaves_greek_and_cyrillic_text_and_ascii_alone():
    assert fold_for_detection("\u0412\u0441\u0442\u0440\u0435\u0447\u0430 \u0436\u0438\u043b\u044c\u0446\u043e\u0432 \u0434\u043e\u043c\u0430") == \
        "\u0412\u0441\u0442\u0440\u0435\u0447\u0430 \u0436\u0438\u043b\u044c\u0446\u043e\u0432 \u0434\u043e\u043c\u0430"
    assert fold_for_detection("\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5") == \
        "\u039a\u03b1\u03bb\u03b7\u03bc\u03ad\u03c1\u03b1 \u03ba\u03cc\u03c3\u03bc\u03b5"
    text = "Plain text.\nSecond line."
    assert fold_for_detection(text) is text


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="ab .\n\t\r\u00a0\u2028\u2029\u200b\u0301\u0430\u043e\u03bf\u0436\ud800", max_size=60))
def test_fold_never_raises_is_idempotent_and_leaves_only_single_spaces_and_newlines(text):
    folded = fold_for_detection(text)
    assert fold_for_detection(folded) == folded
    assert folded == folded.strip()
    assert "  " not in folded and " \n" not in folded and "\n " not in folded and "\n\n\n" not in folded
    assert all(c in " \n" or not c.isspace() for c in folded)


def test_attacked_text_folds_to_the_clean_text_and_scores_the_same():
    attacked = attack(CLEAN)
    assert attacked != CLEAN
    assert fold_for_detection(attacked) == fold_for_detection(CLEAN)
    for detector in DETECTORS:
        clean, hit = detector.features([fold_for_detection(CLEAN), fold_for_detection(attacked)])
        np.testing.assert_array_equal(clean, hit)
    assert ResidueDetector().features([attacked])[0, 0] == 0.0  # unfolded, the attack hides the phrase


# --- residue ------------------------------------------------------------------------------

def test_every_canonical_phrase_is_found_as_itself():
    detector = ResidueDetector()
    texts = [phrase + ":" for phrase in detector.phrases]  # the rewrite preamble ends with a colon
    assert detector.matches(texts) == list(detector.phrases)


@pytest.mark.parametrize("text, phrase", [
    ("I\u2019m sorry, but I can\u2019t assist with that request.", "I'm sorry, but I can't assist with that"),
    ("AS AN AI LANGUAGE MODEL, I cannot browse.", "as an AI language model"),
    ("Sure, no problem.\nCertainly! Here\u2019s the poem you asked for:", "Certainly! Here's"),
    ("Here\u2019s a revised version of your paragraph with a more formal tone:\n\nText.", "Here is a revised version"),
    ("Title: Rain\n\nHere is a 300-word story about rain.", "Here is a 500-word story"),
    ("I don\u2018t have personal opinions, but here are views.", "I don't have personal opinions"),
    ("Please note that as of my last knowledge update in 2021, prices differ.", "as of my last knowledge update"),
    ("It is warm. As an AI language model, I don't have personal opinions.", "as an AI language model"),
])
def test_residue_matches_variants_and_reports_the_first_phrase(text, phrase):
    assert ResidueDetector().matches([text]) == [phrase]


def test_residue_matches_after_homoglyph_and_zero_width_attack():
    attacked = "\u0410s \u0430n \u0391\u200bI l\u0430ngu\u0430g\u0435\u00a0m\u03bfd\u0435l, I c\u0430n\u2019t h\u0435lp."
    assert ResidueDetector().matches([attacked]) == [None]
    assert ResidueDetector().matches([fold_for_detection(attacked)]) == ["as an AI language model"]


def test_residue_does_not_match_ordinary_human_sentences():
    human = [
        "I'm sorry, but I can't come to the party on Saturday.",
        "\"I'm sorry, but I can't do this anymore,\" she said, and left.",
        "As an AI researcher, I have spent years on language models.",
        "We used GPT-2 as a language model to score the candidates.",
        "I hope this helps! Let me know if you'd like me to send the slides.",
        "Here is the revised budget for next year.",
        "Sure, here's the money I owe you.",
        "Of course we went home early; it was raining.",
        "Certainly, the results were surprising.",
        "The police request was denied by the court.",
        "I don't have personal experience with this brand.",
        "As of my last visit, the shop was still open.",
        "My knowledge of French is limited. I am unable to attend.",
        "In conclusion, it's important to note that the essay was late.",
        "Dear [Your Name], thank you for your letter.",
        "The reviewers regenerate the responses each year.",
        "",
    ]
    detector = ResidueDetector()
    assert detector.matches(human) == [None] * len(human)
    assert detector.features(human).sum() == 0.0


# --- lexicon -------------------------------------------------------------------------------

def test_vocabulary_ships_as_package_data_with_the_selection_applied():
    words = load_vocabulary()
    assert {"delve", "delves", "meticulous", "intricate", "commendable", "underscores"} <= set(words)
    assert not {"this", "their", "however", "using", "covid"} & set(words)  # function, everyday, content words
    assert words == tuple(sorted(set(words)))


def test_lexicon_counts_listed_words_per_thousand_words():
    rate, distinct = LexiconDetector().features(["We delve into the intricate details, then delve again."])[0]
    assert rate == pytest.approx(3 / 9 * 1000)        # delve, intricate, delve of 9 words
    assert distinct == pytest.approx(2 / 9 * 1000)


def test_lexicon_ignores_substrings_and_other_forms_not_listed():
    words = set(load_vocabulary())
    assert "pivotal" in words and "pivotally" not in words and "showcase" not in words
    features = LexiconDetector().features(["Pivotally, a showcase of undelveable text.", "It\u2019s a pivotal day."])
    assert features[0].tolist() == [0.0, 0.0]
    assert features[1].tolist() == pytest.approx([250.0, 250.0])  # its, a, pivotal, day


# --- style ----------------------------------------------------------------------------------

def test_repetitive_text_compresses_better():
    repetitive = "The cat sat on the mat. " * 40
    varied = ("Quantum dots emit light when excited; engineers tune their size to pick a colour. "
              "Meanwhile, a baker in Lyon kneads dough at dawn, humming old songs. Twelve ships left "
              "port before the storm, but only nine returned, battered and late. ") * 2
    ratio = style_column("zstd_ratio", [repetitive, varied])
    assert ratio[0] < 0.2 < ratio[1] < 1.0


def test_mattr_of_one_repeated_word_is_one_over_the_window_and_of_distinct_words_one():
    distinct = " ".join(f"w{i}" for i in range(200))
    values = style_column("mattr", ["again " * 300, distinct, "a b a b"])
    assert values[0] == pytest.approx(1 / MATTR_WINDOW)
    assert values[1] == pytest.approx(1.0)
    assert values[2] == pytest.approx(0.5)  # shorter than the window: plain type-token ratio


def test_mattr_equals_the_definition_on_random_batches():
    rng = np.random.default_rng(7)
    docs = [list(rng.integers(0, rng.integers(1, 60), rng.integers(0, 160))) for _ in range(12)]
    hashes = np.array([x for doc in docs for x in doc], dtype=np.int64) * 0x9E3779B97F4A7C1  # spread the bits
    offsets = np.r_[0, np.cumsum([len(doc) for doc in docs])]

    def reference(words):
        if not words:
            return 0.0
        if len(words) < MATTR_WINDOW:
            return len(set(words)) / len(words)
        starts = range(len(words) - MATTR_WINDOW + 1)
        return float(np.mean([len(set(words[s:s + MATTR_WINDOW])) / MATTR_WINDOW for s in starts]))

    np.testing.assert_allclose(mattr(hashes, offsets), [reference(doc) for doc in docs])


def test_sentence_length_mean_and_burstiness():
    equal = "The cat sat. A dog ran! Birds sing loudly?"
    uneven = "Stop. The committee met on Tuesday to review all of the budget proposals in detail."
    mean = style_column("sent_len_mean", [equal, uneven])
    cv = style_column("sent_len_cv", [equal, uneven])
    assert mean[0] == pytest.approx(3.0) and cv[0] == pytest.approx(0.0)
    assert mean[1] == pytest.approx(7.5) and cv[1] == pytest.approx(6.5 / 7.5)  # lengths 1 and 14


def test_function_words_word_length_punctuation_and_layout():
    text = "It is a test, of the rates: yes; no \u2014 maybe! Why?\n- one\n- two\n\n**bold** end"
    features = dict(zip(STYLE.feature_names, STYLE.features([text, "cat dog bird"])[0]))
    kchars = len(text) / 1000
    assert features["comma_per_kchar"] == pytest.approx(1 / kchars)
    assert features["colon_semicolon_per_kchar"] == pytest.approx(2 / kchars)
    assert features["dash_per_kchar"] == pytest.approx(1 / kchars)
    assert features["exclaim_per_kchar"] == pytest.approx(1 / kchars)
    assert features["question_per_kchar"] == pytest.approx(1 / kchars)
    assert features["newline_per_kchar"] == pytest.approx(4 / kchars)
    assert features["list_line_share"] == pytest.approx(2 / 4)   # 4 non-empty lines
    assert features["markdown_per_kchar"] == pytest.approx(2 / kchars)
    plain = dict(zip(STYLE.feature_names, STYLE.features(["cat dog bird"])[0]))
    assert plain["function_word_rate"] == 0.0 and plain["mean_word_len"] == pytest.approx(10 / 3)
    assert STYLE.features(["the of and"])[0, STYLE.feature_names.index("function_word_rate")] == 1.0


# --- every detector -------------------------------------------------------------------------

EDGE_TEXTS = ["", "   \n\t ", "word", "x" * 200_000, ("A long text. " * 20_000)[:200_000],
              "\u6570\u636e\u6765\u6e90\u3002\u7b2c\u4e8c\u53e5\uff01", "\u0412\u0441\u0442\u0440\u0435\u0447\u0430.", "\ud800 lone surrogate"]


@pytest.mark.parametrize("detector", DETECTORS, ids=lambda d: d.name)
def test_shape_dtype_and_finiteness_on_edge_cases(detector):
    features = detector.features(EDGE_TEXTS)
    assert features.shape == (len(EDGE_TEXTS), len(detector.feature_names))
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    assert detector.features([]).shape == (0, len(detector.feature_names))
    assert isinstance(detector.version, str) and detector.version
    # a batch scores each text as it would alone
    np.testing.assert_array_equal(features[2:3], detector.features(EDGE_TEXTS[2:3]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=300), max_size=4))
def test_features_never_raise_on_arbitrary_text(texts):
    for text_batch in (texts, [fold_for_detection(t) for t in texts]):
        for detector in DETECTORS:
            features = detector.features(text_batch)
            assert features.shape == (len(texts), len(detector.feature_names))
            assert np.isfinite(features).all()


def test_detectors_unpickled_in_a_process_with_another_hash_seed_score_the_same(tmp_path):
    """Beam ships detectors pickled to worker processes, whose str/bytes hash salt differs."""
    texts = [CLEAN, "the of and it delve into meticulous intricacies"]
    (tmp_path / "detectors.pkl").write_bytes(pickle.dumps((DETECTORS, texts)))
    code = ("import pickle, sys, numpy as np; detectors, texts = pickle.load(open(sys.argv[1], 'rb')); "
            "np.save(sys.argv[2], np.concatenate([d.features(texts) for d in detectors], axis=1))")
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "detectors.pkl"), str(tmp_path / "out.npy")],
                   check=True, env={**os.environ, "PYTHONHASHSEED": seed})
    expected = np.concatenate([d.features(texts) for d in DETECTORS], axis=1)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
