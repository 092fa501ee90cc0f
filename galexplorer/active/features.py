"""Features the scorers learn on: principal components of the embeddings, standardised.

The store's ``pca`` (written by ``galexplorer embed``) holds the principal-component scores of
the centred embeddings, not whitened, with the explained-variance ratio of each component in
its attributes. How many components the loop keeps (``LoopConfig``):

* ``components`` (``pca_components``, 32 by default): the leading ``components`` of them (all, when
  the embedding has fewer). ``embed`` keeps only the components that explain 95% of the variance,
  which for a trained network is 1-5 (size and flux: the directions of largest variance); the
  shape a rare class differs by lies further down the spectrum. So when the store's PCA holds
  fewer than asked for, the PCA is computed again from the embeddings, streamed from the file in
  chunks (one pass for the covariance, one for the projection).
* ``components=None``: as many as explain ``variance`` of the total (the loop before issue #22's
  measurement, ``benchmarks/bench_loop_features.py``).

Then standardised, one of two ways (``scaling``):

* ``per-component`` (the default): each column to unit variance (whitening), so the 32
  components weigh alike and a direction of small variance that separates your finds is not
  drowned by size and flux. With many more components (100+, as 95% of a network's variance
  can need) the low-variance ones would swamp the distances (measured on the demo: see
  docs/active-learning.md); 32 is the cap that keeps that in check.
* ``global``: centre every column and divide all of them by one factor, so that the mean column
  variance is 1. Distances stay those of the embedding space (restricted to the kept
  components), and one isotropic length scale has a known order of magnitude.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, StoreError
from ..store import EmbeddingStore
from .config import check_components

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

#: rows the loop's own PCA is fitted on at most (``components`` more than the store's PCA kept)
FIT_ROWS = 100_000


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


def learning_features(store: EmbeddingStore, variance: float = 0.95, scaling: str = "global",
                      components: int | None = None) -> LearningFeatures:
    """The standardised principal components of a store's embeddings.

    Args:
        store: an open embedding store.
        variance: fraction of the variance the kept components must explain, in (0, 1]; used
            when ``components`` is None.
        scaling: ``global`` or ``per-component`` (see the module docstring).
        components: keep this many leading components (all of them when the embedding has
            fewer), whatever share of the variance they explain; None: as many as ``variance``
            needs.

    Returns:
        :class:`LearningFeatures` for all N objects.

    Raises:
        ConfigError: ``variance`` outside (0, 1], or ``components`` < 1.
        StoreError: the store has neither ``pca`` nor ``embeddings``, or they hold NaN.
    """
    if not (0.0 < float(variance) <= 1.0):
        raise ConfigError(f"the PCA variance fraction must be in (0, 1], got {variance!r}")
    if components is not None:
        check_components(components)
        return _leading(store, int(components), scaling)
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


def _leading(store: EmbeddingStore, k: int, scaling: str) -> LearningFeatures:
    """The ``k`` leading principal components: the store's own when its PCA kept as many (or the
    embedding has no more), else a PCA of the embeddings streamed from the file in chunks."""
    have_pca = store.has("pca")
    if have_pca:
        pca = store.pca
        ratio = store.dataset_attrs("pca").get("explained_variance_ratio")
        ratio = np.asarray(ratio, dtype=np.float64).ravel() if ratio is not None else None
        dims = store.embeddings.shape[1] if store.has("embeddings") else pca.shape[1]
        if pca.shape[1] >= min(k, dims) or not store.has("embeddings"):
            kk = min(k, pca.shape[1])
            kept = float(ratio[:kk].sum()) if ratio is not None and len(ratio) == pca.shape[1] else float("nan")
            return _finish(pca[:, :kk], kept, "store pca", store, scaling)
        log.info("%s: the stored PCA keeps %d components, fewer than the %d asked for; computing the PCA "
                 "again", store.path, pca.shape[1], k)
    if not store.has("embeddings"):
        raise StoreError("the store has no embeddings and no PCA to learn from", store.path, FIX)
    from ..explore.pca import CHUNK_ROWS, CovarianceAccumulator

    data = store.embeddings
    n = data.shape[0]
    # the components from at most FIT_ROWS rows, in blocks spread evenly over the file (all rows when
    # there are fewer): the leading 32 of a 512-d covariance are settled long before 10^5 rows, and
    # the full pass would cost tens of seconds at 10^6 objects before the first fit
    starts = np.arange(0, n, CHUNK_ROWS)
    if n > FIT_ROWS:
        starts = starts[np.unique(np.linspace(0, len(starts) - 1, -(-FIT_ROWS // CHUNK_ROWS)).round().astype(int))]
    acc = CovarianceAccumulator(data.shape[1])
    for a in starts:
        block = data[a:a + CHUNK_ROWS]
        if not np.isfinite(block).all():
            raise StoreError("the embeddings hold NaN or infinite values", store.path, FIX)
        acc.add(block)
    model = acc.fit(variance=1.0, max_components=k)
    # the projection in float32 (a quarter of PCAModel.transform's float64 time; the features are
    # float32 and standardised afterwards anyway)
    mean = model.mean.astype(np.float32)
    weights = np.ascontiguousarray((model.components / model.scale).T, dtype=np.float32)
    coords = np.empty((n, model.n_components), np.float32)
    for a in range(0, n, CHUNK_ROWS):
        block = np.asarray(data[a:a + CHUNK_ROWS], np.float32)
        if not np.isfinite(block).all():
            raise StoreError("the embeddings hold NaN or infinite values", store.path, FIX)
        block -= mean
        np.matmul(block, weights, out=coords[a:a + CHUNK_ROWS])
    info = "pca of embeddings" if n <= FIT_ROWS else f"pca of embeddings (fitted on {acc.n:,} of {n:,} rows)"
    return _finish(coords, float(np.sum(model.explained_variance_ratio)), info, store, scaling)


def _finish(X: np.ndarray, kept: float, source: str, store: EmbeddingStore, scaling: str) -> LearningFeatures:
    X = np.asarray(X)
    if not np.isfinite(X).all():
        raise StoreError(f"the {source} holds NaN or infinite values", store.path, FIX)
    log.info("learning features: %d components (%s, %.1f%% of the variance)", X.shape[1], source,
             100 * kept if np.isfinite(kept) else float("nan"))
    return LearningFeatures(standardise(X, scaling), kept, source,
                            {"n_features": int(X.shape[1]), "variance_kept": kept, "source": source,
                             "scaling": scaling})
