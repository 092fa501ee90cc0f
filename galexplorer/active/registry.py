"""The one registry of scorer names (no imports: the CLI reads it before anything heavy loads).

Every place that lists scorers reads it: the CLI's ``--scorer`` choices (``rank``,
``simulate``), the explorer's scorer menu, ``simulate --compare``, the ranking and the docs.
"""

from __future__ import annotations

#: name -> description (the explorer's menu text), in menu order.
SCORER_INFO: dict[str, str] = {
    "portfolio": "portfolio: a bandit over GP-EI, anomaly, NeighbourScore, kNN, AAD",
    "gp": "Gaussian process",
    "gp-anomaly": "GP, prior mean follows the anomaly score",
    "knn": "kNN label transfer",
    "neighbour": "NeighbourScore",
    "aad": "active anomaly detection (AADForest)",
    "pine": "PineForest",
    "iforest": "isolation forest",
    "lof": "local outlier factor",
}
SCORERS: tuple[str, ...] = tuple(SCORER_INFO)
#: name -> short form for status lines ("GP on 40 labels"); a scorer without one shows its description.
SCORER_SHORT: dict[str, str] = {
    "gp": "GP",
    "gp-anomaly": "GP (anomaly prior)",
    "knn": "kNN",
    "neighbour": "NeighbourScore",
    "iforest": "isolation forest",
    "lof": "LOF",
}


def scorer_label(name: str) -> str:
    """The short form of a scorer's name, else its description, else the name itself."""
    return SCORER_SHORT.get(name, SCORER_INFO.get(name, name))
#: The name of the portfolio (galexplorer.active.portfolio), not a single scorer.
PORTFOLIO = "portfolio"
#: The scorer of ``rank``, ``simulate`` and the explorer when none is chosen.
DEFAULT_SCORER = "gp-anomaly"
