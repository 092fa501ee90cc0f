"""The cutouts file: ``galexplorer ingest`` writes it, ``train`` and ``embed`` read it.

Layout (schema v1, see docs/store-format.md)::

    /                 attrs: format="galexplorer-cutouts", version, galexplorer_version, created,
                             uuid, bands (list of str), size, thumb_size, stretch, ingest (JSON)
    /images           (N, C, H, W) float32, chunked by object
    /thumbnails       (N, T, T, 3) uint8 display stamps (asinh or Lupton colour)
    /objects/id       (N,) str, unique
    /objects/ra, dec  (N,) float64 deg, NaN if unknown
    /objects/source   (N,) str, the input file of each object
    /objects/columns/<name>  (N,) catalogue column
    /objects/wcs_cd   (N, 2, 2) float64 deg per stored pixel (east, north) x (x, y); NaN if unknown
    /objects/wcs_crpix (N, 2) float64 0-based stored pixel (x, y) at the object's ra/dec
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import StoreError
from .atomic import end_h5_output, open_new_h5, prepare_output
from .base import ObjectFile
from .schema import (
    CUTOUTS_FORMAT,
    STR_DTYPE,
    column_kind,
    h5_dtype_for,
    read_attr,
    root_attrs,
    write_attrs,
)

log = logging.getLogger(__name__)

FIX = "create it with `galexplorer ingest INPUT... -o CUTOUTS.h5`"


class CutoutWriter:
    """Stream stamps into a new cutouts file, atomically.

    Use as a context manager; the file appears under its final name only when the block ends
    without an exception and at least one object was written::

        with CutoutWriter(out, bands=["g", "r", "i"], size=64) as w:
            w.add(images, ids, ra=ra, dec=dec, columns={"z": z}, thumbnails=thumbs)

    Raises:
        StoreError: duplicate ids, shape mismatches, or no objects at all.
    """

    def __init__(self, path: str | Path, bands: Sequence[str], size: int, thumb_size: int = 64,
                 attrs: dict[str, Any] | None = None, chunk_objects: int = 16):
        self.path = Path(path)
        self.bands = [str(b) for b in bands]
        self.size = int(size)
        self.thumb_size = int(thumb_size)
        self.attrs = dict(attrs or {})
        self.chunk_objects = chunk_objects
        self.n = 0
        self._ids: set[str] = set()
        self._col_kinds: dict[str, str] | None = None
        self._tmp: Path | None = None
        self._f: h5py.File | None = None

    # -- context management -------------------------------------------------------------------
    def __enter__(self) -> CutoutWriter:
        self._tmp = prepare_output(self.path)
        self._f = open_new_h5(self._tmp, self.path)
        try:
            self._create()
        except BaseException as exc:   # no __exit__ follows a failed __enter__: end the write here
            f, self._f = self._f, None
            end_h5_output(f, self._tmp, self.path, False, exc)
            raise
        return self

    def _create(self) -> None:
        """The empty datasets and groups of a new cutouts file."""
        assert self._f is not None
        c, s, t = len(self.bands), self.size, self.thumb_size
        k = self.chunk_objects
        f = self._f
        f.create_dataset("images", shape=(0, c, s, s), maxshape=(None, c, s, s), dtype=np.float32,
                         chunks=(k, c, s, s))
        f.create_dataset("thumbnails", shape=(0, t, t, 3), maxshape=(None, t, t, 3), dtype=np.uint8,
                         chunks=(k, t, t, 3), compression="gzip", compression_opts=1)
        g = f.create_group("objects")
        for name, dt in [("id", STR_DTYPE), ("source", STR_DTYPE), ("ra", np.float64),
                         ("dec", np.float64)]:
            g.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dt, chunks=(4096,))
        g["ra"].attrs["unit"] = "deg"
        g["dec"].attrs["unit"] = "deg"
        g.create_group("columns")

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self._f is not None
        ok = exc_type is None
        try:
            if ok and self.n == 0:
                raise StoreError("no objects were written", self.path,
                                 "check that the inputs contain readable images")
            if ok:
                write_attrs(self._f, root_attrs(CUTOUTS_FORMAT, bands=self.bands, size=self.size,
                                                thumb_size=self.thumb_size, **self.attrs))
        except BaseException as late:
            ok, exc = False, late
            raise
        finally:
            assert self._tmp is not None
            f, self._f = self._f, None
            end_h5_output(f, self._tmp, self.path, ok, exc)

    # -- writing --------------------------------------------------------------------------------
    def add(self, images: np.ndarray, ids: Sequence[str], ra: Sequence[float] | None = None,
            dec: Sequence[float] | None = None, columns: dict[str, Sequence] | None = None, *,
            thumbnails: np.ndarray, source: Sequence[str] | None = None) -> None:
        """Append a batch of ``n`` objects.

        Args:
            images: (n, C, H, W) float32 with C = len(bands), H = W = size; finite values.
            ids: n unique ids (unique across the whole file).
            ra, dec: degrees, NaN where unknown.
            columns: catalogue columns, the same names in every batch.
            thumbnails: (n, T, T, 3) uint8 display stamps, made by the caller (the display stretch
                lives in ``data/``: ``galexplorer.data.thumbnails.make_thumbnails``).
            source: the input file of each object.
        """
        if self._f is None:
            raise RuntimeError("CutoutWriter must be used as a context manager")
        images = np.asarray(images, dtype=np.float32)
        n = len(ids)
        expect = (n, len(self.bands), self.size, self.size)
        if images.shape != expect:
            raise StoreError(f"images of shape {images.shape} do not fit {expect} (N, bands, size, size)",
                             self.path)
        if not np.isfinite(images).all():
            raise StoreError("images contain NaN or inf (replace them before writing)", self.path)
        ids = [str(i) for i in ids]
        for oid in ids:
            if oid in self._ids:
                raise StoreError(f"duplicate object id {oid!r}", self.path,
                                 "make ids unique in the catalogue or file names")
            self._ids.add(oid)
        if len(set(ids)) != n:  # duplicates inside this batch were caught above; keep the set exact
            raise StoreError("duplicate object ids in one batch", self.path)
        columns = dict(columns or {})
        if self._col_kinds is None:
            self._col_kinds = {}
            for name, values in columns.items():
                kind = column_kind(np.asarray(values))
                self._col_kinds[name] = kind
                self._f["objects/columns"].create_dataset(
                    name, shape=(0,), maxshape=(None,), dtype=h5_dtype_for(kind), chunks=(4096,))
        if set(columns) != set(self._col_kinds):
            raise StoreError(f"catalogue columns changed between batches: {sorted(columns)} vs "
                             f"{sorted(self._col_kinds)}", self.path)
        f, a, b = self._f, self.n, self.n + n

        def put(dset: h5py.Dataset, data) -> None:
            dset.resize(b, axis=0)
            dset[a:b] = data

        put(f["images"], images)
        thumbnails = np.asarray(thumbnails, dtype=np.uint8)
        if thumbnails.shape != (n, self.thumb_size, self.thumb_size, 3):
            raise StoreError(f"thumbnails of shape {thumbnails.shape} do not fit "
                             f"{(n, self.thumb_size, self.thumb_size, 3)}", self.path)
        put(f["thumbnails"], thumbnails)
        put(f["objects/id"], np.array(ids, dtype=object))
        put(f["objects/source"], np.array([str(s) for s in source] if source is not None else [""] * n,
                                          dtype=object))
        put(f["objects/ra"], np.full(n, np.nan) if ra is None else np.asarray(ra, dtype=np.float64))
        put(f["objects/dec"], np.full(n, np.nan) if dec is None else np.asarray(dec, dtype=np.float64))
        for name, values in columns.items():
            kind = self._col_kinds[name]
            data = np.asarray(values, dtype=object if kind == "str" else None)
            if kind == "str":
                data = np.array([str(v) for v in data], dtype=object)
            put(f[f"objects/columns/{name}"], data)
        self.n = b


    def add_sky_geometry(self, cd: np.ndarray, crpix: np.ndarray) -> None:
        """The local WCS of the batch just added (``add``): ``cd`` (n, 2, 2) degrees per stored
        pixel (rows east, north; columns x, y), ``crpix`` (n, 2) the 0-based pixel at ra/dec.
        NaN where unknown; rows of earlier batches without it are NaN."""
        if self._f is None:
            raise RuntimeError("CutoutWriter must be used as a context manager")
        cd, crpix = np.asarray(cd, dtype=np.float64), np.asarray(crpix, dtype=np.float64)
        n = len(cd)
        g = self._f["objects"]
        for name, shape in (("wcs_cd", (2, 2)), ("wcs_crpix", (2,))):
            if name not in g:
                g.create_dataset(name, shape=(self.n - n, *shape), maxshape=(None, *shape), dtype=np.float64,
                                 chunks=(4096, *shape), fillvalue=np.nan)
        if cd.shape != (n, 2, 2) or crpix.shape != (n, 2) or g["wcs_cd"].shape[0] != self.n - n:
            raise ValueError(f"sky geometry of shape {cd.shape}, {crpix.shape} does not fit the last batch")
        for name, data in (("wcs_cd", cd), ("wcs_crpix", crpix)):
            g[name].resize(self.n, axis=0)
            g[name][self.n - n:] = data


class CutoutStore(ObjectFile):
    """Read-only access to a cutouts file, validated on open.

    Raises:
        StoreError: the file is missing, not ours, of a newer version, truncated or inconsistent.
    """

    FORMAT = CUTOUTS_FORMAT
    WHAT = "cutouts file"
    FIX = FIX
    COLUMN_FIX = "add it with --catalog at ingest"

    def _expected_rows(self) -> int | None:
        if "images" not in self._f:
            raise StoreError("the cutouts file has no images dataset (incomplete file)", self.path, FIX)
        shape = self._f["images"].shape
        if len(shape) != 4:
            raise StoreError(f"images has shape {shape}, expected (N, C, H, W)", self.path, FIX)
        return shape[0]

    def _validate(self) -> None:
        shape = self._f["images"].shape
        self.bands: list[str] = read_attr(self._f, "bands") or [f"band{i}" for i in range(shape[1])]
        if len(self.bands) != shape[1]:
            raise StoreError(f"{len(self.bands)} band names for {shape[1]} bands", self.path, FIX)
        if "thumbnails" in self._f and self._f["thumbnails"].shape[0] != self.n:
            raise self._inconsistent("thumbnails and images differ in length")
        self.size: int = shape[2]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self._f["images"].shape)  # type: ignore[return-value]

    # -- pixels ---------------------------------------------------------------------------------
    @property
    def images(self) -> h5py.Dataset:
        """The (N, C, H, W) float32 dataset; slice it to read."""
        return self._f["images"]

    @property
    def thumbnails(self) -> h5py.Dataset | None:
        return self._f["thumbnails"] if "thumbnails" in self._f else None

    def read(self, index) -> np.ndarray:
        """Images at ``index`` (int, slice, or an int array in any order, repeats allowed) as float32."""
        with self.damage():
            if isinstance(index, (int, np.integer, slice)):
                return np.asarray(self._f["images"][index], dtype=np.float32)
            index = np.asarray(index, dtype=np.int64)
            if len(index) == 0:
                return np.empty((0,) + self.shape[1:], np.float32)
            rows, inverse = np.unique(index, return_inverse=True)   # h5py reads increasing rows only
            return np.asarray(self._f["images"][rows], dtype=np.float32)[inverse]

    def iter_batches(self, batch_size: int = 256, start: int = 0, stop: int | None = None
                     ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(offset, images)`` batches in file order; memory is flat in N."""
        stop = self.n if stop is None else stop
        for a in range(start, stop, batch_size):
            yield a, self.read(slice(a, min(a + batch_size, stop)))

    def __repr__(self) -> str:
        return f"CutoutStore({str(self.path)!r}, n={self.n}, bands={self.bands}, size={self.size})"

    def sky_geometry(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Object ``index``'s local WCS, ``(cd, crpix)`` as written by ingest; None when unknown."""
        g = self._f["objects"]
        if "wcs_cd" not in g or "wcs_crpix" not in g or not 0 <= int(index) < min(len(g["wcs_cd"]),
                                                                                   len(g["wcs_crpix"])):
            return None
        with self.damage():
            cd = np.asarray(g["wcs_cd"][int(index)], dtype=np.float64)
            crpix = np.asarray(g["wcs_crpix"][int(index)], dtype=np.float64)
        if cd.shape != (2, 2) or crpix.shape != (2,) or not (np.isfinite(cd).all() and np.isfinite(crpix).all()):
            return None
        return cd, crpix
