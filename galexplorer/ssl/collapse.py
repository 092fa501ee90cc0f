"""Collapse monitor: is the representation still spread out, or has it fallen onto a point?

Two numbers per epoch, computed on the representations of a fixed set of un-augmented stamps:

* ``embedding_std``: the standard deviation of the L2-normalised embeddings, averaged over
  dimensions and multiplied by sqrt(D), so 1 means spread evenly over the sphere and 0 means
  every stamp maps to the same direction (complete collapse);
* ``effective_rank``: exp of the entropy of the normalised singular values of the centred
  embeddings (Roy & Vetterli 2007) - how many directions the embeddings really use. 1 means
  everything lies on a line (dimensional collapse).

Self-supervised methods without negatives (BYOL) can collapse when the learning rate or the
EMA schedule is off; the monitor warns loudly so a run is not wasted.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

# Thresholds below which we call it collapse. A randomly initialised ResNet on galaxy stamps
# gives an std of ~0.1-0.3 and an effective rank of several; a collapsed BYOL gives < 0.01
# and ~1.
STD_COLLAPSE = 0.02
RANK_COLLAPSE = 1.5


@dataclass
class CollapseStats:
    """Spread of a set of embeddings (see the module docstring)."""

    embedding_std: float
    effective_rank: float

    @property
    def collapsed(self) -> bool:
        return (not math.isfinite(self.embedding_std) or self.embedding_std < STD_COLLAPSE
                or not self.effective_rank >= RANK_COLLAPSE)


def effective_rank(x: np.ndarray) -> float:
    """exp(entropy) of the normalised singular values of the centred (N, D) matrix ``x``.

    Returns 1.0 for a rank-1 (or constant) matrix and D for an isotropic one.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    s = np.linalg.svd(x, compute_uv=False)
    total = s.sum()
    # relative to the largest singular value: float round-off in a collapsed set must not count
    if not total > 0 or s[0] <= 1e-6 * max(np.abs(x).max(), 1e-30):
        return 1.0
    p = s / total
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def collapse_stats(embeddings: np.ndarray) -> CollapseStats:
    """:class:`CollapseStats` of (N, D) embeddings, N >= 2.

    Raises:
        ValueError: fewer than 2 embeddings or not 2-D.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"collapse_stats needs (N >= 2, D) embeddings, got shape {e.shape}")
    if not np.isfinite(e).all():
        return CollapseStats(float("nan"), float("nan"))
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    u = e / np.maximum(norm, 1e-12)
    std = float(u.std(axis=0).mean() * math.sqrt(e.shape[1]))
    return CollapseStats(std, effective_rank(e))


class CollapseMonitor:
    """Logs a loud warning the first time (and every time after) the representation collapses."""

    def __init__(self) -> None:
        self.history: list[CollapseStats] = []

    def check(self, embeddings: np.ndarray, epoch: int) -> CollapseStats:
        stats = collapse_stats(embeddings)
        self.history.append(stats)
        if stats.collapsed:
            log.warning(
                "!!! REPRESENTATION COLLAPSE at epoch %d: embedding std %.4f (healthy > %.2f), effective "
                "rank %.2f (healthy > %.1f): every stamp maps to nearly the same vector. Lower --lr, check "
                "that the augmentations are not too strong or too weak, or try --method simclr. !!!",
                epoch, stats.embedding_std, STD_COLLAPSE, stats.effective_rank, RANK_COLLAPSE)
        return stats
