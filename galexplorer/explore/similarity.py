"""Similarity search ("more like this"): the top-k objects by cosine similarity of embeddings.

Two searches, both from faiss:

* :class:`SimilarityIndex` — exact: the unit rows in a faiss ``IndexFlatIP`` (a BLAS scan of
  every row). Used for stores below ``ANN_MIN_ROWS`` objects, where a scan takes a few
  milliseconds.
* :class:`ApproximateIndex` — at survey scale (N >= ``ANN_MIN_ROWS``) ``embed`` writes an IVF
  index with scalar-quantised codes beside the store (:func:`build_ann_index`); a query takes a
  shortlist from it and re-ranks it exactly from the on-disk embeddings, so the explorer needs
  neither the (N, D) matrix in memory nor a scan of it.

:func:`index_for_store` picks the one the explorer uses. (A hand-written exact scan pruned by a
low-rank Cauchy-Schwarz bound served before; benchmarks/bench_similarity.py measures it against
these, and docs/scaling.md says why it was removed.)
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import InputError
from .ann import faiss_threads
from .cluster import active_client, map_blocks, read_rows, shared_rows, worker_threads
from .topk import top_k_positions

log = logging.getLogger(__name__)

CHUNK_ROWS = 65536


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
    """Exact top-k cosine-similarity search over N embeddings (faiss ``IndexFlatIP`` of the unit rows).

    Args:
        embeddings: (N, D) array or h5py dataset, any float dtype; rows are normalised and added
            ``CHUNK_ROWS`` at a time (memory: the index's one float32 copy of the rows).

    Attributes:
        vectors: the (N, D) float32 unit rows, a read-only view of the index's own storage.

    Raises:
        InputError: not (N, D), empty, or NaN/inf.
    """

    def __init__(self, embeddings):
        import faiss

        if len(embeddings.shape) != 2:
            raise InputError(f"expected (N, D) embeddings, got shape {embeddings.shape}")
        self.n, self.dim = (int(v) for v in embeddings.shape)
        if self.n == 0:
            raise InputError("no embeddings to search")
        self._faiss = faiss.IndexFlatIP(self.dim)
        steps = range(0, self.n, CHUNK_ROWS)
        for a in (progress.track(steps, "similarity index") if self.n > CHUNK_ROWS else steps):
            self._faiss.add(normalise_rows(embeddings[a:a + CHUNK_ROWS]))
        self.vectors = faiss.rev_swig_ptr(self._faiss.get_xb(), self.n * self.dim).reshape(self.n, self.dim)
        self.vectors.flags.writeable = False
        self._lock = threading.Lock()

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
        kk = min(self.n, k + len(ex))
        # one thread: a single query gains nothing from OpenMP, and on busy cores faiss's spinning
        # threads made it 4-10x slower (bench_similarity.py)
        with self._lock, faiss_threads(1):
            sims, idx = self._faiss.search(q[None, :], kk)
        keep = ~np.isin(idx[0], ex) & (idx[0] >= 0)
        rows, s = idx[0][keep][:k].astype(np.int64), sims[0][keep][:k].astype(np.float32)
        order = top_k_positions(s, rows, k)
        return rows[order], s[order]

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


# -- the approximate index of a large store (faiss IVF), built by `embed` beside the store ----------

ANN_SUFFIX = ".faiss"
ANN_MIN_ROWS = 200_000        # below this the exact scan above answers in a few ms
# Adding a row costs a distance to every cell centre (N·cells·D flops: with sqrt(N) cells, 3 162 at
# 10^7, that alone took longer than the rest of embed); past ~10^6 rows the cells grow instead, and
# a query's nprobe cells hold more rows (32 of 1 024 cells: ~3% of the rows, codes of D bytes)
ANN_MAX_CELLS = 1024


def ann_path(store_path) -> Path:
    """``STORE.h5.faiss`` (its description in ``STORE.h5.faiss.json``)."""
    return Path(str(store_path) + ANN_SUFFIX)


def build_ann_index(embeddings, store_path, store_uuid: str, seed: int = 0, kind: str = "auto",
                    chunk_rows: int = CHUNK_ROWS) -> Path:
    """Build the approximate cosine index of a store's (N, D) embeddings into ``STORE.h5.faiss``.

    An inverted file of ~sqrt(N) k-means cells (at most ``ANN_MAX_CELLS``) over the unit rows,
    each row stored as 8-bit scalar-quantised codes (``IVF,SQ8``: D bytes a row; ``"sq4"``: 4-bit
    codes, D/2 bytes). The index is not held in memory to be searched: :class:`ApproximateIndex`
    maps the file, so past the machine's memory the operating system pages in the few cells a
    query reads. That is why ``"auto"`` means SQ8 at every size: smaller codes cost recall
    (recall@20 after the exact re-rank, 2·10^5 × 128 synthetic rows: SQ8 0.975, SQ6 0.83, SQ4
    0.47, PQ32 0.63 after 297 s of training; docs/scaling.md). The rows are read, normalised
    and added ``chunk_rows`` at a time: memory is the index, not the matrix. Within ``--cluster``
    (:func:`~.cluster.scoring_on`) the index is trained here and the blocks of rows are encoded
    on the workers (:func:`_add_encoded_on_cluster`): the same index (see there). Both files are
    written atomically; the JSON names the store's uuid so a stale index is ignored.

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

    n, d = embeddings.shape
    with faiss_threads(None) as faiss:
        index, factory, n_train = _train_ann_index(embeddings, seed, kind)
        client = active_client()
        if client is not None:      # --cluster: the rows' codes computed in blocks on the workers
            _add_encoded_on_cluster(client, index, embeddings, chunk_rows)
        else:
            for a in progress.track(range(0, n, chunk_rows), "similarity index (add)"):
                index.add(normalise_rows(embeddings[a:a + chunk_rows]))
        path = ann_path(store_path)
        with atomic_output(path) as tmp:
            faiss.write_index(index, str(tmp))
    meta = {"store_uuid": store_uuid, "n": int(n), "dim": int(d), "factory": factory, "metric": "inner product",
            "seed": int(seed), "normalised": True, "train_rows": n_train}
    with atomic_output(Path(str(path) + ".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    log.info("similarity index %s: %s over %d rows", path, factory, n)
    return path


def _train_ann_index(embeddings, seed: int, kind: str) -> tuple[object, str, int]:
    """The trained, empty IVF index of :func:`build_ann_index`, its factory string and the
    number of rows it was trained on (64 a cell, spread evenly over the store)."""
    import faiss

    n, d = embeddings.shape
    cells = int(max(1, min(math.sqrt(n), n // 64, ANN_MAX_CELLS)))
    factory = f"IVF{cells},{'SQ4' if kind == 'sq4' else 'SQ8'}"
    index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
    faiss.extract_index_ivf(index).cp.seed = int(seed)
    train = np.unique(np.linspace(0, n - 1, min(n, 64 * cells)).astype(np.int64))
    with progress.Bar("similarity index (train)", 1) as bar:
        index.train(normalise_rows(_RowsView(embeddings, train)))
        bar.update(1)
    return index, factory, int(len(train))


def _add_encoded_on_cluster(client, index, embeddings, chunk_rows: int) -> None:
    """Fill the trained, empty IVF ``index`` with every row of ``embeddings``: the trained index
    is sent to every worker once, each block's rows are normalised, assigned to their cell and
    scalar-quantised there (faiss ``sa_encode``: the cell number and the codes), and the client
    appends the codes in row order (``add_sa_codes``, a copy into the cells' lists). The workers
    read their rows from the store when they can (:func:`~.cluster.shared_rows`), else the client
    sends them. The same faiss code runs on the same rows, so the cells and codes are one
    process's, except for a row within rounding of two cells: faiss picks between them by its
    BLAS partition (threads x block), as one process does differently with one and with two
    threads (114 of 10^5 rows of bench_cluster's data); with the same threads, the same file."""
    import faiss
    import h5py

    blob = faiss.serialize_index(index)
    source = shared_rows(client, embeddings) if isinstance(embeddings, h5py.Dataset) else None
    if source is not None:
        blocks = map_blocks(client, _encode_stored_block, embeddings.shape[0], chunk_rows,
                            lambda a, b: (*source, a, b), shared=(blob,), desc="similarity index (encode, cluster)")
    else:
        blocks = map_blocks(client, _encode_block, embeddings.shape[0], chunk_rows,
                            lambda a, b: (np.asarray(embeddings[a:b]),), shared=(blob,),
                            desc="similarity index (encode, cluster: rows sent)")
    for _, _, codes in blocks:
        index.add_sa_codes(codes)


def _encode_block(blob: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Runs on a Dask worker: the (n, sa_code_size) uint8 codes of one block of rows for the
    trained index in ``blob`` (its cell number and its scalar-quantised vector)."""
    with faiss_threads(worker_threads()) as faiss:
        index = faiss.deserialize_index(blob)
        return index.sa_encode(normalise_rows(rows))


def _encode_stored_block(blob: np.ndarray, path: str, name: str, a: int, b: int) -> np.ndarray:
    """Runs on a Dask worker: :func:`_encode_block` of the store's rows ``a:b``, read here."""
    return _encode_block(blob, read_rows(path, name, a, b))


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

    The defaults are measured at 10^7 × 128 (1 024 cells, the same 20 queries, bench_survey.py
    --sim-settings): nprobe 32 with a 4·k shortlist gave recall@20 0.927 (35 ms); nprobe 96 and
    8·k give 0.972 (61 ms), nprobe 128 and 8·k 0.978 (85 ms). The 8-bit codes misorder close
    neighbours in dense clusters, so the shortlist must be several times k.
    """

    def __init__(self, index, embeddings, nprobe: int = 96, shortlist: int = 8):
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

        # mapped, not read: memory holds only the cells the queries touch (the OS pages them in)
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        return cls(index, store.embeddings, **kwargs)

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
        with self._lock, faiss_threads(1):
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
    over the PCA features when the store has no embeddings). ``kwargs`` go to
    :class:`ApproximateIndex` (``nprobe``, ``shortlist``)."""
    if store.has("embeddings"):
        approx = ApproximateIndex.load(store, **kwargs)
        if approx is not None:
            return approx
        return SimilarityIndex(store.embeddings)
    return SimilarityIndex(store.pca)
