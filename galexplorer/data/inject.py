"""A benchmark with known answers: real Hubble XDF stamps plus injected rare classes.

Every galaxy the XDF image yields (:mod:`galexplorer.data.xdf`, a lower detection threshold than
the demo's, so all of them and not only the demo's selection) is cut into a stamp; a few of them
are then turned into rare objects made only from real pixels:

* ``pair`` - a close pair / merger: a second real galaxy laid over the host at 0.3-1.0 of the
  host's size (its radius at 90% of the segment area), fainter by a flux ratio drawn in 1-4;
* ``tidal`` - a tidal tail: the host's own light, swirled and stretched, added beside it;
* ``ring`` - a ring made of the host's own radial light profile, moved out to 1-2 sizes;
* ``arc`` - a lensed-arc-like feature: another galaxy's light stretched tangentially along a
  circle around the host, like a gravitationally lensed background source.

Light is the stamp minus its border median. Injected light is added to the host's light and the
sum rescaled to the host's own total light (:func:`_keep_flux`), then clipped to the image's
[0, 1] range: an injected object is no brighter than the real galaxy it was made from, so it
cannot be found by brightness alone.
:func:`xdf_benchmark_set` is deterministic for a seed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

CLASSES = ("normal", "pair", "tidal", "ring", "arc")


@dataclass
class BenchmarkSet:
    """Stamps with injected rare classes.

    Attributes:
        stamps: (N, 3, S, S) float32 in [0, 1], bands blue, green, red.
        ids: N strings, ``XDF0000``... for real stamps and ``INJ-<class>-0000``... for injected.
        labels: (N,) int64 index into ``class_names`` (0 = a real, unmodified stamp).
        class_names: ``CLASSES``.
        host: (N,) int64 the real stamp each row was made from (its own index for normal rows).
        morphology: dict of (N,) float64 arrays (see :func:`galexplorer.explore.morphology.measure_morphology`).
    """

    stamps: np.ndarray
    ids: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    host: np.ndarray
    morphology: dict[str, np.ndarray]

    @property
    def rare(self) -> np.ndarray:
        """(N,) bool: every injected object."""
        return self.labels > 0


def _light(stamp: np.ndarray) -> np.ndarray:
    """(C, S, S) the stamp minus each band's border median, negative values set to 0."""
    border = np.concatenate([stamp[:, 0], stamp[:, -1], stamp[:, :, 0], stamp[:, :, -1]], axis=1)
    return np.clip(stamp - np.median(border, axis=1)[:, None, None], 0, None)


def _central_light(stamp: np.ndarray, nsigma: float = 2.0) -> np.ndarray:
    """(C, S, S) :func:`_light` kept only on the (dilated) segment that holds the centre.

    Without this, a companion or a warped copy would carry the neighbours in its stamp too.
    """
    from scipy.ndimage import binary_dilation
    from skimage import measure

    light = _light(stamp)
    img = light.sum(axis=0)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    seg = measure.label(img > np.median(border) + nsigma * max(float(np.std(border)), 1e-6))
    s = img.shape[-1]
    centre = seg[s // 2 - 1:s // 2 + 2, s // 2 - 1:s // 2 + 2]
    lab = np.bincount(centre[centre > 0]).argmax() if (centre > 0).any() else 0
    if lab == 0:
        return light
    return light * binary_dilation(seg == lab, iterations=2)


def _size_px(light: np.ndarray) -> float:
    """Radius (px) enclosing 90% of the light of the summed bands around the centre, at least 2."""
    img = light.sum(axis=0)
    s = img.shape[-1]
    yy, xx = np.mgrid[:s, :s] - (s - 1) / 2
    r = np.hypot(yy, xx).ravel()
    order = np.argsort(r)
    cum = np.cumsum(img.ravel()[order])
    if cum[-1] <= 0:
        return 2.0
    return float(max(2.0, r[order][np.searchsorted(cum, 0.9 * cum[-1])]))


def _warp(light: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """Sample each band of ``light`` at (src_y, src_x) (bilinear, 0 outside)."""
    from scipy.ndimage import map_coordinates

    return np.stack([map_coordinates(b, [src_y, src_x], order=1, mode="constant", cval=0.0) for b in light])


def _keep_flux(host: np.ndarray, added: np.ndarray) -> np.ndarray:
    """``host`` with ``added`` light, the light above the sky rescaled to the host's total."""
    sky = host - _light(host)
    light = _light(host)
    total = light.sum()
    both = light + added
    return np.clip(sky + both * (total / max(float(both.sum()), 1e-12)), 0, 1).astype(np.float32)


def inject_pair(host: np.ndarray, companion: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The host with a second real galaxy at 0.3-1.0 host sizes, fainter by a ratio of 1-4."""
    s = host.shape[-1]
    size = _size_px(_light(host))
    dist = rng.uniform(0.3, 1.0) * size + 2.0   # at least 2 px so the nuclei stay distinct
    angle = rng.uniform(0, 2 * np.pi)
    ratio = rng.uniform(1.0, 4.0)
    yy, xx = np.mgrid[:s, :s].astype(np.float64)
    comp = _warp(_central_light(companion), yy - dist * np.sin(angle), xx - dist * np.cos(angle)) / ratio
    return _keep_flux(host, comp)


def _centred_grid(s: int) -> tuple[float, np.ndarray, np.ndarray]:
    """The centre of an (s, s) stamp and its (y, x) pixel offsets from it, float64."""
    c = (s - 1) / 2
    yy, xx = np.mgrid[:s, :s].astype(np.float64) - c
    return c, yy, xx


def _rotated(xx: np.ndarray, yy: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets in a frame turned by ``angle``: u along it, v across it."""
    return xx * np.cos(angle) + yy * np.sin(angle), -xx * np.sin(angle) + yy * np.cos(angle)


def inject_tidal(host: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The host plus its own light swirled into a curved tail on one side."""
    s = host.shape[-1]
    light = _central_light(host)
    size = _size_px(light)
    c, yy, xx = _centred_grid(s)
    angle = rng.uniform(0, 2 * np.pi)
    # rotate into the tail's frame: u along the tail, v across it
    u, v = _rotated(xx, yy, angle)
    curl = rng.uniform(0.04, 0.1) * rng.choice([-1, 1])
    stretch = rng.uniform(2.5, 4.0)
    # the tail starts at ~1 size from the centre and bends away as it goes out
    uu = (u - size) / stretch
    vv = (v - curl * (u - size) ** 2) * 1.3
    tail = _warp(light, c + vv, c + uu) * (u > 0.5 * size)
    tail *= rng.uniform(0.5, 1.0) * light.max() / max(tail.max(), 1e-6)
    return _keep_flux(host, tail)


def inject_ring(host: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The host plus a ring at 1-2 sizes whose radial profile is the host's own light."""
    s = host.shape[-1]
    light = _central_light(host)
    size = _size_px(light)
    c, yy, xx = _centred_grid(s)
    q = rng.uniform(0.6, 1.0)             # projected axis ratio of the ring
    pa = rng.uniform(0, np.pi)
    u, v = _rotated(xx, yy, pa)
    v = v / q
    r = np.hypot(u, v)
    radius = min(rng.uniform(1.0, 2.0) * size, 0.45 * s)
    theta = np.arctan2(yy, xx)
    # a pixel at radius r takes the host's light at radius |r - radius| along the same direction
    src_r = np.abs(r - radius) * 1.5
    ring = _warp(light, c + src_r * np.sin(theta), c + src_r * np.cos(theta))
    ring *= rng.uniform(0.3, 0.6) * light.max() / max(ring.max(), 1e-6)
    return _keep_flux(host, ring)


def inject_arc(host: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The host plus another galaxy's light stretched along a circle around it (a lensed arc)."""
    s = host.shape[-1]
    light = _central_light(source)
    c, yy, xx = _centred_grid(s)
    r = np.hypot(yy, xx)
    theta = np.arctan2(yy, xx)
    radius = rng.uniform(0.25, 0.4) * s
    theta0 = rng.uniform(-np.pi, np.pi)
    dtheta = np.angle(np.exp(1j * (theta - theta0)))      # wrapped to [-pi, pi]
    stretch = rng.uniform(3.0, 6.0)
    # tangential coordinate compressed by `stretch`, radial one kept: a long thin arc
    src_x = c + dtheta * radius / stretch
    src_y = c + (r - radius) * 1.5
    arc = _warp(light, src_y, src_x)
    arc *= rng.uniform(0.4, 0.8) * _central_light(host).max() / max(arc.max(), 1e-6)
    return _keep_flux(host, arc)


def xdf_stamps(size: int = 40, nsigma: float = 3.0, min_area: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Every XDF source above ``nsigma`` with at least ``min_area`` px, brightest first.

    Returns:
        ``(stamps (K, 3, size, size) float32, flux (K,))``.
    """
    from .xdf import cut_stamps, detect_sources, xdf_image

    img = xdf_image()
    src = detect_sources(img, nsigma=nsigma, min_area=min_area, edge=8)
    order = np.argsort(-src.flux, kind="stable")
    return cut_stamps(img, src.y[order], src.x[order], size), src.flux[order]


def xdf_benchmark_set(seed: int = 0, size: int = 40, per_class: int = 12, nsigma: float = 3.0,
                      min_area: int = 15, limit: int | None = None, morphology: bool = True) -> BenchmarkSet:
    """All XDF stamps plus ``per_class`` injected objects of each rare class.

    Args:
        seed: draws hosts, companions and every injection parameter.
        size: stamp side, pixels.
        per_class: injected objects per rare class (4 classes).
        nsigma, min_area: the detection (3 sigma, 15 px: ~770 sources; the demo's 5 sigma, 25 px
            gives 374).
        limit: keep only the ``limit`` brightest real stamps (tests).
        morphology: measure :func:`~galexplorer.explore.morphology.measure_morphology` of every row.

    Returns:
        A :class:`BenchmarkSet`; the real stamps come first, then the injected ones by class.
    """
    real, _ = xdf_stamps(size, nsigma, min_area)
    if limit is not None:
        real = real[:limit]
    rng = np.random.default_rng(seed)
    k = len(real)
    # hosts and companions from the brighter half: faint specks would hide what was injected
    bright = np.arange(max(2, k // 2))
    stamps, labels, hosts = [real], [np.zeros(k, np.int64)], [np.arange(k)]
    ids = [f"XDF{i:04d}" for i in range(k)]
    for cls in range(1, len(CLASSES)):
        name = CLASSES[cls]
        made = np.empty((per_class, 3, size, size), np.float32)
        h = rng.choice(bright, per_class, replace=per_class > len(bright))
        for j, hi in enumerate(h):
            other = int(rng.choice(bright[bright != hi]))
            if name == "pair":
                made[j] = inject_pair(real[hi], real[other], rng)
            elif name == "tidal":
                made[j] = inject_tidal(real[hi], rng)
            elif name == "ring":
                made[j] = inject_ring(real[hi], rng)
            else:
                made[j] = inject_arc(real[hi], real[other], rng)
        stamps.append(made)
        labels.append(np.full(per_class, cls, np.int64))
        hosts.append(h.astype(np.int64))
        ids += [f"INJ-{name}-{j:04d}" for j in range(per_class)]
    all_stamps = np.concatenate(stamps)
    morph: dict[str, np.ndarray] = {}
    if morphology:
        from .morphology import measure_morphology

        morph = measure_morphology(all_stamps)
    log.info("benchmark set: %d real XDF stamps + %d injected (%s)", k, per_class * (len(CLASSES) - 1),
             ", ".join(CLASSES[1:]))
    return BenchmarkSet(all_stamps, ids, np.concatenate(labels), CLASSES, np.concatenate(hosts), morph)
