"""HDF5 cubes of stamps: (N, C, H, W), (N, H, W, C) or (N, H, W) arrays, read in batches.

The image dataset is ``dataset`` when given, else the first of ``images``, ``cutouts``,
``stamps``, ``data``, ``imgs``, ``x``, ``X`` that exists, else the file's only dataset with 3 or
4 axes. The axis order of a 4-axis dataset is its ``layout`` attribute ("NCHW" or "NHWC") when
present, else: the two equal axes are H and W; if all are equal or none, the shorter of axes 1
and 3 holds the bands.

Optional 1-D datasets of length N beside it: ids (``objects/id``, or a name of the id role in
:data:`galexplorer.data.catalog.COLUMN_NAMES`: ``id``, ``ids``, ``objid``, ``object_id``,
``name`` ...), ra/dec (degrees; ``objects/ra`` or a name of those roles), and band names in a
``bands`` attribute of the dataset or the file. A galexplorer cutouts file is read with all
its objects' metadata, including ``objects/columns``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import InputError
from . import registry
from .catalog import COLUMN_NAMES

log = logging.getLogger(__name__)

H5_SUFFIXES = registry.HDF5.suffixes   # the file dialog's and drop's filter (gui/)
IMAGE_NAMES = ("images", "cutouts", "stamps", "data", "imgs", "x", "X")
ID_NAMES = ("objects/id", *COLUMN_NAMES["id"])   # the one table of names, in data/catalog.py
_FIX = "give an HDF5 file with an (N, C, H, W), (N, H, W, C) or (N, H, W) image dataset"


def _as_text(dset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dset.dtype) is not None:
        return np.asarray(dset.asstr()[:], dtype=object)
    data = dset[:]
    if data.dtype.kind == "S":
        return np.array([v.decode("utf-8", "replace") for v in data], dtype=object)
    if data.dtype.kind == "f" and np.all(data == np.round(data)):
        data = data.astype(np.int64)   # float ids such as 123.0 read as "123"
    return np.array([str(v) for v in data], dtype=object)


def _attr_bands(obj) -> list[str] | None:
    if "bands" not in obj.attrs:
        return None
    value = obj.attrs["bands"]
    if isinstance(value, (bytes, str)):
        value = [value]
    out = [v.decode() if isinstance(v, bytes) else str(v) for v in np.atleast_1d(value)]
    return out or None


@dataclass
class H5Cube:
    """An HDF5 image dataset, described without reading its pixels.

    Attributes:
        n, c, h, w: the number of objects, bands, and the stamp height and width.
        layout: "NCHW", "NHWC" or "NHW".
        ids, ra, dec: (n,) arrays when the file holds them, else None.
        bands: band names from a ``bands`` attribute, or None.
        columns: ``objects/columns`` of a galexplorer cutouts file (else empty).
    """

    path: Path
    dataset: str
    layout: str
    n: int
    c: int
    h: int
    w: int
    ids: np.ndarray | None = None
    ra: np.ndarray | None = None
    dec: np.ndarray | None = None
    bands: list[str] | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def batches(self, batch_size: int = 256) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(offset, images)`` with images (b, C, H, W) float32; memory flat in N.

        Raises:
            InputError: the data cannot be read (a truncated or damaged file).
        """
        try:
            with h5py.File(self.path, "r") as f:
                d = f[self.dataset]
                for a in range(0, self.n, batch_size):
                    x = np.asarray(d[a:a + batch_size], dtype=np.float32)
                    if self.layout == "NHWC":
                        x = x.transpose(0, 3, 1, 2)
                    elif self.layout == "NHW":
                        x = x[:, None]
                    yield a, np.ascontiguousarray(x)
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"cannot read dataset {self.dataset!r} ({str(exc).splitlines()[0]})", self.path,
                             "the file may be truncated or damaged; copy it again") from None


def _pick_dataset(f: h5py.File, path: Path, dataset: str | None) -> h5py.Dataset:
    if dataset is not None:
        obj = f.get(dataset)
        if not isinstance(obj, h5py.Dataset):
            raise InputError(f"no dataset {dataset!r}", path, "check --dataset")
        return obj
    for name in IMAGE_NAMES:
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset) and obj.ndim in (3, 4):
            return obj
    found: list[h5py.Dataset] = []
    f.visititems(lambda _n, o: found.append(o) if isinstance(o, h5py.Dataset) and o.ndim in (3, 4) else None)
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError("no image dataset (3 or 4 axes) in the HDF5 file", path, _FIX)
    raise InputError(f"{len(found)} image datasets ({', '.join(d.name for d in found[:5])})", path,
                     "choose one with --dataset")


def _layout(d: h5py.Dataset) -> str:
    if d.ndim == 3:
        return "NHW"
    attr = d.attrs.get("layout")
    if isinstance(attr, bytes):
        attr = attr.decode()
    if isinstance(attr, str) and attr.upper() in ("NCHW", "NHWC"):
        return attr.upper()
    _, a, b, c = d.shape
    if b == c and a != b:
        return "NCHW"
    if a == b and c != a:
        return "NHWC"
    return "NCHW" if a <= c else "NHWC"


def _meta(f: h5py.File, names: tuple[str, ...], n: int) -> h5py.Dataset | None:
    for name in names:
        obj = f.get(name)
        if isinstance(obj, h5py.Dataset) and obj.shape == (n,):
            return obj
    return None


def open_cube(path: str | Path, dataset: str | None = None) -> H5Cube:
    """Describe an HDF5 cube (shape, layout, ids, ra/dec, bands) without reading its pixels.

    Raises:
        InputError: not HDF5, truncated, no or several image datasets, unreadable metadata.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        text = str(exc).lower()
        what = "truncated (an interrupted copy or write?)" if ("truncated" in text or "eof" in text) \
            else "not a readable HDF5 file"
        raise InputError(what, path, "copy it again, or remove it from the inputs") from None
    try:
        with f:
            d = _pick_dataset(f, path, dataset)
            layout = _layout(d)
            if layout == "NHW":
                n, h, w = d.shape
                c = 1
            elif layout == "NCHW":
                n, c, h, w = d.shape
            else:
                n, h, w, c = d.shape
            if n == 0:
                raise InputError(f"dataset {d.name!r} holds no images", path, _FIX)
            cube = H5Cube(path=path, dataset=d.name, layout=layout, n=n, c=c, h=h, w=w,
                          bands=_attr_bands(d) or _attr_bands(f))
            ids = _meta(f, ID_NAMES, n)
            cube.ids = _as_text(ids) if ids is not None else None
            ra = _meta(f, ("objects/ra", *COLUMN_NAMES["ra"]), n)
            dec = _meta(f, ("objects/dec", *COLUMN_NAMES["dec"]), n)
            if ra is not None and dec is not None:
                cube.ra, cube.dec = ra[:].astype(np.float64), dec[:].astype(np.float64)
            cols = f.get("objects/columns")
            if isinstance(cols, h5py.Group):
                for name, obj in cols.items():
                    if isinstance(obj, h5py.Dataset) and obj.shape == (n,):
                        is_text = h5py.check_string_dtype(obj.dtype) is not None or obj.dtype.kind == "S"
                        cube.columns[name] = _as_text(obj) if is_text else obj[:]
    except InputError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise InputError(f"cannot read the HDF5 file ({str(exc).splitlines()[0]})", path,
                         "the file may be truncated or damaged; copy it again") from None
    if cube.bands is not None and len(cube.bands) != cube.c:
        log.warning("%s: %d band names for %d bands; ignoring the names", path, len(cube.bands), cube.c)
        cube.bands = None
    log.debug("%s: %s %s, %d objects, ids %s", path, cube.dataset, cube.layout, cube.n, cube.ids is not None)
    return cube


def open_cube_for_ingest(path: str | Path, hdu: int | str | None = None, dataset: str | None = None,
                         position: bool = True) -> H5Cube:
    """Ingest's HDF5 reader (``registry``): the cube, read later in batches (``hdu`` and
    ``position`` do not apply: ids and ra/dec come from the cube's own datasets)."""
    return open_cube(path, dataset)


registry.register_reader("hdf5", "ingest", open_cube_for_ingest)
