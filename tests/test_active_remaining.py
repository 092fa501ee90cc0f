"""How many interesting objects are left (issue #23 item 11): the estimate from the posterior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from galexplorer.active.remaining import (
    EXACT_MAX,
    estimate_remaining,
    interesting_probability,
    poisson_binomial_interval,
)
from galexplorer.errors import ConfigError

NONE = np.empty(0, np.int64)


def test_probability_is_the_gaussian_tail_above_the_half_step():
    # integer scores: a score >= 3 is a draw >= 2.5
    p = interesting_probability(np.array([2.5, 3.5, 1.5, 2.5]), np.array([1.0, 1.0, 1.0, 0.0]), 3)
    np.testing.assert_allclose(p, [0.5, 0.8413447, 0.1586553, 1.0], atol=1e-6)
    # continuous scores (step 0), and a calibration that widens the std
    assert interesting_probability(np.array([3.0]), np.array([1.0]), 3, step=0)[0] == pytest.approx(0.5)
    wide = interesting_probability(np.array([4.5]), np.array([1.0]), 3, std_scale=2.0)[0]
    assert wide == pytest.approx(0.8413447, abs=1e-6)
    assert interesting_probability(np.array([2.0]), np.array([0.0]), 3)[0] == 0.0


def test_all_half_gives_n_over_two_and_the_binomial_interval():
    n = 400
    est = estimate_remaining(np.full(n, 2.5), np.ones(n), NONE, NONE, 3.0)
    assert est.expected == pytest.approx(n / 2)
    assert est.method == "exact"
    lo, hi = binom.ppf(0.05, n, 0.5), binom.ppf(0.95, n, 0.5)
    assert (est.low, est.high) == (lo, hi)
    assert est.n_unlabelled == n and est.found == 0


def test_exact_interval_matches_the_binomial_and_normal_is_close():
    p = np.full(EXACT_MAX + 1000, 0.02)         # too many for the convolution: the normal approximation
    lo, hi, method = poisson_binomial_interval(p, 0.9)
    assert method == "normal"
    n = len(p)
    assert abs(lo - binom.ppf(0.05, n, 0.02)) <= 2 and abs(hi - binom.ppf(0.95, n, 0.02)) <= 2
    lo, hi, method = poisson_binomial_interval(np.full(300, 0.1), 0.8)
    assert method == "exact" and (lo, hi) == (binom.ppf(0.1, 300, 0.1), binom.ppf(0.9, 300, 0.1))
    # certain objects count, impossible ones do not
    assert poisson_binomial_interval(np.r_[np.ones(7), np.zeros(50)])[:2] == (7, 7)


def test_labelled_and_excluded_objects_are_not_estimated():
    mean = np.full(10, 5.0)
    std = np.full(10, 0.1)
    std[[0, 1]] = np.nan                         # labelled: never read
    est = estimate_remaining(mean, std, np.array([0, 1]), np.array([5.0, 1.0]), 3.0, excluded=np.array([2]))
    assert est.found == 1 and est.n_unlabelled == 7 and est.expected == pytest.approx(7)
    assert (est.low, est.high) == (7, 7)
    with pytest.raises(ConfigError, match="finite std"):
        estimate_remaining(mean, np.full(10, np.nan), NONE, NONE, 3.0)
    with pytest.raises(ConfigError, match="level"):
        poisson_binomial_interval(np.full(3, 0.5), level=1.0)


def test_monotonic_in_mean_std_and_threshold():
    rng = np.random.default_rng(0)
    mean, std = rng.uniform(0, 5, 500), rng.uniform(0.2, 2, 500)
    base = estimate_remaining(mean, std, NONE, NONE, 3.0)
    higher = estimate_remaining(mean + 0.5, std, NONE, NONE, 3.0)
    stricter = estimate_remaining(mean, std, NONE, NONE, 4.0)
    assert higher.expected > base.expected > stricter.expected
    assert higher.low >= base.low and higher.high >= base.high
    # a wider std moves mass towards 0.5: more expected where most are below the cut
    low_mean = np.full(500, 0.5)
    assert (estimate_remaining(low_mean, np.full(500, 2.0), NONE, NONE, 3.0).expected
            > estimate_remaining(low_mean, np.full(500, 1.0), NONE, NONE, 3.0).expected)
    assert base.low <= base.expected <= base.high


def test_next_batch_yield_and_stopping_hint():
    mean = np.r_[np.full(5, 5.0), np.full(95, 0.0)]
    std = np.full(100, 0.5)
    est = estimate_remaining(mean, std, NONE, NONE, 3.0, next_batch=np.arange(10))
    assert est.next_yield == pytest.approx(5.0, abs=1e-3) and not est.stop
    assert "about 5 left" in est.hint
    # without a batch: the k highest probabilities
    assert estimate_remaining(mean, std, NONE, NONE, 3.0, batch_size=3).next_yield == pytest.approx(3.0, abs=1e-3)
    dry = estimate_remaining(mean, std, np.arange(5), np.full(5, 5.0), 3.0, next_batch=np.arange(5, 15))
    assert dry.found == 5 and dry.next_yield < 0.01 and dry.stop
    assert "unlikely to pay" in dry.hint


def test_interval_covers_the_truth_in_simulated_sets():
    """Truths drawn from calibrated posteriors: the 90% interval covers them about 90% of the time."""
    rng = np.random.default_rng(1)
    covered = 0
    trials = 300
    for _ in range(trials):
        n = 2000
        mean = rng.normal(0.8, 1.2, n)
        std = rng.uniform(0.3, 1.5, n)
        score = rng.normal(mean, std)              # the labels a person would give
        truth = int(np.count_nonzero(score >= 2.5))
        est = estimate_remaining(mean, std, NONE, NONE, 3.0)
        covered += est.low <= truth <= est.high
    assert 0.85 <= covered / trials <= 0.97, covered / trials
