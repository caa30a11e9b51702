"""Quality measures and the stacker's arithmetic, against brute force and known cases."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.calibration import fit_isotonic, fit_logistic, sigmoid
from detectors.metrics import auroc, expected_calibration_error, threshold_at_fpr, tpr_at_fpr


def brute_auroc(scores, labels):
    pos = [s for s, l in zip(scores, labels) if l]
    neg = [s for s, l in zip(scores, labels) if not l]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=2, max_size=40))
def test_auroc_equals_the_pairwise_definition_with_ties(rows):
    scores, labels = np.array([r[0] for r in rows], float), np.array([r[1] for r in rows])
    if labels.all() or not labels.any():
        assert np.isnan(auroc(scores, labels))
    else:
        assert abs(auroc(scores, labels) - brute_auroc(scores, labels)) < 1e-12


def test_tpr_at_fpr_never_lets_more_humans_through_than_allowed():
    rng = np.random.default_rng(0)
    human, machine = rng.normal(0, 1, 1000), rng.normal(2, 1, 1000)
    scores, labels = np.r_[human, machine], np.r_[np.zeros(1000), np.ones(1000)]
    t = threshold_at_fpr(scores, labels, 0.01)
    assert (human > t).mean() <= 0.01
    assert (human >= t).mean() > 0.01 - 1e-9  # and no stricter than needed
    assert abs(tpr_at_fpr(scores, labels, 0.01) - (machine > t).mean()) < 1e-12
    assert 0.2 < tpr_at_fpr(scores, labels, 0.01) < 0.6  # N(2,1) above the 99th percentile of N(0,1)


def test_calibration_error_is_zero_when_probabilities_match_frequencies():
    probabilities = np.repeat([0.05, 0.55, 0.95], 20)
    labels = np.r_[np.zeros(19), 1, np.zeros(9), np.ones(11), np.zeros(1), np.ones(19)]
    assert expected_calibration_error(probabilities, labels) < 1e-12
    assert abs(expected_calibration_error(np.full(10, 0.9), np.zeros(10)) - 0.9) < 1e-12


def test_logistic_regression_recovers_known_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 2))
    y = rng.random(20000) < sigmoid(0.5 + 2.0 * x[:, 0] - 1.0 * x[:, 1])
    model = fit_logistic(x, y, l2=1e-6)
    raw_weights = model.weights / model.scale
    assert np.allclose(raw_weights, [2.0, -1.0], atol=0.1)
    assert abs(model.decision(np.zeros((1, 2)))[0] - 0.5) < 0.1


def test_isotonic_calibration_is_monotone_and_bounded():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=5000)
    labels = rng.random(5000) < sigmoid(3 * scores)
    calibrate = fit_isotonic(scores, labels)
    grid = np.linspace(-4, 4, 200)
    p = calibrate(grid)
    assert np.all(np.diff(p) >= 0) and p.min() > 0 and p.max() < 1
    assert abs(calibrate(np.array([0.0]))[0] - 0.5) < 0.1
    assert expected_calibration_error(calibrate(scores), labels) < 0.02


def test_isotonic_merges_tied_scores_into_one_knot():
    calibrate = fit_isotonic(np.array([0.0, 0.0, 0.0, 1.0, 1.0]), np.array([0, 1, 1, 1, 1]))
    assert np.all(np.diff(calibrate.knots) > 0)
    assert calibrate(np.array([0.0]))[0] == pytest.approx(2 / 3)


def test_threshold_for_max_fpr_on_a_known_distribution():
    from detectors.metrics import threshold_for_max_fpr
    # 1,000 human scores 0.000, 0.001, ..., 0.999: at most 1% (10 texts) may score at or above t,
    # so t must lie strictly above the 11th highest, 0.989: the grid gives 0.990
    scores = np.arange(1000) / 1000
    assert threshold_for_max_fpr(scores, 0.01) == 0.99
    assert (scores >= 0.99).sum() == 10
    assert threshold_for_max_fpr(scores, 0.05) == 0.95
    # a score exactly on the grid is not flagged by the threshold chosen above it
    assert threshold_for_max_fpr(np.array([0.7] * 200), 0.01) == 0.701
    # ties at the top: all three tied texts would be flagged together, so t goes above them
    assert threshold_for_max_fpr(np.r_[np.full(97, 0.2), [0.93, 0.93, 0.93]], 0.02) == 0.931


def test_threshold_for_max_fpr_never_goes_below_its_floor_and_needs_texts():
    from detectors.metrics import threshold_for_max_fpr
    assert threshold_for_max_fpr(np.full(100, 0.1), 0.01) == 0.5
    assert threshold_for_max_fpr(np.full(100, 0.1), 0.01, floor=0.05) == 0.101
    assert threshold_for_max_fpr(np.array([0.9]), 1.0) == 0.5   # every text may be flagged
    with pytest.raises(ValueError, match="needs human texts"):
        threshold_for_max_fpr(np.array([]), 0.01)


@pytest.mark.parametrize("seed", range(5))
def test_threshold_for_max_fpr_holds_its_bound_on_random_scores(seed):
    from detectors.metrics import threshold_for_max_fpr
    rng = np.random.default_rng(seed)
    scores = rng.beta(2, 5, size=int(rng.integers(50, 3000)))
    for max_fpr in (0.005, 0.01, 0.1):
        t = threshold_for_max_fpr(scores, max_fpr)
        assert (scores >= t).mean() <= max_fpr + 1e-12
        lower = round(t - 0.001, 10)   # one grid step lower flags too many, unless t is at the floor
        assert t == 0.5 or (scores >= lower).mean() > max_fpr
