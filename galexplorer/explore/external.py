"""Bring your own embeddings: ``galexplorer embed [CUTOUTS.h5] --embeddings FILE -o STORE.h5``.

Zoobot or other foundation-model features, published self-supervised catalogues, Astronomaly
feature tables: any (N, D) representation becomes the same store that ``embed --run`` builds
(thumbnails from the cutouts, PCA, 2-D projection, anomaly score, clusters), through the same
:func:`galexplorer.explore.pipeline.build_store`.

Formats (chosen by the file's suffix, else its first bytes: ``data/registry.py``, where the readers
below register for the ``embeddings`` purpose):

* ``.npy``: one (N, D) numeric array, rows in the order of the cutouts file (memory-mapped);
* HDF5 (``.h5 .hdf5 .hdf .he5``): a 2-D numeric dataset (``--dataset``) and optionally a 1-D id
  dataset (``--id-dataset``). Without the options the obvious choice is taken: the only 2-D
  numeric dataset (or the only one named embeddings/representations/features/predictions), and
  an id dataset named id_str/id/ids/object_id/... of the same length. Zoobot's layout
  (``predictions`` (N, D) or (N, D, 1) + ``id_str``) and a galexplorer store (``embeddings`` +
  ``objects/id``) are recognised;
* Parquet (``.parquet .pq``), CSV (``.csv .csv.gz .tsv``), and FITS binary tables, VOTable,
  ECSV and IPAC (``.fits .fit .fits.gz .vot .votable .xml .ecsv .tbl .ipac``, read whole with
  ``astropy.table.Table.read``; a vector column such as ``EMBEDDING`` (D values per row) becomes
  the features ``EMBEDDING_0`` … ``EMBEDDING_{D-1}``): an id column (``--id-column``,
  else the usual names) and feature columns (``--feature-columns``, globs such as ``feat_*``,
  comma-separated; else the ``feat_*`` columns when there are some, else every other numeric
  column except ra/dec).

Ids are matched to the cutouts file in any order (as text; integer ids compare as integers
written in decimal; when nothing matches, file paths such as Zoobot's ``id_str`` are compared by
their stem). Objects missing on either side are counted; ``allow_missing`` keeps the
intersection, in the cutouts' order. Without ids the row counts must agree.

Memory stays flat in N: ``.npy`` is memory-mapped; HDF5 is read in row blocks (or staged when
its rows are not in the cutouts' order); Parquet and CSV are streamed once into a temporary
memory-mapped file beside the output, removed afterwards.
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import hashlib
import logging
import shutil
import tempfile
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import progress
from ..data import registry
from ..data.catalog import COLUMN_NAMES, sniff_delimiter
from ..errors import ConfigError, InputError
from ..store.atomic import remove_stale_temporaries, temporary_prefix
from ..store.schema import ObjectTable

log = logging.getLogger(__name__)

PURPOSE = "embeddings"      # the registry's purpose: readers below register for it

# the one table of recognised id / ra / dec names (data/catalog.py), lower case
ID_NAMES, RA_NAMES, DEC_NAMES = COLUMN_NAMES["id"], COLUMN_NAMES["ra"], COLUMN_NAMES["dec"]
FEATURE_DATASET_NAMES = ("embeddings", "embedding", "representations", "representation", "features",
                         "feats", "predictions")
READ_ROWS = 8192
_HINT = "see docs/embeddings.md"


@dataclass
class ExternalEmbeddings:
    """Where the embeddings come from, as given on the command line.

    Attributes:
        path: the embeddings file (.npy, HDF5, Parquet or CSV).
        dataset: HDF5 dataset holding the (N, D) embeddings.
        id_dataset: HDF5 dataset holding the (N,) ids.
        id_column: id column of a Parquet or CSV file (and of ``catalog``).
        feature_columns: feature columns of a Parquet or CSV file: globs, comma-separated.
        allow_missing: keep the objects present on both sides instead of failing.
        catalog: a catalogue CSV with ids, ra/dec and columns (for stores without cutouts).
    """

    path: str | Path
    dataset: str | None = None
    id_dataset: str | None = None
    id_column: str | None = None
    feature_columns: str | None = None
    allow_missing: bool = False
    catalog: str | Path | None = None


# ---------------------------------------------------------------------------------------------
# readers: each opens a file and gives n, dim, ids (or None) and row access
# ---------------------------------------------------------------------------------------------

@dataclass
class _Opened:
    """An embeddings file ready to read.

    ``read(rows)`` returns (len(rows), dim) float32 for increasing or arbitrary int rows.
    ``sequential`` is True when random access is slow (rows should be asked in increasing order).
    """

    fmt: str
    n: int
    dim: int
    ids: np.ndarray | None
    read: Callable[[np.ndarray], np.ndarray]
    record: dict[str, Any]
    sequential: bool = False
    ra: np.ndarray | None = None
    dec: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None


def _as_ids(values: np.ndarray) -> np.ndarray:
    """Ids as an object array of str: bytes decoded, integral numbers written as integers."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        return np.array([str(v) for v in arr.tolist()], dtype=object)
    if arr.dtype.kind == "S" or (arr.dtype == object and len(arr) and isinstance(arr[0], bytes)):
        return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr], dtype=object)
    return np.array([str(v) for v in arr.tolist()], dtype=object)


def _check_2d(shape: tuple[int, ...], dtype, path: Path, what: str) -> None:
    if len(shape) != 2:
        raise InputError(f"{what} has shape {shape}, but embeddings must be 2-D (N objects, D features)",
                         path, "save one row per object, e.g. np.save(f, x.reshape(len(x), -1))")
    if shape[0] < 1 or shape[1] < 1:
        raise InputError(f"{what} is empty (shape {shape})", path, _HINT)
    if np.dtype(dtype).kind not in "fiub":
        raise InputError(f"{what} holds {np.dtype(dtype)} values, not numbers", path, _HINT)


def _open_npy(path: Path, src: ExternalEmbeddings) -> _Opened:
    for opt, name in ((src.dataset, "--dataset"), (src.id_dataset, "--id-dataset"),
                      (None if src.catalog else src.id_column, "--id-column"),
                      (src.feature_columns, "--feature-columns")):
        if opt:
            raise ConfigError(f"{name} does not apply to a .npy file (it holds one array and no ids)", path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError) as exc:   # numpy parses the header
        raise InputError(f"not a readable .npy array ({str(exc).splitlines()[0]})", path,
                         "write it with numpy.save") from None
    if not isinstance(arr, np.ndarray):
        raise InputError("holds several arrays (.npz?), not one (N, D) array", path, "use numpy.save")
    _check_2d(arr.shape, arr.dtype, path, "the array")

    n, dim = arr.shape
    handle = open(path, "rb") if arr.flags.c_contiguous else None   # noqa: SIM115 - closed by _Opened.close

    def read(rows: np.ndarray) -> np.ndarray:
        index = _as_index(rows)
        if handle is not None and isinstance(index, slice):
            # a block of rows by a plain read, not through the memory map: mapped pages stay
            # resident and counted in the process's memory (5 GB at 10^7 x 128) until evicted
            start, stop, _ = index.indices(n)
            handle.seek(arr.offset + start * dim * arr.dtype.itemsize)
            block = np.fromfile(handle, dtype=arr.dtype, count=(stop - start) * dim)
            return np.asarray(block.reshape(stop - start, dim), dtype=np.float32)
        return np.asarray(arr[index], dtype=np.float32)

    return _Opened("npy", n, dim, None, read, {"format": "npy"},
                   close=handle.close if handle is not None else (lambda: None))


def _as_index(rows: np.ndarray) -> slice | np.ndarray:
    """A slice when ``rows`` are consecutive (fast for memmaps and HDF5), else the rows."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows


def _h5_datasets(f: h5py.File) -> dict[str, h5py.Dataset]:
    found: dict[str, h5py.Dataset] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = obj

    f.visititems(visit)
    return found


def _numeric(dtype) -> bool:
    return np.dtype(dtype).kind in "fiub"


def _open_hdf5(path: Path, src: ExternalEmbeddings) -> _Opened:
    for opt, name in ((None if src.catalog else src.id_column, "--id-column"),
                      (src.feature_columns, "--feature-columns")):
        if opt:
            raise ConfigError(f"{name} is for Parquet/CSV files; an HDF5 file takes --dataset and --id-dataset",
                              path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError("not a readable HDF5 file", path, _HINT) from None
    try:
        dsets = _h5_datasets(f)

        name = _h5_feature_dataset(dsets, src, path)
        d = dsets[name]
        squeeze = d.ndim == 3 and d.shape[2] == 1
        if d.ndim == 3 and not squeeze:
            raise InputError(f"dataset {name!r} has shape {d.shape}: several values per feature (e.g. Zoobot "
                             "dropout passes)", path, "average the last axis and save an (N, D) dataset")
        _check_2d(d.shape[:2] if squeeze else d.shape, d.dtype, path, f"dataset {name!r}")
        n, dim = d.shape[0], d.shape[1]

        id_name = _h5_id_dataset(dsets, src, path, name, n)
        ids = None
        if id_name is not None:
            raw = dsets[id_name]
            ids = _as_ids(raw.asstr()[:] if h5py.check_string_dtype(raw.dtype) is not None else raw[:])
        coords = {}
        for role, names in (("ra", RA_NAMES), ("dec", DEC_NAMES)):
            hits = [k for k, v in dsets.items() if v.shape == (n,) and _numeric(v.dtype)
                    and k.split("/")[-1].lower() in names]
            coords[role] = np.asarray(dsets[hits[0]][:], np.float64) if len(hits) == 1 else None
        if coords["ra"] is None or coords["dec"] is None:
            coords = {"ra": None, "dec": None}
    except BaseException:
        f.close()
        raise

    def read(rows: np.ndarray) -> np.ndarray:
        index = _as_index(rows)
        if isinstance(index, np.ndarray):
            order = np.argsort(index, kind="stable")
            data = np.empty((len(index), dim), np.float32)
            data[order] = _h5_rows(d, index[order], squeeze)
            return data
        block = d[index, :, 0] if squeeze else d[index]
        return np.asarray(block, dtype=np.float32)

    record = {"format": "hdf5", "dataset": name, "id_dataset": id_name}
    return _Opened("hdf5", n, dim, ids, read, record, sequential=True, ra=coords["ra"], dec=coords["dec"],
                   close=f.close)

def _h5_feature_dataset(dsets: dict, src: ExternalEmbeddings, path: Path) -> str:
    """The dataset holding the embeddings: ``--dataset``, or the one (N, D) numeric candidate."""
    def shape_ok(d: h5py.Dataset) -> bool:
        return _numeric(d.dtype) and (d.ndim == 2 or (d.ndim == 3 and d.shape[2] == 1))

    if src.dataset:
        name = src.dataset.strip("/")
        if name not in dsets:
            raise InputError(f"no dataset {src.dataset!r} (datasets: {_list(dsets)})", path,
                             "pick one with --dataset")
    else:
        cands = [k for k, d in dsets.items() if shape_ok(d) and d.shape[0] > 0]
        named = [k for k in cands if k.split("/")[-1].lower() in FEATURE_DATASET_NAMES]
        if len(cands) == 1 or len(named) == 1:
            name = cands[0] if len(cands) == 1 else named[0]
            log.info("%s: using dataset %r for the embeddings", path, name)
        elif not cands:
            raise InputError(f"no 2-D numeric dataset to use as embeddings (datasets: {_list(dsets)})",
                             path, "save the embeddings as an (N, D) dataset")
        else:
            raise InputError(f"several datasets could be the embeddings ({', '.join(cands)})", path,
                             "choose one with --dataset NAME")
    return name


def _h5_id_dataset(dsets: dict, src: ExternalEmbeddings, path: Path, name: str, n: int) -> str | None:
    """The dataset holding the ids (``--id-dataset``, or one named like ids, or the one string
    dataset of N rows), or None."""
    id_name = None
    if src.id_dataset:
        id_name = src.id_dataset.strip("/")
        if id_name not in dsets:
            raise InputError(f"no id dataset {src.id_dataset!r} (datasets: {_list(dsets)})", path,
                             "pick one with --id-dataset")
        if dsets[id_name].shape != (n,):
            raise InputError(f"id dataset {id_name!r} has shape {dsets[id_name].shape}, expected ({n},) "
                             f"like the {n} rows of {name!r}", path, "give one id per row")
    else:
        ones = [k for k, v in dsets.items() if v.shape == (n,) and k != name]
        named = [k for k in ones if k.split("/")[-1].lower() in ID_NAMES or k == "objects/id"]
        strings = [k for k in ones if h5py.check_string_dtype(dsets[k].dtype) is not None
                   or dsets[k].dtype.kind == "S"]
        pick = named if len(named) == 1 else strings if len(strings) == 1 else []
        if pick:
            id_name = pick[0]
            log.info("%s: using dataset %r for the ids", path, id_name)
    return id_name



def _h5_rows(d: h5py.Dataset, rows: np.ndarray, squeeze: bool) -> np.ndarray:
    """Increasing rows of an HDF5 dataset: one read of the covering block when dense."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    if hi - lo <= 4 * len(rows):
        block = d[lo:hi, :, 0] if squeeze else d[lo:hi]
        return np.asarray(block, np.float32)[rows - lo]
    return np.asarray(d[rows, :, 0] if squeeze else d[rows], np.float32)


def _list(dsets: dict) -> str:
    names = list(dsets)
    return ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "") if names else "none"


def _pick_columns(names: list[str], types: dict[str, str], src: ExternalEmbeddings, path: Path
                  ) -> tuple[str | None, list[str], str, str | None, str | None]:
    """(id column, feature columns, how they were chosen, ra column, dec column)."""
    lower = {c.lower(): c for c in names}
    if src.id_column:
        if src.id_column not in names:
            if src.id_column.lower() not in lower:
                raise InputError(f"no id column {src.id_column!r} (columns: {_cols(names)})", path,
                                 "check --id-column")
        id_col = src.id_column if src.id_column in names else lower[src.id_column.lower()]
    else:
        hits = [lower[k] for k in ID_NAMES if k in lower]
        id_col = hits[0] if hits else None
    ra = next((lower[k] for k in RA_NAMES if k in lower), None)
    dec = next((lower[k] for k in DEC_NAMES if k in lower), None)
    if src.feature_columns:
        globs = [g.strip() for g in src.feature_columns.split(",") if g.strip()]
        feats = [c for c in names if c != id_col and any(fnmatch.fnmatchcase(c, g) for g in globs)]
        if not feats:
            raise InputError(f"no column matches --feature-columns {src.feature_columns!r} "
                             f"(columns: {_cols(names)})", path, "globs are case-sensitive, e.g. 'feat_*'")
        bad = [c for c in feats if types[c] != "numeric"]
        if bad:
            raise InputError(f"feature column {bad[0]!r} is not numeric ({types[bad[0]]})"
                             + (f", nor are {len(bad) - 1} more" if len(bad) > 1 else ""), path,
                             "choose numeric columns with --feature-columns")
        how = f"--feature-columns {src.feature_columns}"
    else:
        feats = [c for c in names if fnmatch.fnmatchcase(c.lower(), "feat_*") and c != id_col]
        how = "the feat_* columns"
        if not feats:
            feats = [c for c in names if c not in (id_col, ra, dec) and types[c] == "numeric"]
            how = "every numeric column except id and ra/dec"
            skipped = [c for c in names if c not in (id_col, ra, dec) and types[c] != "numeric"]
            if skipped:
                log.info("%s: not using non-numeric columns %s as features", path, ", ".join(skipped[:5]))
        bad = [c for c in feats if types[c] != "numeric"]
        if bad:
            raise InputError(f"feature column {bad[0]!r} is not numeric ({types[bad[0]]})", path,
                             "choose the feature columns with --feature-columns")
        if not feats:
            raise InputError(f"no numeric feature columns (columns: {_cols(names)})", path,
                             "choose them with --feature-columns 'feat_*'")
        log.info("%s: using %d feature columns (%s)", path, len(feats), how)
    if ra is not None and dec is not None and (types[ra] != "numeric" or types[dec] != "numeric"):
        ra = dec = None
    return id_col, feats, how, ra, dec


def _cols(names: list[str]) -> str:
    return ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")


def _arrow_kind(t) -> str:
    import pyarrow as pa

    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t) \
            or pa.types.is_decimal(t):
        return "numeric"
    return str(t)


def _batch_matrix(batch, feats: list[str]) -> np.ndarray:
    cols = [batch.column(c).to_numpy(zero_copy_only=False) for c in feats]
    out = np.empty((batch.num_rows, len(feats)), np.float32)
    for j, c in enumerate(cols):
        out[:, j] = np.asarray(c, dtype=np.float64) if c.dtype == object else c  # nulls -> NaN
    return out


class _Staging:
    """A temporary (n, dim) float32 memory-mapped file beside the output, removed on close."""

    def __init__(self, output: Path):
        output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(output)
        self.folder = Path(tempfile.mkdtemp(prefix=temporary_prefix(output, "staging"), dir=output.parent))
        self.arr: np.ndarray | None = None

    def create(self, n: int, dim: int) -> np.ndarray:
        self.arr = np.lib.format.open_memmap(self.folder / "embeddings.npy", mode="w+", dtype=np.float32,
                                             shape=(n, dim))
        return self.arr

    def close(self) -> None:
        self.arr = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _open_table(path: Path, src: ExternalEmbeddings, staging: _Staging, fmt: str, astropy: str | None = None
                ) -> _Opened:
    """A Parquet (``fmt`` "parquet"), CSV ("csv") or astropy-read table ("table", ``astropy`` its
    ``Table.read`` format), streamed into ``staging``."""
    import pyarrow as pa

    for opt, name in ((src.dataset, "--dataset"), (src.id_dataset, "--id-dataset")):
        if opt:
            raise ConfigError(f"{name} is for HDF5 files; a {fmt} file takes --id-column and --feature-columns",
                              path)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            schema = pf.schema_arrow
            names = list(schema.names)
            types = {c: _arrow_kind(schema.field(c).type) for c in names}
            n = pf.metadata.num_rows
            id_col, feats, how, ra, dec = _pick_columns(names, types, src, path)
            keep = [c for c in (id_col, ra, dec) if c]
            batches = pf.iter_batches(batch_size=READ_ROWS, columns=keep + feats)
        elif fmt == "table":
            table = _astropy_as_arrow(path, astropy)
            names = list(table.schema.names)
            types = {c: _arrow_kind(table.schema.field(c).type) for c in names}
            n = table.num_rows
            id_col, feats, how, ra, dec = _pick_columns(names, types, src, path)
            keep = [c for c in (id_col, ra, dec) if c]
            batches = table.select(keep + feats).to_batches(READ_ROWS)
        else:
            names, batches, types = _csv_batches(path, src)
            id_col, feats, how, ra, dec = _pick_columns(names, types, src, path)
            n = None
        dim = len(feats)
        parts_ids, parts_ra, parts_dec, blocks = [], [], [], []
        arr = staging.create(n, dim) if n is not None else None
        a = 0
        with progress.Bar(f"reading {path.name}", n, unit="row") as bar:
            for batch in (batches(id_col, feats, ra, dec) if callable(batches) else batches):
                m = batch.num_rows
                mat = _batch_matrix(batch, feats)
                if arr is not None:
                    arr[a:a + m] = mat
                else:
                    blocks.append(_spill(staging, mat, len(blocks)))
                if id_col:
                    parts_ids.append(batch.column(id_col).to_numpy(zero_copy_only=False))
                if ra and dec:
                    parts_ra.append(np.asarray(batch.column(ra).to_numpy(zero_copy_only=False), np.float64))
                    parts_dec.append(np.asarray(batch.column(dec).to_numpy(zero_copy_only=False), np.float64))
                a += m
                bar.update(m)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, KeyError) as exc:   # KeyError: an odd column name
        first = str(exc).strip().splitlines()[0][:200]
        raise InputError(f"cannot be read as {fmt} ({first})", path,
                         "check the file, or choose numeric --feature-columns") from None
    if a == 0:
        raise InputError("holds no rows", path, _HINT)
    if arr is None:
        arr = _gather_spilled(staging, blocks, a, dim)
    ids = None
    if id_col:
        raw = np.concatenate(parts_ids)
        empty = [k for k, v in enumerate(raw.tolist()) if v is None or v == ""] if raw.dtype == object else []
        if empty:
            raise InputError(f"id column {id_col!r} is empty in {len(empty)} row(s) (first: row {empty[0]})",
                             path, "give every row an id")
        ids = _as_ids(raw)
    ra_v = np.concatenate(parts_ra) if parts_ra else None
    dec_v = np.concatenate(parts_dec) if parts_dec else None
    record = {"format": fmt, "id_column": id_col, "feature_columns": src.feature_columns or how,
              "n_features": dim, "first_feature": feats[0], "last_feature": feats[-1]}

    def read(rows: np.ndarray) -> np.ndarray:
        return np.asarray(arr[_as_index(rows)], dtype=np.float32)

    return _Opened(fmt, a, dim, ids, read, record, ra=ra_v, dec=dec_v)


def _astropy_as_arrow(path: Path, fmt: str):
    """A FITS/VOTable/ECSV/IPAC table as a pyarrow table; vector columns spread into NAME_k."""
    import warnings

    import pyarrow as pa
    from astropy.table import Table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = Table.read(path, format=fmt)
    except Exception as exc:  # astropy raises many kinds for a damaged or foreign file
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot be read as a {fmt} table ({first})", path, _HINT) from None
    cols: dict[str, Any] = {}
    for name in t.colnames:
        c = t[name]
        arr = np.ma.filled(c, np.nan) if c.dtype.kind == "f" else np.asarray(c)
        if arr.dtype.kind in "SOU":
            arr = np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.tolist()],
                           dtype=object)
        elif arr.dtype.kind in "biuf":
            arr = np.asarray(arr, dtype=arr.dtype.newbyteorder("="))   # FITS is big-endian
        if arr.ndim == 1:
            cols[name] = arr
        elif arr.ndim == 2 and arr.dtype.kind in "iuf":
            for k in range(arr.shape[1]):
                cols[f"{name}_{k}"] = arr[:, k]
        else:
            log.warning("%s: column %r of shape %s per row is left out", path, name, arr.shape[1:])
    try:
        return pa.table(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"cannot use the table's columns ({str(exc).splitlines()[0][:160]})", path, _HINT) from None


def _spill(staging: _Staging, mat: np.ndarray, k: int) -> Path:
    p = staging.folder / f"block{k:06d}.npy"
    np.save(p, mat)
    return p


def _gather_spilled(staging: _Staging, blocks: list[Path], n: int, dim: int) -> np.ndarray:
    arr = staging.create(n, dim)
    a = 0
    for p in blocks:
        m = np.load(p)
        arr[a:a + len(m)] = m
        a += len(m)
        p.unlink()
    return arr


def _csv_header(path: Path) -> tuple[list[str], str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
            first = fh.readline()
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"not a readable text file ({exc})", path, _HINT) from None
    if not first.strip():
        raise InputError("the CSV file is empty", path, _HINT)
    delim = sniff_delimiter(first, path)
    names = [h.strip() for h in next(csv.reader([first], delimiter=delim))]
    dup = sorted({h for h in names if names.count(h) > 1})
    if dup:
        raise InputError(f"duplicate column names {', '.join(dup)}", path, "make column names unique")
    return names, delim


def _csv_batches(path: Path, src: ExternalEmbeddings):
    """The header, a batch generator factory and the column kinds inferred from the first block."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    names, delim = _csv_header(path)
    # infer kinds from the first block (pyarrow does the same); later blocks are checked as read
    lower = {c.lower(): c for c in names}
    id_guess = src.id_column if src.id_column in names else lower.get((src.id_column or "").lower()) or \
        next((lower[k] for k in ID_NAMES if k in lower), None)
    try:
        probe = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 20),
                              parse_options=pcsv.ParseOptions(delimiter=delim),
                              convert_options=pcsv.ConvertOptions(
                                  column_types={id_guess: pa.string()} if id_guess else {}))
        schema = probe.schema
        probe.close()
    except (pa.ArrowInvalid, OSError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise InputError(f"cannot be read as CSV ({first})", path, _HINT) from None
    types = {c: _arrow_kind(schema.field(c).type) for c in names}

    def batches(id_col, feats, ra, dec):
        column_types = {c: pa.float64() for c in feats}
        if id_col:
            column_types[id_col] = pa.string()
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=4 << 20),
                               parse_options=pcsv.ParseOptions(delimiter=delim),
                               convert_options=pcsv.ConvertOptions(
                                   column_types=column_types,
                                   include_columns=[c for c in (id_col, ra, dec) if c] + feats))
        try:
            yield from reader
        finally:
            reader.close()

    return names, batches, types


# ---------------------------------------------------------------------------------------------
# matching and the store
# ---------------------------------------------------------------------------------------------

def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as fh, progress.Bar(f"checksum {path.name}", size, unit="B") as bar:
        while True:
            block = fh.read(1 << 22)
            if not block:
                break
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def _examples(values, k: int = 3) -> str:
    vals = [str(v) for v in list(values)[:k]]
    return ", ".join(repr(v) for v in vals) + (", ..." if len(values) > k else "")


def _check_unique(ids: np.ndarray, path: Path, what: str) -> None:
    nul = [i for i in ids.tolist() if "\x00" in str(i)]
    if nul:
        raise InputError(f"{len(nul)} id(s) in the {what} contain a NUL character (first: {nul[0]!r})", path,
                         "remove the NUL characters from the ids")
    u, c = np.unique(ids.astype(str), return_counts=True)
    if (c > 1).any():
        d = u[c > 1]
        raise InputError(f"{len(d)} duplicate id(s) in the {what} (first: {_examples(d)})", path,
                         "every object needs a unique id")


def _stem(value: str) -> str:
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    return registry.strip_suffix(name, names=("fits", "image", "npy"))


def match_ids(want: np.ndarray, have: np.ndarray, allow_missing: bool, path: Path, want_what: str
              ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Match object ids ``want`` (store order) to the embedding file's ids ``have``.

    Returns:
        ``(keep, src_rows, info)``: the kept positions in ``want`` (increasing) and, for each, the
        row in the embeddings file; info counts missing and unmatched objects.

    Raises:
        InputError: objects missing on either side without ``allow_missing``, or no overlap.
    """
    want_s = np.asarray(want, dtype=object).astype(str)
    have_s = np.asarray(have, dtype=object).astype(str)
    mode = "id"
    index = {v: i for i, v in enumerate(have_s.tolist())}
    src = np.array([index.get(v, -1) for v in want_s.tolist()], dtype=np.int64)
    if not (src >= 0).any():
        stems = np.array([_stem(v) for v in have_s.tolist()], dtype=object).astype(str)
        if len(set(stems.tolist())) == len(stems):
            sindex = {v: i for i, v in enumerate(stems.tolist())}
            alt = np.array([sindex.get(v, -1) for v in want_s.tolist()], dtype=np.int64)
            if (alt >= 0).any():
                log.info("%s: ids matched by file-name stem (e.g. %r -> %r)", path, have_s[alt[alt >= 0][0]],
                         stems[alt[alt >= 0][0]])
                src, mode = alt, "id (file-name stem)"
    found = src >= 0
    n_missing = int((~found).sum())
    used = np.zeros(len(have_s), bool)
    used[src[found]] = True
    n_extra = int((~used).sum())
    info = {"match": mode, "n_file": len(have_s), "n_matched": int(found.sum()), "n_missing_in_file": n_missing,
            "n_unmatched_in_file": n_extra}
    if not found.any():
        raise InputError(f"none of the {len(have_s)} ids in the embeddings file (e.g. {_examples(have_s)}) "
                         f"is in the {want_what} (e.g. {_examples(want_s)})", path,
                         "check that both files describe the same objects, or choose the id "
                         "column/dataset with --id-column / --id-dataset")
    if (n_missing or n_extra) and not allow_missing:
        parts = []
        if n_missing:
            parts.append(f"{n_missing} of the {len(want_s)} objects in the {want_what} have no embedding "
                         f"(e.g. {_examples(want_s[~found])})")
        if n_extra:
            parts.append(f"{n_extra} of the {len(have_s)} embeddings match no object "
                         f"(e.g. {_examples(have_s[~used])})")
        raise InputError("; ".join(parts), path,
                         f"pass --allow-missing to keep the {int(found.sum())} objects present in both")
    if n_missing or n_extra:
        log.warning("%s: keeping the %d objects present in both; %d objects in the %s have no embedding, "
                    "%d embeddings match no object", path, int(found.sum()), n_missing, want_what, n_extra)
    keep = np.flatnonzero(found)
    return keep, src[keep], info


def embed_from_file(cutouts: str | Path | None, src: ExternalEmbeddings, output: str | Path, config):
    """Build a store from embeddings in a file instead of an encoder.

    Args:
        cutouts: the cutouts file (thumbnails, catalogue, link), or None for a store without
            images (ids and ra/dec from ``src.catalog`` or the embeddings file).
        src: the embeddings file and how to read it.
        output: the store to write (atomically; nothing is left on failure).
        config: an :class:`~galexplorer.explore.pipeline.EmbedConfig`.

    Returns:
        The pipeline's :class:`~galexplorer.explore.pipeline.EmbedReport`, whose notes count
        objects missing on either side.

    Raises:
        InputError: unreadable or unknown format, wrong shape, non-numeric features, a missing
            dataset or column, duplicate or missing ids, NaN/inf rows.
        ConfigError: options that do not apply to the format, or --catalog with a cutouts file.
        StoreError: an unreadable cutouts file.
    """
    from ..store.cutouts import CutoutStore
    from .pipeline import build_store

    config.validate()
    path, output = Path(src.path), Path(output)
    _check_paths(cutouts, src, path, output)
    read = registry.get_reader(registry.identify(path, PURPOSE).name, PURPOSE)   # suffix, else first bytes
    staging = _Staging(output)
    cut = None
    opened: _Opened | None = None
    try:
        opened = read(path, src, staging)
        if opened.ids is not None:
            _check_unique(opened.ids, path, "embeddings file")
        cut = CutoutStore(cutouts) if cutouts is not None else None
        objects, keep, src_rows, info, notes = _objects_in_store_order(opened, src, cut, opened.fmt, path)
        # HDF5 read out of order is slow: stage it once, sequentially
        if opened.sequential and len(src_rows) > 1 and np.any(np.diff(src_rows) < 0):
            opened = _stage_sequential(opened, staging, path)

        sha = _file_sha256(path)
        record = {"path": str(path.resolve()), "sha256": sha, **opened.record, "n_rows": opened.n,
                  "dim": opened.dim, **info}
        embedding_attrs = {"method": "external", "source": record, "source_path": str(path.resolve()),
                           "source_sha256": sha, "source_format": opened.fmt,
                           "source_dataset": opened.record.get("dataset") or opened.record.get("feature_columns")}
        reader = opened

        def fill(dset: h5py.Dataset) -> None:
            for a in progress.track(range(0, len(src_rows), READ_ROWS), "embeddings"):
                dset[a:a + READ_ROWS] = reader.read(src_rows[a:a + READ_ROWS])

        try:
            report = build_store(output, objects=objects, dim=opened.dim, fill=fill, config=config, cutouts=cut,
                                 rows=keep if cut is not None else None, embedding_attrs=embedding_attrs,
                                 store_attrs={"embeddings_source": record},
                                 source=f"{path.name} ({opened.fmt})")
        except InputError as exc:
            if exc.path is None:   # e.g. a NaN row: say which file it came from
                raise InputError(str(exc), path) from None
            raise
        report.notes += notes
        return report
    finally:
        if opened is not None:
            opened.close()
        if cut is not None:
            cut.close()
        staging.close()


def _check_paths(cutouts, src: ExternalEmbeddings, path: Path, output: Path) -> None:
    """The embeddings file exists and is a file; the options fit; the output overwrites no input."""
    if not path.exists():
        raise InputError("no such embeddings file", path, f"check the path; give {registry.describe(PURPOSE)}")
    if path.is_dir():
        raise InputError("is a folder, not an embeddings file", path, f"give {registry.describe(PURPOSE)}")
    if cutouts is not None and src.catalog:
        raise ConfigError("--catalog is for stores without a cutouts file (--no-cutouts); the cutouts file "
                          "already holds the catalogue")
    if path.resolve() == output.resolve() or (cutouts is not None and Path(cutouts).resolve() == output.resolve()):
        raise ConfigError("the output would overwrite an input", output, "write the store to a new file")


def _objects_in_store_order(opened: _Opened, src: ExternalEmbeddings, cut, fmt: str, path: Path):
    """Match the embeddings' rows to the objects (of the cutouts file, the catalogue, or the file
    itself). Returns ``(objects, keep, src_rows, info, notes)``: the object table in store order,
    the rows of the naming source kept, the embedding row of each, the match record and notes."""
    cat = None
    if cut is not None:
        want_ids, want_what = cut.ids, "cutouts file"
    elif src.catalog:
        from ..data.catalog import read_catalog

        # --id-column names the table's id column for Parquet/CSV, the catalogue's otherwise
        cat = read_catalog(src.catalog, id_column=src.id_column if fmt in ("npy", "hdf5") else None)
        want_ids, want_what = (cat.ids if cat.ids is not None else None), "catalogue"
    else:
        if opened.ids is None:
            raise InputError(f"a {fmt} file without ids needs a cutouts file or --catalog CSV to name its "
                             "objects", path, "give CUTOUTS.h5, or --no-cutouts --catalog CSV with one row "
                             "per embedding in the same order")
        want_ids, want_what = opened.ids, "embeddings file"

    if opened.ids is not None and want_ids is not None:
        keep, src_rows, info = match_ids(want_ids, opened.ids, src.allow_missing, path, want_what)
    else:
        n_want = len(want_ids) if want_ids is not None else cat.n
        if n_want != opened.n:
            raise InputError(f"{opened.n} embeddings without ids but {n_want} objects in the {want_what}",
                             path, "without ids the rows must be the same objects in the same order; "
                             "add ids (HDF5 --id-dataset, Parquet/CSV --id-column) to match by id")
        keep = src_rows = np.arange(opened.n)
        info = {"match": "row order", "n_file": opened.n, "n_matched": opened.n}
    notes = []
    if info.get("n_missing_in_file") or info.get("n_unmatched_in_file"):
        notes.append(f"{info['n_matched']} objects kept; {info['n_missing_in_file']} in the {want_what} "
                     f"had no embedding and {info['n_unmatched_in_file']} embeddings matched no object "
                     "(--allow-missing)")
    if cut is not None:
        objects = cut.objects.subset(keep)
    elif cat is not None:
        ids = cat.ids[keep] if cat.ids is not None else \
            opened.ids[src_rows] if opened.ids is not None else cat.row_ids()[keep]
        objects = ObjectTable(ids, None if cat.ra is None else cat.ra[keep],
                              None if cat.dec is None else cat.dec[keep], cat.column_rows(keep))
    else:
        objects = ObjectTable(opened.ids[keep], None if opened.ra is None else opened.ra[keep],
                              None if opened.dec is None else opened.dec[keep])
    return objects, keep, src_rows, info, notes


def _stage_sequential(opened: _Opened, staging: _Staging, path: Path) -> _Opened:
    arr = staging.create(opened.n, opened.dim)
    with progress.Bar(f"reading {path.name}", opened.n, unit="row") as bar:
        for a in range(0, opened.n, READ_ROWS):
            rows = np.arange(a, min(a + READ_ROWS, opened.n))
            arr[rows[0]:rows[-1] + 1] = opened.read(rows)
            bar.update(len(rows))
    opened.close()

    def read(rows: np.ndarray) -> np.ndarray:
        return np.asarray(arr[_as_index(rows)], dtype=np.float32)

    return _Opened(opened.fmt, opened.n, opened.dim, opened.ids, read, opened.record, ra=opened.ra,
                   dec=opened.dec)


# -- the readers of the embeddings purpose: open(path, src, staging) -> _Opened -----------------

def _read_npy(path: Path, src: ExternalEmbeddings, staging: _Staging) -> _Opened:
    return _open_npy(path, src)


def _read_hdf5(path: Path, src: ExternalEmbeddings, staging: _Staging) -> _Opened:
    return _open_hdf5(path, src)


def _table_reader(fmt: str, astropy: str | None = None) -> Callable[..., _Opened]:
    def read(path: Path, src: ExternalEmbeddings, staging: _Staging) -> _Opened:
        return _open_table(path, src, staging, fmt, astropy)

    return read


registry.register_reader("npy", PURPOSE, _read_npy)
registry.register_reader("hdf5", PURPOSE, _read_hdf5)
registry.register_reader("parquet", PURPOSE, _table_reader("parquet"))
registry.register_reader("csv", PURPOSE, _table_reader("csv"))
for _name in ("fits", "votable", "ecsv", "ipac"):     # astropy's Table.read; "table" in the store's record
    registry.register_reader(_name, PURPOSE, _table_reader("table", registry.get_format(_name).astropy))

__all__ = ["ExternalEmbeddings", "embed_from_file", "match_ids"]
