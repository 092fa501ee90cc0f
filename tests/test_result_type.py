"""Issue 24 item 4: one ranking rule for every order, one "scores for N objects" type, and a pure
``ActiveLoop.fit`` (the portfolio is a strategy of its own)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from active_synthetic import planted, planted_store, write_store

from galexplorer.active.loop import ActiveLoop, LoopConfig
from galexplorer.active.ordering import lexsort_order, ranking_order
from galexplorer.active.portfolio import Portfolio
from galexplorer.active.ranking import rank_store, ranked_table
from galexplorer.active.result import LoopResult
from galexplorer.active.session import RERANK_LIMIT, LabellingSession, ModelState, live_ranking, model_state
from galexplorer.labels import LabelJournal
from galexplorer.store import EmbeddingStore
from galexplorer.store.ranking import Ranking, Scores, read_ranking


def _tied(rng, n):
    """Means on a coarse grid (many ties), some NaN, some -0.0; labels with halves, and
    exclusions that overlap the labelled objects."""
    mean = (rng.integers(-2, 12, n) / 2).astype(np.float32)
    mean[rng.choice(n, n // 20, replace=False)] = np.nan
    mean[rng.choice(n, n // 20, replace=False)] = -0.0
    labelled = np.sort(rng.choice(n, n // 10, replace=False)).astype(np.int64)
    labels = (rng.integers(0, 11, len(labelled)) / 2).astype(np.float32)
    excluded = np.sort(rng.choice(n, n // 25, replace=False)).astype(np.int64)
    return mean, labelled, labels, excluded


def _state(mean, labelled, labels, excluded) -> ModelState:
    order = ranking_order(mean, labelled, labels, excluded)
    rank = np.empty(len(mean), np.int32)
    rank[order] = np.arange(1, len(mean) + 1)
    nan = np.full(len(mean), np.nan, np.float32)
    return ModelState(Scores(mean, nan, nan, "gp", "ei", len(labelled)), np.empty(0, np.int64), order, order, rank,
                      0.0, labelled, labels, excluded)


@pytest.mark.parametrize("seed", range(6))
def test_every_ranking_path_is_the_one_rule_with_ties(seed):
    """ranking_order, the saved ranking (rank, top), the window's model and its live ranking after
    a few or many new labels all give lexsort_order of ranking_keys (ties included)."""
    rng = np.random.default_rng(seed)
    n = RERANK_LIMIT + 1000
    mean, labelled, labels, excluded = _tied(rng, n)
    ref = lexsort_order(mean, labelled, labels, excluded)
    assert len(np.unique(mean[np.isfinite(mean)])) < 20          # the order rests on the tie breaks
    np.testing.assert_array_equal(ranking_order(mean, labelled, labels, excluded), ref)
    state = _state(mean, labelled, labels, excluded)
    saved = Ranking.from_result(LoopResult(scores=state.scores, next_batch=state.next_batch, order=state.ranking,
                                           seconds=0.0, labelled=labelled, labels=labels, excluded=excluded,
                                           best=5.0), "uuid")
    np.testing.assert_array_equal(saved.order, ref)
    np.testing.assert_array_equal(saved.top(100), ref[:100])
    for k in (3, RERANK_LIMIT + 10):                             # reinserted, and ranked afresh
        now = np.full(n, np.nan, np.float32)
        now[labelled] = labels
        new = rng.choice(n, k, replace=False)
        now[new] = rng.integers(0, 11, k) / 2
        ex = np.zeros(n, bool)
        ex[excluded] = True
        ex[rng.choice(n, 2)] = ~ex[rng.choice(n, 2)]
        lab = np.flatnonzero(np.isfinite(now))
        np.testing.assert_array_equal(live_ranking(state, now, ex),
                                      lexsort_order(mean, lab, now[lab], np.flatnonzero(ex)))


@pytest.mark.parametrize("scorer", ["iforest", "gp"])
def test_rank_export_and_the_window_rank_by_one_rule(tmp_path, scorer):
    """`rank` (the fit and its sidecar), the export's table and the window's session (what its
    candidates panel shows) give the same order on a store where objects come in identical
    triples (equal scores)."""
    emb, _, _ = planted(100, seed=2)
    path = write_store(tmp_path / "s.h5", np.repeat(emb, 3, axis=0))
    ids = [f"obj{i:05d}" for i in range(300)]
    with LabelJournal.for_store(path, user="ann") as j:
        for row, s in ((0, 5), (3, 2), (4, 2), (30, 0), (33, 4), (60, 1), (90, 3)):
            j.score(ids[row], s)
        j.exclude([ids[1], ids[3]])
    r = rank_store(path, LoopConfig(scorer=scorer), full_std=False).result
    ref = lexsort_order(r.mean, r.labelled, r.labels, r.excluded)
    if scorer == "iforest":
        assert len(np.unique(r.mean)) <= 100                     # ties, broken by the rule
    np.testing.assert_array_equal(r.order, ref)
    with EmbeddingStore(path) as st:
        saved = read_ranking(path, st.uuid, st.n)
        np.testing.assert_array_equal(saved.order, ref)
        with LabelJournal.for_store(path, readonly=True) as j:
            for table in (ranked_table(st, saved, j), ranked_table(st, r, j)):     # export, window export
                assert list(table.columns["id"]) == [ids[i] for i in ref]
                np.testing.assert_array_equal(np.asarray(table.columns["rank"]), np.arange(1, 301))
        session = LabellingSession(st, user="bob")
        try:
            session.apply_model(model_state(r))
            np.testing.assert_array_equal(session.ranking, ref)
            session.score_many([9, 10, 11, 12], 5)               # a triple of equal means, labelled alike
            session.exclude([13])
            lab = np.flatnonzero(np.isfinite(session.labels))
            now = lexsort_order(r.mean, lab, session.labels[lab], np.flatnonzero(session.excluded))
            np.testing.assert_array_equal(session.ranking, now)
            np.testing.assert_array_equal(session.rank[now], np.arange(1, 301))
        finally:
            session.journal.close()


def test_scores_is_one_frozen_type_held_by_every_result(tmp_path):
    """LoopResult, ModelState and Ranking hold the same Scores; the arrays are checked once."""
    path, rare, _ = planted_store(tmp_path / "s.h5", 300)
    with EmbeddingStore(path) as st:
        labelled = np.flatnonzero(rare)[:2].tolist() + list(range(0, 40, 4))
        r = ActiveLoop(st, LoopConfig(scorer="gp")).fit(labelled, np.where(rare[labelled], 5.0, 0.0))
    state = model_state(r)
    saved = Ranking.from_result(r, "u")
    for holder in (r, state, saved):
        assert isinstance(holder.scores, Scores) and holder.scores.n == 300
        assert (holder.scorer, holder.acquisition_name, holder.n_labels) == ("gp", r.acquisition_name, 12)
        np.testing.assert_array_equal(holder.mean, r.mean)
    assert saved.scores is r.scores and state.scores.mean is r.mean      # float32 already: not copied
    with pytest.raises(AttributeError):
        r.scores.mean = r.mean.copy()
    with pytest.raises(ValueError, match="std has 3 rows, mean has 300"):
        Scores(r.mean, r.std[:3], r.acquisition, "gp", "ei", 12)


def _inputs(rare, n_rare=2, step=7):
    labelled = np.unique(np.concatenate([np.flatnonzero(rare)[:n_rare], np.arange(0, 140, step)]))
    return labelled, np.where(rare[labelled], 5.0, 1.0), np.array([1, 2], np.int64)


def _same(a: LoopResult, b: LoopResult) -> None:
    for name in ("mean", "std", "acquisition", "order", "next_batch"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.scorer, a.acquisition_name, a.n_labels) == (b.scorer, b.acquisition_name, b.n_labels)
    assert _untimed(a.info) == _untimed(b.info)


def _untimed(info):
    """``info`` without its wall times (``*seconds``), as JSON."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if not k.endswith("seconds")}
        return v
    return json.dumps(strip(info), sort_keys=True, default=str)


@pytest.mark.parametrize("scorer", ["gp", "knn", "portfolio"])
def test_fit_twice_gives_the_same_result_and_leaves_the_loop_as_it_was(tmp_path, scorer):
    """``ActiveLoop.fit`` is pure: the same inputs give equal results, and ``vars(loop)`` is the same
    before and after. (The first fit fills the loop's per-store caches, which depend on the store
    and the options only: the candidate representations, kNN's unit vectors.)"""
    path, rare, _ = planted_store(tmp_path / "s.h5", 600, rare=0.03)
    labelled, labels, excluded = _inputs(rare)
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(scorer=scorer, batch_size=10, seed=3))
        first = loop.fit(*_inputs(rare, 1, 9))                    # other inputs; fills the caches
        if scorer == "portfolio":
            assert isinstance(loop.portfolio, Portfolio) and loop.scorer is loop.portfolio.arms["gp"]
            assert loop.portfolio_state is None
            loop.restore_portfolio(first.portfolio)              # held by the strategy, not by a fit
        before = dict(vars(loop))
        held = json.dumps(loop.portfolio_state, sort_keys=True)
        a = loop.fit(labelled, labels, excluded)
        b = loop.fit(labelled, labels, excluded)
        assert vars(loop).keys() == before.keys()
        assert all(vars(loop)[k] is v for k, v in before.items())
        assert json.dumps(loop.portfolio_state, sort_keys=True) == held
        _same(a, b)
        if scorer == "portfolio":                                # it continued from the restored state
            old = first.portfolio["history"]
            assert a.portfolio["history"][:len(old)] == old and a.portfolio["history"][-1]["refit"] == 2
            c = loop.fit(labelled, labels, excluded, previous=a)     # and from `previous` when given
            assert c.portfolio["history"][:len(a.portfolio["history"])] == a.portfolio["history"]
            assert c.portfolio["history"][-1]["refit"] == 3
            assert json.dumps(loop.portfolio_state, sort_keys=True) == held


def test_a_fit_on_the_embedding_writes_nothing_on_the_loop(tmp_path):
    """Without the representation choice (no caches to fill) even the first fit leaves
    ``vars(loop)`` as it was."""
    path, rare, _ = planted_store(tmp_path / "s.h5", 400, rare=0.03)
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(scorer="gp", representation="embedding"))
        before = dict(vars(loop))
        a = loop.fit(*_inputs(rare))
        assert all(vars(loop)[k] is v for k, v in before.items()) and vars(loop).keys() == before.keys()
        _same(a, loop.fit(*_inputs(rare)))
