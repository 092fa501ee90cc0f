"""The result of one refit of the active-learning loop (:class:`LoopResult`).

Its per-object arrays are a :class:`~galexplorer.store.ranking.Scores`, the type the window's
model (:class:`~galexplorer.active.session.ModelState`) and the saved ranking
(:class:`~galexplorer.store.ranking.Ranking`) hold too; its ``order`` is the ranking rule of
:mod:`.ordering` on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from ..store.ranking import HoldsScores, Scores
from .acquisition import Acquisition
from .cold_start import ColdStart
from .config import LoopConfig
from .ordering import ranking_order
from .remaining import STEP, RemainingEstimate, YieldCheck, _z, estimate_remaining, fit_calibration
from .scorers import ScoreModel


@dataclass
class LoopResult(HoldsScores):
    """One refit of the loop.

    Attributes:
        scores: the :class:`~galexplorer.store.ranking.Scores`; ``mean``, ``std``,
            ``acquisition``, ``scorer``, ``acquisition_name`` and ``n_labels`` read through to it:

            - mean: (N,) float32 the scorer's predicted score.
            - std: (N,) float32 its std; NaN where not computed (see :meth:`complete_std`) or
              where the scorer has none.
            - acquisition: (N,) float32 acquisition value where ``std`` is known (the mean for
              scorers without a std); NaN elsewhere and for labelled or excluded objects.
            - scorer: the scorer's name (``"prior:anomaly"`` when there were no labels).
            - acquisition_name: ``ei``, ``ucb``, ``uncertainty``, ``mean`` (scorers without a
              std), ``explore`` (no gain expected anywhere: farthest from the labels),
              ``initial`` or ``portfolio``.
            - n_labels: labels fitted on.
        next_batch: (k,) int64 unlabelled, not excluded objects with the highest acquisition.
        order: (N,) int64 ranking, best first (see :func:`ranking_order`).
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

    scores: Scores
    next_batch: np.ndarray
    order: np.ndarray
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
    def cold_start(self) -> ColdStart | None:
        """Which picks of ``next_batch`` were drawn at random because no label is a find yet
        (:mod:`.cold_start`), or None."""
        d = self.info.get("cold_start")
        return None if d is None else ColdStart.from_dict(d)

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
            acq[~eligible_mask(len(self.mean), self.labelled, self.excluded)[known]] = np.nan
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
            acq[~eligible_mask(len(self.mean), self.labelled, self.excluded)[missing]] = np.nan
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


def eligible_mask(n: int, labelled: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """(N,) bool: neither labelled nor excluded (what a batch may hold)."""
    ok = np.ones(n, bool)
    ok[labelled] = False
    ok[excluded] = False
    return ok
