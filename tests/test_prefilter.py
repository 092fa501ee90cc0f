"""The GP's candidate pre-filter (galexplorer/active/prefilter.py): its bounds hold, its batch is the
exact path's, the scorer switches to it at the documented size, and the exact ranking after it
(the streamed pass export uses) equals the one computed without it."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.acquisition import Acquisition, select_batch
from galexplorer.active.features import LearningFeatures
from galexplorer.active.gp import GaussianProcessRegressor, GPHyperparameters
from galexplorer.active.loop import ActiveLoop, LoopConfig
from galexplorer.active.prefilter import (
    PREFILTER_MIN_ROWS,
    low_rank_bound,
    pivoted_cholesky_points,
    select_batch_prefiltered,
)
from galexplorer.active.scorers import GPScorer, make_scorer

N = 20_000


def clustered(n: int = N, k: int = 7, seed: int = 0):
    """(n, k) float32 standardised features with clusters and a 0.5% rare group; (n,) bool rare."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (6, k))
    X = rng.normal(0, 1.0, (n, k))
    cl = rng.random(n) < 0.6
    X[cl] = centres[rng.integers(0, 6, cl.sum())] + rng.normal(0, 0.3, (cl.sum(), k))
    rare = rng.random(n) < 0.005
    X[rare] = 3.0 + rng.normal(0, 0.2, (rare.sum(), k))
    X = (X - X.mean(0)) / np.sqrt(np.mean(X.var(0)))
    return X.astype(np.float32), rare


def labels_for(rare: np.ndarray, n_lab: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    lab = np.unique(np.concatenate([rng.choice(len(rare), n_lab - 5, replace=False),
                                    rng.choice(np.flatnonzero(rare), 5, replace=False)]))
    y = np.where(rare[lab], 5.0, rng.integers(0, 2, len(lab))).astype(np.float32)
    return lab, y


@pytest.fixture(scope="module")
def data():
    X, rare = clustered()
    lab, y = labels_for(rare)
    h = np.minimum(np.einsum("ij,ij->i", X, X) / 10, 5).astype(np.float32)   # an anomaly-like covariate
    return X, rare, lab, y, h


def fitted(X, lab, y, h=None, hyper=None):
    gp = GaussianProcessRegressor()
    if hyper is None:
        return gp.fit(X[lab], y, mean_covariate=None if h is None else h[lab])
    return gp.fit(X[lab], y, hyper=hyper, optimise=False,
                  mean_covariate=None if h is None else h[lab])


# fitted hyper-parameters (long length scale), and two forced short ones where the low-rank
# mean is poor and the bounds are loose: exactness must not depend on the approximation's quality
CASES = [("fitted", None, False), ("fitted+covariate", None, True),
         ("short", GPHyperparameters(2.0, 0.5, 0.05), False),
         ("short+covariate", GPHyperparameters(1.0, 1.0, 0.1), True)]


@pytest.mark.parametrize("name,hyper,with_h", CASES, ids=[c[0] for c in CASES])
def test_bounds_hold_and_batch_is_the_exact_paths(data, name, hyper, with_h):
    X, rare, lab, y, h = data
    h = h if with_h else None
    gp = fitted(X, lab, y, h, hyper)
    exact_mean, mean_bound = gp.predict_mean(X, std_bound=True, mean_covariate=h)
    lr = low_rank_bound(gp, X, mean_covariate=h, rank=16, chunk_rows=3000)
    assert np.all(np.abs(exact_mean - lr.mean) <= lr.mean_error), "the low-rank mean's error bound failed"
    rows = np.random.default_rng(1).choice(N, 2000, replace=False)
    assert np.all(gp.predict_std(X, rows) <= lr.std_bound[rows]), "the std bound failed"
    cand = np.setdiff1d(np.arange(N), lab)
    kept = {}
    for acq_name in ("ei", "ucb", "uncertainty"):
        acq = Acquisition(acq_name, best=float(y.max()), xi=0.5)
        exact = select_batch(exact_mean, mean_bound, lambda r: gp.predict_std(X, r), acq, 10, cand)
        pre = select_batch_prefiltered(gp, X, lr, acq, 10, cand, mean_covariate=h, seed=64, max_kept=1.0)
        np.testing.assert_array_equal(np.sort(pre.batch), np.sort(exact.batch))
        assert set(pre.kept) <= set(cand) and set(pre.batch) <= set(pre.kept)
        # a subset's float32 mean differs from the full pass's by BLAS blocking (~1e-5): within the
        # rounding the GP allows its mean (tolerance 1e-4)
        np.testing.assert_allclose(pre.kept_mean, exact_mean[pre.kept], atol=gp.tolerance)
        kept[acq_name] = len(pre.kept)
    if name.startswith("fitted"):    # where the model is smooth, few candidates survive EI's bound
        assert kept["ei"] < len(cand) / 20, kept


def test_pivoted_cholesky_picks_distinct_spread_points():
    Z = np.array([[0.0], [0.01], [5.0], [10.0]])
    K = np.exp(-np.abs(Z - Z.T))
    pts = pivoted_cholesky_points(K, 3)
    assert len(set(pts.tolist())) == 3
    assert not {0, 1} <= set(pts.tolist())      # the near-duplicate is picked last


class _Store:
    """The loop reads only the anomaly score from the store when features are given."""

    score_names = ("anomaly",)
    path = "memory"

    def __init__(self, anomaly):
        self.anomaly = anomaly

    def dataset_attrs(self, name):
        return {"method": "isolation_forest"}

    def score(self, name):
        return self.anomaly

    def has(self, name):
        return False


def test_threshold_switches_and_complete_mean_gives_the_exact_ranking(data):
    X, rare, lab, y, h = data
    feats = LearningFeatures(X, 0.95, "test")
    excluded = np.arange(0, N, 997)
    lab_ok = np.setdiff1d(lab, excluded)
    y_ok = y[np.isin(lab, lab_ok)]
    exact_loop = ActiveLoop(_Store(h), LoopConfig(), features=feats)
    exact_loop.scorer.prefilter_min_rows = N + 1                  # below the threshold: exact path
    pre_loop = ActiveLoop(_Store(h), LoopConfig(), features=feats)
    pre_loop.scorer.prefilter_min_rows = N                        # at the threshold: pre-filter
    ex = exact_loop.fit(lab_ok, y_ok, excluded)
    pr = pre_loop.fit(lab_ok, y_ok, excluded)
    assert ex.mean_complete and "prefilter" not in ex.info
    assert not pr.mean_complete and pr.info["prefilter"]["kept"] < N / 20
    np.testing.assert_array_equal(np.sort(pr.next_batch), np.sort(ex.next_batch))
    assert not set(pr.next_batch) & set(excluded)
    # the ranking for export: the exact mean of every object in a streamed pass, ranked again
    pr.complete_std()
    assert pr.mean_complete
    np.testing.assert_allclose(pr.mean, ex.mean, atol=1e-6)   # the same streamed pass
    ex.complete_std()
    np.testing.assert_allclose(pr.std, ex.std, rtol=1e-6)
    np.testing.assert_array_equal(pr.order, ex.order)


def test_default_scorer_uses_the_documented_threshold():
    scorer = make_scorer("gp-anomaly")
    assert isinstance(scorer, GPScorer) and scorer.prefilter_min_rows == PREFILTER_MIN_ROWS


def test_streamed_mean_does_not_depend_on_the_chunk(data):
    X, rare, lab, y, h = data
    gp = fitted(X, lab, y, h)
    a = gp.predict_mean(X, mean_covariate=h)
    gp.chunk_rows = 777
    b = gp.predict_mean(X, mean_covariate=h)
    # not bit-identical (BLAS blocks a chunk's products differently), but within float32 rounding
    np.testing.assert_allclose(a, b, atol=1e-5)
    lr1 = low_rank_bound(gp, X, mean_covariate=h, chunk_rows=1000)
    lr2 = low_rank_bound(gp, X, mean_covariate=h, chunk_rows=N)
    np.testing.assert_allclose(lr1.mean, lr2.mean, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_order_equals_the_lexsort(seed):
    # the reference: the five-key lexsort the packed sort replaced (still the path past 2^32 rows)
    from galexplorer.active.ordering import lexsort_order, ranking_order

    rng = np.random.default_rng(seed)
    n = 5000
    # ties (rounded means), values above the cap, NaN, -0.0 and +0.0, negative means
    mean = np.round(rng.normal(2.5, 2.0, n), 1).astype(np.float32)
    mean[rng.choice(n, 50, replace=False)] = np.nan
    mean[rng.choice(n, 20, replace=False)] = -0.0
    mean[rng.choice(n, 20, replace=False)] = 0.0
    labelled = rng.choice(n, 300, replace=False)
    labels = rng.integers(0, 11, 300).astype(np.float32) / 2      # halves: consensus medians
    excluded = rng.choice(n, 200, replace=False)
    got = ranking_order(mean, labelled, labels, excluded)
    np.testing.assert_array_equal(got, lexsort_order(mean, labelled, labels, excluded))
    assert got.dtype == np.int64
    np.testing.assert_array_equal(ranking_order(mean, labelled[:0], labels[:0]),
                                  lexsort_order(mean, labelled[:0], labels[:0], excluded[:0]))


def test_too_many_kept_falls_back_to_the_exact_path(data, monkeypatch):
    X, rare, lab, y, h = data
    gp = fitted(X, lab, y, h)
    lr = low_rank_bound(gp, X, mean_covariate=h)
    cand = np.setdiff1d(np.arange(N), lab)
    acq = Acquisition("ei", best=float(y.max()), xi=0.5)
    assert select_batch_prefiltered(gp, X, lr, acq, 10, cand, mean_covariate=h, max_kept=0.0) is None
    # the scorer then computes the exact mean of every object and selects as below the threshold
    import galexplorer.active.scorers as scorers

    feats = LearningFeatures(X, 0.95, "test")
    exact_loop = ActiveLoop(_Store(h), LoopConfig(), features=feats)
    exact_loop.scorer.prefilter_min_rows = N + 1
    ex = exact_loop.fit(lab, y)
    monkeypatch.setattr(scorers, "select_batch_prefiltered", lambda *a, **k: None)
    pre_loop = ActiveLoop(_Store(h), LoopConfig(), features=feats)
    pre_loop.scorer.prefilter_min_rows = N
    pr = pre_loop.fit(lab, y)
    assert pr.info["prefilter"]["fallback"] == "exact path" and pr.mean_complete
    np.testing.assert_array_equal(pr.next_batch, ex.next_batch)
    np.testing.assert_array_equal(pr.order, ex.order)


def test_the_explorer_model_process_shows_the_exact_mean_after_a_prefiltered_refit(tmp_path, data, monkeypatch):
    """The window shows what the export will say: after a refit whose batch came from the
    pre-filter, the model process hands the window the exact mean and ranking, not the low-rank one."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from gui_stores import build_store

    from galexplorer.gui import modelproc
    from galexplorer.gui.modelproc import ModelServer

    # as at survey scale, where the exact std of every object is too dear to come with each fit
    monkeypatch.setattr(modelproc, "COMPLETE_STD_FLOPS", 0)
    X, rare, lab, y, h = data
    feats = LearningFeatures(X, 0.95, "test")
    excluded = np.zeros(0, np.int64)
    server = ModelServer(build_store(tmp_path / "store.h5", 50, thumbnails=False))   # for its journal
    try:
        config = LoopConfig()
        server.loop = ActiveLoop(_Store(h), config, features=feats)
        server.loop.scorer.prefilter_min_rows = N                # the pre-filter chooses the batch
        state = server.fit(config.to_dict(), lab, y, excluded)
        assert server.result.info["prefilter"]["kept"] < N / 20 and server.result.mean_complete
        exact = ActiveLoop(_Store(h), config, features=feats)
        exact.scorer.prefilter_min_rows = N + 1
        ex = exact.fit(lab, y, excluded)
        np.testing.assert_allclose(state["scores"].mean, ex.mean, atol=1e-5)
        np.testing.assert_array_equal(np.sort(state["next_batch"]), np.sort(ex.next_batch))
        # the window's ranking follows the exact mean (up to ties within float32 rounding)
        unlabelled = np.asarray(state["ranking"])[~np.isin(state["ranking"], lab)]
        assert np.all(np.diff(ex.mean[unlabelled]) <= 1e-5)
    finally:
        server.close()
