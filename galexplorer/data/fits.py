"""FITS images: which HDU holds the pixels, band names from the header, and the sky WCS.

A file may be plain (``.fits``, ``.fit``, ``.fts``), gzipped (``.fits.gz``) or tile-compressed
(``.fz``, ``.fits.fz``): the suffixes are ``registry.FITS``'s, where :func:`read_fits` is
registered as ingest's FITS reader. The image is the one in ``hdu`` when given, else the primary
HDU if it holds an image, else the first image extension. Its axes are read as (H, W) = one band,
(C, H, W) = C bands of one object, or (N, C, H, W) = N objects (leading axes of length 1 are
dropped).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from . import registry
from .stamps import FileStamps

log = logging.getLogger(__name__)

# errors astropy raises for files that are not FITS, or damaged or truncated ones
READ_ERRORS = (OSError, ValueError, TypeError, IndexError, KeyError, EOFError)


def read_error_text(exc: BaseException) -> str:
    """A short reason from astropy's error: its first sentence, with a plain word for common cases."""
    text = str(exc).strip()
    if "SIMPLE card" in text or "Empty or corrupt" in text:
        return "it does not start like a FITS file"
    if "reshape" in text or "buffer is too small" in text or "truncated" in text.lower():
        return "the pixel data is shorter than its header says: truncated?"
    first = text.splitlines()[0].split(". ")[0] if text else type(exc).__name__
    return first[:200]


def _hdu_label(hdu_spec: int | str | None) -> str:
    return "" if hdu_spec is None else f" HDU {hdu_spec!r}"


def find_image_hdu(hdul, path: Path, hdu: int | str | None = None):
    """The image HDU of an open ``HDUList``: ``hdu`` (index or EXTNAME) or the first with pixels.

    Raises:
        InputError: no such HDU, or no image in the file.
    """
    if hdu is not None:
        try:
            chosen = hdul[int(hdu)] if str(hdu).lstrip("-").isdigit() else hdul[str(hdu)]
        except (KeyError, IndexError):
            raise InputError(f"no HDU {hdu!r} (the file has {len(hdul)})", path,
                             "check --hdu (a number from 0, or an EXTNAME)") from None
        if not getattr(chosen, "is_image", False) or len(chosen.shape or ()) < 2:
            raise InputError(f"HDU {hdu!r} holds no image", path, "choose an image HDU with --hdu")
        return chosen
    for h in hdul:
        if getattr(h, "is_image", False) and len(h.shape or ()) >= 2:
            return h
    raise InputError("the FITS file holds no image (no HDU with 2 or more axes)", path,
                     "give a FITS image, or use --hdu")


def header_bands(header, n_planes: int) -> list[str] | None:
    """Band names from FILTERn / BANDn keywords (one per plane) or FILTER / BAND for one plane."""
    for key in ("FILTER", "BAND"):
        names = [header.get(f"{key}{i + 1}") for i in range(n_planes)]
        if all(isinstance(v, str) and v.strip() for v in names):
            return [v.strip() for v in names]
    if n_planes == 1:
        for key in ("FILTER", "BAND"):
            v = header.get(key)
            if isinstance(v, str) and v.strip():
                return [v.strip()]
    return None


def celestial_wcs(header, path: Path | str):
    """The celestial (2-D sky) part of the header's WCS, or None when there is none."""
    from astropy.wcs import WCS, FITSFixedWarning

    if not has_wcs(header):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            w = WCS(header)
            if not w.has_celestial:
                return None
            return w.celestial
    except Exception as exc:  # astropy raises many kinds for damaged WCS keywords
        log.warning("%s: ignoring a WCS that cannot be read (%s)", path, str(exc).splitlines()[0])
        return None


# keywords of distortions that wcslib alone does not apply (astropy adds them on top)
_DISTORTION_KEYS = ("A_ORDER", "B_ORDER", "AP_ORDER", "BP_ORDER", "CPDIS1", "CPDIS2", "D2IMDIS1", "D2IMDIS2",
                    "DP1", "DP2", "DQ1", "DQ2")


def has_wcs(header) -> bool:
    # keyword look-ups only: iterating a header makes astropy parse every card
    return any(f"CTYPE{i}" in header for i in range(1, _n_wcs_axes(header) + 1))


def _n_wcs_axes(header) -> int:
    n = header.get("WCSAXES", header.get("NAXIS", 2))
    return int(n) if isinstance(n, int) and 0 < n < 10 else 2


def header_radec(header, x: float, y: float, path: Path | str) -> tuple[float, float]:
    """ICRS (ra, dec) in degrees at the 0-based pixel (x, y) of an image with this header.

    Per-object files need one position each, and building ``astropy.wcs.WCS`` costs ~3 ms
    (header round trips and fix-ups): for 10^5 files that is minutes. Headers without SIP or
    lookup-table distortions and in ICRS are evaluated with wcslib directly (~0.1 ms, the same
    numbers); all others go through the full WCS.

    Returns:
        (ra, dec); NaN when the header has no celestial WCS.
    """
    try:
        if not has_wcs(header):
            return float("nan"), float("nan")
        ctypes = [str(header.get(f"CTYPE{i}", "")).upper() for i in range(1, _n_wcs_axes(header) + 1)]
        distorted = any(k in header for k in _DISTORTION_KEYS)
    except Exception as exc:  # a damaged WCS card (astropy's VerifyError, ...): no position, as celestial_wcs
        log.warning("%s: ignoring a WCS that cannot be read (%s)", path, str(exc).splitlines()[0][:160])
        return float("nan"), float("nan")
    if not distorted and not any(c.endswith("-SIP") for c in ctypes):
        from astropy.wcs import WCSSUB_LATITUDE, WCSSUB_LONGITUDE, Wcsprm

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # wcslib notes the padding after END
                wp = Wcsprm(header.tostring().encode("ascii", "replace"), relax=True)
                wp = wp.sub([WCSSUB_LONGITUDE, WCSSUB_LATITUDE])
                wp.fix()
                wp.set()
            ct = [c.upper() for c in wp.ctype]
            if (wp.naxis == 2 and ct[0].startswith("RA") and ct[1].startswith("DEC")
                    and wp.radesys.strip().upper() in ("ICRS", "")):
                ra, dec = wp.p2s(np.array([[x, y]], dtype=np.float64), 0)["world"][0]
                return float(np.mod(ra, 360.0)), float(dec)
        except Exception:  # wcslib rejects odd headers that astropy's WCS fixes up: use that
            pass
    w = celestial_wcs(header, path)
    if w is None:
        return float("nan"), float("nan")
    ra, dec = pixel_to_icrs(w, np.array([x]), np.array([y]))
    return float(ra[0]), float(dec[0])


def _is_icrs_like(wcs) -> bool:
    """RA/Dec axes in ICRS (the FITS default without RADESYS/EQUINOX): no frame conversion needed."""
    ctype = [c.upper() for c in wcs.wcs.ctype]
    if not (ctype[0].startswith("RA") and ctype[1].startswith("DEC")):
        return False
    return wcs.wcs.radesys.strip().upper() in ("ICRS", "")


def pixel_to_icrs(wcs, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions (ICRS, degrees) of 0-based pixel positions; (n,) float64 each."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if _is_icrs_like(wcs):
        ra, dec = wcs.pixel_to_world_values(x, y)
        return np.mod(np.asarray(ra, dtype=np.float64), 360.0), np.asarray(dec, dtype=np.float64)
    sky = wcs.pixel_to_world(x, y).icrs
    return np.asarray(sky.ra.deg, dtype=np.float64), np.asarray(sky.dec.deg, dtype=np.float64)


def icrs_to_pixel(wcs, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0-based pixel positions of ICRS sky positions (degrees); NaN in gives NaN out."""
    ra = np.asarray(ra, dtype=np.float64)
    dec = np.asarray(dec, dtype=np.float64)
    if _is_icrs_like(wcs):
        x, y = wcs.world_to_pixel_values(ra, dec)
    else:
        from astropy import units as u
        from astropy.coordinates import SkyCoord

        x, y = wcs.world_to_pixel(SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"))
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


def as_nchw(data: np.ndarray, path: Path) -> np.ndarray:
    """View an image array as (N, C, H, W): (H, W) -> (1, 1, H, W), (C, H, W) -> (1, C, H, W)."""
    while data.ndim > 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim == 2:
        return data[None, None]
    if data.ndim == 3:
        return data[None]
    if data.ndim == 4:
        return data
    raise InputError(f"cannot read an image with {data.ndim} axes of shape {data.shape}", path,
                     "give (H, W), (C, H, W) or (N, C, H, W) images")


@dataclass
class FitsImage:
    """The pixels of one FITS file, read whole.

    Attributes:
        data: (N, C, H, W) float32 (N = 1 for a plain image or a cube).
        bands: band names from the header (FILTERn/BANDn), or None.
        header: the image HDU's header.
    """

    path: Path
    data: np.ndarray
    bands: list[str] | None
    header: object

    @property
    def has_wcs(self) -> bool:
        return has_wcs(self.header)

    def centre_radec(self) -> tuple[float, float]:
        """(ra, dec) in degrees (ICRS) of the image centre, NaN without a WCS."""
        h, w = self.data.shape[-2:]
        return header_radec(self.header, (w - 1) / 2.0, (h - 1) / 2.0, self.path)


def read_fits(path: str | Path, hdu: int | str | None = None) -> FitsImage:
    """Read a FITS image whole (small per-object files; mosaics use :mod:`.mosaic`).

    Raises:
        InputError: not FITS, damaged or truncated, no image, too many axes.
    """
    from astropy.io import fits

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # astropy warns about non-standard keywords in many files
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                h = find_image_hdu(hdul, path, hdu)
                raw = h.data
                if raw is None:
                    raise InputError(f"the image{_hdu_label(hdu)} is empty", path, "give a FITS image")
                data = as_nchw(np.asarray(raw), path).astype(np.float32, copy=False)
                header = h.header
                bands = header_bands(header, data.shape[1])
    except InputError:
        raise
    except READ_ERRORS as exc:
        raise InputError(f"not a readable FITS file ({read_error_text(exc)})", path,
                         "check the file, or remove it from the inputs") from None
    return FitsImage(path=path, data=data, bands=bands, header=header)


def sky_cd(radec, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, 2, 2) local WCS matrix at 0-based pixels (x, y): degrees per pixel, by central differences.

    Row 0 is the eastward offset (Δra·cos dec), row 1 the northward (Δdec); column 0 per pixel
    in x (column), column 1 per pixel in y (row). ``radec(x, y)`` gives ICRS (ra, dec) arrays.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ra0, dec0 = radec(x, y)
    cosd = np.cos(np.radians(dec0))
    cd = np.empty((len(x), 2, 2))
    for j, (dx, dy) in enumerate(((0.5, 0.0), (0.0, 0.5))):
        ra1, dec1 = radec(x + dx, y + dy)
        ra2, dec2 = radec(x - dx, y - dy)
        cd[:, 0, j] = (np.mod(ra1 - ra2 + 180.0, 360.0) - 180.0) * cosd
        cd[:, 1, j] = dec1 - dec2
    return cd


def fits_sky(img: FitsImage) -> tuple[np.ndarray, tuple[float, float]]:
    """The local WCS of a per-object FITS image at its centre (the pixel of its ra/dec)."""
    def radec(xs, ys):
        pts = [header_radec(img.header, float(a), float(b), img.path) for a, b in zip(xs, ys)]
        return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])

    h, w = img.data.shape[-2:]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    return sky_cd(radec, np.array([cx]), np.array([cy]))[0], (cx, cy)


def read_fits_stamps(path: str | Path, hdu: int | str | None = None, dataset: str | None = None,
                     position: bool = True) -> FileStamps:
    """Ingest's FITS reader (``registry``): the image whole, its header's band names and, with
    ``position``, the centre's ra/dec and local WCS (``dataset`` is HDF5's and ignored).

    Raises:
        InputError: as :func:`read_fits`.
    """
    img = read_fits(path, hdu)
    stamps = FileStamps(img.path, img.data, img.bands, named=True)
    if position:
        stamps.ra, stamps.dec = img.centre_radec()     # NaN without a WCS
        stamps.sky = fits_sky(img) if np.isfinite(stamps.ra) else None
    return stamps


registry.register_reader("fits", "ingest", read_fits_stamps)
