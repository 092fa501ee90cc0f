"""Approximate nearest neighbours with faiss: the one place that builds a faiss index.

Two users: the projection's extension to the rows outside the UMAP fit sample (Euclidean
neighbours among the sample, :func:`knn`) and the similarity index (inner products of unit rows,
:mod:`galexplorer.explore.similarity`).

The index is an inverted file (IVF): k-means cells over the rows, and a query scans only the
``nprobe`` cells nearest to it. Below ``EXACT_ROWS`` rows an exact flat index is used (a scan
costs less than training the cells). faiss's k-means is seeded, and faiss is limited to
``threads`` OpenMP threads while it runs.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager

import numpy as np

from .. import progress

log = logging.getLogger(__name__)

EXACT_ROWS = 20000
QUERY_CHUNK = 65536


@contextmanager
def faiss_threads(n: int | None):
    """Run faiss with at most ``n`` OpenMP threads inside the block (None: leave as is)."""
    import faiss

    if n is None:
        yield faiss
        return
    old = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(max(1, int(n)))
    try:
        yield faiss
    finally:
        faiss.omp_set_num_threads(old)


def n_cells(n: int) -> int:
    """IVF cells for ``n`` rows: ~4·sqrt(n), with at least ~39 training rows per cell."""
    return int(max(1, min(4 * math.sqrt(n), n // 39)))


def build_index(x: np.ndarray, metric: str = "l2", seed: int = 0, cells: int | None = None,
                nprobe: int = 16, threads: int | None = None, train_rows: int = 256 * 1024):
    """A faiss index over the (n, d) float32 rows ``x`` (added in order: faiss ids = row numbers).

    Args:
        x: (n, d) rows (converted to contiguous float32).
        metric: ``"l2"`` (Euclidean) or ``"ip"`` (inner product; cosine for unit rows).
        seed: seed of the k-means that places the cells.
        cells: IVF cells (default :func:`n_cells`); 0 forces an exact flat index.
        nprobe: cells scanned per query.
        threads: OpenMP threads for faiss (None: faiss's default).
        train_rows: the cells are trained on at most this many evenly spaced rows.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    with faiss_threads(threads) as faiss:
        mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        cells = n_cells(n) if cells is None else int(cells)
        if n < EXACT_ROWS or cells < 2:
            index = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
            index.add(x)
            return index
        quantizer = faiss.IndexFlatL2(d) if metric == "l2" else faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, cells, mt)
        index.cp.seed = int(seed)
        rows = np.unique(np.linspace(0, n - 1, min(n, train_rows)).astype(np.int64))
        index.train(x[rows])
        index.add(x)
        index.nprobe = int(min(nprobe, cells))
        return index


def knn(index, q: np.ndarray, k: int, threads: int | None = None, desc: str | None = None,
        chunk: int = QUERY_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest indexed rows of each query row: ``(distances, ids)``, each (m, k).

    Distances are squared Euclidean for an L2 index, inner products for an IP index; ids are -1
    where fewer than ``k`` rows were found in the probed cells. ``desc``: draw a progress bar.
    """
    q = np.asarray(q)
    m = len(q)
    dist = np.empty((m, k), np.float32)
    ids = np.empty((m, k), np.int64)
    bar = progress.Bar(desc, m, unit="obj") if desc else None
    with faiss_threads(threads):
        for a in range(0, m, chunk):
            block = np.ascontiguousarray(q[a:a + chunk], dtype=np.float32)
            dist[a:a + len(block)], ids[a:a + len(block)] = index.search(block, k)
            if bar is not None:
                bar.update(len(block))
    if bar is not None:
        bar.close()
    return dist, ids
