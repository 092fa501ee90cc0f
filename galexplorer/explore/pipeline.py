"""From embeddings to an embedding store: PCA, 2-D projection, anomaly score and clusters.

Whoever produces the embeddings — the encoder (``galexplorer.ssl.embed``), a file the user
already has (:mod:`galexplorer.explore.external`), or merged shards (:mod:`galexplorer.explore.merge`)
— hands them to :func:`build_store`, which writes the store atomically:

1. ``objects``, ``thumbnails`` (copied from the cutouts file) and ``objects/cutouts_row``;
2. ``embeddings`` (N, D) float32, filled in batches by the caller (memory flat in N), then
   read back in chunks to check every row is finite and to accumulate the covariance;
3. unless this is a shard: ``pca`` (+ ``pca_model/*``), ``projection``, ``scores/anomaly`` and
   ``scores/cluster`` (see :func:`analyse`).

Every stage draws a progress bar (:mod:`galexplorer.progress`) and its wall time goes into the
:class:`EmbedReport`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import progress
from ..errors import ConfigError, InputError, StoreError
from ..store.cutouts import CutoutStore
from ..store.embeddings import EmbeddingStoreWriter
from ..store.schema import ObjectTable
from .cluster import active_client, map_blocks, read_rows, shared_rows
from .pca import CovarianceAccumulator, PCAModel, check_variance
from .projection import EXTENSIONS, METHODS, UMAP_FIT_SAMPLE

log = logging.getLogger(__name__)

EmbeddingFiller = Callable[[h5py.Dataset], "CovarianceAccumulator | None"]
"""Fills the store's empty (N, D) float32 ``embeddings`` dataset, in batches, in store order; it
may return the rows' merged moments, having checked them finite (``embed --cluster``: the
workers accumulate them), and then the store pipeline does not read the embeddings back."""

CHUNK_BYTES = 1 << 20       # HDF5 chunk of the embeddings: ~1 MiB
SCAN_ROWS = 8192            # rows per read when checking and accumulating
PCA_BLOCK_ROWS = 65536      # rows per block of the PCA transform on --cluster's workers
SIMILARITY_INDEXES = ("auto", "sq8", "sq4", "none")
#: how many views of a stamp the embedding may average (:class:`galexplorer.ssl.embed.Encoder`'s ``views``): 1 (the
#: stamp as it is), 4 (its four 90-degree rotations) or 8 (those and their mirror images: the
#: symmetries of the pixel grid, the dihedral group D4)
VIEWS = (1, 4, 8)


def check_views(views) -> int:
    """``views`` as an int, or a :class:`ConfigError` when it is not one of :data:`VIEWS`."""
    if isinstance(views, bool) or not isinstance(views, (int, np.integer)) or int(views) not in VIEWS:
        raise ConfigError(f"views must be one of {', '.join(map(str, VIEWS))}, got {views!r}",
                          hint="8 averages the rotations and mirror images of each stamp; 1 embeds it as it is")
    return int(views)


@dataclass
class EmbedConfig:
    """Options of ``galexplorer embed`` after the encoder (saved as JSON in the store's ``config``).

    Attributes:
        batch_size: objects per encoder forward pass (used by the encoder, not here).
        device: "auto", "cpu" or "cuda" (encoder only).
        pca_variance: keep the principal components explaining this fraction of the variance.
        pca_standardise: scale each embedding dimension to unit variance before the PCA (for
            feature tables with mixed units; off for network embeddings).
        pca_max_components: an upper limit on the number of components (None: no limit).
        projection: "umap" or "pca".
        seed: seed of every random step (UMAP, isolation forest, mixture, samples).
        umap_neighbors, umap_min_dist: UMAP parameters (15, 0.01 as Mohale & Lochner 2024).
        umap_fit_sample: fit UMAP on this many random objects and place the rest by ``projection_extend``.
        projection_extend: "knn" (interpolate the sample's layout through an approximate-neighbour
            index; the default) or "transform" (``UMAP.transform``, ~50x slower per object).
        umap_deterministic: reproducible single-threaded UMAP (False: all cores, not reproducible).
        iforest_trees: trees of the isolation forest.
        n_clusters, cluster_prior: components and weight-concentration prior of the Bayesian
            Gaussian mixture.
        cluster_fit_sample: fit the mixture on this many random objects.
        similarity_index: the approximate faiss index written beside the store (``STORE.h5.faiss``)
            for similarity search: "auto" (8-bit codes from 200 000 objects), "sq8", "sq4" (4-bit
            codes: half the file, much lower recall), or "none".
        cluster: the Dask cluster the encoder ran on (``--cluster``; scheduler address and
            worker count, recorded for ``galexplorer info``), None for one process.
        features: the representations besides the embedding written from the cutouts for the
            loop to choose among (:mod:`galexplorer.explore.featuresets`): "auto" (raw-pixel PCA,
            and morphology up to 200 000 objects), "all" or "none".
        views: the encoder's embedding is the mean over this many symmetric views of each stamp
            (:data:`VIEWS`: 8 = its four 90-degree rotations and their mirror images; 1 = the
            stamp as it is; encoder only). A store written before this option held 1 view.
    """

    batch_size: int = 256
    device: str = "auto"
    pca_variance: float = 0.95
    projection: str = "umap"
    seed: int = 0
    umap_neighbors: int = 15
    umap_min_dist: float = 0.01
    umap_fit_sample: int = UMAP_FIT_SAMPLE
    umap_deterministic: bool = True
    projection_extend: str = "knn"
    iforest_trees: int = 200
    n_clusters: int = 20
    cluster_prior: float = 0.5
    cluster_fit_sample: int = 20000
    pca_standardise: bool = False
    pca_max_components: int | None = None
    similarity_index: str = "auto"
    cluster: str | None = None
    features: str = "auto"
    views: int = 8

    def validate(self) -> EmbedConfig:
        """Raise :class:`ConfigError` for an invalid value; return self."""
        check_variance(self.pca_variance)
        check_views(self.views)
        if self.projection not in METHODS:
            raise ConfigError(f"unknown projection {self.projection!r}", hint=f"use one of {', '.join(METHODS)}")
        if self.similarity_index not in SIMILARITY_INDEXES:
            raise ConfigError(f"unknown similarity index {self.similarity_index!r}",
                              hint=f"use one of {', '.join(SIMILARITY_INDEXES)}")
        if self.projection_extend not in EXTENSIONS:
            raise ConfigError(f"unknown projection extension {self.projection_extend!r}",
                              hint=f"use one of {', '.join(EXTENSIONS)}")
        positive = {"batch_size": self.batch_size, "umap_neighbors": self.umap_neighbors,
                    "umap_fit_sample": self.umap_fit_sample, "iforest_trees": self.iforest_trees,
                    "n_clusters": self.n_clusters, "cluster_fit_sample": self.cluster_fit_sample}
        for name, value in positive.items():
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if self.umap_neighbors < 2:
            raise ConfigError(f"umap_neighbors must be at least 2, got {self.umap_neighbors}")
        if not (self.umap_min_dist >= 0):
            raise ConfigError(f"umap_min_dist must be >= 0, got {self.umap_min_dist}")
        if not (self.cluster_prior > 0):
            raise ConfigError(f"cluster_prior must be > 0, got {self.cluster_prior}")
        if self.pca_max_components is not None and self.pca_max_components < 1:
            raise ConfigError(f"pca_max_components must be >= 1, got {self.pca_max_components}")
        from .featuresets import FEATURE_CHOICES

        if self.features not in FEATURE_CHOICES:
            raise ConfigError(f"unknown features choice {self.features!r}", hint=f"use one of {', '.join(FEATURE_CHOICES)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EmbedConfig:
        """Build from a saved dict, ignoring keys this version does not know."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


@dataclass
class EmbedReport:
    """What ``embed`` (or ``embed --merge``) did; ``summary()`` is what the CLI prints."""

    output: Path
    n: int
    dim: int
    n_pca: int | None = None
    variance_kept: float | None = None
    projection: str | None = None
    n_clusters_used: int | None = None
    shard: str | None = None
    source: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    feature_sets: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"wrote {self.output}: {self.n} objects, {self.dim}-d embeddings"
                 + (f" from {self.source}" if self.source else "")]
        if self.shard:
            lines.append(f"shard {self.shard} (join the shards with `galexplorer embed --merge`)")
        if self.n_pca is not None:
            lines.append(f"PCA: {self.n_pca} components keep {self.variance_kept:.1%} of the variance; "
                         f"projection: {self.projection}; clusters used: {self.n_clusters_used}")
        if self.feature_sets:
            lines.append("other representations for the loop: " + ", ".join(self.feature_sets))
        if self.seconds:
            lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


class _Timer:
    def __init__(self, report: EmbedReport, stage: str):
        self.report, self.stage = report, stage

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.report.seconds[self.stage] = self.report.seconds.get(self.stage, 0.0) + time.perf_counter() - self.t0


def shard_rows(n: int, shard: tuple[int, int] | None) -> slice:
    """The rows of shard ``i`` of ``k`` among ``n`` objects: the contiguous block
    ``[floor(i*n/k), floor((i+1)*n/k))`` in file order; all rows when ``shard`` is None.

    ``galexplorer embed --shard i/k`` (``ssl/embed.py``) and ``--merge`` both use this split (the
    one implementation; there were two, returning a slice and a tuple).
    """
    if shard is None:
        return slice(0, n)
    i, k = shard
    if not (k >= 1 and 0 <= i < k):
        raise ConfigError(f"shard {i}/{k}: need 0 <= i < n")
    return slice(i * n // k, (i + 1) * n // k)


def cutouts_link(cutouts_path: str | Path, output: str | Path) -> str:
    """The ``cutouts_path`` attribute: relative to the store's folder when the cutouts file lies in
    it or below (the pair can then be moved together), else absolute."""
    cut = Path(cutouts_path).resolve()
    folder = Path(output).resolve().parent
    try:
        return cut.relative_to(folder).as_posix()
    except ValueError:
        return str(cut)


def embedding_chunks(n: int, dim: int) -> tuple[int, int]:
    return (max(1, min(n, CHUNK_BYTES // (4 * max(dim, 1)))), dim)


def _resolve_rows(rows: slice | np.ndarray | None, n_cut: int) -> np.ndarray | slice:
    if rows is None:
        return slice(0, n_cut)
    if isinstance(rows, slice):
        return slice(*rows.indices(n_cut))
    rows = np.asarray(rows, dtype=np.int64)
    if rows.ndim != 1 or (len(rows) and (rows.min() < 0 or rows.max() >= n_cut)) or np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be increasing row numbers of the cutouts file")
    return rows


def build_store(output: str | Path, *, objects: ObjectTable, dim: int, fill: EmbeddingFiller | np.ndarray,
                config: EmbedConfig, cutouts: CutoutStore | None = None,
                rows: slice | np.ndarray | None = None, embedding_attrs: dict | None = None,
                store_attrs: dict | None = None, shard: tuple[int, int] | None = None,
                source: str | None = None) -> EmbedReport:
    """Write an embedding store (atomically: nothing appears under ``output`` on failure).

    Args:
        output: the store to write.
        objects: the N objects, in store order (when ``cutouts`` has more rows than ``rows``
            selects, a full-length table is subset with ``rows`` automatically).
        dim: D, the embedding dimension.
        fill: an (N, D) array, or a callable that fills the empty (N, D) float32 ``embeddings``
            dataset in batches (memory flat in N) and draws its own progress bar.
        config: :class:`EmbedConfig`.
        cutouts: the cutouts file the objects come from (thumbnails and the link are copied).
        rows: the cutouts rows of the store's objects, a slice (shards) or increasing row
            numbers (a subset); all rows when None.
        embedding_attrs: attributes of ``embeddings`` (method, backbone, checkpoint_sha256,
            config, source ...).
        store_attrs: extra root attributes.
        shard: ``(i, k)``: write only objects, thumbnails and embeddings, marked as shard i of k
            (see :func:`galexplorer.explore.merge.merge_shards`).
        source: a short description of where the embeddings came from (for the report).

    Returns:
        An :class:`EmbedReport`.

    Raises:
        ConfigError: invalid config.
        InputError: an embedding row is NaN/inf (the message names the object), ``fill`` has the
            wrong shape, or the embeddings do not vary.
        StoreError: the objects do not fit the cutouts rows.
    """
    config.validate()
    output = Path(output)
    if int(dim) < 1:
        raise InputError(f"embedding dimension must be at least 1, got {dim}")
    dim = int(dim)
    attrs: dict[str, Any] = {"config": config.to_dict()}
    if cutouts is not None:
        objects, rows = _match_cutouts(objects, rows, cutouts, output)
        attrs.update(cutouts_path=str(Path(cutouts.path).resolve()), cutouts_uuid=cutouts.uuid,
                     bands=list(cutouts.bands))
    n = len(objects)
    if shard is not None:
        attrs.update(_shard_attrs(shard, rows, cutouts, n))
    attrs.update(store_attrs or {})
    if cutouts is not None:
        attrs["cutouts_path"] = cutouts_link(cutouts.path, output)
    if isinstance(fill, np.ndarray) or not callable(fill):
        fill = _check_array(fill, n, dim)

    report = EmbedReport(output=output, n=n, dim=dim, source=source,
                         shard=None if shard is None else f"{shard[0]}/{shard[1]}")
    with EmbeddingStoreWriter(output, objects, attrs) as w:
        if cutouts is not None:
            cut_rows = np.arange(cutouts.n, dtype=np.int64)[rows]
            w.write("objects/cutouts_row", cut_rows,
                    attrs={"description": "row of each object in the linked cutouts file"})
            if cutouts.thumbnails is not None:
                with _Timer(report, "thumbnails"):
                    w.copy_thumbnails(cutouts.thumbnails, rows=rows)
        emb = w.create("embeddings", (n, dim), np.float32, attrs=embedding_attrs,
                       chunks=embedding_chunks(n, dim))
        acc = _fill_embeddings(emb, fill, objects, report, accumulate=shard is None)
        if shard is None:
            analyse(w, emb, config, report, acc)
            if cutouts is not None:
                write_feature_sets(w, cutouts, cut_rows, config, report)
    if shard is None:
        write_similarity_index(output, config, report)
    return report


def _match_cutouts(objects: ObjectTable, rows: slice | np.ndarray | None, cutouts: CutoutStore,
                   output: Path) -> tuple[ObjectTable, slice | np.ndarray]:
    """The objects and cutouts rows of the store: a full-length table is subset with ``rows``.

    Raises:
        StoreError: the objects do not fit the cutouts rows.
    """
    rows = _resolve_rows(rows, cutouts.n)
    n = len(objects)
    n_rows = len(range(cutouts.n)[rows]) if isinstance(rows, slice) else len(rows)
    if n == cutouts.n and n_rows != n:
        objects = objects.subset(rows)
        n = len(objects)
    if n_rows != n:
        raise StoreError(f"{n} objects for {n_rows} cutout rows", output)
    return objects, rows


def _shard_attrs(shard: tuple[int, int], rows: slice | np.ndarray | None, cutouts: CutoutStore | None,
                 n: int) -> dict[str, Any]:
    """The root attributes that mark a store as shard i of k (``merge_shards`` reads them)."""
    if isinstance(rows, slice):
        span = [rows.start, rows.stop]
    elif cutouts is None and rows is None:
        span = [0, n]
    else:
        raise ConfigError("a shard must be a contiguous block of rows (a slice)")
    return {"shard": f"{shard[0]}/{shard[1]}", "shard_rows": span,
            "cutouts_n": cutouts.n if cutouts is not None else None}


def _fill_embeddings(emb: h5py.Dataset, fill: EmbeddingFiller | np.ndarray, objects: ObjectTable, report: EmbedReport,
                     accumulate: bool) -> CovarianceAccumulator | None:
    """Write the (N, D) ``embeddings`` dataset from the array or the filler, and check every row is
    finite; returns the covariance accumulated on the way (None when not ``accumulate``)."""
    n = len(objects)
    filled = None
    with _Timer(report, "embeddings"):
        if isinstance(fill, np.ndarray):
            for a in progress.track(range(0, n, SCAN_ROWS), "embeddings"):
                emb[a:a + SCAN_ROWS] = fill[a:a + SCAN_ROWS]
        else:
            filled = fill(emb)
    if isinstance(filled, CovarianceAccumulator) and accumulate:
        return filled
    with _Timer(report, "check"):
        return scan_embeddings(emb, objects.ids, accumulate=accumulate)


def write_feature_sets(w: EmbeddingStoreWriter, cutouts: CutoutStore, rows: np.ndarray, config: EmbedConfig,
                       report: EmbedReport) -> None:
    """Write ``features/<name>`` for each set ``config.features`` asks for (see
    :mod:`galexplorer.explore.featuresets`)."""
    from .featuresets import compute_feature_sets, wanted_sets

    sets = wanted_sets(config.features, len(rows))
    if not sets:
        return
    with _Timer(report, "features"):
        for name, (data, attrs) in compute_feature_sets(cutouts, rows, sets, config.seed).items():
            w.write(f"features/{name}", data, attrs=attrs)
    report.feature_sets = list(sets)


def write_similarity_index(output: Path, config: EmbedConfig, report: EmbedReport) -> Path | None:
    """Build the store's approximate similarity index beside it (see ``config.similarity_index``),
    after the store itself is in place; a stale index of an earlier store there is removed."""
    from ..store.embeddings import EmbeddingStore
    from .similarity import ANN_MIN_ROWS, ann_path, build_ann_index

    kind = config.similarity_index
    if kind == "auto" and report.n < ANN_MIN_ROWS:
        kind = "none"
    if kind == "none":
        for stale in (ann_path(output), Path(str(ann_path(output)) + ".json")):
            stale.unlink(missing_ok=True)
        return None
    with _Timer(report, "similarity index"), EmbeddingStore(output) as store:
        return build_ann_index(store.embeddings, output, store.uuid, seed=config.seed, kind=kind)


def _check_array(fill, n: int, dim: int) -> np.ndarray:
    arr = np.asarray(fill)
    if arr.shape != (n, dim):
        raise InputError(f"embeddings of shape {arr.shape} do not fit {n} objects x {dim} dimensions")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"embeddings must be numeric, got dtype {arr.dtype}")
    return arr


def scan_embeddings(emb: h5py.Dataset | np.ndarray, ids: np.ndarray, accumulate: bool = True,
                    desc: str = "check embeddings") -> CovarianceAccumulator | None:
    """Read (N, D) embeddings in chunks: check every row is finite and accumulate the covariance.

    Raises:
        InputError: a row holds NaN or inf; the message names the first such object and counts them.
    """
    n, d = emb.shape
    acc = CovarianceAccumulator(d) if accumulate else None
    for a in progress.track(range(0, n, SCAN_ROWS), desc):
        block = np.asarray(emb[a:a + SCAN_ROWS], dtype=np.float32)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            first = a + int(np.argmax(bad))
            more = int(bad.sum()) + sum(int((~np.isfinite(np.asarray(emb[b:b + SCAN_ROWS]))).any(axis=1).sum())
                                        for b in range(a + SCAN_ROWS, n, SCAN_ROWS))
            raise InputError(f"the embedding of object {ids[first]!r} (row {first}) contains NaN or inf "
                             f"({more} such row{'s' if more != 1 else ''} in all)",
                             hint="remove or repair those rows (or those objects) and run embed again")
        if acc is not None:
            acc.add(block)
    return acc


def analyse(w: EmbeddingStoreWriter, emb: h5py.Dataset, config: EmbedConfig, report: EmbedReport,
            acc: CovarianceAccumulator | None = None) -> None:
    """Write ``pca``, ``pca_model/*``, ``projection``, ``scores/anomaly`` and ``scores/cluster``.

    Args:
        w: the open store writer.
        emb: the (N, D) embeddings dataset in it (already checked finite).
        config: the options.
        report: filled with the numbers and stage times.
        acc: a covariance already accumulated over ``emb`` (saves a pass), or None.
    """
    from .anomaly import isolation_forest_scores
    from .clustering import bayesian_gmm_clusters
    from .projection import project_2d

    n, d = emb.shape
    with _Timer(report, "pca"):
        if acc is None:
            acc = scan_embeddings(emb, w.objects.ids, desc="PCA (covariance)")
        model = acc.fit(config.pca_variance, config.pca_standardise, config.pca_max_components)
        feats = pca_transform(emb, model)
        info = model.info()
        w.write("pca", feats, attrs={**info, "explained_variance_ratio": np.asarray(
            model.explained_variance_ratio, np.float64), "explained_variance": np.asarray(
            model.explained_variance, np.float64), "description": "principal-component scores of the "
            "centred embeddings (not whitened)" + (", dimensions standardised first" if model.standardised
                                                    else "")})
        _write_model(w, model)
    report.n_pca = model.n_components
    report.variance_kept = float(np.sum(model.explained_variance_ratio))
    report.notes += model.notes
    log.info("PCA: %d of %d components keep %.1f%% of the variance", model.n_components, d,
             100 * report.variance_kept)

    with _Timer(report, "projection"):
        xy, pinfo = project_2d(feats, method=config.projection, n_neighbors=config.umap_neighbors,
                               min_dist=config.umap_min_dist, fit_sample=config.umap_fit_sample,
                               seed=config.seed, deterministic=config.umap_deterministic, return_info=True,
                               extend=config.projection_extend)
        w.write("projection", xy, attrs={"method": pinfo["method"], "params": pinfo,
                                         "input": "pca", "unit": "arbitrary"})
    report.projection = pinfo["method"]
    if "note" in pinfo:
        report.notes.append(f"projection: {pinfo['note']}, used {pinfo['method']}")

    with _Timer(report, "anomaly"):
        score = isolation_forest_scores(feats, n_trees=config.iforest_trees, seed=config.seed)
        w.write("scores/anomaly", score, attrs={
            "method": "isolation_forest", "input": "pca", "higher": "more anomalous",
            "params": {"n_estimators": config.iforest_trees, "max_samples": "auto", "seed": config.seed},
            "description": "isolation-forest anomaly score (negated sklearn score_samples), higher = more "
                           "anomalous"})

    with _Timer(report, "clustering"):
        labels = bayesian_gmm_clusters(feats, n_components=config.n_clusters,
                                       weight_concentration_prior=config.cluster_prior, seed=config.seed,
                                       fit_sample=config.cluster_fit_sample)
        w.write("scores/cluster", labels, attrs={
            "method": "bayesian_gaussian_mixture", "input": "pca", "categorical": True,
            "params": {"n_components": config.n_clusters, "weight_concentration_prior": config.cluster_prior,
                       "covariance_type": "full", "fit_sample": config.cluster_fit_sample,
                       "seed": config.seed},
            "description": "cluster label, 0 = the largest cluster"})
    report.n_clusters_used = int(len(np.unique(labels)))


def pca_transform(emb: h5py.Dataset | np.ndarray, model: PCAModel) -> np.ndarray:
    """The (N, k) float32 principal-component scores of every row of the (N, D) ``emb``.

    Within ``--cluster`` (:func:`~.cluster.scoring_on`) the rows are projected in blocks of
    ``PCA_BLOCK_ROWS`` on the workers, the model sent to each once; each worker reads its rows
    from the store itself when every worker can (:func:`~.cluster.shared_rows`: a shared
    filesystem or ``local:N``), else the client sends them with the block. Either way the same
    ``model.transform`` runs on the same rows: the scores equal one process's.
    """
    n = emb.shape[0]
    feats = np.empty((n, model.n_components), np.float32)
    client = active_client()
    if client is None:
        for a in progress.track(range(0, n, SCAN_ROWS), "PCA (transform)"):
            feats[a:a + SCAN_ROWS] = model.transform(emb[a:a + SCAN_ROWS])
        return feats
    source = shared_rows(client, emb) if isinstance(emb, h5py.Dataset) else None
    if source is not None:
        blocks = map_blocks(client, _transform_stored_block, n, PCA_BLOCK_ROWS, lambda a, b: (*source, a, b),
                            shared=(model,), desc="PCA (transform, cluster)")
    else:
        blocks = map_blocks(client, _transform_block, n, PCA_BLOCK_ROWS, lambda a, b: (np.asarray(emb[a:b]),),
                            shared=(model,), desc="PCA (transform, cluster: rows sent)")
    for a, b, scores in blocks:
        feats[a:b] = scores
    return feats


def _transform_block(model: PCAModel, rows: np.ndarray) -> np.ndarray:
    """Runs on a Dask worker: the scores of rows sent by the client, in the same sub-blocks as
    one process (``PCA_BLOCK_ROWS`` is a multiple of ``SCAN_ROWS``: the same BLAS calls)."""
    return np.concatenate([model.transform(rows[a:a + SCAN_ROWS]) for a in range(0, len(rows), SCAN_ROWS)])


def _transform_stored_block(model: PCAModel, path: str, name: str, a: int, b: int) -> np.ndarray:
    """Runs on a Dask worker: the scores of the store's rows ``a:b``, read here."""
    return _transform_block(model, read_rows(path, name, a, b))


def _write_model(w: EmbeddingStoreWriter, model) -> None:
    """The fitted PCA, so new vectors can be projected: coords = ((x - mean) / scale) @ components.T."""
    g = w.file.require_group("pca_model")
    for name in list(g):
        del g[name]
    g.create_dataset("mean", data=model.mean.astype(np.float64))
    g.create_dataset("scale", data=model.scale.astype(np.float64))
    g.create_dataset("components", data=model.components.astype(np.float64))
    g.create_dataset("explained_variance", data=model.explained_variance.astype(np.float64))
    g.attrs["description"] = "pca = ((embeddings - mean) / scale) @ components.T"
    g.attrs["standardised"] = bool(model.standardised)


def config_from_store_attrs(value: Any) -> EmbedConfig:
    """The :class:`EmbedConfig` recorded in a store's ``config`` attribute (JSON); a store
    written before ``views`` existed embedded 1 view, and says so."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = {}
    return EmbedConfig.from_dict({"views": 1, **(value if isinstance(value, dict) else {})})
