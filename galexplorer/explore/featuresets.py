"""The representations besides the learned embedding that ``embed`` writes into the store, so that
the loop can choose among them by cross-validation on the labels (issue #22 item 3):

* ``features/morphology`` — :func:`galexplorer.data.morphfeatures.morphology_features` of every
  cutout (71 numbers for one band, 72 + 2C for C bands): isophote shapes, CAS, Gini–M20, Hu moments,
  rotation residuals and multimode (shape and outer asymmetry, Freeman's M, I, D), colours, and the
  host-subtracted residual along circles about the host (arcs, rings, tails);
* ``features/pixels`` — raw-pixel PCA: every cutout reduced to 16×16 pixels a band (area
  average), each band arcsinh-stretched by the median and MAD of a sample of the stamps
  (the standard deviation where the MAD is 0, as on an empty radio sky), and the leading principal
  components (at most :data:`PIXEL_COMPONENTS`) of those vectors. The baseline every benchmark
  prints; on a single-band domain a learned embedding does not always beat it.

Both are computed from the cutouts in blocks (memory flat in N) with a progress bar. The
morphology costs about 3.5–4.5 ms a stamp on one core (2–2.7 ms before issue #22's added numbers), so ``embed`` computes it by default only up to
:data:`AUTO_LIMIT` objects (``--features`` chooses).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import progress
from ..errors import ConfigError

log = logging.getLogger(__name__)

FEATURE_SETS = ("morphology", "pixels")
FEATURE_CHOICES = ("auto", "all", "none")
AUTO_LIMIT = 200_000
PIXEL_SIDE = 16
PIXEL_COMPONENTS = 32
STATS_SAMPLE = 2000
BLOCK = 1024


def wanted_sets(choice: str, n: int) -> tuple[str, ...]:
    """The feature sets ``embed --features CHOICE`` writes for a store of ``n`` objects.

    Raises:
        ConfigError: an unknown choice.
    """
    if choice not in FEATURE_CHOICES:
        raise ConfigError(f"unknown --features {choice!r}", hint=f"use one of {', '.join(FEATURE_CHOICES)}")
    if choice == "none":
        return ()
    if choice == "auto" and n > AUTO_LIMIT:
        log.info("%d objects: no morphology features (about %.0f min); `--features all` computes them",
                 n, n * 2e-3 / 60)
        return ("pixels",)
    return FEATURE_SETS


def _reduce(stamps: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """(n, C, S, S) → (n, C, side, side) by area averaging (crops S to a multiple of side first;
    stamps smaller than ``side`` are kept whole)."""
    s = stamps.shape[-1]
    if s < side:
        return stamps
    f = s // side
    a = (s - f * side) // 2
    x = stamps[:, :, a:a + f * side, a:a + f * side]
    return x.reshape(x.shape[0], x.shape[1], side, f, side, f).mean(axis=(3, 5))


def band_stretch(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (median, scale) of a (n, C, S, S) sample: scale = 1.4826·MAD, or the standard
    deviation where the MAD is 0 (mostly empty sky), or 1 where that is 0 too."""
    med = np.nanmedian(sample, axis=(0, 2, 3))
    scale = 1.4826 * np.nanmedian(np.abs(sample - med[None, :, None, None]), axis=(0, 2, 3))
    std = np.nanstd(sample, axis=(0, 2, 3))
    scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
    return med.astype(np.float64), scale.astype(np.float64)


def pixel_vectors(stamps: np.ndarray, med: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(n, C·side²) float64 arcsinh-stretched, area-reduced pixels (NaN → the band's median)."""
    x = np.asarray(stamps, np.float64)
    x = np.where(np.isfinite(x), x, med[None, :, None, None])
    x = np.arcsinh((x - med[None, :, None, None]) / scale[None, :, None, None])
    return _reduce(x).reshape(len(x), -1)


def compute_feature_sets(cutouts, rows: np.ndarray, sets: tuple[str, ...], seed: int = 0
                         ) -> dict[str, tuple[np.ndarray, dict]]:
    """The wanted feature sets of the cutouts ``rows`` (store order), with their HDF5 attributes.

    Args:
        cutouts: an open :class:`~galexplorer.store.CutoutStore`.
        rows: (N,) int64 cutouts rows of the store's objects.
        sets: names from :data:`FEATURE_SETS`.
        seed: seed of the sample the pixel stretch is measured on.

    Returns:
        ``{name: (array (N, k) float32, attrs)}``.
    """
    from ..data.morphfeatures import feature_names, morphology_features
    from .pca import CovarianceAccumulator

    rows = np.asarray(rows, np.int64)
    n = len(rows)
    bands = list(cutouts.bands)
    out: dict[str, tuple[np.ndarray, dict]] = {}
    if not sets or n == 0:
        return out

    def blocks(desc: str):
        for a in progress.track(range(0, n, BLOCK), desc, total=(n + BLOCK - 1) // BLOCK):
            yield a, cutouts.read(rows[a:a + BLOCK])

    if "morphology" in sets:
        names = feature_names(len(bands))
        morph = np.empty((n, len(names)), np.float32)
        for a, stamps in blocks("morphology features"):
            morph[a:a + len(stamps)] = morphology_features(stamps)
        out["morphology"] = (morph, {
            "method": "galexplorer.data.morphfeatures", "columns": names,
            "description": "isophote shapes at 50/25/10/3% of the peak, CAS, Gini-M20, Hu moments, radii, "
                           "edge light, band shares, shape/outer asymmetry, outer residual, multimode, "
                           "intensity, deviation, band asymmetries, colour dispersion, the host-subtracted "
                           "residual along circles (arcs, rings, tails); detached unrelated sources masked "
                           "first (see docs/active-learning.md)"})
    if "pixels" in sets:
        rng = np.random.default_rng(seed)
        sample_rows = np.sort(rng.choice(rows, size=min(n, STATS_SAMPLE), replace=False))
        med, scale = band_stretch(cutouts.read(sample_rows))
        acc = None
        for _, stamps in blocks("pixel PCA (covariance)"):
            v = pixel_vectors(stamps, med, scale)
            acc = acc or CovarianceAccumulator(v.shape[1])
            acc.add(v)
        k = min(PIXEL_COMPONENTS, acc.dim, max(1, n - 1))
        model = acc.fit(1.0, False, k)
        pix = np.empty((n, model.n_components), np.float32)
        for a, stamps in blocks("pixel PCA (transform)"):
            pix[a:a + len(stamps)] = model.transform(pixel_vectors(stamps, med, scale))
        out["pixels"] = (pix, {
            "method": "pca of arcsinh-stretched pixels", "side": PIXEL_SIDE, "band_median": med,
            "band_scale": scale, "explained_variance_ratio": np.asarray(model.explained_variance_ratio, np.float64),
            "description": f"leading principal components of the cutouts reduced to {PIXEL_SIDE}x{PIXEL_SIDE} "
                           "a band and arcsinh-stretched by each band's median and MAD"})
    return out
