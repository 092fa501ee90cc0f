"""The cold start: what the next batch holds while no label is interesting yet.

Until the first find (a label ≥ ``interesting_above``), a model fitted on dull labels only has
nothing to aim at but its prior, and where the prior (the anomaly score) does not rank the rare
class high — a class defined by shape on a domain where the unusual pixels are bright or large
sources — the loop labels 50–100 ordinary objects before its first find (radio domain,
``benchmarks/bench_cold_start.py``: worse than random order in 4 seeds of 6). ``random-share``
hedges: after ``m`` find-less batches past the first (spanning) one, a share ``min(1, m / RAMP)``
of the batch is a seeded random draw of the unlabelled, not excluded objects and the rest the
model's own first picks. From the first find on, the model alone chooses.

``model``, the default, is the loop without it (every pick by the acquisition). Measured
(docs/active-learning.md, "A random share until the first find"): the random share found 1.63×
as many rare objects by 100 labels as the model-only start on radio, but half as many on the
stores of 10^5–10^6 objects where the anomaly prior finds the class after 40 labels; so it is
an option (``--cold-start random-share``, Model ▸ Random picks until the first find), not the
default.

No Qt, no torch; pure given its arguments (the draw is seeded by the loop's seed and the label
count, so the same labels give the same batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .registry import COLD_STARTS, DEFAULT_COLD_START

#: find-less batches (past the spanning one) after which the whole batch is random
RAMP = 3


@dataclass(frozen=True)
class ColdStart:
    """The random part of one batch.

    Attributes:
        random: (r,) int64 rows drawn at random (at the end of the batch).
        batch: the batch's length (the model picked ``batch - r``).
        n_labels: the labels the fit saw, none of them a find.
        threshold: the label a find reaches (``interesting_above``).
    """

    random: np.ndarray
    batch: int
    n_labels: int
    threshold: float

    @property
    def reason(self) -> str:
        """Why those picks are random, as the window says it."""
        head = f"no score ≥ {self.threshold:g} in {self.n_labels} labels yet"
        if len(self.random) >= self.batch:
            return f"{head}: this batch is drawn at random (cold start)"
        return (f"{head}: {len(self.random)} of this batch at random, {self.batch - len(self.random)} "
                "by the model (cold start)")

    @property
    def short(self) -> str:
        """One random pick's reason in a few words (Why here)."""
        return f"picked at random: no find (≥ {self.threshold:g}) in {self.n_labels} labels"

    def to_dict(self) -> dict:
        """JSON-able (a fit's ``info``); :meth:`from_dict` reads it back."""
        return {"random": [int(r) for r in self.random], "batch": self.batch, "n_labels": self.n_labels,
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d: dict) -> ColdStart:
        return cls(np.asarray(d["random"], np.int64), int(d["batch"]), int(d["n_labels"]), float(d["threshold"]))


def random_share(n_labels: int, batch_size: int) -> float:
    """The random share of the next batch after ``n_labels`` labels without a find:
    ``min(1, m / RAMP)`` with ``m = n_labels // batch_size − 1`` find-less batches past the first."""
    m = max(0, int(n_labels) // max(int(batch_size), 1) - 1)
    return min(1.0, m / RAMP)


def mix_random(batch: np.ndarray, labels: np.ndarray, eligible: np.ndarray, mode: str, threshold: float,
               batch_size: int, seed: int) -> tuple[np.ndarray, ColdStart | None]:
    """The next batch under cold start ``mode``.

    Args:
        batch: (k,) int64 the model's picks, best first.
        labels: (n,) the scores fitted on.
        eligible: (N,) bool, the unlabelled and not excluded objects.
        mode: one of :data:`COLD_STARTS`.
        threshold: a label ≥ it is a find.
        batch_size: the loop's batch size (sets the pace of the ramp).
        seed: the loop's seed.

    Returns:
        ``(batch, cold_start)``: the batch (the model's first picks, then the random ones) and
        the :class:`ColdStart` saying which are random, or the batch unchanged and None (mode
        ``model``, a find among the labels, no labels, or a share that rounds to none).
    """
    labels = np.asarray(labels, np.float64)
    batch = np.asarray(batch, np.int64)
    k = len(batch)
    if mode == "model" or not len(labels) or not k or (labels >= threshold).any():
        return batch, None
    n_random = int(round(k * random_share(len(labels), batch_size)))
    if n_random == 0:
        return batch, None
    keep = batch[:k - n_random]
    free = np.asarray(eligible, bool).copy()
    free[keep] = False
    rows = np.flatnonzero(free)
    if not len(rows):
        return batch, None
    rng = np.random.default_rng(int(seed) * 1000 + len(labels))
    picks = rng.choice(rows, min(n_random, len(rows)), replace=False).astype(np.int64)
    return np.concatenate([keep, picks]), ColdStart(picks, len(keep) + len(picks), len(labels), float(threshold))


__all__ = ["COLD_STARTS", "DEFAULT_COLD_START", "RAMP", "ColdStart", "mix_random", "random_share"]
