"""The active-learning loop: features once, then fit → score → next batch on every refit.

::

    loop = ActiveLoop(store, LoopConfig(scorer="gp", acquisition="ei", xi=0.5, batch_size=10))
    first = loop.initial_batch()                      # spans the data along PC 1
    ... the user scores them ...
    result = loop.fit(labelled_rows, scores, excluded_rows)
    result.next_batch                                 # (10,) rows to show next
    result.order                                      # every row, best first

:meth:`ActiveLoop.fit` is pure given its arguments (the same inputs give the same result) and
safe to call from a worker thread while the caller keeps labelling: it reads only the
features computed in ``__init__`` and the arrays it is given, and writes nothing on the loop
(the only writes are per-store caches filled once on first use, under a lock: the candidate
representations, kNN's unit vectors, the anomaly score). The portfolio is a strategy of its own
(:class:`~galexplorer.active.portfolio.Portfolio`): its history continues from ``previous``, or
from a state given once to :meth:`ActiveLoop.restore_portfolio`, which the strategy holds; the
new state is in the result. The result is a :class:`~galexplorer.active.result.LoopResult`.

What a GP refit computes (honestly): the hyper-parameters, the predictive **mean of every
object**, and the exact predictive **std only where the acquisition needs it** — for the
objects whose acquisition upper bound could still enter the next batch. ``result.std`` is NaN
elsewhere; :meth:`LoopResult.complete_std` fills it in (N·n² flops: seconds at 10^6 objects).
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from ..errors import LabelError, StoreError
from ..store import EmbeddingStore
from ..store.ranking import Scores
from .acquisition import (
    Acquisition,
    farthest_batch,
    select_batch,
    spanning_batch,
    top_k,
)
from .cold_start import mix_random
from .config import LoopConfig
from .features import LearningFeatures, for_loop, learning_features
from .ordering import ranking_order
from .portfolio import Portfolio
from .registry import PORTFOLIO, WIDE_PCA_COMPONENTS
from .representation import RepresentationChoice, candidates, choose, load_sets
from .result import LoopResult, eligible_mask
from .scorers import ScoreModel, Scorer, make_scorer, minmax_scale

log = logging.getLogger(__name__)


def check_labels(n: int, labelled, labels, excluded=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate label arrays against N objects.

    Returns:
        ``(labelled int64, labels float32, excluded int64)``, labelled sorted.

    Raises:
        LabelError: rows out of range or repeated, lengths that differ, scores outside 0–5 or NaN.
    """
    labelled = np.asarray(labelled if labelled is not None else [], dtype=np.int64).ravel()
    labels = np.asarray(labels if labels is not None else [], dtype=np.float32).ravel()
    if len(labelled) != len(labels):
        raise LabelError(f"{len(labelled)} labelled rows but {len(labels)} scores")
    if len(labelled) and (labelled.min() < 0 or labelled.max() >= n):
        raise LabelError(f"labelled rows outside 0..{n - 1}: the labels are for another store?")
    if len(np.unique(labelled)) != len(labelled):
        raise LabelError("an object is labelled twice in one fit; pass one score per object")
    if not np.isfinite(labels).all() or (len(labels) and (labels.min() < 0 or labels.max() > 5)):
        bad = labels[~(np.isfinite(labels) & (labels >= 0) & (labels <= 5))][:3]
        raise LabelError(f"scores outside 0–5 ({', '.join(map(str, bad.tolist()))}); scores are 0 to 5")
    order = np.argsort(labelled, kind="stable")
    ex = np.unique(np.asarray(excluded if excluded is not None else [], dtype=np.int64).ravel())
    if len(ex) and (ex.min() < 0 or ex.max() >= n):
        raise LabelError(f"excluded rows outside 0..{n - 1}")
    return labelled[order], labels[order], ex


class ActiveLoop:
    """Active learning over one store.

    Args:
        store: an open embedding store (needs ``pca`` or ``embeddings``).
        config: the options (default :class:`LoopConfig`).
        features: precomputed learning features (default: from the store).
        unit_vectors: normalised embeddings for kNN (e.g. ``SimilarityIndex.vectors``; default:
            computed from the store on the first kNN fit).

    Raises:
        StoreError: the store has no embeddings and no PCA.
        ConfigError: invalid options.
    """

    def __init__(self, store: EmbeddingStore, config: LoopConfig | None = None,
                 features: LearningFeatures | None = None, unit_vectors: np.ndarray | None = None):
        self.store = store
        self.config = config or LoopConfig()
        self.features = features or for_loop(store, self.config)
        self.X = self.features.X
        self.n = len(self.X)
        self._lock = threading.Lock()
        self._unit = unit_vectors
        anomaly_raw = self._store_iforest()
        c = self.config
        # the portfolio is a strategy of its own (active/portfolio.py); a single scorer is just that
        self.portfolio: Portfolio | None = None
        if c.scorer == PORTFOLIO:
            self.portfolio = Portfolio(lambda name: self._make(name, anomaly_raw), c, anomaly_raw)
            self.scorer = self.portfolio.scorer
        else:
            self.scorer = self._make(c.scorer, anomaly_raw)
        self._anomaly_raw = anomaly_raw
        self._sets: dict[str, np.ndarray] | None = None

    def representations(self) -> dict[str, np.ndarray]:
        """The candidate representations (see :mod:`.representation`), loaded on first use."""
        with self._lock:
            if self._sets is None:
                self._sets = load_sets(self.store, self.X, self._wide())
            return self._sets

    def _wide(self) -> np.ndarray | None:
        """The embedding's wide view, a candidate of ``auto`` (``LoopConfig.auto_wide``, ``widen_after``) and the fixed
        ``wide``/``combined-wide`` (the base features when they are that view already); None when
        not asked for or the store has no embeddings."""
        c = self.config
        wanted = c.representation in ("wide", "combined-wide") or (
            c.representation == "auto" and (c.auto_wide or c.widen_after is not None))
        has = getattr(self.store, "has", None)             # stand-ins for a store (benchmarks, tests)
        if not wanted or has is None or not has("embeddings"):
            return None
        if c.pca_components == WIDE_PCA_COMPONENTS and c.feature_scaling == "per-component":
            return self.X
        return learning_features(self.store, c.pca_variance, "per-component", WIDE_PCA_COMPONENTS).X

    def _representation(self, labelled: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, RepresentationChoice]:
        """The features this refit learns on (``config.representation``), and why."""
        want = self.config.representation
        if want == "embedding":
            return self.X, RepresentationChoice("embedding", reason="embedding (fixed)")
        sets = self.representations()
        if want == "auto":
            c = self.config
            sets = candidates(sets, labels, c.interesting_above, c.auto_wide, c.widen_after)
            choice = choose(sets, labelled, labels, c.interesting_above, c.seed, c.widen_after)
            return sets[choice.used], choice
        if want not in sets:
            fix = ("the wide view needs the store's embeddings (and combined-wide its morphology features, "
                   "`galexplorer embed --features all`)" if "wide" in want else
                   "build it with `galexplorer embed --features all`")
            raise StoreError(f"the store has no {want} representation (it has: {', '.join(sets)})", self.store.path,
                             f"{fix}, or use --representation auto")
        return sets[want], RepresentationChoice(want, reason=f"{want} (fixed)")

    def learned_features(self, result: LoopResult) -> np.ndarray:
        """(N, k) the features ``result`` learned on (``result.representation``): where its
        nearest labelled neighbours are found (the window's Why here and ``export --explain``)."""
        if result.representation == "embedding":
            return self.X
        return self.representations().get(result.representation, self.X)

    @property
    def unit_vectors(self) -> np.ndarray | None:
        """The normalised vectors kNN uses, if loaded yet (pass them to a new loop to reuse them)."""
        return self._unit

    # -- helpers --------------------------------------------------------------------------------
    def _make(self, name: str, anomaly_raw: np.ndarray | None) -> Scorer:
        c = self.config
        return make_scorer(name, seed=c.seed, knn_k=c.knn_k, iforest_trees=c.iforest_trees,
                           lof_neighbors=c.lof_neighbors, gp_restarts=c.gp_restarts,
                           gp_precision=c.gp_precision, unit_vectors=self._unit_vectors,
                           anomaly_raw=anomaly_raw, interesting_above=c.interesting_above)

    def restore_portfolio(self, state: dict | None) -> None:
        """Start the portfolio from a saved state (``LoopResult.info["portfolio"]``, e.g. from
        :func:`~galexplorer.active.portfolio.load_state`): used by fits without ``previous``
        (:meth:`Portfolio.restore <galexplorer.active.portfolio.Portfolio.restore>`; nothing to do
        for a single scorer)."""
        if self.portfolio is not None:
            self.portfolio.restore(state)

    @property
    def portfolio_state(self) -> dict | None:
        """The state given to :meth:`restore_portfolio` (None: none, or not the portfolio)."""
        return None if self.portfolio is None else self.portfolio.state

    def _store_iforest(self) -> np.ndarray | None:
        """The store's isolation-forest score, reused instead of fitting another forest."""
        if "anomaly" not in self.store.score_names:
            return None
        attrs = self.store.dataset_attrs("scores/anomaly")
        if attrs.get("method", "isolation_forest") != "isolation_forest":
            return None
        return np.asarray(self.store.score("anomaly"), dtype=np.float32)

    def _unit_vectors(self) -> np.ndarray:
        with self._lock:
            if self._unit is None:
                if self.config.knn_space == "embeddings" and self.store.has("embeddings"):
                    from ..explore.similarity import normalise_rows

                    self._unit = normalise_rows(self.store.embeddings, desc="normalise embeddings")
                else:
                    from ..explore.similarity import normalise_rows

                    self._unit = normalise_rows(self.X)
            return self._unit

    def anomaly_prior(self) -> np.ndarray:
        """(N,) float32 anomaly score scaled to 0–5: the ranking before any label."""
        with self._lock:
            if self._anomaly_raw is None:
                from ..explore.anomaly import isolation_forest_scores

                self._anomaly_raw = isolation_forest_scores(self.X, n_trees=self.config.iforest_trees,
                                                            seed=self.config.seed)
            raw = self._anomaly_raw
        return minmax_scale(raw)

    # -- the loop -------------------------------------------------------------------------------
    def initial_batch(self, excluded: np.ndarray | None = None, k: int | None = None) -> np.ndarray:
        """The first batch: ``k`` objects evenly spaced along the first principal component.

        Returns:
            (k,) int64 rows, deterministic.
        """
        k = self.config.batch_size if k is None else int(k)
        ok = np.ones(self.n, bool)
        if excluded is not None and len(excluded):
            ok[np.asarray(excluded, dtype=np.int64)] = False
        return spanning_batch(self.X, k, np.flatnonzero(ok))

    def fit(self, labelled: np.ndarray, labels: np.ndarray, excluded: np.ndarray | None = None,
            previous: LoopResult | None = None) -> LoopResult:
        """Fit the scorer on the labels, score every object, choose the next batch.

        Args:
            labelled: (n,) int64 rows of labelled objects (unique).
            labels: (n,) their scores, 0–5 (float: consensus medians may be halves).
            excluded: rows excluded from ranking (artefacts): never in a batch, ranked last.
            previous: the last result, as a warm start for the GP's hyper-parameters.

        Returns:
            :class:`LoopResult`. Without labels (or a supervised scorer with none) the mean is
            the anomaly prior and the next batch is :meth:`initial_batch`.

        Raises:
            LabelError: invalid rows or scores.
        """
        t0 = time.perf_counter()
        c = self.config
        labelled, labels, excluded = check_labels(self.n, labelled, labels, excluded)
        n = self.n
        eligible = eligible_mask(n, labelled, excluded)
        candidates = np.flatnonzero(eligible)
        nan = np.full(n, np.nan, np.float32)
        if len(labelled) == 0 and self.scorer.needs_labels:
            log.info("no labels yet: ranking by the anomaly score until there are some")
            mean = self.anomaly_prior()
            batch = self.initial_batch(excluded)
            return LoopResult(scores=Scores(mean, nan.copy(), nan.copy(), "prior:anomaly", "initial", 0),
                              next_batch=batch, order=ranking_order(mean, labelled, labels, excluded),
                              seconds=time.perf_counter() - t0, labelled=labelled, labels=labels, excluded=excluded,
                              best=float("nan"), info={"note": "no labels: anomaly prior"}, config=c)
        X, rep = self._representation(labelled, labels)
        if self.portfolio is not None:
            return self.portfolio.fit(self, X, rep, labelled, labels, excluded, previous, t0)
        same = previous is not None and previous.representation == rep.used
        warm = previous.info if same and previous.scorer == c.scorer else None
        model = self.scorer.fit(X, labelled, labels, warm=warm)
        best = float(labels.max()) if len(labels) else float("nan")
        if not model.has_std and c.acquisition != "ei":     # the default says nothing for these
            log.info("the %s scorer has no uncertainty: the next batch is its highest scores", c.scorer)
        batch, std, acquisition, acq, acq_name = self.choose_batch(model, c.acquisition, best, labelled, eligible,
                                                                  candidates, c.batch_size)
        batch, cold = mix_random(batch, labels, eligible, c.cold_start, c.interesting_above, c.batch_size, c.seed)
        info = {**model.info, "features": dict(self.features.info), "representation": rep.to_dict()}
        if cold is not None:
            info["cold_start"] = cold.to_dict()
            log.info("%s", cold.reason)
        order = ranking_order(model.mean, labelled, labels, excluded)
        checks = ()
        if previous is not None and previous.config.interesting_above == c.interesting_above:
            check = previous.proposed_yield(labelled, labels)
            checks = previous.yield_checks + ((check,) if check is not None else ())
        seconds = time.perf_counter() - t0
        log.info("%s fitted on %d labels in %.2f s", c.scorer, len(labelled), seconds)
        return LoopResult(scores=Scores(model.mean, std, acquisition, c.scorer, acq_name, len(labelled)),
                          next_batch=batch, order=order, seconds=seconds,
                          labelled=labelled, labels=labels, excluded=excluded, best=best,
                          info=info, config=c, yield_checks=checks, _model=model, _acq=acq, _mean_model=model)

    def choose_batch(self, model: ScoreModel, acquisition_name: str, best: float, labelled: np.ndarray,
                     eligible: np.ndarray, candidates: np.ndarray, k: int):
        """The next ``k`` of ``candidates`` for one fitted scorer: by acquisition where the scorer
        has a std (``acquisition_name``; "mean" forces its highest scores), else its highest scores.

        Returns:
            ``(batch, std, acquisition, acq, acq_name)``: std/acquisition (N,) NaN where not computed.
        """
        c = self.config
        n = self.n
        std = np.full(n, np.nan, np.float32)
        acquisition = np.full(n, np.nan, np.float32)
        if model.has_std and acquisition_name != "mean":
            acq = Acquisition(acquisition_name, best=best if np.isfinite(best) else 0.0, xi=c.xi, kappa=c.kappa)
            if c.full_std or model.std_is_exact:
                model.complete_mean()
                std[:] = model.exact_std(np.arange(n))
                a = acq(model.mean, std)
                acquisition[eligible] = a[eligible]
                batch = top_k(acquisition, k, candidates)
            elif model.select is not None:      # the GP's candidate pre-filter (survey scale)
                sel = model.select(acq, k, candidates)
                std[sel.evaluated] = sel.std
                acquisition[sel.evaluated] = sel.acquisition
                batch = sel.batch
            else:
                sel = select_batch(model.mean, model.std_bound, model.exact_std, acq, k, candidates)
                std[sel.evaluated] = sel.std
                acquisition[sel.evaluated] = sel.acquisition
                batch = sel.batch
            acq_name = acquisition_name
            if len(batch) and not np.nanmax(acquisition[batch]) > 1e-9 * max(1.0, abs(best)):
                log.info("the model expects no gain anywhere (are all labels alike?): the next batch "
                         "explores the objects least like any labelled one")
                batch = farthest_batch(self.X, labelled, k, candidates)
                acq_name = "explore"
            return batch, std, acquisition, acq, acq_name
        acquisition[eligible] = model.mean[eligible]
        return top_k(model.mean, k, candidates), std, acquisition, None, "mean"
