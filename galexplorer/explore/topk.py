"""Top-k selection with a deterministic order, shared by similarity search and batch selection."""

from __future__ import annotations

import numpy as np


def top_k_positions(values: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest ``values``, best first; ties go to the lower ``keys``.

    Args:
        values: (n,) scores.
        keys: (n,) integers that break ties (normally the row numbers the values belong to).
        k: how many; more than n gives n.

    Returns:
        (min(k, n),) int64 positions into ``values``.
    """
    v = np.asarray(values)
    k = min(int(k), len(v))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k < len(v):
        part = np.argpartition(-v, k - 1)[:k]
        # the k-th value may be tied with positions left out: take all >= it, then sort stably
        part = np.flatnonzero(v >= v[part].min())
    else:
        part = np.arange(len(v))
    return part[np.lexsort((np.asarray(keys)[part], -v[part]))][:k].astype(np.int64)
