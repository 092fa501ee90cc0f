"""Display stretches for astronomical images (linear, log, asinh, zscale) and colour composites.

All functions take float images in data units and return values in [0, 1] (or uint8 RGB).
They never modify their input and treat NaN as the background.

Every function has a batched twin (``stretch_batch``, ``lupton_rgb_batch``, ``to_rgb8_batch``)
that works on a whole stack of stamps at once with vectorised NumPy; the single-stamp
functions call them, so a thumbnail in the store and the inspector's view of the same stamp
look the same.

The display levels (background median, upper percentile) are computed from at most
:data:`STAT_PIXELS` pixels of each image, taken on a regular grid (every other pixel of a
64-px stamp), as astropy's ``ZScaleInterval`` samples 1000 pixels: selecting the median is
most of the cost of a thumbnail, and the levels move by a few percent of the sky noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STRETCHES = ("linear", "log", "asinh", "zscale")
STAT_PIXELS = 1024   # display levels come from at most this many pixels per image

# Lupton et al. (2004) asinh colour composite, the look of
# ``make_lupton_rgb(r, g, b, minimum=0, stretch=0.5, Q=8)`` after scaling each stamp so that the
# ``percentile`` of its brightest band maps to 1.
LUPTON_Q = 8.0
LUPTON_STRETCH = 0.5
_LUPTON_FRAC = 0.1   # astropy's LuptonAsinhStretch: the gradient is estimated at frac * stretch


def _stat_sample(x: np.ndarray) -> np.ndarray:
    """(n, P) pixels of (n, H, W) images on a regular grid of at most STAT_PIXELS per image."""
    n, h, w = x.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / STAT_PIXELS))))
    return np.ascontiguousarray(x[:, ::step, ::step]).reshape(n, -1)


def _quantiles(rows: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """np.percentile(rows, q, axis=1) for each q ('linear' method), from one sort per row.

    Sorting a small sample is faster than NumPy's selection, which slows down badly on the
    many equal values of quantised images.
    """
    srt = np.sort(rows, axis=1)
    last = srt.shape[1] - 1
    out = []
    for q in qs:
        pos = q / 100.0 * last
        i = int(np.floor(pos))
        j = min(i + 1, last)
        frac = pos - i
        out.append(srt[:, i].astype(np.float64) * (1.0 - frac) + srt[:, j].astype(np.float64) * frac)
    return out


def _limits(flat: np.ndarray, kind: str, percentile: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-stamp (lo, hi) display limits of (n, P) pixels, ignoring NaN/inf; float64 (n,)."""
    n = flat.shape[0]
    lo = np.zeros(n)
    hi = np.ones(n)
    good = np.isfinite(flat)
    has_any = good.any(axis=1)
    all_good = good.all(axis=1)
    if kind == "zscale":
        from astropy.visualization import ZScaleInterval

        zs = ZScaleInterval()
        for i in np.flatnonzero(has_any):
            lo[i], hi[i] = zs.get_limits(flat[i][good[i]])
        fmax = np.where(has_any, np.max(np.where(good, flat, -np.inf), axis=1), 1.0)
    else:
        q = [50.0, percentile] if kind in ("asinh", "log") else [0.5, percentile]
        if all_good.all():
            lo, hi = _quantiles(flat, q)
            fmax = flat.max(axis=1).astype(np.float64)
        else:
            # the NaN-aware path is ~10x slower, so use it only for stamps that need it
            lo, hi, fmax = np.zeros(n), np.ones(n), np.ones(n)
            ok = np.flatnonzero(all_good)
            if ok.size:
                lo[ok], hi[ok] = _quantiles(flat[ok], q)
                fmax[ok] = flat[ok].max(axis=1)
            part = np.flatnonzero(has_any & ~all_good)
            if part.size:
                sub = np.where(good[part], flat[part], np.nan)
                lo[part], hi[part] = np.nanpercentile(sub, q, axis=1)
                fmax[part] = np.nanmax(sub, axis=1)
    # a flat stamp: widen the interval so the division below is safe
    bad = ~(hi > lo)
    hi = np.where(bad, lo + np.where(fmax > lo, fmax - lo, 1.0), hi)
    lo = np.where(has_any, lo, 0.0)
    hi = np.where(has_any, hi, 1.0)
    return lo.astype(np.float64), hi.astype(np.float64)


def stretch_batch(imgs: np.ndarray, kind: str = "asinh", percentile: float = 99.5,
                  a: float = 0.1) -> np.ndarray:
    """:func:`stretch` applied to each image of a stack, vectorised.

    Args:
        imgs: (n, H, W) float images.
        kind, percentile, a: as in :func:`stretch`; limits are computed per image.

    Returns:
        (n, H, W) float32 in [0, 1].

    Raises:
        ValueError: unknown ``kind``.
    """
    if kind not in STRETCHES:
        raise ValueError(f"unknown stretch {kind!r}; choose one of {', '.join(STRETCHES)}")
    x = np.asarray(imgs, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"expected (n, H, W) images, got shape {x.shape}")
    lo, hi = _limits(_stat_sample(x), kind, percentile)
    lo32 = lo.astype(np.float32)[:, None, None]
    inv = (1.0 / (hi - lo)).astype(np.float32)[:, None, None]
    y = np.where(np.isnan(x), lo32, x)   # NaN is background; +inf shows white, -inf black
    y -= lo32
    y *= inv
    np.clip(y, 0.0, 1.0, out=y)
    if kind == "asinh":
        np.arcsinh(y * np.float32(1.0 / a), out=y)
        y *= np.float32(1.0 / np.arcsinh(1.0 / a))
    elif kind == "log":
        np.log1p(y * np.float32(1000.0), out=y)
        y *= np.float32(1.0 / np.log1p(1000.0))
    return y


def stretch(img: np.ndarray, kind: str = "asinh", percentile: float = 99.5, a: float = 0.1) -> np.ndarray:
    """Map a 2-D image to [0, 1] with one of :data:`STRETCHES`.

    Args:
        img: (H, W) float image.
        kind: 'linear' (0.5–``percentile`` percentiles), 'log', 'asinh' (background median to
            ``percentile``), or 'zscale' (IRAF zscale limits, linear).
        percentile: upper clipping percentile for linear, log and asinh.
        a: softening of the asinh stretch (smaller shows fainter structure).

    Returns:
        (H, W) float32 in [0, 1].

    Raises:
        ValueError: unknown ``kind``.
    """
    return stretch_batch(np.asarray(img)[None], kind, percentile, a)[0]


def rgb_band_order(bands: Sequence[str]) -> tuple[int, int, int]:
    """Indices of the bands shown as (R, G, B): bands are listed blue to red (e.g. g, r, i)."""
    n = len(bands)
    if n == 1:
        return (0, 0, 0)
    if n == 2:
        return (1, 1, 0)
    return (n - 1, n // 2, 0)


def lupton_rgb_batch(imgs: np.ndarray, rgb: tuple[int, int, int] | None = None, Q: float = LUPTON_Q,
                     percentile: float = 99.5) -> np.ndarray:
    """Lupton asinh colour composites of a stack of stamps, vectorised.

    The same look as :func:`astropy.visualization.make_lupton_rgb` with ``minimum=0``,
    ``stretch=0.5``: each band's background (median) is subtracted; a common scale maps the
    ``percentile`` of the brightest band to 1, so colours are comparable between bands within a
    stamp; then the intensity I = (R+G+B)/3 is mapped through asinh(Q I / stretch), and pixels
    brighter than white keep their colour. Median and percentile come from a regular grid of at
    most :data:`STAT_PIXELS` pixels (see the module docstring).

    Args:
        imgs: (n, C, H, W) float images in data units (NaN counts as 0).
        rgb: band indices shown as (R, G, B); default :func:`rgb_band_order`.
        Q: asinh softening.
        percentile: the brightness percentile that maps to 1 before the stretch.

    Returns:
        (n, H, W, 3) uint8.
    """
    x = np.asarray(imgs, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected (n, C, H, W) images, got shape {x.shape}")
    n, c, h, w = x.shape
    rgb = rgb or rgb_band_order([str(i) for i in range(c)])
    # three (n, H, W) planes, not one (n, 3, H, W) array: NumPy reduces over a short middle axis
    # 20-50x slower than it combines three arrays element by element
    planes = []
    for i in rgb:
        p = np.array(x[:, i], dtype=np.float32)                         # a copy we may modify
        if not np.isfinite(p).all():
            np.nan_to_num(p, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        p -= _quantiles(_stat_sample(p), [50.0])[0].astype(np.float32)[:, None, None]
        planes.append(p)
    r, g, b = planes
    brightest = _stat_sample(np.maximum(np.maximum(r, g), b))
    scale = np.maximum(_quantiles(brightest, [percentile])[0], 1e-12).astype(np.float32)
    inv = (1.0 / scale)[:, None, None]
    for p in planes:
        p *= inv
        np.maximum(p, 0.0, out=p)
    # Lupton et al. (2004) as in astropy's LuptonAsinhStretch and RGBImageMappingLupton
    q = Q if abs(Q) >= 2.0 ** -23 else 0.1
    soften = np.float32(q / LUPTON_STRETCH)
    slope = np.float32(_LUPTON_FRAC / np.arcsinh(_LUPTON_FRAC * q))
    intensity = (r + g + b) / np.float32(3.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(intensity <= 0, np.float32(0.0), np.arcsinh(intensity * soften) * slope / intensity)
    peak = np.zeros_like(factor)
    for p in planes:
        p *= factor
        np.maximum(peak, p, out=peak)
    # pixels brighter than white keep their colour: divide by the brightest band, times 255
    gain = np.where(peak > 1.0, np.float32(255.0) / np.where(peak > 1.0, peak, 1.0), np.float32(255.0))
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for k, p in enumerate(planes):
        p *= gain
        out[..., k] = p          # truncation to uint8, as astropy's conversion
    return out


def lupton_rgb(img: np.ndarray, rgb: tuple[int, int, int] | None = None, Q: float = LUPTON_Q,
               percentile: float = 99.5) -> np.ndarray:
    """Colour composite of a (C, H, W) stamp, the look of ``astropy.visualization.make_lupton_rgb``.

    See :func:`lupton_rgb_batch`.

    Returns:
        (H, W, 3) uint8.
    """
    return lupton_rgb_batch(np.asarray(img)[None], rgb, Q, percentile)[0]


def to_rgb8_batch(imgs: np.ndarray, bands: Sequence[str] | None = None, kind: str = "asinh",
                  band: int | None = None) -> np.ndarray:
    """Render a stack of (C, H, W) stamps as uint8 RGB; see :func:`to_rgb8`.

    Args:
        imgs: (n, C, H, W) float images.

    Returns:
        (n, H, W, 3) uint8.
    """
    x = np.asarray(imgs)
    if x.ndim == 3:
        x = x[:, None]
    n, c = x.shape[:2]
    order = rgb_band_order(list(bands) if bands else [str(i) for i in range(c)])
    if band is None and c >= 3 and kind == "asinh":
        return lupton_rgb_batch(x, order)
    if band is None and c >= 2:
        r, g, b = order
        h, w = x.shape[2:]
        planes = stretch_batch(x[:, [r, g, b]].reshape(n * 3, h, w), kind).reshape(n, 3, h, w)
        return np.ascontiguousarray((planes * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1))
    grey = (stretch_batch(x[:, band or 0], kind) * 255 + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def to_rgb8(img: np.ndarray, bands: Sequence[str] | None = None, kind: str = "asinh",
            band: int | None = None) -> np.ndarray:
    """Render a (C, H, W) stamp as (H, W, 3) uint8.

    Args:
        img: (C, H, W) or (H, W) float image.
        bands: the C band names, blue to red (only their number and order matter).
        kind: stretch for a single band; with 3 or more bands and ``band is None`` and
            ``kind == "asinh"``, a Lupton colour composite is made instead; with 2 or more
            bands and another ``kind``, each shown band is stretched on its own.
        band: show only this band index (grey).
    """
    x = np.asarray(img)
    if x.ndim == 2:
        x = x[None]
    return to_rgb8_batch(x[None], bands, kind, band)[0]
