"""The stacker's arithmetic (detectors/calibration.py) against results worked out by hand."""
import math

import numpy as np
import pytest

from detectors.calibration import fit_isotonic, fit_logistic
from detectors.metrics import class_balanced_weights


def test_isotonic_pools_with_class_balanced_weights_on_imbalanced_labels():
    scores = np.arange(10.0)
    labels = np.array([0, 0, 0, 0, 0, 1, 0, 0, 1, 1])   # 7 human, 3 machine
    weights = class_balanced_weights(labels)           # human 10 * 0.5 / 7, machine 10 * 0.5 / 3
    assert weights[0] == pytest.approx(5 / 7) and weights[5] == pytest.approx(5 / 3)
    calibrate = fit_isotonic(scores, labels, weights=weights)
    # blocks: scores 0-4 (all human), 5-7 (one machine, two humans: a violator pooled twice),
    # 8-9 (machine); the middle block's mean is (5/3) / (5/3 + 2 * 5/7) = 7/13, not 1/3
    assert calibrate.knots.tolist() == [2.0, 6.0, 8.5]   # each block's midpoint
    assert calibrate.values == pytest.approx([1e-4, 7 / 13, 1 - 1e-4])
    assert calibrate(np.array([6.0, 7.25]))[0] == pytest.approx(7 / 13)
    unweighted = fit_isotonic(scores, labels)
    assert unweighted.values[1] == pytest.approx(1 / 3)


def test_tied_scores_are_one_point_with_their_weighted_mean_label():
    # at score 1: two humans of weight 1 and one machine of weight 6 -> 6 / 8
    calibrate = fit_isotonic(np.array([0.0, 1.0, 1.0, 1.0, 3.0]), np.array([0, 0, 1, 0, 1]),
                             weights=np.array([1.0, 1.0, 6.0, 1.0, 1.0]))
    assert calibrate.knots.tolist() == [0.0, 1.0, 3.0]
    assert calibrate.values == pytest.approx([1e-4, 0.75, 1 - 1e-4])


def test_logistic_recovers_a_large_intercept_under_l2_on_the_weights():
    # 100 machine and 2 human rows, symmetric in x: by symmetry the weight is 0 and the bias
    # is the log odds of the labels, log(100 / 2); the penalty must not shrink the bias
    x = np.r_[np.full(50, -1.0), np.full(50, 1.0), -1.0, 1.0][:, None]
    y = np.r_[np.ones(100), 0.0, 0.0]
    model = fit_logistic(x, y, l2=1.0)
    assert model.bias == pytest.approx(math.log(50), abs=1e-6)
    assert model.weights == pytest.approx([0.0], abs=1e-9)


def test_a_heavy_penalty_flattens_the_weights_but_leaves_the_base_rate():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1000, 2))
    y = (x[:, 0] + 0.3 * rng.normal(size=1000) > -1.2816)   # ~90% machine, x strongly informative
    model = fit_logistic(x, y, l2=1e6)
    assert np.abs(model.weights).max() < 0.01
    # with the weights near 0, mean(sigmoid(bias)) = mean(y): the bias is the labels' log odds
    share = y.mean()
    assert model.bias == pytest.approx(math.log(share / (1 - share)), abs=0.02)


def test_tied_scores_pool_with_their_total_weight():
    # three tied machine rows (one point of weight 3, mean 1) then a human row: the violation
    # pools them into one block of mean 3/4 at the midpoint of 0 and 1
    calibrate = fit_isotonic(np.array([0.0, 0.0, 0.0, 1.0]), np.array([1, 1, 1, 0]))
    assert calibrate.knots.tolist() == [0.5] and calibrate.values == pytest.approx([0.75])


def test_the_l2_optimum_satisfies_its_stationarity_condition():
    # x = -1 or +1, 10 rows each, 8 machine rows at +1 and 2 at -1: mean 0 and std 1, so the
    # standardised feature is x; by symmetry the bias is 0, and d/dw of the penalised loss,
    # 10 (s(w) - 0.8) - 10 (s(-w) - 0.2) + l2 w, is 0 where s(w) = 0.8 - l2 w / 20
    x = np.r_[np.full(10, 1.0), np.full(10, -1.0)][:, None]
    y = np.r_[np.ones(8), np.zeros(2), np.ones(2), np.zeros(8)]
    for l2 in (0.0, 4.0, 10.0):
        model = fit_logistic(x, y, l2=l2)
        w = model.weights[0]
        assert model.bias == pytest.approx(0.0, abs=1e-9)
        assert 1 / (1 + math.exp(-w)) == pytest.approx(0.8 - l2 * w / 20, abs=1e-9)
    assert fit_logistic(x, y, l2=0.0).weights[0] == pytest.approx(math.log(4))   # logit(0.8)


def test_decisions_on_raw_features_undo_the_standardisation():
    rng = np.random.default_rng(4)
    x = np.c_[100 + 5 * rng.normal(size=4000), -3 + 0.1 * rng.normal(size=4000)]
    logit = 0.5 + 0.4 * (x[:, 0] - 100) - 10.0 * (x[:, 1] + 3)   # per raw unit: 0.4 and -10
    y = rng.random(4000) < 1 / (1 + np.exp(-logit))
    model = fit_logistic(x.tolist(), y.astype(int).tolist(), l2=1e-6)   # plain lists are accepted
    assert model.mean == pytest.approx([100, -3], abs=0.3) and model.scale == pytest.approx([5, 0.1], rel=0.05)
    probes = np.array([[100.0, -3.0], [110.0, -3.0], [100.0, -2.9]])
    assert model.decision(probes) == pytest.approx([0.5, 4.5, -0.5], abs=0.25)


def test_a_constant_feature_without_a_penalty_does_not_break_the_fit():
    # --l2 0 is allowed; a constant column makes the Newton system singular without its jitter
    rng = np.random.default_rng(5)
    x = np.c_[rng.normal(size=500), np.full(500, 7.0)]
    y = rng.random(500) < 1 / (1 + np.exp(-2 * x[:, 0]))
    model = fit_logistic(x, y, l2=0.0)
    assert np.isfinite(model.weights).all() and model.weights[1] == 0.0
    assert model.weights[0] / model.scale[0] == pytest.approx(2.0, abs=0.4)
