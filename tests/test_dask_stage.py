"""One analysis stage (the PCA's moments) actually run on a local Dask cluster of two worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.explore.distributed import fit_pca_dask, merge_moments
from galexplorer.explore.pca import CovarianceAccumulator, fit_pca_model


def data(n=20000, d=24, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 6)) @ rng.normal(size=(6, d)) + 50 + 0.1 * rng.normal(size=(n, d))).astype(np.float32)


def test_merged_moments_equal_one_pass():
    x = data(3000)
    parts = []
    for a, b in [(0, 1000), (1000, 1007), (1007, 3000)]:
        acc = CovarianceAccumulator(x.shape[1])
        acc.add(x[a:b])
        parts.append(acc)
    one = CovarianceAccumulator(x.shape[1])
    one.add(x)
    merged = merge_moments(parts)
    assert merged.n == 3000
    np.testing.assert_allclose(merged.mean(), one.mean(), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance(), one.covariance(), rtol=1e-9, atol=1e-12)


def test_pca_on_two_dask_worker_processes_equals_the_single_machine_pca():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")

    x = data()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        model = fit_pca_dask(da.from_array(x, chunks=(2500, x.shape[1])), variance=0.99, client=client)
    ref = fit_pca_model(x, variance=0.99)
    assert model.n_components == ref.n_components and model.n_samples == len(x)
    np.testing.assert_allclose(model.explained_variance, ref.explained_variance, rtol=1e-8)
    np.testing.assert_allclose(model.components, ref.components, atol=1e-7)
