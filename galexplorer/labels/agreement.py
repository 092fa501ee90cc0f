"""How well labellers agree: per pair of users, the objects both scored and the weighted
Cohen's kappa of their scores (0–5, an ordinal scale: a 4 against a 5 is a smaller
disagreement than a 0 against a 5).

    kappa = 1 - sum(W * O) / sum(W * E)

with O the (6, 6) table of observed score pairs, E the table expected by chance from each
user's score frequencies, and W the disagreement weights, (i - j)^2 ("quadratic", the
default) or |i - j| ("linear"). This is :func:`sklearn.metrics.cohen_kappa_score` with
``labels=SCORES`` (the 0–5 scale; the tests check it); 1 is perfect agreement, 0 what chance gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..label_scale import SCORES


def weighted_kappa(a, b, weights: str = "quadratic", n_scores: int = len(SCORES)) -> float:
    """Weighted Cohen's kappa of two users' scores of the same objects (NaN when undefined:
    no objects, or both users gave one and the same score throughout).

    Args:
        a, b: (n,) integer scores 0..n_scores-1, object by object.
        weights: "quadratic" or "linear".
    """
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    if a.shape != b.shape:
        raise ValueError(f"the two users' scores differ in length ({len(a)} and {len(b)})")
    if len(a) == 0:
        return float("nan")
    observed = np.zeros((n_scores, n_scores), np.float64)
    np.add.at(observed, (a, b), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / len(a)
    d = np.abs(np.subtract.outer(np.arange(n_scores), np.arange(n_scores))).astype(np.float64)
    if weights == "quadratic":
        w = d ** 2
    elif weights == "linear":
        w = d
    else:
        raise ValueError(f"unknown weights {weights!r}; use quadratic or linear")
    denominator = float((w * expected).sum())
    if denominator == 0.0:
        return float("nan")
    return 1.0 - float((w * observed).sum()) / denominator


@dataclass(frozen=True)
class PairAgreement:
    """Two labellers: the objects both scored and their weighted kappa."""

    user_a: str
    user_b: str
    n_common: int
    kappa: float


def pairwise_agreement(labels: dict[tuple[str, str], int], weights: str = "quadratic") -> list[PairAgreement]:
    """Every pair of users of ``labels`` (``{(object_id, user): score}``, as
    :meth:`~galexplorer.labels.LabelJournal.all_current` returns), in user order."""
    by_user: dict[str, dict[str, int]] = {}
    for (oid, user), s in labels.items():
        by_user.setdefault(user, {})[oid] = int(s)
    out = []
    for ua, ub in combinations(sorted(by_user), 2):
        common = sorted(set(by_user[ua]) & set(by_user[ub]))
        a = [by_user[ua][o] for o in common]
        b = [by_user[ub][o] for o in common]
        out.append(PairAgreement(ua, ub, len(common), weighted_kappa(a, b, weights)))
    return out
