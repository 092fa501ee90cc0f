"""Simulate the labelling loop with a catalogue column as the oracle (``galexplorer simulate``).

The loop is the one a person runs in the explorer: the spanning first batch, then fit → the
next ``batch`` objects by acquisition → the oracle scores them, until ``budget`` labels. The
final ranking (labelled objects by their label, the rest by the scorer) is compared with a
random ordering (mean over ``seeds`` random orders) and with the anomaly-score ordering, by
recall@k, precision@k and the rank-weighted score (see :mod:`.metrics`). The curve of
interesting objects found against position in the list is saved as CSV and PNG (as Fig. 8 of
Mohale & Lochner 2024).
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..label_scale import MAX_SCORE
from ..store import EmbeddingStore
from ..store.atomic import atomic_output
from .loop import ActiveLoop, LoopConfig, LoopResult
from .metrics import found_curve, precision_at_k, rank_weighted_score, recall_at_k
from .oracle import ColumnOracle
from .ordering import ranking_order
from .remaining import RemainingEstimate, interesting_probability
from .result import eligible_mask

log = logging.getLogger(__name__)

CURVE_MAX_ROWS = 100_000


@dataclass
class SimulateConfig:
    """Options of :func:`simulate`.

    Attributes:
        truth: the catalogue column the oracle answers from.
        scale: the column's range maps onto 0..scale (≤ 5) before rounding.
        interesting_above: an object is interesting when its oracle score is ≥ this.
        budget: labels the oracle gives.
        batch: labels between refits (the first batch spans PC 1).
        seeds: random orderings averaged for the baseline.
        loop: the loop options (scorer, acquisition, xi, ...); its batch size is ``batch``.
        refine_every: after every this many labels, refine the encoder on the labels so far and
            go on in the re-embedded store (``simulate --refine-every``; 0: never). Needs the
            ``refine`` function given to :func:`simulate`.
        remaining: estimate the interesting objects left after every refit (needs the std of
            every object: N·n² flops per refit for the GP, seconds at 10^6 objects).
    """

    truth: str
    scale: float = MAX_SCORE
    interesting_above: float = 3.0
    budget: int = 200
    batch: int = 10
    seeds: int = 1
    loop: LoopConfig = field(default_factory=LoopConfig)
    refine_every: int = 0
    remaining: bool = True


@dataclass(frozen=True)
class RemainingCheck:
    """One refit's estimate of the interesting objects left, beside the truth the oracle knows.

    Attributes:
        labels: labels given at this refit.
        found: interesting objects among them.
        estimate: the posterior's :class:`RemainingEstimate`.
        true: interesting objects among the unlabelled (from the truth column).
        uncalibrated: the expected count from the Gaussian posterior's own probabilities
            (``Σ Φ(z)``, no calibration), for comparison.
    """

    labels: int
    found: int
    estimate: RemainingEstimate
    true: int
    uncalibrated: float = float("nan")

    @property
    def error(self) -> float:
        """Relative error ``(expected − true) / true`` (NaN when none is left)."""
        return (self.estimate.expected - self.true) / self.true if self.true else float("nan")

    @property
    def covered(self) -> bool:
        return self.estimate.low <= self.true <= self.estimate.high


#: The goal of issue #23: the estimate within ±30% of the truth after this many labels.
REMAINING_GOAL_LABELS, REMAINING_GOAL_ERROR = 100, 0.30


@dataclass
class OrderingScores:
    """Metrics of one ordering."""

    name: str
    recall: dict[int, float]
    precision: dict[int, float]
    rws: dict[int, float]
    curve: np.ndarray


@dataclass
class SimulationReport:
    """Result of :func:`simulate`.

    Attributes:
        loop, random, anomaly: metrics of the final loop ranking, of random orders (mean), and
            of the anomaly-score order.
        n_objects, n_interesting, n_labels: sizes.
        ks: the k of recall@k and precision@k; rws_ns: the N of RWS(N).
        history: per refit, (labels so far, interesting found among them).
        result: the final :class:`LoopResult`.
        label_order: (n_labels,) int64 rows in the order the oracle labelled them.
        refit_seconds: wall time of every refit.
        remaining: per refit, the estimate of the interesting objects left and the truth
            (empty for scorers without an uncertainty).
    """

    config: SimulateConfig
    loop: OrderingScores
    random: OrderingScores
    anomaly: OrderingScores
    n_objects: int
    n_interesting: int
    n_labels: int
    ks: list[int]
    rws_ns: list[int]
    history: list[tuple[int, int]]
    result: LoopResult
    seconds: float
    outputs: list[Path] = field(default_factory=list)
    label_order: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    refit_seconds: list[float] = field(default_factory=list)
    refines: list[tuple[int, float]] = field(default_factory=list)   # (labels, seconds) of each refine
    refined: str = "encoder"      # what each refine trained: the encoder, or a small head on own embeddings
    remaining: list[RemainingCheck] = field(default_factory=list)

    def remaining_table(self) -> list[str]:
        """Lines: the remaining-count estimate against the truth at every refit."""
        if not self.config.remaining:
            return []
        if not self.remaining:
            return [f"(no remaining-count estimate: the {self.config.loop.scorer} scorer has no uncertainty)"]
        lvl = f"{100 * self.remaining[0].estimate.level:.0f}%"
        lines = [f"interesting objects left (score >= {self.config.interesting_above:g}) estimated from the "
                 f"posterior after each refit, against the truth:",
                 f"{'labels':>7s}{'found':>7s}{'estimate':>10s}{lvl + ' interval':>16s}{'true':>7s}{'error':>8s}"
                 f"{'next batch':>11s}{'uncalibrated':>13s}"]
        for r in self.remaining:
            e = r.estimate
            err = f"{100 * r.error:+.0f}%" if np.isfinite(r.error) else "-"
            lines.append(f"{r.labels:7d}{r.found:7d}{e.expected:10.1f}{f'{e.low}-{e.high}':>16s}{r.true:7d}"
                         f"{err:>8s}{e.next_yield:11.2f}{r.uncalibrated:13.1f}" + ("  stop" if e.stop else ""))
        after = [r for r in self.remaining if r.labels >= REMAINING_GOAL_LABELS and np.isfinite(r.error)]
        if after:
            worst = max(abs(r.error) for r in after)
            ok = worst <= REMAINING_GOAL_ERROR
            lines.append(f"after {REMAINING_GOAL_LABELS} labels the largest error is {100 * worst:.0f}% "
                         f"({'within' if ok else 'outside'} the ±{100 * REMAINING_GOAL_ERROR:.0f}% goal); "
                         f"the interval covered the truth at {sum(r.covered for r in self.remaining)} of "
                         f"{len(self.remaining)} refits")
        return lines

    def summary(self) -> str:
        c = self.config
        lines = [f"simulated {self.n_labels} labels ({c.loop.scorer}, {c.loop.acquisition}, xi={c.loop.xi}, "
                 f"batches of {c.batch}) on {self.n_objects} objects; {self.n_interesting} interesting "
                 f"({c.truth} score >= {c.interesting_above:g}, {100 * self.n_interesting / self.n_objects:.1f}%) "
                 f"in {self.seconds:.1f} s",
                 f"{'':14s}" + "".join(f"{'recall@' + str(k):>12s}" for k in self.ks)
                 + "".join(f"{'prec@' + str(k):>11s}" for k in self.ks)
                 + "".join(f"{'RWS(' + str(n) + ')':>10s}" for n in self.rws_ns)]
        for s in (self.loop, self.random, self.anomaly):
            lines.append(f"{s.name:14s}" + "".join(f"{s.recall[k]:12.3f}" for k in self.ks)
                         + "".join(f"{s.precision[k]:11.3f}" for k in self.ks)
                         + "".join(f"{s.rws[n]:10.3f}" for n in self.rws_ns))
        k = max(k for k in self.ks if k <= self.n_objects)
        base = self.random.curve[k - 1]
        ratio = self.loop.curve[k - 1] / base if base > 0 else float("inf")
        lines.append(f"in the first {k}: the loop found {int(self.loop.curve[k - 1])}, random "
                     f"{base:.1f} ({ratio:.1f}x), anomaly order {int(self.anomaly.curve[k - 1])}")
        if self.refines:
            what = "the encoder" if self.refined == "encoder" else "a small head on your embeddings (not an encoder)"
            lines.append(f"refined {what} {len(self.refines)} times (at " + ", ".join(
                f"{k} labels: {t:.0f} s" for k, t in self.refines) + ")")
        lines += self.remaining_table()
        lines += [f"wrote {p}" for p in self.outputs]
        return "\n".join(lines)


def _remaining_check(result: LoopResult, interesting: np.ndarray) -> RemainingCheck | None:
    """The refit's estimate beside the truth (None for a scorer without an uncertainty)."""
    m = result._model
    if m is None or not m.has_std or result.n_labels == 0:
        return None
    est = result.remaining()
    free = eligible_mask(len(interesting), result.labelled, result.excluded)
    raw = interesting_probability(result.mean[free], result.std[free], est.threshold).sum()
    return RemainingCheck(result.n_labels, int(interesting[result.labelled].sum()), est,
                          int(interesting[free].sum()), float(raw))


def _scores(name: str, order: np.ndarray, interesting: np.ndarray, ks, rws_ns) -> OrderingScores:
    return OrderingScores(name, {k: recall_at_k(order, interesting, k) for k in ks},
                          {k: precision_at_k(order, interesting, k) for k in ks},
                          {n: rank_weighted_score(order, interesting, n) for n in rws_ns},
                          found_curve(order, interesting).astype(np.float64))


def anomaly_order(prior: np.ndarray) -> np.ndarray:
    """The anomaly baseline's order: the ranking rule (:func:`~galexplorer.active.ordering.ranking_order`)
    on the (N,) anomaly prior with no labels, that is by decreasing prior, ties by row. (N,) int64."""
    return ranking_order(prior, np.empty(0, np.int64), np.empty(0, np.float32))


def _random_scores(interesting: np.ndarray, ks, rws_ns, seeds: int, seed0: int) -> OrderingScores:
    n = len(interesting)
    recs, precs, rwss, curves = [], [], [], []
    for s in range(seeds):
        order = np.random.default_rng(seed0 + 1000 + s).permutation(n)
        one = _scores("random", order, interesting, ks, rws_ns)
        recs.append(one.recall)
        precs.append(one.precision)
        rwss.append(one.rws)
        curves.append(one.curve)
    mean = lambda ds: {k: float(np.mean([d[k] for d in ds])) for k in ds[0]}  # noqa: E731
    return OrderingScores(f"random (x{seeds})", mean(recs), mean(precs), mean(rwss), np.mean(curves, axis=0))


def simulate(store: EmbeddingStore, config: SimulateConfig, features=None, refine=None) -> SimulationReport:
    """Run the loop with a column as the oracle and score the final ranking.

    Args:
        store: an open embedding store with the truth column among its catalogue columns.
        config: the options.
        features: the loop's learning features, when already computed (as ``ActiveLoop``).
        refine: ``refine(store, rows, labels) -> EmbeddingStore`` (open, same objects in the same
            order), called after every ``config.refine_every`` labels (see
            :func:`galexplorer.refining.store_refiner`); the loop goes on in the store it returns.

    Returns:
        :class:`SimulationReport` (nothing written; see :func:`write_curve`).

    Raises:
        StoreError: no such column, or no embeddings/PCA.
        ConfigError: a non-numeric or constant column, budget larger than N, no interesting
            objects, or invalid options.
    """
    t0 = time.perf_counter()
    c = config
    n = store.n
    if c.budget < 1 or c.batch < 1 or c.seeds < 1:
        raise ConfigError("budget, batch and seeds must be >= 1")
    if c.budget > n:
        raise ConfigError(f"--budget {c.budget} is larger than the {n} objects in the store",
                          store.path, f"use --budget {n} or less")
    oracle = ColumnOracle(store.column(c.truth), c.scale, c.truth)
    interesting = oracle.interesting(c.interesting_above)
    n_int = int(interesting.sum())
    if n_int == 0:
        raise ConfigError(f"no object has an oracle score >= {c.interesting_above:g} from column {c.truth!r} "
                          f"(scores {int(oracle.scores.min())}..{int(oracle.scores.max())})",
                          hint="lower --interesting-above")
    loop_cfg = LoopConfig.from_dict({**c.loop.to_dict(), "batch_size": c.batch,
                                     "interesting_above": c.interesting_above})
    if c.refine_every and refine is None:
        raise ConfigError("refine_every needs a refine function (galexplorer.refining.store_refiner)")
    refiner = _Refiner(refine, c.refine_every, c.interesting_above, c.budget)
    run = _label_until_budget(store, c, ActiveLoop(store, loop_cfg, features=features), oracle, interesting,
                              refiner)
    result = run.result
    # the final ranking is scored on the exact mean of every object (the GP's pre-filter, at
    # survey scale, leaves the low-rank mean outside the candidates it kept)
    result.complete_mean()
    ks = sorted({k for k in (10, 50, 100, c.budget) if k <= n})
    rws_ns = sorted({min(c.budget, n), min(n_int, n)})
    loop_scores = _scores("loop", result.order, interesting, ks, rws_ns)
    random_scores = _random_scores(interesting, ks, rws_ns, c.seeds, c.loop.seed)
    anomaly = (ActiveLoop(store, loop_cfg, features=features) if refiner.stores else run.loop).anomaly_prior()
    anomaly_scores = _scores("anomaly", anomaly_order(anomaly), interesting, ks, rws_ns)
    for r in refiner.stores:
        r.close()
    return SimulationReport(c, loop_scores, random_scores, anomaly_scores, n, n_int, len(run.labelled), ks,
                            rws_ns, run.history, result, time.perf_counter() - t0,
                            label_order=run.labelled.copy(), refit_seconds=run.refit_seconds,
                            refines=refiner.times, refined=getattr(refine, "kind", None) or "encoder",
                            remaining=run.remaining)


@dataclass
class _Refiner:
    """``simulate --refine-every``: once the labels reach the next multiple of ``every``, refine
    the encoder on them and go on in the re-embedded store."""

    refine: Callable[[EmbeddingStore, np.ndarray, np.ndarray], EmbeddingStore] | None
    every: int
    interesting_above: float
    budget: int
    stores: list[EmbeddingStore] = field(default_factory=list)  # the refined stores, oldest first
    times: list[tuple[int, float]] = field(default_factory=list)  # (labels, seconds) of each refine
    next_at: int | None = None

    def __post_init__(self) -> None:
        self.next_at = self.every or None

    def __call__(self, store: EmbeddingStore, labelled: np.ndarray, labels: np.ndarray) -> EmbeddingStore | None:
        """The refined store when a refine is due and done now, else None.

        Raises:
            ConfigError: the refined store holds another number of objects.
        """
        if self.next_at is None or len(labelled) < self.next_at or len(labelled) >= self.budget:
            return None
        finds = int((labels >= self.interesting_above).sum())
        if not 0 < finds < len(labels):
            # refining learns finds against the rest: with one side only, wait for the next batch
            log.info("simulate: refine at %d labels waits for labels on both sides of %g (%d finds so far)",
                     len(labelled), self.interesting_above, finds)
            return None
        t_refine = time.perf_counter()
        new = self.refine(self.stores[-1] if self.stores else store, labelled, labels)
        self.times.append((len(labelled), time.perf_counter() - t_refine))
        if new.n != store.n:
            new.close()
            raise ConfigError(f"the refined store holds {new.n} objects, not {store.n}", new.path)
        self.stores.append(new)
        self.next_at = (len(labelled) // self.every + 1) * self.every   # the next multiple
        return new


@dataclass
class _LabelRun:
    """What the oracle's labelling gave: the last loop and fit, the labels and the per-refit records."""

    loop: ActiveLoop
    result: LoopResult
    labelled: np.ndarray
    history: list[tuple[int, int]]
    refit_seconds: list[float]
    remaining: list[RemainingCheck]


def _label_until_budget(store: EmbeddingStore, c: SimulateConfig, loop: ActiveLoop, oracle: ColumnOracle,
                        interesting: np.ndarray, refiner: _Refiner) -> _LabelRun:
    """The explorer's loop with the oracle as the person: the first batch, then fit → next batch →
    oracle, until ``c.budget`` labels (or nothing left to propose)."""
    loop_cfg = loop.config
    labelled = loop.initial_batch()[: c.budget]
    labels = oracle(labelled)
    history = [(len(labelled), int(interesting[labelled].sum()))]
    result = None
    refit_seconds = []
    remaining = []
    while True:
        new = refiner(store, labelled, labels)
        if new is not None:
            loop = ActiveLoop(new, loop_cfg)
            result = None
        result = loop.fit(labelled, labels, previous=result)
        refit_seconds.append(result.seconds)
        check = _remaining_check(result, interesting) if c.remaining else None
        if check is not None:
            remaining.append(check)
            log.info("simulate: %d labels, estimate %.1f left [%d-%d], true %d", check.labels,
                     check.estimate.expected, check.estimate.low, check.estimate.high, check.true)
        if len(labelled) >= c.budget:
            break
        nxt = result.next_batch[: c.budget - len(labelled)]
        if len(nxt) == 0:
            break
        labelled = np.concatenate([labelled, nxt])
        labels = np.concatenate([labels, oracle(nxt)])
        history.append((len(labelled), int(interesting[labelled].sum())))
        log.debug("simulate: %d labels, %d interesting found", *history[-1])
    return _LabelRun(loop, result, labelled, history, refit_seconds, remaining)


FOUND_AT = (50, 100, 200)


@dataclass
class CompareRow:
    """One scorer in :func:`compare`, over the seeds.

    Attributes:
        scorer: its name (``default`` marks the default scorer).
        recall, rws: mean over seeds of recall@k and RWS(n) of the final ranking.
        found: labels -> interesting objects among the first that many labels, one per seed
            (None beyond the budget).
        curve: (n_labels,) float64 mean over seeds of the interesting found against labels.
        refit_median: median seconds of one refit (all refits of all seeds).
    """

    scorer: str
    default: bool
    recall: dict[int, float]
    rws: dict[int, float]
    found: dict[int, list[int] | None]
    curve: np.ndarray
    refit_median: float
    seed_curves: np.ndarray | None = None

    def found_at(self, m: int) -> list[int]:
        """Interesting objects among the first ``m`` labels (at most the budget), one per seed."""
        m = min(int(m), self.seed_curves.shape[1])
        return [int(c[m - 1]) for c in self.seed_curves]


@dataclass
class CompareReport:
    """Result of :func:`compare`: one row per scorer plus the random labelling's expectation."""

    config: SimulateConfig
    rows: list[CompareRow]
    n_objects: int
    n_interesting: int
    ks: list[int]
    rws_ns: list[int]
    seeds: int
    seconds: float
    outputs: list[Path] = field(default_factory=list)

    def row(self, scorer: str) -> CompareRow:
        return next(r for r in self.rows if r.scorer == scorer)

    def summary(self) -> str:
        c = self.config
        frac = self.n_interesting / self.n_objects
        head = (f"{'scorer':14s}" + "".join(f"{'recall@' + str(k):>11s}" for k in self.ks)
                + "".join(f"{'RWS(' + str(n) + ')':>10s}" for n in self.rws_ns)
                + "".join(f"{'found@' + str(m):>14s}" for m in FOUND_AT) + f"{'refit s':>9s}")
        lines = [f"compared {len(self.rows)} scorers on {self.n_objects} objects, {self.n_interesting} interesting "
                 f"({c.truth} score >= {c.interesting_above:g}, {100 * frac:.2f}%), budget {c.budget}, "
                 f"batches of {c.batch}, {self.seeds} seed(s); found@N = interesting among the first N labels, "
                 f"mean [min-max] over seeds; * = the default; {self.seconds:.0f} s", head]
        for r in self.rows:
            cells = []
            for m in FOUND_AT:
                f = r.found[m]
                cells.append(f"{'-':>14s}" if f is None else
                             f"{np.mean(f):6.1f} [{min(f)}-{max(f)}]".rjust(14))
            lines.append(f"{r.scorer + (' *' if r.default else ''):14s}" + "".join(f"{r.recall[k]:11.4f}" for k in self.ks)
                         + "".join(f"{r.rws[n]:10.4f}" for n in self.rws_ns) + "".join(cells)
                         + f"{r.refit_median:9.2f}")
        lines.append(f"{'random':14s}" + "".join(f"{min(k, self.n_objects) * frac / self.n_interesting:11.4f}"
                                                 for k in self.ks)
                     + "".join(f"{frac:10.4f}" for _ in self.rws_ns)
                     + "".join(f"{'-' if m > c.budget else format(m * frac, '.1f'):>14s}" for m in FOUND_AT))
        lines += [f"wrote {p}" for p in self.outputs]
        return "\n".join(lines)


def compare(store: EmbeddingStore, config: SimulateConfig, scorers=None, seeds: int = 3) -> CompareReport:
    """Simulate every scorer (default: the registry's) on the same store, budget and seeds.

    Seed ``s`` is the loop's seed (forests, the portfolio's draws); the first batch is the same
    for all. The learning features are computed once.

    Args:
        store: an open embedding store with the truth column.
        config: the options (its ``loop.scorer`` is ignored; the other loop options apply to all).
        scorers: names to run (default: every one of :data:`~galexplorer.active.registry.SCORERS`).
        seeds: seeds per scorer.

    Raises:
        ConfigError: an unknown scorer, seeds < 1, or what :func:`simulate` raises.
    """
    from .features import for_loop
    from .registry import DEFAULT_SCORER, SCORERS

    t0 = time.perf_counter()
    names = list(SCORERS if scorers is None else scorers)
    unknown = [s for s in names if s not in SCORERS]
    if unknown:
        raise ConfigError(f"unknown scorer(s) {', '.join(unknown)}; choose from {', '.join(SCORERS)}")
    if seeds < 1:
        raise ConfigError("--seeds must be >= 1")
    features = for_loop(store, config.loop)
    rows = []
    n_int = n_obj = 0
    ks, rws_ns = [], []
    for name in names:
        reps = []
        for seed in range(seeds):
            loop_cfg = LoopConfig.from_dict({**config.loop.to_dict(), "scorer": name, "seed": seed})
            cfg = SimulateConfig(**{**config.__dict__, "loop": loop_cfg, "seeds": 1})
            rep = simulate(store, cfg, features=features)
            reps.append(rep)
            log.info("compare: %s seed %d: %d interesting in %d labels (%.1f s)", name, seed,
                     rep.history[-1][1], rep.n_labels, rep.seconds)
        first = reps[0]
        n_int, n_obj, ks, rws_ns = first.n_interesting, first.n_objects, first.ks, first.rws_ns
        interesting = ColumnOracle(store.column(config.truth), config.scale, config.truth).interesting(
            config.interesting_above)
        curves = np.array([np.cumsum(interesting[r.label_order]) for r in reps], dtype=np.float64)
        found = {m: ([int(cv[m - 1]) for cv in curves] if m <= curves.shape[1] else None) for m in FOUND_AT}
        rows.append(CompareRow(name, name == DEFAULT_SCORER,
                               {k: float(np.mean([r.loop.recall[k] for r in reps])) for k in ks},
                               {n: float(np.mean([r.loop.rws[n] for r in reps])) for n in rws_ns},
                               found, curves.mean(axis=0),
                               float(np.median([t for r in reps for t in r.refit_seconds])), curves))
    return CompareReport(config, rows, n_obj, n_int, ks, rws_ns, seeds, time.perf_counter() - t0)


def write_compare(report: CompareReport, path: str | Path) -> list[Path]:
    """Write the found-vs-labels curves of every scorer as CSV (labels, one column per scorer:
    mean over seeds) and a PNG of them on one plot beside it. Both atomically.

    Returns:
        The two paths.
    """
    path = Path(path)
    m = len(report.rows[0].curve)
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["labels"] + [r.scorer for r in report.rows])
            w.writerows([i + 1] + [round(float(r.curve[i]), 4) for r in report.rows] for i in range(m))
    png = path.with_suffix(".png")
    with atomic_output(png) as tmp:
        _plot_compare(report, tmp)
    report.outputs = [path, png]
    return [path, png]


def _plot_compare(report: CompareReport, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4), dpi=120)
    ax = fig.add_subplot()
    m = len(report.rows[0].curve)
    x = np.arange(1, m + 1)
    frac = report.n_interesting / report.n_objects
    ax.plot(x, np.minimum(x, report.n_interesting), color="0.7", ls=":", label="ideal")
    for r in report.rows:
        ax.plot(x, r.curve, lw=2.2 if r.default else 1.2, label=r.scorer + (" (default)" if r.default else ""))
    ax.plot(x, x * frac, color="k", ls="--", label="random")
    ax.set_xlabel("labels given")
    ax.set_ylabel("interesting objects found")
    ax.set_title(f"{report.config.truth} >= {report.config.interesting_above:g}: {report.n_interesting} of "
                 f"{report.n_objects}, mean of {report.seeds} seed(s)", fontsize=9)
    ax.set_xlim(1, m)
    ax.set_ylim(0, max(1.0, max(float(r.curve.max()) for r in report.rows)) * 1.05)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, format="png")


def write_curve(report: SimulationReport, path: str | Path) -> list[Path]:
    """Write the curve CSV and a PNG beside it.

    Columns: ``position, found_by_loop, found_random, found_anomaly`` for positions 1 to N (at
    most :data:`CURVE_MAX_ROWS`), then :data:`REMAINING_COLUMNS`, filled on the rows whose
    position is the number of labels given at a refit (empty elsewhere, and for scorers without
    an uncertainty). Both files are written atomically.

    Returns:
        The two paths.
    """
    path = Path(path)
    m = min(report.n_objects, CURVE_MAX_ROWS)
    if m < report.n_objects:
        log.info("the curve keeps the first %d of %d positions", m, report.n_objects)
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["position", "found_by_loop", "found_random", "found_anomaly", *REMAINING_COLUMNS])
            rnd = report.random.curve[:m]
            at = {r.labels: r for r in report.remaining}
            for i, row in enumerate(zip(report.loop.curve[:m].astype(np.int64).tolist(), np.round(rnd, 6).tolist(),
                                        report.anomaly.curve[:m].astype(np.int64).tolist()), start=1):
                w.writerow([i, *row, *_remaining_cells(at.get(i))])
    png = path.with_suffix(".png")
    with atomic_output(png) as tmp:
        _plot(report, m, tmp)
    report.outputs = [path, png]
    return [path, png]


#: The curve CSV's columns of the remaining-count estimate (see :func:`write_curve`).
REMAINING_COLUMNS = ("found_by_labelling", "remaining_estimate", "remaining_low", "remaining_high",
                     "remaining_true", "remaining_rel_error", "next_batch_yield", "stop_hint",
                     "remaining_uncalibrated")


def _remaining_cells(r: RemainingCheck | None) -> list:
    if r is None:
        return [""] * len(REMAINING_COLUMNS)
    e = r.estimate
    err = round(r.error, 4) if np.isfinite(r.error) else ""
    return [r.found, round(e.expected, 3), e.low, e.high, r.true, err, round(e.next_yield, 4), int(e.stop),
            round(r.uncalibrated, 3)]


def _plot(report: SimulationReport, m: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    panels = 2 if report.remaining else 1
    fig = Figure(figsize=(6.4 * panels, 4.4), dpi=120)
    ax = fig.add_subplot(1, panels, 1)
    if report.remaining:
        _plot_remaining(report, fig.add_subplot(1, 2, 2))
    x = np.arange(1, m + 1)
    ax.plot(x, np.minimum(x, report.n_interesting), color="0.7", ls=":", label="ideal")
    ax.plot(x, report.loop.curve[:m], lw=2, label=f"{report.config.loop.scorer} after {report.n_labels} labels")
    ax.plot(x, report.anomaly.curve[:m], label="anomaly score")
    ax.plot(x, report.random.curve[:m], color="k", ls="--", label=report.random.name)
    ax.axvline(report.n_labels, color="0.5", lw=0.8)
    ax.set_xlabel("position in the ranked list")
    ax.set_ylabel("interesting objects found")
    ax.set_title(f"{report.config.truth} score >= {report.config.interesting_above:g}: "
                 f"{report.n_interesting} of {report.n_objects}")
    ax.set_xlim(1, m)
    ax.set_ylim(0, report.n_interesting * 1.05)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, format="png")


def _plot_remaining(report: SimulationReport, ax) -> None:
    """Found and estimated-remaining (with its interval) against labels given, and the truth."""
    r = report.remaining
    x = np.array([c.labels for c in r])
    est = np.array([c.estimate.expected for c in r])
    ax.plot(x, [c.found for c in r], marker="o", ms=3, lw=2, label="found (labelled interesting)")
    ax.plot(x, est, marker="o", ms=3, color="C3", label="estimated remaining")
    ax.fill_between(x, [c.estimate.low for c in r], [c.estimate.high for c in r], color="C3", alpha=0.2,
                    label=f"{100 * r[0].estimate.level:.0f}% interval")
    ax.plot(x, [c.true for c in r], color="k", ls="--", label="true remaining")
    stops = [c.labels for c in r if c.estimate.stop]
    if stops:
        ax.axvline(stops[0], color="0.5", lw=0.8, ls=":", label="stopping hint")
    ax.set_xlabel("labels given")
    ax.set_ylabel("interesting objects")
    ax.set_title("found, and left among the unlabelled", fontsize=10)
    ax.set_ylim(0, report.n_interesting * 1.1)
    ax.legend(loc="upper right", fontsize=8)
