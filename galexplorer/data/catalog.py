"""The input catalogue: a table of objects with an id, a sky position and any other columns.

Formats: CSV (comma, tab or semicolon separated, sniffed from the header line; UTF-8, optional
BOM) read by galexplorer so that ids stay exactly as written; FITS binary tables, VOTable, ECSV
and IPAC tables read with ``astropy.table.Table.read``, recognised by ``data/registry.py`` (by
suffix — ``.fits``/``.fit``/``.fits.gz``, ``.vot``/``.votable``/``.xml``, ``.ecsv``,
``.tbl``/``.ipac`` — or by content); any other file is read as CSV.

Column names are matched case-insensitively (surrounding spaces ignored) against the one table
:data:`COLUMN_NAMES`, which HDF5 cubes and external embedding tables use too:

* id: ``id``, ``objid``, ``obj_id``, ``object_id``, ``objectid``, ``source_id``, ``name``,
  ``objname``, ``object`` (and ``OBJID``, ``ID`` ..., any case)
* ra: ``ra``, ``ra_deg``, ``raj2000``, ``ra_icrs``, ``alpha_j2000``; dec likewise
  (``dec``, ``dec_deg``, ``dej2000``, ``decj2000``, ``de_icrs``, ``dec_icrs``, ``delta_j2000``);
  degrees, or sexagesimal (``03:32:38.5``, ``-27:46:57``, RA in hours), converted with
  ``SkyCoord``. A numeric column's unit is honoured (``deg``, ``hourangle``/``h``, ``rad``,
  ``arcsec`` ...); sexagesimal RA is in hours unless its unit says degrees (``d:m:s``)
* x, y: pixel position in a mosaic (``x``, ``y``, ``x_pix``, ``y_pix``, ``xpix``, ``ypix``,
  ``x_image``, ``y_image``)
* path: the image file of each object (``path``, ``file``, ``filename``, ``image``)

Every column except id, ra and dec is kept: it becomes ``objects/columns/<name>`` in the
cutouts file. A CSV column whose every non-empty value is an integer is stored as int64; with
some empty values, or decimals, as float64 (empty = NaN); anything else as text (empty = "").
Typed tables keep their types (integers with masked values become float64 with NaN; vector
columns are left out). Values and names are stripped of surrounding spaces.
"""

from __future__ import annotations

import csv
import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import registry

log = logging.getLogger(__name__)

#: THE table of recognised column names, per role; matched without case or surrounding spaces,
#: first match wins. Used by catalogues (``ingest --catalog``, ``embed --catalog``), HDF5 cubes
#: (``data/hdf5.py``) and external embedding tables (``explore/external.py``).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "objid", "obj_id", "object_id", "objectid", "source_id", "sourceid", "name", "objname",
           "object_name", "object", "id_str", "ids", "iauname", "galaxy_id", "dr8_id", "names"),
    "ra": ("ra", "ra_deg", "radeg", "raj2000", "ra_j2000", "ra_icrs", "alpha_j2000", "alpha"),
    "dec": ("dec", "dec_deg", "decdeg", "dej2000", "decj2000", "dec_j2000", "de_icrs", "dec_icrs",
            "delta_j2000", "delta"),
    "x": ("x", "x_pix", "xpix", "x_pixel", "x_image"),
    "y": ("y", "y_pix", "ypix", "y_pixel", "y_image"),
    "path": ("path", "file", "filename", "file_name", "image", "image_path"),
}
ID_NAMES = COLUMN_NAMES["id"]
RA_NAMES = COLUMN_NAMES["ra"]
DEC_NAMES = COLUMN_NAMES["dec"]
X_NAMES = COLUMN_NAMES["x"]
Y_NAMES = COLUMN_NAMES["y"]
PATH_NAMES = COLUMN_NAMES["path"]

PURPOSE = "catalog"        # the registry's purpose: the readers at the end of this module


def find_column(names: list[str], role: str) -> str | None:
    """The column of ``names`` playing ``role`` (id, ra, dec, x, y, path) by :data:`COLUMN_NAMES`."""
    lower: dict[str, str] = {}
    for n in names:
        lower.setdefault(n.strip().lower(), n)
    return next((lower[k] for k in COLUMN_NAMES[role] if k in lower), None)


def sniff_delimiter(header_line: str, path: str | Path | None = None) -> str:
    """The separator of a delimited text file from its header line: tab for ``.tsv``, else
    whichever of comma, tab and semicolon occurs most (comma on a tie)."""
    if path is not None and str(path).lower().endswith(registry.TAB_SEPARATED):
        return "\t"
    return max([",", "\t", ";"], key=header_line.count) if header_line else ","


_FIX = "a catalogue is a CSV file with a header row, e.g. id,ra,dec,z"


@dataclass
class Catalog:
    """A catalogue read from CSV.

    Attributes:
        path: the CSV file.
        ids: (N,) str object ids, or None when the catalogue has no id column.
        ra, dec: (N,) float64 degrees (ICRS), NaN where empty; None without those columns.
        x, y: (N,) float64 pixel positions (as written in the file), or None.
        paths: (N,) str image paths as written (relative to the catalogue's folder), or None.
        columns: every column except id, ra and dec, in file order; (N,) int64, float64 or
            object (str) arrays.
        names: which file column each role came from, e.g. ``{"id": "OBJID", "ra": "RA"}``.
    """

    path: Path
    ids: np.ndarray | None
    ra: np.ndarray | None
    dec: np.ndarray | None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    paths: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.n

    @property
    def n(self) -> int:
        for arr in (self.ids, self.ra, self.x, self.paths, *self.columns.values()):
            if arr is not None:
                return len(arr)
        return 0

    @property
    def has_sky(self) -> bool:
        return self.ra is not None and self.dec is not None

    @property
    def has_xy(self) -> bool:
        return self.x is not None and self.y is not None

    def row_ids(self) -> np.ndarray:
        """Object ids of the rows: the id column, else the 0-based row number."""
        if self.ids is not None:
            return self.ids
        return np.array([str(i) for i in range(self.n)], dtype=object)

    def column_rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The kept columns at ``rows`` ((n,) int indices into the catalogue)."""
        rows = np.asarray(rows, dtype=np.int64)
        return {name: values[rows] for name, values in self.columns.items()}


def _find(header_lower: list[str], candidates: tuple[str, ...], forced: str | None, role: str,
          path: Path, header: list[str]) -> int | None:
    if forced is not None:
        key = forced.strip().lower()
        if key not in header_lower:
            raise InputError(f"no column {forced!r} for {role} (have: {', '.join(header)})", path,
                             f"check the --{role}-column option")
        return header_lower.index(key)
    for name in candidates:
        if name in header_lower:
            return header_lower.index(name)
    return None


def _parse_numbers(values: list[str]) -> np.ndarray | None:
    """int64 or float64 array if every non-empty value is a number, else None."""
    if all(v == "" for v in values):
        return np.full(len(values), np.nan)
    ints = True
    out = []
    for v in values:
        if v == "":
            ints = False
            out.append(np.nan)
            continue
        try:
            out.append(int(v))
            continue
        except ValueError:
            ints = False
        try:
            out.append(float(v))
        except ValueError:
            return None
    if ints:
        try:
            return np.array(out, dtype=np.int64)
        except OverflowError:
            return np.array(out, dtype=np.float64)
    return np.array(out, dtype=np.float64)


def _parse_coords(ra_text: list[str], dec_text: list[str], path: Path, ra_in_degrees: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = _parse_numbers(ra_text), _parse_numbers(dec_text)
    if ra is not None and dec is not None:
        return ra.astype(np.float64), dec.astype(np.float64)
    # sexagesimal: RA in hours, Dec in degrees, as most catalogues write them (unless the
    # column's unit says the RA is in degrees, e.g. 'd:m:s')
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    ra_unit = u.deg if ra is not None or ra_in_degrees else u.hourangle

    ra_out = np.full(len(ra_text), np.nan)
    dec_out = np.full(len(dec_text), np.nan)
    have = np.array([bool(r) and bool(d) for r, d in zip(ra_text, dec_text)])
    if have.any():
        try:
            sc = SkyCoord([r for r, h in zip(ra_text, have) if h], [d for d, h in zip(dec_text, have) if h],
                          unit=(ra_unit, u.deg), frame="icrs")
        except (ValueError, TypeError) as exc:
            raise InputError(f"ra/dec are neither numbers (degrees) nor sexagesimal ({exc})", path,
                             "write ra and dec in degrees, e.g. 53.1624,-27.7914") from None
        ra_out[have], dec_out[have] = sc.ra.deg, sc.dec.deg
    return ra_out, dec_out


_HOURS = ("h", "hr", "hour", "hours", "hourangle", "h:m:s", "hms")


def _angle_factor(unit: str | None, column: str, path: Path) -> float:
    """Degrees per unit of a numeric ra/dec column (no unit: degrees)."""
    if not unit:
        return 1.0
    if unit.strip().lower() in _HOURS:
        return 15.0
    from astropy import units as u

    try:
        q = u.Unit(unit)
    except ValueError:
        log.warning("%s: column %r has unit %r, which astropy does not know; read as degrees", path, column, unit)
        return 1.0
    if not q.is_equivalent(u.deg):
        raise InputError(f"column {column!r} has unit {unit!r}, which is not an angle", path,
                         "give ra/dec in deg, hourangle or rad, or sexagesimal text")
    return float(q.to(u.deg))


def _read_table(path: Path, fmt: registry.Format
                ) -> tuple[list[str], list[list[str] | np.ndarray], dict[str, str | None]]:
    """A FITS binary table, VOTable, ECSV or IPAC table through ``astropy.table.Table.read``:
    (column names, columns as int64/float64 arrays or lists of str, units)."""
    import warnings

    from astropy.table import Table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # unit and VOTable-schema warnings of real-world files
            table = Table.read(path, format=fmt.astropy)
    except Exception as exc:  # astropy raises many kinds for a damaged or foreign file
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot be read as a {fmt.title} table ({first})", path,
                         f"give a table with a header row: {registry.describe(PURPOSE)}") from None
    header: list[str] = []
    cols: list[list[str] | np.ndarray] = []
    units: dict[str, str | None] = {}
    for name in table.colnames:
        c = table[name]
        if c.ndim != 1:
            log.warning("%s: column %r holds arrays (shape %s per row); it is left out", path, name, c.shape[1:])
            continue
        arr = np.asarray(c)
        mask = np.ma.getmaskarray(c) if getattr(c, "mask", None) is not None else np.zeros(len(c), bool)
        kind = arr.dtype.kind
        if kind in "iub" and not mask.any() and (kind != "u" or len(arr) == 0 or arr.max() < 2 ** 63):
            col: list[str] | np.ndarray = arr.astype(np.int64)
        elif kind in "iubf":
            col = arr.astype(np.float64)
            col[mask] = np.nan
        else:
            col = ["" if m else (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).strip()
                   for v, m in zip(arr.tolist(), mask.tolist())]
        header.append(str(name).strip())
        cols.append(col)
        units[header[-1]] = str(c.unit) if c.unit is not None else None
    if not header or not len(cols[0]):
        raise InputError("the catalogue is empty", path, _FIX)
    return header, cols, units


def _read_csv(path: Path, fmt: registry.Format
              ) -> tuple[list[str], list[list[str] | np.ndarray], dict[str, str | None]]:
    """A delimited text file (comma, tab or semicolon; UTF-8, optional BOM; gzipped when its name
    ends in ``.gz``), values as written:
    (column names, columns as lists of str, no units)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open   # .csv.gz, .tsv.gz
    try:
        with opener(path, "rt", newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            first = sample.splitlines()[0] if sample else ""
            delim = sniff_delimiter(first, path)
            rows = list(csv.reader(fh, delimiter=delim))
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError):
        raise InputError("the catalogue is not UTF-8 text", path, _FIX) from None
    except csv.Error as exc:
        raise InputError(f"not a readable CSV file ({exc})", path, _FIX) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError("the catalogue is empty", path, _FIX)
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    lower = [h.lower() for h in header]
    dup = sorted({h for h in lower if lower.count(h) > 1})
    if dup:
        raise InputError(f"duplicate column names {', '.join(dup)} (compared without case)", path,
                         "rename the columns so every name is unique")
    for k, r in enumerate(body):
        if len(r) != len(header):
            raise InputError(f"row {k + 2} has {len(r)} values but the header has {len(header)} columns",
                             path, "quote values that contain the separator")
    cols: list[list[str] | np.ndarray] = [[r[j].strip() for r in body] for j in range(len(header))]
    return header, cols, {}


def _texts(col: list[str] | np.ndarray) -> list[str]:
    """A column as text (ids, paths): integers without a decimal point, NaN as empty."""
    if isinstance(col, list):
        return col
    if col.dtype.kind == "f":
        return ["" if not np.isfinite(v) else str(int(v)) if float(v).is_integer() else repr(float(v))
                for v in col.tolist()]
    return [str(v) for v in col.tolist()]


def _numbers(col: list[str] | np.ndarray) -> np.ndarray | None:
    return _parse_numbers(col) if isinstance(col, list) else col


def _safe_column_name(name: str) -> str:
    # '/' would make an HDF5 group; '.' alone is not a valid name
    safe = name.replace("/", "_")
    return "_" if safe in ("", ".") else safe


def read_catalog(path: str | Path, id_column: str | None = None, ra_column: str | None = None,
                 dec_column: str | None = None) -> Catalog:
    """Read a catalogue: CSV (comma, tab or semicolon separated, UTF-8, optional BOM), or a FITS
    binary table, VOTable, ECSV or IPAC table (``astropy.table.Table.read``).

    Args:
        path: the catalogue; a CSV's first row names the columns.
        id_column, ra_column, dec_column: force these columns (case-insensitive) instead of the
            usual names listed in this module's docstring.

    Returns:
        A :class:`Catalog`; ids are text exactly as written (minus surrounding spaces).

    Raises:
        InputError: missing or unreadable file, no header, ragged rows, duplicate or empty ids,
            duplicate column names, ra without dec, ra/dec that are not coordinates or whose
            unit is not an angle.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such catalogue file" if not path.exists() else "is a folder, not a catalogue",
                         path, _FIX)
    # by suffix, else by its first bytes; anything else is read as delimited text
    fmt = registry.identify(path, PURPOSE, fallback="csv")
    header, cols, units = registry.get_reader(fmt.name, PURPOSE)(path, fmt)
    return _build(path, header, cols, units, id_column, ra_column, dec_column)


def _build(path: Path, header: list[str], cols: list[list[str] | np.ndarray], units: dict[str, str | None],
           id_column: str | None, ra_column: str | None, dec_column: str | None) -> Catalog:
    """The catalogue from its columns (text lists from CSV, or typed arrays from Table.read)."""
    lower = [h.lower() for h in header]
    dup = sorted({h for h in lower if lower.count(h) > 1})
    if dup:
        raise InputError(f"duplicate column names {', '.join(dup)} (compared without case)", path,
                         "rename the columns so every name is unique")
    i_id = _find(lower, ID_NAMES, id_column, "id", path, header)
    i_ra = _find(lower, RA_NAMES, ra_column, "ra", path, header)
    i_dec = _find(lower, DEC_NAMES, dec_column, "dec", path, header)
    i_x = _find(lower, X_NAMES, None, "x", path, header)
    i_y = _find(lower, Y_NAMES, None, "y", path, header)
    i_path = _find(lower, PATH_NAMES, None, "path", path, header)
    if (i_ra is None) != (i_dec is None):
        raise InputError("the catalogue has " + ("ra but no dec" if i_dec is None else "dec but no ra") +
                         " column", path, "give both, in degrees")
    names = {role: header[i] for role, i in
             [("id", i_id), ("ra", i_ra), ("dec", i_dec), ("x", i_x), ("y", i_y), ("path", i_path)]
             if i is not None}

    ids = None
    if i_id is not None:
        ids = np.array(_texts(cols[i_id]), dtype=object)
        empty = [k for k, v in enumerate(ids) if v == ""]
        if empty:
            raise InputError(f"{len(empty)} row(s) without an id (first: row {empty[0] + 2})", path,
                             "give every object an id")
        if any("\x00" in v for v in ids):
            raise InputError("an id contains a NUL character", path, "remove it")
        uniq, counts = np.unique(ids.astype(str), return_counts=True)
        if (counts > 1).any():
            d = uniq[counts > 1]
            raise InputError(f"{len(d)} duplicate id(s) in column {header[i_id]!r} "
                             f"(first: {', '.join(repr(str(v)) for v in d[:3])})", path,
                             "make every id unique")
    ra = dec = None
    if i_ra is not None:
        ra_col, dec_col = cols[i_ra], cols[i_dec]
        ra_unit, dec_unit = units.get(header[i_ra]), units.get(header[i_dec])
        if isinstance(ra_col, np.ndarray) and isinstance(dec_col, np.ndarray):
            ra = ra_col.astype(np.float64) * _angle_factor(ra_unit, header[i_ra], path)
            dec = dec_col.astype(np.float64) * _angle_factor(dec_unit, header[i_dec], path)
        else:
            in_deg = bool(ra_unit) and ra_unit.strip().lower() not in _HOURS and "h" not in ra_unit.lower()
            ra, dec = _parse_coords(_texts(ra_col), _texts(dec_col), path, ra_in_degrees=in_deg)
        half = np.isfinite(ra) != np.isfinite(dec)
        if half.any():   # a position needs both: such a row has none (as for sexagesimal cells)
            log.warning("%s: %d row(s) with only one of ra/dec (first: row %d) get no position", path,
                        int(half.sum()), int(np.flatnonzero(half)[0]) + 2)
            ra, dec = np.where(half, np.nan, ra), np.where(half, np.nan, dec)
        bad = np.isfinite(ra) & ((ra < -360) | (ra > 360) | (np.abs(dec) > 90))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(f"row {k + 2}: ra={ra[k]}, dec={dec[k]} is not a sky position in degrees",
                             path, "ra in [0, 360), dec in [-90, 90]")
        ra = np.where(np.isfinite(ra), np.mod(ra, 360.0), ra)
    xs = ys = None
    if i_x is not None and i_y is not None:
        xs, ys = _numbers(cols[i_x]), _numbers(cols[i_y])
        if xs is None or ys is None:
            xs = ys = None   # not pixel positions after all: keep them as ordinary columns
        else:
            xs, ys = xs.astype(np.float64), ys.astype(np.float64)
    paths = np.array(_texts(cols[i_path]), dtype=object) if i_path is not None else None

    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        if j in (i_id, i_ra, i_dec):
            continue
        key = _safe_column_name(name)
        if key in columns:
            raise InputError(f"columns {name!r} and another become the same name {key!r}", path,
                             "rename one of them")
        nums = _numbers(cols[j])
        columns[key] = nums if nums is not None else np.array(cols[j], dtype=object)
    cat = Catalog(path=path, ids=ids, ra=ra, dec=dec, x=xs, y=ys, paths=paths, columns=columns, names=names)
    log.debug("catalogue %s: %d rows, roles %s, columns %s", path, cat.n, names, list(columns))
    return cat


registry.register_reader("fits", PURPOSE, _read_table)
registry.register_reader("csv", PURPOSE, _read_csv)
for _name in ("votable", "ecsv", "ipac"):
    registry.register_reader(_name, PURPOSE, _read_table)
