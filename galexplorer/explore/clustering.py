"""Clustering of feature vectors: a Bayesian Gaussian mixture, as Mohale & Lochner (2024)."""

from __future__ import annotations

import logging
import warnings

import numpy as np

from .. import progress
from .cluster import active_client, map_blocks
from .validate import feature_matrix

log = logging.getLogger(__name__)

FIT_SAMPLE = 20000
PREDICT_CHUNK = 65536


def bayesian_gmm_clusters(x: np.ndarray, n_components: int = 20, weight_concentration_prior: float = 0.5,
                          seed: int = 0, fit_sample: int = FIT_SAMPLE, max_iter: int = 200) -> np.ndarray:
    """Cluster labels from a variational Bayesian Gaussian mixture (full covariances).

    The mixture is fitted on a random sample of at most ``fit_sample`` rows (the Dirichlet-process
    prior switches unneeded components off, so the sample only has to contain every population),
    then every row is assigned to its most probable component (in blocks on the workers of the
    enclosing ``--cluster``, :func:`~.cluster.scoring_on`: the same labels).

    Args:
        x: (N, D) features (normally the store's PCA features).
        n_components: the largest number of clusters (capped to N).
        weight_concentration_prior: Dirichlet-process concentration; smaller -> fewer clusters.
        seed: random seed (sample and initialisation); same seed -> same labels.
        fit_sample: rows used for the fit.

    Returns:
        (N,) int32 labels in 0..n_components-1. Labels are renumbered by decreasing cluster size
        (0 = the largest), so they do not depend on the mixture's internal order.

    Raises:
        InputError: X is not 2-D or has NaN/inf.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import BayesianGaussianMixture
    from threadpoolctl import threadpool_limits

    # float64 only for the fit sample and one chunk at a time: memory O(chunk), not O(N) float64
    x = feature_matrix(x, "the clustering", np.float64 if np.asarray(x).dtype == np.float64 else np.float32)
    n = len(x)
    if n < 2:
        return np.zeros(n, np.int32)
    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(n, fit_sample, replace=False)) if n > fit_sample else slice(None)
    fit_x = np.asarray(x[fit_rows], dtype=np.float64)
    k = min(int(n_components), n)
    gmm = BayesianGaussianMixture(n_components=k, weight_concentration_prior=weight_concentration_prior,
                                  weight_concentration_prior_type="dirichlet_process",
                                  covariance_type="full", max_iter=max_iter, random_state=seed,
                                  reg_covar=1e-6 * max(float(np.var(fit_x, axis=0).mean()), 1e-12))
    # The mixture's BLAS calls are small (D x n_sample x D per component): threads do not help
    # them, and on a busy machine OpenBLAS's spinning threads made the fit ~20x slower (79 s vs 3.6 s
    # for 5000 x 50 here). One thread is never slower.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with progress.Bar("clustering (fit)", 1) as bar:
            gmm.fit(fit_x)
            bar.update(1)
        labels = np.empty(n, np.int32)
        client = active_client()
        if client is not None:   # --cluster: the fitted mixture sent once, predicted in blocks there
            for a, b, lab in map_blocks(client, _predict_block, n, PREDICT_CHUNK, lambda a, b: (x[a:b],),
                                        shared=(gmm,), desc="clustering (cluster)"):
                labels[a:b] = lab
        else:
            for a in progress.track(range(0, n, PREDICT_CHUNK), "clustering"):
                labels[a:a + PREDICT_CHUNK] = gmm.predict(np.asarray(x[a:a + PREDICT_CHUNK], dtype=np.float64))
    if not gmm.converged_:
        log.info("Bayesian Gaussian mixture did not converge in %d iterations; using its last state",
                 max_iter)
    counts = np.bincount(labels, minlength=k)
    order = np.argsort(-counts, kind="stable")
    relabel = np.empty(k, np.int32)
    relabel[order] = np.arange(k, dtype=np.int32)
    return relabel[labels]


def _predict_block(gmm, x: np.ndarray) -> np.ndarray:
    """Runs on a Dask worker: the mixture's labels of one block of rows (float64 per block only)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return gmm.predict(np.asarray(x, dtype=np.float64)).astype(np.int32)
