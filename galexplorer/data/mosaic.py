"""Cutting stamps out of large FITS images ("mosaics") at catalogue positions.

A mosaic is one FITS image (2-D, or a (C, H, W) cube of bands) or one 2-D FITS file per band
on the same pixel grid. Several mosaics can be given as tiles: each object is cut from the
first tile that holds its whole stamp.

Pixels are never read whole: uncompressed, unscaled images are memory-mapped, compressed or
scaled ones (``.fz``, BSCALE/BZERO) are read through astropy's ``section``, tile by tile, so
memory stays flat however large the mosaic is.

Stamps are cut on the pixel grid without interpolation, exactly as
``astropy.nddata.Cutout2D(data, (x, y), size, mode="strict")``: the stamp's first pixel is
``ceil(x - size / 2)``. Objects whose stamp would cross the image edge are skipped and reported.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .catalog import Catalog
from .fits import (
    READ_ERRORS,
    celestial_wcs,
    find_image_hdu,
    header_bands,
    icrs_to_pixel,
    pixel_to_icrs,
    read_error_text,
)

log = logging.getLogger(__name__)

# placement status of each catalogue row
PLACED, EDGE, OUTSIDE, NO_POSITION = 0, 1, 2, 3


@dataclass
class Placement:
    """Where each catalogue row's stamp lies.

    Attributes:
        status: (N,) int8: PLACED, EDGE (the stamp would cross the image edge), OUTSIDE (the
            position is off every tile) or NO_POSITION (no ra/dec or x/y).
        tile: (N,) int index into the tiles, -1 unless placed.
        x0, y0: (N,) int first column and row of the stamp in its tile.
        x, y: (N,) float64 0-based pixel position in the tile (NaN unless placed).
    """

    status: np.ndarray
    tile: np.ndarray
    x0: np.ndarray
    y0: np.ndarray
    x: np.ndarray
    y: np.ndarray


class _Plane:
    """One 2-D or 3-D image HDU, sliced without reading it whole."""

    def __init__(self, path: Path, hdu_spec: int | str | None):
        from astropy.io import fits

        self.path = path
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._hdul = fits.open(path, memmap=True, lazy_load_hdus=True)
                hdu = find_image_hdu(self._hdul, path, hdu_spec)
                header = hdu.header
                shape = tuple(hdu.shape)
                scaled = any(k in header and float(header[k]) != v for k, v in (("BSCALE", 1.0), ("BZERO", 0.0)))
                compressed = type(hdu).__name__ == "CompImageHDU"
                # memory-mapped pixels for plain images; section reads for scaled or compressed ones
                self._pixels = hdu.section if (scaled or compressed) else hdu.data
        except InputError:
            self.close()
            raise
        except READ_ERRORS as exc:
            self.close()
            raise InputError(f"not a readable FITS image ({read_error_text(exc)})", path,
                             "check the file, or remove it from the inputs") from None
        while len(shape) > 3 and shape[0] == 1:
            shape = shape[1:]
        if len(shape) not in (2, 3):
            self.close()
            raise InputError(f"a mosaic must be a 2-D image or a (C, H, W) cube, not shape {shape}", path)
        self.ndim_extra = len(tuple(hdu.shape)) - len(shape)
        self.shape = shape
        self.c = 1 if len(shape) == 2 else shape[0]
        self.hw = shape[-2:]
        self.bands = header_bands(header, self.c)
        self.wcs = celestial_wcs(header, path)

    def cut(self, y0: int, x0: int, s: int) -> np.ndarray:
        """(C, s, s) float32 pixels at rows y0.., columns x0.."""
        key = (0,) * self.ndim_extra + (Ellipsis, slice(y0, y0 + s), slice(x0, x0 + s))
        try:
            data = np.asarray(self._pixels[key], dtype=np.float32)
        except READ_ERRORS as exc:
            raise InputError(f"cannot read pixels ({read_error_text(exc)})", self.path,
                             "the file may be truncated or damaged") from None
        return data[None] if data.ndim == 2 else data

    def close(self) -> None:
        hdul = getattr(self, "_hdul", None)
        if hdul is not None:
            hdul.close()
            self._hdul = None
        self._pixels = None


@dataclass
class _Tile:
    name: str
    planes: list[_Plane]
    c: int
    hw: tuple[int, int]
    wcs: object | None
    bands: list[str] | None


class MosaicSet:
    """One or more mosaic tiles, open for cutting. Use as a context manager.

    Args:
        groups: ``(tile name, files)`` per tile: one file (a 2-D image or a (C, H, W) cube) or
            one 2-D file per band, in band order.
        hdu: the HDU to read in every file (default: the first image).

    Raises:
        InputError: unreadable files; per-band files of different sizes or not 2-D; tiles with
            different numbers of bands.
    """

    def __init__(self, groups: list[tuple[str, list[Path]]], hdu: int | str | None = None):
        self.tiles: list[_Tile] = []
        self._planes: list[_Plane] = []   # every open file, closed by close() even after an error
        try:
            for name, paths in groups:
                planes = []
                for p in paths:
                    planes.append(_Plane(Path(p), hdu))
                    self._planes.append(planes[-1])
                if len(planes) > 1:
                    for pl in planes:
                        if pl.c != 1:
                            raise InputError(f"a per-band mosaic file must be 2-D, not {pl.shape}", pl.path)
                        if pl.hw != planes[0].hw:
                            raise InputError(f"band images differ in size: {pl.hw[1]}x{pl.hw[0]} here, "
                                             f"{planes[0].hw[1]}x{planes[0].hw[0]} in {planes[0].path.name}",
                                             pl.path, "per-band images must share one pixel grid")
                c = sum(pl.c for pl in planes)
                wcs = next((pl.wcs for pl in planes if pl.wcs is not None), None)
                bands = planes[0].bands if len(planes) == 1 else None
                self.tiles.append(_Tile(name, planes, c, planes[0].hw, wcs, bands))
                if self.tiles[0].c != c:
                    raise InputError(f"tile has {c} band(s) but tile {self.tiles[0].name!r} has "
                                     f"{self.tiles[0].c}", paths[0], "give tiles with the same bands")
        except BaseException:
            self.close()
            raise

    @property
    def c(self) -> int:
        return self.tiles[0].c

    @property
    def bands(self) -> list[str] | None:
        return self.tiles[0].bands

    def source(self, tile: int) -> str:
        return ",".join(str(pl.path) for pl in self.tiles[tile].planes)

    def place(self, catalog: Catalog, size: int, xy_origin: int = 0) -> Placement:
        """Find the tile and stamp corner of every catalogue row.

        Positions come from the catalogue's ra/dec through each tile's WCS when both exist, else
        from its x/y columns (pixel units, first pixel = ``xy_origin``).

        Raises:
            InputError: the catalogue has neither usable ra/dec nor x/y.
        """
        n = catalog.n
        status = np.full(n, NO_POSITION, dtype=np.int8)
        tile = np.full(n, -1, dtype=np.int64)
        x0 = np.zeros(n, dtype=np.int64)
        y0 = np.zeros(n, dtype=np.int64)
        xs = np.full(n, np.nan)
        ys = np.full(n, np.nan)
        use_sky = catalog.has_sky and all(t.wcs is not None for t in self.tiles)
        if not use_sky and not catalog.has_xy:
            why = ("the mosaic has no sky WCS" if catalog.has_sky else "the catalogue has no ra/dec")
            raise InputError(f"cannot place objects: {why} and the catalogue has no x/y columns",
                             catalog.path, "give ra,dec with a mosaic that has a WCS, or x,y pixel columns")
        if not use_sky and len(self.tiles) > 1:
            raise InputError("x/y pixel positions need exactly one mosaic, not several tiles", catalog.path,
                             "give ra,dec and mosaics with a WCS")
        half = size / 2.0
        for k, t in enumerate(self.tiles):
            todo = status != PLACED
            if not todo.any():
                break
            if use_sky:
                x, y = icrs_to_pixel(t.wcs, catalog.ra, catalog.dec)
            else:
                x = catalog.x - xy_origin
                y = catalog.y - xy_origin
            h, w = t.hw
            finite = np.isfinite(x) & np.isfinite(y)
            with np.errstate(invalid="ignore"):
                # same rounding as astropy's Cutout2D (overlap_slices with np.ceil)
                cx0 = np.where(finite, np.ceil(np.where(finite, x, 0) - half), 0).astype(np.int64)
                cy0 = np.where(finite, np.ceil(np.where(finite, y, 0) - half), 0).astype(np.int64)
                inside = finite & (x >= -0.5) & (x < w - 0.5) & (y >= -0.5) & (y < h - 0.5)
            fits_ = inside & (cx0 >= 0) & (cy0 >= 0) & (cx0 + size <= w) & (cy0 + size <= h)
            new = todo & fits_
            status[new], tile[new], x0[new], y0[new] = PLACED, k, cx0[new], cy0[new]
            xs[new], ys[new] = x[new], y[new]
            status[todo & ~fits_ & inside] = EDGE
            status[todo & ~inside & finite & (status != EDGE)] = OUTSIDE
        return Placement(status, tile, x0, y0, xs, ys)

    def radec(self, placement: Placement, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ICRS ra/dec (deg) from the tiles' WCS at the placed positions of ``rows``; NaN without."""
        ra = np.full(len(rows), np.nan)
        dec = np.full(len(rows), np.nan)
        for k, t in enumerate(self.tiles):
            if t.wcs is None:
                continue
            sel = placement.tile[rows] == k
            if sel.any():
                r = rows[sel]
                ra[sel], dec[sel] = pixel_to_icrs(t.wcs, placement.x[r], placement.y[r])
        return ra, dec

    def cut(self, tile: int, x0: int, y0: int, size: int) -> np.ndarray:
        """(C, size, size) float32 stamp with its first pixel at column x0, row y0."""
        planes = self.tiles[tile].planes
        if len(planes) == 1:
            return planes[0].cut(y0, x0, size)
        return np.concatenate([pl.cut(y0, x0, size) for pl in planes], axis=0)

    def close(self) -> None:
        for pl in self._planes:
            pl.close()

    def __enter__(self) -> MosaicSet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
