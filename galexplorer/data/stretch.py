"""Display stretches for astronomical images (linear, log, asinh, zscale) and colour composites.

All functions take float images in data units and return values in [0, 1] (or uint8 RGB).
They never modify their input and treat NaN as the background.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STRETCHES = ("linear", "log", "asinh", "zscale")


def _interval(img: np.ndarray, kind: str, percentile: float) -> tuple[float, float]:
    finite = img[np.isfinite(img)]
    if finite.size == 0:
        return 0.0, 1.0
    if kind == "zscale":
        from astropy.visualization import ZScaleInterval

        lo, hi = ZScaleInterval().get_limits(finite)
    else:
        lo = float(np.median(finite)) if kind in ("asinh", "log") else float(np.percentile(finite, 0.5))
        hi = float(np.percentile(finite, percentile))
    if not hi > lo:
        hi = lo + (float(finite.max()) - lo if finite.max() > lo else 1.0)
    return float(lo), float(hi)


def stretch(img: np.ndarray, kind: str = "asinh", percentile: float = 99.5, a: float = 0.1) -> np.ndarray:
    """Map a 2-D image to [0, 1] with one of :data:`STRETCHES`.

    Args:
        img: (H, W) float image.
        kind: 'linear' (0.5–``percentile`` percentiles), 'log', 'asinh' (background median to
            ``percentile``), or 'zscale' (IRAF zscale limits, linear).
        percentile: upper clipping percentile for linear, log and asinh.
        a: softening of the asinh stretch (smaller shows fainter structure).

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in STRETCHES:
        raise ValueError(f"unknown stretch {kind!r}; choose one of {', '.join(STRETCHES)}")
    x = np.asarray(img, dtype=np.float32)
    lo, hi = _interval(x, kind, percentile)
    y = np.clip((np.nan_to_num(x, nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    if kind == "asinh":
        y = np.arcsinh(y / a) / np.arcsinh(1.0 / a)
    elif kind == "log":
        y = np.log1p(1000.0 * y) / np.log1p(1000.0)
    return y.astype(np.float32)


def rgb_band_order(bands: Sequence[str]) -> tuple[int, int, int]:
    """Indices of the bands shown as (R, G, B): bands are listed blue to red (e.g. g, r, i)."""
    n = len(bands)
    if n == 1:
        return (0, 0, 0)
    if n == 2:
        return (1, 1, 0)
    return (n - 1, n // 2, 0)


def lupton_rgb(img: np.ndarray, rgb: tuple[int, int, int] | None = None, Q: float = 8.0,
               percentile: float = 99.5) -> np.ndarray:
    """Colour composite of a (C, H, W) stamp with ``astropy.visualization.make_lupton_rgb``.

    Each band's background (median) is subtracted; a common scale maps the ``percentile`` of the
    brightest band to 1, so colours are comparable between bands within the stamp.

    Returns:
        (H, W, 3) uint8.
    """
    from astropy.visualization import make_lupton_rgb

    x = np.nan_to_num(np.asarray(img, dtype=np.float32))
    rgb = rgb or rgb_band_order([str(i) for i in range(x.shape[0])])
    chans = [x[i] - np.median(x[i]) for i in rgb]
    scale = max(float(np.percentile(np.max(chans, axis=0), percentile)), 1e-12)
    r, g, b = (np.clip(c / scale, 0, None) for c in chans)
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides 0/0 in empty sky
        return make_lupton_rgb(r, g, b, minimum=0.0, stretch=0.5, Q=Q)


def to_rgb8(img: np.ndarray, bands: Sequence[str] | None = None, kind: str = "asinh",
            band: int | None = None) -> np.ndarray:
    """Render a (C, H, W) stamp as (H, W, 3) uint8.

    Args:
        kind: stretch for a single band; with 3 or more bands and ``band is None`` and
            ``kind == "asinh"``, a Lupton colour composite is made instead.
        band: show only this band index (grey).
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    c = x.shape[0]
    if band is None and c >= 3 and kind == "asinh":
        return lupton_rgb(x, rgb_band_order(bands or [str(i) for i in range(c)]))
    if band is None and c >= 2:
        r, g, b = rgb_band_order(bands or [str(i) for i in range(c)])
        planes = [stretch(x[i], kind) for i in (r, g, b)]
        return (np.stack(planes, axis=-1) * 255 + 0.5).astype(np.uint8)
    grey = stretch(x[band or 0], kind)
    return np.repeat((grey * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=-1)
