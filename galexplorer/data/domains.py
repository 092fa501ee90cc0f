"""Benchmark domains unlike the XDF: seeded synthetic surveys with a rare class defined by shape.

* ``radio`` - one band, radio-continuum-like: most of the sky is exactly zero (pixels below
  3 sigma of the noise are set to 0, as in sigma-clipped radio cutouts such as MiraBest), so the
  median absolute deviation away from sources is 0 and the normaliser must fall back. Classes:
  ``compact`` (a point source), ``double`` (FR-II-like: two lobes on a straight line through a
  faint core), ``plume`` (diffuse, irregular emission) and the rare ``bent`` (head-tail and
  wide-angle-tail jets: chains of knots along a curved path). Every source is a sum of Gaussian
  components convolved analytically with a Gaussian beam; extended sources draw their size up to
  beyond the stamp edge, their angle and peak flux (log-uniform) from the same ranges in every
  class, so neither brightness nor size identifies the rare class.
* ``optical`` - three bands (g, r, i) with sky noise: Sérsic hosts, ``elliptical`` (n 2.5-4,
  red) and ``disc`` (n 0.7-1.5, bluer), and the rare ``merger`` (two overlapping hosts plus a
  curved tidal tail), scaled to a total flux drawn from the same distribution as the hosts'.
* ``lens`` - one band with sky noise, strong-lens-like: ``elliptical`` and ``disc`` Sérsic hosts,
  ``pair`` (an elliptical with a compact companion 4-12 px away) and the rare ``lens`` (an
  elliptical with lensed arcs on a circle of radius 4-10 px around its centre: one arc, two
  opposite arcs, or a full ring of uneven brightness). The companion and the arcs carry the same
  share of the light (20-50% of the host's) at the same distances, so extra light off the centre does not
  identify the rare class: its tangential, curved shape does. The arcs are faint against the
  host, the hardest contrast of the domains.

Each domain also comes **crowded** (``radio-crowded``, ``optical-crowded``, ``lens-crowded``): the
same objects, draw for draw, with unrelated field sources added to the sky around them, as every
real survey cutout has (a Poisson number per stamp, :data:`CROWDING` on average, anywhere at least
3 px from the centre, from a generator of their own so the target and its noise are those of the
clean domain): beam-sized point sources in radio (peak 5-60 sigma, added before the clipping),
small Sérsic galaxies of random colour in optical and lens (a tenth to twice the faintest
target's flux, before the PSF). They are drawn alike for every class, so they never identify the
rare one: they are what a representation must ignore.

The rare class is ~3% of the objects (``rare_fraction``). Each object also has an oracle score on
the 0-5 label scale (:mod:`galexplorer.label_scale`): the rare class scores the maximum, common
classes 0 or 1 (:data:`ORACLE`). :func:`make_domain` is deterministic for a seed;
:func:`write_domain_cutouts` writes a cutouts file as ``galexplorer ingest`` does, so the whole
pipeline (train, embed, open, simulate) runs on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..label_scale import MAX_SCORE, MIN_SCORE

RADIO_CLASSES = ("compact", "double", "plume", "bent")
OPTICAL_CLASSES = ("elliptical", "disc", "merger")
LENS_CLASSES = ("elliptical", "disc", "pair", "lens")
#: oracle score of each class (the rare one, last, scores MAX_SCORE)
ORACLE = {"compact": MIN_SCORE, "double": MIN_SCORE + 1, "plume": MIN_SCORE, "bent": MAX_SCORE,
          "elliptical": MIN_SCORE, "disc": MIN_SCORE + 1, "merger": MAX_SCORE,
          "pair": MIN_SCORE + 1, "lens": MAX_SCORE}
RARE_FRACTION = 0.03
#: mean number of unrelated field sources on a stamp of the crowded variants
CROWDING = 1.5


@dataclass
class DomainSet:
    """A synthetic survey.

    Attributes:
        name: the domain (``radio``, ``optical``).
        stamps: (N, C, S, S) float32.
        ids: N unique ids.
        labels: (N,) int64 index into ``class_names``; the last class is the rare one.
        class_names: the classes.
        oracle: (N,) int64 score on the 0-5 scale.
        bands: C band names.
    """

    name: str
    stamps: np.ndarray
    ids: list[str]
    labels: np.ndarray
    class_names: tuple[str, ...]
    oracle: np.ndarray
    bands: list[str]

    @property
    def rare(self) -> np.ndarray:
        """(N,) bool: the rare class."""
        return self.labels == len(self.class_names) - 1


def _draw_labels(n: int, n_classes: int, rare_fraction: float, rng: np.random.Generator) -> np.ndarray:
    n_rare = max(1, int(round(rare_fraction * n)))
    common = rng.integers(0, n_classes - 1, n - n_rare)
    return rng.permutation(np.concatenate([common, np.full(n_rare, n_classes - 1)])).astype(np.int64)


def _gauss(yy, xx, y, x, sy, sx, angle, amp) -> np.ndarray:
    """An elliptical Gaussian of peak ``amp`` (sy, sx: sigmas along and across ``angle``)."""
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - x) * c + (yy - y) * s
    v = -(xx - x) * s + (yy - y) * c
    return amp * np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def _blobs(size: int, comps: list[tuple], beam: float) -> np.ndarray:
    """Sum of Gaussian components (y, x, sigma_along, sigma_across, angle, flux) convolved with a
    round Gaussian beam of sigma ``beam`` (analytically: the variances add, the flux is kept)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((size, size))
    for y, x, sa, sc, ang, flux in comps:
        a, c = math.hypot(sa, beam), math.hypot(sc, beam)
        img += _gauss(yy, xx, y, x, c, a, ang, flux / (2 * math.pi * a * c))
    return img


def _chain(y0, x0, path, n_knots, width, flux, decay) -> list[tuple]:
    """Knots along ``path(t)`` for t in (0, 1], each elongated along the path, fading by ``decay``."""
    out = []
    t = np.linspace(0, 1, n_knots + 1)[1:]
    pts = [path(v) for v in np.concatenate([[0.0], t])]
    for i in range(1, len(pts)):
        (ya, xa), (yb, xb) = pts[i - 1], pts[i]
        step = math.hypot(yb - ya, xb - xa)
        out.append((y0 + yb, x0 + xb, max(step * 0.6, width), width, math.atan2(yb - ya, xb - xa),
                    flux * decay ** i))
    return out


def _radio_source(kind: str, size: int, rng: np.random.Generator) -> list[tuple]:
    c = (size - 1) / 2 + rng.uniform(-1.5, 1.5, 2)
    ang = rng.uniform(0, 2 * math.pi)
    extent = size * rng.uniform(0.2, 0.75)            # half-length: up to beyond the stamp edge
    width = rng.uniform(0.8, 2.5)
    core = (c[0], c[1], 0.5, 0.5, 0.0, rng.uniform(0.05, 0.3))
    if kind == "compact":
        return [(c[0], c[1], rng.uniform(0.1, 1.5), rng.uniform(0.1, 1.0), ang, 1.0)]
    if kind == "plume":
        k = int(rng.integers(3, 7))
        off = rng.normal(0, extent / 3, (k, 2))
        return [(c[0] + dy, c[1] + dx, rng.uniform(0.15, 0.4) * extent, rng.uniform(0.1, 0.3) * extent,
                 rng.uniform(0, math.pi), rng.uniform(0.5, 1.0)) for dy, dx in off]
    comps = [core]
    if kind == "double":
        for sign in (1, -1):
            d = extent * rng.uniform(0.7, 1.0)
            comps.append((c[0] + sign * d * math.sin(ang), c[1] + sign * d * math.cos(ang),
                          width * rng.uniform(1.5, 3), width * rng.uniform(1, 2), ang, rng.uniform(0.5, 1.0)))
            if rng.random() < 0.5:                    # a faint straight jet towards the lobe
                comps += _chain(c[0], c[1], lambda t, s=sign, d=d: (s * t * 0.8 * d * math.sin(ang),
                                                                      s * t * 0.8 * d * math.cos(ang)),
                                4, width * 0.7, 0.15, 0.9)
        return comps
    # bent: two jets curving to the same side (wide-angle / narrow-angle tail); head-tail when one
    bend = rng.uniform(0.5, 1.3) * rng.choice([-1, 1])
    jets = (1, -1) if rng.random() < 0.5 else (1,)
    for sign in jets:
        a0 = ang + (0 if sign == 1 else math.pi)
        turn = bend if sign == 1 else -bend       # both jets bend towards the same side

        def arc(t, a0=a0, turn=turn):
            # (dy, dx) along a circular arc of length ``extent`` leaving the core at a0, turning by ``turn``
            r, phi = extent / turn, a0 + turn * t
            return r * (math.cos(a0) - math.cos(phi)), r * (math.sin(phi) - math.sin(a0))

        comps += _chain(c[0], c[1], arc, int(rng.integers(5, 9)), width, rng.uniform(0.5, 1.0),
                        rng.uniform(0.8, 0.95))
    return comps


def _field_positions(size: int, crowding: float, frng: np.random.Generator) -> np.ndarray:
    """(k, 2) positions (y, x) of a Poisson(``crowding``) number of unrelated field sources,
    uniform over the stamp but at least 3 px from its centre (the target is the central source)."""
    k = int(frng.poisson(crowding)) if crowding > 0 else 0
    pos = np.empty((k, 2))
    c = (size - 1) / 2
    for j in range(k):
        while True:
            p = frng.uniform(0, size - 1, 2)
            if math.hypot(p[0] - c, p[1] - c) >= 3.0:
                break
        pos[j] = p
    return pos


def _radio_field(size: int, beam: float, crowding: float, frng: np.random.Generator) -> np.ndarray:
    """Unrelated beam-sized radio sources (peak 5-60 sigma, log-uniform), before the noise."""
    img = np.zeros((size, size))
    for y, x in _field_positions(size, crowding, frng):
        src = _blobs(size, [(y, x, frng.uniform(0.1, 1.0), frng.uniform(0.1, 0.8), frng.uniform(0, math.pi), 1.0)],
                     beam=beam)
        img += src * math.exp(frng.uniform(math.log(5), math.log(60))) / max(src.max(), 1e-12)
    return img


def _galaxy_field(size: int, bands: int, crowding: float, flux_min: float, frng: np.random.Generator) -> np.ndarray:
    """Unrelated small Sérsic galaxies of random colour, (bands, size, size), before the PSF: each
    a tenth to twice ``flux_min`` (the faintest target's flux) in total, log-uniform."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.zeros((bands, size, size))
    for y, x in _field_positions(size, crowding, frng):
        prof = _sersic(yy, xx, y, x, frng.uniform(0.7, 2.5), frng.uniform(1.0, 4.0), frng.uniform(0.4, 1.0),
                       frng.uniform(0, math.pi))
        colour = frng.uniform(0.5, 1.3, bands) if bands > 1 else np.ones(1)
        flux = flux_min * math.exp(frng.uniform(math.log(0.1), math.log(2.0)))
        img += (flux * colour / colour.mean())[:, None, None] * prof[None]
    return img


def _field_rng(seed: int) -> np.random.Generator:
    """The field sources' own generator: the targets and their noise stay those of the clean domain."""
    return np.random.default_rng([seed, 0x6669656C64])


def radio_set(n: int = 600, seed: int = 0, size: int = 48, rare_fraction: float = RARE_FRACTION,
              crowding: float = 0.0) -> DomainSet:
    """The ``radio`` domain (see the module docstring): (n, 1, size, size), noise sigma 1 before
    pixels below 3 sigma are set to 0; peak fluxes 8-300 sigma, log-uniform, in every class.
    ``crowding`` > 0: that many unrelated field sources a stamp on average (``radio-crowded``)."""
    rng, frng = np.random.default_rng(seed), _field_rng(seed)
    labels = _draw_labels(n, len(RADIO_CLASSES), rare_fraction, rng)
    stamps = np.empty((n, 1, size, size), np.float32)
    for i, lab in enumerate(labels):
        comps = _radio_source(RADIO_CLASSES[lab], size, rng)
        beam = rng.uniform(1.0, 1.8)                  # drawn after the source, as always
        img = _blobs(size, comps, beam=beam)
        img *= math.exp(rng.uniform(math.log(8), math.log(300))) / max(img.max(), 1e-12)
        if crowding > 0:
            img += _radio_field(size, beam, crowding, frng)
        img += rng.normal(0, 1, img.shape)
        stamps[i, 0] = np.where(img > 3.0, img, 0.0)
    return _finish("radio-crowded" if crowding > 0 else "radio", stamps, labels, RADIO_CLASSES, ["radio"])


def _sersic(yy, xx, y, x, re, n, q, angle) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    u = (xx - x) * c + (yy - y) * s
    v = (-(xx - x) * s + (yy - y) * c) / q
    r = np.hypot(u, v)
    img = np.exp(-(2 * n - 1 / 3) * ((r / re) ** (1 / n) - 1))
    return img / img.sum()


_COLOURS = {"elliptical": (0.45, 1.0, 1.35), "disc": (1.0, 1.0, 0.85)}


def _host(yy, xx, y, x, kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    n = rng.uniform(2.5, 4.0) if kind == "elliptical" else rng.uniform(0.7, 1.5)
    prof = _sersic(yy, xx, y, x, rng.uniform(1.5, size / 7), n, rng.uniform(0.3, 1.0), rng.uniform(0, math.pi))
    colour = np.array(_COLOURS[kind]) * rng.uniform(0.85, 1.15, 3)
    return colour[:, None, None] * prof[None]


def _optical_object(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2 + rng.uniform(-1, 1, 2)
    if kind != "merger":
        return _host(yy, xx, c[0], c[1], kind, size, rng)
    ang, sep = rng.uniform(0, 2 * math.pi), rng.uniform(3, size / 5)
    d = np.array([math.sin(ang), math.cos(ang)]) * sep / 2
    kinds = rng.choice(["elliptical", "disc"], 2)
    img = _host(yy, xx, *(c + d), kinds[0], size, rng) + _host(yy, xx, *(c - d), kinds[1], size, rng) / rng.uniform(1, 4)
    bend = rng.uniform(0.6, 1.5) * rng.choice([-1, 1])
    length = rng.uniform(0.25, 0.45) * size

    def arc(t):
        r, phi = length / bend, ang + bend * t
        return r * (math.cos(ang) - math.cos(phi)), r * (math.sin(phi) - math.sin(ang))

    tail = _blobs(size, _chain(*(c + d), arc, 8, rng.uniform(1.0, 2.0), 1.0, 0.9), beam=0.5)
    img += (rng.uniform(0.15, 0.35) * img.sum() / 3 / tail.sum()) * tail[None] * np.array([0.8, 1.0, 1.0])[:, None, None]
    return img


def optical_set(n: int = 600, seed: int = 0, size: int = 48, rare_fraction: float = RARE_FRACTION,
                crowding: float = 0.0) -> DomainSet:
    """The ``optical`` domain (see the module docstring): (n, 3, size, size) g, r, i with a Gaussian
    PSF (sigma 1 px) and sky noise sigma 1; total r flux 100-3000, log-uniform, in every class.
    ``crowding`` > 0: that many unrelated field galaxies a stamp on average (``optical-crowded``)."""
    from scipy.ndimage import gaussian_filter

    rng, frng = np.random.default_rng(seed), _field_rng(seed)
    labels = _draw_labels(n, len(OPTICAL_CLASSES), rare_fraction, rng)
    stamps = np.empty((n, 3, size, size), np.float32)
    for i, lab in enumerate(labels):
        img = _optical_object(OPTICAL_CLASSES[lab], size, rng)
        img *= math.exp(rng.uniform(math.log(100), math.log(3000))) / img[1].sum()
        if crowding > 0:
            img = img + _galaxy_field(size, 3, crowding, 100.0, frng)
        img = gaussian_filter(img, sigma=(0, 1.0, 1.0))
        stamps[i] = img + rng.normal(0, 1, img.shape)
    return _finish("optical-crowded" if crowding > 0 else "optical", stamps, labels, OPTICAL_CLASSES, ["g", "r", "i"])


def _lens_object(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``lens``-domain galaxy before scaling, PSF and noise: (size, size)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2 + rng.uniform(-1, 1, 2)
    if kind == "disc":
        return _sersic(yy, xx, c[0], c[1], rng.uniform(2.0, size / 6), rng.uniform(0.7, 1.5),
                       rng.uniform(0.25, 1.0), rng.uniform(0, math.pi))
    host = _sersic(yy, xx, c[0], c[1], rng.uniform(1.5, size / 8), rng.uniform(2.5, 4.0), rng.uniform(0.5, 1.0),
                   rng.uniform(0, math.pi))
    if kind == "elliptical":
        return host
    share = rng.uniform(0.2, 0.5)                    # of the host's light, companion or arcs alike
    radius = rng.uniform(4.0, 10.0)
    if kind == "pair":
        ang = rng.uniform(0, 2 * math.pi)
        d = np.array([math.sin(ang), math.cos(ang)]) * rng.uniform(4.0, 12.0)
        comp = _sersic(yy, xx, *(c + d), rng.uniform(0.7, 1.5), 1.0, rng.uniform(0.5, 1.0), rng.uniform(0, math.pi))
        return host + share * comp
    shape = rng.choice(["arc", "two arcs", "ring"])
    spans = {"arc": [rng.uniform(1.0, 2.5)], "two arcs": [rng.uniform(0.7, 1.6)] * 2, "ring": [2 * math.pi]}[shape]
    start = rng.uniform(0, 2 * math.pi)
    comps: list[tuple] = []
    for k, span in enumerate(spans):
        phi0 = start + k * math.pi - span / 2

        def along(t, phi0=phi0, span=span):
            phi = phi0 + span * t
            return radius * math.sin(phi), radius * math.cos(phi)

        knots = max(4, int(span * radius / 1.5))
        comps += [(y, x, sa, sc, a, f * rng.uniform(0.4, 1.0))
                  for y, x, sa, sc, a, f in _chain(c[0], c[1], along, knots, rng.uniform(0.5, 1.0), 1.0, 1.0)]
    arcs = _blobs(size, comps, beam=0.3)
    return host + share * arcs / arcs.sum()


def lens_set(n: int = 600, seed: int = 0, size: int = 48, rare_fraction: float = RARE_FRACTION,
             crowding: float = 0.0) -> DomainSet:
    """The ``lens`` domain (see the module docstring): (n, 1, size, size), one band with a Gaussian
    PSF (sigma 1.2 px) and sky noise sigma 1; total flux 300-5000, log-uniform, in every class.
    ``crowding`` > 0: that many unrelated field galaxies a stamp on average (``lens-crowded``)."""
    from scipy.ndimage import gaussian_filter

    rng, frng = np.random.default_rng(seed), _field_rng(seed)
    labels = _draw_labels(n, len(LENS_CLASSES), rare_fraction, rng)
    stamps = np.empty((n, 1, size, size), np.float32)
    for i, lab in enumerate(labels):
        img = _lens_object(LENS_CLASSES[lab], size, rng)
        img *= math.exp(rng.uniform(math.log(300), math.log(5000))) / img.sum()
        if crowding > 0:
            img = img + _galaxy_field(size, 1, crowding, 300.0, frng)[0]
        stamps[i, 0] = gaussian_filter(img, sigma=1.2) + rng.normal(0, 1, img.shape)
    return _finish("lens-crowded" if crowding > 0 else "lens", stamps, labels, LENS_CLASSES, ["i"])


def _finish(name: str, stamps: np.ndarray, labels: np.ndarray, classes: tuple[str, ...],
            bands: list[str]) -> DomainSet:
    ids = [f"{name.upper()}{i:05d}" for i in range(len(labels))]
    oracle = np.array([ORACLE[classes[k]] for k in labels], np.int64)
    return DomainSet(name, stamps, ids, labels, classes, oracle, bands)


#: the synthetic domains by name: each clean, and crowded with unrelated field sources
DOMAINS = {"radio": radio_set, "optical": optical_set, "lens": lens_set,
           "radio-crowded": partial(radio_set, crowding=CROWDING),
           "optical-crowded": partial(optical_set, crowding=CROWDING),
           "lens-crowded": partial(lens_set, crowding=CROWDING)}


def make_domain(name: str, n: int = 600, seed: int = 0, size: int = 48,
                rare_fraction: float = RARE_FRACTION) -> DomainSet:
    """The domain ``name`` (a key of :data:`DOMAINS`), deterministic for ``seed``.

    Raises:
        ValueError: unknown name, or n < 2.
    """
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}: choose one of {', '.join(DOMAINS)}")
    if n < 2:
        raise ValueError(f"a domain needs at least 2 objects, got n={n}")
    return DOMAINS[name](n=n, seed=seed, size=size, rare_fraction=rare_fraction)


def write_domain_cutouts(path: str | Path, dom: DomainSet, thumb_size: int = 32) -> Path:
    """Write ``dom`` as a cutouts file, as ``galexplorer ingest`` does (the writer appears the
    file only when complete), with columns ``kind`` (class index), ``class_name`` and ``oracle``
    (the 0-5 score, for ``galexplorer simulate``)."""
    from ..store.cutouts import CutoutWriter
    from .thumbnails import make_thumbnails

    n = len(dom.ids)
    cols = {"kind": dom.labels, "class_name": np.array([dom.class_names[k] for k in dom.labels], dtype=object),
            "oracle": dom.oracle}
    attrs = {"ingest": {"source": f"galexplorer.data.domains.make_domain({dom.name!r})",
                        "classes": list(dom.class_names)}}
    with CutoutWriter(path, bands=dom.bands, size=dom.stamps.shape[-1], thumb_size=thumb_size, attrs=attrs) as w:
        for a in range(0, n, 256):
            sl = slice(a, a + 256)
            w.add(dom.stamps[sl], dom.ids[sl], ra=np.full(len(dom.ids[sl]), np.nan),
                  dec=np.full(len(dom.ids[sl]), np.nan), columns={k: v[sl] for k, v in cols.items()},
                  source=[dom.name] * len(dom.ids[sl]),
                  thumbnails=make_thumbnails(dom.stamps[sl], dom.bands, thumb_size))
    return Path(path)
