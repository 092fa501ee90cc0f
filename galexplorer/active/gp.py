"""Gaussian-process regression of the user's 0–5 scores (Astronomaly's protege; Walmsley et al. 2022).

The model is scikit-learn's ``GaussianProcessRegressor(kernel=ConstantKernel() * Matern(nu=1.5)
+ WhiteKernel(), normalize_y=True)`` re-implemented for 10^6 objects:

* the hyper-parameters (amplitude, length scale, noise level) maximise the log marginal
  likelihood of the labelled points with L-BFGS-B and analytic gradients, in float64 with one
  BLAS thread, inside scikit-learn's default bounds (1e-5, 1e5) for each, from the same start
  as scikit-learn (all 1), from a length scale at the median distance between labelled
  points, from a warm start, and from ``n_restarts`` seeded random starts;
* the predictive mean of every object is one pass of the cross-kernel
  (:mod:`galexplorer.active.kernels`) over chunks of rows, in as many threads as there are
  cores, with bounded memory (a few ``chunk_rows × n_labels`` buffers per thread). Float32
  where safe: the fit estimates the rounding error of a float32 pass (long length scales make
  the weights ``α`` large and cancelling) and uses float32, a float32 kernel with a float64
  sum (``mixed``), or float64, the cheapest within ``tolerance`` (1e-4 label units);
* the predictive standard deviation costs an ``n × n`` product per object (2.5·10^11 flops at
  10^6 × 500), so it is computed only for the rows asked for (:meth:`predict_std`), in float64.
  The mean pass can also return an upper bound on it for every object (a projection of the
  variance reduction on a few leading directions, :meth:`_bound_basis`), which the
  acquisition step uses to find the few objects where the exact value matters.

As in scikit-learn, the predictive variance includes the white-noise level (``kernel.diag``),
and ``normalize_y`` scales the labels to zero mean and unit variance before fitting.

**Prior mean.** Optionally the prior mean is not a constant but ``a + b·h(x)`` for a given
covariate ``h`` (the loop's ``gp-anomaly`` scorer uses the 0–5 anomaly score), in normalised
label units. ``a`` and ``b`` are fitted with the hyper-parameters by marginal likelihood: for
given hyper-parameters the best ``(a, b)`` is the generalised-least-squares solution
``(HᵀK⁻¹H)⁻¹HᵀK⁻¹y`` (``H = [1, h]``), optionally with ``b ≥ 0`` (then ``b = 0`` and
``a = 1ᵀK⁻¹y / 1ᵀK⁻¹1`` when the unconstrained ``b`` is negative), and the optimiser maximises
the likelihood of the residuals ``y − a − b·h`` (the profile likelihood; its gradient in the
hyper-parameters is that of the residuals' likelihood at the optimal ``(a, b)``). The GP is then
an ordinary zero-mean GP of the residuals with the mean function added back — ``(a, b)`` are
treated as known when predicting (no extra variance for their uncertainty). ``b = 0`` with
``a = 0`` is exactly the plain GP.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.linalg import lapack

from .. import progress
from ..errors import ConfigError
from .gp_bound import bound_columns
from .gp_likelihood import (
    BOUNDS,
    GPHyperparameters,
    gls_coef,
    hyperparameter_starts,
    lml_and_grad,
    maximise_likelihood,
)
from .gp_precision import PRECISIONS, choose_precision
from .kernels import SQRT3, matern_block, pairwise_distances64, scaled_augmented

__all__ = ["BOUNDS", "ChunkBuffers", "GPHyperparameters", "GaussianProcessRegressor", "default_threads", "run_chunks"]

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Threads for the chunked passes: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ChunkBuffers(threading.local):
    """Per-thread scratch arrays reused across chunks (see :func:`~.kernels.matern_block`)."""

    def get(self, name: str, rows: int, cols: int, dtype) -> np.ndarray:
        have = self.__dict__.get(name)
        if have is None or have.shape[0] < rows or have.shape[1] != cols or have.dtype != dtype:
            have = np.empty((rows, cols), dtype=dtype)
            self.__dict__[name] = have
        return have[:rows]


def run_chunks(n_rows: int, chunk_rows: int, work: Callable[[int, int], None], n_threads: int,
               desc: str | None = None) -> None:
    """Call ``work(start, stop)`` for consecutive row chunks, in ``n_threads`` threads.

    NumPy releases the GIL in ufuncs and BLAS, so threads give real parallelism; BLAS is held at
    one thread meanwhile so the threads do not oversubscribe the cores.
    """
    from threadpoolctl import threadpool_limits

    starts = list(range(0, n_rows, chunk_rows))
    bar = progress.Bar(desc, total=n_rows, unit="obj") if desc else None
    try:
        if n_threads <= 1 or len(starts) <= 1:
            for a in starts:
                work(a, min(a + chunk_rows, n_rows))
                if bar:
                    bar.update(min(chunk_rows, n_rows - a))
            return
        with threadpool_limits(1), ThreadPoolExecutor(n_threads) as pool:
            futures = [pool.submit(work, a, min(a + chunk_rows, n_rows)) for a in starts]
            for a, fut in zip(starts, futures):
                fut.result()
                if bar:
                    bar.update(min(chunk_rows, n_rows - a))
    finally:
        if bar:
            bar.close()


class GaussianProcessRegressor:
    """GP regression with a Matern-3/2 + white-noise kernel, fitted by maximum marginal likelihood.

    Args:
        normalize_y: scale labels to zero mean and unit variance (as scikit-learn's option).
        n_restarts: random restarts of the optimiser besides the default and warm starts.
        seed: seed of the random restarts.
        jitter: added to the diagonal (scikit-learn's ``alpha``, 1e-10).
        precision: arithmetic of the mean: ``"float32"`` (kernel and sum), ``"mixed"`` (float32
            kernel, float64 sum: ~1.3× the time), ``"float64"`` (~2×), or ``"auto"``: the
            cheapest whose estimated rounding error of the mean (:attr:`float32_error`,
            :attr:`mixed_error`) is below ``tolerance``. Long length scales make the weights
            ``α`` large and cancelling, and then float32 is not safe.
        tolerance: largest acceptable rounding error of the mean, label units (``"auto"`` only).
        chunk_rows: rows of the cross-kernel per block (memory per thread: chunk_rows × n × 4 B).
        n_threads: threads for the chunked passes (default: the cores available).
        nonnegative_slope: with a prior-mean covariate, keep ``b ≥ 0`` (a higher covariate never
            lowers the prior mean).

    Example::

        gp = GaussianProcessRegressor().fit(X[labelled], scores)
        mean = gp.predict_mean(X)                  # (N,) float32, fast
        std = gp.predict_std(X, index=some_rows)   # exact, only where needed
    """

    def __init__(self, normalize_y: bool = True, n_restarts: int = 0, seed: int = 0, jitter: float = 1e-10,
                 precision: str = "auto", tolerance: float = 1e-4, chunk_rows: int = 2048,
                 n_threads: int | None = None, nonnegative_slope: bool = True):
        if n_restarts < 0:
            raise ConfigError(f"n_restarts must be >= 0, got {n_restarts}")
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be auto, float32, mixed or float64, not {precision!r}")
        self.precision = precision
        self.tolerance = float(tolerance)
        self.normalize_y = normalize_y
        self.n_restarts = n_restarts
        self.seed = seed
        self.jitter = jitter
        self.chunk_rows = int(chunk_rows)
        self.n_threads = n_threads or default_threads()
        self.nonnegative_slope = bool(nonnegative_slope)
        self.mean_coef: tuple[float, float] = (0.0, 0.0)
        self._h_train: np.ndarray | None = None
        self.hyper: GPHyperparameters | None = None
        self.log_marginal_likelihood_value: float = float("nan")
        self.fit_seconds = 0.0

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, hyper: GPHyperparameters | None = None,
            optimise: bool = True, mean_covariate: np.ndarray | None = None,
            mean_coef: tuple[float, float] | None = None) -> GaussianProcessRegressor:
        """Fit to labelled points.

        Args:
            X: (n, k) features of the labelled objects.
            y: (n,) their scores.
            hyper: start of the optimisation (a warm start, e.g. the last fit's values), or the
                values to use when ``optimise`` is False.
            optimise: maximise the log marginal likelihood; False keeps ``hyper`` as given.
            mean_covariate: (n,) covariate ``h`` of the labelled points for the prior mean
                ``a + b·h`` (normalised label units); None: the plain GP (prior mean 0).
            mean_coef: ``(a, b)`` held fixed instead of fitted (needs ``mean_covariate``).

        Returns:
            self.

        Raises:
            ConfigError: no labelled points, shapes that disagree, or non-finite values.
        """
        from threadpoolctl import threadpool_limits

        # n x n work at n <= a few thousand: one BLAS thread (several only add latency, and are
        # catastrophically slow when other processes hold the cores: 1.2 s instead of 0.02 s for
        # this method's factorisations at n = 500 on a busy 2-core machine)
        with threadpool_limits(1):
            return self._fit(X, y, hyper, optimise, mean_covariate, mean_coef)

    def _fit(self, X, y, hyper, optimise, mean_covariate, mean_coef) -> GaussianProcessRegressor:
        t0 = time.perf_counter()
        X = self._set_training_data(X, y, mean_covariate, mean_coef)
        R = pairwise_distances64(X)
        if optimise:
            self.hyper = self._optimise(R, hyper)
        else:
            self.hyper = hyper or GPHyperparameters()
        h = self.hyper
        self.mean_coef = self._coef(h.theta, R) or (0.0, 0.0)
        self.y_fit = self._residual(self.mean_coef)
        self.log_marginal_likelihood_value = lml_and_grad(h.theta, R, self.y_fit, self.jitter)[0]
        self._factorise(R)
        # the cross kernel is computed divided by e (see kernels.matern_block): fold amplitude·e in
        alpha_e = self.alpha_ * (h.amplitude * math.e)
        self._choose_precision(X, alpha_e)
        self._alpha_c = alpha_e.astype(self._sum_dtype)
        self._right_t = np.ascontiguousarray(scaled_augmented(X, h.length_scale, "right", self.dtype).T)
        self._right_t64 = np.ascontiguousarray(scaled_augmented(X, h.length_scale, "right", np.float64).T)
        self._Z64 = X
        self._alpha_K_alpha = float(self.alpha_ @ self.y_fit)  # alpha^T K alpha = alpha^T y
        self.fit_seconds = time.perf_counter() - t0
        log.debug("GP fit on %d labels in %.3f s: %s, log marginal likelihood %.3f", len(y),
                  self.fit_seconds, h, self.log_marginal_likelihood_value)
        return self

    def _set_training_data(self, X, y, mean_covariate, mean_coef) -> np.ndarray:
        """Check and keep the training data (normalised labels, prior-mean covariate); (n, k) float64 X.

        Raises:
            ConfigError: bad shapes, no labels, non-finite values, ``mean_coef`` without a covariate.
        """
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.ndim != 2 or len(X) != len(y):
            raise ConfigError(f"GP fit needs X (n, k) and y (n,), got {X.shape} and {y.shape}")
        if len(y) == 0:
            raise ConfigError("the GP needs at least one labelled object")
        if not (np.isfinite(X).all() and np.isfinite(y).all()):
            raise ConfigError("the GP got NaN or infinite features or labels")
        self.X_train = X
        if self.normalize_y:
            self.y_mean = float(y.mean())
            std = float(y.std())
            self.y_std = std if std > 0 else 1.0
        else:
            self.y_mean, self.y_std = 0.0, 1.0
        self.y_norm = (y - self.y_mean) / self.y_std
        if mean_covariate is not None:
            hc = np.asarray(mean_covariate, dtype=np.float64).ravel()
            if len(hc) != len(y) or not np.isfinite(hc).all():
                raise ConfigError(f"the prior-mean covariate needs {len(y)} finite values, got {hc.shape}")
            self._h_train = hc
        else:
            if mean_coef is not None:
                raise ConfigError("mean_coef needs mean_covariate")
            self._h_train = None
        self._fixed_coef = None if mean_coef is None else (float(mean_coef[0]), float(mean_coef[1]))
        return X

    def _factorise(self, R: np.ndarray) -> None:
        """Cholesky of the training kernel at ``self.hyper``: ``L_``, ``alpha_`` and the inverse factors.

        Raises:
            ConfigError: the kernel matrix is not positive definite.
        """
        h = self.hyper
        K = h.amplitude * ((1.0 + SQRT3 * R / h.length_scale) * np.exp(-SQRT3 * R / h.length_scale))
        K.flat[:: len(K) + 1] += h.noise + self.jitter
        L, info = lapack.dpotrf(K, lower=1, clean=1)
        if info != 0:
            raise ConfigError("the GP kernel matrix is not positive definite for these labels",
                              hint="are there duplicate objects with different scores? raise the noise level")
        self.L_ = L
        self.alpha_ = lapack.dpotrs(L, self.y_fit, lower=1)[0]
        # K^-1 = L^-T L^-1: with W = L^-T, the variance reduction of a cross-covariance k is |k W|^2
        Linv, _ = lapack.dtrtri(L, lower=1)
        self._Linv = Linv
        self._W64 = np.ascontiguousarray(Linv.T) * (h.amplitude * math.e)
        self._bound_cols: np.ndarray | None = None

    def _choose_precision(self, X: np.ndarray, alpha_e: np.ndarray) -> None:
        """The float32 paths' rounding bounds (``float32_error``, ``mixed_error``) and the mode
        and dtypes of the prediction that keep within ``tolerance`` (:func:`.gp_precision.choose_precision`)."""
        p = choose_precision(X, alpha_e, self.hyper.length_scale, self.y_std, self.tolerance, self.precision)
        self.float32_error, self.mixed_error, self._near_d2 = p.float32_error, p.mixed_error, p.near_d2
        self.mode = p.mode
        # dtype of the kernel block, and of the columns it is multiplied with (the sum)
        self.dtype, self._sum_dtype = p.dtype, p.sum_dtype

    def _coef(self, theta: np.ndarray, R: np.ndarray) -> tuple[float, float] | None:
        """The prior mean's ``(a, b)`` at ``theta``: fixed, fitted (GLS), or (0, 0) without a covariate."""
        if self._h_train is None:
            return (0.0, 0.0)
        if self._fixed_coef is not None:
            return self._fixed_coef
        return gls_coef(theta, R, self.y_norm, self._h_train, self.jitter, self.nonnegative_slope)

    def _residual(self, coef: tuple[float, float]) -> np.ndarray:
        if self._h_train is None:
            return self.y_norm
        return self.y_norm - coef[0] - coef[1] * self._h_train

    def _optimise(self, R: np.ndarray, warm: GPHyperparameters | None) -> GPHyperparameters:
        def residual_at(theta: np.ndarray) -> np.ndarray | None:
            coef = self._coef(theta, R)   # with a fitted prior mean: the best (a, b) at theta
            return None if coef is None else self._residual(coef)

        starts = hyperparameter_starts(R, warm, self.n_restarts, self.seed)
        return maximise_likelihood(R, residual_at, starts, self.jitter)

    def log_marginal_likelihood(self, hyper: GPHyperparameters | None = None) -> float:
        """Log marginal likelihood of the training labels (normalised) at ``hyper`` (default: fitted)."""
        self._check_fitted()
        h = hyper or self.hyper
        R = pairwise_distances64(self.X_train)
        coef = self._coef(h.theta, R) if hyper is not None else self.mean_coef
        return lml_and_grad(h.theta, R, self._residual(coef or (0.0, 0.0)), self.jitter)[0]

    def _check_fitted(self) -> None:
        if self.hyper is None:
            raise RuntimeError("fit the GaussianProcessRegressor first")

    # -- prediction ---------------------------------------------------------------------------
    @property
    def prior_std(self) -> float:
        """The predictive std far from every label (an upper bound for every object), label units."""
        self._check_fitted()
        return math.sqrt(self.hyper.amplitude + self.hyper.noise) * self.y_std

    def predict_mean(self, X: np.ndarray, out: np.ndarray | None = None, desc: str | None = None,
                     std_bound: bool = False, bound_rank: int = 8, mean_covariate: np.ndarray | None = None):
        """Predictive mean for every row of ``X`` (and, optionally, an upper bound on its std).

        Args:
            X: (N, k) features (float32 preferred: no copy of the whole array is made).
            out: optional (N,) float32 array to fill with the mean.
            desc: progress-bar name (None: no bar).
            std_bound: also return an upper bound on the predictive std of every row, from the
                same pass (see :meth:`_bound_basis`): about 5% more time.
            bound_rank: directions of the bound (more: tighter and slower).
            mean_covariate: (N,) the prior-mean covariate of every row (needed when the fit had
                one with ``b ≠ 0``).

        Returns:
            (N,) float32 mean in label units, or ``(mean, std_bound)``. Computed in :attr:`mode`.
        """
        self._check_fitted()
        n = len(X)
        out = np.empty(n, dtype=np.float32) if out is None else out
        ell, dt, st = self.hyper.length_scale, self.dtype, self._sum_dtype
        ymean, ystd = st.type(self.y_mean), st.type(self.y_std)
        coef_a, coef_b = self.mean_coef
        hcov = self._covariate(mean_covariate, n)
        if std_bound:
            cols = self._bound_basis(X, bound_rank)
            bound = np.empty(n, dtype=np.float32)
            h = self.hyper
            prior = h.amplitude + h.noise
            # rounding of the projections (float32: ~1e-6 relative) must not make the bound too small
            slack = (1e-5 if dt == np.float32 else 1e-12) * prior

        buf = ChunkBuffers()
        n_lab = self._right_t.shape[1]

        def work(a: int, b: int) -> None:
            # float32: exact squared distances below the threshold (at least: the rounding negatives)
            near = (max(self._near_d2, 1e-30), X[a:b], self._Z64, SQRT3 / ell) if dt == np.float32 else None
            K = matern_block(scaled_augmented(X[a:b], ell, "left", dt), self._right_t,
                             buf.get("k", b - a, n_lab, dt), buf.get("e", b - a, n_lab, dt), near)
            if K.dtype != st:
                K = buf.get("k64", b - a, n_lab, st)
                K[...] = buf.get("k", b - a, n_lab, dt)
            m = K @ self._alpha_c         # separate from the bound's product: the same mean either way
            if hcov is not None:
                m += st.type(coef_a) + st.type(coef_b) * hcov[a:b].astype(st)
            elif coef_a:
                m += st.type(coef_a)
            m *= ystd
            m += ymean
            out[a:b] = m
            if std_bound:
                P = K @ cols
                red = np.einsum("ij,ij->i", P, P).astype(np.float64)
                var = np.maximum(prior - red + slack, h.noise)
                bound[a:b] = np.sqrt(var) * self.y_std

        run_chunks(n, self.chunk_rows, work, self.n_threads, desc)
        return (out, bound) if std_bound else out

    def _covariate(self, mean_covariate: np.ndarray | None, n: int) -> np.ndarray | None:
        """The prediction's covariate (None where the prior mean is a constant)."""
        if self.mean_coef[1] == 0.0:
            return None
        if mean_covariate is None or len(mean_covariate) != n:
            raise ConfigError(f"this GP's prior mean follows a covariate: pass mean_covariate for the {n} rows")
        return np.asarray(mean_covariate)

    def _bound_basis(self, X: np.ndarray, rank: int, sample: int = 4096) -> np.ndarray:
        """Columns ``W`` (n, rank + 1) for the bound ``|(k/c)·W|² ≤ kᵀK⁻¹k`` (``c`` = amplitude·e),
        from the directions of ``sample`` objects of ``X`` (:func:`.gp_bound.bound_columns`); kept
        for the next pass."""
        if self._bound_cols is not None and self._bound_cols.shape[1] == rank + 1:
            return self._bound_cols
        from threadpoolctl import threadpool_limits

        h = self.hyper
        c = h.amplitude * math.e
        rows = np.unique(np.linspace(0, len(X) - 1, min(len(X), sample)).astype(np.int64))
        with threadpool_limits(1):
            Ks = matern_block(scaled_augmented(X[rows], h.length_scale, "left", np.float64), self._right_t64) * c
            cols = bound_columns(Ks, self._Linv, self.y_fit, rank, c)
        self._bound_cols = np.ascontiguousarray(cols.astype(self._sum_dtype))
        return self._bound_cols

    def std_upper_bound(self, mean: np.ndarray, mean_covariate: np.ndarray | None = None) -> np.ndarray:
        """An upper bound on the predictive std of each object, from its mean alone.

        The variance reduction ``kᵀK⁻¹k`` is at least ``(kᵀα)² / (αᵀKα)`` (Cauchy–Schwarz in the
        ``K⁻¹`` inner product with ``w = α``), and ``kᵀα`` is the normalised mean.

        Args:
            mean: (N,) predictive means (label units), e.g. from :meth:`predict_mean`.
            mean_covariate: (N,) the prior-mean covariate (as for :meth:`predict_mean`).

        Returns:
            (N,) float32 upper bounds, in label units.
        """
        self._check_fitted()
        m = (np.asarray(mean, dtype=np.float32) - np.float32(self.y_mean)) / np.float32(self.y_std)
        hcov = self._covariate(mean_covariate, len(m))
        m = m - np.float32(self.mean_coef[0])
        if hcov is not None:
            m = m - np.float32(self.mean_coef[1]) * np.asarray(hcov, dtype=np.float32)
        prior = np.float32(self.hyper.amplitude + self.hyper.noise)
        aKa = np.float32(max(self._alpha_K_alpha, 1e-300))
        var = prior - m * m / aKa
        np.maximum(var, np.float32(self.hyper.noise), out=var)
        return np.sqrt(var) * np.float32(self.y_std)

    def predict_std(self, X: np.ndarray, index: np.ndarray | None = None, desc: str | None = None
                    ) -> np.ndarray:
        """Exact predictive standard deviation (white noise included, as scikit-learn).

        Args:
            X: (N, k) features.
            index: rows of ``X`` to compute (int array); None = all rows (N·n² flops: slow at 10^6).
            desc: progress-bar name (None: no bar).

        Returns:
            (len(index),) or (N,) float32, in label units.
        """
        self._check_fitted()
        rows = np.arange(len(X)) if index is None else np.asarray(index, dtype=np.int64)
        out = np.empty(len(rows), dtype=np.float32)
        prior = self.hyper.amplitude + self.hyper.noise
        ell = self.hyper.length_scale
        chunk = max(256, self.chunk_rows // 2)

        buf = ChunkBuffers()
        n_lab = self._right_t64.shape[1]

        def work(a: int, b: int) -> None:
            sel = rows[a:b]
            Xc = X[sel] if index is not None else X[a:b]
            K = matern_block(scaled_augmented(Xc, ell, "left", np.float64), self._right_t64,
                             buf.get("k", b - a, n_lab, np.float64), buf.get("e", b - a, n_lab, np.float64))
            V = np.matmul(K, self._W64, out=buf.get("v", b - a, n_lab, np.float64))
            var = prior - np.einsum("ij,ij->i", V, V)
            np.maximum(var, 0.0, out=var)
            out[a:b] = np.sqrt(var) * self.y_std

        run_chunks(len(rows), chunk, work, self.n_threads, desc)
        return out

    def label_weights(self, X: np.ndarray, index: np.ndarray) -> np.ndarray:
        """The weights with which each labelled object's score enters the mean of the rows
        ``index`` (the kriging weights ``w = K⁻¹k(x)``), float64, exact.

        ``mean(x) = prior_mean(x) + Σⱼ wⱼ·(yⱼ − prior_mean(zⱼ))`` in label units: with
        :meth:`prior_mean` and :attr:`residual_labels` the weights split a prediction into what
        the prior says and what each label adds.

        Args:
            X: (N, k) features; index: (m,) rows of ``X``.

        Returns:
            (m, n) weights, one column per training label (in their order).
        """
        self._check_fitted()
        rows = np.asarray(index, dtype=np.int64)
        K = matern_block(scaled_augmented(np.asarray(X[rows]), self.hyper.length_scale, "left", np.float64),
                         self._right_t64)
        return (K @ self._W64) @ self._Linv        # k K^-1 = (k L^-T) L^-1; _W64 holds amplitude·e

    def prior_mean(self, n: int, mean_covariate: np.ndarray | None = None) -> np.ndarray:
        """The prior mean ``y_mean + y_std·(a + b·h)`` of ``n`` objects (label units), (n,) float64:
        what the model predicts with no label near (the anomaly part for ``gp-anomaly``)."""
        self._check_fitted()
        a, b = self.mean_coef
        hcov = self._covariate(mean_covariate, n)
        norm = np.full(n, a) if hcov is None else a + b * np.asarray(hcov, dtype=np.float64)
        return self.y_mean + self.y_std * norm

    @property
    def residual_labels(self) -> np.ndarray:
        """(n,) the training labels less their prior mean, label units (what the weights multiply)."""
        self._check_fitted()
        return self.y_fit * self.y_std

    def loo_predictions(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-out predictive mean and std of every labelled object, label units.

        The closed form of Rasmussen & Williams (2006, eq. 5.12) at the fitted hyper-parameters
        (and, with a prior-mean covariate, the fitted ``(a, b)`` held fixed):
        ``μ₋ᵢ = yᵢ − αᵢ/[K⁻¹]ᵢᵢ``, ``σ²₋ᵢ = 1/[K⁻¹]ᵢᵢ`` (white noise included, as :meth:`predict_std`).

        Returns:
            ``(mean, std)``, each (n,) float64, in the order of the training labels.
        """
        self._check_fitted()
        kinv_diag = np.einsum("ki,ki->i", self._Linv, self._Linv)      # K^-1 = L^-T L^-1
        mean = (self.y_norm - self.alpha_ / kinv_diag) * self.y_std + self.y_mean
        return mean, np.sqrt(1.0 / kinv_diag) * self.y_std

    def predict(self, X: np.ndarray, return_std: bool = False, mean_covariate: np.ndarray | None = None):
        """scikit-learn-style: mean, or (mean, std) for every row of ``X`` (float32)."""
        mean = self.predict_mean(X, mean_covariate=mean_covariate)
        return (mean, self.predict_std(X)) if return_std else mean

    def to_sklearn_kernel(self):
        """The same kernel as a scikit-learn object (for tests and comparisons)."""
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        h = self.hyper or GPHyperparameters()
        return (ConstantKernel(h.amplitude, BOUNDS) * Matern(h.length_scale, BOUNDS, nu=1.5)
                + WhiteKernel(h.noise, BOUNDS))
