"""The embedding store: ``galexplorer embed`` writes it; ``open``, ``rank``, ``export`` and
``simulate`` read it.

Layout (schema v1, see docs/store-format.md)::

    /                  attrs: format="galexplorer-store", version, galexplorer_version, created,
                              uuid, cutouts_path, cutouts_uuid, bands, config (JSON)
    /objects/...       as in the cutouts file (id, ra, dec, source, columns/<name>), plus
                       id_order (N,) int64: rows sorted by id (the index for lookups by id)
    /thumbnails        (N, T, T, 3) uint8 display stamps (optional)
    /embeddings        (N, D) float32; attrs method, backbone, checkpoint_sha256, config, source
    /pca               (N, k) float32; attrs explained_variance_ratio, n_components
    /projection        (N, 2) float32; attrs method, params (JSON)
    /scores/<name>     (N,) float32 (or int32 for cluster); attrs description
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import StoreError
from .atomic import end_h5_output, open_new_h5, prepare_output
from .base import ObjectFile
from .ondemand import ID_ORDER, id_order
from .schema import (
    STORE_FORMAT,
    ObjectTable,
    read_attr,
    root_attrs,
    write_attrs,
    write_objects,
)

log = logging.getLogger(__name__)

FIX = "build it with `galexplorer embed CUTOUTS.h5 --run RUN_DIR -o STORE.h5`"
ARRAYS = ("thumbnails", "embeddings", "pca", "projection")


class EmbeddingStoreWriter:
    """Build a new embedding store in a temporary file; it appears under ``path`` only on success.

    ::

        with EmbeddingStoreWriter(out, objects, attrs={"cutouts_path": ...}) as w:
            emb = w.create("embeddings", (n, d), np.float32, attrs={...})
            emb[0:256] = ...
            w.write("pca", pca, attrs={...})
            w.write("scores/anomaly", score)
    """

    def __init__(self, path: str | Path, objects: ObjectTable, attrs: dict[str, Any] | None = None):
        self.path = Path(path)
        self.objects = objects
        self.n = len(objects)
        self.attrs = dict(attrs or {})
        self._f: h5py.File | None = None
        self._tmp: Path | None = None

    def __enter__(self) -> EmbeddingStoreWriter:
        if self.n == 0:
            raise StoreError("no objects to write", self.path)
        self._tmp = prepare_output(self.path)
        self._f = open_new_h5(self._tmp, self.path)
        try:
            group = self._f.create_group("objects")
            write_objects(group, self.objects)
            order = id_order(self.objects.ids)
            if order is not None:   # repeated ids get no index: readers then find and report them
                group.create_dataset(ID_ORDER, data=order)
                group[ID_ORDER].attrs["description"] = "rows in the order of their ids (code point order)"
        except BaseException as exc:   # no __exit__ follows a failed __enter__: end the write here
            f, self._f = self._f, None
            end_h5_output(f, self._tmp, self.path, False, exc)
            raise
        return self

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            raise RuntimeError("EmbeddingStoreWriter must be used as a context manager")
        return self._f

    def __contains__(self, name: str) -> bool:
        return name in self.file

    def __getitem__(self, name: str) -> h5py.Dataset:
        return self.file[name]

    def _check_rows(self, name: str, shape: tuple[int, ...]) -> None:
        if shape[0] != self.n:
            raise StoreError(f"{name} has {shape[0]} rows but the store has {self.n} objects", self.path)

    def create(self, name: str, shape: tuple[int, ...], dtype, attrs: dict[str, Any] | None = None,
               chunks: tuple[int, ...] | bool | None = True, compression: str | None = None
               ) -> h5py.Dataset:
        """Create an empty dataset to fill in batches (e.g. embeddings streamed from a model)."""
        self._check_rows(name, shape)
        if name in self.file:
            del self.file[name]
        dset = self.file.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks,
                                        compression=compression)
        write_attrs(dset, attrs or {})
        return dset

    def write(self, name: str, data: np.ndarray, attrs: dict[str, Any] | None = None,
              compression: str | None = None) -> h5py.Dataset:
        """Write a whole array (``pca``, ``projection``, ``scores/<name>`` ...)."""
        data = np.asarray(data)
        self._check_rows(name, data.shape)
        if name in self.file:
            del self.file[name]
        dset = self.file.create_dataset(name, data=data, compression=compression)
        write_attrs(dset, attrs or {})
        return dset

    def copy_thumbnails(self, source: h5py.Dataset, batch: int = 4096,
                        rows: slice | np.ndarray | None = None) -> None:
        """Copy (N, T, T, 3) uint8 thumbnails from a cutouts file in batches, with a progress bar.

        When the store's rows are a block of the source starting on a chunk boundary (the whole
        file, or a shard) and both use the same chunking and compression, whole compressed
        chunks are copied as they are (no decompress / recompress: ~10x faster).

        Args:
            source: the cutouts file's ``thumbnails`` dataset.
            rows: the source rows to copy, in store order (a slice, or increasing row numbers);
                all rows when None.
        """
        from .. import progress

        index = np.arange(source.shape[0])[rows] if rows is not None else np.arange(source.shape[0])
        shape = (len(index),) + tuple(source.shape[1:])
        self._check_rows("thumbnails", shape)
        dst = self.file.create_dataset("thumbnails", shape=shape, dtype=np.uint8,
                                       chunks=(min(16, self.n),) + shape[1:],
                                       compression="gzip", compression_opts=1)
        contiguous = len(index) > 0 and int(index[-1] - index[0] + 1) == len(index)
        with progress.Bar("thumbnails", self.n, unit="obj") as bar:
            done = _copy_whole_chunks(source, dst, int(index[0]), bar) if contiguous else 0
            for a in range(done, self.n, batch):
                want = index[a:a + batch]
                span = int(want[-1] - want[0] + 1)
                if span <= 4 * len(want):  # dense: one sequential read of the covering block
                    dst[a:a + len(want)] = source[want[0]:want[-1] + 1][want - want[0]]
                else:
                    dst[a:a + len(want)] = source[want]
                bar.update(len(want))

    def __exit__(self, exc_type, exc, tb) -> None:
        ok = exc_type is None
        try:
            if ok:
                write_attrs(self.file, root_attrs(STORE_FORMAT, **self.attrs))
        except BaseException as late:
            ok, exc = False, late
            raise
        finally:
            assert self._f is not None and self._tmp is not None
            f, self._f = self._f, None
            end_h5_output(f, self._tmp, self.path, ok, exc)


class EmbeddingStore(ObjectFile):
    """Read-only access to an embedding store, validated on open.

    Raises:
        StoreError: the file is missing, not ours, of a newer version, truncated or inconsistent.
    """

    FORMAT = STORE_FORMAT
    WHAT = "embedding store"
    FIX = FIX
    COLUMN_FIX = "add it with --catalog at ingest, then embed again"

    def _validate(self) -> None:
        for name in list(ARRAYS) + [f"scores/{s}" for s in self.score_names]:
            if name in self._f and self._f[name].shape[0] != self.n:
                raise self._inconsistent(f"{name} has {self._f[name].shape[0]} rows for {self.n} objects")
        self._cache: dict[str, np.ndarray] = {}

    @property
    def bands(self) -> list[str]:
        return read_attr(self._f, "bands") or []

    # -- arrays ---------------------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self._f

    def require(self, name: str, fix: str | None = None) -> None:
        """Raise a clear StoreError when dataset ``name`` is absent."""
        if name not in self._f:
            raise StoreError(f"the store has no {name}", self.path, fix or FIX)

    def _array(self, name: str, dtype=np.float32) -> np.ndarray:
        if name not in self._cache:
            self.require(name)
            with self.damage():
                self._cache[name] = np.asarray(self._f[name][...], dtype=dtype)
        return self._cache[name]

    @property
    def embeddings(self) -> h5py.Dataset:
        """(N, D) float32 dataset (not loaded; slice it, or use :meth:`load_embeddings`)."""
        self.require("embeddings")
        return self._f["embeddings"]

    def load_embeddings(self) -> np.ndarray:
        return self._array("embeddings")

    @property
    def pca(self) -> np.ndarray:
        return self._array("pca")

    @property
    def projection(self) -> np.ndarray:
        return self._array("projection")

    @property
    def thumbnails(self) -> h5py.Dataset | None:
        return self._f["thumbnails"] if "thumbnails" in self._f else None

    @property
    def score_names(self) -> list[str]:
        return sorted(self._f["scores"]) if "scores" in self._f else []

    def score(self, name: str) -> np.ndarray:
        if name not in self.score_names:
            raise StoreError(f"no score {name!r} (have: {', '.join(self.score_names) or 'none'})",
                             self.path, FIX)
        return self._array(f"scores/{name}", dtype=self._f[f"scores/{name}"].dtype)

    @property
    def feature_set_names(self) -> list[str]:
        """The representations besides the embedding (``features/<name>``, written by ``embed``)."""
        return sorted(self._f["features"]) if "features" in self._f else []

    def feature_set(self, name: str) -> np.ndarray:
        """(N, k) float32 ``features/<name>`` (e.g. ``morphology``, ``pixels``)."""
        return self._array(f"features/{name}")

    # -- the cutouts this store was built from ----------------------------------------------------
    @property
    def cutouts_path(self) -> Path | None:
        """The cutouts file, resolved relative to the store's folder when stored relative."""
        p = read_attr(self._f, "cutouts_path")
        if not p:
            return None
        p = Path(p)
        return p if p.is_absolute() else (self.path.parent / p)

    @property
    def cutouts_rows(self) -> np.ndarray:
        """(N,) int64: the row of each object in the linked cutouts file (``objects/cutouts_row``).

        A store built with ``--allow-missing`` holds a subset of the cutouts, so store row ``i``
        is cutouts row ``cutouts_rows[i]``, not ``i``. Stores without the dataset map row to row.
        """
        if "cutouts_rows" not in self._cache:
            rows = self._f["objects/cutouts_row"][:] if "objects/cutouts_row" in self._f else np.arange(self.n)
            self._cache["cutouts_rows"] = np.asarray(rows, dtype=np.int64)
        return self._cache["cutouts_rows"]

    def open_cutouts(self):
        """Open the linked cutouts file, or return None (logged) when it is gone or replaced."""
        from .cutouts import CutoutStore

        path = self.cutouts_path
        if path is None or not path.exists():
            log.warning("%s: the cutouts file %s is not available; showing thumbnails only", self.path, path)
            return None
        try:
            cut = CutoutStore(path)
        except StoreError as exc:
            log.warning("%s", exc)
            return None
        want = read_attr(self._f, "cutouts_uuid")
        if want and cut.uuid != want:
            log.warning("%s: %s is not the cutouts file this store was built from (uuid differs)",
                        self.path, path)
            cut.close()
            return None
        return cut


def _copy_whole_chunks(source: h5py.Dataset, dst: h5py.Dataset, start: int, bar) -> int:
    """Copy the compressed chunks of ``source[start:start + len(dst)]`` into ``dst`` unchanged.

    Returns the number of leading rows copied (0 when the layouts differ); the caller copies the
    rest (a partial last chunk) the ordinary way.
    """
    c = dst.chunks[0] if dst.chunks else 0
    if (not c or source.chunks != dst.chunks or source.dtype != dst.dtype or start % c
            or source._filters != dst._filters):
        return 0
    full = len(dst) // c * c
    zeros = (0,) * (dst.ndim - 1)
    for k in range(0, full, c):
        try:
            mask, data = source.id.read_direct_chunk((start + k,) + zeros)
        except (OSError, KeyError, ValueError):   # an unallocated chunk: copy the slow way
            dst[k:k + c] = source[start + k:start + k + c]
        else:
            dst.id.write_direct_chunk((k,) + zeros, data, filter_mask=mask)
        bar.update(c)
    return full
