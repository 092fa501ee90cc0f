"""The one registry of scorer and acquisition names (no heavy imports: the CLI reads it before
anything heavy loads).

Every place that lists scorers or acquisitions reads it: the CLI's ``--scorer`` choices (``rank``,
``simulate``), the explorer's scorer menu, ``simulate --compare``, the ranking and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ScorerSpec:
    """What the rest of the program needs to know of a scorer, before anything heavy loads.

    Attributes:
        name: the name on the command line, in configs and in saved rankings.
        description: the explorer's menu text.
        short: a short form for status lines ("GP on 40 labels"); None shows the description.
        skips_disputed: fit without objects whose labellers disagree (kNN transfer copies a
            neighbour's label, and a disputed median is no label to copy); every fit, in the
            window or on the command line, goes through
            :meth:`~galexplorer.active.snapshot.LabelSnapshot.fit_inputs`, which reads this.
    """

    name: str
    description: str
    short: str | None = None
    skips_disputed: bool = False


#: Every scorer, in menu order.
SCORER_SPECS: dict[str, ScorerSpec] = {s.name: s for s in (
    ScorerSpec("portfolio", "portfolio: a bandit over GP-EI, anomaly, NeighbourScore, kNN, AAD"),
    ScorerSpec("gp", "Gaussian process", "GP"),
    ScorerSpec("gp-anomaly", "GP, prior mean follows the anomaly score", "GP (anomaly prior)"),
    ScorerSpec("knn", "kNN label transfer", "kNN", skips_disputed=True),
    ScorerSpec("neighbour", "NeighbourScore", "NeighbourScore"),
    ScorerSpec("aad", "active anomaly detection (AADForest)"),
    ScorerSpec("pine", "PineForest"),
    ScorerSpec("iforest", "isolation forest", "isolation forest"),
    ScorerSpec("lof", "local outlier factor", "LOF"),
)}
#: name -> description (the explorer's menu text), in menu order.
SCORER_INFO: dict[str, str] = {name: s.description for name, s in SCORER_SPECS.items()}
SCORERS: tuple[str, ...] = tuple(SCORER_SPECS)


def skips_disputed(name: str) -> bool:
    """Whether scorer ``name`` is fitted without disputed objects (False for unknown names,
    e.g. the ``prior:anomaly`` of a fit without labels)."""
    spec = SCORER_SPECS.get(name)
    return spec is not None and spec.skips_disputed


def scorer_label(name: str) -> str:
    """The short form of a scorer's name, else its description, else the name itself."""
    spec = SCORER_SPECS.get(name)
    return name if spec is None else spec.short or spec.description
#: acquisition name -> description (the explorer's menu text), in menu order.
ACQUISITION_INFO: dict[str, str] = {
    "ei": "expected improvement",
    "ucb": "upper confidence bound",
    "uncertainty": "most uncertain",
}
ACQUISITIONS: tuple[str, ...] = tuple(ACQUISITION_INFO)
#: The acquisition of ``rank``, ``simulate`` and the explorer when none is chosen.
DEFAULT_ACQUISITION = "ei"
#: How the learning features are standardised (see :mod:`galexplorer.active.features`).
FEATURE_SCALINGS: tuple[str, ...] = ("global", "per-component")
#: The wider view of the embedding measured for ``LoopConfig.pca_components`` (not the default:
#: benchmarks/bench_loop_features.py and bench_discovery.py --loop-features wide).
WIDE_PCA_COMPONENTS = 32

#: What the scorer learns on (see :mod:`galexplorer.active.representation`); ``auto`` chooses at each refit.
REPRESENTATIONS: tuple[str, ...] = ("auto", "embedding", "morphology", "pixels", "combined", "wide",
                                    "combined-wide")
DEFAULT_REPRESENTATION = "auto"

#: What the next batch holds while no label is a find (see :mod:`galexplorer.active.cold_start`):
#: name -> description.
COLD_STARTS: dict[str, str] = {
    "random-share": "until the first find, a growing share of each batch is drawn at random",
    "model": "every pick by the acquisition, finds or not",
}
DEFAULT_COLD_START = "model"

#: The name of the portfolio (galexplorer.active.portfolio), not a single scorer.
PORTFOLIO = "portfolio"
#: The scorer of ``rank``, ``simulate`` and the explorer when none is chosen.
DEFAULT_SCORER = "gp-anomaly"
