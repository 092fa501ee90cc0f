"""Candidate pre-filter for the GP's batch at survey scale: a low-rank pass over all N objects
that bounds every object's mean and std, and the exact GP only on the objects that could win.

Why: the GP's exact mean costs one ``n``-wide kernel row per object (``n`` labels): at 10^7
objects and 500 labels that is 5·10^9 kernel values, ~25 s on two cores, beyond the 5 s a refit
may take. Expected improvement (and UCB, and σ alone) never decreases when the mean or the std
grows, so an *upper bound* of both is enough to rule an object out of the batch.

The bound (normalised label units, the GP's own hyper-parameters; ``k`` the latent
kernel ``amplitude·Matern``, ``σ²`` the white noise, ``S`` ⊂ labelled points, ``m = |S|``)::

    A      = K_SS + σ²I                                     (m × m)
    r(x,y) = k(x,y) − k_xS A⁻¹ k_Sy                          (a covariance: positive semi-definite)
    mean(x) − prior(x) = Σ_j α_j k(x, z_j)
                       = k_xS β  +  Σ_j α_j r(x, z_j),       β = A⁻¹ K_SZ α
    |Σ_j α_j r(x, z_j)| ≤ √r(x,x) · √(αᵀ R_ZZ α)             (Cauchy–Schwarz in r's RKHS)
    var(x) = amp + σ² − k_xZ (K_ZZ + σ²I)⁻¹ k_Zx  ≤  r(x,x) + σ²
                                                              (conditioning on fewer points)

so one ``m``-wide kernel row per object and one ``m × m`` product give the low-rank (Nyström)
mean ``k_xS β``, a rigorous bound on its distance to the exact mean, and a rigorous upper bound
on the std. ``S`` is chosen by a pivoted Cholesky factorisation of the labelled points' kernel
(each next point the one the others explain least), ``m = rank`` (24 by default).

:func:`select_batch_prefiltered` then

1. evaluates the acquisition's upper bound ``acq(mean_ub, std_ub)`` of every candidate;
2. computes the exact mean and std of the ``seed`` candidates with the highest bound and takes
   the k-th best exact acquisition among them as the threshold ``t``;
3. keeps the candidates whose bound is at least ``t`` (no other can beat ``k`` objects whose
   exact acquisition is ``≥ t``), computes their exact mean, and runs the bound-pruned
   :func:`~galexplorer.active.acquisition.select_batch` on them alone.

The batch is the one the exact path (exact mean of every object, then ``select_batch``) chooses;
the float32 rounding of the low-rank pass (and the GP mean's own rounding,
``GaussianProcessRegressor.float32_error``) is added to the bounds so that they stay bounds. The
objects that were not kept have the low-rank mean (with its error bound,
:attr:`LowRankBound.mean_error`), not the exact one: :meth:`LowRankBound.exact_mean` computes it
on request, in a streamed pass, for ranks that are exported.

:data:`PREFILTER_MIN_ROWS` is where :class:`~galexplorer.active.scorers.GPScorer` switches to it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from .acquisition import Acquisition, BatchSelection, select_batch
from .gp import ChunkBuffers, GaussianProcessRegressor, run_chunks
from .kernels import matern_block, matern_from_squared, scaled_augmented

log = logging.getLogger(__name__)

#: Objects from which the GP scorer chooses its batch through the pre-filter (below: the exact
#: mean of every object). Measured in benchmarks/bench_refit_scale.py; see docs/active-learning.md.
PREFILTER_MIN_ROWS = 500_000
#: Labelled points of the low-rank pass.
DEFAULT_RANK = 24
_EPS32 = float(np.finfo(np.float32).eps)


def pivoted_cholesky_points(K: np.ndarray, rank: int) -> np.ndarray:
    """Rows of a positive semi-definite ``K`` chosen greedily by largest residual variance.

    Args:
        K: (n, n) float64 kernel matrix.
        rank: points wanted (at most n).

    Returns:
        (m,) int64 indices, m = min(rank, n), in the order chosen.
    """
    n = len(K)
    m = min(int(rank), n)
    diag = np.diag(K).astype(np.float64).copy()
    L = np.zeros((m, n))
    chosen: list[int] = []
    for i in range(m):
        j = int(np.argmax(diag))
        if diag[j] <= 0 or j in chosen:
            break
        chosen.append(j)
        row = (K[j] - L[:i, j] @ L[:i]) / math.sqrt(diag[j])
        L[i] = row
        diag -= row * row
        diag[j] = -np.inf
    return np.asarray(chosen, dtype=np.int64)


@dataclass
class LowRankBound:
    """The low-rank pass over every object (see the module docstring), label units.

    Attributes:
        mean: (N,) float32 low-rank mean (prior mean included).
        mean_error: (N,) float32 bound on ``|exact mean − mean|`` (rounding included).
        std_bound: (N,) float32 upper bound on the exact std.
        rank: points of ``S``.
        seconds: wall time of the pass.
    """

    mean: np.ndarray
    mean_error: np.ndarray
    std_bound: np.ndarray
    rank: int
    seconds: float


def low_rank_bound(gp: GaussianProcessRegressor, X: np.ndarray, mean_covariate: np.ndarray | None = None,
                   rank: int = DEFAULT_RANK, chunk_rows: int = 16384, desc: str | None = None,
                   mean_nugget: float = 1e-2) -> LowRankBound:
    """Low-rank mean, its error bound and an std bound for every row of ``X``, in one float32 pass.

    Args:
        gp: a fitted regressor.
        X: (N, k) features (float32: no copy of the whole array is made).
        mean_covariate: (N,) the prior-mean covariate (as for ``gp.predict_mean``).
        rank: labelled points in ``S``.
        chunk_rows: rows per block (memory per thread: a few ``chunk_rows × rank`` float32).
        desc: progress-bar name (None: no bar).
        mean_nugget: the low-rank mean conditions on ``S`` with this fraction of the white
            noise (the std bound needs all of it; less brings the mean closer to the exact one).

    Returns:
        :class:`LowRankBound`.
    """
    t0 = time.perf_counter()
    gp._check_fitted()
    plan = _LowRankPlan.of(gp, rank, mean_nugget)
    N = len(X)
    out = LowRankBound(np.empty(N, np.float32), np.empty(N, np.float32), np.empty(N, np.float32), plan.m, 0.0)
    hcov = gp._covariate(mean_covariate, N)
    buf = ChunkBuffers()
    run_chunks(N, chunk_rows, lambda a, b: plan.block(X, hcov, a, b, buf, out), gp.n_threads, desc)
    out.seconds = time.perf_counter() - t0
    log.debug("low-rank bound: %d points, residual norm %.3g, %d rows in %.2f s", plan.m, plan.C, N, out.seconds)
    return out


@dataclass
class _LowRankPlan:
    """What :func:`low_rank_bound` computes once from the labelled points, before its pass over
    the rows: the points ``S``, the eigenbasis of ``K_SS``, the coefficients of the low-rank mean
    and its error, and the float32 operands of each block (normalised units)."""

    gp: GaussianProcessRegressor
    m: int                    # points in S
    c: float                  # amplitude·e: matern_block returns the Matern kernel / e
    C: float                  # residual norm of the mean's low-rank approximation
    w_norm: float
    inv_w32: np.ndarray       # (m, 2) float32: 1/(λ + ν) for the mean's ν and the std's
    s_sc: float               # √3/ℓ
    zs2: float                # largest |z|²s² over S
    right: np.ndarray         # (k, m) float32: −2s²·Z[S]ᵀ
    zs2_row: np.ndarray       # (1, m) float32: |z|²s² per point of S
    U_c: np.ndarray           # (m, m) float32: U·c
    beta_c: np.ndarray        # (m,) float32: β·c
    abs_beta: float
    const_m: float            # the mean error's constant part (rounding of the GP and of this pass)

    @classmethod
    def of(cls, gp: GaussianProcessRegressor, rank: int, mean_nugget: float) -> _LowRankPlan:
        h = gp.hyper
        amp, ell, s2 = h.amplitude, h.length_scale, h.noise + gp.jitter
        Z = gp.X_train
        c = amp * math.e                       # matern_block returns the Matern kernel / e
        K_lat = matern_block(scaled_augmented(Z, ell, "left", np.float64),
                             np.ascontiguousarray(scaled_augmented(Z, ell, "right", np.float64).T)) * c
        np.fill_diagonal(K_lat, amp)
        S = pivoted_cholesky_points(K_lat, rank)
        m = len(S)
        alpha = gp.alpha_
        K_SZ = K_lat[S]
        # one eigenbasis of K_SS serves both conditionings: with K_SS = U diag(λ) Uᵀ and p = Uᵀk_xS,
        # k_xS (K_SS + νI)⁻¹ k_Sx = Σ p_i² / (λ_i + ν), so one m-wide product per object gives the
        # std's q (ν = the GP's noise) and the mean's (ν = a small nugget: the low-rank mean is
        # closer to the exact one when S is conditioned nearly noise-free)
        lam, U = np.linalg.eigh(K_lat[np.ix_(S, S)])
        lam = np.maximum(lam, 0.0)
        nug = max(s2 * mean_nugget, gp.jitter)
        Ka = K_SZ @ alpha
        beta = U @ ((U.T @ Ka) / (lam + nug))                      # (K_SS + nug·I)⁻¹ K_SZ α
        # αᵀ R_ZZ α = αᵀ K_ZZ α − (K_SZ α)ᵀ (K_SS + nug·I)⁻¹ (K_SZ α)
        resid = float(alpha @ (K_lat @ alpha)) - float(((U.T @ Ka) ** 2 / (lam + nug)).sum())
        inv_w = np.column_stack([1.0 / (lam + nug), 1.0 / (lam + s2)])   # (m, 2): the mean's, the std's
        # squared scaled distances as |x|²s² + |z|²s² − 2s²x·z: one (rows, k) × (k, m) product
        s_sc = math.sqrt(3.0) / ell
        zs2_each = np.sum((Z[S] * s_sc) ** 2, axis=1)
        # the GP's own mean carries rounding too (float32 or mixed): the exact path's values, which
        # these bounds must hold for, are within that of the true mean
        gp_err = {"float32": gp.float32_error, "mixed": gp.mixed_error}.get(gp.mode, 0.0) / gp.y_std
        return cls(gp=gp, m=m, c=c, C=math.sqrt(max(resid, 0.0)), w_norm=math.sqrt(float(inv_w.max())),
                   inv_w32=np.ascontiguousarray(inv_w.astype(np.float32)), s_sc=s_sc,
                   zs2=float(zs2_each.max()) if m else 0.0,
                   right=np.ascontiguousarray((-2.0 * s_sc * s_sc * Z[S]).T.astype(np.float32)),
                   zs2_row=zs2_each.astype(np.float32)[None, :],
                   U_c=np.ascontiguousarray((U * c).astype(np.float32)),
                   beta_c=(beta * c).astype(np.float32), abs_beta=float(np.abs(beta).sum()),
                   const_m=16 * _EPS32 + gp_err + 16 * _EPS32 * abs(gp.y_mean) / gp.y_std)

    def block(self, X: np.ndarray, hcov: np.ndarray | None, a: int, b: int, buf: ChunkBuffers,
              out: LowRankBound) -> None:
        """Rows ``a:b`` of ``out`` (a thread's block)."""
        gp, h, m, f32 = self.gp, self.gp.hyper, self.m, np.float32
        amp, prior = h.amplitude, h.amplitude + h.noise
        Xc = np.asarray(X[a:b], dtype=np.float32)
        x2 = np.einsum("ij,ij->i", Xc, Xc)
        x2 *= f32(self.s_sc * self.s_sc)
        xs2 = float(x2.max()) if b > a else 0.0
        B = np.matmul(Xc, self.right, out=buf.get("k", b - a, m, np.float32))
        B += x2[:, None]
        B += self.zs2_row
        Bi = B.view(np.int32)
        np.maximum(Bi, 0, out=Bi)                              # rounding negatives -> +0.0
        B = matern_from_squared(B, buf.get("e", b - a, m, np.float32))
        mu = B @ self.beta_c                                   # low-rank k·β, normalised
        P = np.matmul(B, self.U_c, out=buf.get("p", b - a, m, np.float32))    # p = Uᵀk
        # float32 rounding of a block entry (units of the kernel / e): a few ulps for sqrt, exp
        # and the divide, and the squared distance's error (k + 2 terms of size up to
        # |x|² + |z|², scaled) times the slope of the kernel in d², at most 1/(2e)
        dB = 4 * _EPS32 + (X.shape[1] + 2) * _EPS32 * 2 * (xs2 + self.zs2) / (2 * math.e) + 1e-30
        dk = dB * self.c                                       # absolute error of a kernel value
        dv = dk * math.sqrt(m) * self.w_norm
        slack_q = 2 * math.sqrt(amp) * dv + dv * dv + 2 * (m + 2) * _EPS32 * amp
        np.square(P, out=P)
        q = P @ self.inv_w32                                   # (rows, 2)
        # r(x,x) for the mean's conditioning (column 0) and for the std's (column 1)
        r = np.clip(np.subtract(f32(amp + slack_q), q, out=q), 0, f32(amp), out=q)
        coef_a, coef_b = gp.mean_coef
        if hcov is not None:
            mu += f32(coef_a) + f32(coef_b) * hcov[a:b]
        elif coef_a:
            mu += f32(coef_a)
        # the bound's own float32 arithmetic: a few ulps of |mean| (normalised and in label units)
        e = np.abs(mu)
        e *= f32(16 * _EPS32)
        e += f32(self.const_m + (dk + 2 * (m + 2) * _EPS32 * amp) * self.abs_beta)
        e += np.sqrt(r[:, 0]) * f32(self.C)
        e *= f32(gp.y_std * (1 + 8 * _EPS32))
        out.mean_error[a:b] = e
        mu *= f32(gp.y_std)
        mu += f32(gp.y_mean)
        out.mean[a:b] = mu
        s_b = np.minimum(r[:, 1] + f32(h.noise), f32(prior))
        s_b += f32(1e-6 * prior)
        np.sqrt(s_b, out=s_b)
        s_b *= f32(gp.y_std)
        out.std_bound[a:b] = s_b


def _ei_g(z: float) -> float:
    """``EI / σ`` as a function of ``z = (μ − best − ξ)/σ``: ``z·Φ(z) + φ(z)``, increasing."""
    return z * 0.5 * math.erfc(-z / math.sqrt(2)) + math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _cheap_cut(acquisition: Acquisition, t: float, s_max: float) -> float:
    """The smallest value of the seed ordering's proxy (z for EI, the acquisition itself for UCB
    and σ) at which the acquisition could reach ``t``; rows below it are ruled out unevaluated."""
    if acquisition.name != "ei":
        return t
    if t <= 0 or s_max <= 0:
        return -np.inf
    lo, hi = -40.0, 40.0                      # g(-40) ~ 0, g(40) ~ 40: bisection on the increasing g
    if _ei_g(lo) * s_max >= t:
        return -np.inf
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _ei_g(mid) * s_max >= t:
            hi = mid
        else:
            lo = mid
    return lo - 1e-3                          # slack for the float32 proxy's rounding


@dataclass
class PrefilterSelection(BatchSelection):
    """:class:`~galexplorer.active.acquisition.BatchSelection` plus what the pre-filter did.

    Attributes:
        kept: (c,) int64 candidates whose acquisition bound reached the threshold (their exact
            mean was computed; the batch is among them).
        kept_mean: (c,) float32 their exact mean.
        threshold: the k-th best exact acquisition among the seed candidates.
    """

    kept: np.ndarray = None
    kept_mean: np.ndarray = None
    threshold: float = float("nan")


def _cheap_proxy(acquisition: Acquisition, mu_ub: np.ndarray, s_ub: np.ndarray) -> np.ndarray:
    """(N,) a cheap ordering of the rows by how good they may be, to pick the seeds (any seeds
    give a valid threshold; good ones a tight one): EI and UCB grow with z = (μ − best − ξ)/σ and
    μ + κσ, uncertainty with σ."""
    if acquisition.name == "ei":
        return (mu_ub - np.float32(acquisition.best + acquisition.xi)) / s_ub
    if acquisition.name == "ucb":
        return mu_ub + np.float32(acquisition.kappa) * s_ub
    return s_ub.copy()


def _kept_rows(kept: np.ndarray, seeds: tuple, new: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kept rows in ascending order with their exact mean and std bound: ``(rows, mean,
    std bound)`` from the seeds' ``(rows, mean, exact std)`` and the new rows' ``(rows, mean,
    std bound)``."""
    order = np.argsort(np.concatenate([seeds[0], new[0]]), kind="stable")
    rows = np.concatenate([seeds[0], new[0]])[order]
    mu = np.concatenate([seeds[1], new[1]])[order]
    sb = np.concatenate([seeds[2], new[2]])[order]
    inside = np.isin(rows, kept, assume_unique=True)
    return rows[inside], mu[inside], sb[inside]


def _exact_std_of(gp: GaussianProcessRegressor, X: np.ndarray, rows: np.ndarray, known: dict[int, float]):
    """``exact_std(local)`` for :func:`select_batch`: the exact std of ``rows[local]``, from
    ``known`` (row -> std, the seeds') where it is known, computed for the others."""
    def exact_std(local: np.ndarray) -> np.ndarray:
        want = rows[local]
        out = np.empty(len(want), np.float32)
        have = np.array([int(r) in known for r in want], bool)
        if have.any():
            out[have] = [known[int(r)] for r in want[have]]
        if (~have).any():
            out[~have] = gp.predict_std(X, want[~have])
        return out

    return exact_std


def select_batch_prefiltered(gp: GaussianProcessRegressor, X: np.ndarray, bound: LowRankBound,
                             acquisition: Acquisition, k: int, candidates: np.ndarray,
                             mean_covariate: np.ndarray | None = None, seed: int = 512,
                             bound_rank: int = 8, max_kept: float = 0.1) -> PrefilterSelection | None:
    """The exact path's batch, with the exact GP only on candidates that could be in it.

    Args:
        gp: the fitted regressor.
        X: (N, k) features.
        bound: :func:`low_rank_bound` of ``gp`` on ``X``.
        acquisition: non-decreasing in the mean and in the std (ei, ucb, uncertainty are).
        k: batch size.
        candidates: (c,) int64 rows that may be chosen.
        mean_covariate: (N,) the prior-mean covariate.
        seed: candidates evaluated exactly to set the threshold.
        bound_rank: directions of the std bound in the exact mean pass.
        max_kept: the largest fraction of the candidates worth keeping: when the bounds keep more
            (the labels make the mean too sharp for the low-rank pass), None is returned and the
            caller takes the exact path, which is then cheaper.

    Returns:
        :class:`PrefilterSelection` (rows are rows of ``X``), or None (see ``max_kept``).
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    k = min(int(k), len(candidates))
    e = np.empty(0, np.int64)
    f = np.empty(0, np.float32)
    if k == 0:
        return PrefilterSelection(e, e, f, f, e, f)
    N = len(bound.mean)
    eligible = np.zeros(N, bool)
    eligible[candidates] = True
    mu_ub = bound.mean + bound.mean_error
    s_ub = bound.std_bound
    proxy = _cheap_proxy(acquisition, mu_ub, s_ub)
    proxy[~eligible] = -np.inf
    n_seed = min(len(candidates), max(int(seed), 4 * k))
    seed_rows = np.sort(np.argpartition(-proxy, n_seed - 1)[:n_seed]) if n_seed < N else candidates
    seed_rows = seed_rows[eligible[seed_rows]]
    hc = None if mean_covariate is None else np.asarray(mean_covariate)

    def exact_mean(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return gp.predict_mean(X[rows], std_bound=True, bound_rank=bound_rank,
                               mean_covariate=None if hc is None or gp.mean_coef[1] == 0.0 else hc[rows])

    m_seed, _ = exact_mean(seed_rows)
    s_seed = gp.predict_std(X, seed_rows)
    a_seed = acquisition(m_seed, s_seed)
    t = float(np.partition(a_seed, len(a_seed) - k)[len(a_seed) - k])
    # EI's float32 evaluation is monotone only up to rounding: a relative margin keeps the
    # comparison on the safe side
    margin = 1e-5 * abs(t) + 1e-12
    # only rows that a cheap test cannot rule out get their acquisition bound evaluated: EI is
    # σ·g(z) with g increasing, so with σ ≤ max σ_ub a row with g(z) < t / max σ_ub cannot reach t
    maybe = proxy >= _cheap_cut(acquisition, t - margin, float(s_ub.max()))
    rows_maybe = np.flatnonzero(maybe)
    ub = acquisition(mu_ub[rows_maybe], s_ub[rows_maybe])
    kept = rows_maybe[np.nan_to_num(ub, nan=np.inf) >= t - margin]
    if len(kept) > max_kept * len(candidates):
        log.debug("pre-filter: %d of %d candidates kept, too many: the exact path", len(kept), len(candidates))
        return None
    new = np.setdiff1d(kept, seed_rows, assume_unique=True)
    m_new, b_new = exact_mean(new) if len(new) else (f, f)
    # the exact mean pass's own std bound for the new rows; the seeds' std is known exactly
    rows, mu, sb = _kept_rows(kept, (seed_rows, m_seed, s_seed), (new, m_new, b_new))
    exact_std = _exact_std_of(gp, X, rows, dict(zip(seed_rows.tolist(), s_seed.tolist())))
    sel = select_batch(mu, sb, exact_std, acquisition, k, np.arange(len(rows)))
    log.debug("pre-filter: threshold %.4g from %d seeds, %d of %d candidates evaluated, %d kept", t,
              len(seed_rows), len(rows_maybe), len(candidates), len(rows))
    return PrefilterSelection(rows[sel.batch], rows[sel.evaluated], sel.std, sel.acquisition,
                              rows, mu.astype(np.float32), t)
