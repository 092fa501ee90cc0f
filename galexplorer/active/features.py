"""Features the scorers learn on: principal components of the embeddings, standardised.

The store's ``pca`` (written by ``galexplorer embed``) holds the principal-component scores of
the centred embeddings, not whitened, with the explained-variance ratio of each component in
its attributes. How many components the loop keeps (``LoopConfig``):

* ``components=None`` (the default, ``pca_components``): as many as explain ``variance`` of the
  total (95%). For a trained network that is 1-5 (size and flux: the directions of largest
  variance).
* ``components=K`` (the **wide** view measured by ``benchmarks/bench_loop_features.py``, K = 32):
  at most K leading components, those above the embedding's noise floor (:func:`above_floor`).
  The spectrum comes from the embeddings (at most :data:`FIT_ROWS` rows, in blocks spread over
  the file); the store's own PCA is used when it kept as many components, else the embeddings
  are projected again, streamed from the file in chunks. Not the default: it finds more with the
  embedding alone on every benchmark domain, but delays the first find on bench_discovery's
  low-rank stores (docs/active-learning.md, "How the loop works").

Then standardised, one of two ways (``scaling``):

* ``global`` (the default): centre every column and divide all of them by one factor, so that
  the mean column variance is 1. Distances stay those of the embedding space (restricted to the
  kept components), and one isotropic length scale has a known order of magnitude.
* ``per-component``: each column to unit variance (whitening), so a direction of small variance
  that separates your finds is not drowned by size and flux. With 100+ components (95% of a
  network's variance can need that) the low-variance ones swamp the distances (measured on the
  demo: see docs/active-learning.md); the wide view caps them at 32 above the noise floor.
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
#: a component is above the noise floor when its variance is more than this times the median
#: variance of all directions of the embedding (:func:`above_floor`)
NOISE_FACTOR = 2.0


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
        pca = store.pca
        ratio = _stored_ratio(store, pca.shape[1])
        if ratio is None:
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
    """At most ``k`` leading principal components, those above the noise floor (:func:`above_floor`):
    the store's own PCA when it kept as many, else a PCA of the embeddings streamed from the file."""
    from ..explore.pca import CHUNK_ROWS, CovarianceAccumulator

    stored = store.file["pca"].shape[1] if store.has("pca") else 0      # its width, without reading it
    if not store.has("embeddings"):
        if not stored:
            raise StoreError("the store has no embeddings and no PCA to learn from", store.path, FIX)
        ratio = _stored_ratio(store, stored)    # no spectrum to find the floor in: the store's components
        kk = min(k, stored)
        return _finish(store.pca[:, :kk], float("nan") if ratio is None else float(ratio[:kk].sum()),
                       "store pca", store, scaling)
    data = store.embeddings
    n = data.shape[0]
    # the spectrum from at most FIT_ROWS rows, in blocks spread evenly over the file (all rows when
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
    standardised = bool(stored and store.dataset_attrs("pca").get("standardised", False))  # the store PCA's space
    model = acc.fit(variance=1.0, standardise=standardised)
    keep = min(k, above_floor(model.explained_variance, data.shape[1], acc.n))
    ratio = model.explained_variance_ratio[:keep]
    if stored >= keep:
        return _finish(store.pca[:, :keep], float(ratio.sum()), "store pca", store, scaling)
    if stored:
        log.info("%s: the stored PCA keeps %d components, fewer than the %d the loop learns on; computing "
                 "the PCA again", store.path, stored, keep)
    # the projection in float32 (a quarter of PCAModel.transform's float64 time; the features are
    # float32 and standardised afterwards anyway)
    mean = model.mean.astype(np.float32)
    weights = np.ascontiguousarray((model.components[:keep] / model.scale).T, dtype=np.float32)
    coords = np.empty((n, keep), np.float32)
    for a in range(0, n, CHUNK_ROWS):
        block = np.asarray(data[a:a + CHUNK_ROWS], np.float32)
        if not np.isfinite(block).all():
            raise StoreError("the embeddings hold NaN or infinite values", store.path, FIX)
        block -= mean
        np.matmul(block, weights, out=coords[a:a + CHUNK_ROWS])
    info = "pca of embeddings" if n <= FIT_ROWS else f"pca of embeddings (fitted on {acc.n:,} of {n:,} rows)"
    return _finish(coords, float(ratio.sum()), info, store, scaling)


def _stored_ratio(store: EmbeddingStore, width: int) -> np.ndarray | None:
    """The explained-variance ratio of each of the store PCA's ``width`` columns, or None when the
    store does not record one per column."""
    ratio = store.dataset_attrs("pca").get("explained_variance_ratio")
    ratio = np.asarray(ratio, dtype=np.float64).ravel() if ratio is not None else None
    return ratio if ratio is not None and len(ratio) == width else None


def for_loop(store: EmbeddingStore, config) -> LearningFeatures:
    """The learning features a :class:`~galexplorer.active.config.LoopConfig` asks for."""
    return learning_features(store, config.pca_variance, config.feature_scaling, config.pca_components)


def above_floor(eigenvalues: np.ndarray, dims: int, rows: int) -> int:
    """How many leading components stand above the noise floor.

    Embeddings of low rank plus isotropic noise have a flat tail of near-equal eigenvalues at the
    noise level; each scaled to unit variance, those directions of pure noise would weigh as much
    as the signal (bench_discovery's low-rank stores: the loop found 2 rare objects in 100 labels
    instead of 61). The floor is the median variance of all ``dims`` directions (those beyond
    ``eigenvalues`` count as 0) times :data:`NOISE_FACTOR` times ``(1 + sqrt(dims / rows))²``, the
    Marchenko–Pastur widening of pure noise's eigenvalues estimated from ``rows`` rows. A network's
    spectrum decays without such a floor (on the benchmark domains the median of its 512
    directions is ~10^-6 of the first, its 32nd ~10^-5), so there all 32 are kept. When no
    direction stands above the floor (a flat spectrum: features already whitened), every
    direction is kept.
    """
    lam = np.zeros(max(int(dims), len(eigenvalues)))
    lam[:len(eigenvalues)] = np.clip(np.asarray(eigenvalues, np.float64), 0, None)
    floor = NOISE_FACTOR * (1 + np.sqrt(len(lam) / max(int(rows), 1))) ** 2 * float(np.median(lam))
    above = int(np.sum(lam > floor))
    return above if above else int(np.sum(lam > 0)) or 1


def _finish(X: np.ndarray, kept: float, source: str, store: EmbeddingStore, scaling: str) -> LearningFeatures:
    X = np.asarray(X)
    if not np.isfinite(X).all():
        raise StoreError(f"the {source} holds NaN or infinite values", store.path, FIX)
    log.info("learning features: %d components (%s, %.1f%% of the variance)", X.shape[1], source,
             100 * kept if np.isfinite(kept) else float("nan"))
    return LearningFeatures(standardise(X, scaling), kept, source,
                            {"n_features": int(X.shape[1]), "variance_kept": kept, "source": source,
                             "scaling": scaling})
