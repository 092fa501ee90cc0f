"""A fixed vector of morphology numbers for every stamp: the hand-made representation the loop can
choose instead of (or beside) the learned one (issue #22 item 3).

A rare class defined by shape - a bent jet, a ring, a tidal tail - is what a classical
morphologist measures with a few dozen numbers, and on data nobody tuned the network to, those
numbers separate it as well as the embedding does (see docs/active-learning.md, "Which
representation"). Per stamp, on the summed bands minus the border median:

* at four isophotes (50, 25, 10 and 3% of the peak above the background, and never below 2
  border noise): the number of connected components of at least 2 pixels, the separation of the two
  largest (in stamp sizes), the largest's share of the area, and of the union: its area (log, in
  stamp areas), elongation (1 - minor/major), solidity (area / convex area), orientation as
  ``e·cos 2θ`` and ``e·sin 2θ`` (so that a round source has no angle), and the share of the light
  inside it - 9 numbers an isophote, 36 in all;
* CAS: concentration C = 5 log10(r80/r20), rotational asymmetry A, smoothness S (Conselice 2003);
* Gini and M20 (Lotz, Primack & Madau 2004), over the pixels of the 10% isophote;
* the seven Hu moments of the light in the 10% isophote (scale, rotation and translation
  invariant), as asinh(h / 1e-8) / ln 10 — about sign·(log10|h| + 8.3) for a moment well above
  1e-8, and 0 for one that vanishes by symmetry;
* r20, r50, r80 (in stamp sizes), the peak's offset from the centre, and the share of the light
  on the stamp's border (structure reaching the edge);
* for stamps of several bands, each band's share of the light in log (colours).

That is 53 numbers for one band (+C for C bands). They are cheap (under 1 ms a 40-pixel stamp on
one core) and deterministic; stamps with no light get zeros. statmorph measures the same quantities
with more care but wants a PSF and ~0.1 s a stamp.
"""

from __future__ import annotations

import numpy as np

ISOPHOTES = (0.5, 0.25, 0.1, 0.03)
HU_FLOOR = 1e-8
_PER_ISOPHOTE = ("n_components", "separation", "largest_share", "log_area", "elongation", "solidity",
                 "orient_cos", "orient_sin", "light_share")
_GLOBAL = ("concentration", "asymmetry", "smoothness", "gini", "m20") + tuple(f"hu{i}" for i in range(1, 8)) + (
    "r20", "r50", "r80", "peak_offset", "edge_light")


def feature_names(n_bands: int = 1) -> list[str]:
    """The names of the columns :func:`morphology_features` returns for stamps of ``n_bands``."""
    names = [f"iso{int(f * 100)}_{k}" for f in ISOPHOTES for k in _PER_ISOPHOTE] + list(_GLOBAL)
    if n_bands > 1:
        names += [f"band{b}_log_share" for b in range(n_bands)]
    return names


def _moments(mask: np.ndarray, yy: np.ndarray, xx: np.ndarray):
    """Centroid and the second central moments of a boolean mask."""
    w = mask.astype(np.float64)
    m = w.sum()
    cy, cx = (w * yy).sum() / m, (w * xx).sum() / m
    dy, dx = yy - cy, xx - cx
    return cy, cx, (w * dy * dy).sum() / m, (w * dx * dx).sum() / m, (w * dy * dx).sum() / m


def _shape(mask: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> tuple[float, float, float, float]:
    """Elongation, solidity and the orientation (e cos 2θ, e sin 2θ) of a mask's pixels."""
    _, _, myy, mxx, mxy = _moments(mask, yy, xx)
    common = np.sqrt(max(((mxx - myy) / 2) ** 2 + mxy ** 2, 0.0))
    lam1, lam2 = (mxx + myy) / 2 + common, (mxx + myy) / 2 - common
    e = 1.0 - np.sqrt(max(lam2, 0.0) / lam1) if lam1 > 0 else 0.0
    theta = 0.5 * np.arctan2(2 * mxy, mxx - myy)
    area = mask.sum()
    solidity = min(1.0, area / max(_hull_area(mask), 1.0)) if area >= 3 else 1.0
    return float(e), float(solidity), float(e * np.cos(2 * theta)), float(e * np.sin(2 * theta))


_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def _hull_area(mask: np.ndarray) -> float:
    """Area of the convex hull of a mask's pixels (their corners), in pixels (OpenCV: ~20x faster
    than scikit-image's ``convex_hull_image``)."""
    import cv2

    pts = (np.argwhere(mask)[:, None, ::-1].astype(np.float32) + _CORNERS[None]).reshape(-1, 2)
    return float(cv2.contourArea(cv2.convexHull(pts)))


def _radii(light: np.ndarray, r: np.ndarray, fractions) -> list[float]:
    order = np.argsort(r, axis=None)
    cum = np.cumsum(light.ravel()[order])
    total = cum[-1]
    return [float(r.ravel()[order][min(np.searchsorted(cum, f * total), len(cum) - 1)]) for f in fractions]


def _gini(values: np.ndarray) -> float:
    v = np.sort(np.abs(values))
    n = len(v)
    if n < 2 or v.sum() <= 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * v).sum() / (v.mean() * n * (n - 1)))


def _m20(light: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> float:
    total = light.sum()
    if total <= 0:
        return 0.0
    cy, cx = (light * yy).sum() / total, (light * xx).sum() / total
    mi = light * ((yy - cy) ** 2 + (xx - cx) ** 2)
    mtot = mi.sum()
    if mtot <= 0:
        return 0.0
    order = np.argsort(light, axis=None)[::-1]
    cum = np.cumsum(light.ravel()[order])
    k = int(np.searchsorted(cum, 0.2 * total)) + 1
    return float(np.log10(max(mi.ravel()[order[:k]].sum(), 1e-12 * mtot) / mtot))


def stamp_features(stamp: np.ndarray) -> np.ndarray:
    """The :func:`feature_names` numbers of one (C, S, S) or (S, S) stamp, float64."""
    x = np.asarray(stamp, np.float64)
    if x.ndim == 2:
        x = x[None]
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    n_bands, h, w = x.shape
    img = x.sum(axis=0)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    img = img - np.median(border)
    noise = 1.4826 * float(np.median(np.abs(border - np.median(border))))
    if noise <= 0:
        noise = float(np.std(border))
    light = np.clip(img, 0, None)
    out = np.zeros(len(feature_names(n_bands)))
    if not float(light.max()) > 0:
        return out
    col = 9 * len(ISOPHOTES)
    out[:col], masks = _isophote_features(img, light, noise)
    # CAS, Gini-M20, Hu on the light of the 10% isophote
    seg = masks[0.1] if masks[0.1].any() else light > 0
    out[col:col + 17] = _structure_features(light, seg)
    col += 17
    if n_bands > 1:
        out[col:col + n_bands] = _band_shares(x, seg)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _isophote_features(img: np.ndarray, light: np.ndarray, noise: float) -> tuple[np.ndarray, dict]:
    """Nine numbers per isophote of :data:`ISOPHOTES` (pieces, separation of the two largest,
    largest's share, log area, shape, light share), and each isophote's (S, S) bool mask.

    Args:
        img: (S, S) the band sum less the border's median; light: ``img`` clipped at 0 (its
            maximum > 0); noise: the border's robust standard deviation.
    """
    from scipy import ndimage

    h, w = img.shape
    peak = float(light.max())
    size = float(max(h, w))
    yy, xx = np.indices((h, w), dtype=np.float64)
    total = light.sum()
    out = np.zeros(9 * len(ISOPHOTES))
    masks = {}
    for i, f in enumerate(ISOPHOTES):
        mask = img > max(f * peak, 2 * noise)
        lab, n = ndimage.label(mask)
        if n:
            areas = ndimage.sum_labels(np.ones_like(img), lab, index=np.arange(1, n + 1))
            keep = np.flatnonzero(areas >= 2) + 1
            if len(keep) == 0:
                keep = np.array([int(np.argmax(areas)) + 1])
            mask = np.isin(lab, keep)
            areas_k = areas[keep - 1]
            big = keep[np.argsort(areas_k)[::-1]]
            if len(big) >= 2:
                c1 = ndimage.center_of_mass(light, lab, int(big[0]))
                c2 = ndimage.center_of_mass(light, lab, int(big[1]))
                sep = float(np.hypot(c1[0] - c2[0], c1[1] - c2[1])) / size
            else:
                sep = 0.0
            area = float(mask.sum())
            el, sol, oc, os_ = _shape(mask, yy, xx)
            out[9 * i:9 * i + 9] = (len(keep), sep, areas_k.max() / area, np.log10(area / (h * w)), el, sol, oc,
                                    os_, light[mask].sum() / total)
        masks[f] = mask
    return out, masks


def _structure_features(light: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """17 numbers of the (S, S) light inside the segment ``seg``: concentration, asymmetry,
    smoothness, Gini, M20, seven Hu moments, r20, r50, r80 (in stamp sizes), the peak's offset
    from the centre and the light share in the 2-pixel edge."""
    from scipy import ndimage
    from skimage.measure import moments_central, moments_hu, moments_normalized

    h, w = light.shape
    size = float(max(h, w))
    yy, xx = np.indices((h, w), dtype=np.float64)
    total = light.sum()
    seg_light = np.where(seg, light, 0.0)
    cy, cx = (seg_light * yy).sum() / seg_light.sum(), (seg_light * xx).sum() / seg_light.sum()
    r = np.hypot(yy - cy, xx - cx)
    r20, r50, r80 = _radii(seg_light, r, (0.2, 0.5, 0.8))
    conc = 5 * np.log10(max(r80, 0.5) / max(r20, 0.5))
    centred = ndimage.shift(seg_light, ((h - 1) / 2 - cy, (w - 1) / 2 - cx), order=1, mode="constant")
    asym = np.abs(centred - centred[::-1, ::-1]).sum() / (2 * max(np.abs(centred).sum(), 1e-12))
    smooth_sigma = max(r20 / 2, 0.5)
    smooth = np.abs(seg_light - ndimage.gaussian_filter(seg_light, smooth_sigma)).sum() / (2 * seg_light.sum())
    gini = _gini(seg_light[seg])
    m20 = _m20(seg_light, yy, xx)
    mu = moments_central(seg_light / seg_light.sum(), center=(cy, cx), order=3)   # unit light: flux-free
    hu = moments_hu(moments_normalized(mu, 3))
    # sign-preserving log that is smooth through 0 (a symmetric source's odd moments are 0 up to
    # rounding, and sign·log|h| would jump between ±30 on that rounding)
    hu = np.arcsinh(hu / HU_FLOOR) / np.log(10)
    py, px = np.unravel_index(int(np.argmax(light)), light.shape)
    offset = float(np.hypot(py - (h - 1) / 2, px - (w - 1) / 2)) / size
    edge = np.zeros((h, w), bool)
    edge[:2], edge[-2:], edge[:, :2], edge[:, -2:] = True, True, True, True
    edge_light = light[edge].sum() / total
    out = np.zeros(17)
    out[:5] = (conc, asym, smooth, gini, m20)
    out[5:12] = hu
    out[12:17] = (r20 / size, r50 / size, r80 / size, offset, edge_light)
    return out


def _band_shares(x: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(C,) log10 of each band's share of the (sky-subtracted, clipped) light inside ``seg``."""
    band = np.clip(x - np.median(np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1),
                                 axis=1)[:, None, None], 0, None)
    share = band[:, seg].sum(axis=1)
    share = share / max(share.sum(), 1e-12)
    return np.log10(share + 1e-3)


def morphology_features(stamps: np.ndarray, progress=None) -> np.ndarray:
    """(N, F) float32 features of (N, C, S, S) or (N, S, S) stamps (:func:`feature_names` order).

    Args:
        stamps: the stamps (any float dtype; NaN counts as 0).
        progress: optional callable ``progress(k)`` called with the number of stamps done.

    Raises:
        ValueError: ``stamps`` is not 3-D or 4-D.
    """
    stamps = np.asarray(stamps)
    if stamps.ndim not in (3, 4):
        raise ValueError(f"morphology_features needs (N, C, S, S) or (N, S, S) stamps, got shape {stamps.shape}")
    n_bands = 1 if stamps.ndim == 3 else stamps.shape[1]
    out = np.zeros((len(stamps), len(feature_names(n_bands))), np.float32)
    for i, s in enumerate(stamps):
        out[i] = stamp_features(s)
        if progress is not None and (i + 1) % 256 == 0:
            progress(256)
    if progress is not None and len(stamps) % 256:
        progress(len(stamps) % 256)
    return out
