"""Write the ranked candidate list as CSV or VOTable.

CSV, so that astropy.table, pandas, TOPCAT and spreadsheets all read it the same way:

* one header row, then one row per object, best first; no comment lines;
* ``ra``/``dec`` in degrees; every float written with the shortest text that reads back to the
  same value (float64 and float32 alike); NaN as an empty cell;
* booleans as 0/1; cells quoted only when they must be (commas, quotes, new lines);
* text exactly as stored (a Dec ``-27:46:57``, an id ``+J1234``, a note ``-ve``), for science
  tools. Only with ``spreadsheet_safe`` (``--spreadsheet-safe``, for a file a spreadsheet will
  open) do text cells that begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return get
  a leading ``'`` so that the spreadsheet does not run them as a formula (CSV injection);
  numbers are never changed.

Provenance (store, scorer, labels, time, galexplorer version) goes into ``<output>.json``
beside the table. Both files are written atomically.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from . import __version__, progress
from .active.ranking import RankedTable, current_ranking, ranked_table
from .data import registry
from .errors import ConfigError
from .explore.cluster import active_client, map_blocks
from .labels import LabelJournal
from .store import EmbeddingStore
from .store.atomic import atomic_output, check_output
from .store.schema import json_default

log = logging.getLogger(__name__)

FORMATS = ("csv", "votable")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 65536   # rows formatted at a time: memory for the text is bounded by this, not by N


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """``csv`` or ``votable``, from ``fmt`` or the file extension.

    Raises:
        ConfigError: an unknown format or extension.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown export format {fmt!r}; choose csv or votable")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix in (".csv", ".txt", ""):
        return "csv"
    if suffix in registry.VOTABLE.suffixes:      # the one list of VOTable suffixes
        return "votable"
    raise ConfigError(f"cannot tell the format from the extension {suffix!r}", path,
                      "use .csv or .xml/.vot, or pass --format csv|votable")


def neutralise(text: str) -> str:
    """Prefix ``'`` to a text cell a spreadsheet would run as a formula."""
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_cells(values: np.ndarray, spreadsheet_safe: bool = False) -> list[str]:
    """One column as CSV cell texts (text neutralised only when ``spreadsheet_safe``)."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        return np.where(arr, "1", "0").tolist()
    if kind in "iu":
        return arr.astype(str).tolist()
    if kind == "f":
        # numpy's str of a float is the shortest text that reads back to the same value *in its
        # own dtype*: float32 0.1 -> "0.1", float64 ra -> repr. Python's repr of a float64 is the
        # same text, 1.5x faster; only the finite values are formatted.
        finite = np.isfinite(arr)
        cells = np.full(len(arr), "", dtype=object)
        if arr.dtype == np.float64:
            cells[finite] = list(map(repr, arr[finite].tolist()))
        else:
            cells[finite] = arr[finite].astype(str)
        cells[np.isposinf(arr)] = "inf"
        cells[np.isneginf(arr)] = "-inf"
        return cells.tolist()
    text = ["" if v is None else str(v) for v in arr.tolist()]
    return [neutralise(t) for t in text] if spreadsheet_safe else text


def _csv_rows(cols: list, spreadsheet_safe: bool = False) -> str:
    """The CSV text of one block of rows (``cols``: each column's values for those rows); run
    here, or on a Dask worker with ``--cluster``."""
    fh = io.StringIO()
    csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n").writerows(
        zip(*[_csv_cells(v, spreadsheet_safe) for v in cols]))
    return fh.getvalue()


def _votable_rows(cols: list) -> str:
    """The TABLEDATA rows of one block (as :func:`_csv_rows`)."""
    return "".join("<TR><TD>" + "</TD><TD>".join(row) + "</TD></TR>\n"
                   for row in zip(*[_votable_cells(v) for v in cols]))


def _blocks_of_text(table: RankedTable, chunk: int, rows_text, desc: str, *options):
    """The text of the table's row blocks in order: formatted here, or on the workers of the
    enclosing ``--cluster`` (:func:`~galexplorer.explore.cluster.active_client`); either way the
    same bytes. The client reads each block's columns from the store and writes the text."""
    def block(a: int, b: int) -> tuple:
        return ([np.asarray(v[a:b]) for v in table.columns.values()], *options)

    client = active_client()
    if client is None:
        for a in progress.track(range(0, len(table), chunk), desc):
            yield rows_text(*block(a, a + chunk))
    else:
        for _, _, text in map_blocks(client, rows_text, len(table), chunk, block, desc=f"{desc} on the cluster",
                                     unit="row"):
            yield text


def _write_csv(table: RankedTable, path: Path, spreadsheet_safe: bool = False,
               chunk: int | None = None) -> None:
    # cells are made CHUNK_ROWS rows at a time: the text of all rows at once took ~1 kB per row
    chunk = chunk or CHUNK_ROWS
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        w.writerow([neutralise(str(name)) if spreadsheet_safe else str(name) for name in table.names])
        for text in _blocks_of_text(table, chunk, _csv_rows, "export (CSV)", spreadsheet_safe):
            fh.write(text)


def _astropy_table(table: RankedTable):
    from astropy.table import Table

    t = Table()
    for name, values in table.columns.items():
        arr = np.asarray(values)
        if arr.dtype.kind == "O":
            arr = np.array([("" if v is None else str(v)) for v in arr.tolist()], dtype=str)
        t[name] = arr
    for name, unit in (("ra", "deg"), ("dec", "deg")):
        if name in t.colnames:
            t[name].unit = unit
    t.meta["description"] = f"galexplorer ranked candidates ({table.meta.get('scorer', '')})"
    return t


def _votable_cells(values: np.ndarray) -> np.ndarray:
    """One column as TABLEDATA cell texts (as astropy writes them: NaN, bits 1/0, XML-escaped text)."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        return np.where(arr, "1", "0")
    if kind in "iu":
        return arr.astype(str)
    if kind == "f":
        cells = arr.astype(str)
        cells[np.isnan(arr)] = "NaN"
        cells[np.isposinf(arr)] = "+InF"
        cells[np.isneginf(arr)] = "-InF"
        return cells
    return np.array([html.escape("" if v is None else str(v), quote=False) for v in arr.tolist()], dtype=object)


def _write_votable(table: RankedTable, path: Path, chunk: int | None = None) -> None:
    """VOTable 1.4 TABLEDATA, streamed: astropy writes the header (from the first row), the rows are
    written CHUNK_ROWS at a time (astropy's writer of a whole table took 1-2 min per 10^6 rows)."""
    import io

    chunk = chunk or CHUNK_ROWS
    if len(table) == 0:
        _astropy_table(table).write(path, format="votable", overwrite=True)
        return
    buf = io.BytesIO()
    _astropy_table(table.head(1)).write(buf, format="votable")
    text = buf.getvalue().decode("utf-8")
    a, b = text.index("<TABLEDATA>") + len("<TABLEDATA>"), text.index("</TABLEDATA>")
    # text columns: the first row's width would cut longer texts; declare them variable-length
    head = re.sub(r'arraysize="\d+"', 'arraysize="*"', text[:a])
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(head + "\n")
        for rows in _blocks_of_text(table, chunk, _votable_rows, "export (VOTable)"):
            fh.write(rows)
        fh.write(text[b:])


def write_ranked(table: RankedTable, path: str | Path, format: str | None = None, top: int | None = None,
                 provenance: bool = True, spreadsheet_safe: bool = False) -> Path:
    """Write a ranked table (atomically), with its provenance in ``<path>.json``.

    Args:
        table: from :func:`galexplorer.active.ranking.ranked_table`.
        path: output file.
        format: ``csv`` or ``votable``; None = from the extension.
        top: only the first ``top`` rows.
        provenance: also write ``<path>.json``.
        spreadsheet_safe: CSV for a spreadsheet: prefix ``'`` to text cells starting with
            ``= + - @`` (default: every value exactly as stored).

    Returns:
        The path written.

    Raises:
        ConfigError: unknown format, ``top`` < 1, or ``spreadsheet_safe`` with VOTable.
    """
    path = Path(path)
    fmt = format_for(path, format)
    if spreadsheet_safe and fmt != "csv":
        raise ConfigError("--spreadsheet-safe applies to CSV only (spreadsheets do not read VOTable)", path,
                          "drop --spreadsheet-safe or write a .csv")
    if top is not None:
        if int(top) < 1:
            raise ConfigError(f"--top must be >= 1, got {top}")
        table = table.head(int(top))
    with atomic_output(path) as tmp:
        if fmt == "csv":
            _write_csv(table, tmp, spreadsheet_safe)
        else:
            _write_votable(table, tmp)
    if provenance:
        meta = dict(table.meta)
        meta.update(format=fmt, spreadsheet_safe=bool(spreadsheet_safe), rows_written=len(table), columns=table.names, written=time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), galexplorer_version=__version__)
        with atomic_output(Path(str(path) + ".json")) as tmp:
            tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=json_default), encoding="utf-8")
    log.debug("wrote %d rows to %s", len(table), path)
    return path


HATS_FIX = 'pip install "galexplorer[hats]" (the lsdb and hats packages)'


def _require_lsdb():
    """The lsdb module.

    Raises:
        ConfigError: it is not installed.
    """
    try:
        import lsdb
    except ImportError:
        raise ConfigError("--hats needs the lsdb package", hint=HATS_FIX) from None
    return lsdb


def _hats_frame(table: RankedTable):
    """The table as a pandas DataFrame (text as str), rows best first."""
    import pandas as pd

    cols = {}
    for name, values in table.columns.items():
        arr = np.asarray(values)
        if arr.dtype.kind in "OSU":
            arr = np.array(["" if v is None else str(v) for v in arr.tolist()], dtype=object)
        cols[name] = arr
    return pd.DataFrame(cols)


def write_hats(table: RankedTable, directory: str | Path, partition_rows: int | None = None) -> Path:
    """Write a ranked table as a HATS catalogue: Parquet files partitioned by HEALPix pixel (sized
    adaptively, at most ``partition_rows`` rows each), with the catalogue's properties and
    partition index, as LSDB opens and cross-matches them (``lsdb.open_catalog(directory)``).

    Built with ``lsdb.from_dataframe``: the table is gathered into one DataFrame on this machine
    first (memory O(N): ~10^8 rows on a large node; past that, partition the exported CSV with
    hats-import). The folder appears complete or not at all (written beside it, then renamed).
    The ``rank`` column keeps the ranking; rows are ordered by position within each partition.

    Raises:
        ConfigError: lsdb is not installed, ``directory`` exists, or objects without ra/dec.
    """
    import os
    import shutil

    lsdb = _require_lsdb()
    directory = Path(directory)
    if directory.exists():
        raise ConfigError("the HATS folder already exists", directory, "remove it or give another folder")
    ra, dec = np.asarray(table.columns["ra"], float), np.asarray(table.columns["dec"], float)
    bad = ~(np.isfinite(ra) & np.isfinite(dec))
    if bad.any():
        raise ConfigError(f"{int(bad.sum())} objects have no ra/dec; HATS partitions the sky by position",
                          directory, "export them as CSV or VOTable instead (-o ranked.csv)")
    check_output(directory.parent / (directory.name + ".json"))
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with progress.Bar("export (HATS)", 1) as bar:
            rows = int(partition_rows or HATS_PARTITION_ROWS)
            try:
                catalog = lsdb.from_dataframe(_hats_frame(table), ra_column="ra", dec_column="dec",
                                              catalog_name=directory.name, partition_rows=rows,
                                              highest_order=HATS_HIGHEST_ORDER)
            except ValueError as exc:       # lsdb's own words for a pixel it cannot split
                if "exceeds threshold" not in str(exc):
                    raise
                raise ConfigError(f"more than {rows} objects fall in one HEALPix pixel of order "
                                  f"{HATS_HIGHEST_ORDER}, the finest partition", directory,
                                  "export CSV and partition it with hats-import") from None
            catalog.write_catalog(tmp, catalog_name=directory.name, progress_bar=False)
            bar.update(1)
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.debug("wrote %d rows as HATS to %s", len(table), directory)
    return directory


HATS_PARTITION_ROWS = 1_000_000   # rows per Parquet partition at most (~100 MB at ~20 columns)
# the finest partition pixel (order 9: ~6.9 arcmin). LSDB histograms every pixel of this order
# (12·4^k of them): order 13 took 425 s for 300 rows here, order 9 a fraction of a second
HATS_HIGHEST_ORDER = 9


def export_store(store_path: str | Path, output: str | Path | None, format: str | None = None,
                 top: int | None = None, user: str | None = None, spreadsheet_safe: bool = False,
                 explain: bool = False, hats: str | Path | None = None) -> tuple[Path, RankedTable]:
    """Export a store's ranked candidate list.

    Uses the saved ranking (``galexplorer rank``); without one, ranks now with the default
    scorer (logged) without saving it. With ``explain``, the columns of
    :data:`~galexplorer.active.explain.EXPLAIN_COLUMNS` are added (why each object ranks where
    it does: :func:`~galexplorer.active.explain.explain_table`, a refit on the current labels).

    With ``hats``, the table is also written as a HATS catalogue to that folder
    (:func:`write_hats`, provenance in ``<folder>.json``); ``output`` may then be None.

    Returns:
        ``(path, table)`` (``path`` the HATS folder when there is no ``output``); the table's id
        and catalogue columns read from the store, which is closed on return: use its length
        and ``meta``.

    Raises:
        StoreError, LabelError, ConfigError: as the steps they come from; StoreError when the
            output's folder is not writable, before any ranking.
    """
    if output is None and hats is None:
        raise ConfigError("nothing to write", hint="give -o ranked.csv, --hats FOLDER, or both")
    if output is not None:
        fmt = format_for(output, format)
        check_output(output)                     # before ranking: minutes at 10^6 objects
        check_output(str(output) + ".json")
    if hats is not None:                     # before ranking, as the outputs above
        if Path(hats).exists():
            raise ConfigError("the HATS folder already exists", hats, "remove it or give another folder")
        _require_lsdb()
    with EmbeddingStore(store_path) as store, LabelJournal.for_store(store_path, readonly=True) as journal:
        ranking = current_ranking(store, user=user)
        table = ranked_table(store, ranking, journal, user=user, top=top)
        if explain:
            from .active.explain import explain_table

            table = explain_table(store, table, user=user)
        # written while the store is open: a --top table reads its rows' ids and columns now
        path = write_ranked(table, output, fmt, spreadsheet_safe=spreadsheet_safe) if output is not None else None
        if hats is not None:
            hats_path = write_hats(table, hats)
            meta = dict(table.meta, format="hats", rows_written=len(table), columns=table.names,
                        written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), galexplorer_version=__version__)
            with atomic_output(Path(str(hats_path) + ".json")) as tmp:
                tmp.write_text(json.dumps(meta, indent=2, sort_keys=True, default=json_default), encoding="utf-8")
            path = path or hats_path
        return path, table


