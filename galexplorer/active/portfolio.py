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

:class:`Portfolio` is the strategy :class:`~galexplorer.active.loop.ActiveLoop` runs for
``scorer="portfolio"``: it holds the arms' scorers, the bandit and the state a fit without a
``previous`` result resumes from, and its :meth:`Portfolio.fit` returns the
:class:`~galexplorer.active.result.LoopResult` with the new state in it. Adding an arm touches
this module only: a name in :data:`ARMS` and its scorer in :data:`ARM_SCORER`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..store.ranking import Scores
from .acquisition import top_k
from .config import LoopConfig
from .ordering import ranking_order
from .registry import PORTFOLIO
from .representation import RepresentationChoice
from .result import LoopResult, eligible_mask
from .scorers import IsolationForestScorer, NeighbourScorer, ScoreModel, Scorer

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


@dataclass
class _Plan:
    """One refit's draw: the state it continues, the posteriors, shares, slots and ranking arm."""

    history: list
    refit: int
    post: dict
    shares: dict
    slots: dict
    rank_arm: str
    warm: dict


class Portfolio:
    """The portfolio strategy of :class:`~galexplorer.active.loop.ActiveLoop` (see the module).

    Args:
        make: a scorer from its registry name, with the loop's options (``ActiveLoop``'s factory).
        config: the loop's options (seed, batch size, acquisition, ``interesting_above``).
        anomaly_raw: the store's isolation-forest score, reused by the ``anomaly`` and
            ``neighbour`` arms (None: fitted on first use).
        state: a saved state (``LoopResult.info["portfolio"]``) that fits without ``previous``
            continue from; see :meth:`restore`.
    """

    def __init__(self, make: Callable[[str], Scorer], config: LoopConfig, anomaly_raw: np.ndarray | None = None,
                 state: dict | None = None):
        self.config = config
        iforest = IsolationForestScorer(n_trees=config.iforest_trees, seed=config.seed, raw=anomaly_raw)
        shared = {"anomaly": iforest, "neighbour": NeighbourScorer(iforest, seed=config.seed)}
        self.arms: dict[str, Scorer] = {a: shared[a] if a in shared else make(ARM_SCORER[a]) for a in ARMS}
        self.bandit = Bandit(ARMS)
        self.state = state

    @property
    def scorer(self) -> Scorer:
        """What "needs labels" means for the portfolio: the GP arm."""
        return self.arms["gp"]

    def restore(self, state: dict | None) -> None:
        """Start fits without ``previous`` from a saved state (e.g. from :func:`load_state`)."""
        self.state = state

    def fit(self, loop, X: np.ndarray, rep: RepresentationChoice, labelled: np.ndarray, labels: np.ndarray,
            excluded: np.ndarray, previous: LoopResult | None, t0: float) -> LoopResult:
        """One refit: Thompson shares, each arm with slots fitted and proposing its best not yet
        taken, the ranking from the arm with the best posterior hit rate. Writes nothing back: the
        new state is ``result.info["portfolio"]``.

        Args:
            loop: the :class:`~galexplorer.active.loop.ActiveLoop` (its ``choose_batch``,
                ``anomaly_prior`` and ``n``).
            X, rep: the features this refit learns on, and why.
            labelled, labels, excluded: checked fit inputs (``check_labels``).
            previous: the last result (its state and warm starts), or None.
            t0: ``time.perf_counter()`` when the fit began.
        """
        c, n = self.config, loop.n
        plan = self._plan(labelled, labels, previous, rep)
        free = eligible_mask(n, labelled, excluded)
        best = float(labels.max())
        models: dict[str, ScoreModel] = {}
        seconds: dict[str, float] = {}
        batch_parts, proposals = [], []
        acquisition = np.full(n, np.nan, np.float32)
        rank_std = None
        pool = None
        for arm in ARMS:
            if plan.slots[arm] == 0 and arm != plan.rank_arm:
                continue
            ta = time.perf_counter()
            if arm in ("neighbour", "aad") and arm != plan.rank_arm and n > POOL:
                # only proposing: score the POOL most anomalous objects (see the module's notes)
                if pool is None:
                    pool = top_k(loop.anomaly_prior(), POOL)
                model = self.arms[arm].fit(X, labelled, labels, warm=plan.warm.get(arm), rows=pool)
                if arm == "neighbour":
                    model = self._neighbour_exact(loop, model, pool, labelled, labels, free, plan.slots[arm], X)
            else:
                model = self.arms[arm].fit(X, labelled, labels, warm=plan.warm.get(arm))
            models[arm] = model
            if plan.slots[arm]:
                part, std, acq_values, _, _ = loop.choose_batch(model, c.acquisition if arm == "gp" else "mean",
                                                                best, labelled, free, np.flatnonzero(free),
                                                                plan.slots[arm])
                free[part] = False
                acquisition[part] = acq_values[part]
                batch_parts.append(part)
                proposals.append({"refit": plan.refit, "arm": arm, "rows": part.tolist()})
                if arm == plan.rank_arm:
                    rank_std = std
            seconds[arm] = time.perf_counter() - ta
        batch = np.concatenate(batch_parts) if batch_parts else np.empty(0, np.int64)
        model = models[plan.rank_arm]
        std = rank_std if rank_std is not None else np.full(n, np.nan, np.float32)
        info = {"portfolio": self._state(plan, proposals, models, seconds), "representation": rep.to_dict()}
        total = time.perf_counter() - t0
        log.info("portfolio fitted on %d labels in %.2f s: slots %s, ranking by %s (%s)", len(labelled), total,
                 ", ".join(f"{a} {k}" for a, k in plan.slots.items() if k), plan.rank_arm,
                 ", ".join(f"{a} {t:.2f} s" for a, t in seconds.items()))
        return LoopResult(scores=Scores(model.mean, std, acquisition, PORTFOLIO, "portfolio", len(labelled)),
                          next_batch=batch, order=ranking_order(model.mean, labelled, labels, excluded),
                          seconds=total, labelled=labelled, labels=labels, excluded=excluded, best=best,
                          info=info, config=c, _mean_model=model)

    def _plan(self, labelled: np.ndarray, labels: np.ndarray, previous: LoopResult | None,
              rep: RepresentationChoice) -> _Plan:
        """The state this refit continues (``previous``'s, else the restored one) and its draw."""
        c = self.config
        state = previous.info.get("portfolio") if previous is not None and previous.scorer == PORTFOLIO else None
        state = state if state is not None else self.state   # restored, never written by a fit
        history = list(state["history"]) if state else []
        refit = 1 + max((int(h["refit"]) for h in history), default=0)
        post = self.bandit.posteriors(history, labelled, labels, c.interesting_above)
        rng = np.random.default_rng([int(c.seed), len(labelled)])
        shares = self.bandit.shares(post, rng)
        slots = self.bandit.allocate(shares, c.batch_size, rng)
        same = previous is not None and previous.representation == rep.used
        warm = (state or {}).get("arm_info", {}) if same or previous is None else {}
        return _Plan(history, refit, post, shares, slots, ranking_arm(post), warm)

    @staticmethod
    def _state(plan: _Plan, proposals: list, models: dict, seconds: dict) -> dict:
        """The state after a refit (``LoopResult.info["portfolio"]``), JSON-able."""
        return {"history": plan.history + proposals, "shares": plan.shares, "slots": plan.slots,
                "ranking_arm": plan.rank_arm, "hit_rate": {a: p.mean for a, p in plan.post.items()},
                "hits": {a: p.hits for a, p in plan.post.items()},
                "tries": {a: p.tries for a, p in plan.post.items()},
                "arm_info": {a: m.info for a, m in models.items()}, "arm_seconds": seconds}

    def _neighbour_exact(self, loop, model: ScoreModel, pool: np.ndarray, labelled, labels, free: np.ndarray,
                         k: int, X: np.ndarray) -> ScoreModel:
        """NeighbourScore never exceeds the anomaly score: the pool's top ``k`` are the top ``k`` of
        all objects when the k-th of them is at least the anomaly score of every object outside
        the pool; otherwise score everything."""
        anomaly = loop.anomaly_prior()
        outside = np.ones(loop.n, bool)
        outside[pool] = False
        outside &= free
        cand = pool[free[pool]]
        if not outside.any() or len(cand) < k:
            return model
        kth = np.partition(model.mean[cand], len(cand) - k)[len(cand) - k]
        if kth >= float(anomaly[outside].max()):
            return model
        log.debug("NeighbourScore: the pool was not enough, scoring every object")
        return self.arms["neighbour"].fit(X, labelled, labels)


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
