"""Collapse monitor: is the representation still spread out, or has it fallen onto a few directions?

Numbers per epoch, computed on the representations of a fixed set of un-augmented stamps:

* ``embedding_std``: the standard deviation of the L2-normalised embeddings, averaged over
  dimensions and multiplied by sqrt(D), so 1 means spread evenly over the sphere and 0 means
  every stamp maps to the same direction (complete collapse);
* ``effective_rank``: RankMe (Garrido et al. 2023), exp of the entropy of the normalised
  singular values of the embeddings (Roy & Vetterli 2007) - how many directions the
  embeddings really use. 1 means everything lies on a line;
* ``pca95``: principal components needed for 95% of the variance (what ``galexplorer embed``
  keeps for the map and the GP).

Two kinds of collapse are caught. *Complete* collapse (std < 0.02 or rank < 1.5) is absolute.
*Dimensional* collapse is relative: the representation still varies but along ever fewer
directions - BYOL on 1,866 radio galaxies went from rank 229 at epoch 1 to 5 at epoch 30 and
from 105 PCA components to 2, and the rare class became harder to find. The monitor warns when
the effective rank falls below :data:`RANK_FRACTION` of its starting value (the trainer measures
it on the untrained network before the first step), or when 95% of the variance lies on
:data:`PCA_COLLAPSE` direction (the map and the GP would then see a line), and says what to
change. In the first :data:`EARLY_EPOCHS` epochs, one PCA component alone (the rank holding)
is logged as an early dip, without the alarm: healthy runs pass through it. Any other dip is
logged as a dip to watch; the loud alarm comes only when it lasts :data:`PERSIST_EPOCHS`
consecutive epochs or remains at the last epoch (:meth:`CollapseMonitor.finish`).

The thresholds are measured (benchmarks/bench_representation.py on real XDF pixels, 30-epoch
runs; docs/training.md): a healthy run may lose half of its starting rank while it learns - the
untrained network's rank is high because random features spread noise over every direction, and
SimCLR fell to 0.33-0.5 of it on the benchmark with the standard stem (0.18-0.45 with the medium
stem, in its early dip; 0.18-0.28 on the demo's 374 stamps), with 1-12 PCA components, while its
shape probes and rare-class recall rose - whereas the runs that collapsed (BYOL on stems that keep
more resolution: BYOL was not kept, the medium stem was, with SimCLR) fell to 0.03-0.07 of it,
with one PCA component, and lost the rare objects.
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
#: dimensional collapse: effective rank below this fraction of its starting value ...
RANK_FRACTION = 0.1
#: ... or 95% of the variance on this many principal components or fewer
PCA_COLLAPSE = 1
#: in the first epochs a run whose rank holds may still put 95% of its variance on one direction
#: and recover: the medium stem's SimCLR on the XDF benchmark at epochs 2-3 (three seeds; one also at 5), the
#: demo at epochs 3-5. There that alone is logged as a dip to watch, not as a loud collapse
EARLY_EPOCHS = 5
#: a dip must last this many consecutive epochs (or remain at the last epoch) before the loud
#: alarm: SimCLR's rank dips at epoch 3 of the demo and comes back, and an alarm there was read as
#: the state of the finished run
PERSIST_EPOCHS = 3


@dataclass
class CollapseStats:
    """Spread of a set of embeddings (see the module docstring)."""

    embedding_std: float
    effective_rank: float
    pca95: int = 0

    @property
    def collapsed(self) -> bool:
        return (not math.isfinite(self.embedding_std) or self.embedding_std < STD_COLLAPSE
                or not self.effective_rank >= RANK_COLLAPSE)


def epoch_ranges(epochs: list[int]) -> str:
    """'3-11, 13' for [3, 4, ..., 11, 13]."""
    runs: list[list[int]] = []              # [first, last] of each run of consecutive epochs
    for e in sorted(set(epochs)):
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


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


def pca_components(x: np.ndarray, variance: float = 0.95) -> int:
    """Principal components of the (N, D) matrix ``x`` that explain ``variance`` of its variance (>= 1)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    s2 = np.linalg.svd(x, compute_uv=False) ** 2
    if not s2.sum() > 0:
        return 1
    return int(min(len(s2), np.searchsorted(np.cumsum(s2) / s2.sum(), variance) + 1))


def collapse_stats(embeddings: np.ndarray) -> CollapseStats:
    """:class:`CollapseStats` of (N, D) embeddings, N >= 2.

    Raises:
        ValueError: fewer than 2 embeddings or not 2-D.
    """
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or e.shape[0] < 2:
        raise ValueError(f"collapse_stats needs (N >= 2, D) embeddings, got shape {e.shape}")
    if not np.isfinite(e).all():
        return CollapseStats(float("nan"), float("nan"), 0)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    u = e / np.maximum(norm, 1e-12)
    std = float(u.std(axis=0).mean() * math.sqrt(e.shape[1]))
    return CollapseStats(std, effective_rank(e), pca_components(e))


class CollapseMonitor:
    """Logs a loud warning every epoch the representation collapses, completely or dimensionally.

    Args:
        fraction: dimensional collapse below this fraction of the reference effective rank (or
            with :data:`PCA_COLLAPSE` PCA component for 95% of the variance, when the reference
            had more).
        reference: (effective_rank, pca95) to compare with - the trainer passes those of the
            untrained network; None takes those of the first epoch checked.
        early_epochs: up to this epoch, one PCA component with the rank still above ``fraction``
            is logged as an early dip (a plain warning that says it usually passes), not as a
            loud collapse; it still counts as a collapsed epoch for the run's summary.
    """

    def __init__(self, fraction: float = RANK_FRACTION,
                 reference: tuple[float, int] | None = None, early_epochs: int = EARLY_EPOCHS,
                 persist: int = PERSIST_EPOCHS) -> None:
        if not 0 < fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {fraction}")
        self.fraction = fraction
        self.early_epochs = early_epochs
        self.reference = reference
        self.history: list[CollapseStats] = []
        self.dimensional_epochs: list[int] = []   # the epochs checked in dimensional collapse
        self.dimensional_now = False              # ... including the last one checked
        self.persist = persist
        self._dip: list[int] = []                 # the epochs of the dip going on now
        self._alarmed = False                     # ... and whether it has had its loud alarm

    @property
    def dimensional(self) -> bool:
        """Dimensional collapse at some epoch checked."""
        return bool(self.dimensional_epochs)

    def check(self, embeddings: np.ndarray, epoch: int) -> CollapseStats:
        stats = collapse_stats(embeddings)
        self.history.append(stats)
        if stats.collapsed:
            log.warning(
                "!!! REPRESENTATION COLLAPSE at epoch %d: embedding std %.4f (healthy > %.2f), effective "
                "rank %.2f (healthy > %.1f): every stamp maps to nearly the same vector. Lower --lr, check "
                "that the augmentations are not too strong or too weak, or try --method vicreg. !!!",
                epoch, stats.embedding_std, STD_COLLAPSE, stats.effective_rank, RANK_COLLAPSE)
        if self.reference is None:
            self.reference = (stats.effective_rank, stats.pca95)
            return stats
        rank0, pca0 = self.reference
        low_rank = stats.effective_rank < self.fraction * rank0
        low_pca = stats.pca95 <= PCA_COLLAPSE < pca0
        if not (low_rank or low_pca):
            if self.dimensional_now:
                # SimCLR's rank often dips in the first epochs and comes back: say so, so that the
                # notes above are not read as the state of the finished run
                log.warning("dimensional collapse over at epoch %d: effective rank %.1f (%.1f at the start), "
                            "%d PCA components for 95%% of the variance", epoch, stats.effective_rank, rank0,
                            stats.pca95)
            self.dimensional_now = False
            self._dip, self._alarmed = [], False
            return stats
        self.dimensional_now = True
        self.dimensional_epochs.append(int(epoch))
        if not low_rank and epoch <= self.early_epochs:
            log.warning("early dip at epoch %d: 95%% of the variance on %d PCA component (%d at the start), "
                        "effective rank %.1f (%.1f at the start, above a tenth of it). Runs that learn often "
                        "pass through this in their first epochs; the log says when it is over, and the "
                        "summary warns if it lasts to the end.", epoch, stats.pca95, pca0,
                        stats.effective_rank, rank0)
            return stats
        self._dip.append(int(epoch))
        if len(self._dip) < self.persist:
            log.warning("dip at epoch %d: effective rank %.1f (%.1f at the start), %d PCA components for 95%% "
                        "of the variance (%d at the start); watching it - the alarm comes if it lasts %d "
                        "epochs or to the last one", epoch, stats.effective_rank, rank0, stats.pca95, pca0,
                        self.persist)
        elif not self._alarmed:
            self._alarm(f"epochs {self._dip[0]}-{epoch}")
        return stats

    def finish(self, epoch: int) -> None:
        """The run ended at ``epoch``: a dip still going on gets its loud alarm now."""
        if self.dimensional_now and self._dip and not self._alarmed:
            self._alarm(f"epoch {epoch}, the last epoch" if len(self._dip) == 1 else
                        f"epochs {self._dip[0]}-{epoch}, to the last epoch")

    def _alarm(self, when: str) -> None:
        self._alarmed = True
        stats, (rank0, pca0) = self.history[-1], self.reference   # the dip's latest epoch
        log.warning(
            "!!! DIMENSIONAL COLLAPSE at %s: effective rank %.1f (%.1f at the start), %d PCA "
            "components for 95%% of the variance (%d at the start): the embeddings use ever fewer "
            "directions, so shapes and rare objects blur together. Lower --lr, weaken the "
            "augmentations (augment.noise_scale, jitter_px), try another method (--method simclr or "
            "--method vicreg), or stop earlier (checkpoint-best.pt keeps the best "
            "epoch). !!!", when, stats.effective_rank, rank0, stats.pca95, pca0)
