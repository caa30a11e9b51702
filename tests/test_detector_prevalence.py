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


def test_the_interval_is_the_delta_method_worked_by_hand():
    rates = Rates(0.9, tpr=0.6, fpr=0.05, machine=400, human=500)
    share = adjusted_share(215, 1000, rates)
    # q = 0.215, separation 0.55, estimate (0.215 - 0.05) / 0.55 = 0.3; variance of the
    # estimate = (corpus + TPR + FPR terms) / separation^2, each term worked out by hand:
    corpus = 0.215 * 0.785 / 1000        # 1.68775e-4
    tpr_term = 0.3 ** 2 * 0.24 / 400     # 5.4e-5
    fpr_term = 0.7 ** 2 * 0.0475 / 500   # 4.655e-5
    half = 1.96 * ((1.68775e-4 + 5.4e-5 + 4.655e-5) / 0.3025) ** 0.5   # 0.05848
    assert (corpus, tpr_term, fpr_term) == pytest.approx((1.68775e-4, 5.4e-5, 4.655e-5))
    assert share.estimate == pytest.approx(0.3)
    assert (share.low, share.high) == pytest.approx((0.3 - half, 0.3 + half), rel=1e-9)
    assert half == pytest.approx(0.05848, abs=1e-5)


def test_95_percent_intervals_cover_the_true_share_95_percent_of_the_time():
    """Corpora drawn at a known machine-written rate, rates measured on held-out sets of
    1,000 texts per class: every variance term matters here, so dropping any of them, or
    using the 90% z of 1.645, brings coverage to 0.90 or less."""
    rng = np.random.default_rng(7)
    sims, n, tpr, fpr, held = 4000, 5000, 0.7, 0.1, 1000
    truth = rng.uniform(0.05, 0.6, sims)
    machine = rng.binomial(n, truth)
    flagged = rng.binomial(machine, tpr) + rng.binomial(n - machine, fpr)
    tprs = rng.binomial(held, tpr, sims) / held
    fprs = rng.binomial(held, fpr, sims) / held
    covered = 0
    for rate, f, t, p in zip(truth.tolist(), flagged.tolist(), tprs.tolist(), fprs.tolist()):
        share = adjusted_share(f, n, Rates(0.5, t, p, held, held))
        covered += share.low <= rate <= share.high
    assert 0.93 <= covered / sims <= 0.97


def test_a_threshold_between_bins_leaves_out_the_bin_it_falls_in():
    # bin 290 holds [0.290, 0.291): a threshold of 0.2905 counts from bin 291 on, as 0.291 does
    counts = {"machine": [0] * BINS, "human": [0] * BINS}
    counts["machine"][289], counts["machine"][290], counts["machine"][291] = 1, 2, 5
    counts["human"][290], counts["human"][292] = 3, 1
    for t in (0.2905, 0.29001, 0.291):
        r = rates_at(counts, t)
        assert (r.tpr, r.fpr) == (5 / 8, 1 / 4)
    r = rates_at(counts, 0.29)   # on the grid: bin 290 counts
    assert (r.tpr, r.fpr) == (7 / 8, 1.0)


def test_a_grid_value_that_float_arithmetic_puts_just_under_its_edge_stays_in_its_bin():
    # 0.5 + 0.059 is 0.5589999999999999 and 0.559 * 1000 of it is 558.9999999999999: without
    # the epsilon it would fall into bin 558; the float just below 0.29 likewise
    p = np.array([0.5 + 0.059, 0.1 + 0.071, np.nextafter(0.29, 0.0), 0.2899, 1.0])
    counts = histograms(np.r_[p, 0.5], np.r_[np.ones(len(p), bool), False])
    assert [i for i, c in enumerate(counts["machine"]) if c] == [171, 289, 290, 559, BINS - 1]
    assert rates_at(counts, 0.559).tpr == 2 / 5   # 0.5 + 0.059 and 1.0


def test_histograms_without_both_classes_give_no_rates():
    one_each = {"machine": [0] * BINS, "human": [0] * BINS}
    one_each["machine"][950], one_each["human"][10] = 1, 1
    assert (rates_at(one_each, 0.9).tpr, rates_at(one_each, 0.9).fpr) == (1.0, 0.0)   # one text is enough
    for empty in ("machine", "human"):
        with pytest.raises(ValueError, match="both classes"):
            rates_at({**one_each, empty: [0] * BINS}, 0.9)


def test_a_detector_at_most_0_01_better_than_chance_gives_no_estimate():
    assert adjusted_share(30, 100, Rates(0.9, 0.02, 0.01, 1000, 1000)) is None      # separation exactly 0.01
    assert adjusted_share(30, 100, Rates(0.9, 0.5105, 0.5, 1000, 1000)) is not None  # 0.0105
