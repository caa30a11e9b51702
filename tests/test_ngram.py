"""The fastText n-gram detector on a generated toy corpus: training, determinism, batch features, loading."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest

pytest.importorskip("fasttext", reason="the ngram detector needs fastText (pip install fasttext==0.9.3)")

from detectors.ngram import NgramDetector, NgramParams, prepare, train_ngram_model  # noqa: E402

# Small enough to train and quantise in well under a second: few buckets, a small cutoff
# (product quantisation needs at least 256 rows).
TINY = NgramParams(dim=8, epoch=20, lr=0.5, min_count=1, bucket=20_000, cutoff=2_000, retrain=True)
FILLER = ("the of and a to in is was for on that with as it by at from this be are or an "
          "river stone table window morning city garden letter music road paper light").split()
HUMAN_MARKERS = ("gonna", "kinda", "lol", "yeah", "dunno", "tbh")
MACHINE_MARKERS = ("delve", "tapestry", "furthermore", "moreover", "crucial", "showcasing")


def toy_corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Filler sentences, each text with a few marker words of its class."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = "machine" if i % 2 else "human"
        markers = MACHINE_MARKERS if label == "machine" else HUMAN_MARKERS
        words = [rng.choice(FILLER) for _ in range(rng.randint(20, 60))]
        for _ in range(3):
            words.insert(rng.randrange(len(words)), rng.choice(markers))
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    texts, labels = toy_corpus(400, seed=1)
    return str(train_ngram_model(texts, labels, tmp_path_factory.mktemp("ngram") / "toy.ftz", TINY))


@pytest.fixture(scope="module")
def detector(model_path) -> NgramDetector:
    return NgramDetector.load(model_path)


def test_tiny_model_separates_held_out_toy_texts(detector):
    texts, labels = toy_corpus(100, seed=2)   # other filler draws, same markers
    scores = detector.features(texts)[:, 0]
    machine = np.array(labels) == "machine"
    assert scores[machine].min() > scores[~machine].max()
    assert scores[machine].mean() > 1 and scores[~machine].mean() < -1   # log-odds, both signs


def test_retraining_gives_the_same_model_and_scores(model_path, detector, tmp_path):
    texts, labels = toy_corpus(400, seed=1)
    again = train_ngram_model(texts, labels, tmp_path / "again.ftz", TINY)
    assert again.read_bytes() == open(model_path, "rb").read()
    probe = toy_corpus(20, seed=3)[0]
    np.testing.assert_array_equal(NgramDetector.load(again).features(probe), detector.features(probe))


def test_a_different_seed_gives_a_different_model(model_path, tmp_path):
    texts, labels = toy_corpus(400, seed=1)
    other = train_ngram_model(texts, labels, tmp_path / "other.ftz", NgramParams(**{**TINY.__dict__, "seed": 2}))
    assert other.read_bytes() != open(model_path, "rb").read()


@pytest.mark.parametrize("text", [
    "", " ", "\n\n\t", "\x00", "a", "...", "\ud800 lone surrogate", "Встреча жильцов, 数据来源。",
    "first line\nsecond line\r\nthird", "delve " * 40_000,   # 240 KB
])
def test_features_are_one_finite_float32_column_for_any_text(detector, text):
    out = detector.features([text, "yeah kinda gonna", text])
    assert out.shape == (3, 1) and out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out[0, 0] == out[2, 0]


def test_a_score_does_not_depend_on_the_batch(detector):
    assert detector.features([]).shape == (0, 1)
    texts = toy_corpus(30, seed=4)[0] + ["Встреча жильцов, 数据来源。", "", "moreover . . . lol"] * 3
    batch = detector.features(texts)[:, 0]
    one_by_one = np.array([detector.features([t])[0, 0] for t in texts])
    np.testing.assert_array_equal(batch, one_by_one)
    np.testing.assert_array_equal(detector.features(texts[::-1])[::-1, 0], batch)


def test_blank_texts_score_zero(detector):
    assert not detector.features(["", "   ", "\n\t"]).any()


def test_newlines_score_like_spaces(detector):
    # fastText ends an example at a newline: without prepare() only the first line would count
    a = detector.features(["yeah the river\nwas kinda\n\ndelve moreover crucial"])
    b = detector.features(["yeah the river was kinda delve moreover crucial"])
    assert a[0, 0] == b[0, 0]


def test_prepare_splits_punctuation_and_joins_lines():
    assert prepare("Hello, world!\nIt's “fine”…").split() == \
        ["Hello", ",", "world", "!", "It", "'", "s", "“", "fine", "”", "…"]
    assert "\n" not in prepare("a\nb\n")
    assert prepare("snake_case stays") == "snake_case stays"


def test_load_from_bytes_and_version_names_the_model(model_path, detector):
    from_bytes = NgramDetector.from_bytes(open(model_path, "rb").read())
    assert from_bytes.version == detector.version and detector.sha256[:12] in detector.version
    assert detector.name == "ngram" and detector.feature_names == ("ngram_machine_logit",)
    np.testing.assert_array_equal(from_bytes.features(["yeah delve"]), detector.features(["yeah delve"]))


def test_missing_model_raises_naming_the_path(tmp_path):
    missing = tmp_path / "nope.ftz"
    with pytest.raises(FileNotFoundError, match="nope.ftz"):
        NgramDetector.load(missing)
    with pytest.raises(FileNotFoundError, match="is not a file"):
        NgramDetector.load(tmp_path)


@pytest.mark.parametrize("cut", [0, 4, 7, 64, 300, 0.5, -300, -1])
def test_truncated_or_foreign_model_raises_a_clear_error(model_path, tmp_path, cut):
    data = open(model_path, "rb").read()
    cut = int(len(data) * cut) if isinstance(cut, float) else cut
    broken = tmp_path / "broken.ftz"
    broken.write_bytes(data[:cut])
    with pytest.raises(ValueError, match="broken.ftz.*not a valid fastText model"):
        NgramDetector.load(broken)   # fastText itself would hang or read garbage


def test_other_files_and_trailing_bytes_are_rejected(model_path, tmp_path):
    junk = tmp_path / "junk.ftz"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(ValueError, match="junk.ftz.*wrong magic number"):
        NgramDetector.load(junk)
    padded = tmp_path / "padded.ftz"
    padded.write_bytes(open(model_path, "rb").read() + b"\0" * 10)
    with pytest.raises(ValueError, match="10 unexpected bytes"):
        NgramDetector.load(padded)


def test_model_with_other_labels_is_rejected(tmp_path):
    import fasttext
    from detectors import ngram
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__{'spam' if i % 2 else 'ham'} word{i % 7} filler text\n" for i in range(300)))
    with ngram._zero_filled_allocations():
        model = fasttext.train_supervised(str(data), dim=4, epoch=2, bucket=1000, thread=1, seed=1, verbose=0)
    path = tmp_path / "spam.bin"   # a float (unquantised) model: the dense-matrix layout is checked too
    model.save_model(str(path))
    with pytest.raises(ValueError, match="spam.bin.*has labels"):
        NgramDetector.load(path)


def test_model_trained_with_another_loss_is_rejected(tmp_path):
    import fasttext
    from detectors import ngram
    texts, labels = toy_corpus(300, seed=6)
    data = tmp_path / "train.txt"
    data.write_text("".join(f"__label__{label} {prepare(text)}\n" for text, label in zip(texts, labels)))
    with ngram._zero_filled_allocations():
        model = fasttext.train_supervised(str(data), dim=4, epoch=2, bucket=1000, thread=1, seed=1, verbose=0,
                                          loss="hs")
    model.save_model(str(tmp_path / "hs.bin"))
    with pytest.raises(ValueError, match="hs.bin.*loss hs"):
        NgramDetector.load(tmp_path / "hs.bin")


def test_training_input_is_validated(tmp_path):
    texts, labels = toy_corpus(10, seed=5)
    with pytest.raises(ValueError, match="10 texts but 9 labels"):
        train_ngram_model(texts, labels[:9], tmp_path / "m.ftz", TINY)
    with pytest.raises(ValueError, match="'bot'"):
        train_ngram_model(texts, ["bot"] * 10, tmp_path / "m.ftz", TINY)
    with pytest.raises(ValueError, match="both human and machine"):
        train_ngram_model(texts, ["human"] * 10, tmp_path / "m.ftz", TINY)
    assert not (tmp_path / "m.ftz").exists()


def test_integer_labels_train_the_same_model(model_path, tmp_path):
    texts, labels = toy_corpus(400, seed=1)
    ints = [int(label == "machine") for label in labels]
    assert train_ngram_model(texts, ints, tmp_path / "ints.ftz", TINY).read_bytes() == open(model_path, "rb").read()
