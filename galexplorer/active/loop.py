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
features computed in ``__init__`` and the arrays it is given, and writes nothing back (the
portfolio's history continues from ``previous``, or from a state given once to
:meth:`ActiveLoop.restore_portfolio`).

What a GP refit computes (honestly): the hyper-parameters, the predictive **mean of every
object**, and the exact predictive **std only where the acquisition needs it** — for the
objects whose acquisition upper bound could still enter the next batch. ``result.std`` is NaN
elsewhere; :meth:`LoopResult.complete_std` fills it in (N·n² flops: seconds at 10^6 objects).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, LabelError, StoreError
from ..store import EmbeddingStore
from .acquisition import (
    Acquisition,
    farthest_batch,
    select_batch,
    spanning_batch,
    top_k,
)
from .config import LoopConfig
from .features import LearningFeatures, learning_features
from .ordering import ranking_order
from .portfolio import ARM_SCORER, ARMS, POOL, Bandit, ranking_arm
from .registry import PORTFOLIO
from .remaining import STEP, RemainingEstimate, YieldCheck, _z, estimate_remaining, fit_calibration
from .representation import RepresentationChoice, choose, load_sets
from .scorers import IsolationForestScorer, NeighbourScorer, ScoreModel, Scorer, make_scorer, minmax_scale

log = logging.getLogger(__name__)


@dataclass
class LoopResult:
    """One refit of the loop.

    Attributes:
        mean: (N,) float32 the scorer's predicted score.
        std: (N,) float32 its std; NaN where not computed (see :meth:`complete_std`) or where
            the scorer has none.
        acquisition: (N,) float32 acquisition value where ``std`` is known (the mean for
            scorers without a std); NaN elsewhere and for labelled or excluded objects.
        next_batch: (k,) int64 unlabelled, not excluded objects with the highest acquisition.
        order: (N,) int64 ranking, best first (see :func:`ranking_order`).
        scorer: the scorer's name (``"prior:anomaly"`` when there were no labels).
        acquisition_name: ``ei``, ``ucb``, ``uncertainty``, ``mean`` (scorers without a std),
            ``explore`` (no gain expected anywhere: farthest from the labels) or ``initial``.
        n_labels: labels fitted on.
        seconds: wall time of the fit.
        labelled, labels: (n,) int64 rows and float32 scores fitted on.
        excluded: (m,) int64 rows excluded from ranking.
        best: the best label (EI's reference), NaN without labels.
        info: the scorer's fitted parameters (JSON-able); ``info["representation"]`` says which
            representation it learned on and why (:class:`.representation.RepresentationChoice`).
        config: the :class:`LoopConfig`.
        yield_checks: for every batch a fit of this chain (``fit(previous=...)``) proposed and
            the labels now include, its calibrated expected yield beside the hits it brought
            (:class:`~galexplorer.active.remaining.YieldCheck`, oldest first): what
            :meth:`remaining` corrects its calibration by.
    """

    mean: np.ndarray
    std: np.ndarray
    acquisition: np.ndarray
    next_batch: np.ndarray
    order: np.ndarray
    scorer: str
    acquisition_name: str
    n_labels: int
    seconds: float
    labelled: np.ndarray
    labels: np.ndarray
    excluded: np.ndarray
    best: float
    info: dict = field(default_factory=dict)
    config: LoopConfig = field(default_factory=LoopConfig)
    yield_checks: tuple[YieldCheck, ...] = ()
    _model: ScoreModel | None = field(default=None, repr=False)
    _acq: Acquisition | None = field(default=None, repr=False)
    _mean_model: ScoreModel | None = field(default=None, repr=False)

    @property
    def representation(self) -> str:
        """The representation the scorer learned on (``embedding`` without labels)."""
        return str(self.info.get("representation", {}).get("used", "embedding"))

    @property
    def mean_complete(self) -> bool:
        """Whether ``mean`` is the exact mean of every object (False after the GP's candidate
        pre-filter: see :meth:`complete_mean`)."""
        m = self._mean_model or self._model
        return m is None or m.mean_is_exact

    def complete_mean(self) -> LoopResult:
        """Replace the low-rank mean the GP's pre-filter left for most objects
        (:mod:`galexplorer.active.prefilter`) by the exact one, in one streamed pass, and rank
        again; acquisitions already computed are updated. Returns self."""
        m = self._mean_model or self._model
        if m is None or m.mean_is_exact:
            return self
        m.complete_mean()
        if m.mean is not self.mean:
            self.mean[:] = m.mean
        self.order = ranking_order(self.mean, self.labelled, self.labels, self.excluded)
        known = np.flatnonzero(~np.isnan(self.std)) if self._model is m and self._acq is not None else []
        if len(known):
            acq = self._acq(self.mean[known], self.std[known])
            acq[~_eligible(len(self.mean), self.labelled, self.excluded)[known]] = np.nan
            self.acquisition[known] = acq
        return self

    @property
    def portfolio(self) -> dict | None:
        """The portfolio's state after this refit — ``shares`` and ``slots`` per arm, posterior
        ``hit_rate``, ``ranking_arm``, the proposal ``history`` — or None for a single scorer."""
        return self.info.get("portfolio")

    @property
    def std_complete(self) -> bool:
        """Whether ``std`` holds the exact value for every object (where the scorer has one)."""
        return self._model is None or not self._model.has_std or not np.isnan(self.std).any()

    def complete_std(self) -> LoopResult:
        """Compute the exact std (and acquisition) of every object that lacks it, in place.

        For the GP this is N·n² flops (a few seconds at 10^6 objects and 500 labels), with a
        progress bar. The mean is completed first (:meth:`complete_mean`). Returns self.
        """
        self.complete_mean()
        m = self._model
        if m is None or not m.has_std:
            return self
        missing = np.flatnonzero(np.isnan(self.std))
        if len(missing):
            self.std[missing] = m.exact_std(missing)
            acq = self._acq(self.mean[missing], self.std[missing])
            acq[~_eligible(len(self.mean), self.labelled, self.excluded)[missing]] = np.nan
            self.acquisition[missing] = acq
        return self

    def remaining(self, threshold: float | None = None, calibrate: bool = True, **options) -> RemainingEstimate:
        """How many interesting objects are left among the unlabelled ones, from this fit's
        posterior (:func:`~galexplorer.active.remaining.estimate_remaining`); completes the std
        of every object first (:meth:`complete_std`: N·n² flops for the GP).

        Args:
            threshold: interesting when the score is ``≥`` this (default: the config's
                ``interesting_above``).
            calibrate: map the posterior's ``z`` to probabilities by a calibration fitted on the
                labelled objects' leave-one-out predictions (:func:`fit_calibration`; the GP
                scorers), not by the Gaussian's ``Φ(z)``, and correct it by the hits of the last
                proposed batches against their calibrated expected yield (:attr:`yield_checks`).
                Without it the estimate is several times too high on the benchmark domains
                (docs/active-learning.md).
            options: ``level``, ``stop_below``, ``step``, ``std_scale``, ``seed`` of :func:`estimate_remaining`.

        Raises:
            ConfigError: the scorer has no uncertainty (neighbour, iforest, lof, aad, pine, the
                portfolio) or there are no labels yet.
        """
        m = self._model
        if m is None or not m.has_std or self.n_labels == 0:
            raise ConfigError(f"the remaining-count estimate needs a fitted scorer with an uncertainty "
                              f"(gp, gp-anomaly, knn), not {self.scorer}")
        self.complete_std()
        t = self.config.interesting_above if threshold is None else float(threshold)
        cal, checks = None, ()
        if calibrate and m.loo is not None:
            loo_mean, loo_std = m.loo()
            cal = fit_calibration(loo_mean, loo_std, self.labels, t, options.get("step", STEP))
            if t == self.config.interesting_above and options.get("step", STEP) == STEP:
                checks = self.yield_checks          # measured at the config's threshold and grid
        return estimate_remaining(self.mean, self.std, self.labelled, self.labels, t, excluded=self.excluded,
                                  next_batch=self.next_batch, batch_size=self.config.batch_size,
                                  calibration=cal, yield_checks=checks, **options)

    def proposed_yield(self, labelled: np.ndarray, labels: np.ndarray) -> YieldCheck | None:
        """The check of this fit's proposed batch once (part of) it is labelled: the calibrated
        expected number of interesting objects (score ≥ the config's ``interesting_above``)
        among the rows of :attr:`next_batch` that ``labelled`` now holds, and how many of their
        ``labels`` are. None when none of it is labelled or the scorer has no leave-one-out
        calibration (only the GP scorers have one)."""
        m = self._model
        if m is None or m.loo is None or self.n_labels == 0 or not len(self.next_batch):
            return None
        got = np.isin(labelled, self.next_batch)
        rows = np.asarray(labelled)[got]
        if not len(rows):
            return None
        std = self.std[rows].astype(np.float64)
        if np.isnan(std).any():                  # an explore batch: chosen without the std
            std = np.asarray(m.exact_std(rows), dtype=np.float64)
        t = self.config.interesting_above
        cal = fit_calibration(*m.loo(), self.labels, t)
        expected = float(cal.probability(_z(self.mean[rows], std, t, STEP, 1.0)).sum())
        return YieldCheck(self.n_labels, expected, int(np.count_nonzero(np.asarray(labels)[got] >= t)))


def _eligible(n: int, labelled: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    ok = np.ones(n, bool)
    ok[labelled] = False
    ok[excluded] = False
    return ok


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
        self.features = features or learning_features(store, self.config.pca_variance, self.config.feature_scaling)
        self.X = self.features.X
        self.n = len(self.X)
        self._lock = threading.Lock()
        self._unit = unit_vectors
        anomaly_raw = self._store_iforest()
        c = self.config
        self.arms: dict[str, Scorer] = {}
        self.portfolio_state: dict | None = None
        if c.scorer == PORTFOLIO:
            iforest = IsolationForestScorer(n_trees=c.iforest_trees, seed=c.seed, raw=anomaly_raw)
            for arm in ARMS:
                if arm == "anomaly":
                    self.arms[arm] = iforest
                elif arm == "neighbour":
                    self.arms[arm] = NeighbourScorer(iforest, seed=c.seed)
                else:
                    self.arms[arm] = self._make(ARM_SCORER[arm], anomaly_raw)
            self.bandit = Bandit(ARMS)
            self.scorer = self.arms["gp"]    # what "needs labels" means for the portfolio
        else:
            self.scorer = self._make(c.scorer, anomaly_raw)
        self._anomaly_raw = anomaly_raw
        self._sets: dict[str, np.ndarray] | None = None

    def representations(self) -> dict[str, np.ndarray]:
        """The candidate representations (see :mod:`.representation`), loaded on first use."""
        with self._lock:
            if self._sets is None:
                self._sets = load_sets(self.store, self.X)
            return self._sets

    def _representation(self, labelled: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, RepresentationChoice]:
        """The features this refit learns on (``config.representation``), and why."""
        want = self.config.representation
        if want == "embedding":
            return self.X, RepresentationChoice("embedding", reason="embedding (fixed)")
        sets = self.representations()
        if want == "auto":
            choice = choose(sets, labelled, labels, self.config.interesting_above, self.config.seed)
            return sets[choice.used], choice
        if want not in sets:
            raise StoreError(f"the store has no {want} representation (it has: {', '.join(sets)})", self.store.path,
                             "build it with `galexplorer embed --features all`, or use --representation auto")
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
        :func:`~galexplorer.active.portfolio.load_state`): used by fits without ``previous``."""
        self.portfolio_state = state

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
        eligible = _eligible(n, labelled, excluded)
        candidates = np.flatnonzero(eligible)
        nan = np.full(n, np.nan, np.float32)
        if len(labelled) == 0 and self.scorer.needs_labels:
            log.info("no labels yet: ranking by the anomaly score until there are some")
            mean = self.anomaly_prior()
            batch = self.initial_batch(excluded)
            return LoopResult(mean=mean, std=nan.copy(), acquisition=nan.copy(), next_batch=batch,
                              order=ranking_order(mean, labelled, labels, excluded), scorer="prior:anomaly",
                              acquisition_name="initial", n_labels=0, seconds=time.perf_counter() - t0,
                              labelled=labelled, labels=labels, excluded=excluded, best=float("nan"),
                              info={"note": "no labels: anomaly prior"}, config=c)
        X, rep = self._representation(labelled, labels)
        if c.scorer == PORTFOLIO:
            return self._fit_portfolio(labelled, labels, excluded, previous, t0, X, rep)
        same = previous is not None and previous.representation == rep.used
        warm = previous.info if same and previous.scorer == c.scorer else None
        model = self.scorer.fit(X, labelled, labels, warm=warm)
        best = float(labels.max()) if len(labels) else float("nan")
        if not model.has_std and c.acquisition != "ei":     # the default says nothing for these
            log.info("the %s scorer has no uncertainty: the next batch is its highest scores", c.scorer)
        batch, std, acquisition, acq, acq_name = self._choose(model, c.acquisition, best, labelled, eligible,
                                                             candidates, c.batch_size)
        order = ranking_order(model.mean, labelled, labels, excluded)
        checks = ()
        if previous is not None and previous.config.interesting_above == c.interesting_above:
            check = previous.proposed_yield(labelled, labels)
            checks = previous.yield_checks + ((check,) if check is not None else ())
        seconds = time.perf_counter() - t0
        log.info("%s fitted on %d labels in %.2f s", c.scorer, len(labelled), seconds)
        return LoopResult(mean=model.mean, std=std, acquisition=acquisition, next_batch=batch, order=order,
                          scorer=c.scorer, acquisition_name=acq_name, n_labels=len(labelled), seconds=seconds,
                          labelled=labelled, labels=labels, excluded=excluded, best=best,
                          info={**model.info, "representation": rep.to_dict()},
                          config=c, yield_checks=checks, _model=model, _acq=acq, _mean_model=model)

    def _choose(self, model: ScoreModel, acquisition_name: str, best: float, labelled: np.ndarray,
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

    def _neighbour_exact(self, model: ScoreModel, pool: np.ndarray, labelled, labels, free: np.ndarray,
                         k: int, X: np.ndarray) -> ScoreModel:
        """NeighbourScore never exceeds the anomaly score: the pool's top ``k`` are the top ``k`` of
        all objects when the k-th of them is at least the anomaly score of every object outside
        the pool; otherwise score everything."""
        anomaly = self.anomaly_prior()
        outside = np.ones(self.n, bool)
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

    def _fit_portfolio(self, labelled: np.ndarray, labels: np.ndarray, excluded: np.ndarray,
                       previous: LoopResult | None, t0: float, X: np.ndarray,
                       rep: RepresentationChoice) -> LoopResult:
        """The portfolio's refit (see :mod:`.portfolio`): Thompson shares, each arm with slots
        fitted and proposing its best not yet taken, the ranking from the arm with the best
        posterior hit rate."""
        c = self.config
        n = self.n
        state = previous.info.get("portfolio") if previous is not None and previous.scorer == PORTFOLIO else None
        state = state if state is not None else self.portfolio_state   # restored, never written by a fit
        history = list(state["history"]) if state else []
        refit = 1 + max((int(h["refit"]) for h in history), default=0)
        post = self.bandit.posteriors(history, labelled, labels, c.interesting_above)
        rng = np.random.default_rng([int(c.seed), len(labelled)])
        shares = self.bandit.shares(post, rng)
        slots = self.bandit.allocate(shares, c.batch_size, rng)
        rank_arm = ranking_arm(post)
        eligible = _eligible(n, labelled, excluded)
        free = eligible.copy()
        best = float(labels.max())
        same = previous is not None and previous.representation == rep.used
        warm_all = (state or {}).get("arm_info", {}) if same or previous is None else {}
        models: dict[str, ScoreModel] = {}
        seconds: dict[str, float] = {}
        batch_parts, proposals = [], []
        acquisition = np.full(n, np.nan, np.float32)
        rank_std = None
        pool = None
        for arm in ARMS:
            if slots[arm] == 0 and arm != rank_arm:
                continue
            ta = time.perf_counter()
            if arm in ("neighbour", "aad") and arm != rank_arm and n > POOL:
                # only proposing: score the POOL most anomalous objects (see the module's notes)
                if pool is None:
                    pool = top_k(self.anomaly_prior(), POOL)
                model = self.arms[arm].fit(X, labelled, labels, warm=warm_all.get(arm), rows=pool)
                if arm == "neighbour":
                    model = self._neighbour_exact(model, pool, labelled, labels, free, slots[arm], X)
            else:
                model = self.arms[arm].fit(X, labelled, labels, warm=warm_all.get(arm))
            models[arm] = model
            acq_name = c.acquisition if arm == "gp" else "mean"
            if slots[arm]:
                part, std, acq_values, _, _ = self._choose(model, acq_name, best, labelled, free,
                                                           np.flatnonzero(free), slots[arm])
                free[part] = False
                acquisition[part] = acq_values[part]
                batch_parts.append(part)
                proposals.append({"refit": refit, "arm": arm, "rows": part.tolist()})
                if arm == rank_arm:
                    rank_std = std
            seconds[arm] = time.perf_counter() - ta
        batch = np.concatenate(batch_parts) if batch_parts else np.empty(0, np.int64)
        model = models[rank_arm]
        std = rank_std if rank_std is not None else np.full(n, np.nan, np.float32)
        order = ranking_order(model.mean, labelled, labels, excluded)
        info = {"portfolio": {
            "history": history + proposals,
            "shares": shares, "slots": slots, "ranking_arm": rank_arm,
            "hit_rate": {a: p.mean for a, p in post.items()},
            "hits": {a: p.hits for a, p in post.items()}, "tries": {a: p.tries for a, p in post.items()},
            "arm_info": {a: m.info for a, m in models.items()}, "arm_seconds": seconds},
            "representation": rep.to_dict()}
        total = time.perf_counter() - t0
        log.info("portfolio fitted on %d labels in %.2f s: slots %s, ranking by %s (%s)", len(labelled), total,
                 ", ".join(f"{a} {k}" for a, k in slots.items() if k), rank_arm,
                 ", ".join(f"{a} {t:.2f} s" for a, t in seconds.items()))
        return LoopResult(mean=model.mean, std=std, acquisition=acquisition, next_batch=batch, order=order,
                          scorer=PORTFOLIO, acquisition_name="portfolio", n_labels=len(labelled), seconds=total,
                          labelled=labelled, labels=labels, excluded=excluded, best=best, info=info, config=c,
                          _mean_model=model)
