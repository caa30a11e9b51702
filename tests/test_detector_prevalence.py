"""Adjusted classify-and-count: the machine-written share of a corpus from the share the
detector flags, corrected with its held-out rates."""
import numpy as np
import pytest

from detectors.prevalence import BINS, Rates, adjusted_share, histograms, rates_at


def test_rates_from_histograms_equal_the_direct_count_on_the_grid():
    rng = np.random.default_rng(0)
    p = np.round(rng.random(5000), 3)
    y = rng.random(5000) < 0.4
    counts = histograms(p, y)
    assert sum(counts["machine"]) == y.sum() and len(counts["human"]) == BINS
    for t in (0.0, 0.25, 0.29, 0.5, 0.57, 0.9, 0.999):
        r = rates_at(counts, t)
        assert r.tpr == pytest.approx((p[y] >= t).mean()) and r.fpr == pytest.approx((p[~y] >= t).mean())


def test_a_perfect_detector_counts_exactly_and_a_leaky_one_is_corrected():
    perfect = Rates(0.9, tpr=1.0, fpr=0.0, machine=10_000, human=10_000)
    assert adjusted_share(300, 1000, perfect).estimate == pytest.approx(0.3)
    leaky = Rates(0.9, tpr=0.6, fpr=0.05, machine=10_000, human=10_000)
    # a corpus 30% machine-written: 0.3*0.6 + 0.7*0.05 = 0.215 flagged
    share = adjusted_share(21_500, 100_000, leaky)
    assert share.estimate == pytest.approx(0.3, abs=1e-9) and share.flagged_share == pytest.approx(0.215)
    assert share.low < 0.3 < share.high


def test_estimates_are_clipped_and_uncertainty_shrinks_with_more_documents():
    rates = Rates(0.9, tpr=0.57, fpr=0.008, machine=6488, human=2494)
    assert adjusted_share(0, 1000, rates).estimate == 0.0          # fewer flagged than false positives
    assert adjusted_share(1000, 1000, rates).estimate == 1.0
    small, large = adjusted_share(10, 100, rates), adjusted_share(10_000, 100_000, rates)
    assert small.high - small.low > large.high - large.low
    assert adjusted_share(5, 0, rates) is None
    assert adjusted_share(5, 10, Rates(0.9, 0.5, 0.495, 100, 100)) is None   # no better than chance


def test_the_interval_covers_the_true_share_in_simulated_corpora():
    rng = np.random.default_rng(1)
    tpr, fpr, n = 0.57, 0.008, 20_000
    covered = 0
    for _ in range(300):
        truth = rng.uniform(0.02, 0.6)
        machine = rng.binomial(n, truth)
        flagged = rng.binomial(machine, tpr) + rng.binomial(n - machine, fpr)
        # the rates themselves are estimates from a held-out set of the stack's size
        rates = Rates(0.9, rng.binomial(6488, tpr) / 6488, rng.binomial(2494, fpr) / 2494, 6488, 2494)
        share = adjusted_share(flagged, n, rates)
        covered += share.low <= machine / n <= share.high
    assert covered / 300 >= 0.9
