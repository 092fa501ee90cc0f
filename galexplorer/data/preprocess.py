"""Per-stamp preparation: NaN/inf repair, cropping to the central source, resampling.

All functions take and return (C, H, W) float32 stamps and never modify their input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)


def repair_bad_pixels(stamp: np.ndarray) -> tuple[np.ndarray, int, bool]:
    """Replace NaN and inf by the median of the finite pixels of the same band.

    The median keeps a replaced pixel at the background level, so it neither adds flux nor
    shows up as a hole in the display stretch.

    Args:
        stamp: (C, H, W) float32.

    Returns:
        ``(repaired, n_bad, empty)``: the repaired stamp (the input itself when nothing was
        bad), the number of non-finite pixels over all bands, and whether some band has no
        finite pixel at all (such a stamp cannot be used).
    """
    good = np.isfinite(stamp)
    if good.all():
        return stamp, 0, False
    n_bad = int(stamp.size - np.count_nonzero(good))
    per_band = good.reshape(len(stamp), -1).any(axis=1)
    if not per_band.all():
        return stamp, n_bad, True
    out = stamp.copy()
    for c in range(len(out)):
        bad = ~good[c]
        if bad.any():
            out[c][bad] = np.median(out[c][~bad])
    return out, n_bad, False


def resample(stamp: np.ndarray, size: int) -> np.ndarray:
    """Resample a stamp to (C, size, size).

    A non-square stamp is first cut to its central square (so shapes are not stretched); the
    square is then resized with area averaging when shrinking (each output pixel is the mean
    of the input pixels it covers: surface brightness is kept) and bilinear interpolation when
    enlarging.

    Args:
        stamp: (C, H, W) float32.
        size: output side in pixels.

    Returns:
        (C, size, size) float32 (the input itself when it already has that shape).
    """
    c, h, w = stamp.shape
    if h != w:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        stamp = stamp[:, y0:y0 + s, x0:x0 + s]
        h = w = s
    if h == size:
        return np.ascontiguousarray(stamp, dtype=np.float32)
    interp = cv2.INTER_AREA if h > size else cv2.INTER_LINEAR
    # OpenCV resizes (H, W, C) images; it handles any number of channels up to 512
    hwc = np.ascontiguousarray(stamp.transpose(1, 2, 0), dtype=np.float32)
    out = cv2.resize(hwc, (size, size), interpolation=interp)
    if out.ndim == 2:
        out = out[:, :, None]
    return np.ascontiguousarray(out.transpose(2, 0, 1))


@dataclass
class CentralCropConfig:
    """Settings of :func:`central_source_crop` (Astronomaly's sigma-clipping preprocessing).

    Attributes:
        sigma: clipping level of the sigma-clipped background statistics.
        threshold: a pixel belongs to a source when above median + threshold * std.
        margin: the crop's half-side is ``margin`` times the largest distance from the stamp
            centre to the edge of the source's bounding box.
        min_size: smallest crop side in pixels (tiny sources are not blown up to noise).
        mask: also set pixels outside the source's contour to 0, as Astronomaly does.
    """

    sigma: float = 3.0
    threshold: float = 1.0
    margin: float = 1.5
    min_size: int = 16
    mask: bool = False


def central_source_crop(stamp: np.ndarray, cfg: CentralCropConfig | None = None) -> tuple[np.ndarray, bool]:
    """Crop a stamp to the source at its centre, found by a sigma-clipped threshold and a contour.

    The detection image is the sum of the bands. Pixels above median + ``threshold`` * std
    (sigma-clipped statistics) form a binary image; OpenCV's outer contours of it are searched
    for the one that contains the stamp centre. The stamp is cut to a square centred on the
    stamp centre that holds that contour's bounding box times ``margin``. When no contour holds
    the centre the stamp is returned unchanged.

    Args:
        stamp: (C, H, W) float32, finite.

    Returns:
        ``(cropped, found)``: a (C, S, S) stamp (S <= min(H, W)) and whether a source was found.
    """
    from astropy.stats import sigma_clipped_stats

    cfg = cfg or CentralCropConfig()
    c, h, w = stamp.shape
    det = stamp.sum(axis=0, dtype=np.float64)
    _, median, std = sigma_clipped_stats(det, sigma=cfg.sigma)
    if not np.isfinite(std) or std <= 0:
        return stamp, False
    binary = (det > median + cfg.threshold * std).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    central = next((ct for ct in contours if cv2.pointPolygonTest(ct, (cx, cy), False) >= 0), None)
    if central is None:
        return stamp, False
    x, y, bw, bh = cv2.boundingRect(central)
    reach = max(abs(x - cx), abs(x + bw - 1 - cx), abs(y - cy), abs(y + bh - 1 - cy)) + 0.5
    side = int(np.ceil(2 * reach * cfg.margin))
    side = max(min(side, h, w), min(cfg.min_size, h, w))
    out = stamp
    if cfg.mask:
        keep = np.zeros((h, w), dtype=np.uint8)
        cv2.drawContours(keep, [central], 0, 1, thickness=-1)
        out = stamp * keep[None].astype(stamp.dtype)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return np.ascontiguousarray(out[:, y0:y0 + side, x0:x0 + side]), True
