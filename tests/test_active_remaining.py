"""How many interesting objects are left (issue #23 item 11): the estimate from the posterior."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom, norm

from galexplorer.active.remaining import (
    EXACT_MAX,
    Calibration,
    YieldCheck,
    _truncated_gamma_draws,
    estimate_remaining,
    fit_calibration,
    interesting_probability,
    poisson_binomial_interval,
    truncated_yield_factor,
    yield_factor,
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


def test_calibration_recovers_a_known_map_and_corrects_the_estimate():
    """Labels drawn with P(hit) = Φ(2z - 0.6): the fit finds (2, -0.6) and the calibrated
    estimate matches the truth where Φ(z) does not."""
    rng = np.random.default_rng(2)
    z = rng.normal(-1, 1.5, 4000)
    mean, std = 2.5 + z, np.ones_like(z)               # z = (mean - 2.5) / std
    hit = rng.random(4000) < norm.cdf(2 * z - 0.6)
    cal = fit_calibration(mean, std, np.where(hit, 5.0, 0.0), 3.0)
    assert cal.a == pytest.approx(2, abs=0.2) and cal.b == pytest.approx(-0.6, abs=0.15)
    assert cal.n == 4000 and cal.hits == hit.sum()
    # a fresh set from the same map: the calibrated count is right, the Gaussian's is not
    z2 = rng.normal(-1, 1.5, 3000)
    truth = int((rng.random(3000) < norm.cdf(2 * z2 - 0.6)).sum())
    est = estimate_remaining(2.5 + z2, np.ones(3000), NONE, NONE, 3.0, calibration=cal)
    raw = estimate_remaining(2.5 + z2, np.ones(3000), NONE, NONE, 3.0)
    assert est.method == "calibrated" and est.low <= truth <= est.high
    assert abs(est.expected - truth) < 0.1 * truth < abs(raw.expected - truth)


def _logistic_fit(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The previous calibration, for reference: logistic MAP with the prior N((1.702, 0), 1)."""
    X, w, pm = np.column_stack([z, np.ones_like(z)]), np.array([1.702, 0.0]), np.array([1.702, 0.0])
    for _ in range(100):
        p = 1 / (1 + np.exp(-(X @ w)))
        w = w - np.linalg.solve((X * (p * (1 - p))[:, None]).T @ X + np.eye(2), X.T @ (p - y) + (w - pm))
    return float(w[0]), float(w[1])


def test_probit_tail_does_not_pile_up_over_many_unremarkable_objects():
    """The benchmark's shape: 150 labels near the boundary (z in -1..1.5), an unlabelled pool of
    2000 unremarkable objects at z ≈ -1.5 and 40 near the top, a hit rate with a Gaussian tail.
    Over 12 draws the probit calibration's count is within 20% of the truth (median) and its
    interval covers it; the previous logistic fit's exponential tail gives each unremarkable
    object a few tenths of a per cent too much, and its count is off by more than 40%."""
    link = lambda z: norm.cdf(2.5 * z - 0.3)  # noqa: E731
    probit, logistic, covered = [], [], 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        zl = rng.uniform(-1.0, 1.5, 150)
        hit = rng.random(150) < link(zl)
        cal = fit_calibration(2.5 + zl, np.ones(150), np.where(hit, 5.0, 0.0), 3.0)
        zu = np.concatenate([rng.normal(-1.5, 0.3, 2000), rng.normal(0.0, 0.3, 40)])
        truth = float(link(zu).sum())                   # the expected count: no sampling noise
        est = estimate_remaining(2.5 + zu, np.ones(len(zu)), NONE, NONE, 3.0, calibration=cal, seed=seed)
        a, b = _logistic_fit(zl, hit.astype(float))
        probit.append(abs(est.expected / truth - 1))
        logistic.append(abs(float((1 / (1 + np.exp(-(a * zu + b)))).sum()) / truth - 1))
        covered += est.low <= truth <= est.high
    assert np.median(probit) < 0.2 and np.median(logistic) > 0.4, (np.median(probit), np.median(logistic))
    assert covered >= 11


def test_calibration_stays_finite_when_labels_are_alike_or_separated():
    z = np.linspace(-3, 3, 40)
    none = fit_calibration(2.5 + z, np.ones(40), np.zeros(40), 3.0)
    split = fit_calibration(2.5 + z, np.ones(40), np.where(z > 0, 5.0, 0.0), 3.0)
    for cal in (none, split):
        assert np.isfinite([cal.a, cal.b]).all() and np.all(np.isfinite(cal.cov))
    assert none.b < 0 and split.a > 1.702       # no hits: lower; a clean split: steeper than Φ
    with pytest.raises(ConfigError, match="positive stds"):
        fit_calibration(np.zeros(3), np.zeros(3), np.zeros(3), 3.0)


def test_a_single_find_at_a_low_z_gives_no_falling_calibration_and_the_estimate_lies_in_its_interval():
    """bench_remaining's radio seed 0 at 80-100 labels: one find, at a low z, among many labels
    near the top. The unconstrained probit fell (a ≈ -0.16): every unremarkable object got a
    per-cent chance, the expected count was 43 while its interval's draws (cut at a ≥ 0) gave
    0-40 — an estimate outside its own 90% interval. Now the fit is flat at worst and the
    estimate lies inside its interval."""
    rng = np.random.default_rng(0)
    zl = np.concatenate([rng.uniform(-0.5, 2.0, 79), [-2.5]])
    labels = np.zeros(80)
    labels[-1] = 5.0                                    # the one find, where the model expected least
    cal = fit_calibration(2.5 + zl, np.ones(80), labels, 3.0)
    assert cal.a >= 0 and np.isfinite(cal.b) and np.all(np.isfinite(cal.cov))
    zu = np.concatenate([rng.normal(-3.0, 0.5, 1900), rng.normal(0.0, 0.5, 20)])
    est = estimate_remaining(2.5 + zu, np.ones(len(zu)), NONE, NONE, 3.0, calibration=cal)
    assert est.low <= est.expected <= est.high, (est.low, est.expected, est.high)
    # where the labels really rise with z, the slope is unchanged by the bound
    z = rng.normal(0, 1, 400)
    hit = rng.random(400) < norm.cdf(1.5 * z)
    assert fit_calibration(2.5 + z, np.ones(400), np.where(hit, 5.0, 0.0), 3.0).a == pytest.approx(1.5, abs=0.4)


def test_no_stopping_hint_before_the_first_find():
    cold = estimate_remaining(np.zeros(100), np.full(100, 0.3), np.array([0]), np.array([0.0]), 3.0)
    assert cold.next_yield < 0.5 and not cold.stop


def test_loop_result_estimate_on_a_planted_store(tmp_path):
    from active_synthetic import planted_store

    from galexplorer.active.loop import ActiveLoop, LoopConfig
    from galexplorer.store import EmbeddingStore

    path, rare, _ = planted_store(tmp_path / "s.h5", 600, rare=0.05)
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(scorer="gp"))
        rows = loop.initial_batch()
        est = loop.fit(rows, np.where(rare[rows], 5.0, 0.0)).remaining()
        assert est.method == "calibrated" and est.calibration.n == len(rows)
        assert est.n_unlabelled == 600 - len(rows) and est.batch_size == 10
        with pytest.raises(ConfigError, match="uncertainty"):
            ActiveLoop(st, LoopConfig(scorer="iforest")).fit(rows, np.zeros(len(rows))).remaining()


def test_yield_factor_is_the_gamma_posterior_of_the_last_batches():
    checks = [YieldCheck(10, 9.0, 0), YieldCheck(20, 4.0, 1), YieldCheck(30, 6.0, 2)]
    assert yield_factor(checks) == (0.5 + 3, 0.5 + 10.0)           # the last two only
    assert yield_factor(checks, batches=3, prior=1.0) == (1.0 + 3, 1.0 + 19.0)
    assert yield_factor([]) == (0.5, 0.5)
    with pytest.raises(ConfigError, match="prior"):
        yield_factor(checks, prior=0)


def test_yield_checks_correct_a_calibration_that_overstates_the_unlabelled_hit_rate():
    """The selection bias: the calibration (fitted where the labels are) says Φ(2z), the
    unlabelled objects' real rate is a third of it. Batches proposed from them brought a third
    of what they were expected to: with those checks the estimate is within 30% of the truth and
    the interval covers it; without, it is three times the truth and the interval misses."""
    rng = np.random.default_rng(3)
    cal = Calibration(2.0, 0.0, ((0.01, 0.0), (0.0, 0.01)), 200, 60)
    z = rng.normal(-1.2, 0.5, 3000)
    truth = float(cal.probability(z).sum()) / 3
    checks = [YieldCheck(90, 6.0, 2), YieldCheck(100, 5.5, 2)]
    mean, std = 2.5 + z, np.ones_like(z)
    fixed = estimate_remaining(mean, std, NONE, NONE, 3.0, calibration=cal, yield_checks=checks)
    plain = estimate_remaining(mean, std, NONE, NONE, 3.0, calibration=cal)
    assert fixed.yield_factor == pytest.approx(_truncated_gamma_mean(4.5, 12.0, 1.0)) and plain.yield_factor == 1.0
    assert abs(fixed.expected - truth) < 0.3 * truth < 0.3 * abs(plain.expected - truth) * 3 / 2
    assert fixed.low <= truth <= fixed.high and not plain.low <= truth <= plain.high
    assert fixed.as_dict()["yield_factor"] == pytest.approx(0.372, abs=1e-3)


def _truncated_gamma_mean(shape: float, rate: float, upper: float) -> float:
    """E[ρ | ρ ≤ upper] for ρ ~ Gamma(shape, rate), by quadrature (the reference)."""
    from scipy.integrate import quad
    from scipy.stats import gamma

    g = gamma(shape, scale=1 / rate)
    return quad(lambda x: x * g.pdf(x), 0, upper)[0] / g.cdf(upper)


@pytest.mark.parametrize("shape, rate", [(0.5, 0.5), (4.5, 12.0), (3.5, 2.5), (12.5, 6.0), (1.5, 0.7)])
def test_truncated_yield_factor_is_the_mean_of_the_gamma_below_one(shape, rate):
    got = truncated_yield_factor(shape, rate)
    assert got == pytest.approx(_truncated_gamma_mean(shape, rate, 1.0), rel=1e-6)
    assert got <= min(1.0, shape / rate)
    draws = _truncated_gamma_draws(np.random.default_rng(0), shape, rate, 1.0, 20000)
    assert draws.max() <= 1.0 and draws.mean() == pytest.approx(got, abs=0.01)


def test_truncated_yield_factor_limits_and_errors():
    # the mass far below one: the plain posterior mean; far above: one
    assert truncated_yield_factor(2.5, 50.5) == pytest.approx(2.5 / 50.5, rel=1e-9)
    assert truncated_yield_factor(200.5, 20.5) == 1.0
    assert (_truncated_gamma_draws(np.random.default_rng(0), 200.5, 20.5, 1.0, 5) == 1.0).all()
    with pytest.raises(ConfigError, match="shape, rate and upper"):
        truncated_yield_factor(0.0, 1.0)


def test_batches_that_beat_the_calibration_do_not_scale_up_the_tail():
    """The other direction: the calibration (fitted where the labels are) is right about the
    unlabelled objects, and the last two batches - the very top of the ranking - brought twice
    what it expected. The yield factor only corrects the one-way selection bias (ρ ≤ 1), so the
    estimate stays within 30% of the truth and its interval covers it; the plain Gamma mean
    (ρ ≈ 1.9) would have put it at almost twice the truth, outside its own interval's reach."""
    rng = np.random.default_rng(5)
    cal = Calibration(1.5, -0.3, ((0.01, 0.0), (0.0, 0.01)), 200, 60)
    z = rng.normal(-1.5, 0.6, 4000)
    truth = float(cal.probability(z).sum())
    checks = [YieldCheck(90, 3.0, 6), YieldCheck(100, 3.5, 7)]
    shape, rate = yield_factor(checks)
    assert shape / rate > 1.8                                   # what the untruncated factor was
    est = estimate_remaining(2.5 + z, np.ones_like(z), NONE, NONE, 3.0, calibration=cal, yield_checks=checks)
    assert est.yield_factor <= 1.0
    assert abs(est.expected - truth) < 0.3 * truth
    assert est.low <= truth <= est.high < shape / rate * truth
    plain = estimate_remaining(2.5 + z, np.ones_like(z), NONE, NONE, 3.0, calibration=cal, yield_checks=checks,
                               yield_max=None)
    assert plain.yield_factor == pytest.approx(shape / rate) and plain.expected > 1.5 * truth
    assert not plain.low <= truth <= plain.high


def test_the_loop_chain_records_each_proposed_batch_and_its_hits(tmp_path):
    """fit(previous=...) checks the previous fit's batch: its calibrated expected yield at that
    fit and the hits its labels brought; remaining() applies the last two."""
    from active_synthetic import planted_store

    from galexplorer.active.loop import ActiveLoop, LoopConfig
    from galexplorer.store import EmbeddingStore

    path, rare, _ = planted_store(tmp_path / "s.h5", 600, rare=0.05)
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(scorer="gp"))
        rows = loop.initial_batch()
        result = loop.fit(rows, np.where(rare[rows], 5.0, 0.0))
        assert result.yield_checks == ()
        expected = []
        for _ in range(3):
            proposed = result.next_batch
            cal = fit_calibration(*result._model.loo(), result.labels, 3.0)
            std = result._model.exact_std(proposed)
            expected.append(float(cal.probability((result.mean[proposed] - 2.5) / std).sum()))
            rows = np.concatenate([rows, proposed])
            result = loop.fit(rows, np.where(rare[rows], 5.0, 0.0), previous=result)
        checks = result.yield_checks
        assert [c.labels for c in checks] == [10, 20, 30]
        assert [c.hits for c in checks] == [int(rare[rows[10 * i:10 * i + 10]].sum()) for i in (1, 2, 3)]
        np.testing.assert_allclose([c.expected for c in checks], expected, rtol=1e-4, atol=1e-6)
        shape, rate = yield_factor(checks)
        assert result.remaining().yield_factor == pytest.approx(truncated_yield_factor(shape, rate))
        # another threshold than the one the checks were measured at: no correction
        assert result.remaining(threshold=4.0).yield_factor == 1.0


def test_calibrated_interval_is_the_same_binned_at_survey_scale():
    """Past BIN_ABOVE objects the parameter draws sum over bins of z: the interval barely moves."""
    import time

    from galexplorer.active import remaining as rem

    rng = np.random.default_rng(4)
    z = rng.normal(-3, 1.5, 300_000)
    cal = rem.Calibration(2.5, -0.5, ((0.04, 0.0), (0.0, 0.02)), 100, 10)
    t0 = time.perf_counter()
    binned = rem._calibrated_interval(z, cal, 0.9, 0)
    seconds = time.perf_counter() - t0
    old = rem.BIN_ABOVE
    try:
        rem.BIN_ABOVE = 10 ** 9
        full = rem._calibrated_interval(z, cal, 0.9, 0)
    finally:
        rem.BIN_ABOVE = old
    assert abs(binned[0] - full[0]) <= 0.01 * full[0] + 2 and abs(binned[1] - full[1]) <= 0.01 * full[1] + 2
    assert seconds < 2.0, seconds
