"""Schema v1 of galexplorer's HDF5 files: names, versions, and the shared ``objects`` group.

Two kinds of file share this layout (see docs/store-format.md):

* the cutouts file (``format = "galexplorer-cutouts"``), written by ``galexplorer ingest``;
* the embedding store (``format = "galexplorer-store"``), written by ``galexplorer embed``.

Strings are stored as variable-length UTF-8; read them with ``dset.asstr()[:]`` in h5py.
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import __version__
from ..errors import StoreError

CUTOUTS_FORMAT = "galexplorer-cutouts"
STORE_FORMAT = "galexplorer-store"
RANKING_FORMAT = "galexplorer-ranking"
SCHEMA_VERSION = 1

STR_DTYPE = h5py.string_dtype("utf-8")


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def root_attrs(fmt: str, **extra: Any) -> dict[str, Any]:
    """The attributes every file we write carries at its root."""
    attrs = {
        "format": fmt,
        "version": SCHEMA_VERSION,
        "galexplorer_version": __version__,
        "created": now_iso(),
        "uuid": uuid.uuid4().hex,
    }
    attrs.update(extra)
    return attrs


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for what we store: NumPy scalars and arrays, paths, the rest as str."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_attrs(obj: h5py.HLObject, attrs: dict[str, Any]) -> None:
    """Write attributes; dicts and lists of non-strings become JSON strings."""
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, dict) or (isinstance(value, (list, tuple))
                                       and not all(isinstance(v, str) for v in value)):
            value = json.dumps(value, sort_keys=True, default=json_default)
        elif isinstance(value, (list, tuple)):
            value = np.array(list(value), dtype=STR_DTYPE)
        elif isinstance(value, Path):
            value = str(value)
        obj.attrs[key] = value


def read_attr(obj: h5py.HLObject, key: str, default: Any = None) -> Any:
    """Read an attribute as a plain Python value (str, int, float, list of str)."""
    if key not in obj.attrs:
        return default
    value = obj.attrs[key]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [v.decode("utf-8") if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v
                for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_json_attr(obj: h5py.HLObject, key: str, default: Any = None) -> Any:
    value = read_attr(obj, key)
    if value is None:
        return default
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return value


@dataclass
class ObjectTable:
    """Per-object metadata shared by both files.

    Attributes:
        ids: (N,) unique object ids, str.
        ra, dec: (N,) float64, degrees (ICRS); NaN where unknown.
        columns: catalogue columns, each (N,), numeric or str.
        source: (N,) str, the file each object came from ("" if none).
    """

    ids: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=object)
        n = len(self.ids)
        self.ra = np.full(n, np.nan) if self.ra is None else np.asarray(self.ra, dtype=np.float64)
        self.dec = np.full(n, np.nan) if self.dec is None else np.asarray(self.dec, dtype=np.float64)
        if self.source is None:
            self.source = np.array([""] * n, dtype=object)
        for name, arr in [("ra", self.ra), ("dec", self.dec), ("source", self.source)] + [
                (f"column {k!r}", v) for k, v in self.columns.items()]:
            if len(arr) != n:
                raise StoreError(f"object table: {name} has {len(arr)} rows but there are {n} ids")

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray) -> ObjectTable:
        return ObjectTable(self.ids[index], self.ra[index], self.dec[index],
                           {k: v[index] for k, v in self.columns.items()}, self.source[index])


def column_kind(values: np.ndarray) -> str:
    """'int', 'float', 'bool' or 'str' for a catalogue column."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return "bool"
    if arr.dtype.kind in "iu":
        return "int"
    if arr.dtype.kind == "f":
        return "float"
    return "str"


def h5_dtype_for(kind: str):
    return {"int": np.int64, "float": np.float64, "bool": np.bool_, "str": STR_DTYPE}[kind]


def write_objects(group: h5py.Group, objects: ObjectTable) -> None:
    """Write an :class:`ObjectTable` into ``group`` (normally ``/objects``)."""
    group.create_dataset("id", data=np.asarray(objects.ids, dtype=object), dtype=STR_DTYPE)
    group.create_dataset("ra", data=objects.ra.astype(np.float64))
    group["ra"].attrs["unit"] = "deg"
    group.create_dataset("dec", data=objects.dec.astype(np.float64))
    group["dec"].attrs["unit"] = "deg"
    group.create_dataset("source", data=np.asarray(objects.source, dtype=object), dtype=STR_DTYPE)
    cols = group.create_group("columns")
    for name, values in objects.columns.items():
        kind = column_kind(values)
        data = np.asarray(values, dtype=object) if kind == "str" else np.asarray(values)
        cols.create_dataset(name, data=data, dtype=h5_dtype_for(kind))


def read_column(dset: h5py.Dataset) -> np.ndarray:
    if h5py.check_string_dtype(dset.dtype) is not None:
        return np.asarray(dset.asstr()[:], dtype=object)
    return dset[:]


def read_objects(group: h5py.Group, ids: np.ndarray | None = None) -> ObjectTable:
    """Read ``/objects``; pass ``ids`` when they were already read (validation reads them)."""
    cols = {name: read_column(group["columns"][name]) for name in group["columns"]} \
        if "columns" in group else {}
    source = read_column(group["source"]) if "source" in group else None
    return ObjectTable(read_column(group["id"]) if ids is None else ids, group["ra"][:], group["dec"][:],
                       cols, source)


def _a(noun: str) -> str:
    """'a cutouts file', 'an embedding store'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


#: what h5py raises for a damaged file (bad B-tree, bad datatype message, unreadable chunk ...)
H5_DAMAGE = (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError)


@contextmanager
def damage_is_store_error(path: str | Path, what: str, fix: str) -> Iterator[None]:
    """Turn h5py's errors on a damaged file into a one-line StoreError (StoreErrors pass)."""
    try:
        yield
    except StoreError:
        raise
    except H5_DAMAGE as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"the {what} is damaged ({first})", path, f"copy it again or {fix}") from None


def open_checked(path: str | Path, fmt: str, what: str, fix: str) -> h5py.File:
    """Open ``path`` read-only and check it is a galexplorer file of format ``fmt``.

    Raises:
        StoreError: missing, not HDF5, truncated, another format, or a newer schema version.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError("no such file", path, f"check the path, or {fix}")
    if path.is_dir():
        raise StoreError(f"is a folder, not {_a(what)}", path, f"give the .h5 file; {fix}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        text = str(exc).lower()
        if "truncated" in text or "eof" in text:
            raise StoreError(f"the file is truncated (an interrupted copy or write?), not a usable {what}",
                             path, f"copy it again or {fix}") from None
        raise StoreError(f"not an HDF5 file, so not {_a(what)}", path, fix) from None
    try:
        with damage_is_store_error(path, what, fix):
            found = read_attr(f, "format")
            if found != fmt:
                other = {CUTOUTS_FORMAT: "a cutouts file", STORE_FORMAT: "an embedding store",
                         RANKING_FORMAT: "a ranking file"}.get(found)
                msg = f"this is {other}, not {_a(what)}" if other else \
                    f"not a galexplorer {what} (format attribute {found!r})"
                raise StoreError(msg, path, fix)
            version = read_attr(f, "version")
            if not isinstance(version, int) or version < 1:
                raise StoreError(f"the {what} has no valid schema version", path, fix)
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the {what} uses schema version {version}, newer than this galexplorer "
                    f"({__version__}) reads (version {SCHEMA_VERSION})", path,
                    "upgrade galexplorer: pip install -U galexplorer")
    except BaseException:
        f.close()
        raise
    return f


def indexed(group: h5py.Group, count: int) -> bool:
    """Whether ``/objects`` has a usable sorted id index (``id_order``: (count,) integers)."""
    dset = group.get("id_order")
    return isinstance(dset, h5py.Dataset) and dset.shape == (count,) and dset.dtype.kind in "iu"


def check_duplicates(ids: np.ndarray, path: Path, what: str, fix: str) -> None:
    """Raise StoreError when ``ids`` repeat (naming up to three)."""
    if len(set(ids)) != len(ids):
        u, c = np.unique(np.asarray(ids, dtype=object).astype(str), return_counts=True)
        dup = u[c > 1][:3]
        raise StoreError(f"the {what} has duplicate object ids ({', '.join(map(str, dup))})", path, fix)


def check_objects(f: h5py.File, path: Path, n: int | None, what: str, fix: str) -> np.ndarray | None:
    """Check /objects exists, that its arrays agree in length (and with ``n``) and ids are unique.

    Returns:
        (N,) the ids (object array of str), so that readers need not decode them twice; None
        when the file has the sorted id index ``objects/id_order`` (the ids are then read on
        demand, and checked for repeats when all are read).
    """
    if "objects" not in f or "id" not in f["objects"]:
        raise StoreError(f"the {what} has no objects/id dataset (incomplete file)", path, fix)
    g = f["objects"]
    count = g["id"].shape[0]
    if n is not None and count != n:
        raise StoreError(f"the {what} is inconsistent: {count} ids but {n} rows of data", path, fix)
    names = ["ra", "dec", "source"] + [f"columns/{c}" for c in g.get("columns", {})]
    for name in names:
        if name in g and g[name].shape[0] != count:
            raise StoreError(f"the {what} is inconsistent: objects/{name} has {g[name].shape[0]} rows "
                             f"but there are {count} ids", path, fix)
    if indexed(g, count):   # the writer checked the ids are unique; read them on demand
        return None
    try:
        ids = g["id"].asstr()[:]
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(f"the {what} is damaged: objects/id cannot be read ({exc})", path, fix) from None
    check_duplicates(ids, path, what, fix)
    return np.asarray(ids, dtype=object)
