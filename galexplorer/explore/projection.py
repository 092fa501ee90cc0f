"""2-D projection of feature vectors for the explorer's scatter: UMAP (default) or PCA.

UMAP at survey scale: fitting UMAP costs more than linear time, so for N above ``fit_sample``
we fit on a random sample of that size and place the other rows by one of two extensions:

* ``extend="knn"`` (default): each row's ``n_neighbors`` nearest sample rows are found through
  an approximate-neighbour index (faiss IVF, :mod:`galexplorer.explore.ann`) and the row is put
  at their 2-D positions' mean, weighted as UMAP weights a neighbour graph's edges
  (``exp(-(d - d_nearest) / sigma)``). This is UMAP's own initialisation of ``transform``
  without its optimisation epochs: ~50x cheaper per row, and the neighbourhood preservation
  (trustworthiness) is within 0.01 of ``transform``'s (benchmarks/bench_survey.py).
* ``extend="transform"``: ``UMAP.transform`` in chunks (the nearest neighbours among the
  sample, then a short optimisation against the fixed sample layout).

See benchmarks/bench_projection.py and benchmarks/bench_survey.py for the times.

Reproducibility: with ``deterministic=True`` (the default) UMAP runs with ``random_state=seed``,
which makes umap-learn single-threaded; the same seed gives the same projection. With
``deterministic=False`` it uses all cores and the layout changes from run to run.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from .. import progress
from ..errors import ConfigError
from .cluster import active_client, map_blocks
from .validate import feature_matrix

log = logging.getLogger(__name__)

UMAP_FIT_SAMPLE = 20000
TRANSFORM_CHUNK = 32768
UMAP_EXACT_ROWS = 4096   # umap-learn's own threshold: below it, it computes all distances exactly
MIN_UMAP_ROWS = 8   # below this a UMAP layout means nothing; use the first two principal components
METHODS = ("umap", "pca")
EXTENSIONS = ("knn", "transform")


def _pca_2d(x: np.ndarray) -> np.ndarray:
    from .pca import fit_pca_model

    n, d = x.shape
    out = np.zeros((n, 2), np.float32)
    if n < 2 or not np.ptp(x, axis=0).any():
        return out
    model = fit_pca_model(x, variance=1.0, max_components=2)
    out[:, :model.n_components] = model.transform(x)
    return out


def project_2d(x: np.ndarray, method: str = "umap", n_neighbors: int = 15, min_dist: float = 0.01,
               fit_sample: int = UMAP_FIT_SAMPLE, seed: int = 0, deterministic: bool = True,
               transform_chunk: int = TRANSFORM_CHUNK, return_info: bool = False, extend: str = "knn",
               threads: int | None = None) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Project (N, D) features to 2-D.

    Args:
        x: (N, D) float features (normally the store's PCA features).
        method: ``"umap"`` or ``"pca"`` (the first two principal components).
        n_neighbors, min_dist: UMAP parameters (15 and 0.01 as Mohale & Lochner); n_neighbors is
            capped to N - 1.
        fit_sample: fit UMAP on at most this many random rows and transform the rest.
        seed: random seed (sample choice and UMAP).
        deterministic: single-threaded, reproducible UMAP (see the module docstring).
        transform_chunk: rows per ``UMAP.transform`` call.
        return_info: also return a dict of the parameters actually used.
        extend: how rows outside the fit sample are placed: ``"knn"`` (interpolation through an
            approximate-neighbour index) or ``"transform"`` (``UMAP.transform``).
        threads: faiss threads for the ``"knn"`` extension (None: all cores).

    Returns:
        (N, 2) float32 coordinates (arbitrary units), and the info dict when ``return_info``.

    Raises:
        ConfigError: an unknown method or invalid parameter.
        InputError: X is not 2-D, is empty, or has NaN/inf.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown projection {method!r}", hint=f"use one of {', '.join(METHODS)}")
    if extend not in EXTENSIONS:
        raise ConfigError(f"unknown projection extension {extend!r}", hint=f"use one of {', '.join(EXTENSIONS)}")
    if n_neighbors < 2 or not (0.0 <= min_dist) or fit_sample < 2:
        raise ConfigError(f"invalid UMAP parameters n_neighbors={n_neighbors}, min_dist={min_dist}, "
                          f"fit_sample={fit_sample}", hint="n_neighbors >= 2, min_dist >= 0, fit_sample >= 2")
    x = np.ascontiguousarray(feature_matrix(x, "the projection"))
    n = len(x)
    info: dict[str, Any] = {"method": method}
    if method == "umap" and n < MIN_UMAP_ROWS:
        log.info("only %d objects: using the first two principal components instead of UMAP", n)
        info.update(method="pca", requested="umap", note=f"UMAP needs at least {MIN_UMAP_ROWS} objects")
        method = "pca"
    if method == "pca":
        with progress.Bar("projection (PCA)", 1) as bar:
            out = _pca_2d(x)
            bar.update(1)
    else:
        out = _umap(x, n_neighbors, min_dist, fit_sample, seed, deterministic, transform_chunk, info, extend,
                    threads)
    return (out, info) if return_info else out


def _umap(x: np.ndarray, n_neighbors: int, min_dist: float, fit_sample: int, seed: int,
          deterministic: bool, transform_chunk: int, info: dict[str, Any], extend: str = "knn",
          threads: int | None = None) -> np.ndarray:
    n = len(x)
    k = int(min(n_neighbors, n - 1))
    sample = n > fit_sample
    fit_rows = np.sort(np.random.default_rng(seed).choice(n, fit_sample, replace=False)) if sample \
        else np.arange(n)
    # the fit sample's neighbour graph from faiss (UMAP's own NN-descent is recompiled by numba on
    # every run: ~1 min on two busy cores); below UMAP_EXACT_ROWS UMAP computes it exactly itself,
    # and UMAP.transform needs UMAP's own NN-descent index
    faiss_graph = extend == "knn" and len(fit_rows) >= UMAP_EXACT_ROWS
    info.update(n_neighbors=k, min_dist=float(min_dist), seed=int(seed), deterministic=bool(deterministic),
                fit_rows=int(len(fit_rows)), transformed_rows=int(n - len(fit_rows)), metric="euclidean",
                knn_graph="faiss" if faiss_graph else "umap")
    fit_x = x[fit_rows]
    # force_approximation_algorithm: transform() on umap's exact small-data path calls a numba
    # metric per pair from Python (~5 ms per object); the approximate index is ~100x faster
    fit_args = (fit_x, k, float(min_dist), int(seed), bool(deterministic), faiss_graph,
                sample and extend == "transform")
    out = np.empty((n, 2), np.float32)
    client = active_client()
    with progress.Bar(f"projection (UMAP fit on {len(fit_rows)})", 1) as bar:
        if client is not None and extend == "knn":
            # --cluster: the fit on one worker, so the client never loads umap, numba and LLVM
            # (~160 MB of the client's peak at 10^6 objects, docs/scaling.md); the same function
            # on the same rows (its layout may still differ from one process's: UMAP's fit is not
            # reproducible across processes on every data set, docs/scaling.md)
            layout, index_bytes, version = client.submit(_fit_on_worker, *fit_args, threads, pure=False).result()
            reducer = None
            index = _deserialize_index(index_bytes)
        else:
            reducer, layout, index, version = _fit_sample_layout(*fit_args, threads)
        out[fit_rows] = layout
        bar.update(1)
    info["umap_version"] = version
    if sample and extend == "knn":
        info.update(extend="knn")
        rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
        out[rest] = knn_extend(x[fit_rows], out[fit_rows], x, rest, k, seed=seed, threads=threads, index=index)
    elif sample:
        info.update(extend="transform")
        rest = np.setdiff1d(np.arange(n), fit_rows, assume_unique=True)
        with warnings.catch_warnings(), progress.Bar("projection (UMAP transform)", len(rest), unit="obj") as bar:
            warnings.simplefilter("ignore")
            for a in range(0, len(rest), transform_chunk):
                rows = rest[a:a + transform_chunk]
                out[rows] = reducer.transform(x[rows])
                bar.update(len(rows))
    if not np.isfinite(out).all():  # a degenerate layout (e.g. all points identical)
        log.warning("UMAP gave a non-finite layout; using the first two principal components")
        info.update(method="pca", requested="umap", note="UMAP layout was not finite")
        return _pca_2d(x)
    return out


def _fit_sample_layout(fit_x: np.ndarray, k: int, min_dist: float, seed: int, deterministic: bool,
                       faiss_graph: bool, force_approximation: bool, threads: int | None = None) -> tuple:
    """UMAP fitted on the (m, D) sample ``fit_x``: ``(reducer, (m, 2) float32 layout, the faiss
    index of the sample or None, umap's version)``; the neighbour graph from faiss when
    ``faiss_graph``."""
    import umap  # imported here: numba compilation makes it slow to import

    cache_umap_compilation()
    index = None
    precomputed: tuple = (None, None, None)
    if faiss_graph:
        from .ann import build_index

        fit_x32 = np.ascontiguousarray(fit_x, dtype=np.float32)
        index = build_index(fit_x32, "l2", seed=seed, threads=threads)
        precomputed = sample_knn_graph(index, fit_x32, k, threads=threads)
    reducer = umap.UMAP(n_neighbors=k, min_dist=min_dist, n_components=2, metric="euclidean",
                        random_state=seed if deterministic else None, n_jobs=1 if deterministic else -1,
                        transform_seed=seed, init="spectral" if len(fit_x) > k + 2 else "random",
                        low_memory=True, precomputed_knn=precomputed,
                        force_approximation_algorithm=force_approximation)
    with warnings.catch_warnings():
        # umap warns about n_jobs with a seed, disconnected graphs in tiny data, numba's TBB,
        # a precomputed graph without its NN-descent index (transform is not used then), ...
        warnings.simplefilter("ignore")
        layout = reducer.fit_transform(fit_x)
    return reducer, np.asarray(layout, np.float32), index, umap.__version__


def _fit_on_worker(*args) -> tuple:
    """Runs on a Dask worker: :func:`_fit_sample_layout`, its index as bytes (the reducer stays there)."""
    _, layout, index, version = _fit_sample_layout(*args)
    if index is None:
        return layout, None, version
    import faiss

    return layout, faiss.serialize_index(index), version


def _deserialize_index(index_bytes):
    if index_bytes is None:
        return None
    import faiss

    return faiss.deserialize_index(index_bytes)


def sample_knn_graph(index, fit_x: np.ndarray, k: int, threads: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray, None]:
    """The ``k``-nearest-neighbour graph of the rows of ``index`` (``fit_x``, in order) in UMAP's
    ``precomputed_knn`` form: each row first (distance 0), then its ``k - 1`` nearest other rows.

    Returns:
        ``(ids, distances, None)``: (m, k) int32 row numbers (-1 where the probed cells held too
        few rows) and (m, k) float32 Euclidean distances (inf for -1); no search index.
    """
    from .ann import knn

    m = len(fit_x)
    d2, ids = knn(index, fit_x, k + 1, threads=threads)
    own = np.arange(m)[:, None]
    # the row itself, or a missing neighbour, moves to the end (stable: the others keep their order)
    order = np.argsort((ids == own) | (ids < 0), axis=1, kind="stable")[:, :k - 1]
    ids = np.take_along_axis(ids, order, axis=1)
    ids[ids == own] = -1   # only when fewer than k - 1 other rows were found
    dist = np.sqrt(np.maximum(np.take_along_axis(d2, order, axis=1), 0))
    dist[ids < 0] = np.inf
    ids = np.concatenate([own, ids], axis=1).astype(np.int32)
    dist = np.concatenate([np.zeros((m, 1), np.float32), dist], axis=1).astype(np.float32)
    return ids, dist, None


_UMAP_CACHE_ON = False


def cache_umap_compilation() -> int:
    """Turn on numba's on-disk cache for umap's compiled functions; returns how many.

    umap-learn declares most of its numba functions without ``cache=True``, so every process
    compiled them again (~30-60 s on two busy cores, more than the fit itself at 10^5). With the
    cache on, the first run in an environment compiles and writes the machine code (into
    ``umap/__pycache__``, or ``NUMBA_CACHE_DIR``, or numba's per-user cache folder when the
    package folder is read-only), and later runs load it. numba keys the cache on the source
    file and its own version, so an upgraded umap compiles afresh. Functions numba cannot cache
    are compiled as before.
    """
    global _UMAP_CACHE_ON
    if _UMAP_CACHE_ON:
        return 0
    import sys

    try:
        from numba.core.caching import NullCache
        from numba.core.dispatcher import Dispatcher
    except ImportError:  # a numba that moved these: compile as before
        return 0
    count = 0
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "umap" or name.startswith("umap.")):
            continue
        for obj in list(vars(module).values()):
            if isinstance(obj, Dispatcher) and isinstance(getattr(obj, "_cache", None), NullCache):
                try:
                    obj.enable_caching()
                    count += 1
                except Exception as exc:  # noqa: BLE001 - an uncachable function is compiled as before
                    log.debug("numba cache not enabled for %s: %s", obj, exc)
    _UMAP_CACHE_ON = True
    log.debug("numba on-disk cache enabled for %d umap functions", count)
    return count


def knn_extend(fit_x: np.ndarray, fit_xy: np.ndarray, x: np.ndarray, rows: np.ndarray, k: int, seed: int = 0,
               threads: int | None = None, chunk: int = TRANSFORM_CHUNK, index=None) -> np.ndarray:
    """2-D positions of ``x[rows]`` interpolated from the fitted sample's layout.

    Args:
        fit_x: (m, D) features of the fit sample; fit_xy: their (m, 2) layout.
        x: (N, D) features (only ``x[rows]`` is read, ``chunk`` rows at a time).
        rows: the rows to place.
        k: neighbours among the sample.
        index: a faiss index over ``fit_x`` already built (:func:`galexplorer.explore.ann.build_index`).

    Returns:
        (len(rows), 2) float32: each row at the weighted mean of its neighbours' positions, with
        UMAP's edge weights ``exp(-(d - d_nearest) / sigma)``, sigma the mean of ``d - d_nearest``.
        Within ``--cluster`` (:func:`~.cluster.scoring_on`) the blocks of ``chunk`` rows are
        placed on the workers, the sample and its index sent to each once: the same positions.
    """
    from .ann import build_index, knn

    if index is None:
        index = build_index(fit_x, "l2", seed=seed, threads=threads)
    k = int(min(k, len(fit_x)))
    out = np.empty((len(rows), 2), np.float32)
    client = active_client()
    if client is not None:      # --cluster: the sample and its index sent once, the rows placed in blocks there
        import faiss

        shared = (np.ascontiguousarray(fit_x, np.float32), np.asarray(fit_xy, np.float32),
                  faiss.serialize_index(index))
        for a, b, xy in map_blocks(client, _extend_block, len(rows), chunk,
                                   lambda a, b: (np.ascontiguousarray(x[rows[a:b]], dtype=np.float32), k),
                                   shared=shared, desc="projection (kNN extension, cluster)"):
            out[a:b] = xy
        return out
    with progress.Bar("projection (kNN extension)", len(rows), unit="obj") as bar:
        for a in range(0, len(rows), chunk):
            block = np.ascontiguousarray(x[rows[a:a + chunk]], dtype=np.float32)
            d2, ids = knn(index, block, k, threads=threads)
            missing = ids < 0
            if missing.all(axis=1).any():  # no neighbour in the probed cells: search them all
                lost = np.flatnonzero(missing.all(axis=1))
                old = index.nprobe
                index.nprobe = index.nlist
                d2[lost], ids[lost] = knn(index, block[lost], k, threads=threads)
                index.nprobe = old
                missing = ids < 0
            d = np.sqrt(np.maximum(d2, 0))
            d[missing] = np.inf
            rho = d[:, :1]
            gap = np.where(missing, 0.0, d - rho)
            sigma = gap.sum(axis=1, keepdims=True) / np.maximum((~missing).sum(axis=1, keepdims=True), 1)
            w = np.where(missing, 0.0, np.exp(-gap / np.maximum(sigma, 1e-12)))
            w /= w.sum(axis=1, keepdims=True)
            out[a:a + len(block)] = np.einsum("ik,ikj->ij", w, fit_xy[np.maximum(ids, 0)])
            bar.update(len(block))
    return out


def _extend_block(fit_x: np.ndarray, fit_xy: np.ndarray, index_bytes: np.ndarray, block: np.ndarray,
                  k: int) -> np.ndarray:
    """Runs on a Dask worker: :func:`knn_extend` of one block of rows (the index rebuilt from its
    bytes: a few MB for the 20 000-row sample, read in milliseconds)."""
    import faiss

    from .cluster import worker_threads

    index = faiss.deserialize_index(index_bytes)
    return knn_extend(fit_x, fit_xy, block, np.arange(len(block)), k, threads=worker_threads(), index=index)
