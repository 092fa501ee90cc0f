"""The learning features' standardisation (chunked variance) and the model state's queue."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.features import standardise
from galexplorer.active.session import _by_value


@pytest.mark.parametrize("scaling", ["global", "per-component"])
def test_chunked_standardise_equals_numpy(scaling):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(300_000, 5)) * [1, 2, 0.5, 3, 0] + 7).astype(np.float32)   # > one chunk, a constant column
    out = standardise(X, scaling)
    mean, std = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64)
    if scaling == "global":
        std = np.full_like(std, np.sqrt(np.mean(std ** 2)))
    std[std == 0] = 1.0
    np.testing.assert_allclose(out, (X - mean) / std, atol=2e-5)


def test_by_value_is_highest_first_ties_by_row_nan_dropped():
    v = np.array([1.0, np.nan, 3.0, 1.0, 3.0, -np.inf, 0.5])
    np.testing.assert_array_equal(_by_value(v), [2, 4, 0, 3, 6])


def _store(tmp_path, emb, **kw):
    from active_synthetic import write_store

    return write_store(tmp_path / "s.h5", emb, **kw)


def test_leading_components_recomputed_when_the_store_kept_fewer(tmp_path):
    from galexplorer.active.features import learning_features
    from galexplorer.explore.pca import fit_pca
    from galexplorer.store import EmbeddingStore

    rng = np.random.default_rng(0)
    emb = (rng.standard_normal((400, 12)) * np.r_[20, 10, np.full(10, 0.5)]).astype(np.float32)
    with EmbeddingStore(_store(tmp_path, emb)) as store:
        assert store.pca.shape[1] == 2                      # the store's PCA kept 95%: 2 components
        f = learning_features(store, components=8, scaling="per-component")
        everything = learning_features(store, components=50)
    assert f.X.shape == (400, 8) and f.source == "pca of embeddings"
    ref, info = fit_pca(emb, variance=1.0, max_components=8)
    np.testing.assert_allclose(np.abs(f.X), np.abs((ref - ref.mean(0)) / ref.std(0)), atol=1e-3)
    assert f.variance_kept == pytest.approx(float(np.sum(info["explained_variance_ratio"])), rel=1e-6)
    assert everything.X.shape == (400, 12)                 # never more than the embedding has


def test_leading_components_from_the_store_pca_when_it_has_them(tmp_path):
    from galexplorer.active.features import learning_features
    from galexplorer.store import EmbeddingStore

    emb = np.random.default_rng(1).standard_normal((300, 6)).astype(np.float32)   # isotropic: 95% keeps 6
    with EmbeddingStore(_store(tmp_path, emb)) as store:
        f = learning_features(store, components=4)
        np.testing.assert_allclose(f.X, standardise(store.pca[:, :4], "global"), atol=1e-6)
    assert f.source == "store pca" and f.n_features == 4


def test_leading_components_refuse_nan_embeddings(tmp_path):
    from galexplorer.active.features import learning_features
    from galexplorer.errors import StoreError
    from galexplorer.store import EmbeddingStore

    emb = (np.random.default_rng(2).standard_normal((100, 10)) * np.r_[30, np.ones(9)]).astype(np.float32)
    path = _store(tmp_path, emb)
    import h5py

    with h5py.File(path, "r+") as f:
        f["embeddings"][5, 3] = np.nan
    with EmbeddingStore(path) as store, pytest.raises(StoreError, match="NaN"):
        learning_features(store, components=8)


@pytest.mark.parametrize("bad", [0, -3, 2.0, True, "8", None])
def test_pca_components_bad_values_are_one_line_errors(bad):
    from galexplorer.active.config import LoopConfig, check_components
    from galexplorer.errors import ConfigError

    if bad is None:                                        # None is valid: the variance rule
        assert LoopConfig(pca_components=None).features_key()[0] is None
        return
    with pytest.raises(ConfigError, match="whole number >= 1"):
        LoopConfig(pca_components=bad)
    with pytest.raises(ConfigError, match="whole number >= 1"):
        check_components(bad)


def test_the_loop_sees_a_rare_class_outside_the_95_percent(tmp_path):
    """The rare class lives in quiet dimensions the 95% PCA drops: with the default 32 leading
    components the loop finds it, with the old variance rule it cannot."""
    from active_synthetic import planted_quiet

    from galexplorer.active.config import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    x, rare = planted_quiet(n=900, dim=24, shift=1.2, seed=3)
    path = _store(tmp_path, x, columns={"truth": np.where(rare, 5, 0).astype(np.int64)})
    found = {}
    with EmbeddingStore(path) as store:
        for name, cfg in (("default", LoopConfig(scorer="gp")),
                          ("variance rule", LoopConfig(scorer="gp", pca_components=None))):
            r = simulate(store, SimulateConfig(truth="truth", budget=120, batch=10, seeds=1, remaining=False,
                                               loop=cfg))
            found[name] = int(r.history[-1][1])
    assert found["default"] >= found["variance rule"] + 5, found


def test_leading_components_of_a_large_store_are_fitted_on_a_spread_sample(tmp_path, monkeypatch):
    """Past FIT_ROWS rows the loop's PCA is fitted on blocks spread over the file, then applied to
    every row: the components agree with the full PCA's, and every row is projected."""
    import galexplorer.active.features as features
    from galexplorer.explore.pca import fit_pca
    from galexplorer.store import EmbeddingStore

    monkeypatch.setattr(features, "FIT_ROWS", 20_000)
    rng = np.random.default_rng(4)
    n = 8192 * 6 + 100
    emb = (rng.standard_normal((n, 10)) * np.r_[40, 9, 6, 4, 3, 2, 1.5, 1, 0.7, 0.5]).astype(np.float32)
    emb[n // 2:, 0] += 5.0                                  # the file's halves differ: the sample must span both
    with EmbeddingStore(_store(tmp_path, emb)) as store:
        f = features.learning_features(store, components=6)
    assert "fitted on 16,484 of 49,252 rows" in f.source and f.X.shape == (n, 6)   # blocks 0, 3 and the last
    full, _ = fit_pca(emb, variance=1.0, max_components=6)
    for j in range(6):
        assert abs(np.corrcoef(f.X[:, j], full[:, j])[0, 1]) > 0.999, j
