"""Galaxy stamps from the Hubble eXtreme Deep Field image that ships inside scikit-image.

``skimage.data.hubble_deep_field()`` is a (872, 1000, 3) 8-bit colour rendering of the XDF
(HST ACS/WFC3, public domain). It is not calibrated flux — it is already stretched for display —
but its sources are real: spirals, ellipticals, clumpy and interacting systems, blends and a
few stars with diffraction spikes. The demo uses its three channels as three bands (blue,
green, red) and detects sources by segmenting the stacked image.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

BANDS = ["blue", "green", "red"]
XDF_CENTRE_DEG = (53.1624, -27.7914)   # the XDF field centre, used as a nominal WCS reference
XDF_PIXEL_DEG = 0.06 / 3600            # pixel scale of the XDF mosaic


def xdf_image() -> np.ndarray:
    """(872, 1000, 3) float32 in [0, 1], channels blue, green, red (reordered from RGB)."""
    from skimage import data

    rgb = data.hubble_deep_field().astype(np.float32) / 255.0
    return np.ascontiguousarray(rgb[..., ::-1])


@dataclass
class XdfSources:
    """Detected sources. All arrays (K,)."""

    y: np.ndarray
    x: np.ndarray
    area: np.ndarray            # segment area, pixels
    peak: np.ndarray            # peak of the stacked image, 0-1
    flux: np.ndarray            # summed stacked image over the segment
    colour: np.ndarray          # red minus blue mean brightness over the segment
    ellipticity: np.ndarray     # 1 - minor/major axis
    saturated: np.ndarray       # pixels at the 8-bit ceiling in any channel within the segment
    ra: np.ndarray
    dec: np.ndarray


def detect_sources(image: np.ndarray, nsigma: float = 5.0, min_area: int = 25, edge: int = 0) -> XdfSources:
    """Segment the stacked image above a sigma-clipped background.

    Args:
        image: (H, W, C) float image.
        nsigma: detection threshold above the background median, in clipped standard deviations.
        min_area: smallest segment kept, pixels.
        edge: drop sources whose centroid lies closer than this to the border, pixels.
    """
    from astropy.stats import sigma_clipped_stats
    from skimage import measure

    stack = image.mean(axis=2)
    _, median, std = sigma_clipped_stats(stack, sigma=3.0)
    labels = measure.label(stack > median + nsigma * std)
    sat_map = (image >= 254.5 / 255).any(axis=2).astype(np.float32)
    red_minus_blue = image[..., 2] - image[..., 0]
    rows = []
    h, w = stack.shape
    for r in measure.regionprops(labels, intensity_image=stack):
        if r.area < min_area:
            continue
        y, x = r.centroid
        if y < edge or x < edge or y > h - 1 - edge or x > w - 1 - edge:
            continue
        sl = r.slice
        mask = r.image
        rows.append((y, x, r.area, r.intensity_max, float(stack[sl][mask].sum()),
                     float(red_minus_blue[sl][mask].mean()),
                     1.0 - (r.axis_minor_length / r.axis_major_length if r.axis_major_length > 0 else 1.0),
                     float(sat_map[sl][mask].sum())))
    a = np.array(rows, dtype=np.float64).reshape(-1, 8)
    ra0, dec0 = XDF_CENTRE_DEG
    ra = ra0 - (a[:, 1] - w / 2) * XDF_PIXEL_DEG / np.cos(np.radians(dec0))
    dec = dec0 + (h / 2 - a[:, 0]) * XDF_PIXEL_DEG
    log.info("XDF: %d sources above %.1f sigma with area >= %d px", len(a), nsigma, min_area)
    return XdfSources(a[:, 0], a[:, 1], a[:, 2].astype(int), a[:, 3], a[:, 4], a[:, 5], a[:, 6],
                      a[:, 7].astype(int), ra, dec)


def cut_stamps(image: np.ndarray, y: np.ndarray, x: np.ndarray, size: int) -> np.ndarray:
    """(K, C, size, size) float32 stamps centred on (y, x); the border is padded with the median."""
    pad = size
    fill = np.median(image, axis=(0, 1))
    padded = np.empty((image.shape[0] + 2 * pad, image.shape[1] + 2 * pad, image.shape[2]), np.float32)
    padded[:] = fill
    padded[pad:-pad, pad:-pad] = image
    out = np.empty((len(y), image.shape[2], size, size), np.float32)
    for k, (yy, xx) in enumerate(zip(np.round(y).astype(int), np.round(x).astype(int))):
        y0, x0 = yy + pad - size // 2, xx + pad - size // 2
        out[k] = np.moveaxis(padded[y0:y0 + size, x0:x0 + size], -1, 0)
    return out
