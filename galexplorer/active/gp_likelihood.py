"""The GP's hyper-parameters and how they are fitted: the log marginal likelihood of the
labels with its analytic gradient, the generalised-least-squares prior mean ``a + b·h``, and
the L-BFGS-B search over several starts (see :mod:`galexplorer.active.gp`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy.linalg import lapack
from scipy.optimize import minimize

from ..errors import ConfigError
from .kernels import SQRT3

BOUNDS = (1e-5, 1e5)  # scikit-learn's default bounds for each hyper-parameter


@dataclass(frozen=True)
class GPHyperparameters:
    """Kernel ``amplitude · Matern(length_scale, ν=1.5) + White(noise)``, in normalised label units."""

    amplitude: float = 1.0
    length_scale: float = 1.0
    noise: float = 1.0

    @property
    def theta(self) -> np.ndarray:
        """(3,) float64 natural logs, in scikit-learn's order (amplitude, length scale, noise)."""
        return np.log([self.amplitude, self.length_scale, self.noise])

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> GPHyperparameters:
        a, ell, s = (float(v) for v in np.exp(theta))
        return cls(a, ell, s)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def lml_and_grad(theta: np.ndarray, R: np.ndarray, y: np.ndarray, jitter: float) -> tuple[float, np.ndarray]:
    """Log marginal likelihood and its gradient in log hyper-parameters (float64)."""
    amp, ell, noise = np.exp(theta)
    d = R * (SQRT3 / ell)
    e = np.exp(-d)
    M = (1.0 + d) * e
    K = amp * M
    K.flat[:: len(K) + 1] += noise + jitter
    L, info = lapack.dpotrf(K, lower=1, clean=1)
    if info != 0:  # not positive definite at these values: as scikit-learn, -inf and no direction
        return -np.inf, np.zeros(3)
    alpha, _ = lapack.dpotrs(L, y, lower=1)
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(L)).sum()) - 0.5 * len(y) * math.log(2 * math.pi)
    # dLML/dθ = ½ (αᵀ ∂K α − tr(K⁻¹ ∂K)). dpotri leaves K⁻¹ in the lower triangle and zeros above
    # (dpotrf cleaned them), so for symmetric ∂K: tr(K⁻¹ ∂K) = 2 Σ low∘∂K − Σ diag(K⁻¹)·diag(∂K).
    low, _ = lapack.dpotri(L, lower=1)
    diag_inv = np.diag(low).copy()
    D = d * d
    D *= e                                   # ∂M/∂log ℓ = d² e^{-d}
    Ma, Da = M @ alpha, D @ alpha
    tr_m = 2.0 * float(np.einsum("ij,ij->", low, M)) - float(diag_inv.sum())      # diag(M) = 1
    tr_d = 2.0 * float(np.einsum("ij,ij->", low, D))                             # diag(D) = 0
    g_amp = 0.5 * (float(alpha @ Ma) - tr_m) * amp
    g_ell = 0.5 * (float(alpha @ Da) - tr_d) * amp
    g_noise = 0.5 * (float(alpha @ alpha) - float(diag_inv.sum())) * noise
    return lml, np.array([g_amp, g_ell, g_noise])


def gls_coef(theta: np.ndarray, R: np.ndarray, y: np.ndarray, h: np.ndarray, jitter: float,
              nonnegative_slope: bool) -> tuple[float, float] | None:
    """The ``(a, b)`` of the prior mean ``a + b·h`` that maximise the likelihood at ``theta``
    (generalised least squares), or None where the kernel matrix is not positive definite."""
    amp, ell, noise = np.exp(theta)
    d = R * (SQRT3 / ell)
    K = amp * (1.0 + d) * np.exp(-d)
    K.flat[:: len(K) + 1] += noise + jitter
    L, info = lapack.dpotrf(K, lower=1, clean=1)
    if info != 0:
        return None
    H = np.column_stack([np.ones(len(y)), h, y])
    S, _ = lapack.dpotrs(L, H, lower=1)                  # K^-1 [1, h, y]
    A = H[:, :2].T @ S[:, :2]
    c = H[:, :2].T @ S[:, 2]
    det = A[0, 0] * A[1, 1] - A[0, 1] ** 2
    if det > 1e-12 * max(A[0, 0] * A[1, 1], 1e-300):
        a, b = np.linalg.solve(A, c)
        if b >= 0 or not nonnegative_slope:
            return float(a), float(b)
    return float(c[0] / A[0, 0]), 0.0                    # constant h, or the slope held at 0


def hyperparameter_starts(R: np.ndarray, warm: GPHyperparameters | None, n_restarts: int,
                          seed: int) -> list[np.ndarray]:
    """The optimiser's starts (log hyper-parameters): a warm start, scikit-learn's (all 1), one at
    the median distance between labelled points, and ``n_restarts`` seeded random ones.

    Args:
        R: (n, n) distances between the labelled points.
    """
    lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])
    starts = [GPHyperparameters().theta]
    # scikit-learn's start (length scale 1) is flat when the labelled points lie much further
    # apart than 1 (standardised features in tens of dimensions: distances ~ sqrt(2k)): the
    # kernel is ~0 between every pair, the gradient vanishes, and the fit never moves. A start
    # at the median distance between labelled points puts the kernel where the data are.
    off_diagonal = R[np.triu_indices(len(R), 1)]
    typical = float(np.median(off_diagonal[off_diagonal > 0])) if np.any(off_diagonal > 0) else 1.0
    if not 0.5 < typical < 2.0:
        starts.append(GPHyperparameters(length_scale=float(np.clip(typical, *BOUNDS))).theta)
    if warm is not None:
        starts.insert(0, np.clip(warm.theta, lo, hi))
    rng = np.random.default_rng(seed)
    starts += [rng.uniform(lo, hi, 3) for _ in range(n_restarts)]
    return starts


def maximise_likelihood(R: np.ndarray, residual_at: Callable[[np.ndarray], np.ndarray | None],
                        starts: list[np.ndarray], jitter: float) -> GPHyperparameters:
    """The hyper-parameters of highest log marginal likelihood found by L-BFGS-B from ``starts``,
    within :data:`BOUNDS`.

    Args:
        R: (n, n) distances between the labelled points.
        residual_at: the (n,) normalised labels less their prior mean at log hyper-parameters
            ``theta`` (with a fitted prior mean: at its best ``(a, b)`` there, the profile
            likelihood, whose gradient is that of the residuals by the envelope theorem), or None
            where the kernel matrix is not positive definite.
        starts: log hyper-parameters to start from (:func:`hyperparameter_starts`).
        jitter: added to the kernel's diagonal.

    Raises:
        ConfigError: the search failed at every start.
    """
    lo, hi = math.log(BOUNDS[0]), math.log(BOUNDS[1])

    def objective(theta):
        y = residual_at(theta)
        if y is None:
            return 1e25, np.zeros(3)
        lml, grad = lml_and_grad(theta, R, y, jitter)
        if not np.isfinite(lml):
            return 1e25, np.zeros(3)
        return -lml, -grad

    from threadpoolctl import threadpool_limits

    best_theta, best = None, -np.inf
    # n x n work at n <= a few thousand: multi-threaded BLAS only adds latency (and is
    # catastrophically slow when other processes hold the cores)
    with threadpool_limits(1):
        for theta0 in starts:
            res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=[(lo, hi)] * 3)
            if -res.fun > best:
                best, best_theta = -res.fun, res.x
    if best_theta is None:
        raise ConfigError("the GP hyper-parameter search failed at every start",
                          hint="check the labels and features for duplicates")
    return GPHyperparameters.from_theta(best_theta)
