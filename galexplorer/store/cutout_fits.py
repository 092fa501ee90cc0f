"""One object's cutout as a FITS file with its WCS, for DS9 and Aladin (``image.load.fits``).

One band per file, in the primary HDU (``FILTER`` and ``EXTNAME`` the band's name): Aladin 12
loads a multi-extension file as a folder of planes but never answers the SAMP call for it, so
the sender would report it as silent; DS9 and Aladin show the primary HDU only anyway. The HDU
carries a gnomonic (``RA---TAN``/``DEC--TAN``) WCS, built from the local WCS that ingest stored for the
object (:meth:`~galexplorer.store.cutouts.CutoutStore.sky_geometry`: degrees per pixel and the
0-based pixel of its ra/dec), so that a viewer's cursor reads the same ra/dec as galexplorer's
inspector. Without a stored WCS, ``pixel_scale_arcsec`` gives north up and east left; without
either, or without ra/dec, the file has no celestial WCS (the header says so in a COMMENT).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import StoreError
from .atomic import atomic_output


def cutout_wcs_header(ra: float, dec: float, cd: np.ndarray, crpix: np.ndarray):
    """A FITS header with the TAN WCS of a stamp.

    Args:
        ra, dec: degrees (ICRS) at ``crpix``.
        cd: (2, 2) degrees per pixel (rows: east, north; columns: x, y).
        crpix: (2,) the 0-based (x, y) pixel at ``ra, dec``.
    """
    from astropy.io import fits

    h = fits.Header()
    h["WCSAXES"] = 2
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CRVAL1"], h["CRVAL2"] = float(ra), float(dec)
    h["CRPIX1"], h["CRPIX2"] = float(crpix[0]) + 1.0, float(crpix[1]) + 1.0   # FITS counts from 1
    h["CD1_1"], h["CD1_2"] = float(cd[0, 0]), float(cd[0, 1])
    h["CD2_1"], h["CD2_2"] = float(cd[1, 0]), float(cd[1, 1])
    h["RADESYS"] = "ICRS"
    return h


def write_cutout_fits(cutouts, row: int, path: str | Path, ra: float, dec: float, object_id: str,
                      band: int = 0) -> Path:
    """Write band ``band`` of cutout ``row`` of ``cutouts`` (a
    :class:`~galexplorer.store.cutouts.CutoutStore`) to ``path``, atomically.

    Args:
        ra, dec: the object's position in degrees (NaN: unknown, no celestial WCS).
        object_id: written as ``OBJECT``.
        band: index into the cutouts' bands.

    Returns:
        ``path``.

    Raises:
        StoreError: the cutouts file cannot be read, or ``path`` cannot be written.
        ValueError: ``band`` is not one of the cutouts' bands.
    """
    from astropy.io import fits

    path = Path(path)
    image = cutouts.read(int(row))                     # (C, H, W) float32
    geometry = cutouts.sky_geometry(int(row)) if hasattr(cutouts, "sky_geometry") else None
    if geometry is None:
        scale = getattr(getattr(cutouts, "file", None), "attrs", {}).get("pixel_scale_arcsec")
        if scale:
            h, w = image.shape[-2:]
            geometry = (np.array([[-1.0, 0.0], [0.0, -1.0]]) * float(scale) / 3600,
                        np.array([(w - 1) / 2, (h - 1) / 2]))
    if geometry is not None and math.isfinite(ra) and math.isfinite(dec):
        header = cutout_wcs_header(ra, dec, *geometry)
    else:
        header = fits.Header()
        header["COMMENT"] = "no celestial WCS: the cutouts file stores no pixel scale, or the object no ra/dec"
    header["OBJECT"] = str(object_id)
    header["ORIGIN"] = "galexplorer"
    bands = list(getattr(cutouts, "bands", [])) or [f"band{i}" for i in range(len(image))]
    if not 0 <= int(band) < len(image):
        raise ValueError(f"band {band} out of range: the cutouts have {len(image)} bands ({', '.join(bands)})")
    header["EXTNAME"] = header["FILTER"] = bands[int(band)]
    try:
        with atomic_output(path) as tmp:
            fits.PrimaryHDU(data=np.asarray(image[int(band)], np.float32), header=header).writeto(tmp, overwrite=True)
    except OSError as exc:
        raise StoreError(f"cannot write the cutout: {exc.strerror or exc}", path,
                         "choose a folder you can write to") from None
    return path
