"""The portfolio: a multi-armed bandit that shares every batch among acquisition strategies.

Before the first interesting label no model of the user's taste exists, and which strategy
finds the rare class first depends on the data (see docs/active-learning.md, "The cold
start"). The portfolio runs several and learns which one is paying off:

==============  ===================================================================
arm             proposes
==============  ===================================================================
``gp``          the GP's expected-improvement batch (the loop's acquisition)
``anomaly``     the most anomalous objects (isolation-forest order, no labels used)
``neighbour``   Astronomaly's NeighbourScore, highest first
``knn``         kNN label transfer, highest first: the neighbours of the best labels
``aad``         active anomaly detection (coniferest ``AADForest``), highest first
==============  ===================================================================

Each arm keeps a Beta posterior of its hit rate, a hit being an object it proposed that the
user scored ≥ ``interesting_above``. Recent batches count more: the outcome of a batch proposed
``j`` refits ago weighs ``discount**j`` (0.8: a half-life of about three batches), so an arm
that stops paying off loses its share. On every refit each arm's hit rate is drawn from its
posterior (Thompson sampling) and the batch is shared in proportion to the draws (largest
remainders, ties by a seeded draw): a strategy with twice the recent hit rate gets about
twice the slots, and none is starved for good. Without a hit every arm has the same posterior
and the batch is shared evenly. Deterministic for a seed: the draws come from
``default_rng([seed, number of labels])``.

Cost at 10^6 objects: the GP's mean over every object, kNN's similarity to the labels, and —
for the ``neighbour`` and ``aad`` arms when they only propose — scores of the :data:`POOL` most
anomalous objects instead of all of them (NeighbourScore is bounded by the anomaly score, so
its proposals stay exact; AAD re-ranks the isolation forest's most anomalous objects, which is
the pool it draws from in practice).

The state is the list of past proposals (which arm proposed which rows, at which refit), a
JSON-able list kept in ``LoopResult.info["portfolio"]`` and, in the explorer, in the label
journal's session state (:func:`save_state` / :func:`load_state`), so the shares survive a
restart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

log = logging.getLogger(__name__)

#: The arms, in the order ties are broken.
ARMS = ("gp", "anomaly", "neighbour", "knn", "aad")
#: The scorer each arm uses (names from the registry; ``anomaly`` is the isolation forest).
ARM_SCORER = {"gp": "gp", "anomaly": "iforest", "neighbour": "neighbour", "knn": "knn", "aad": "aad"}
JOURNAL_KEY = "active.portfolio"
#: Above this many objects the ``neighbour`` and ``aad`` arms, when they only propose (they are not
#: the ranking arm), score only the POOL most anomalous objects (isolation-forest order).
#: NeighbourScore is never above the anomaly score, so its proposals are checked to be exact (and
#: recomputed over every object otherwise); AAD re-ranks that pool.
POOL = 50_000


@dataclass(frozen=True)
class ArmPosterior:
    """Discounted outcomes of one arm and its Beta(1 + hits, 1 + misses) posterior."""

    hits: float
    tries: float

    @property
    def alpha(self) -> float:
        return 1.0 + self.hits

    @property
    def beta(self) -> float:
        return 1.0 + self.tries - self.hits

    @property
    def mean(self) -> float:
        return self.alpha / (self.alpha + self.beta)


class Bandit:
    """Thompson sampling on "label ≥ threshold" per arm, shares in proportion to the draws.

    Args:
        arms: arm names.
        discount: weight of a batch's outcomes per refit of age (1: all history counts alike).
    """

    def __init__(self, arms: tuple[str, ...] = ARMS, discount: float = 0.8):
        if not 0 < discount <= 1:
            raise ConfigError(f"the portfolio's discount must be in (0, 1], got {discount!r}")
        self.arms = tuple(arms)
        self.discount = float(discount)

    def posteriors(self, history: list[dict], labelled: np.ndarray, labels: np.ndarray,
                   threshold: float) -> dict[str, ArmPosterior]:
        """Each arm's discounted hits and tries from the proposals in ``history`` that are labelled.

        Args:
            history: ``[{"refit": t, "arm": name, "rows": [...]}, ...]`` past proposals.
            labelled, labels: the labels now (rows proposed but not labelled do not count).
            threshold: a label ≥ this is a hit.
        """
        score = dict(zip(np.asarray(labelled, dtype=np.int64).tolist(), np.asarray(labels, dtype=float).tolist()))
        now = max((int(h["refit"]) for h in history), default=0)
        hits = dict.fromkeys(self.arms, 0.0)
        tries = dict.fromkeys(self.arms, 0.0)
        for h in history:
            arm = h["arm"]
            if arm not in hits:
                continue
            w = self.discount ** (now - int(h["refit"]))
            for r in h["rows"]:
                s = score.get(int(r))
                if s is not None:
                    tries[arm] += w
                    hits[arm] += w * (s >= threshold)
        return {a: ArmPosterior(hits[a], tries[a]) for a in self.arms}

    def shares(self, posteriors: dict[str, ArmPosterior], rng: np.random.Generator) -> dict[str, float]:
        """One Thompson draw per arm, normalised to sum to 1."""
        draws = np.array([rng.beta(posteriors[a].alpha, posteriors[a].beta) for a in self.arms])
        draws = np.maximum(draws, 1e-12)
        return dict(zip(self.arms, (draws / draws.sum()).tolist()))

    def allocate(self, shares: dict[str, float], k: int, rng: np.random.Generator) -> dict[str, int]:
        """``k`` slots in proportion to ``shares`` (largest remainders; equal remainders by a draw)."""
        s = np.array([shares[a] for a in self.arms], dtype=np.float64)
        exact = s * k
        slots = np.floor(exact).astype(np.int64)
        left = int(k - slots.sum())
        if left > 0:
            rem = exact - slots
            order = np.lexsort((rng.random(len(s)), -rem))
            slots[order[:left]] += 1
        return dict(zip(self.arms, slots.tolist()))


def ranking_arm(posteriors: dict[str, ArmPosterior], arms: tuple[str, ...] = ARMS) -> str:
    """The arm whose scores rank the unlabelled objects: the highest posterior hit rate
    (ties: the first in ``arms``, i.e. the GP)."""
    means = [posteriors[a].mean for a in arms]
    return arms[int(np.argmax(means))]


def save_state(journal, state: dict) -> None:
    """Record the portfolio's state (``LoopResult.info["portfolio"]``) in the journal's session state."""
    journal.set_meta(JOURNAL_KEY, json.dumps(state, sort_keys=True))


def load_state(journal) -> dict | None:
    """The portfolio state last saved with :func:`save_state`, or None (none, or unreadable)."""
    text = journal.get_meta(JOURNAL_KEY)
    if not text:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        log.warning("the portfolio state in the label journal is not valid JSON: starting afresh")
        return None
    if not isinstance(state, dict) or not isinstance(state.get("history"), list):
        return None
    return state
