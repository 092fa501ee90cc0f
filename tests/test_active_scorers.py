"""Each scorer through the loop on a store with a planted rare cluster; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from active_synthetic import planted_store, write_store

from galexplorer.active.loop import ActiveLoop, LoopConfig, check_labels
from galexplorer.active.ordering import ranking_order
from galexplorer.active.scorers import SCORERS, KNNTransferScorer, neighbour_score
from galexplorer.errors import ConfigError, LabelError, StoreError
from galexplorer.store import EmbeddingStore


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return planted_store(tmp_path_factory.mktemp("planted") / "store.h5", 1000)


@pytest.mark.parametrize("scorer", SCORERS)
def test_scorer_recovers_planted_cluster(planted, scorer):
    path, rare, _ = planted
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer=scorer, batch_size=10))
        first = loop.initial_batch()
        labelled = np.unique(np.concatenate([first, np.flatnonzero(rare)[:2], np.flatnonzero(~rare)[:20]]))
        labels = np.where(rare[labelled], 5.0, 0.0)
        result = loop.fit(labelled, labels)
    assert result.mean.shape == (1000,) and result.mean.dtype == np.float32
    assert result.order.dtype == np.int64 and sorted(result.order) == list(range(1000))
    seen = set(labelled.tolist())
    unlabelled_order = [i for i in result.order if i not in seen]
    found = rare[unlabelled_order[:20]].sum()
    random_expectation = 20 * rare[unlabelled_order].mean()
    assert found >= 5 * random_expectation, (scorer, found)
    assert len(result.next_batch) == 10 and not (set(result.next_batch) & seen)


def test_gp_loop_result_fields(planted):
    path, rare, _ = planted
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer="gp", batch_size=7))
        labelled = loop.initial_batch()
        labelled = np.unique(np.concatenate([labelled, np.flatnonzero(rare)[:1]]))
        labels = np.where(rare[labelled], 5.0, 1.0)
        excluded = np.array([int(np.flatnonzero(rare)[5])])
        r1 = loop.fit(labelled, labels, excluded)
        r2 = loop.fit(labelled, labels, excluded)
    np.testing.assert_array_equal(r1.mean, r2.mean)            # pure: same inputs, same outputs
    np.testing.assert_array_equal(r1.next_batch, r2.next_batch)
    assert excluded[0] not in r1.next_batch and r1.order[-1] == excluded[0]
    # std known for the batch, NaN for some others until completed
    assert np.isfinite(r1.std[r1.next_batch]).all()
    assert np.isfinite(r1.acquisition[r1.next_batch]).all()
    assert np.all(r1.acquisition[r1.next_batch].min() >= np.nanmax(
        np.delete(r1.acquisition, np.concatenate([r1.next_batch, labelled, excluded]))))
    r1.complete_std()
    assert np.isfinite(r1.std).all() and r1.std_complete
    assert np.isnan(r1.acquisition[labelled]).all()
    assert "hyper" in r1.info and r1.n_labels == len(labelled)


def test_no_labels_falls_back_to_anomaly_prior(planted):
    path, rare, _ = planted
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer="gp"))
        r = loop.fit(np.array([], np.int64), np.array([], np.float32))
        np.testing.assert_array_equal(r.next_batch, loop.initial_batch())
        assert r.scorer == "prior:anomaly" and r.n_labels == 0
        assert rare[r.order[:20]].sum() >= 10


def test_ranking_puts_labelled_fives_first():
    mean = np.array([4.9, 5.6, 1.0, 3.0, 0.0, 4.0])
    labelled = np.array([2, 4])
    labels = np.array([5.0, 5.0])
    order = ranking_order(mean, labelled, labels, excluded=np.array([1]))
    assert list(order[:2]) == [2, 4]       # labelled 5s before an unlabelled 4.9 (and a capped 5.6)
    assert list(order[2:]) == [0, 5, 3, 1]  # then by mean; excluded last


def test_knn_transfer_formula():
    # 2-D unit vectors; labelled objects at known angles
    ang = np.radians([0, 10, 20, 90, 45])
    V = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    model = KNNTransferScorer(V, k=2).fit(V, np.array([1, 2, 3]), np.array([5.0, 0.0, 2.0]))
    # labelled: row 1 (10 deg, label 5), row 2 (20 deg, label 0), row 3 (90 deg, label 2)
    # object 0 (0 deg): its two most similar labelled are rows 1 and 2
    c10, c20 = np.cos(np.radians([10, 20]))
    assert model.mean[0] == pytest.approx((c10 * 5 + c20 * 0) / (c10 + c20), abs=1e-5)
    # object 4 (45 deg): similarities to rows 1, 2, 3 are cos 35, cos 25, cos 45 -> rows 2 and 1
    s = np.cos(np.radians([35, 25, 45]))
    assert model.mean[4] == pytest.approx((s[0] * 5 + s[1] * 0) / (s[0] + s[1]), abs=1e-5)
    # a labelled object's nearest neighbour is itself (s = 1)
    assert model.mean[3] == pytest.approx((1 * 2 + np.cos(np.radians(70)) * 0) / (1 + np.cos(np.radians(70))),
                                          abs=1e-5)
    assert model.std_bound[0] > 0 and model.exact_std(np.array([0]))[0] == model.std_bound[0]


def test_neighbour_score_formula():
    anomaly = np.array([4.0, 4.0, 2.0])
    user = np.array([5.0, 0.0, 0.0])
    dist = np.array([0.0, 0.0, 3.0])
    out = neighbour_score(anomaly, user, dist)
    f5, f0 = 0.1 + 0.85, 0.1
    assert out[0] == pytest.approx(4 * f5, rel=1e-5) and out[1] == pytest.approx(4 * f0, rel=1e-5)
    assert out[2] == pytest.approx(2 * np.tanh(np.exp(3 / 1.0) - 1 + np.arctanh(f0)), rel=1e-5)


def test_bad_input(tmp_path, planted):
    path, _, _ = planted
    with pytest.raises(LabelError, match="outside 0–5"):
        check_labels(10, [1, 2], [3, 7])
    with pytest.raises(LabelError, match="outside 0..9"):
        check_labels(10, [1, 12], [3, 4])
    with pytest.raises(LabelError, match="twice"):
        check_labels(10, [1, 1], [3, 4])
    with pytest.raises(ConfigError, match="unknown scorer"):
        LoopConfig(scorer="svm")
    with pytest.raises(ConfigError, match="xi"):
        LoopConfig(xi=-0.1)
    emb = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    bare = write_store(tmp_path / "bare.h5", emb, with_pca=False, with_embeddings=False, anomaly=False)
    with EmbeddingStore(bare) as store, pytest.raises(StoreError, match="no embeddings"):
        ActiveLoop(store)
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer="knn"))
        with pytest.raises(LabelError, match="outside 0–5"):
            loop.fit(np.array([1, 2]), np.array([1.0, -1.0]))


def test_features_from_embeddings_when_no_pca(tmp_path):
    from galexplorer.active.features import learning_features

    emb = np.random.default_rng(0).standard_normal((200, 6)).astype(np.float32) * [5, 4, 3, 1, 1, 1]
    path = write_store(tmp_path / "nopca.h5", emb, with_pca=False)
    with EmbeddingStore(path) as store:
        f = learning_features(store, 0.95)
        whitened = learning_features(store, 0.95, scaling="per-component")
    assert f.source == "pca of embeddings" and f.X.dtype == np.float32
    np.testing.assert_allclose(f.X.mean(0), 0, atol=1e-5)
    # global scaling keeps the PCA's geometry: column variances stay in their order, mean 1
    var = f.X.var(0)
    assert np.all(np.diff(var) <= 1e-6) and var.mean() == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(whitened.X.std(0), 1, atol=1e-4)
    with pytest.raises(ConfigError, match="feature scaling"):
        LoopConfig(feature_scaling="zscore")


def test_all_labels_alike_explores_far_from_them(planted):
    path, rare, _ = planted
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer="gp", batch_size=8))
        labelled = loop.initial_batch()
        r1 = loop.fit(labelled, np.zeros(len(labelled)))
        r2 = loop.fit(labelled, np.zeros(len(labelled)))
        X = loop.X
    assert r1.acquisition_name == "explore"
    np.testing.assert_array_equal(r1.next_batch, r2.next_batch)
    assert len(set(r1.next_batch)) == 8 and not set(r1.next_batch) & set(labelled)
    # farther from the labels than a typical object
    d_batch = np.linalg.norm(X[r1.next_batch][:, None] - X[labelled][None], axis=2).min(1)
    d_all = np.linalg.norm(X[:, None] - X[labelled][None], axis=2).min(1)
    assert np.median(d_batch) > np.percentile(d_all, 90)
