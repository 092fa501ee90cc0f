"""Analysis stages on a Dask cluster, for stores past one machine (see docs/scaling.md).

The PCA is the stage whose input is the whole (N, D) matrix; everything after it works on the
(N, k) features. Its sufficient statistics are sums, so it spreads over any number of workers:
each worker accumulates the moments of its blocks of rows (:class:`CovarianceAccumulator`, the
same code a single machine runs), the moments are merged on the client, and the (D, D)
eigen-decomposition is done once. The result equals the single-machine PCA up to float64
rounding (tests/test_dask_stage.py).

``embed --cluster`` (``ssl/embed.py``) accumulates each encoded block's moments on its worker with
:func:`block_moments` and merges them here, so the client never re-reads the embeddings for the PCA.
"""

from __future__ import annotations

import numpy as np

from .pca import CovarianceAccumulator, PCAModel


def block_moments(block: np.ndarray) -> CovarianceAccumulator:
    """The moments of one block of rows (run on a worker; merged by :func:`merge_moments`)."""
    acc = CovarianceAccumulator(block.shape[1])
    acc.add(block)
    return acc


def merge_moments(parts: list[CovarianceAccumulator]) -> CovarianceAccumulator:
    """One accumulator holding the rows of all ``parts`` (Chan et al.'s pairwise update, in float64)."""
    parts = [p for p in parts if p.n > 0]
    out = CovarianceAccumulator(parts[0].dim)
    shift = parts[0].mean()
    out._shift = shift
    for p in parts:
        m = p.mean() - shift                      # the part's mean, relative to the common shift
        # the part's centred scatter, moved to the common shift: S + n (m m^T)
        scatter = p._sumsq - p.n * np.outer(p._sum / p.n, p._sum / p.n)
        out._sum += p.n * m
        out._sumsq += scatter + p.n * np.outer(m, m)
        out.n += p.n
    return out


def fit_pca_dask(x, variance: float = 0.95, standardise: bool = False, max_components: int | None = None,
                 client=None) -> PCAModel:
    """The exact PCA of a Dask array of (N, D) rows, computed on the cluster ``client`` talks to.

    Args:
        x: a ``dask.array`` chunked by rows only (e.g. ``da.from_array(h5_dataset, chunks=(65536, D))``
            on each node's shard, or ``da.concatenate`` of the shards).
        client: a ``distributed.Client`` (None: Dask's current scheduler).

    Returns:
        The same :class:`PCAModel` as :func:`galexplorer.explore.pca.fit_pca_model` on the same rows.
    """
    import dask

    if len(x.chunks[1]) != 1:
        x = x.rechunk({1: -1})
    parts = [dask.delayed(block_moments)(block) for block in x.to_delayed().ravel()]
    moments = client.compute(parts, sync=True) if client is not None else dask.compute(*parts)
    return merge_moments(list(moments)).fit(variance, standardise, max_components)
