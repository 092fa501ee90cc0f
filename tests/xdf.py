"""Real pixels for tests: the Hubble eXtreme Deep Field image that ships inside scikit-image.

``skimage.data.hubble_deep_field()`` is a (872, 1000, 3) uint8 colour image of real HST data
(public domain). We treat its three channels as three bands, blue to red (the RGB channels
reversed, as galexplorer.data.xdf does).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BANDS = ["b", "g", "r"]
XDF_CENTRE = (53.1624, -27.7914)   # deg; the sky position is nominal
PIXEL_SCALE = 0.06 / 3600          # deg per pixel


@lru_cache(maxsize=1)
def xdf_image() -> np.ndarray:
    """(H, W, 3) float32 in [0, 1], channels blue, green, red."""
    from galexplorer.data.xdf import xdf_image as _image

    return _image()


@lru_cache(maxsize=4)
def xdf_sources(min_area: int = 30, threshold: float = 0.12) -> np.ndarray:
    """(K, 2) integer (y, x) centroids of sources detected in the stacked image, brightest first."""
    from skimage import color, measure

    img = xdf_image()
    grey = color.rgb2gray(img)
    regions = [r for r in measure.regionprops(measure.label(grey > threshold), intensity_image=grey)
               if r.area >= min_area]
    regions.sort(key=lambda r: -r.intensity_max)
    return np.array([[int(round(c)) for c in r.centroid] for r in regions], dtype=int)


def xdf_stamps(n: int = 48, size: int = 32) -> tuple[np.ndarray, list[str]]:
    """``n`` real galaxy stamps, (n, 3, size, size) float32, with ids ``XDF0000``..."""
    img = xdf_image()
    pad = np.pad(img, ((size, size), (size, size), (0, 0)))
    out = []
    for y, x in xdf_sources()[:n]:
        y0, x0 = y + size - size // 2, x + size - size // 2
        out.append(np.moveaxis(pad[y0:y0 + size, x0:x0 + size], -1, 0))
    stamps = np.stack(out).astype(np.float32)
    return stamps, [f"XDF{k:04d}" for k in range(len(stamps))]


def xdf_radec(y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nominal (ra, dec) in degrees of XDF pixel positions (tangent-plane approximation)."""
    ra0, dec0 = XDF_CENTRE
    ra = ra0 - (np.asarray(x) - 500) * PIXEL_SCALE / np.cos(np.radians(dec0))
    dec = dec0 + (436 - np.asarray(y)) * PIXEL_SCALE
    return ra, dec
