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
    from galexplorer.active.features import above_floor, learning_features
    from galexplorer.explore.pca import fit_pca
    from galexplorer.store import EmbeddingStore

    rng = np.random.default_rng(0)
    emb = (rng.standard_normal((400, 64)) * np.geomspace(30, 0.01, 64)).astype(np.float32)  # a network-like decay
    with EmbeddingStore(_store(tmp_path, emb)) as store:
        assert store.pca.shape[1] < 20                      # the store's PCA kept 95%: fewer components
        f = learning_features(store, components=20, scaling="per-component")
        wide = learning_features(store, components=64)
    assert f.X.shape == (400, 20) and f.source == "pca of embeddings"
    ref, info = fit_pca(emb, variance=1.0, max_components=20)
    np.testing.assert_allclose(np.abs(f.X), np.abs((ref - ref.mean(0)) / ref.std(0)), atol=1e-3)
    assert f.variance_kept == pytest.approx(float(np.sum(info["explained_variance_ratio"])), rel=1e-6)
    _, full = fit_pca(emb, variance=1.0)
    assert 20 < wide.n_features == above_floor(full["explained_variance"], 64, 400) < 64   # never the noise floor


def test_the_noise_floor_of_a_spectrum():
    from galexplorer.active.features import above_floor

    low_rank = np.r_[[9.0, 5, 3, 2, 1.5, 1, 0.8, 0.6], np.full(24, 0.01)]       # rank 8 + isotropic noise
    assert above_floor(low_rank * (1 + 0.02 * np.random.default_rng(0).standard_normal(32)), 32, 10**5) == 8
    assert above_floor(np.full(16, 2.0), 16, 1000) == 16                          # flat: nothing to cut
    assert above_floor(np.geomspace(1, 1e-6, 512), 512, 2000) > 150                # a decaying spectrum
    assert above_floor(np.r_[1.0, 0.5], 512, 2000) == 2                           # directions not given count as 0
    # few rows widen pure noise's eigenvalues (Marchenko-Pastur): the same spectrum keeps fewer
    spread = np.geomspace(1, 0.01, 64)
    assert above_floor(spread, 64, 100) < above_floor(spread, 64, 10**6)


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


def test_the_wide_view_sees_a_rare_class_outside_the_95_percent(tmp_path):
    """The rare class lives in quiet dimensions the 95% PCA drops: the wide view (32 components
    above the noise floor, each to unit variance) finds it, the default cannot."""
    from active_synthetic import planted_quiet

    from galexplorer.active.config import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    x, rare = planted_quiet(n=900, dim=24, shift=1.5, seed=3)
    path = _store(tmp_path, x, columns={"truth": np.where(rare, 5, 0).astype(np.int64)})
    found = {}
    with EmbeddingStore(path) as store:
        for name, cfg in (("wide", LoopConfig(scorer="gp", pca_components=32, feature_scaling="per-component")),
                          ("default", LoopConfig(scorer="gp"))):
            r = simulate(store, SimulateConfig(truth="truth", budget=120, batch=10, seeds=1, remaining=False,
                                               loop=cfg))
            found[name] = int(r.history[-1][1])
    assert found["wide"] >= found["default"] + 5, found
