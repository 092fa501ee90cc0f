"""The labelling session without Qt: live ranking between refits (issue #12, item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.ordering import ranking_order
from galexplorer.active.session import ModelState, live_ranking
from galexplorer.store.ranking import Scores


def _state(mean, labelled, labels, excluded) -> ModelState:
    n = len(mean)
    ranking = ranking_order(mean, labelled, labels, excluded)
    rank = np.empty(n, np.int32)
    rank[ranking] = np.arange(1, n + 1)
    return ModelState(Scores(mean, mean * np.nan, mean * np.nan, "gp", "ei", len(labelled)), np.empty(0, np.int64),
                      ranking, ranking, rank, 0.0, labelled, labels, excluded)


def test_live_ranking_is_ranking_order_on_the_labels_now():
    rng = np.random.default_rng(3)
    n = 2000
    mean = rng.normal(2.0, 1.5, n).astype(np.float32)
    mean[rng.choice(n, 30, replace=False)] = np.nan
    mean[rng.choice(n, 40, replace=False)] = 2.0          # ties
    labelled = np.sort(rng.choice(n, 50, replace=False)).astype(np.int64)
    labels = rng.integers(0, 6, 50).astype(np.float32)
    excluded = np.sort(rng.choice(np.setdiff1d(np.arange(n), labelled), 10, replace=False)).astype(np.int64)
    state = _state(mean, labelled, labels, excluded)
    for step in range(20):
        now = np.full(n, np.nan, np.float32)
        now[labelled] = labels
        ex = np.zeros(n, bool)
        ex[excluded] = True
        # since the fit: new scores, changed scores, an undo, an exclusion and an inclusion
        new = rng.choice(n, 3 + step, replace=False)
        now[new] = rng.integers(0, 6, len(new))
        now[labelled[step]] = np.nan
        ex[rng.choice(n, 2)] = True
        ex[excluded[step % 10]] = False
        lab = np.flatnonzero(np.isfinite(now))
        expect = ranking_order(mean, lab, now[lab], np.flatnonzero(ex))
        np.testing.assert_array_equal(live_ranking(state, now, ex), expect)


def test_live_ranking_without_changes_is_the_fit():
    mean = np.linspace(0, 5, 100).astype(np.float32)
    lab = np.array([3, 50], np.int64)
    state = _state(mean, lab, np.array([5, 0], np.float32), np.empty(0, np.int64))
    now = np.full(100, np.nan, np.float32)
    now[lab] = [5, 0]
    assert live_ranking(state, now, np.zeros(100, bool)) is state.ranking


def test_weighted_kappa_is_sklearns():
    from sklearn.metrics import cohen_kappa_score

    from galexplorer.labels.agreement import pairwise_agreement, weighted_kappa

    rng = np.random.default_rng(0)
    for n in (5, 30, 300):
        a = rng.integers(0, 6, n)
        b = np.clip(a + rng.integers(-3, 4, n), 0, 5)
        for w in ("quadratic", "linear"):
            assert weighted_kappa(a, b, w) == pytest.approx(
                cohen_kappa_score(a, b, weights=w, labels=list(range(6))), abs=1e-12)
    assert np.isnan(weighted_kappa([], []))
    assert np.isnan(weighted_kappa([3, 3], [3, 3]))      # one score throughout: undefined
    pairs = pairwise_agreement({("g1", "ann"): 5, ("g1", "bob"): 4, ("g2", "ann"): 0, ("g2", "bob"): 1,
                                ("g3", "cy"): 2})
    assert [(p.user_a, p.user_b, p.n_common) for p in pairs] == [("ann", "bob", 2), ("ann", "cy", 0),
                                                                  ("bob", "cy", 0)]
    assert pairs[0].kappa == pytest.approx(cohen_kappa_score([5, 0], [4, 1], weights="quadratic",
                                                             labels=list(range(6))))


def test_status_names_scorers_from_the_registry():
    from galexplorer.active.registry import SCORER_INFO, SCORER_SPECS, SCORERS, scorer_label

    assert all(name == spec.name for name, spec in SCORER_SPECS.items()) and SCORERS == tuple(SCORER_INFO)
    assert scorer_label("gp-anomaly") == "GP (anomaly prior)" and scorer_label("aad") == SCORER_INFO["aad"]
    state = _state(np.arange(5.0), np.array([0]), np.array([3.0]), np.empty(0, np.int64))
    assert state.description.startswith("GP on 1 labels")


def test_sync_if_changed_reads_another_labellers_scores(tmp_path):
    """Issue #23 item 5: a session notices events recorded by another journal (another
    labeller's window) and reloads the consensus; its own note is no news."""
    from gui_stores import build_store

    from galexplorer.active.session import LabellingSession, open_store
    from galexplorer.labels import LabelJournal

    path = build_store(tmp_path / "s.h5", 50, thumbnails=False)
    ses = LabellingSession(open_store(path), user="alice")
    try:
        ses.open(3)
        ses.score_current(5)
        assert not ses.sync_if_changed()
        ses.open(4)
        ses.note("a ring?")
        assert not ses.sync_if_changed()
        with LabelJournal.for_store(path, user="bob") as j:
            j.score(str(ses.ids[3]), 0)
        assert ses.sync_if_changed()
        assert ses.labels[3] == 2.5 and ses.n_labellers[3] == 2 and ses.disputed[3]
        assert not ses.sync_if_changed()
    finally:
        ses.close()
