"""Similarity search ("more like this"): the top-k objects by cosine similarity of embeddings.

Exact, and fast at 10^6 × 512 without a special library. A plain scan reads the whole
normalised matrix (2 GB at 10^6 × 512 float32, ~160 ms here: memory bandwidth), so the index
also keeps a low-rank copy ``Y = V·P`` of the unit rows in their leading ``r`` uncentred
principal directions ``P`` (D, r), plus the norm ``ρᵢ`` of what ``P`` misses of each row. For a
unit query ``q`` with residual norm ``ρ_q``, Cauchy–Schwarz gives an upper bound on every
similarity from the small matrix alone::

    vᵢ·q ≤ Yᵢ·(Pᵀq) + ρᵢ·ρ_q

Rows whose bound reaches a threshold get their exact similarity from the full rows; the
threshold is lowered until the k-th best exact similarity is at least the threshold, so no
row left out could beat it. The answer equals a full scan's (ties aside). Embeddings from a
network are close to low-rank (95% of the variance in a few dozen components), where this
reads ~10× less memory; for isotropic noise the bound is loose and the search degrades to a
full scan, never to a wrong answer.

When ``faiss`` is installed, ``backend="faiss"`` uses its exact inner-product index instead.

At survey scale (N >= ``ANN_MIN_ROWS``) ``embed`` also writes an approximate faiss index beside
the store (:func:`build_ann_index`); :func:`index_for_store` loads it when present
(:class:`ApproximateIndex`: an IVF shortlist re-ranked exactly from the on-disk embeddings), so
the explorer needs neither the (N, D) matrix in memory nor a scan of it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import ConfigError, InputError
from .topk import top_k_positions

log = logging.getLogger(__name__)

CHUNK_ROWS = 65536
_MARGIN = np.float32(1e-4)  # float32 rounding of the bound (|error| ~ 1e-6); kept generous


def normalise_rows(X, chunk_rows: int = CHUNK_ROWS, desc: str | None = None) -> np.ndarray:
    """Rows of ``X`` scaled to unit Euclidean length (zero rows stay zero), float32.

    Args:
        X: (N, D) array or h5py dataset (read ``chunk_rows`` at a time).

    Returns:
        (N, D) float32, a new array.

    Raises:
        InputError: not 2-D, or NaN/inf values.
    """
    if len(X.shape) != 2:
        raise InputError(f"expected (N, D) embeddings, got shape {X.shape}")
    n, d = X.shape
    out = np.empty((n, d), np.float32)
    steps = range(0, n, chunk_rows)
    for a in (progress.track(steps, desc) if desc else steps):
        block = np.asarray(X[a:a + chunk_rows], dtype=np.float32)
        if not np.isfinite(block).all():
            raise InputError(f"the embeddings contain NaN or inf (rows {a}..{a + len(block) - 1})")
        norm = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float32))
        norm[norm == 0] = 1
        np.divide(block, norm[:, None], out=out[a:a + len(block)])
    return out


def _prepare_query(q, k: int, exclude, dim: int, n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A query vector checked and normalised, the excluded rows, and how many answers can come back.

    Raises:
        InputError: wrong number of dimensions, NaN or inf.
    """
    q = np.asarray(q, dtype=np.float32).ravel()
    if q.shape != (dim,):
        raise InputError(f"query has {q.size} dimensions, the index {dim}")
    nq = float(np.linalg.norm(q))
    if not np.isfinite(nq):
        raise InputError("the query vector contains NaN or inf")
    q = q / np.float32(nq) if nq > 0 else q
    ex = np.unique(np.asarray(exclude, dtype=np.int64)) if exclude is not None else np.empty(0, np.int64)
    return q, ex, max(0, min(int(k), n - len(ex)))


def _query_rows(index, n: int) -> np.ndarray:
    """The rows a query is made from, checked.

    Raises:
        InputError: an empty selection or rows out of range.
    """
    rows = np.atleast_1d(np.asarray(index, dtype=np.int64))
    if rows.size == 0:
        raise InputError("no objects selected to search from")
    if rows.min() < 0 or rows.max() >= n:
        raise InputError(f"object rows out of range 0..{n - 1}")
    return rows


class SimilarityIndex:
    """Exact top-k cosine-similarity search over N embeddings.

    Args:
        embeddings: (N, D) array or h5py dataset, any float dtype; rows are normalised.
        energy: the low-rank part keeps the leading directions holding this fraction of the
            rows' energy (sum of squared cosines); 0 disables it (plain chunked scan).
        max_rank: most directions kept (the scan of ``Y`` costs N·r).
        backend: ``"numpy"``, ``"faiss"`` (exact ``IndexFlatIP``; needs faiss installed), or
            ``"auto"`` (faiss when installed).
        vectors: already normalised rows to use as they are (no copy), instead of ``embeddings``.
        min_rows_for_bound: below this many rows the plain scan is used (it takes milliseconds).

    Raises:
        InputError: not (N, D), empty, or NaN/inf.
        ConfigError: ``backend="faiss"`` without faiss installed.
    """

    def __init__(self, embeddings, energy: float = 0.9, max_rank: int = 64, backend: str = "numpy",
                 vectors: np.ndarray | None = None, min_rows_for_bound: int = 100_000):
        if backend not in ("numpy", "faiss", "auto"):
            raise ConfigError(f"similarity backend must be numpy, faiss or auto, not {backend!r}")
        self.vectors = normalise_rows(embeddings, desc="normalise embeddings") if vectors is None else vectors
        if len(self.vectors) == 0:
            raise InputError("no embeddings to search")
        self.n, self.dim = self.vectors.shape
        self._lock = threading.Lock()
        self._faiss = None
        if backend in ("faiss", "auto"):
            try:
                import faiss  # optional
            except ImportError:
                if backend == "faiss":
                    raise ConfigError("backend 'faiss' needs the faiss package",
                                      hint="pip install faiss-cpu, or use backend='numpy'") from None
            else:
                self._faiss = faiss.IndexFlatIP(self.dim)
                self._faiss.add(self.vectors)
        self.rank = 0
        self.energy_kept = 1.0
        # below ~10^5 rows the plain scan takes a few ms: the bound would only add overhead
        if self._faiss is None and energy > 0 and self.n >= min_rows_for_bound:
            self._build_low_rank(float(energy), int(max_rank))

    @classmethod
    def from_store(cls, store, **kwargs) -> SimilarityIndex:
        """Index the embeddings of an :class:`~galexplorer.store.EmbeddingStore`.

        Raises:
            StoreError: the store has no embeddings.
        """
        store.require("embeddings")
        return cls(store.embeddings, **kwargs)

    # -- building -----------------------------------------------------------------------------
    def _build_low_rank(self, energy: float, max_rank: int, sample: int = 131072) -> None:
        V = self.vectors
        # the directions only decide how tight the bound is (it holds for any orthonormal P),
        # so they come from an evenly spaced sample of rows
        rows = np.unique(np.linspace(0, self.n - 1, min(self.n, sample)).astype(np.int64))
        gram = np.zeros((self.dim, self.dim), np.float64)
        for a in range(0, len(rows), CHUNK_ROWS):
            block = V[rows[a:a + CHUNK_ROWS]]
            gram += (block.T @ block).astype(np.float64)
        w, U = np.linalg.eigh(gram)
        w, U = w[::-1], U[:, ::-1]
        total = float(w.sum())
        if total <= 0:
            return
        r = int(np.searchsorted(np.cumsum(w) / total, energy) + 1)
        r = max(1, min(r, max_rank, self.dim))
        if r >= self.dim // 2:  # little gain over the full scan
            log.info("similarity index: the embeddings are not low-rank (%d of %d directions for %.0f%% "
                     "of the energy); using the plain scan", r, self.dim, 100 * energy)
            return
        self.P = np.ascontiguousarray(U[:, :r].astype(np.float32))
        self.Y = np.empty((self.n, r), np.float32)
        self.residual = np.empty(self.n, np.float32)
        for a in range(0, self.n, CHUNK_ROWS):
            y = V[a:a + CHUNK_ROWS] @ self.P
            self.Y[a:a + len(y)] = y
            self.residual[a:a + len(y)] = np.sqrt(np.maximum(
                1.0 - np.einsum("ij,ij->i", y.astype(np.float64), y.astype(np.float64)), 0.0))
        self.rank = r
        self.energy_kept = float(w[:r].sum() / total)
        log.info("similarity index: %d directions hold %.1f%% of the energy", r, 100 * self.energy_kept)

    # -- queries ------------------------------------------------------------------------------
    def query_vector(self, q: np.ndarray, k: int = 20, exclude: Sequence[int] | np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` rows most cosine-similar to the vector ``q``.

        Args:
            q: (D,) query (normalised here).
            k: how many.
            exclude: rows never returned (e.g. the query objects).

        Returns:
            ``(index, similarity)``: (k',) int64 best first (ties by lower index) and (k',) float32,
            k' = min(k, N − excluded).
        """
        q, ex, k = _prepare_query(q, k, exclude, self.dim, self.n)
        if k == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        if self._faiss is not None:
            return self._query_faiss(q, k, ex)
        if self.rank == 0:
            return self._query_scan(q, k, ex)
        return self._query_bounded(q, k, ex)

    def query(self, index: int | Sequence[int] | np.ndarray, k: int = 20, exclude_query: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` objects most similar to one object, or to the mean of a selection.

        Args:
            index: a row, or rows whose normalised mean is the query.
            k: how many.
            exclude_query: leave the query rows out of the answer.

        Returns:
            ``(index, similarity)``: (k',) int64 best first and (k',) float32 cosine similarities.

        Raises:
            InputError: an empty selection or rows out of range.
        """
        rows = _query_rows(index, self.n)
        q = self.vectors[rows].mean(axis=0, dtype=np.float64).astype(np.float32)
        return self.query_vector(q, k, rows if exclude_query else None)

    @staticmethod
    def _top(sims: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        order = top_k_positions(sims, rows, k)
        return rows[order].astype(np.int64), sims[order].astype(np.float32)

    def _query_scan(self, q, k, ex):
        sims = np.empty(self.n, np.float32)
        for a in range(0, self.n, CHUNK_ROWS):
            np.matmul(self.vectors[a:a + CHUNK_ROWS], q, out=sims[a:a + CHUNK_ROWS])
        sims[ex] = -np.inf
        return self._top(sims, np.arange(self.n), k)

    def _query_bounded(self, q, k, ex):
        yq = q @ self.P
        rq = np.float32(math.sqrt(max(1.0 - float(np.dot(yq.astype(np.float64), yq.astype(np.float64))), 0.0)))
        ub = self.Y @ yq
        if rq > 0:
            tmp = np.multiply(self.residual, rq)
            ub += tmp
        ub += _MARGIN
        ub[ex] = -np.inf
        # first threshold from a strided sample: aim at ~max(64 k, 4096) candidates
        stride = max(1, self.n // 16384)
        sample = ub[::stride]
        want = max(64 * k, 4096)
        pos = min(len(sample) - 1, max(0, int(math.ceil(want / self.n * len(sample)))))
        t = float(np.partition(sample, len(sample) - 1 - pos)[len(sample) - 1 - pos])
        seen = np.zeros(0, np.int64)
        sims_seen = np.zeros(0, np.float32)
        while True:
            cand = np.flatnonzero(ub >= t) if np.isfinite(t) else np.flatnonzero(np.isfinite(ub))
            new = np.setdiff1d(cand, seen, assume_unique=True)
            s_new = self.vectors[new] @ q
            seen = np.concatenate([seen, new])
            sims_seen = np.concatenate([sims_seen, s_new])
            if len(seen) >= k:
                kth = float(np.partition(sims_seen, len(sims_seen) - k)[len(sims_seen) - k])
                if kth >= t or not np.isfinite(t):
                    break
                t = kth  # every row with a bound below kth is beaten by k rows already seen
            else:
                t = -np.inf if len(cand) == np.count_nonzero(np.isfinite(ub)) else t - max(1e-3, abs(t))
        return self._top(sims_seen, seen, k)

    def _query_faiss(self, q, k, ex):
        kk = min(self.n, k + len(ex))
        with self._lock:
            sims, idx = self._faiss.search(q[None, :], kk)
        keep = ~np.isin(idx[0], ex) & (idx[0] >= 0)
        rows, s = idx[0][keep][:k].astype(np.int64), sims[0][keep][:k].astype(np.float32)
        return self._top(s, rows, k)


# -- the approximate index of a large store (faiss IVF), built by `embed` beside the store ----------

ANN_SUFFIX = ".faiss"
ANN_MIN_ROWS = 200_000        # below this the exact search above answers in well under 100 ms
ANN_MEMORY_BYTES = 2 << 30    # an 8-bit scalar-quantised index above this size uses 4-bit codes


def ann_path(store_path) -> Path:
    """``STORE.h5.faiss`` (its description in ``STORE.h5.faiss.json``)."""
    return Path(str(store_path) + ANN_SUFFIX)


def build_ann_index(embeddings, store_path, store_uuid: str, seed: int = 0, kind: str = "auto",
                    chunk_rows: int = CHUNK_ROWS) -> Path:
    """Build the approximate cosine index of a store's (N, D) embeddings into ``STORE.h5.faiss``.

    An inverted file of ~sqrt(N) k-means cells over the unit rows, each row stored as 8-bit
    scalar-quantised codes (``IVF,SQ8``: D bytes a row), or 4-bit ones (``IVF,SQ4``: D/2 bytes)
    when SQ8 would take more than ``ANN_MEMORY_BYTES``. (Product quantisation, ``IVF,PQ32``, was
    measured here: training took 255 s for 9 000 rows of 64-d, so it is not used.) The rows
    are read, normalised and added ``chunk_rows`` at a time: memory is the index, not the matrix.
    Both files are written atomically; the JSON names the store's uuid so a stale index is ignored.

    Args:
        embeddings: (N, D) array or h5py dataset.
        store_path: the store; the index goes beside it.
        store_uuid: the store's uuid.
        kind: ``"sq8"``, ``"sq4"`` or ``"auto"``.

    Returns:
        The path of the index file.
    """
    import json

    from ..store.atomic import atomic_output
    from .ann import faiss_threads

    n, d = embeddings.shape
    if kind == "auto":
        kind = "sq8" if n * d <= ANN_MEMORY_BYTES else "sq4"
    cells = int(max(1, min(math.sqrt(n), n // 64)))
    codes = "SQ8" if kind == "sq8" else "SQ4"
    factory = f"IVF{cells},{codes}"
    with faiss_threads(None) as faiss:
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        faiss.extract_index_ivf(index).cp.seed = int(seed)
        train = np.unique(np.linspace(0, n - 1, min(n, 64 * cells)).astype(np.int64))
        with progress.Bar("similarity index (train)", 1) as bar:
            index.train(normalise_rows(_RowsView(embeddings, train)))
            bar.update(1)
        for a in progress.track(range(0, n, chunk_rows), "similarity index (add)"):
            index.add(normalise_rows(embeddings[a:a + chunk_rows]))
        path = ann_path(store_path)
        with atomic_output(path) as tmp:
            faiss.write_index(index, str(tmp))
    meta = {"store_uuid": store_uuid, "n": int(n), "dim": int(d), "factory": factory, "metric": "inner product",
            "seed": int(seed), "normalised": True, "train_rows": int(len(train))}
    with atomic_output(Path(str(path) + ".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    log.info("similarity index %s: %s over %d rows", path, factory, n)
    return path


class _RowsView:
    """``source[rows]`` read in sorted chunks (h5py wants increasing indices), shaped like an array."""

    def __init__(self, source, rows: np.ndarray):
        self.source, self.rows = source, rows
        self.shape = (len(rows), source.shape[1])

    def __getitem__(self, sl: slice) -> np.ndarray:
        return np.asarray(self.source[self.rows[sl]], dtype=np.float32)


class ApproximateIndex:
    """Top-k cosine search through the store's faiss index, re-ranked exactly from the embeddings.

    faiss returns a shortlist of ``shortlist * k`` rows from the ``nprobe`` nearest cells; their
    exact similarities are computed from the on-disk embeddings and the best ``k`` returned. The
    same interface as :class:`SimilarityIndex` (``query``, ``query_vector``, ``n``, ``dim``).
    """

    def __init__(self, index, embeddings, nprobe: int = 32, shortlist: int = 4):
        self.index, self.embeddings = index, embeddings
        self.n, self.dim = int(index.ntotal), int(index.d)
        self.shortlist = int(shortlist)
        import faiss

        faiss.extract_index_ivf(index).nprobe = int(nprobe)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, store, **kwargs) -> ApproximateIndex | None:
        """The store's index when ``STORE.h5.faiss`` exists and was built for this store, else None."""
        import json

        path = ann_path(store.path)
        try:
            meta = json.loads(Path(str(path) + ".json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if meta.get("store_uuid") != store.uuid or meta.get("n") != store.n or not path.exists():
            log.info("ignoring %s: it was built for another store", path)
            return None
        import faiss

        return cls(faiss.read_index(str(path)), store.embeddings, **kwargs)

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), self.dim), np.float32)
        out[order] = np.asarray(self.embeddings[np.sort(rows)], dtype=np.float32)
        return normalise_rows(out)

    def query_vector(self, q: np.ndarray, k: int = 20, exclude: Sequence[int] | np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`SimilarityIndex.query_vector` (approximate shortlist, exact similarities)."""
        q, ex, k = _prepare_query(q, k, exclude, self.dim, self.n)
        if k == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        kk = min(self.n, self.shortlist * k + len(ex))
        with self._lock:
            _, idx = self.index.search(q[None, :], kk)
        cand = np.unique(idx[0][idx[0] >= 0])
        cand = cand[~np.isin(cand, ex)]
        sims = self._rows(cand) @ q
        order = top_k_positions(sims, cand, k)
        return cand[order].astype(np.int64), sims[order].astype(np.float32)

    def query(self, index, k: int = 20, exclude_query: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`SimilarityIndex.query`."""
        rows = _query_rows(index, self.n)
        q = self._rows(np.unique(rows)).mean(axis=0, dtype=np.float64).astype(np.float32)
        return self.query_vector(q, k, rows if exclude_query else None)


def index_for_store(store, **kwargs) -> SimilarityIndex | ApproximateIndex:
    """The search the explorer uses: the store's faiss index when ``embed`` built one (loaded
    lazily, memory: the codes), else the exact :class:`SimilarityIndex` over the embeddings (or
    over the PCA features when the store has no embeddings)."""
    if store.has("embeddings"):
        approx = ApproximateIndex.load(store)
        if approx is not None:
            return approx
        return SimilarityIndex(store.embeddings, **kwargs)
    return SimilarityIndex(store.pca, **kwargs)
