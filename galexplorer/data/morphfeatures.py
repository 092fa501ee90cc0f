"""A fixed vector of morphology numbers for every stamp: the hand-made representation the loop can
choose instead of (or beside) the learned one (issue #22 item 3).

First the unrelated sources are masked (:func:`target_mask`): the pieces of the detection map (the
band sum smoothed by 1 px, above one border noise) other than the one nearest the centre are set
to the sky, unless they surround the centre (a quarter of the circle about it: a ring, a wide arc)
or, on a sky clipped to 0, hold a quarter of the detected light (a radio lobe past a gap).
Touching neighbours are not deblended.

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
* for stamps of several bands, each band's share of the light in log (colours);
* (issue #22, appended so that the first 53 + C columns keep their meaning) the shape of the light
  that rotation does not explain, about the *asymmetry centre* (the half-pixel point that
  minimises the rotational residual of the light in the 3% isophote, found by descent from its
  centroid, so that a host with a tail is turned about its nucleus and a double about its
  middle): the shape asymmetry A_S of the 10% and of the 3% isophote's binary maps (Pawlik et al.
  2016: sum|M - M_180| / 2 sum M, the light's weight taken out), the rotational asymmetry of the
  light outside r50, and the outer residual - the light of the largest connected piece of
  ``I - I_180`` above the noise outside r50, as a share of all the light (a tidal tail or a bent
  jet is one coherent piece there; the pointwise sum of max(I - I_180, 0) over a region that
  rotation maps onto itself is exactly half the absolute residual and would repeat the outer
  asymmetry); Freeman et al. (2013) multimode M (A2/A1 of the two largest pieces above the
  threshold that maximises A2²/A1, 0 for one piece), intensity I (the second-brightest
  watershed region's flux over the brightest's) and deviation D (the brightest region's peak
  from the light's centroid, in units of sqrt(area/π)) - 7 numbers;
* for stamps of several bands, each band's rotational asymmetry about the same centre and the
  colour dispersion: the light-weighted RMS scatter of the pixels' band fractions across the 10%
  isophote (two hosts of different colours, a blue tail) - C + 1 numbers;
* (appended 2026-12-07) the light the host does not explain, *tangentially*: lensed arcs, rings
  and tidal tails lie along circles about the host, a companion is compact. The host model is the
  median of each one-pixel elliptical annulus (the ellipse of the light above 25% of the peak),
  made non-increasing outwards so that a full ring, which the median of its own annulus absorbs,
  stays in the residual. On the residual (smoothed by a 1-pixel Gaussian, above 3 noise): its
  share of the light, the fraction of 24 angles about the host it covers, the log of its length
  along the circle over its radial width, its mean radius (in stamp sizes), the largest piece's
  elongation signed by whether its long axis is tangential (+) or radial (-), and that piece's
  radial spread over its radius; on a polar grid about the host (24 angles x 10 rings out to
  0.4 of the stamp), each cell's residual over its noise (the sky's and 15% of the host model,
  whose mismatch grows with its light), summed over three neighbouring angles: the longest run of
  angles above 2 in one ring (a share of the circle), the log of that run's summed S/N, the log of
  the best ring's mean S/N (a full ring), the log of the largest cell's S/N, and the run's length
  times its ring's radius (in stamp sizes) - 11 numbers. On a sky clipped to exactly 0 (radio
  cutouts cleaned below ~3 sigma) their noise is a third of the faintest pixel kept.

That is 71 numbers for one band and 72 + 2C for C bands. About 5-6 ms a 40-pixel stamp on one
core (2-2.7 ms without the issue #22 numbers, 3.5-4.3 ms without the residual-arc ones),
deterministic; stamps with no light get zeros.
statmorph measures the same quantities with more care but wants a PSF and ~0.1 s a stamp.
"""

from __future__ import annotations

import numpy as np

ISOPHOTES = (0.5, 0.25, 0.1, 0.03)
HU_FLOOR = 1e-8
_PER_ISOPHOTE = ("n_components", "separation", "largest_share", "log_area", "elongation", "solidity",
                 "orient_cos", "orient_sin", "light_share")
_GLOBAL = ("concentration", "asymmetry", "smoothness", "gini", "m20") + tuple(f"hu{i}" for i in range(1, 8)) + (
    "r20", "r50", "r80", "peak_offset", "edge_light")
#: issue #22's rotation-residual and multimode numbers, after the first 53 (+ C band shares)
_RESIDUAL = ("shape_asymmetry10", "shape_asymmetry3", "outer_asymmetry", "outer_residual", "multimode",
             "intensity", "deviation")
MULTIMODE_LEVELS = 16        # thresholds of the multimode statistic (quantiles of the segment's light)
#: 4-connectivity, built once (``ndimage.label`` builds it on every call otherwise: ~0.3 ms a stamp)
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
CENTRE_STEPS = 40            # at most this many half-pixel moves of the asymmetry-centre descent
#: the residual-arc numbers (appended after every earlier column, so those keep their meaning)
ARC_NAMES = ("resid_share", "resid_coverage", "resid_log_tangential", "resid_radius", "piece_tangential",
         "piece_radial_spread", "arc_span", "arc_log_snr", "ring_log_snr", "resid_log_peak_snr", "arc_span_radius")
ARC_ANGLES = 24              # angular bins about the host
ARC_RINGS = 10               # radial bins of the polar grid, from 2 px to 0.4 of the stamp
ARC_MODEL_ERROR = 0.15       # the host model's relative error, in the polar grid's noise
#: unrelated sources: the detection map is the light smoothed by a Gaussian of this sigma (px) ...
DETECT_SMOOTH = 1.0
#: ... above this many border noise (on a sky clipped to 0, above 0); its pieces other than the
#: one nearest the centre are masked before every number is measured
DETECT_LEVEL = 1.0
#: on a sky clipped to 0 (its border's MAD is 0: radio cutouts cleaned below ~3 sigma), where one
#: source's components are often detached (lobes, hot spots, knots), a detached piece holding at
#: least this share of the detected light is kept as part of the target
CLIPPED_KEEP_SHARE = 0.25
#: a detached piece spread over at least this share of the circle about the centre (of
#: ARC_ANGLES angles) surrounds the target - an Einstein ring, a wide lensed arc, a shell - and is kept
SURROUND_SHARE = 0.25


def feature_names(n_bands: int = 1) -> list[str]:
    """The names of the columns :func:`morphology_features` returns for stamps of ``n_bands``:
    71 for one band, 72 + 2C for C bands (the first 53 + C as before issue #22, then issue #22's
    7 + (C + 1 for several bands), then the 11 residual-arc numbers)."""
    names = [f"iso{int(f * 100)}_{k}" for f in ISOPHOTES for k in _PER_ISOPHOTE] + list(_GLOBAL)
    if n_bands > 1:
        names += [f"band{b}_log_share" for b in range(n_bands)]
    names += list(_RESIDUAL)
    if n_bands > 1:
        names += [f"band{b}_asymmetry" for b in range(n_bands)] + ["colour_dispersion"]
    return names + list(ARC_NAMES)


def _moments(mask: np.ndarray, yy: np.ndarray, xx: np.ndarray):
    """Centroid (cy, cx) and the second central moments (myy, mxx, mxy) of a boolean mask (each
    pixel counts once) or of a map of non-negative weights (light)."""
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


def _sectors(phi: np.ndarray) -> np.ndarray:
    """The index (0 .. ARC_ANGLES - 1) of the angular bin of each angle ``phi`` (radians, -pi..pi)."""
    return ((phi + np.pi) / (2 * np.pi) * ARC_ANGLES).astype(np.int64) % ARC_ANGLES


def _border_medians(x: np.ndarray) -> np.ndarray:
    """(C,) each band's median over the stamp's border pixels: its sky level."""
    return np.median(np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1), axis=1)


def _sky(x: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """The band sum of (C, S, S) ``x`` less its border's median, the border's robust noise (its
    standard deviation where the MAD is 0) and whether the MAD is 0 (a sky clipped to 0)."""
    img = x.sum(axis=0)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    img = img - np.median(border)
    noise = 1.4826 * float(np.median(np.abs(border - np.median(border))))
    clipped = not noise > 0
    if clipped:
        noise = float(np.std(border))
    return img, noise, clipped


def target_mask(img: np.ndarray, noise: float, keep_share: float | None = None) -> np.ndarray | None:
    """Where the target is, and not an unrelated source: False on the pixels of every piece of the
    detection map (``img`` smoothed by :data:`DETECT_SMOOTH` px, above :data:`DETECT_LEVEL` x
    ``noise``, 4-connected) except the piece nearest the stamp's centre and, with ``keep_share``,
    the pieces holding at least that share of the detected light, and the pieces that surround the
    centre (spread over :data:`SURROUND_SHARE` of the circle about it or more: a ring, a wide arc);
    True elsewhere (the kept pieces and the undetected sky). None when there is nothing to mask (one
    piece or none).

    A neighbour that touches the target's piece is not separated (no deblending), and a faint part
    of the target detached from its centre (a knot beyond a gap, a short arc off a faint host) is
    masked with the neighbours: measured over the benchmark domains, clean and crowded, in
    docs/active-learning.md ("Unrelated sources in the stamp").
    """
    from scipy import ndimage

    peak = float(img.max())
    if not peak > 0:
        return None
    det = ndimage.gaussian_filter(img, DETECT_SMOOTH) > max(DETECT_LEVEL * noise, 1e-9 * peak)
    lab, n = ndimage.label(det, _CROSS)
    if n <= 1:
        return None
    h, w = img.shape
    ys, xs = np.nonzero(lab)
    j = int(np.argmin((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2))
    keep = np.zeros(n + 1, bool)
    keep[0] = keep[lab[ys[j], xs[j]]] = True
    sector = _sectors(np.arctan2(ys - (h - 1) / 2, xs - (w - 1) / 2))
    hit = np.zeros((n + 1) * ARC_ANGLES, bool)
    hit[lab[ys, xs] * ARC_ANGLES + sector] = True
    keep |= hit.reshape(n + 1, ARC_ANGLES).mean(axis=1) >= SURROUND_SHARE
    if keep_share is not None:
        flux = ndimage.sum_labels(np.clip(img, 0, None), lab, index=np.arange(n + 1))
        keep[1:] |= flux[1:] >= keep_share * flux[1:].sum()
    return keep[lab]


def stamp_features(stamp: np.ndarray) -> np.ndarray:
    """The :func:`feature_names` numbers of one (C, S, S) or (S, S) stamp, float64, after the
    unrelated sources are masked (:func:`target_mask`: their pixels set to each band's border
    median, i.e. to the sky; on a clipped sky, detached pieces of a quarter of the light or more
    are kept, :data:`CLIPPED_KEEP_SHARE`)."""
    x = np.asarray(stamp, np.float64)
    if x.ndim == 2:
        x = x[None]
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    n_bands, h, w = x.shape
    img, noise, clipped = _sky(x)
    keep = target_mask(img, noise, CLIPPED_KEEP_SHARE if clipped else None)
    if keep is not None:
        x = np.where(keep[None], x, _border_medians(x)[:, None, None])
        img = _sky(x)[0]            # the noise is the image's, whatever is masked
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
    band = _band_light(x) if n_bands > 1 else None
    if band is not None:
        out[col:col + n_bands] = _band_shares(band, seg)
        col += n_bands
    detect = masks[0.03] if masks[0.03].any() else light > 0
    out[col:col + len(_RESIDUAL)], centre2 = _residual_features(light, masks[0.1], detect, noise)
    col += len(_RESIDUAL)
    if band is not None:
        out[col:col + n_bands] = [_asymmetry(np.where(detect, b, 0.0), *centre2) for b in band]
        out[col + n_bands] = _colour_dispersion(band, seg)
    out[-len(ARC_NAMES):] = _arc_features(img, light, noise)
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
        lab, n = ndimage.label(mask, _CROSS)
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


def _band_light(x: np.ndarray) -> np.ndarray:
    """(C, S, S) each band less its border's median, clipped at 0."""
    return np.clip(x - _border_medians(x)[:, None, None], 0, None)


def _band_shares(band: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """(C,) log10 of each band's share of the (sky-subtracted, clipped) light inside ``seg``."""
    share = band[:, seg].sum(axis=1)
    share = share / max(share.sum(), 1e-12)
    return np.log10(share + 1e-3)


def _rot180(a: np.ndarray, c2y: int, c2x: int) -> np.ndarray:
    """``a`` turned by 180 degrees about the point (c2y / 2, c2x / 2) (half-pixel steps, so no
    interpolation); what comes from outside the stamp is 0."""
    h, w = a.shape
    dy, dx = c2y - (h - 1), c2x - (w - 1)
    out = np.zeros_like(a)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    f = a[::-1, ::-1]
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        f[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def _asymmetry(a: np.ndarray, c2y: int, c2x: int) -> float:
    """Rotational asymmetry sum|a - a_180| / (2 sum|a|) about (c2y / 2, c2x / 2); 0 for no light."""
    total = float(np.abs(a).sum())
    return float(np.abs(a - _rot180(a, c2y, c2x)).sum() / (2 * total)) if total > 0 else 0.0


def _asymmetry_centre(light: np.ndarray) -> tuple[int, int]:
    """Twice the coordinates of the half-pixel point about which ``light`` (S, S) is most nearly
    symmetric: a descent over the eight half-pixel neighbours from the light's centroid."""
    h, w = light.shape
    total = light.sum()
    yy, xx = np.indices((h, w), dtype=np.float64)
    c = (int(round(2 * (light * yy).sum() / total)), int(round(2 * (light * xx).sum() / total)))
    seen: dict[tuple[int, int], float] = {}

    def cost(p):
        if p not in seen:
            seen[p] = float(np.abs(light - _rot180(light, *p)).sum())
        return seen[p]

    for _ in range(CENTRE_STEPS):
        best = min(((c[0] + a, c[1] + b) for a in (-1, 0, 1) for b in (-1, 0, 1)), key=lambda p: (cost(p), p))
        if best == c or cost(best) >= cost(c):
            break
        c = best
    return c


def _residual_features(light: np.ndarray, seg10: np.ndarray, detect: np.ndarray, noise: float
                       ) -> tuple[np.ndarray, tuple[int, int]]:
    """Issue #22's numbers (:data:`_RESIDUAL` order) and the asymmetry centre (doubled).

    Args:
        light: (S, S) the band sum less the border median, clipped at 0 (maximum > 0).
        seg10, detect: (S, S) bool, the 10% and the 3% (detection) isophotes.
        noise: the border's robust standard deviation.
    """
    from scipy import ndimage

    h, w = light.shape
    lit = np.where(detect, light, 0.0)
    total = lit.sum()
    out = np.zeros(len(_RESIDUAL))
    if not total > 0:
        return out, (h - 1, w - 1)
    c2 = _asymmetry_centre(lit)
    shape10 = _asymmetry(seg10.astype(np.float64), *c2)
    shape3 = _asymmetry(detect.astype(np.float64), *c2)
    # outside r50 about the asymmetry centre: the region rotation maps onto itself
    yy, xx = np.indices((h, w), dtype=np.float64)
    r = np.hypot(yy - c2[0] / 2, xx - c2[1] / 2)
    r50 = _radii(lit, r, (0.5,))[0]
    outer = r > r50
    rot = _rot180(lit, *c2)
    outer_light = lit[outer].sum()
    outer_asym = float(np.abs(lit - rot)[outer].sum() / (2 * outer_light)) if outer_light > 0 else 0.0
    # the largest coherent piece of positive residual above the noise (difference of two pixels:
    # sqrt(2) noise) and above the 3% isophote's level
    resid = np.where(outer, lit - rot, 0.0)
    lab, n = ndimage.label(resid > max(2 * np.sqrt(2) * noise, 0.03 * float(light.max())), _CROSS)
    piece = float(ndimage.sum_labels(resid, lab, np.arange(1, n + 1)).max()) / total if n else 0.0
    out[:4] = (shape10, shape3, outer_asym, piece)
    out[4:] = _freeman(lit, detect)
    return out, c2


def _freeman(lit: np.ndarray, detect: np.ndarray) -> tuple[float, float, float]:
    """Freeman et al. (2013) multimode M, intensity I and deviation D of the light ``lit`` (S, S)
    in the segment ``detect``, on the light smoothed by a 1-pixel Gaussian (single noisy pixels
    would otherwise count as pieces and regions)."""
    from scipy import ndimage
    from skimage.segmentation import watershed

    sm = np.where(detect, ndimage.gaussian_filter(lit, 1.0), 0.0)
    values = sm[detect]
    if len(values) < 4:
        return 0.0, 0.0, 0.0
    best, multimode = 0.0, 0.0
    for t in np.quantile(values, np.linspace(0.0, 0.98, MULTIMODE_LEVELS)):
        lab, n = ndimage.label(sm > t, _CROSS)
        if n < 2:
            continue
        a = np.sort(np.bincount(lab.ravel())[1:])[::-1]
        if a[1] * a[1] / a[0] > best:
            best, multimode = a[1] * a[1] / a[0], a[1] / a[0]
    # local maxima 2 pixels apart (skimage's peak_local_max(min_distance=2) less its ~0.5 ms of
    # overhead a stamp), in raster order so that the labels are deterministic
    peaks = np.argwhere((sm == ndimage.maximum_filter(sm, size=5, mode="constant")) & detect & (sm > 0))
    if len(peaks) == 0:
        return float(multimode), 0.0, 0.0
    markers = np.zeros(sm.shape, np.int32)
    markers[peaks[:, 0], peaks[:, 1]] = np.arange(1, len(peaks) + 1)
    regions = watershed(-sm, markers, mask=detect)
    flux = ndimage.sum_labels(lit, regions, np.arange(1, len(peaks) + 1))
    order = np.argsort(-flux, kind="stable")
    intensity = float(flux[order[1]] / flux[order[0]]) if len(peaks) > 1 and flux[order[0]] > 0 else 0.0
    yy, xx = np.indices(lit.shape, dtype=np.float64)
    total = lit.sum()
    cy, cx = (lit * yy).sum() / total, (lit * xx).sum() / total
    py, px = peaks[order[0]]
    deviation = float(np.hypot(py - cy, px - cx) / np.sqrt(detect.sum() / np.pi))
    return float(multimode), intensity, deviation


def _host_model(img: np.ndarray, light: np.ndarray, noise: float, yy: np.ndarray, xx: np.ndarray):
    """The smooth host the residual-arc numbers subtract: its centre (cy, cx) and the model, the
    median of each one-pixel elliptical annulus (the ellipse of the light above 25% of the peak,
    area-preserving) made non-increasing outwards. ``yy``, ``xx``: the stamp's pixel indices."""
    from scipy import ndimage

    peak = float(light.max())
    core = img >= max(0.25 * peak, min(2 * noise, peak))
    lab, n = ndimage.label(core, _CROSS)
    if n > 1:
        core = lab == lab[np.unravel_index(int(np.argmax(light)), light.shape)]
    cy, cx, myy, mxx, mxy = _moments(np.where(core, light, 0.0), yy, xx)
    # rounded, so that round-off (a brighter copy of the stamp) cannot move a pixel across a bin edge
    cy, cx = round(float(cy), 6), round(float(cx), 6)
    dy, dx = yy - cy, xx - cx
    cov = np.array([[myy, mxy], [mxy, mxx]]) + 0.25 * np.eye(2)
    inv = np.linalg.inv(cov / np.sqrt(np.linalg.det(cov)))
    re = np.sqrt(np.maximum(inv[0, 0] * dy * dy + 2 * inv[0, 1] * dy * dx + inv[1, 1] * dx * dx, 0.0))
    rbin = np.floor(re).astype(np.int64)
    order = np.argsort(rbin.ravel(), kind="stable")
    starts = np.searchsorted(rbin.ravel()[order], np.arange(rbin.max() + 2))
    flat = img.ravel()[order]
    prof = np.array([np.median(flat[a:b]) if b > a else 0.0 for a, b in zip(starts[:-1], starts[1:])])
    return cy, cx, np.minimum.accumulate(prof)[rbin]


def _longest_run(on: np.ndarray, snr: np.ndarray) -> tuple[int, float]:
    """The longest circular run of True in ``on`` (A,) and the sum of ``snr`` over it."""
    if on.all():
        return len(on), float(snr.sum())
    best, best_sum, cur, cur_sum = 0, 0.0, 0, 0.0
    for j in np.roll(np.arange(len(on)), -int(np.argmin(on))):     # start just after a False
        cur, cur_sum = (cur + 1, cur_sum + float(snr[j])) if on[j] else (0, 0.0)
        if cur > best:
            best, best_sum = cur, cur_sum
    return best, best_sum


def _arc_features(img: np.ndarray, light: np.ndarray, noise: float) -> np.ndarray:
    """The 11 residual-arc numbers (:data:`ARC_NAMES` order) of the band sum ``img`` (S, S) less the
    border median, its clipped ``light`` (maximum > 0) and the border's robust ``noise``."""
    from scipy import ndimage

    h, w = img.shape
    size = float(max(h, w))
    if not noise > 0:
        # a sky clipped to exactly 0 (radio cutouts cleaned below ~3 sigma): the faintest pixel kept
        # is about the clip level; a stamp with no sky noise at all gets a floor that scales with it
        kept = img[img > 0]
        noise = max(float(kept.min()) / 3 if kept.size else 0.0, 1e-6 * float(light.max()))
    out = np.zeros(len(ARC_NAMES))
    yy, xx = np.indices(img.shape, dtype=np.float64)
    cy, cx, model = _host_model(img, light, noise, yy, xx)
    resid = img - model
    r, phi = np.hypot(yy - cy, xx - cx), np.arctan2(yy - cy, xx - cx)
    angle = _sectors(phi)
    # polar grid: each cell's residual over its noise, summed over three neighbouring angles
    width = max((0.4 * size - 2.0) / ARC_RINGS, 0.5)
    ring = np.floor((r - 2.0) / width).astype(np.int64)
    ok = (ring >= 0) & (ring < ARC_RINGS)
    cell = ring[ok] * ARC_ANGLES + angle[ok]
    grid = (ARC_RINGS, ARC_ANGLES)
    total_resid = np.bincount(cell, resid[ok], np.prod(grid)).reshape(grid)
    var = np.bincount(cell, noise ** 2 + (ARC_MODEL_ERROR * np.clip(model[ok], 0, None)) ** 2,
                      np.prod(grid)).reshape(grid)
    snr = total_resid / np.sqrt(np.maximum(var, np.finfo(np.float64).tiny))
    snr = (snr + np.roll(snr, 1, axis=1) + np.roll(snr, -1, axis=1)) / np.sqrt(3.0)
    runs = [_longest_run(snr[k] > 2.0, snr[k]) for k in range(ARC_RINGS)]
    k_best = max(range(ARC_RINGS), key=lambda k: runs[k])
    span, span_snr = runs[k_best][0] / ARC_ANGLES, runs[k_best][1]
    out[6:11] = (span, np.log1p(max(span_snr, 0.0)), np.log1p(max(float(snr.mean(axis=1).max()), 0.0)),
                 np.log1p(max(float(snr.max()), 0.0)), span * (2.0 + (k_best + 0.5) * width) / size)
    # the residual's pieces: smoothed by a 1-pixel Gaussian (noise / (2 sqrt(pi))), above 3 noise
    sm = ndimage.gaussian_filter(resid, 1.0)
    lab, n = ndimage.label((sm > 3 * noise / (2 * np.sqrt(np.pi))) & (r > 1.5), _CROSS)
    if n == 0:
        return out
    flux = ndimage.sum_labels(np.clip(sm, 0, None), lab, np.arange(1, n + 1))
    keep = np.flatnonzero(flux >= 0.1 * flux.max()) + 1
    positive = np.clip(resid, 0, None)
    rw = np.where(np.isin(lab, keep), positive, 0.0)
    if not rw.sum() > 0:
        return out
    r_mean = (rw * r).sum() / rw.sum()
    r_std = np.sqrt((rw * (r - r_mean) ** 2).sum() / rw.sum())
    per_angle = np.bincount(angle.ravel(), rw.ravel(), ARC_ANGLES)
    coverage = float((per_angle > 0.25 * per_angle.max()).sum()) / ARC_ANGLES
    length = coverage * 2 * np.pi * r_mean / (2.355 * r_std + 1.0)
    out[:4] = (rw.sum() / light.sum(), coverage, np.log10(max(length, 1e-3)), r_mean / size)
    out[4:6] = _piece_shape(np.where(lab == keep[np.argmax(flux[keep - 1])], positive, 0.0), r, cy, cx, yy, xx)
    return out


def _piece_shape(pw: np.ndarray, r: np.ndarray, cy: float, cx: float, yy: np.ndarray, xx: np.ndarray
                 ) -> tuple[float, float]:
    """A residual piece's (S, S) light ``pw``: its elongation signed + when its long axis is
    tangential about the host (cy, cx), - when radial; and its radial spread over its radius
    (``r``: each pixel's distance from the host; ``yy``, ``xx``: the pixel indices)."""
    m = pw.sum()
    if not m > 0:
        return 0.0, 0.0
    py, px, myy, mxx, mxy = _moments(pw, yy, xx)
    ev, evec = np.linalg.eigh(np.array([[myy, mxy], [mxy, mxx]]))
    elong = 1.0 - np.sqrt(max(ev[0], 1e-9) / max(ev[1], 1e-9))
    radial = np.array([py - cy, px - cx])
    norm = float(np.linalg.norm(radial))
    tangential = 1.0 - (float(evec[:, 1] @ radial) / norm) ** 2 if norm > 0 else 0.0
    pr = (pw * r).sum() / m
    return float(elong * (2 * tangential - 1)), float(np.sqrt((pw * (r - pr) ** 2).sum() / m) / max(pr, 1.0))


def _colour_dispersion(band: np.ndarray, seg: np.ndarray) -> float:
    """Light-weighted RMS scatter of the pixels' band fractions (C-vectors summing to 1) about
    their light-weighted mean, over the pixels of ``seg``; 0 without light."""
    b = band[:, seg]
    wgt = b.sum(axis=0)
    keep = wgt > 0
    if not keep.any():
        return 0.0
    b, wgt = b[:, keep], wgt[keep]
    frac = b / wgt
    mean = (frac * wgt).sum(axis=1, keepdims=True) / wgt.sum()
    return float(np.sqrt((((frac - mean) ** 2).sum(axis=0) * wgt).sum() / wgt.sum()))


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
