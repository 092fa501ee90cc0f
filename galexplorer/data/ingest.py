"""``galexplorer ingest``: images of any supported kind -> one cutouts file.

Inputs are FITS files, PNG/JPEG/TIFF images, HDF5 cubes, or folders of them; or large FITS
mosaics plus a catalogue of positions. Every object becomes a (C, size, size) float32 stamp
with an id, ra/dec and the catalogue's columns, streamed in batches into a
:class:`~galexplorer.store.cutouts.CutoutWriter` (memory stays flat; the output appears only
when complete). See docs/ingest.md for the user's view of every rule below.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import ConfigError, InputError
from ..store.cutouts import CutoutWriter
from . import registry
from .catalog import Catalog, read_catalog
from .fits import sky_cd
from .hdf5 import H5Cube
from .inputs import BandGroup, InputFile, find_inputs, group_by_band
from .mosaic import EDGE, NO_POSITION, OUTSIDE, PLACED, MosaicSet
from .preprocess import CentralCropConfig, central_source_crop, repair_bad_pixels, resample
from .stamps import FileStamps
from .thumbnails import make_thumbnails

log = logging.getLogger(__name__)

BAD_PIXELS_COLUMN = "n_bad_pixels"

# why an object was not written, in the order the summary lists them
SKIP_REASONS = {
    "edge": "too close to the mosaic edge",
    "outside": "outside the mosaic",
    "no_position": "without ra/dec or x/y",
    "empty": "with a band that is all NaN/inf",
    "unreadable": "unreadable file(s)",
    "no_row": "file(s) without a catalogue row",
    "no_file": "catalogue row(s) without an image",
}
_EXAMPLES = 5


@dataclass
class IngestConfig:
    """Options of ``galexplorer ingest``; saved as JSON in the cutouts file's ``ingest`` attribute.

    Attributes:
        size: side of the stored stamps in pixels.
        catalog: CSV with id, ra, dec (deg) or x, y, or path, and any other columns.
        bands: band names, blue to red. Names the bands of cubes and images, selects bands
            of a cube whose header names them, or lists the bands of ``band_pattern``.
        band_pattern: one file per band, e.g. ``'{id}_{band}.fits'``.
        mosaic: cut stamps out of large images at the catalogue positions (also chosen
            automatically for one FITS image plus a catalogue of positions).
        dataset: the image dataset of HDF5 inputs.
        preprocess: crop each stamp to its central source (see :mod:`.preprocess`).
        thumb_size: side of the uint8 RGB display thumbnails.
        cut_size: side of the stamps cut from a mosaic, before resampling to ``size``
            (default ``size``).
        hdu: FITS HDU to read (index or EXTNAME; default the first image).
        id_column, ra_column, dec_column: catalogue columns to use instead of the usual names.
        xy_origin: the pixel number of the first pixel in the catalogue's x/y columns: 0
            (NumPy, astropy) or 1 (FITS, SExtractor, DS9).
        batch_size: objects per write (memory is about batch_size stamps).
        crop: settings of the central-source crop.
    """

    size: int = 64
    catalog: str | None = None
    bands: list[str] | None = None
    band_pattern: str | None = None
    mosaic: bool = False
    dataset: str | None = None
    preprocess: bool = False
    thumb_size: int = 64
    cut_size: int | None = None
    hdu: str | None = None
    id_column: str | None = None
    ra_column: str | None = None
    dec_column: str | None = None
    xy_origin: int = 0
    batch_size: int = 256
    crop: CentralCropConfig = field(default_factory=CentralCropConfig)

    def validate(self) -> None:
        """Raises ConfigError on an impossible combination of options."""
        for name in ("size", "thumb_size", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)}")
        if self.cut_size is not None and self.cut_size < 1:
            raise ConfigError(f"cut_size must be a positive integer, not {self.cut_size}")
        if self.xy_origin not in (0, 1):
            raise ConfigError(f"xy_origin must be 0 or 1, not {self.xy_origin}")
        if self.bands is not None:
            bands = [str(b).strip() for b in self.bands]
            if not bands or any(not b for b in bands):
                raise ConfigError("--bands needs band names, e.g. g,r,i")
            if len(set(bands)) != len(bands):
                raise ConfigError(f"--bands lists a band twice: {','.join(bands)}")
            self.bands = bands
        if self.band_pattern is not None and not self.bands:
            raise ConfigError("--band-pattern needs --bands (the band names, blue to red), e.g. --bands g,r,i")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class IngestReport:
    """What an ingest did: counts for the summary and for the ``ingest`` attribute."""

    output: Path
    mode: str = "files"
    size: int = 64
    bands: list[str] = field(default_factory=list)
    n_written: int = 0
    n_files: int = 0
    n_ignored: int = 0
    n_bad_pixels: int = 0
    n_objects_bad_pixels: int = 0
    n_cropped: int = 0
    n_no_source: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0

    def skip(self, reason: str, names: list[str], count: int | None = None) -> None:
        """Count ``count`` (default ``len(names)``) objects or files skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + (len(names) if count is None else count)
        ex = self.examples.setdefault(reason, [])
        ex.extend(str(n) for n in names[:max(0, _EXAMPLES - len(ex))])

    def _skip_text(self) -> str:
        parts = []
        for reason, what in SKIP_REASONS.items():
            n = self.skipped.get(reason, 0)
            if n:
                ex = ", ".join(self.examples.get(reason, []))
                more = ", ..." if n > len(self.examples.get(reason, [])) else ""
                parts.append(f"{n} {what} ({ex}{more})")
        return "; ".join(parts)

    def summary(self) -> str:
        """One short paragraph: written, skipped (and why), repaired pixels, bands, size, path, time."""
        src = f"from {self.n_files} file(s)" if self.mode == "files" else f"cut from {self.n_files} mosaic file(s)"
        text = [f"Wrote {self.n_written} object(s) to {self.output} {src}: "
                f"{len(self.bands)} band(s) ({', '.join(self.bands)}), {self.size}x{self.size} px, "
                f"in {self.seconds:.1f} s."]
        if self.skipped:
            text.append(f"Skipped: {self._skip_text()}.")
        if self.n_bad_pixels:
            text.append(f"Replaced {self.n_bad_pixels} NaN/inf pixel(s) in {self.n_objects_bad_pixels} "
                        f"object(s) by the band's median (column {BAD_PIXELS_COLUMN}).")
        if self.n_cropped or self.n_no_source:
            text.append(f"Cropped {self.n_cropped} stamp(s) to their central source; "
                        f"{self.n_no_source} had none and were kept whole.")
        if self.n_ignored:
            text.append(f"Ignored {self.n_ignored} file(s) of another type or name.")
        return " ".join(text)

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["output"] = str(self.output)
        return d


def _input_list_for_json(inputs: list[str]) -> dict:
    # attributes have a size limit (64 kB): a shell glob of 10^5 files is kept as a count
    shown = [str(p) for p in inputs[:50]]
    return {"inputs": shown, "n_inputs": len(inputs)}


class _Run:
    """The state of one ingest: band names, catalogue matching, the current batch, the writer."""

    def __init__(self, cfg: IngestConfig, output: Path, catalog: Catalog | None, report: IngestReport,
                 stack: ExitStack, attrs: dict):
        self.cfg, self.output, self.catalog, self.report = cfg, output, catalog, report
        self.stack, self.attrs = stack, attrs
        self.bands: list[str] | None = None
        self.named = False
        self.writer: CutoutWriter | None = None
        self.extra_columns: dict[str, np.ndarray] | None = None   # columns carried by a cutouts file
        self._batch: list[tuple] = []
        self.used_rows = np.zeros(catalog.n if catalog else 0, dtype=bool)
        if catalog is not None and BAD_PIXELS_COLUMN in catalog.columns:
            log.warning("the catalogue's column %r is replaced by the count of repaired pixels",
                        BAD_PIXELS_COLUMN)

    # -- bands ----------------------------------------------------------------------------------
    def band_index(self, c: int, names: list[str] | None, path: Path | str, named: bool = True
                   ) -> list[int] | None:
        """Check an input's C bands against the run's; return the planes to keep (None = all).

        ``names`` are the input's own band names (FITS header, HDF5 attribute) or None;
        ``named=False`` marks conventional names (b, g, r of a colour image) that may differ
        from other inputs' names.

        Raises:
            InputError: the number or names of bands do not fit --bands or earlier inputs.
        """
        want = self.cfg.bands
        index = None
        if want:
            if names and set(want) <= set(names) and want != names:
                index = [names.index(b) for b in want]
            elif len(want) != c:
                have = f" ({', '.join(names)})" if names else ""
                raise InputError(f"--bands lists {len(want)} band(s) ({','.join(want)}) but the image has "
                                 f"{c}{have}", path, "give one name per band, blue to red")
            final, named = list(want), True
        else:
            final = list(names) if names else [f"b{i}" for i in range(c)]
            named = named and names is not None
        if self.bands is None:
            self.bands, self.named = final, named
            self.report.bands = final
        elif len(final) != len(self.bands):
            raise InputError(f"the image has {len(final)} band(s) but earlier inputs have {len(self.bands)} "
                             f"({', '.join(self.bands)})", path, "ingest images with the same bands together")
        elif named and self.named and final != self.bands:
            raise InputError(f"bands {', '.join(final)} differ from earlier inputs' {', '.join(self.bands)}",
                             path, "ingest images with the same bands together, or name them with --bands")
        return index

    # -- objects --------------------------------------------------------------------------------
    def add(self, stamp: np.ndarray, oid: str, ra: float, dec: float, row: int | None, source: str,
            extra_row: int | None = None, sky: tuple[np.ndarray, tuple[float, float]] | None = None) -> None:
        """Repair, crop, resample and queue one (C, H, W) stamp for writing.

        ``sky`` is the input stamp's local WCS, ``(cd, (x, y))``: the 2x2 degrees per pixel
        (see :func:`sky_cd`) and the 0-based pixel at ``ra, dec``; it is carried through the
        crop and the resampling into the stored stamp's pixels.
        """
        stamp, n_bad, empty = repair_bad_pixels(np.asarray(stamp, dtype=np.float32))
        in_hw = stamp.shape[-2:]
        if empty:
            self.report.skip("empty", [oid])
            log.debug("%s: skipped %r, a band has no finite pixel", source, oid)
            return
        if n_bad:
            self.report.n_bad_pixels += n_bad
            self.report.n_objects_bad_pixels += 1
        if self.cfg.preprocess:
            stamp, found = central_source_crop(stamp, self.cfg.crop)
            if found:
                self.report.n_cropped += 1
            else:
                self.report.n_no_source += 1
        crop_hw = stamp.shape[-2:]
        stamp = resample(stamp, self.cfg.size)
        geom = _stored_geometry(sky, in_hw, crop_hw, self.cfg.size)
        cat = self.catalog
        if row is not None:
            self.used_rows[row] = True
            if cat is not None and cat.has_sky and np.isfinite(cat.ra[row]) and np.isfinite(cat.dec[row]):
                ra, dec = float(cat.ra[row]), float(cat.dec[row])
        self._batch.append((stamp, str(oid), ra, dec, row, str(source), n_bad, extra_row, geom))
        if len(self._batch) >= self.cfg.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        images, ids, ra, dec, rows, sources, n_bad, extra, geoms = zip(*self._batch)
        self._batch = []
        if self.writer is None:
            self.writer = self.stack.enter_context(CutoutWriter(
                self.output, bands=self.bands, size=self.cfg.size, thumb_size=self.cfg.thumb_size,
                attrs=self.attrs))
        columns: dict[str, np.ndarray] = {}
        if self.catalog is not None:
            columns.update(self.catalog.column_rows(np.array(rows, dtype=np.int64)))
        if self.extra_columns:
            idx = np.array(extra, dtype=np.int64)
            for name, values in self.extra_columns.items():
                columns.setdefault(name, values[idx])
        columns[BAD_PIXELS_COLUMN] = np.array(n_bad, dtype=np.int64)
        stack = np.stack(images)
        self.writer.add(stack, list(ids), ra=np.array(ra, dtype=np.float64),
                        dec=np.array(dec, dtype=np.float64), columns=columns, source=list(sources),
                        thumbnails=make_thumbnails(stack, self.bands, self.cfg.thumb_size))
        self.writer.add_sky_geometry(np.stack([g[0] for g in geoms]), np.stack([g[1] for g in geoms]))
        self.report.n_written = self.writer.n


class _Matcher:
    """Finds the catalogue row of each object in file mode.

    * a ``path`` column: the row whose path (relative to the catalogue's folder, or absolute)
      is the file, else the row with the same file name;
    * else an ``id`` column: the row whose id is the object's file-name stem (or HDF5 id,
      or ``stem_i`` for the i-th object of a cube);
    * else, or when no id matches, one HDF5 cube without ids and a catalogue of exactly as
      many rows: row i is object i.
    """

    def __init__(self, catalog: Catalog, files: list[InputFile], cubes: dict[Path, H5Cube]):
        self.cat = catalog
        self.by_path: dict[Path, int] = {}
        self.by_name: dict[str, int] = {}
        self.by_id: dict[str, int] = {}
        self.order_file: Path | None = None
        if catalog.paths is not None:
            base = catalog.path.parent
            names: dict[str, list[int]] = {}
            for i, p in enumerate(catalog.paths):
                if p:
                    q = Path(p)
                    self.by_path[(q if q.is_absolute() else base / q).resolve()] = i
                    names.setdefault(q.name, []).append(i)
            self.by_name = {k: v[0] for k, v in names.items() if len(v) == 1}
        if catalog.ids is not None:
            self.by_id = {str(v): i for i, v in enumerate(catalog.ids)}
        if len(files) == 1 and files[0].path in cubes and catalog.paths is None:
            cube, stem = cubes[files[0].path], files[0].stem
            if cube.ids is None and cube.n == catalog.n and \
                    not any(f"{stem}_{i}" in self.by_id for i in range(cube.n)):
                self.order_file = files[0].path
                log.info("matching the %d catalogue rows to %s's objects by order", catalog.n, files[0].path)
        if catalog.paths is None and catalog.ids is None and self.order_file is None:
            raise InputError("the catalogue has no id or path column to match the images to", catalog.path,
                             "add an id column (the file-name stems) or a path column")

    def row(self, key: str, path: Path, index: int | None = None) -> int | None:
        if self.order_file is not None and path == self.order_file and index is not None:
            return index
        if self.by_path or self.by_name:
            r = self.by_path.get(path.resolve())
            if r is None:
                r = self.by_name.get(path.name)
            if r is not None and index is None:
                return r
        return self.by_id.get(key)

    def object_id(self, key: str, row: int | None) -> str:
        if row is not None and self.cat.ids is not None:
            return str(self.cat.ids[row])
        return key


# --------------------------------------------------------------------------------------------

def ingest(inputs: list[str | Path], output: str | Path, cfg: IngestConfig | None = None) -> IngestReport:
    """Read images and write a cutouts file.

    Args:
        inputs: files and folders (see docs/ingest.md); may be empty when the catalogue has a
            path column.
        output: the cutouts file to write (replaced atomically when complete).
        cfg: options; defaults to ``IngestConfig()``.

    Returns:
        The :class:`IngestReport`.

    Raises:
        ConfigError: impossible options.
        InputError: unreadable named inputs or catalogue, mismatched bands, nothing to write.
        StoreError: duplicate ids.
    """
    t0 = time.monotonic()
    cfg = cfg or IngestConfig()
    cfg.validate()
    output = Path(output)
    if output.is_dir():
        raise ConfigError(f"-o {output} is a folder; give the cutouts file to write, e.g. {output / 'cut.h5'}")
    catalog = None
    if cfg.catalog:
        catalog = read_catalog(cfg.catalog, cfg.id_column, cfg.ra_column, cfg.dec_column)
        if catalog.n == 0:
            raise InputError("the catalogue has a header but no rows", catalog.path, "add the objects")
    report = IngestReport(output=output, size=cfg.size)
    inputs = [str(p) for p in inputs]
    if not inputs:
        if catalog is None or catalog.paths is None:
            raise ConfigError("no inputs given; name FITS, image or HDF5 files or folders, "
                              "or give --catalog with a path column")
        base = catalog.path.parent
        for p in catalog.paths:
            q = Path(p) if Path(p).is_absolute() else base / p
            if p and q.is_file():
                inputs.append(str(q))
        if not inputs:
            raise InputError("none of the catalogue's image paths exist", catalog.path,
                             "paths are relative to the catalogue's folder")
    files, report.n_ignored = find_inputs(inputs, exclude={output.resolve()})
    with ExitStack() as stack:
        run = _Run(cfg, output, catalog, report, stack, attrs={"stretch": "asinh"})
        units: list[InputFile | BandGroup] = list(files)
        if cfg.band_pattern:
            groups, unmatched = group_by_band(files, cfg.band_pattern, cfg.bands, need_id=not cfg.mosaic)
            report.n_ignored += len(unmatched)
            units = list(groups)
        if _is_mosaic(cfg, catalog, units):
            report.mode = "mosaic"
            _ingest_mosaic(run, units)
        else:
            _ingest_files(run, units)
        run.flush()
        if run.writer is None:
            detail = report._skip_text()
            raise InputError("nothing to write" + (f": skipped {detail}" if detail else ""),
                             inputs[0] if len(inputs) == 1 else None,
                             "check the inputs (and the catalogue) against docs/ingest.md")
        report.seconds = time.monotonic() - t0
        run.writer.attrs["ingest"] = {"config": cfg.to_json(), **_input_list_for_json(inputs),
                                      "report": report.to_json()}
    report.seconds = time.monotonic() - t0
    # one warning per reason (not per object); when nothing could be written the error says it all
    for reason, what in SKIP_REASONS.items():
        if report.skipped.get(reason):
            log.warning("skipped %d %s (first: %s)", report.skipped[reason], what,
                        ", ".join(report.examples.get(reason, [])))
    log.debug("%s", report.summary())
    return report


def _is_mosaic(cfg: IngestConfig, catalog: Catalog | None, units: list) -> bool:
    if cfg.mosaic:
        if catalog is None:
            raise ConfigError("--mosaic needs --catalog with the positions (ra,dec or x,y) of the objects")
        return True
    if catalog is None or catalog.paths is not None or not (catalog.has_sky or catalog.has_xy):
        return False
    if len(units) != 1:
        return False
    unit = units[0]
    files = list(unit.files.values()) if isinstance(unit, BandGroup) else [unit]
    if any(f.kind != "fits" for f in files):
        return False
    key = unit.key if isinstance(unit, BandGroup) else unit.stem
    if catalog.ids is not None and key in set(str(v) for v in catalog.ids):
        return False
    log.info("one FITS image and a catalogue of positions: cutting stamps out of it (mosaic mode)")
    return True


def _ingest_mosaic(run: _Run, units: list) -> None:
    cfg, cat, report = run.cfg, run.catalog, run.report
    groups: list[tuple[str, list[Path]]] = []
    for u in units:
        if isinstance(u, BandGroup):
            groups.append((u.key or "mosaic", [u.files[b].path for b in cfg.bands]))
        elif u.kind != "fits":
            raise InputError("mosaic mode cuts stamps out of FITS images only", u.path,
                             "give FITS mosaics, or drop --mosaic")
        else:
            groups.append((u.stem, [u.path]))
    report.n_files = sum(len(g[1]) for g in groups)
    cut = cfg.cut_size or cfg.size
    with MosaicSet(groups, cfg.hdu) as ms:
        index = run.band_index(ms.c, None if cfg.band_pattern else ms.bands, groups[0][1][0])
        placement = ms.place(cat, cut, cfg.xy_origin)
        ids = cat.row_ids()
        for code, reason in ((EDGE, "edge"), (OUTSIDE, "outside"), (NO_POSITION, "no_position")):
            rows = np.flatnonzero(placement.status == code)
            if len(rows):
                report.skip(reason, [str(ids[r]) for r in rows[:_EXAMPLES]], count=len(rows))
        placed = np.flatnonzero(placement.status == PLACED)
        wra, wdec = ms.radec(placement, placed)
        sources = [ms.source(k) for k in range(len(ms.tiles))]
        skies = _mosaic_skies(ms, placement, placed, cut)
        with progress.Bar("ingest", total=len(placed), unit="obj") as bar:
            for k, r in enumerate(placed):
                stamp = ms.cut(int(placement.tile[r]), int(placement.x0[r]), int(placement.y0[r]), cut)
                if index is not None:
                    stamp = stamp[index]
                run.add(stamp, str(ids[r]), float(wra[k]), float(wdec[k]), int(r),
                        sources[int(placement.tile[r])], sky=skies[k])
                bar.update(1)


def _check_unique_keys(units: list, matcher: _Matcher | None) -> None:
    """Two files that would give the same id: say which, before anything is written."""
    if matcher is not None and (matcher.by_path or matcher.by_name):
        return
    seen: dict[str, Path] = {}
    for u in units:
        if isinstance(u, BandGroup):
            key, path = u.key, next(iter(u.files.values())).path
        elif u.kind == "hdf5":
            continue
        else:
            key, path = u.stem, u.path
        if key in seen:
            raise InputError(f"two inputs give the same object id {key!r}: {seen[key]} and {path}", path,
                             "rename one, or give a catalogue with a path column")
        seen[key] = path


def _ingest_files(run: _Run, units: list) -> None:
    cfg, cat, report = run.cfg, run.catalog, run.report
    cubes, units = _open_cubes(units, cfg.dataset, report)
    matcher = _Matcher(cat, [u for u in units if isinstance(u, InputFile)], cubes) if cat is not None else None
    _check_unique_keys(units, matcher)
    if len(units) == 1 and isinstance(units[0], InputFile) and units[0].path in cubes and cat is None:
        run.extra_columns = cubes[units[0].path].columns or None
    total = sum(cubes[u.path].n if isinstance(u, InputFile) and u.path in cubes else 1 for u in units)

    def place(key: str, path: Path, index: int | None) -> tuple[str, int | None] | None:
        """The object's id and catalogue row, or None when it has no row (skipped)."""
        if matcher is None:
            return key, None
        row = matcher.row(key, path, index)
        if row is None:
            report.skip("no_row", [key])
            return None
        return matcher.object_id(key, row), row

    with progress.Bar("ingest", total=total, unit="obj") as bar:
        for u in units:
            if isinstance(u, BandGroup):
                _read_group(run, u, place)
                bar.update(1)
            elif u.kind == "hdf5":
                report.n_files += 1
                _read_cube(run, u, cubes[u.path], place, bar)
            else:
                _read_file(run, u, place)
                bar.update(1)
    if cat is not None:
        unused = np.flatnonzero(~run.used_rows)
        ids = cat.row_ids()
        if len(unused):
            report.skip("no_file", [str(ids[r]) for r in unused[:_EXAMPLES]], count=len(unused))


def _open_cubes(units: list, dataset: str | None, report: IngestReport) -> tuple[dict[Path, H5Cube], list]:
    """Open every HDF5 cube among ``units``: ``(cubes by path, the units that stay)``; a cube
    found in a folder that cannot be read is skipped (and counted), a named one raises.

    Raises:
        InputError: an HDF5 file named on the command line is not a readable cube.
    """
    cubes: dict[Path, H5Cube] = {}
    readable = []
    for u in units:
        if isinstance(u, InputFile) and u.kind == "hdf5":
            try:
                cubes[u.path] = registry.get_reader(u.kind, "ingest")(u.path, dataset=dataset)
            except InputError:
                if u.explicit:
                    raise
                report.skip("unreadable", [u.path.name])
                log.debug("skipped %s: not a readable HDF5 cube", u.path)
                continue
        readable.append(u)
    return cubes, readable


def _read_cube(run: _Run, u: InputFile, cube: H5Cube, place, bar) -> None:
    """Every stamp of one HDF5 cube, in batches."""
    index = run.band_index(cube.c, cube.bands, u.path)
    for a, batch in cube.batches(run.cfg.batch_size):
        for j, stamp in enumerate(batch):
            i = a + j
            key = str(cube.ids[i]) if cube.ids is not None else f"{u.stem}_{i}"
            found = place(key, u.path, i)
            if found is not None:
                ra = float(cube.ra[i]) if cube.ra is not None else np.nan
                dec = float(cube.dec[i]) if cube.dec is not None else np.nan
                run.add(stamp if index is None else stamp[index], found[0], ra, dec, found[1],
                        str(u.path), extra_row=i)
        bar.update(len(batch))


def _read_file(run: _Run, u: InputFile, place) -> None:
    """The stamps of one file read whole (FITS, image: its format's ingest reader in the registry);
    an unreadable file found in a folder is skipped.

    Raises:
        InputError: a file named on the command line cannot be read.
    """
    try:
        stamps: FileStamps = registry.get_reader(u.kind, "ingest")(u.path, hdu=run.cfg.hdu)
    except InputError:
        if u.explicit:
            raise
        run.report.skip("unreadable", [u.path.name])
        log.debug("skipped %s: not readable", u.path)
        return
    run.report.n_files += 1
    data = stamps.data
    index = run.band_index(data.shape[1], stamps.bands, u.path, named=stamps.named)
    for i in range(len(data)):
        key = u.stem if len(data) == 1 else f"{u.stem}_{i}"
        found = place(key, u.path, None)
        if found is not None:
            run.add(data[i] if index is None else data[i][index], found[0], stamps.ra, stamps.dec, found[1],
                    str(u.path), sky=stamps.sky)


def _read_group(run: _Run, group: BandGroup, place) -> None:
    """One object from per-band files (each a 2-D FITS image or a grey image)."""
    cfg, report = run.cfg, run.report
    planes = []
    ra = dec = np.nan
    sky = None
    first: tuple[Path, tuple[int, int]] | None = None
    for b in cfg.bands:
        f = group.files[b]
        if f.kind == "hdf5":
            raise InputError("per-band files must be FITS or image files, not HDF5", f.path)
        try:   # the object's position: the first band's file's
            stamps: FileStamps = registry.get_reader(f.kind, "ingest")(f.path, hdu=cfg.hdu, position=first is None)
            data = stamps.data
            if first is None:
                ra, dec, sky = stamps.ra, stamps.dec, stamps.sky
        except InputError:
            if f.explicit:
                raise
            report.skip("unreadable", [f.path.name])
            log.debug("skipped object %r: %s is not readable", group.key, f.path)
            return
        if data.shape[:2] != (1, 1):
            raise InputError(f"a per-band file must hold one 2-D image, not shape {data.shape[1:]}", f.path,
                             "give one single-band image per band")
        if first is not None and data.shape[2:] != first[1]:
            raise InputError(f"band images differ in size: {data.shape[3]}x{data.shape[2]} here, "
                             f"{first[1][1]}x{first[1][0]} in {first[0].name}", f.path,
                             "all bands of an object must have the same size")
        if first is None:
            first = (f.path, data.shape[2:])
        planes.append(data[0, 0])
    report.n_files += len(planes)
    run.band_index(len(planes), list(cfg.bands), first[0])
    found = place(group.key, first[0], None)
    if found is not None:
        run.add(np.stack(planes), found[0], ra, dec, found[1], str(first[0]), sky=sky)


# -- sky geometry of each stamp (ra/dec under the inspector's cursor) ---------------------------
def _mosaic_skies(ms: MosaicSet, placement, rows: np.ndarray, cut: int) -> list:
    """The local WCS of each placed stamp, at the object's position in it; None without a WCS."""
    from .fits import pixel_to_icrs

    out: list = [None] * len(rows)
    for t, tile in enumerate(ms.tiles):
        sel = np.flatnonzero(placement.tile[rows] == t)
        if tile.wcs is None or not len(sel):
            continue
        r = rows[sel]
        x, y = placement.x[r], placement.y[r]
        cd = sky_cd(lambda a, b, w=tile.wcs: pixel_to_icrs(w, a, b), x, y)
        for k, i in enumerate(sel):
            out[i] = (cd[k], (float(x[k] - placement.x0[r[k]]), float(y[k] - placement.y0[r[k]])))
    return out


def _stored_geometry(sky, in_hw: tuple[int, int], crop_hw: tuple[int, int], size: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``sky`` (in the input stamp's pixels) in the stored stamp's pixels: (cd, (x, y)); NaN without.

    Follows :func:`.preprocess.central_source_crop` and :func:`.preprocess.resample`: centred
    crops at ``(h - side) // 2`` and a resize that maps pixel centres, out = (in + 0.5)·size/side − 0.5.
    """
    if sky is None:
        return np.full((2, 2), np.nan), np.full(2, np.nan)
    cd, (x, y) = sky
    h, w = in_hw
    hc, wc = crop_hw
    side = min(hc, wc)
    x -= (w - wc) // 2 + (wc - side) // 2
    y -= (h - hc) // 2 + (hc - side) // 2
    f = side / size
    return np.asarray(cd, dtype=np.float64) * f, np.array([(x + 0.5) / f - 0.5, (y + 0.5) / f - 0.5])
