"""Figures of merit of a ranked list against known interesting objects.

With ``Iᵢ = 1`` when the object at position ``i`` (0-based) of the list is interesting:

* ``found(k)`` = Σ_{i<k} Iᵢ, the curve of Mohale & Lochner (2024) Fig. 8;
* ``recall@k`` = found(k) / (number of interesting objects);
* ``precision@k`` = found(k) / k;
* the rank-weighted score (Lochner & Bassett 2021)
  ``RWS(N) = Σ_{i<N} (N − i)·Iᵢ / (N(N+1)/2)``: 1 when the first N are all interesting,
  about the interesting fraction for a random order.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def hits(order: np.ndarray, interesting: np.ndarray) -> np.ndarray:
    """(N,) bool: whether the object at each position of ``order`` is interesting."""
    return np.asarray(interesting, dtype=bool)[np.asarray(order, dtype=np.int64)]


def found_curve(order: np.ndarray, interesting: np.ndarray) -> np.ndarray:
    """(N,) int64: interesting objects among the first 1, 2, ..., N of the list."""
    return np.cumsum(hits(order, interesting), dtype=np.int64)


def _check_k(k: int, n: int) -> int:
    if int(k) < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    return min(int(k), n)


def recall_at_k(order: np.ndarray, interesting: np.ndarray, k: int) -> float:
    """Fraction of all interesting objects found in the first ``k`` (NaN when there are none)."""
    total = int(np.count_nonzero(interesting))
    k = _check_k(k, len(order))
    return float(hits(order[:k], interesting).sum() / total) if total else float("nan")


def precision_at_k(order: np.ndarray, interesting: np.ndarray, k: int) -> float:
    """Fraction of the first ``k`` objects that are interesting."""
    k = _check_k(k, len(order))
    return float(hits(order[:k], interesting).sum() / k)


def rank_weighted_score(order: np.ndarray, interesting: np.ndarray, n: int) -> float:
    """``RWS(n) = Σ_{i<n} (n − i)·Iᵢ / (n(n+1)/2)``, in [0, 1]."""
    n = _check_k(n, len(order))
    h = hits(order[:n], interesting).astype(np.float64)
    w = np.arange(n, 0, -1, dtype=np.float64)
    return float((w * h).sum() / (n * (n + 1) / 2))
