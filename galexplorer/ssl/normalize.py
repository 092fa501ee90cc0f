"""Per-band statistics of the training set and the asinh normalisation fed to the network.

The network sees ``asinh((x - median_b) / MAD_b)`` for each band ``b``: the sky sits near 0,
one MAD of sky noise is ~1, and the asinh keeps faint structure linear while compressing bright
cores logarithmically (Lupton et al. 1999), so stamps of very different brightness share one
input range. ``median_b`` and ``MAD_b`` are measured once on a seeded random sample of the
training stamps and travel with the checkpoint and the encoder, so embedding applies exactly the
normalisation used in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..store import CutoutStore

log = logging.getLogger(__name__)


@dataclass
class BandStats:
    """Robust per-band statistics of the training stamps (data units).

    Attributes:
        bands: band names, blue to red.
        median: (C,) float32, median pixel value of each band.
        mad: (C,) float32, median absolute deviation from that median (not scaled to a Gaussian
            sigma: the noise augmentation and the normalisation both use it as is), > 0.
    """

    bands: list[str]
    median: np.ndarray
    mad: np.ndarray

    def to_dict(self) -> dict:
        return {"bands": list(self.bands), "median": [float(v) for v in self.median],
                "mad": [float(v) for v in self.mad], "kind": "asinh((x - median) / mad)"}

    @classmethod
    def from_dict(cls, d: dict) -> BandStats:
        return cls(list(d["bands"]), np.asarray(d["median"], np.float32), np.asarray(d["mad"], np.float32))

    def tensors(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(median, mad) as (1, C, 1, 1) float32 tensors on ``device``, ready to broadcast."""
        m = torch.as_tensor(self.median, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        s = torch.as_tensor(self.mad, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        return m, s


def compute_band_stats(cutouts: CutoutStore, max_objects: int = 2000, seed: int = 0,
                       rows: np.ndarray | None = None) -> BandStats:
    """Median and MAD of each band over up to ``max_objects`` stamps drawn with ``seed``.

    Args:
        cutouts: the training cutouts.
        max_objects: stamps to sample (all of them if there are fewer); 2000 stamps of 64 px
            give ~8 million pixels per band, plenty for a median.
        seed: seeds the sample, so the statistics are reproducible.
        rows: restrict the sample to these rows (default: all).

    Raises:
        InputError: no stamps, or NaN/inf pixels in the sample.
    """
    pool = np.arange(cutouts.n) if rows is None else np.asarray(rows)
    if len(pool) == 0:
        raise InputError("the cutouts file holds no objects to train on", cutouts.path,
                         "ingest some stamps with `galexplorer ingest`")
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(pool, size=min(max_objects, len(pool)), replace=False))
    c = len(cutouts.bands)
    samples = [[] for _ in range(c)]
    for a in range(0, len(pick), 256):
        idx = pick[a:a + 256]
        x = cutouts.read(idx)
        bad = ~np.isfinite(x).reshape(len(idx), -1).all(axis=1)
        if bad.any():
            ids = [str(cutouts.ids[i]) for i in idx[bad][:3]]
            raise InputError(f"NaN or inf pixels in object(s) {', '.join(ids)}", cutouts.path,
                             "replace or drop them (galexplorer ingest replaces NaN by the sky level)")
        for b in range(c):
            samples[b].append(x[:, b].ravel())
    median = np.empty(c, np.float32)
    mad = np.empty(c, np.float32)
    for b in range(c):
        v = np.concatenate(samples[b]).astype(np.float64)
        med = float(np.median(v))
        dev = np.abs(v - med)
        m = float(np.median(dev))
        if not m > 0:
            # quantised or mostly empty stamps (e.g. 8-bit images with a black sky): fall back to
            # the mean absolute deviation, then to 1, so the normalisation stays finite
            m = float(dev.mean())
            log.info("band %s: median absolute deviation is 0; using the mean absolute deviation "
                     "(%.3g) to normalise", cutouts.bands[b], m)
            if not m > 0:
                log.warning("band %s is constant in the sampled stamps; normalising it by 1",
                            cutouts.bands[b])
                m = 1.0
        median[b], mad[b] = med, m
    return BandStats(list(cutouts.bands), median, mad)


_ONE = torch.ones(())


def asinh_(x: torch.Tensor) -> torch.Tensor:
    """``x = asinh(x)`` in place, and return ``x``.

    On CPU, PyTorch's ``asinh`` is not vectorised (9–30 ms for 128 x 5 x 64 x 64 here, depending
    on the values); ``sign(x) log(|x| + sqrt(x^2 + 1))`` from vectorised primitives takes 4 ms,
    within float32 rounding of it (1e-6 absolute or relative). Training views and embedding
    both use this function, so they see exactly the same normalisation. Elsewhere (CUDA) the
    native kernel is used.
    """
    if x.device.type != "cpu":
        return x.asinh_()
    r = torch.hypot(x, _ONE)                       # sqrt(x^2 + 1) without overflow for huge |x|
    r.add_(x.abs()).log_()
    return torch.copysign(r, x, out=x)


def normalize(x: torch.Tensor, median: torch.Tensor, mad: torch.Tensor) -> torch.Tensor:
    """``asinh((x - median) / mad)`` per band.

    Args:
        x: (B, C, H, W) float images in data units.
        median, mad: (1, C, 1, 1) tensors from :meth:`BandStats.tensors`.

    Returns:
        (B, C, H, W) float32, dimensionless.
    """
    # x * (1/mad) - median/mad in one fused pass (the training views use the same formula)
    scale = 1.0 / mad
    return asinh_(torch.addcmul(-median * scale, x, scale))


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` pixels of (B, C, S, S) stamps, S >= size.

    The crop starts at ``(S - size) // 2``, the same pixel grid as the un-jittered, un-rotated
    training crop (see :func:`galexplorer.ssl.augment.resample`), so no interpolation happens.
    """
    s = x.shape[-1]
    if size > s:
        raise ValueError(f"cannot crop {size} px from {s}-px stamps")
    o = (s - size) // 2
    return x[..., o:o + size, o:o + size]
