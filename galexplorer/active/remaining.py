"""How many interesting objects are left: an estimate from the model's posterior (issue #23 item 11).

For every unlabelled, not excluded object the scorer gives a predictive mean ``μᵢ`` and std
``σᵢ`` (the GP's includes the white noise, so it is the spread of the *label* a person would
give, not of a latent function). An object is interesting when its score is ``≥ t``
(``interesting_above``). Scores are given on a grid of ``step`` (1: the 0–5 integers), so a
score ``≥ t`` is a Gaussian draw ``≥ t − step/2``::

    pᵢ = P(scoreᵢ ≥ t) = norm.sf((t − step/2 − μᵢ) / (s·σᵢ))

where ``s`` is a calibration factor of the std (1 by default; :func:`loo_std_scale` measures
it on the labelled objects by leave-one-out). Then

* **expected remaining** ``E = Σ pᵢ``;
* **interval**: the central ``level`` interval of the count ``Σ Bernoulli(pᵢ)`` with the objects
  independent — the Poisson-binomial distribution, computed exactly (a convolution over the
  objects whose ``pᵢ`` is neither ~0 nor ~1) up to :data:`EXACT_MAX` such objects, else by its
  normal approximation (variance ``Σ pᵢ(1 − pᵢ)``, continuity-corrected). It ignores the
  correlations of the posterior between objects and the model's own error. With a
  :class:`Calibration` (:func:`fit_calibration`, from the labelled objects' leave-one-out
  predictions) ``pᵢ = Φ(a·zᵢ + b)`` instead of ``Φ(zᵢ)``, times the factor ``ρ ≤ 1`` by which
  the last proposed batches brought fewer finds than that calibration expected of them
  (:class:`YieldCheck`, :func:`yield_factor`, :func:`truncated_yield_factor`: the selection
  bias only goes that way), and the interval also carries the uncertainty of both (draws of
  ``a, b`` and ``ρ``). docs/active-learning.md gives what the benchmark
  measured;
* **expected yield of the next batch**: ``Σ pᵢ`` over the objects the acquisition picks next
  (or, without a batch, the ``k`` highest ``pᵢ``: an upper bound on any batch of ``k``);
* **stopping hint**: that yield below ``stop_below`` (default 0.5: the next batch is expected
  to bring fewer than half an interesting object), once at least one interesting object is found.

Pure NumPy/SciPy; no Qt, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincinv, log_ndtr, ndtr

from ..errors import ConfigError

#: Objects with ``p`` in ``(P_EPS, 1 − P_EPS)`` are convolved exactly up to this many.
EXACT_MAX = 5000
P_EPS = 1e-9
#: Default level of the interval.
LEVEL = 0.9
#: Default stopping level: expected interesting objects in the next batch.
STOP_BELOW = 0.5
#: Default grid of the scores (the 0–5 integers).
STEP = 1.0


#: The calibration's prior: ``p = Φ(a·z + b)`` with ``(a, b) ~ N((A0, 0), PRIOR_SD²)``, centred on
#: the Gaussian posterior's own ``Φ(z)``. A probit, not a logistic link: the logistic's exponential
#: tail put a per cent or so on each of the ~1000 objects at ``z`` ≈ −1.5, which summed to several
#: times the truth on the benchmark (docs/active-learning.md); the wide prior lets the slope follow
#: the labels.
A0, PRIOR_SD = 1.0, 3.0
#: Draws of the calibration's parameters for the interval.
DRAWS = 400
#: Above this many objects the draws sum over BINS bins of z.
BIN_ABOVE, BINS = 20_000, 4096
#: The yield check: the last this many proposed batches, and the weight of the prior ``ρ ~ Gamma(α, α)``.
YIELD_BATCHES, YIELD_PRIOR = 2, 0.5
#: The prior's upper bound on ``ρ``: the selection bias only goes one way (the labelled objects'
#: hit rate at a given ``z`` is at least the unlabelled ones'), so the calibration may overstate
#: the unlabelled objects' rate but is not scaled up (a batch that hits more than expected says
#: the top of the ranking is better than calibrated, not the tail, where most of the sum lies).
YIELD_MAX = 1.0


@dataclass(frozen=True)
class YieldCheck:
    """One proposed batch, once labelled: how many interesting objects the fit that proposed it
    expected among its labelled rows (the calibrated ``Σ pᵢ``) and how many there were.

    Attributes:
        labels: labels given when the batch was proposed.
        expected: the calibrated expected number of interesting objects among its rows.
        hits: interesting objects among them.
    """

    labels: int
    expected: float
    hits: int


def yield_factor(checks, batches: int = YIELD_BATCHES, prior: float = YIELD_PRIOR) -> tuple[float, float]:
    """The posterior ``Gamma(shape, rate)`` of the factor ``ρ`` by which the calibrated
    probabilities over- or under-state the hits of the last ``batches`` proposed batches.

    ``hits ~ Poisson(ρ · expected)`` with the prior ``ρ ~ Gamma(prior, prior)`` (mean 1): the
    posterior is ``Gamma(prior + Σ hits, prior + Σ expected)``, mean ``(Σ hits + prior) /
    (Σ expected + prior)``. Those batches were chosen from the unlabelled objects by the fit's own
    ``μ`` and ``σ``, so their hits measure the calibration where the leave-one-out fit is biased
    (the labelled objects' hit rate at a given ``z`` is higher than the unlabelled ones').

    Args:
        checks: :class:`YieldCheck` in the order the batches were proposed.

    Returns:
        ``(shape, rate)``; ``(prior, prior)`` without checks. The estimate uses its mean below 1
        (:func:`truncated_yield_factor`).

    Raises:
        ConfigError: batches < 1 or prior ≤ 0.
    """
    if batches < 1 or not prior > 0:
        raise ConfigError(f"the yield check needs batches >= 1 and prior > 0, got {batches}, {prior}")
    recent = list(checks)[-batches:]
    return prior + sum(c.hits for c in recent), prior + sum(c.expected for c in recent)


def truncated_yield_factor(shape: float, rate: float, upper: float = YIELD_MAX) -> float:
    """The posterior mean of ``ρ ~ Gamma(shape, rate)`` restricted to ``ρ ≤ upper``:
    ``(shape / rate) · P(shape + 1, rate·upper) / P(shape, rate·upper)`` with ``P`` the
    regularised lower incomplete gamma function; ``upper`` when (numerically) all the mass lies
    above it.

    Raises:
        ConfigError: shape, rate or upper ≤ 0.
    """
    if not (shape > 0 and rate > 0 and upper > 0):
        raise ConfigError(f"the yield factor needs shape, rate and upper > 0, got {shape}, {rate}, {upper}")
    below = float(gammainc(shape, rate * upper))
    if below < 1e-12:
        return float(upper)
    return float(min(shape / rate * gammainc(shape + 1, rate * upper) / below, upper))


def _truncated_gamma_draws(rng: np.random.Generator, shape: float, rate: float, upper: float, n: int) -> np.ndarray:
    """``n`` draws of ``Gamma(shape, rate)`` restricted to ``≤ upper`` (by its inverse cdf)."""
    below = float(gammainc(shape, rate * upper))
    if below < 1e-12:
        return np.full(n, float(upper))
    u = rng.uniform(0.0, below, n)
    return np.minimum(gammaincinv(shape, u) / rate, upper)


@dataclass(frozen=True)
class Calibration:
    """``P(score ≥ t) = Φ(a·z + b)`` with ``z = (μ − (t − step/2)) / σ``, fitted on the
    labelled objects' leave-one-out ``z`` (:func:`fit_calibration`).

    Attributes:
        a, b: the maximum a-posteriori parameters.
        cov: (2, 2) their covariance (the Laplace approximation), for the interval.
        n, hits: labelled objects fitted on, and how many of them were interesting.
    """

    a: float
    b: float
    cov: tuple[tuple[float, float], tuple[float, float]]
    n: int
    hits: int

    def probability(self, z: np.ndarray, a: float | None = None, b: float | None = None) -> np.ndarray:
        a = self.a if a is None else a
        b = self.b if b is None else b
        return ndtr(a * np.asarray(z, dtype=np.float64) + b)


def fit_calibration(loo_mean: np.ndarray, loo_std: np.ndarray, labels: np.ndarray, threshold: float,
                    step: float = STEP) -> Calibration:
    """Fit the map from a Gaussian posterior's ``z`` to the probability of being interesting.

    A Bayesian probit regression of ``labelᵢ ≥ threshold`` on the leave-one-out ``zᵢ`` of the
    labelled objects, ``P = Φ(a·z + b)``, with the prior ``(a, b) ~ N((1, 0), 3²)`` — centred on
    the uncalibrated Gaussian, and what keeps the fit finite when the labels are all alike or
    perfectly separated — by Newton's method (the probit log-likelihood is concave); the
    covariance is the inverse Hessian at the optimum. Leave-one-out predictions are honest (no
    object predicts itself). The slope is kept ``a ≥ 0`` (where the unconstrained optimum falls,
    the best ``b`` with ``a = 0``): a probability that falls as the predicted score rises would
    put most of the expected count on the objects the model is surest are uninteresting (and the
    interval's draws, cut at ``a ≥ 0``, would not contain the estimate). The labelled objects' hit rate at a given ``z`` is higher than the
    unlabelled ones' (the acquisition picks near the finds): docs/active-learning.md measures
    what that leaves.

    Args:
        loo_mean, loo_std: (n,) leave-one-out predictive mean and std of the labelled objects.
        labels: (n,) their scores.
        threshold, step: as :func:`interesting_probability`.

    Raises:
        ConfigError: shapes that differ, no labels, a non-finite or non-positive std.
    """
    m = np.asarray(loo_mean, dtype=np.float64).ravel()
    sd = np.asarray(loo_std, dtype=np.float64).ravel()
    y = (np.asarray(labels, dtype=np.float64).ravel() >= threshold).astype(np.float64)
    if not (len(m) == len(sd) == len(y)) or len(y) == 0:
        raise ConfigError(f"the calibration needs as many leave-one-out means, stds and labels (got "
                          f"{len(m)}, {len(sd)}, {len(y)}), at least one")
    if not (np.isfinite(m).all() and np.isfinite(sd).all() and (sd > 0).all()):
        raise ConfigError("the calibration needs finite leave-one-out means and positive stds")
    z = np.clip((m - (float(threshold) - 0.5 * float(step))) / sd, -50, 50)
    X = np.column_stack([z, np.ones_like(z)])
    sign = 2 * y - 1                       # the likelihood of each label is Φ(sign·u)
    prior_mean = np.array([A0, 0.0])
    prior_prec = np.eye(2) / PRIOR_SD ** 2

    def objective(w: np.ndarray) -> float:
        return float(-log_ndtr(sign * (X @ w)).sum() + 0.5 * (w - prior_mean) @ prior_prec @ (w - prior_mean))

    def grad_hess(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = sign * (X @ w)
        lam = np.exp(_log_phi(v) - log_ndtr(v))         # φ(v)/Φ(v), the inverse Mills ratio
        grad = -X.T @ (sign * lam) + prior_prec @ (w - prior_mean)
        curv = lam * (lam + v)                          # −d² log Φ(v)/dv², in (0, 1]
        return grad, (X * curv[:, None]).T @ X + prior_prec

    def newton(w: np.ndarray, free: np.ndarray) -> np.ndarray:
        f = objective(w)
        for _ in range(100):
            grad, H = grad_hess(w)
            delta = np.zeros(2)
            delta[free] = np.linalg.solve(H[np.ix_(free, free)], grad[free])
            step_len = 1.0
            while step_len > 1e-6 and objective(w - step_len * delta) > f + 1e-12:
                step_len /= 2                              # damped: Newton may overshoot far from the optimum
            w = w - step_len * delta
            f = objective(w)
            if np.abs(step_len * delta).max() < 1e-9:
                break
        return w

    w = newton(prior_mean.copy(), np.array([True, True]))
    if w[0] < 0:
        # the hit rate never falls as the predicted score rises (the interval's draws assume it
        # too): a falling fit - one find at a low z among many labels - is replaced by the best
        # flat one, a = 0 (the concave objective's optimum on that boundary)
        w = newton(np.array([0.0, w[1]]), np.array([False, True]))
    cov = np.linalg.inv(grad_hess(w)[1])
    return Calibration(float(w[0]), float(w[1]), ((float(cov[0, 0]), float(cov[0, 1])),
                                                  (float(cov[1, 0]), float(cov[1, 1]))),
                       len(y), int(y.sum()))


def _log_phi(v: np.ndarray) -> np.ndarray:
    """log of the standard normal density."""
    return -0.5 * v * v - 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class RemainingEstimate:
    """How many interesting objects are left among the unlabelled ones.

    Attributes:
        threshold: a score ``≥ threshold`` is interesting.
        found: labelled objects with a label ``≥ threshold``.
        expected: expected interesting objects among the unlabelled (``Σ pᵢ``).
        low, high: the central ``level`` interval of that count (integers).
        level: the interval's probability (0.9).
        n_unlabelled: unlabelled, not excluded objects.
        next_yield: expected interesting objects in the next batch.
        batch_size: objects in that batch.
        stop_below: the stopping hint's level.
        method: how the interval was computed: ``"exact"`` (Poisson-binomial convolution),
            ``"normal"`` (its approximation), or ``"calibrated"`` (draws of the calibration's
            parameters, each with its Poisson-binomial count).
        std_scale: the calibration factor applied to the std.
        calibration: the calibration of the probabilities, or None (the Gaussian's own).
        yield_factor: the factor ``ρ`` the calibrated probabilities were multiplied by (the
            posterior mean of :func:`yield_factor`; 1 without yield checks).
    """

    threshold: float
    found: int
    expected: float
    low: int
    high: int
    level: float
    n_unlabelled: int
    next_yield: float
    batch_size: int
    stop_below: float
    method: str
    std_scale: float = 1.0
    calibration: Calibration | None = None
    yield_factor: float = 1.0

    @property
    def stop(self) -> bool:
        """Whether the next batch is expected to bring fewer than ``stop_below`` interesting
        objects — once something has been found (before the first find the model knows too
        little to advise stopping)."""
        return self.found > 0 and self.next_yield < self.stop_below

    @property
    def hint(self) -> str:
        """One line for a status bar or a log."""
        text = (f"found {self.found}, about {self.expected:.0f} left "
                f"({self.low}–{self.high}, {100 * self.level:.0f}%); next batch: {self.next_yield:.1f} expected")
        if self.stop:
            text += f" — below {self.stop_below:g}: labelling more is unlikely to pay"
        return text

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "found": self.found, "expected": self.expected, "low": self.low,
                "high": self.high, "level": self.level, "n_unlabelled": self.n_unlabelled,
                "next_yield": self.next_yield, "batch_size": self.batch_size, "stop_below": self.stop_below,
                "stop": self.stop, "method": self.method, "std_scale": self.std_scale,
                "calibration": None if self.calibration is None else
                {"a": self.calibration.a, "b": self.calibration.b, "n": self.calibration.n,
                 "hits": self.calibration.hits}, "yield_factor": self.yield_factor}


def interesting_probability(mean: np.ndarray, std: np.ndarray, threshold: float, step: float = STEP,
                            std_scale: float = 1.0) -> np.ndarray:
    """``P(score ≥ threshold)`` of each object from its Gaussian posterior, (N,) float64.

    Args:
        mean, std: (N,) predictive mean and std (label units). A std of 0 gives 0 or 1.
        threshold: interesting when the score is ``≥`` this.
        step: the scores' grid (1 for integer scores; 0 for continuous ones).
        std_scale: multiplies the std (a calibration, > 0).

    Raises:
        ConfigError: shapes that differ, a NaN or negative std, a std_scale ≤ 0.
    """
    mean = np.asarray(mean, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mean.shape != std.shape:
        raise ConfigError(f"mean {mean.shape} and std {std.shape} differ in shape")
    if not (np.isfinite(std).all() and (std >= 0).all()):
        raise ConfigError("the remaining-count estimate needs a finite std >= 0 for every object",
                          hint="complete the std first (LoopResult.complete_std)")
    if not (math.isfinite(std_scale) and std_scale > 0):
        raise ConfigError(f"std_scale must be > 0, got {std_scale}")
    return ndtr(_z(mean, std, threshold, step, std_scale))


def poisson_binomial_pmf(p: np.ndarray) -> np.ndarray:
    """The distribution of ``Σ Bernoulli(pᵢ)`` (independent), (len(p) + 1,) float64, by
    convolution (O(n²): for up to a few thousand probabilities)."""
    p = np.asarray(p, dtype=np.float64).ravel()
    pmf = np.zeros(len(p) + 1)
    pmf[0] = 1.0
    for i, q in enumerate(p):       # pmf of the first i+1 Bernoullis
        pmf[1:i + 2] = pmf[1:i + 2] * (1 - q) + pmf[:i + 1] * q
        pmf[0] *= 1 - q
    return pmf


def poisson_binomial_interval(p: np.ndarray, level: float = LEVEL) -> tuple[int, int, str]:
    """Central ``level`` interval of ``Σ Bernoulli(pᵢ)`` (independent).

    Exact (a convolution) when at most :data:`EXACT_MAX` of the ``pᵢ`` lie in ``(P_EPS, 1 − P_EPS)``
    — those outside count as 0 or 1 — else the normal approximation with a continuity correction.

    Returns:
        ``(low, high, method)``: the largest ``low`` with ``P(X < low) ≤ (1 − level)/2``, the
        smallest ``high`` with ``P(X > high) ≤ (1 − level)/2``; ``method`` is ``"exact"`` or ``"normal"``.

    Raises:
        ConfigError: level outside (0, 1), p outside [0, 1].
    """
    if not 0 < level < 1:
        raise ConfigError(f"the interval's level must be in (0, 1), got {level}")
    p = np.asarray(p, dtype=np.float64).ravel()
    if len(p) and not (np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
        raise ConfigError("probabilities must lie in [0, 1]")
    tail = (1.0 - level) / 2
    sure = int(np.count_nonzero(p >= 1 - P_EPS))
    mid = p[(p > P_EPS) & (p < 1 - P_EPS)]
    if len(mid) == 0:
        return sure, sure, "exact"
    if len(mid) <= EXACT_MAX:
        cdf = np.cumsum(poisson_binomial_pmf(mid))
        low = int(np.searchsorted(cdf, tail, side="right"))                # first k with P(X <= k) > tail
        high = int(np.searchsorted(cdf, 1 - tail - 1e-12, side="left"))    # first k with P(X <= k) >= 1 - tail
        return sure + low, sure + min(high, len(mid)), "exact"
    from scipy.stats import norm

    mu, sd = float(mid.sum()), math.sqrt(float((mid * (1 - mid)).sum()))
    z = float(norm.isf(tail))
    low = max(0, math.ceil(mu - z * sd - 0.5))
    high = min(len(mid), math.floor(mu + z * sd + 0.5))
    return sure + low, sure + high, "normal"


def estimate_remaining(mean: np.ndarray, std: np.ndarray, labelled: np.ndarray, labels: np.ndarray,
                       threshold: float, excluded: np.ndarray | None = None, next_batch: np.ndarray | None = None,
                       batch_size: int = 10, level: float = LEVEL, stop_below: float = STOP_BELOW,
                       step: float = STEP, std_scale: float = 1.0, calibration: Calibration | None = None,
                       seed: int = 0, yield_checks=(), yield_max: float | None = YIELD_MAX) -> RemainingEstimate:
    """Estimate how many unlabelled, not excluded objects have a score ``≥ threshold``.

    Args:
        mean, std: (N,) predictive mean and std of every object (label units); the std must be
            finite on the unlabelled, not excluded objects (elsewhere it is not read).
        labelled, labels: (n,) rows and scores of the labelled objects.
        threshold: interesting when the score is ``≥`` this.
        excluded: rows left out (artefacts): neither counted nor estimated.
        next_batch: rows the acquisition picks next (their ``Σ pᵢ`` is the next batch's yield);
            None: the ``batch_size`` highest ``pᵢ``.
        batch_size: k of the yield without ``next_batch``.
        level: the interval's probability.
        stop_below: the stopping hint fires when the next batch's yield is below this.
        step, std_scale: see :func:`interesting_probability`.
        calibration: map ``z`` to probabilities with it (:func:`fit_calibration`) instead of
            ``Φ(z)``; the interval then also carries the calibration's uncertainty: for each of
            :data:`DRAWS` draws of its parameters, a count from the Poisson-binomial of those
            probabilities (normal approximation), and the interval is the draws' quantiles.
        seed: of those draws.
        yield_checks: :class:`YieldCheck` of the batches labelled so far (with a calibration
            only): the calibrated probabilities are multiplied by ``ρ``, the posterior mean of
            :func:`yield_factor` restricted to ``ρ ≤ yield_max`` (:func:`truncated_yield_factor`;
            each probability at most 1), and the interval's draws also draw ``ρ`` from it.
        yield_max: the upper bound of ``ρ`` (:data:`YIELD_MAX`); None: the plain Gamma posterior
            (the estimator before the bound, for comparison).

    Returns:
        :class:`RemainingEstimate`.

    Raises:
        ConfigError: bad shapes, a missing std, a bad level.
    """
    mean = np.asarray(mean)
    n = len(mean)
    labelled = np.asarray(labelled, dtype=np.int64).ravel()
    labels = np.asarray(labels, dtype=np.float64).ravel()
    if len(labelled) != len(labels):
        raise ConfigError(f"{len(labelled)} labelled rows but {len(labels)} labels")
    free = np.ones(n, bool)
    free[labelled] = False
    if excluded is not None and len(excluded):
        free[np.asarray(excluded, dtype=np.int64)] = False
    rows = np.flatnonzero(free)
    p_free = interesting_probability(mean[rows], np.asarray(std)[rows], threshold, step, std_scale)
    rho = 1.0
    if calibration is None:
        low, high, method = poisson_binomial_interval(p_free, level)
    else:
        z = _z(mean[rows], np.asarray(std)[rows], threshold, step, std_scale)
        rho, factor = 1.0, None
        if len(yield_checks):
            shape, rate = yield_factor(yield_checks)
            rho = shape / rate if yield_max is None else truncated_yield_factor(shape, rate, yield_max)
            factor = (shape, rate, yield_max)
        p_free = np.minimum(rho * calibration.probability(z), 1.0)
        low, high = _calibrated_interval(z, calibration, level, seed, factor)
        method = "calibrated"
    p = np.zeros(n)
    p[rows] = p_free
    if next_batch is not None:
        nb = np.asarray(next_batch, dtype=np.int64)
        nb = nb[free[nb]]
        next_yield, k = float(p[nb].sum()), len(nb)
    else:
        k = min(int(batch_size), len(p_free))
        next_yield = float(np.sort(p_free)[len(p_free) - k:].sum()) if k else 0.0
    return RemainingEstimate(threshold=float(threshold), found=int(np.count_nonzero(labels >= threshold)),
                             expected=float(p_free.sum()), low=low, high=high, level=float(level),
                             n_unlabelled=len(rows), next_yield=next_yield, batch_size=k,
                             stop_below=float(stop_below), method=method, std_scale=float(std_scale),
                             calibration=calibration, yield_factor=float(rho))


def _z(mean: np.ndarray, std: np.ndarray, threshold: float, step: float, std_scale: float) -> np.ndarray:
    """``(μ − cut) / (s·σ)`` clipped to ±50 (a zero std gives ±50)."""
    cut = float(threshold) - 0.5 * float(step)
    s = np.asarray(std, dtype=np.float64) * std_scale
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (np.asarray(mean, dtype=np.float64) - cut) / s
    z = np.where(s > 0, z, np.where(mean >= cut, 50.0, -50.0))
    return np.clip(z, -50, 50)


def _calibrated_interval(z: np.ndarray, cal: Calibration, level: float, seed: int,
                         factor: tuple[float, float, float | None] | None = None) -> tuple[int, int]:
    """Quantiles of the count over draws of the calibration's parameters (each draw: a normal
    approximation of its Poisson-binomial, rounded, at least 0), and of the yield factor ``ρ``
    from its Gamma ``(shape, rate)`` restricted to ``≤ upper`` (None: unrestricted) when
    ``factor = (shape, rate, upper)`` is given."""
    if not 0 < level < 1:
        raise ConfigError(f"the interval's level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal([cal.a, cal.b], np.asarray(cal.cov), DRAWS)
    draws[:, 0] = np.maximum(draws[:, 0], 0.0)    # the hit rate never falls as the predicted score rises
    # past BIN_ABOVE objects, the sums run over BINS bins of z (each at its members' mean z,
    # weighted by their number): DRAWS × BINS work instead of DRAWS × N (seconds at 10^6)
    zs, weight = np.asarray(z, dtype=np.float64), None
    if len(zs) > BIN_ABOVE:
        edges = np.linspace(zs.min(), zs.max() + 1e-9, BINS + 1)
        which = np.clip(np.searchsorted(edges, zs, side="right") - 1, 0, BINS - 1)
        weight = np.bincount(which, minlength=BINS).astype(np.float64)
        sums = np.bincount(which, weights=zs, minlength=BINS)
        keep = weight > 0
        zs, weight = sums[keep] / weight[keep], weight[keep]
    if factor is None:
        rhos = np.ones(DRAWS)
    elif factor[2] is None:
        rhos = rng.gamma(factor[0], 1.0 / factor[1], DRAWS)
    else:
        rhos = _truncated_gamma_draws(rng, factor[0], factor[1], factor[2], DRAWS)
    counts = np.empty(DRAWS)
    for i, (a, b) in enumerate(draws):
        p = np.minimum(rhos[i] * cal.probability(zs, a, b), 1.0)
        w = 1.0 if weight is None else weight
        counts[i] = rng.normal(float((w * p).sum()), math.sqrt(float((w * p * (1 - p)).sum())))
    counts = np.clip(np.round(counts), 0, len(z))
    tail = (1 - level) / 2
    return int(np.quantile(counts, tail)), int(np.quantile(counts, 1 - tail))
