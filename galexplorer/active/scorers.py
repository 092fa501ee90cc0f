"""Scorers: fit on the labelled objects, score every object. One interface for all of them.

==============  ==========================================================  =========  =====
name            what it does                                                uses       std
==============  ==========================================================  =========  =====
``gp``          GP regression of the 0–5 labels (:mod:`.gp`)                 labels     yes
``gp-anomaly``  the GP with prior mean ``a + b·anomaly`` (``b ≥ 0``; a, b      both       yes
                fitted with the hyper-parameters by marginal likelihood)
``knn``         kNN label transfer (Gondhalekar et al. 2024): Σ sᵢ·labelᵢ /  labels     yes
                Σ sᵢ over the n most cosine-similar labelled objects
``neighbour``   Astronomaly's NeighbourScore: the anomaly score re-weighted  both       no
                by a regression of the labels and the distance to the
                nearest labelled object
``iforest``     isolation forest (200 trees), min–max scaled to 0–5          neither    no
``lof``         local outlier factor (50 neighbours), min–max scaled to 0–5  neither    no
``aad``         active anomaly detection (coniferest ``AADForest``, Das et    labels     no
                al. 2017): isolation-forest leaf weights re-fitted so that
                labelled anomalies score high and nominals low
``pine``        coniferest ``PineForest`` (Korolev et al. 2024): an          labels     no
                isolation forest whose trees are filtered by the labels
==============  ==========================================================  =========  =====

``aad`` and ``pine`` see the 0–5 labels as anomaly / nominal / unknown: a score ≥
``interesting_above`` (3 by default) is an anomaly, a score below ``interesting_above − 1`` is
nominal, and the scores in between (and every unlabelled object) are unknown.

The names, their order and the one-line descriptions the explorer's menu shows are
:data:`~galexplorer.active.registry.SCORER_INFO` — the one registry that the CLI choices, the explorer, ``simulate`` and the
ranking read.

A scorer's :meth:`Scorer.fit` returns a :class:`ScoreModel`: the mean for every object, and
for scorers with an uncertainty an upper bound on the std of every object plus a function for
the exact std of any rows (the GP's exact std is expensive, so it is computed only where
needed, see :func:`galexplorer.active.acquisition.select_batch`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..explore.cluster import active_client
from ..label_scale import MAX_SCORE
from . import cluster_scoring
from .acquisition import Acquisition, BatchSelection, select_batch
from .gp import GaussianProcessRegressor, GPHyperparameters, run_chunks
from .prefilter import PREFILTER_MIN_ROWS, low_rank_bound, select_batch_prefiltered
from .registry import DEFAULT_SCORER, SCORER_INFO, SCORERS  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

SCALE = float(MAX_SCORE)


def minmax_scale(x: np.ndarray, top: float = SCALE) -> np.ndarray:
    """Linear map of ``x`` onto 0..top (a constant array maps to 0), (N,) float32."""
    x = np.asarray(x, dtype=np.float64)
    lo, hi = float(np.min(x)), float(np.max(x))
    if not hi > lo:
        return np.zeros(len(x), np.float32)
    return ((x - lo) * (top / (hi - lo))).astype(np.float32)


@dataclass
class ScoreModel:
    """What a fitted scorer knows about every object.

    Attributes:
        mean: (N,) float32 predicted score (0–5 scale for every scorer but the GP, whose mean
            may leave it slightly). Above :data:`~.prefilter.PREFILTER_MIN_ROWS` objects the
            GP's is the low-rank mean, exact only where ``mean_error`` is 0.
        std_bound: (N,) float32 upper bound on the std, or None for scorers without one.
        exact_std: ``f(rows int64) -> float32`` exact std of those rows, or None.
        info: fitted parameters (JSON-able), e.g. the GP's hyper-parameters.
        std_is_exact: ``std_bound`` is the exact std.
        mean_error: (N,) float32 bound on ``|exact mean − mean|`` (None: the mean is exact).
        exact_mean: ``f() -> (N,)`` the exact mean of every object (a streamed pass), or None.
        select: ``f(acquisition, k, candidates) -> BatchSelection``: the scorer's own exact
            batch selection (the GP's pre-filter), or None for
            :func:`~galexplorer.active.acquisition.select_batch`.
        loo: ``f() -> (mean, std)`` leave-one-out predictions of the labelled objects (in the
            order of the labels fitted on), or None; the GP's (see
            :meth:`~.gp.GaussianProcessRegressor.loo_predictions`).
        split: ``f(rows) -> (prior, prior_std, weights, residuals)``: the GP's prediction of
            those rows split into its prior mean (m,), the prior's std, the (m, n) weights of
            the labels and the (n,) labels less their prior mean (see
            :meth:`~.gp.GaussianProcessRegressor.label_weights`), or None.
    """

    mean: np.ndarray
    std_bound: np.ndarray | None = None
    exact_std: Callable[[np.ndarray], np.ndarray] | None = None
    info: dict = field(default_factory=dict)
    std_is_exact: bool = False
    mean_error: np.ndarray | None = None
    exact_mean: Callable[[], np.ndarray] | None = None
    select: Callable[..., BatchSelection] | None = None
    loo: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    split: Callable[[np.ndarray], tuple[np.ndarray, float, np.ndarray, np.ndarray]] | None = None

    @property
    def has_std(self) -> bool:
        return self.exact_std is not None

    @property
    def mean_is_exact(self) -> bool:
        """Whether :attr:`mean` is the exact mean of every object (False after the GP's
        pre-filter, until :meth:`complete_mean`)."""
        return self.mean_error is None

    def complete_mean(self) -> ScoreModel:
        """Replace a low-rank mean by the exact one, in place (a streamed pass; see
        :mod:`galexplorer.active.prefilter`). Returns self."""
        if self.mean_error is not None and self.exact_mean is not None:
            self.mean[:] = self.exact_mean()
            self.mean_error = None
        return self


class Scorer:
    """Base class. Subclasses set ``name`` and ``needs_labels`` and implement :meth:`fit`."""

    name = ""
    needs_labels = True

    def fit(self, X: np.ndarray, labelled: np.ndarray, labels: np.ndarray,
            warm: dict | None = None) -> ScoreModel:
        """Fit on labels, score all objects.

        Args:
            X: (N, k) float32 standardised learning features.
            labelled: (n,) int64 rows of the labelled objects.
            labels: (n,) float32 their scores 0–5.
            warm: the ``info`` of a previous fit (a warm start where the scorer has one).

        Returns:
            :class:`ScoreModel`.
        """
        raise NotImplementedError


class GPScorer(Scorer):
    """Gaussian-process regression (Matern-3/2 + white noise, amplitude; ML-II hyper-parameters).

    Args:
        anomaly: with a scorer providing the raw anomaly score, the prior mean is
            ``a + b·anomaly`` (anomaly min–max scaled to 0–5; see :mod:`.gp`): before any high
            label EI favours anomalous objects, after some it follows the labels. None: plain GP.
        prefilter_min_rows: from this many objects on, the batch is chosen through the
            candidate pre-filter (:mod:`.prefilter`) and the mean of the objects it rules out is
            the low-rank one (exact on request: :meth:`ScoreModel.complete_mean`).
    """

    name = "gp"

    def __init__(self, n_restarts: int = 0, seed: int = 0, precision: str = "auto", tolerance: float = 1e-4,
                 anomaly: _CachedUnsupervised | None = None, prefilter_min_rows: int = PREFILTER_MIN_ROWS):
        self.n_restarts, self.seed, self.precision, self.tolerance = n_restarts, seed, precision, tolerance
        self.prefilter_min_rows = int(prefilter_min_rows)
        self.anomaly = anomaly
        if anomaly is not None:
            self.name = "gp-anomaly"

    def fit(self, X, labelled, labels, warm=None) -> ScoreModel:
        gp = GaussianProcessRegressor(normalize_y=True, n_restarts=self.n_restarts, seed=self.seed,
                                      precision=self.precision, tolerance=self.tolerance)
        start = None
        if warm and "hyper" in warm:
            start = GPHyperparameters(**warm["hyper"])
        h = None if self.anomaly is None else self._covariate(X)
        gp.fit(X[labelled], labels, hyper=start, mean_covariate=None if h is None else h[labelled])
        info = {"hyper": gp.hyper.as_dict(), "log_marginal_likelihood": gp.log_marginal_likelihood_value,
                "precision": gp.mode, "float32_error": gp.float32_error, "fit_seconds": gp.fit_seconds}
        if h is not None:
            a, b = gp.mean_coef            # normalised units -> label units: prior mean = a + b·anomaly
            info["prior_mean"] = {"a": gp.y_mean + gp.y_std * a, "b": gp.y_std * b}

        def exact_std(rows):
            client = active_client()         # --cluster: the long passes in blocks on the workers
            if client is not None and len(rows) >= cluster_scoring.CLUSTER_MIN_ROWS:
                return cluster_scoring.predict_std_on_cluster(client, gp, X, rows,
                                                              block_rows=cluster_scoring.BLOCK_ROWS)
            return gp.predict_std(X, rows, desc="GP std" if len(rows) > 100_000 else None)

        def exact_mean(std_bound: bool = False):
            """The exact mean of every object (and the std's upper bound with ``std_bound``)."""
            client = active_client()
            if client is not None and not std_bound and len(X) >= cluster_scoring.CLUSTER_MIN_ROWS:
                return cluster_scoring.predict_mean_on_cluster(client, gp, X, h,
                                                               block_rows=cluster_scoring.BLOCK_ROWS)
            return gp.predict_mean(X, desc="GP mean" if len(X) > 200_000 else None, std_bound=std_bound,
                                   mean_covariate=h)

        if len(X) >= self.prefilter_min_rows:
            model = self._prefiltered(gp, X, h, info, exact_std, exact_mean)
        else:
            mean, bound = exact_mean(std_bound=True)
            model = ScoreModel(mean=mean, std_bound=bound, exact_std=exact_std, info=info)
        model.loo = gp.loo_predictions

        def split(rows):
            rows = np.asarray(rows, dtype=np.int64)
            return (gp.prior_mean(len(rows), None if h is None else h[rows]), gp.prior_std,
                    gp.label_weights(X, rows), gp.residual_labels)

        model.split = split
        return model

    def _covariate(self, X: np.ndarray) -> np.ndarray:
        """The anomaly score scaled to 0–5, kept between refits (a pass over N saved each time)."""
        raw = self.anomaly.raw_scores(X)
        cached = getattr(self, "_scaled", None)
        if cached is None or cached[0] is not raw:
            cached = (raw, minmax_scale(raw))
            self._scaled = cached
        return cached[1]

    def _prefiltered(self, gp, X, h, info, exact_std, exact_mean) -> ScoreModel:
        """The low-rank mean and bounds of every object; the batch by the exact GP on the few
        candidates that could win (:mod:`.prefilter`)."""
        lr = low_rank_bound(gp, X, mean_covariate=h, desc="GP low-rank pass" if len(X) > 2_000_000 else None)
        info = {**info, "prefilter": {"rank": lr.rank, "seconds": lr.seconds}}
        model = ScoreModel(mean=lr.mean, std_bound=lr.std_bound, exact_std=exact_std, info=info,
                           mean_error=lr.mean_error, exact_mean=exact_mean)

        def select(acquisition: Acquisition, k: int, candidates: np.ndarray) -> BatchSelection:
            sel = select_batch_prefiltered(gp, X, lr, acquisition, k, candidates, mean_covariate=h)
            if sel is None:      # the bounds rule out too few: the exact mean of every object
                mean, bound = exact_mean(std_bound=True)
                model.mean[:] = mean
                model.mean_error = None
                model.std_bound = bound
                model.info["prefilter"].update(kept=None, candidates=int(len(candidates)), fallback="exact path")
                return select_batch(model.mean, bound, exact_std, acquisition, k, candidates)
            if model.mean_error is not None:     # the kept candidates' mean is now exact
                model.mean[sel.kept] = sel.kept_mean
                model.mean_error[sel.kept] = 0.0
            model.info["prefilter"].update(kept=int(len(sel.kept)), candidates=int(len(candidates)),
                                           max_mean_error=float(np.max(lr.mean_error)))
            return sel

        model.select = select
        return model


class KNNTransferScorer(Scorer):
    """kNN label transfer (Gondhalekar et al. 2024): ``Σ sᵢ·labelᵢ / Σ sᵢ`` over the ``k`` labelled
    objects most cosine-similar to each object (``sᵢ`` their cosine similarities, clipped at a
    small positive floor so that dissimilar neighbours weigh almost nothing).

    The std is the similarity-weighted spread of those k labels (0 when they agree).

    Args:
        unit_vectors: (N, D) float32 rows of unit length (e.g. ``SimilarityIndex.vectors``); None
            uses the rows of ``X`` given to :meth:`fit`, normalised.
        k: neighbours (4, as the paper).
    """

    name = "knn"
    FLOOR = 1e-3
    CHUNK_BYTES = 32 * 2**20   # per chunk of rows: similarities (float32) and their order (int64)

    def __init__(self, unit_vectors: np.ndarray | Callable[[], np.ndarray] | None = None, k: int = 4):
        if int(k) < 1:
            raise ConfigError(f"knn k must be >= 1, got {k}")
        self._vectors = unit_vectors
        self.k = int(k)

    def _unit(self, X: np.ndarray) -> np.ndarray:
        v = self._vectors
        if callable(v):
            v = v()
        if v is None:
            from ..explore.similarity import normalise_rows

            v = normalise_rows(X)
        return v

    def fit(self, X, labelled, labels, warm=None) -> ScoreModel:
        V = self._unit(X)
        n = len(V)
        L = np.ascontiguousarray(V[labelled].T)
        lab = np.asarray(labels, dtype=np.float32)
        k = min(self.k, len(labelled))
        mean = np.empty(n, np.float32)
        std = np.empty(n, np.float32)

        def work(a: int, b: int) -> None:
            S = V[a:b] @ L                                          # (rows, n) cosine similarities
            if k < S.shape[1]:
                top = np.argpartition(S, S.shape[1] - k, axis=1)[:, -k:]
            else:
                top = np.broadcast_to(np.arange(S.shape[1]), S.shape)
            s = np.take_along_axis(S, top, axis=1)
            np.maximum(s, np.float32(self.FLOOR), out=s)
            y = lab[top]
            w = s.sum(axis=1)
            m = (s * y).sum(axis=1) / w
            mean[a:b] = m
            std[a:b] = np.sqrt(np.maximum((s * (y - m[:, None]) ** 2).sum(axis=1) / w, 0))

        # a chunk holds (rows, n_labelled) similarities and their argpartition: rows shrink as
        # labels grow, so a long session's working set stays bounded (8192 rows at 10^4
        # labels held ~1 GB per thread)
        rows = int(np.clip(self.CHUNK_BYTES // (16 * max(L.shape[1], 1)), 256, 8192))
        run_chunks(n, rows, work, n_threads=_threads(), desc="kNN transfer" if n > 200_000 else None)
        return ScoreModel(mean=mean, std_bound=std, exact_std=lambda rows: std[rows], info={"k": k},
                          std_is_exact=True)


def _threads() -> int:
    from .gp import default_threads

    return default_threads()


class _CachedUnsupervised(Scorer):
    """An unsupervised score computed once per features array (the labels do not change it)."""

    needs_labels = False

    def __init__(self, raw: np.ndarray | None = None):
        self._raw = raw
        self._lock = threading.Lock()

    def _compute(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw_scores(self, X: np.ndarray) -> np.ndarray:
        """(N,) float32 anomaly score, higher = more anomalous (cached)."""
        with self._lock:
            if self._raw is None or len(self._raw) != len(X):
                self._raw = self._compute(X)
            return self._raw

    def fit(self, X, labelled, labels, warm=None) -> ScoreModel:
        return ScoreModel(mean=minmax_scale(self.raw_scores(X)), info={})


class IsolationForestScorer(_CachedUnsupervised):
    """Isolation forest (Astronomaly default 200 trees), min–max scaled to 0–5."""

    name = "iforest"

    def __init__(self, n_trees: int = 200, seed: int = 0, raw: np.ndarray | None = None):
        super().__init__(raw)
        self.n_trees, self.seed = n_trees, seed

    def _compute(self, X):
        from ..explore.anomaly import isolation_forest_scores

        return isolation_forest_scores(X, n_trees=self.n_trees, seed=self.seed)


class LOFScorer(_CachedUnsupervised):
    """Local outlier factor (Astronomaly default 50 neighbours), min–max scaled to 0–5."""

    name = "lof"

    def __init__(self, n_neighbors: int = 50, raw: np.ndarray | None = None):
        super().__init__(raw)
        self.n_neighbors = n_neighbors

    def _compute(self, X):
        from ..explore.anomaly import lof_scores

        return lof_scores(X, n_neighbors=self.n_neighbors)


class _ConiferestScorer(Scorer):
    """Base of the coniferest scorers: 0–5 labels -> anomaly / nominal / unknown, forest kept
    between fits (built once per features array), score = ``−score_samples`` min–max scaled to 0–5."""

    def __init__(self, interesting_above: float = 3.0, n_trees: int = 100, seed: int = 0):
        self.interesting_above, self.n_trees, self.seed = float(interesting_above), int(n_trees), int(seed)
        self._forest = None
        self._key: tuple | None = None
        self._lock = threading.Lock()

    def _make(self):
        raise NotImplementedError

    def _refit_data(self, X: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The ``data`` argument of coniferest's ``fit_known`` on a refit."""
        return X

    def known_labels(self, labels: np.ndarray) -> np.ndarray:
        """(n,) int: coniferest's ``Label.ANOMALY`` (−1) for scores ≥ ``interesting_above``,
        ``Label.REGULAR`` (1) below ``interesting_above − 1``, ``Label.UNKNOWN`` (0) between."""
        from coniferest.label import Label

        labels = np.asarray(labels, dtype=np.float64)
        out = np.full(len(labels), int(Label.UNKNOWN), np.int64)
        out[labels >= self.interesting_above] = int(Label.ANOMALY)
        out[labels < self.interesting_above - 1.0] = int(Label.REGULAR)
        return out

    def fit(self, X, labelled, labels, warm=None, rows: np.ndarray | None = None) -> ScoreModel:
        """As :meth:`Scorer.fit`; ``rows``: score only these (the others get 0)."""
        t0 = time.perf_counter()
        known = self.known_labels(labels)
        keep = known != 0
        with self._lock:
            key = (id(X), X.shape)
            if self._forest is None or self._key != key:
                self._forest = self._make()
                self._key = key
                self._forest.fit_known(X)          # builds the trees (no labels)
            if keep.any():
                known_rows = labelled[keep]
                self._forest.fit_known(self._refit_data(X, known_rows), X[known_rows], known[keep])
            raw = -np.asarray(self._forest.score_samples(X if rows is None else X[rows]), dtype=np.float64)
        if rows is None:
            mean = minmax_scale(raw)
        else:
            mean = np.zeros(len(X), np.float32)
            mean[rows] = minmax_scale(raw)
        return ScoreModel(mean=mean,
                          info={"n_trees": self.n_trees, "anomalies": int((known < 0).sum()),
                                "nominals": int((known > 0).sum()), "fit_seconds": time.perf_counter() - t0})


class AADScorer(_ConiferestScorer):
    """Active anomaly detection (Das et al. 2017) with coniferest's ``AADForest``."""

    name = "aad"

    def _make(self):
        from coniferest.aadforest import AADForest

        return AADForest(n_trees=self.n_trees, random_seed=self.seed, n_jobs=_threads())

    def _refit_data(self, X, rows):
        # the trees exist: AADForest uses ``data`` only for its score quantile, which the default
        # budget ("auto", no prior influence) ignores; the labelled rows save a pass over all N
        return X[rows]


class PineScorer(_ConiferestScorer):
    """coniferest's ``PineForest`` (Korolev et al. 2024): trees filtered by the labels."""

    name = "pine"

    def _make(self):
        from coniferest.pineforest import PineForest

        return PineForest(n_trees=self.n_trees, random_seed=self.seed, n_jobs=_threads())


def neighbour_score(anomaly: np.ndarray, user_score: np.ndarray, distance: np.ndarray,
                    min_score: float = 0.1, max_score: float = SCALE, alpha: float = 1.0) -> np.ndarray:
    """Astronomaly's NeighbourScore function, vectorised::

        f_u = min_score + 0.85 · user_score / max_score
        d0  = distance / mean(distance)
        score = anomaly · tanh(exp(alpha · d0) − 1 + arctanh(f_u))

    At a labelled object (distance 0) the score is ``anomaly · f_u``: the user's judgement;
    far from every label it tends to the anomaly score.

    Args:
        anomaly: (N,) anomaly score on 0–5.
        user_score: (N,) regression of the labels, 0–5.
        distance: (N,) distance to the nearest labelled object.

    Returns:
        (N,) float32.
    """
    u = np.clip(np.asarray(user_score, dtype=np.float64), 0.0, max_score)
    f_u = min_score + 0.85 * u / max_score
    d = np.asarray(distance, dtype=np.float64)
    mean_d = float(d.mean()) if len(d) else 0.0
    d0 = d / mean_d if mean_d > 0 else np.zeros_like(d)
    with np.errstate(over="ignore"):
        pen = np.exp(np.minimum(alpha * d0, 50.0))
    return (np.asarray(anomaly, dtype=np.float64) * np.tanh(pen - 1.0 + np.arctanh(f_u))).astype(np.float32)


class NeighbourScorer(Scorer):
    """Astronomaly's NeighbourScore: anomaly score × a factor learned from the labels.

    The user's scores are regressed over the features with a random forest (100 trees, as
    Astronomaly), the nearest labelled object of every object is found with a k-d tree, and
    :func:`neighbour_score` combines them with the (isolation-forest) anomaly score.

    Args:
        anomaly: a scorer providing the raw anomaly score (default: isolation forest, 200 trees).
        n_trees: trees of the regression forest.
        seed: seed of the forest.
    """

    name = "neighbour"

    def __init__(self, anomaly: _CachedUnsupervised | None = None, n_trees: int = 100, seed: int = 0):
        self.anomaly = anomaly or IsolationForestScorer(seed=seed)
        self.n_trees, self.seed = n_trees, seed

    def fit(self, X, labelled, labels, warm=None, rows: np.ndarray | None = None) -> ScoreModel:
        """As :meth:`Scorer.fit`; ``rows``: the regression forest predicts only these, and only
        they are scored (the others get 0; the score is never above the anomaly score, which is
        what lets a caller check that no other object could have beaten them)."""
        from scipy.spatial import cKDTree
        from sklearn.ensemble import RandomForestRegressor

        anomaly = minmax_scale(self.anomaly.raw_scores(X))
        forest = RandomForestRegressor(n_estimators=self.n_trees, random_state=self.seed, n_jobs=_threads())
        forest.fit(X[labelled], labels)
        sel = np.arange(len(X)) if rows is None else np.asarray(rows, dtype=np.int64)
        user = np.zeros(len(X), np.float32)
        for a in range(0, len(sel), 65536):
            user[sel[a:a + 65536]] = forest.predict(X[sel[a:a + 65536]])
        dist, _ = cKDTree(X[labelled]).query(X, k=1, workers=-1)    # all: their mean scales the distance
        mean = neighbour_score(anomaly, user, dist)
        if rows is not None:
            keep = np.zeros(len(X), bool)
            keep[sel] = True
            mean[~keep] = 0.0
        return ScoreModel(mean=mean, info={"n_trees": self.n_trees})


def make_scorer(name: str, *, seed: int = 0, knn_k: int = 4, iforest_trees: int = 200,
                lof_neighbors: int = 50, gp_restarts: int = 0, gp_precision: str = "auto",
                unit_vectors=None, anomaly_raw: np.ndarray | None = None,
                interesting_above: float = 3.0) -> Scorer:
    """A scorer by name (one of :data:`SCORERS`).

    Raises:
        ConfigError: an unknown name.
    """
    if name == "gp":
        return GPScorer(n_restarts=gp_restarts, seed=seed, precision=gp_precision)
    if name == "gp-anomaly":
        return GPScorer(n_restarts=gp_restarts, seed=seed, precision=gp_precision,
                        anomaly=IsolationForestScorer(n_trees=iforest_trees, seed=seed, raw=anomaly_raw))
    if name == "knn":
        return KNNTransferScorer(unit_vectors, k=knn_k)
    if name == "iforest":
        return IsolationForestScorer(n_trees=iforest_trees, seed=seed, raw=anomaly_raw)
    if name == "lof":
        return LOFScorer(n_neighbors=lof_neighbors)
    if name == "neighbour":
        return NeighbourScorer(IsolationForestScorer(n_trees=iforest_trees, seed=seed, raw=anomaly_raw), seed=seed)
    if name == "aad":
        return AADScorer(interesting_above, seed=seed)
    if name == "pine":
        return PineScorer(interesting_above, seed=seed)
    raise ConfigError(f"unknown scorer {name!r}; choose one of {', '.join(SCORERS)}")
