"""Features the scorers learn on: principal components of the embeddings, standardised.

The store's ``pca`` (written by ``galexplorer embed``) holds the principal-component scores of
the centred embeddings, not whitened, with the explained-variance ratio of each component in
its attributes. For learning we keep the leading components that explain ``variance`` of the
total (95% by default, as the seed papers) and standardise them. Two ways (``scaling``):

* ``global`` (default): centre every column and divide all of them by one factor, so that the
  mean column variance is 1. Distances stay those of the embedding space (restricted to the
  kept components), and one isotropic length scale has a known order of magnitude.
* ``per-component``: scale each column to unit variance (whitening). Every one of the k
  components then weighs as much as the first — with a network's embeddings, where 95% of the
  variance can take 100+ components, the many low-variance ones swamp the distances and a GP
  on a few dozen labels learns nothing (measured on the demo: see docs/active-learning.md).

When the store's PCA kept fewer
components than asked for, or the store has no PCA, the PCA is computed again from the
embeddings (in memory, streamed in chunks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, StoreError
from ..store import EmbeddingStore

log = logging.getLogger(__name__)

FIX = "build the store with `galexplorer embed`, which writes embeddings and their PCA"


@dataclass
class LearningFeatures:
    """Standardised features for every object of a store.

    Attributes:
        X: (N, k) float32, zero mean; unit variance per column or on average (``info["scaling"]``).
        variance_kept: fraction of the embeddings' variance the k components explain (NaN if unknown).
        source: ``"store pca"`` or ``"pca of embeddings"``.
        info: provenance for the saved config.
    """

    X: np.ndarray
    variance_kept: float
    source: str
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])


SCALINGS = ("global", "per-component")


def standardise(X: np.ndarray, scaling: str = "per-component") -> np.ndarray:
    """Columns of ``X`` centred and scaled, float32.

    Args:
        X: (N, k) array.
        scaling: ``per-component`` (each column to unit variance; constant columns stay 0) or
            ``global`` (one factor for all columns, making their mean variance 1).

    Returns:
        (N, k) float32 (a new array).

    Raises:
        ConfigError: unknown ``scaling``.
    """
    if scaling not in SCALINGS:
        raise ConfigError(f"unknown feature scaling {scaling!r}; choose one of {', '.join(SCALINGS)}")
    X = np.asarray(X, dtype=np.float32)
    mean = X.mean(axis=0, dtype=np.float64)
    # the variance in chunks: X.std(axis=0, dtype=float64) makes (N, k) float64 temporaries,
    # seconds and gigabytes at 10^7 rows
    ss = np.zeros(X.shape[1], np.float64)
    for a in range(0, len(X), 1 << 18):
        d = X[a:a + (1 << 18)].astype(np.float64) - mean
        ss += np.einsum("ij,ij->j", d, d)
    std = np.sqrt(ss / max(len(X), 1))
    if scaling == "global":
        overall = float(np.sqrt(np.mean(std ** 2)))
        std = np.full_like(std, overall if overall > 0 else 1.0)
    std[std == 0] = 1.0
    out = X - mean.astype(np.float32)
    out *= (1.0 / std).astype(np.float32)
    return out


def components_for(ratio: np.ndarray, variance: float) -> int:
    """Smallest number of leading components whose ratios sum to at least ``variance`` (≥ 1)."""
    cum = np.cumsum(np.asarray(ratio, dtype=np.float64))
    k = int(np.searchsorted(cum, variance - 1e-12) + 1)
    return max(1, min(k, len(cum)))


def learning_features(store: EmbeddingStore, variance: float = 0.95, scaling: str = "global") -> LearningFeatures:
    """The standardised principal components of a store's embeddings.

    Args:
        store: an open embedding store.
        variance: fraction of the variance the kept components must explain, in (0, 1].
        scaling: ``global`` or ``per-component`` (see the module docstring).

    Returns:
        :class:`LearningFeatures` for all N objects.

    Raises:
        ConfigError: ``variance`` outside (0, 1].
        StoreError: the store has neither ``pca`` nor ``embeddings``, or they hold NaN.
    """
    if not (0.0 < float(variance) <= 1.0):
        raise ConfigError(f"the PCA variance fraction must be in (0, 1], got {variance!r}")
    if store.has("pca"):
        ratio = store.dataset_attrs("pca").get("explained_variance_ratio")
        ratio = np.asarray(ratio, dtype=np.float64).ravel() if ratio is not None else None
        pca = store.pca
        if ratio is None or len(ratio) != pca.shape[1]:
            log.info("%s: the PCA has no explained-variance ratios; using all %d components",
                     store.path, pca.shape[1])
            return _finish(pca, float("nan"), "store pca", store, scaling)
        if ratio.sum() + 1e-9 >= variance or not store.has("embeddings"):
            k = components_for(ratio, variance)
            return _finish(pca[:, :k], float(ratio[:k].sum()), "store pca", store, scaling)
        log.info("%s: the stored PCA keeps %.1f%% of the variance, less than the %.1f%% asked for; "
                 "computing the PCA again", store.path, 100 * ratio.sum(), 100 * variance)
    if not store.has("embeddings"):
        raise StoreError("the store has no embeddings and no PCA to learn from", store.path, FIX)
    from ..explore.pca import fit_pca

    coords, info = fit_pca(store.load_embeddings(), variance=variance)
    return _finish(coords, float(np.sum(info.get("explained_variance_ratio", [np.nan]))),
                   "pca of embeddings", store, scaling)


def _finish(X: np.ndarray, kept: float, source: str, store: EmbeddingStore, scaling: str) -> LearningFeatures:
    X = np.asarray(X)
    if not np.isfinite(X).all():
        raise StoreError(f"the {source} holds NaN or infinite values", store.path, FIX)
    log.info("learning features: %d components (%s, %.1f%% of the variance)", X.shape[1], source,
             100 * kept if np.isfinite(kept) else float("nan"))
    return LearningFeatures(standardise(X, scaling), kept, source,
                            {"n_features": int(X.shape[1]), "variance_kept": kept, "source": source,
                             "scaling": scaling})
