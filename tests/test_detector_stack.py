"""The stack: folding once, features in order, calibrated probability, the date prior."""
import datetime as dt

import numpy as np
import pytest

from detectors.calibration import IsotonicCalibrator, LogisticModel
from detectors.residue import ResidueDetector
from detectors.stack import DATE_PRIOR_CUTOFF, DetectorStack, ModelFileError, Stacker, apply_date_prior

UTC = dt.timezone.utc


class LengthDetector:
    name, version, feature_names = "length", "1", ("chars",)

    def __init__(self):
        self.seen = []

    def features(self, texts):
        self.seen.extend(texts)
        return np.array([[len(t)] for t in texts], dtype=np.float32)


def stack(detectors, high=1e9):
    names = tuple(f"{d.name}.{f}" for d in detectors for f in d.feature_names)
    width = len(names)
    logistic = LogisticModel(np.zeros(width), np.ones(width), np.r_[np.ones(1), np.zeros(width - 1)], -10.0)
    calibrator = IsotonicCalibrator(np.array([-10.0, 10.0]), np.array([0.01, 0.99]))
    return DetectorStack(detectors, Stacker(names, np.full(width, -1e9), np.full(width, high), logistic, calibrator))


def test_detectors_see_folded_text_and_the_probability_follows_the_stacker():
    length = LengthDetector()
    scores = stack([length, ResidueDetector()]).score(["a\u200bb", "x" * 20, "As an AI language model, I cannot."])
    assert length.seen[0] == "ab"  # the zero-width space was folded away before any detector ran
    assert scores.feature_names == ("length.chars", "residue.residue_match")
    assert scores.probability[1] > scores.probability[0]  # the toy stacker rewards length
    assert scores.residue[2] is not None and scores.residue[0] is None


def test_date_prior_lowers_only_texts_dated_before_the_cutoff():
    p = np.array([0.5, 0.5, 0.5, 0.9], dtype=np.float32)
    dates = [dt.datetime(2021, 5, 1, tzinfo=UTC), None, DATE_PRIOR_CUTOFF, dt.datetime(2019, 1, 1, tzinfo=UTC)]
    out = apply_date_prior(p, dates, odds_ratio=0.05)
    assert abs(out[0] - 0.05 / 1.05) < 1e-6      # odds 1 -> 0.05
    assert out[1] == 0.5 and out[2] == 0.5        # undated, and dated at the cutoff: unchanged
    assert abs(out[3] - 0.45 / 1.45) < 1e-6       # odds 9 -> 0.45
    assert np.array_equal(apply_date_prior(p, dates, odds_ratio=1.0), p)


def test_stacker_inputs_are_clipped_to_the_training_range():
    length = LengthDetector()
    clipped = stack([length], high=12.0).score(["x" * 12, "x" * 5000]).probability
    assert clipped[0] == clipped[1]            # 5,000 chars counts as 12: an outlier cannot dominate
    unclipped = stack([length]).score(["x" * 12, "x" * 5000]).probability
    assert unclipped[1] > unclipped[0]


def test_a_stacker_needing_a_feature_no_detector_gives_is_refused():
    with pytest.raises(ModelFileError, match="length.chars"):
        DetectorStack([ResidueDetector()], stack([LengthDetector()]).stacker)


def test_non_english_and_too_short_texts_are_gated_not_scored():
    from detectors.stack import MIN_CHARS_TO_JUDGE
    english = "The committee said that it would not be able to finish the report before the end of the year. " * 4
    russian = "Комитет заявил, что не сможет закончить доклад до конца года, потому что данных пока нет. " * 4
    indonesian = "Pemerintah daerah akan membangun jembatan baru tahun depan untuk menghubungkan dua desa itu. " * 4
    short_english = english[: MIN_CHARS_TO_JUDGE - 1]
    scores = stack([LengthDetector()]).score([english, russian, indonesian, short_english, "Да."])
    # fastText's language identification, not the script or function words: Latin-script
    # Indonesian is declined like Cyrillic Russian; English under MIN_CHARS_TO_JUDGE is too short
    assert scores.language[:4] == ["en", "ru", "id", "en"]
    assert scores.supported.tolist() == [True, False, False, False, False]
    assert scores.too_short.tolist() == [False, False, False, True, True]
    assert scores.probability.shape == (5,)   # every text still has features and a raw probability
