"""The portfolio: the bandit's shares follow hit rates; the loop with it is deterministic,
keeps its state in the result and the label journal, and finds the planted class."""

from __future__ import annotations

import numpy as np
import pytest
from active_synthetic import planted_store, restore_cli_logging

from galexplorer.active.loop import ActiveLoop, LoopConfig
from galexplorer.active.portfolio import ARMS, Bandit, load_state, ranking_arm, save_state
from galexplorer.errors import ConfigError
from galexplorer.labels import LabelJournal
from galexplorer.store import EmbeddingStore

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


def _play(rates: dict[str, float], batches: int = 40, k: int = 20, seed: int = 0, discount: float = 0.8):
    """A toy problem: each arm's proposals are hits with a fixed probability."""
    arms = tuple(rates)
    bandit = Bandit(arms, discount=discount)
    rng = np.random.default_rng(seed)
    history, labelled, labels, slots_seen = [], [], [], []
    row = 0
    for t in range(1, batches + 1):
        post = bandit.posteriors(history, np.array(labelled, dtype=np.int64), np.array(labels), 3.0)
        slots = bandit.allocate(bandit.shares(post, rng), k, rng)
        assert sum(slots.values()) == k
        slots_seen.append(slots)
        for arm, m in slots.items():
            rows = list(range(row, row + m))
            row += m
            history.append({"refit": t, "arm": arm, "rows": rows})
            labelled += rows
            labels += [5.0 if rng.random() < rates[arm] else 1.0 for _ in rows]
    return slots_seen, post


def test_shares_follow_hit_rates():
    rates = {"good": 0.6, "fair": 0.3, "poor": 0.05}
    slots_seen, post = _play(rates)
    late = {a: np.mean([s[a] for s in slots_seen[10:]]) for a in rates}
    assert late["good"] > late["fair"] > late["poor"]
    # in proportion: good/fair about 2 (the hit rates' ratio), well above 1
    assert 1.4 < late["good"] / late["fair"] < 3.0, late
    assert late["poor"] < 0.3 * late["good"], late
    assert late["poor"] > 0                            # never starved for good
    assert ranking_arm(post, tuple(rates)) == "good"


def test_shares_follow_a_change_of_fortune():
    """The discount forgets: an arm that stops paying off loses its share."""
    bandit = Bandit(("a", "b"), discount=0.8)
    history = [{"refit": t, "arm": arm, "rows": [10 * t + i + 5 * (arm == "b") for i in range(5)]}
               for t in range(1, 21) for arm in ("a", "b")]
    rows = np.array(sorted(r for h in history for r in h["rows"]))
    # a hit everything in refits 1–12 and nothing after; b the reverse
    labels = np.array([5.0 if ((r % 10) < 5) == (r // 10 <= 12) else 0.0 for r in rows])
    post = bandit.posteriors(history, rows, labels, 3.0)
    assert post["b"].mean > 0.7 and post["a"].mean < 0.25
    no_discount = Bandit(("a", "b"), discount=1.0).posteriors(history, rows, labels, 3.0)
    assert no_discount["a"].mean > no_discount["b"].mean    # all history alike: a still ahead


def test_even_shares_without_outcomes_and_determinism():
    bandit = Bandit()
    post = bandit.posteriors([], np.empty(0, np.int64), np.empty(0), 3.0)
    assert all(p.alpha == p.beta == 1 for p in post.values())
    a = bandit.allocate(bandit.shares(post, np.random.default_rng([0, 10])), 10, np.random.default_rng(1))
    b = bandit.allocate(bandit.shares(post, np.random.default_rng([0, 10])), 10, np.random.default_rng(1))
    assert a == b and sum(a.values()) == 10 and set(a) == set(ARMS)
    assert ranking_arm(post) == "gp"                      # ties: the first arm
    with pytest.raises(ConfigError, match="discount"):
        Bandit(discount=0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return planted_store(tmp_path_factory.mktemp("portfolio") / "store.h5", 2000, rare=0.02)


def _run(path, rare, refits=4, seed=0):
    with EmbeddingStore(path) as store:
        loop = ActiveLoop(store, LoopConfig(scorer="portfolio", batch_size=10, seed=seed))
        labelled = loop.initial_batch()
        labels = np.where(rare[labelled], 5.0, 1.0)
        result = None
        for _ in range(refits):
            result = loop.fit(labelled, labels, previous=result)
            nxt = result.next_batch
            labelled = np.concatenate([labelled, nxt])
            labels = np.concatenate([labels, np.where(rare[nxt], 5.0, 1.0)])
        return loop, result, labelled


def test_portfolio_loop(planted, tmp_path):
    path, rare, _ = planted
    loop, r1, lab1 = _run(path, rare)
    _, r2, lab2 = _run(path, rare)
    np.testing.assert_array_equal(lab1, lab2)                  # deterministic with a seed
    p = r1.portfolio
    assert r1.scorer == "portfolio" and loop.portfolio_state is None   # fit is pure: state flows via `previous`
    # the same inputs give the same result (no state left behind by the earlier fits)
    again = [loop.fit(lab1[:-10], np.where(rare[lab1[:-10]], 5.0, 1.0)) for _ in range(2)]
    np.testing.assert_array_equal(again[0].next_batch, again[1].next_batch)
    assert again[0].portfolio["history"] == again[1].portfolio["history"]
    assert sum(p["slots"].values()) == 10 and len(set(r1.next_batch.tolist())) == 10
    assert abs(sum(p["shares"].values()) - 1) < 1e-9 and p["ranking_arm"] in ARMS
    assert len(p["history"]) >= 4 and all(set(h) == {"refit", "arm", "rows"} for h in p["history"])
    # every proposed row is the arm's, once; the batch is the latest proposals
    latest = max(h["refit"] for h in p["history"])
    proposed = [r for h in p["history"] if h["refit"] == latest for r in h["rows"]]
    assert sorted(proposed) == sorted(r1.next_batch.tolist())
    assert rare[lab1].sum() >= 10                              # it finds the planted class
    # the state round-trips through the journal's session state, and a new loop resumes from it
    with LabelJournal(tmp_path / "labels.sqlite") as journal:
        save_state(journal, p)
    with LabelJournal(tmp_path / "labels.sqlite", readonly=True) as journal:
        state = load_state(journal)
    assert state["shares"] == p["shares"] and state["history"] == p["history"]
    labels = np.where(rare[lab1[:-10]], 5.0, 1.0)
    with EmbeddingStore(path) as store:
        fresh = ActiveLoop(store, LoopConfig(scorer="portfolio", batch_size=10))
        fresh.restore_portfolio(state)
        resumed = fresh.fit(lab1[:-10], labels)
    expect = Bandit().posteriors(state["history"], lab1[:-10], labels, 3.0)
    assert resumed.portfolio["hit_rate"] == {a: q.mean for a, q in expect.items()}
    assert sum(resumed.portfolio["tries"].values()) > 15      # three labelled batches, discounted


def test_explorer_state_shows_the_shares(planted):
    """The explorer's model state carries the portfolio (the queue panel's status line shows the
    shares; the window saves it in the journal's session state)."""
    from galexplorer.active.session import model_state

    path, rare, _ = planted
    _, result, _ = _run(path, rare, refits=2)
    state = model_state(result)
    assert state.portfolio is result.portfolio
    text = state.description
    assert text.startswith("portfolio on") and all(f"{a} " in text for a in result.portfolio["shares"])
    assert text.count("%") == len(ARMS)


def test_neighbour_arm_on_a_pool_proposes_the_same(planted, monkeypatch):
    """Scoring only the most anomalous objects keeps NeighbourScore's proposals exact."""
    import galexplorer.active.portfolio as portfolio_module

    path, rare, _ = planted
    rng = np.random.default_rng(3)
    labelled = np.unique(np.concatenate([np.flatnonzero(rare)[:2], rng.choice(2000, 30, replace=False)]))
    labels = np.where(rare[labelled], 5.0, rng.integers(0, 3, len(labelled)).astype(float))
    proposals = []
    for pool in (10**9, 300, 50):
        monkeypatch.setattr(portfolio_module, "POOL", pool)
        with EmbeddingStore(path) as store:
            r = ActiveLoop(store, LoopConfig(scorer="portfolio", batch_size=20, seed=5)).fit(labelled, labels)
        proposals.append({h["arm"]: h["rows"] for h in r.portfolio["history"]})
    assert proposals[0]["neighbour"]
    assert proposals[1]["neighbour"] == proposals[0]["neighbour"] == proposals[2]["neighbour"]


def test_rank_resumes_the_portfolio_from_the_journal(tmp_path):
    """`galexplorer rank --scorer portfolio` counts the explorer's past proposals (journal state)."""
    from galexplorer.active.ranking import rank_store
    from galexplorer.cli import main

    path, rare, _ = planted_store(tmp_path / "s.h5", 1200, rare=0.03)
    with EmbeddingStore(path) as st:
        ids = st.ids
    r_rows = np.flatnonzero(rare)[:3].tolist()
    c_rows = np.flatnonzero(~rare)[:7].tolist()
    with LabelJournal.for_store(path) as j:
        for r in r_rows:
            j.score(ids[r], 5)
        for r in c_rows:
            j.score(ids[r], 0)
        save_state(j, {"history": [{"refit": 1, "arm": "knn", "rows": r_rows},
                                   {"refit": 1, "arm": "aad", "rows": c_rows}]})
    report = rank_store(path, LoopConfig(scorer="portfolio"), write=False)
    p = report.result.portfolio
    assert p["hits"]["knn"] == 3 and p["tries"]["aad"] == 7 and p["hits"]["aad"] == 0
    assert p["hit_rate"]["knn"] > p["hit_rate"]["gp"] > p["hit_rate"]["aad"]
    assert p["ranking_arm"] == "knn"
    assert main(["rank", str(path), "--scorer", "portfolio", "--interesting-above", "4"]) == 0
