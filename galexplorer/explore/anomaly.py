"""Unsupervised anomaly scores on feature vectors (normally the PCA features of a store).

Both functions return ``(N,) float32`` with *higher = more anomalous*, so that a ranked list is
``np.argsort(-score)``.
"""

from __future__ import annotations

import logging

import numpy as np

from .. import progress
from .cluster import active_client, map_blocks
from .validate import feature_matrix

log = logging.getLogger(__name__)

SCORE_CHUNK = 65536


def isolation_forest_scores(x: np.ndarray, n_trees: int = 200, seed: int = 0,
                            max_samples: int | str = "auto") -> np.ndarray:
    """Isolation-forest anomaly score (Liu et al. 2008), as Astronomaly uses it.

    Each tree is fitted on ``max_samples`` (default min(256, N)) random rows, so fitting is
    cheap at any N; scoring runs over all rows in chunks with a progress bar — on the workers
    of the enclosing ``--cluster`` (:func:`~.cluster.scoring_on`), the same scores.

    Args:
        x: (N, D) features.
        n_trees: number of trees (200 by default).
        seed: random seed; the same seed gives the same scores.

    Returns:
        (N,) float32, the negated sklearn ``score_samples`` (in (0, 1]; higher = more anomalous;
        0.5 is typical, values near 1 are isolated quickly).
    """
    from sklearn.ensemble import IsolationForest

    x = feature_matrix(x, "the isolation forest")
    if len(x) < 2:
        return np.zeros(len(x), np.float32)
    forest = IsolationForest(n_estimators=int(n_trees), max_samples=max_samples, random_state=seed)
    forest.fit(x)
    out = np.empty(len(x), np.float32)
    client = active_client()
    if client is not None:      # --cluster: the fitted forest sent once, the rows scored in blocks there
        for a, b, score in map_blocks(client, _score_block, len(x), SCORE_CHUNK, lambda a, b: (x[a:b],),
                                      shared=(forest,), desc="anomaly score (cluster)"):
            out[a:b] = score
        return out
    for a in progress.track(range(0, len(x), SCORE_CHUNK), "anomaly score"):
        out[a:a + SCORE_CHUNK] = -forest.score_samples(x[a:a + SCORE_CHUNK])
    return out


def _score_block(forest, x: np.ndarray) -> np.ndarray:
    """Runs on a Dask worker: the isolation-forest scores of one block of rows."""
    return (-forest.score_samples(x)).astype(np.float32)


def lof_scores(x: np.ndarray, n_neighbors: int = 50) -> np.ndarray:
    """Local outlier factor (Breunig et al. 2000) of every row among all rows.

    Exact k-nearest neighbours of every row (sklearn, tree or brute force): fine up to ~10^5
    rows of ~30 features; at 10^6 rows expect minutes.

    Args:
        x: (N, D) features.
        n_neighbors: neighbourhood size, capped to N - 1.

    Returns:
        (N,) float32 local outlier factor (about 1 for inliers; higher = more anomalous).
    """
    from sklearn.neighbors import LocalOutlierFactor

    x = feature_matrix(x, "the local outlier factor")
    if len(x) < 3:
        return np.ones(len(x), np.float32)
    k = min(int(n_neighbors), len(x) - 1)
    lof = LocalOutlierFactor(n_neighbors=k)
    lof.fit(x)
    return (-lof.negative_outlier_factor_).astype(np.float32)
