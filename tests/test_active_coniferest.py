"""The coniferest scorers (AADForest, PineForest): label mapping and what the labels teach them."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.scorers import AADScorer, PineScorer


def two_outlier_groups(n: int = 4000, seed: int = 0):
    """A Gaussian bulk plus two equally far, equally small outlier groups A and B (1% each)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    a = np.arange(40)
    b = np.arange(40, 80)
    X[a] = rng.normal(0, 0.3, (40, 6)) + np.array([7, 0, 0, 0, 0, 0])
    X[b] = rng.normal(0, 0.3, (40, 6)) + np.array([0, 7, 0, 0, 0, 0])
    return X.astype(np.float32), a, b


def test_label_mapping():
    s = AADScorer(interesting_above=3)
    np.testing.assert_array_equal(s.known_labels(np.array([0, 1, 2, 2.5, 3, 4, 5])), [1, 1, 0, 0, -1, -1, -1])
    s = PineScorer(interesting_above=4)
    np.testing.assert_array_equal(s.known_labels(np.array([0, 2, 3, 4, 5])), [1, 1, 0, -1, -1])


@pytest.mark.parametrize("cls", [AADScorer, PineScorer])
def test_labels_steer_towards_the_interesting_group(cls):
    """Both groups are anomalous; the user says A is interesting and B is not: A must rank higher."""
    X, a, b = two_outlier_groups()
    rng = np.random.default_rng(1)
    labelled = np.concatenate([a[:3], b[:6], 100 + rng.choice(3000, 30, replace=False)])
    labels = np.concatenate([np.full(3, 5.0), np.zeros(6), rng.integers(0, 2, 30).astype(float)])
    scorer = cls(interesting_above=3, seed=0)
    unsup = scorer.fit(X, np.empty(0, np.int64), np.empty(0)).mean    # no labels: a plain forest
    model = scorer.fit(X, labelled, labels)
    assert model.mean.shape == (len(X),) and model.mean.dtype == np.float32
    assert 0 <= model.mean.min() and model.mean.max() <= 5.0 + 1e-6
    assert model.info["anomalies"] == 3 and model.info["nominals"] >= 6
    rest = np.setdiff1d(np.arange(len(X)), labelled)
    top = rest[np.argsort(-model.mean[rest], kind="stable")[:40]]
    in_a, in_b = np.isin(top, a).sum(), np.isin(top, b).sum()
    assert in_a >= 25 and in_a > 2 * in_b, (cls.name, in_a, in_b)
    # the labels changed the ranking: the gap between A and B grew
    gap = lambda m: m[a[3:]].mean() - m[b[6:]].mean()  # noqa: E731
    assert gap(model.mean) > gap(unsup) + 0.05, (gap(model.mean), gap(unsup))


@pytest.mark.parametrize("cls", [AADScorer, PineScorer])
def test_every_object_is_scored_and_rows_limit_it(cls):
    from galexplorer.active.scorers import minmax_scale

    X, a, b = two_outlier_groups(2000)
    labelled = np.concatenate([a[:2], b[:2], np.arange(100, 120)])
    labels = np.concatenate([[5.0, 5.0, 0.0, 0.0], np.zeros(20)])
    scorer = cls(seed=0)
    model = scorer.fit(X, labelled, labels)
    direct = minmax_scale(-scorer._forest.score_samples(X))
    np.testing.assert_allclose(model.mean, direct, atol=1e-6)          # all N objects, as the forest scores them
    assert np.count_nonzero(model.mean) > 0.9 * len(X)
    rows = np.arange(500, 900)
    part = cls(seed=0).fit(X, labelled, labels, rows=rows)
    assert np.count_nonzero(part.mean[:500]) == 0 and np.count_nonzero(part.mean[rows]) > 390
