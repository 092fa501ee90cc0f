"""The GP's mean and std of every object in row blocks on a Dask cluster (``--cluster``).

The refit (hyper-parameters, Cholesky factor: n × n work on the labels) stays on the client;
the fitted :class:`~.gp.GaussianProcessRegressor` — its state is O(n²), a few MB at 500 labels —
is sent to every worker once (``client.scatter``), and the N·n² passes run there, one block of
rows per task, with the same code as one process, so the results agree to the last bit (or
float rounding where BLAS picks another kernel for another block shape).

The client still holds the (N, k) learning features the refit chose among (the loop's, as on one
machine): each block's rows go to a worker with its task. See docs/scaling.md.
"""

from __future__ import annotations

import logging

import numpy as np

from ..explore.cluster import map_blocks, worker_threads

log = logging.getLogger(__name__)

BLOCK_ROWS = 65536          # rows per Dask task (32 features: 8 MB of input, 256 kB of output)
CLUSTER_MIN_ROWS = 50_000   # fewer rows than this are scored here (a task's latency is not worth it)


def _mean_block(gp, X: np.ndarray, h: np.ndarray | None) -> np.ndarray:
    """Runs on a worker: the exact mean of one block of rows."""
    gp.n_threads = worker_threads()
    return gp.predict_mean(X, mean_covariate=h)


def _std_block(gp, X: np.ndarray) -> np.ndarray:
    """Runs on a worker: the exact std of one block of rows."""
    gp.n_threads = worker_threads()
    return gp.predict_std(X)


def predict_mean_on_cluster(client, gp, X: np.ndarray, mean_covariate: np.ndarray | None = None,
                            block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """:meth:`GaussianProcessRegressor.predict_mean` of every row of ``X``, in blocks on the workers.

    Returns:
        (N,) float32, in label units.
    """
    out = np.empty(len(X), np.float32)
    h = None if gp.mean_coef[1] == 0.0 or mean_covariate is None else np.asarray(mean_covariate)
    for a, b, m in map_blocks(client, _mean_block, len(X), block_rows,
                              lambda a, b: (np.ascontiguousarray(X[a:b]), None if h is None else h[a:b]),
                              shared=(gp,), desc="GP mean (cluster)" if len(X) > 200_000 else ""):
        out[a:b] = m
    return out


def predict_std_on_cluster(client, gp, X: np.ndarray, rows: np.ndarray | None = None,
                           block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """:meth:`GaussianProcessRegressor.predict_std` of ``X[rows]`` (every row when ``rows`` is None:
    no index array, each block a slice), in blocks on the workers.

    Returns:
        (len(rows),) float32, in label units.
    """
    if rows is None:
        n, block = len(X), (lambda a, b: (np.ascontiguousarray(X[a:b]),))
    else:
        rows = np.asarray(rows, dtype=np.int64)
        n, block = len(rows), (lambda a, b: (X[rows[a:b]],))
    out = np.empty(n, np.float32)
    for a, b, s in map_blocks(client, _std_block, n, block_rows, block,
                              shared=(gp,), desc="GP std (cluster)" if n > 100_000 else ""):
        out[a:b] = s
    return out


__all__ = ["predict_mean_on_cluster", "predict_std_on_cluster", "BLOCK_ROWS", "CLUSTER_MIN_ROWS"]
