"""Principal component analysis of embeddings, exact and streamed: memory is O(D²), not O(N·D).

The covariance matrix is accumulated chunk by chunk (in float64, shifted by the first chunk's
mean so that large offsets do not cancel precision away), then diagonalised once. The result is
the exact PCA (the same subspace as ``sklearn.decomposition.PCA``), deterministic for a given
input and chunking, and it works on an ``h5py.Dataset`` of any length as well as on an array.

Conventions (also documented in docs/store-format.md):

* the embeddings are centred; with ``standardise=True`` each dimension is also divided by its
  standard deviation first (for feature tables whose columns have different units);
* ``k`` is the smallest number of components whose explained-variance ratio sums to at least
  ``variance`` (at least 2 when the data allow it);
* the returned coordinates are the principal-component scores, *not whitened*: component ``j``
  has variance ``explained_variance[j]``, so Euclidean distances between rows approximate
  distances between the (centred) embeddings. Divide by ``sqrt(explained_variance)`` to whiten;
* each component's sign is fixed so that its largest-magnitude loading is positive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

CHUNK_ROWS = 8192


def check_variance(variance: float) -> float:
    """Validate a variance fraction (0 < variance <= 1).

    Raises:
        ConfigError: outside (0, 1].
    """
    v = float(variance)
    if not (0.0 < v <= 1.0) or not np.isfinite(v):
        raise ConfigError(f"PCA variance fraction must be in (0, 1], got {variance!r}",
                          hint="use e.g. --pca-variance 0.95")
    return v


@dataclass
class PCAModel:
    """A fitted PCA.

    Attributes:
        mean: (D,) float64, the mean embedding.
        scale: (D,) float64, per-dimension divisor applied after centring (ones unless
            standardised; a constant dimension keeps scale 1).
        components: (k, D) float64, orthonormal rows, largest variance first.
        explained_variance: (k,) float64, variance of each component's scores.
        explained_variance_ratio: (k,) float64, fraction of the total variance.
        total_variance: float, sum of all D eigenvalues.
        standardised: whether dimensions were scaled to unit variance before the PCA.
        n_samples: number of rows the model was fitted on.
    """

    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    total_variance: float
    standardised: bool
    n_samples: int
    variance_target: float = 0.95
    notes: list[str] = field(default_factory=list)

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project rows onto the components.

        Args:
            x: (n, D) array-like of embeddings.

        Returns:
            (n, k) float32 principal-component scores.
        """
        x = np.asarray(x, dtype=np.float64)
        return (((x - self.mean) / self.scale) @ self.components.T).astype(np.float32)

    def info(self) -> dict[str, Any]:
        """JSON-friendly summary (what the store records as attributes of ``pca``)."""
        return {
            "n_components": self.n_components,
            "explained_variance_ratio": [float(v) for v in self.explained_variance_ratio],
            "explained_variance": [float(v) for v in self.explained_variance],
            "variance_kept": float(np.sum(self.explained_variance_ratio)),
            "variance_target": float(self.variance_target),
            "standardised": bool(self.standardised),
            "whitened": False,
            "centred": True,
            "n_samples": int(self.n_samples),
            "method": "exact covariance eigendecomposition (streamed)",
        }


class CovarianceAccumulator:
    """Accumulate the first and second moments of (n, D) chunks for :func:`PCAModel` fitting.

    ``add`` may be called with chunks of any size; the result depends only on the rows and
    their order (not on how the caller chunks them) up to float64 rounding.
    """

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.n = 0
        self._shift: np.ndarray | None = None
        self._sum = np.zeros(self.dim, np.float64)
        self._sumsq = np.zeros((self.dim, self.dim), np.float64)

    def add(self, chunk: np.ndarray) -> None:
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[1] != self.dim:
            raise ValueError(f"expected (n, {self.dim}) rows, got {chunk.shape}")
        if len(chunk) == 0:
            return
        if self._shift is None:
            self._shift = chunk.mean(axis=0)
        y = chunk - self._shift
        self._sum += y.sum(axis=0)
        self._sumsq += y.T @ y
        self.n += len(chunk)

    def mean(self) -> np.ndarray:
        assert self._shift is not None
        return self._shift + self._sum / self.n

    def covariance(self) -> np.ndarray:
        """(D, D) float64 sample covariance (divisor n - 1; n for a single row)."""
        assert self._shift is not None
        m = self._sum / self.n
        cov = (self._sumsq - self.n * np.outer(m, m)) / max(self.n - 1, 1)
        return (cov + cov.T) / 2

    def fit(self, variance: float = 0.95, standardise: bool = False,
            max_components: int | None = None) -> PCAModel:
        """Diagonalise the accumulated covariance.

        Raises:
            ConfigError: ``variance`` outside (0, 1].
            InputError: no rows, or every row identical (nothing varies).
        """
        variance = check_variance(variance)
        if self.n == 0:
            raise InputError("no embeddings to analyse (0 rows)")
        cov = self.covariance()
        std = np.sqrt(np.clip(np.diag(cov), 0, None))
        if standardise:
            scale = np.where(std > 1e-12 * max(float(std.max()), 1e-300), std, 1.0)
            cov = cov / np.outer(scale, scale)
        else:
            scale = np.ones(self.dim)
        evals, evecs = np.linalg.eigh(cov)
        evals, evecs = np.clip(evals[::-1], 0, None), evecs[:, ::-1]
        total = float(evals.sum())
        if not total > 0:
            raise InputError(f"all {self.n} embeddings are identical, so there is nothing to analyse",
                             hint="check that the encoder or the embeddings file is the right one")
        ratio = evals / total
        rank = int(np.sum(evals > evals[0] * 1e-10))
        k = int(np.searchsorted(np.cumsum(ratio), variance - 1e-9) + 1)
        k = max(k, min(2, rank, self.dim))
        k = min(k, rank)
        notes = []
        if max_components is not None and k > max_components:
            notes.append(f"capped at {max_components} components ({np.sum(ratio[:max_components]):.3f} "
                         f"of the variance instead of {variance})")
            k = int(max_components)
        comps = evecs[:, :k].T.copy()
        # deterministic signs: the largest-magnitude loading of each component is positive
        big = np.argmax(np.abs(comps), axis=1)
        comps *= np.sign(comps[np.arange(k), big])[:, None]
        return PCAModel(mean=self.mean(), scale=scale, components=comps, explained_variance=evals[:k].copy(),
                        explained_variance_ratio=ratio[:k].copy(), total_variance=total,
                        standardised=bool(standardise), n_samples=self.n, variance_target=variance,
                        notes=notes)


def fit_pca_model(x, variance: float = 0.95, standardise: bool = False, max_components: int | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> PCAModel:
    """Fit a :class:`PCAModel` on an (N, D) array or ``h5py.Dataset``, reading ``chunk_rows`` at a time."""
    n, d = x.shape
    acc = CovarianceAccumulator(d)
    for a in range(0, n, chunk_rows):
        acc.add(x[a:a + chunk_rows])
    return acc.fit(variance, standardise, max_components)


def fit_pca(x: np.ndarray, variance: float = 0.95, seed: int = 0, standardise: bool = False,
            max_components: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA keeping the components that explain ``variance`` of the total variance.

    Args:
        x: (N, D) float array (any float dtype; NaN is not allowed).
        variance: fraction of the variance to keep, in (0, 1].
        seed: accepted for a uniform API; the exact method uses no randomness.
        standardise: scale each dimension to unit variance before the PCA.
        max_components: an upper limit on k.

    Returns:
        ``(coords, info)``: coords (N, k) float32 principal-component scores (centred, not
        whitened); info is :meth:`PCAModel.info` plus ``mean``, ``scale`` and ``components``
        as arrays.

    Raises:
        ConfigError: ``variance`` outside (0, 1].
        InputError: X is not 2-D, has NaN/inf, or does not vary.
    """
    del seed
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"expected an (N, D) array for PCA, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("the array given to PCA contains NaN or inf")
    model = fit_pca_model(x, variance, standardise, max_components)
    coords = np.concatenate([model.transform(x[a:a + CHUNK_ROWS]) for a in range(0, len(x), CHUNK_ROWS)]) \
        if len(x) else np.empty((0, model.n_components), np.float32)
    info = model.info()
    info.update(mean=model.mean, scale=model.scale, components=model.components)
    return coords, info
