"""The pure numpy/sklearn pieces of the pipeline: PCA, projection, anomaly scores, clustering."""

from __future__ import annotations

import numpy as np
import pytest
from test_pipeline import blobs

from galexplorer.errors import ConfigError, InputError
from galexplorer.explore.anomaly import isolation_forest_scores, lof_scores
from galexplorer.explore.clustering import bayesian_gmm_clusters
from galexplorer.explore.pca import CovarianceAccumulator, fit_pca, fit_pca_model
from galexplorer.explore.projection import project_2d


def test_fit_pca_matches_sklearn_and_is_chunking_independent():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 12)) @ rng.normal(size=(12, 40)) + 100).astype(np.float32)  # large offset
    coords, info = fit_pca(x, variance=0.9)
    ref = PCA(n_components=info["n_components"]).fit(x.astype(np.float64))
    np.testing.assert_allclose(info["explained_variance_ratio"], ref.explained_variance_ratio_, rtol=1e-6)
    assert sum(info["explained_variance_ratio"]) >= 0.9 > sum(info["explained_variance_ratio"][:-1])
    np.testing.assert_allclose(np.abs(coords), np.abs(ref.transform(x)), atol=1e-3)
    # each component's largest loading is positive (deterministic signs)
    comps = info["components"]
    assert np.all(comps[np.arange(len(comps)), np.argmax(np.abs(comps), axis=1)] > 0)
    other = fit_pca_model(x, variance=0.9, chunk_rows=37)
    np.testing.assert_allclose(other.components, comps, atol=1e-9)
    assert coords.dtype == np.float32 and not info["whitened"] and not info["standardised"]


def test_standardise_makes_units_irrelevant():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    scaled = x * np.array([1, 1000, 1, 0.001, 1])
    a, ia = fit_pca(x, variance=0.99, standardise=True)
    b, ib = fit_pca(scaled, variance=0.99, standardise=True)
    np.testing.assert_allclose(ia["explained_variance_ratio"], ib["explained_variance_ratio"], rtol=1e-6)
    np.testing.assert_allclose(a, b, atol=1e-4)
    _, plain = fit_pca(scaled, variance=0.99)
    assert plain["explained_variance_ratio"][0] > 0.99      # without it, one column dominates


@pytest.mark.parametrize("x, error, match", [
    (np.ones((10, 3)), InputError, "identical"),
    (np.zeros((5,)), InputError, "shape"),
    (np.array([[1.0, np.nan], [2, 3]]), InputError, "NaN"),
])
def test_fit_pca_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        fit_pca(x)
    with pytest.raises(ConfigError, match="variance"):
        CovarianceAccumulator(2).fit(0)


def test_tiny_inputs_still_project():
    x = blobs(5, 8, outlier=None)
    xy, info = project_2d(x, return_info=True)
    assert xy.shape == (5, 2) and info["method"] == "pca" and "at least" in info["note"]
    xy, info = project_2d(blobs(12, 8, outlier=None), return_info=True)
    assert info["method"] == "umap" and info["n_neighbors"] == 11 and np.isfinite(xy).all()
    assert project_2d(blobs(1, 8, outlier=None)).shape == (1, 2)
    with pytest.raises(ConfigError, match="unknown projection"):
        project_2d(x, method="tsne")


@pytest.mark.slow
def test_umap_on_a_sample_then_transform_is_reproducible_and_keeps_blobs_apart():
    x = blobs(900, 16, outlier=None)
    a, info = project_2d(x, fit_sample=300, return_info=True)
    b = project_2d(x, fit_sample=300)
    np.testing.assert_array_equal(a, b)
    assert info["fit_rows"] == 300 and info["transformed_rows"] == 600
    rng = np.random.default_rng(0)
    fit_rows = np.sort(rng.choice(900, 300, replace=False))
    rest = np.setdiff1d(np.arange(900), fit_rows)
    # every transformed object lands nearest to a fitted object of its own blob
    d = np.linalg.norm(a[rest][:, None] - a[fit_rows][None], axis=-1)
    assert np.mean(fit_rows[np.argmin(d, axis=1)] % 3 == rest % 3) > 0.99


def test_anomaly_scores_rank_the_outlier_first():
    x = blobs(200, 8, outlier=17)
    iso = isolation_forest_scores(x, n_trees=100, seed=1)
    lof = lof_scores(x, n_neighbors=20)
    assert iso.dtype == lof.dtype == np.float32 and iso.shape == lof.shape == (200,)
    assert int(np.argmax(iso)) == 17 and int(np.argmax(lof)) == 17
    np.testing.assert_array_equal(iso, isolation_forest_scores(x, n_trees=100, seed=1))
    assert lof_scores(x[:2]).tolist() == [1.0, 1.0]


def test_clusters_on_a_sample_label_every_object():
    x = blobs(3000, 6, outlier=None)
    labels = bayesian_gmm_clusters(x, fit_sample=500, seed=2)
    assert labels.dtype == np.int32 and labels.shape == (3000,)
    # one label per blob, the largest cluster is 0
    per_blob = [np.bincount(labels[b::3]).argmax() for b in range(3)]
    assert len(set(per_blob)) == 3
    assert all(np.mean(labels[b::3] == per_blob[b]) > 0.99 for b in range(3))
    assert np.bincount(labels).argmax() == 0
    np.testing.assert_array_equal(labels, bayesian_gmm_clusters(x, fit_sample=500, seed=2))
