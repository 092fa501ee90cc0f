"""The session's labels kept up to date from the journal's new events only (issue #27 item 4):
the same as the full recomputation after every step, and a press that costs the same at 50 and
at 5,000 labels in the journal."""

from __future__ import annotations

import sqlite3
import statistics
import time

import numpy as np
import pytest
from active_synthetic import planted, write_store

from galexplorer.active.session import LabellingSession, open_store
from galexplorer.active.snapshot import label_snapshot
from galexplorer.labels import LabelJournal, journal_path
from galexplorer.labels.incremental import LiveLabels


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    emb, _, _ = planted(60, seed=2)
    return write_store(tmp_path_factory.mktemp("inc") / "s.h5", emb, {})


def assert_same_as_full(ses: LabellingSession) -> None:
    """The session's arrays and counts against a fresh full read of the journal."""
    with LabelJournal(ses.journal.path, readonly=True) as fresh:
        full = label_snapshot(ses.store, fresh, strict=False)
        np.testing.assert_array_equal(ses.labels, full.label)
        np.testing.assert_array_equal(ses.n_labellers, full.n_labellers)
        np.testing.assert_array_equal(ses.disputed, full.disputed)
        np.testing.assert_array_equal(np.flatnonzero(ses.excluded), full.excluded)
        np.testing.assert_array_equal(ses.snapshot.excluded, full.excluded)
        live = ses.live.live
        assert live.all_current() == fresh.all_current()
        assert live.excluded() == fresh.excluded()
        for user in ("ana", "ben", "cy"):
            assert live.count(user) == len(fresh.current(user))
            assert live.current(user) == fresh.current(user)
        assert set(ses.users()) == {u for _, u in fresh.all_current()} | {ses.user}
        cons = fresh.consensus()
        for oid, med, n, dis in zip(cons.ids, cons.score, cons.n_labellers, cons.disputed):
            assert live.consensus_of(oid) == (med, n, dis)


def _step(rng, ses: LabellingSession, other: LabelJournal, ids: list[str], tmp_path) -> str:
    """One random action of either labeller; returns what it was."""
    mine = rng.random() < 0.5
    op = rng.choice(["score", "score", "score", "many", "undo", "undo", "redo", "exclude", "include", "note",
                     "import", "unknown"])
    obj = int(rng.integers(0, 12))          # few objects: many rescored, disputed, retracted
    score = int(rng.integers(0, 6))
    if op == "import":                       # a third labeller's journal merged in (`labels import`)
        src = tmp_path / f"cy{rng.integers(1_000_000)}.sqlite"
        with LabelJournal(src, user="cy") as cy:
            cy.score(ids[obj], score)
            cy.score(ids[(obj + 1) % 12], 5 - score)
            cy.undo()
            cy.exclude([ids[obj + 20]])
            (ses.journal if mine else other).import_events(cy.events(), src)
        return "import"
    if op == "unknown":                      # a label for an object the store does not hold
        other.score(f"gone{obj}", score)
        return op
    if mine:
        if op == "score":
            ses.open(obj)
            ses.score_current(score)
        elif op == "many":
            ses.score_many(rng.choice(12, 3, replace=False), score)
        elif op in ("undo", "redo"):
            getattr(ses, op)()
        elif op in ("exclude", "include"):
            getattr(ses, op)([obj, obj + 1])
        else:
            ses.open(obj)
            ses.note("a note")
        return f"ana {op}"
    j = other
    if op == "score":
        j.score(ids[obj], score)
    elif op == "many":
        j.score_many([ids[i] for i in rng.choice(12, 3, replace=False)], score)
    elif op in ("undo", "redo"):
        getattr(j, op)()
    elif op in ("exclude", "include"):
        getattr(j, op)([ids[obj], ids[obj + 1]])
    else:
        j.note(ids[obj], "theirs")
    return f"ben {op}"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_scores_retracts_and_undos_of_two_users_match_the_full_recomputation(small_store, tmp_path, seed):
    store = tmp_path / "s.h5"
    store.write_bytes(small_store.read_bytes())
    ses = LabellingSession(open_store(store), "ana")
    other = LabelJournal.for_store(store, "ben")   # a second connection: another labeller's process
    ids = [ses.ids[i] for i in range(ses.n)]
    rng = np.random.default_rng(seed)
    try:
        for step in range(120):
            what = _step(rng, ses, other, ids, tmp_path)
            if rng.random() < 0.7:          # the window's poll, or the next press, reads them
                ses.sync_if_changed()
            else:
                ses.sync_labels()
            try:
                assert_same_as_full(ses)
            except AssertionError as exc:
                raise AssertionError(f"seed {seed}, step {step} ({what}): {exc}") from None
        assert ses.live.live.seen_seq == ses.journal.last_seq()
        assert ses.disputed.any() and ses.excluded.any()   # the sequence reached those cases
    finally:
        other.close()
        ses.close()


def test_a_user_switch_and_a_journal_read_again_from_its_start_match_the_full_recomputation(small_store, tmp_path):
    store = tmp_path / "s.h5"
    store.write_bytes(small_store.read_bytes())
    ses = LabellingSession(open_store(store), "ana")
    with LabelJournal.for_store(store, "ben") as ben:
        for i in range(8):
            ben.score(ses.ids[i], i % 6)
        ben.undo()
        ben.exclude([ses.ids[20]])
    for i in range(4):
        ses.open(i)
        ses.score_current(5)
    ses.close()
    ses = LabellingSession(open_store(store), "ben")   # File > Labeller…: the store reopens as ben
    try:
        assert_same_as_full(ses)
        assert ses.n_mine == 7 and ses.my_label(0) == 0 and ses.my_label(7) is None
        ses.live.live.seen_seq = 10**6        # as if another file had taken the journal's place
        assert ses.sync_labels()
        assert_same_as_full(ses)
    finally:
        ses.close()


def test_damaged_rows_are_skipped_as_the_full_read_skips_them(small_store, tmp_path):
    store = tmp_path / "s.h5"
    store.write_bytes(small_store.read_bytes())
    ses = LabellingSession(open_store(store), "ana")
    try:
        ses.open(0)
        ses.score_current(4)
        db = sqlite3.connect(journal_path(store))
        db.execute("PRAGMA ignore_check_constraints = ON")   # what a file altered outside SQLite holds
        with db:
            db.execute("INSERT INTO events (action, kind, object_id, score, user, time) "
                       "VALUES (99, 'score', ?, 9, 'ben', 't')", (ses.ids[1],))
            db.execute("INSERT INTO events (action, kind, object_id, score, user, time) "
                       "VALUES (99, 'score', x'00', 3, 'ben', 't')")
            db.execute("INSERT INTO events (action, kind, object_id, score, user, time) "
                       "VALUES (99, 'score', ?, 2, 'ben', 't')", (ses.ids[0],))
        db.close()
        assert ses.sync_if_changed()
        assert_same_as_full(ses)
        assert ses.labels[0] == 3.0 and np.isnan(ses.labels[1])
    finally:
        ses.close()


def test_a_retraction_read_before_its_target_or_twice_is_applied_as_the_full_read_does(tmp_path):
    """A reordered (damaged, recovered) file: the rule is 'no retract targets it', wherever the
    retract is."""
    class Journal:
        path = tmp_path / "j.sqlite"
        evs = []

        def last_seq(self):
            return max((e.seq for e in self.evs), default=0)

        def events_after(self, seq):
            return [e for e in self.evs if e.seq > seq]

    from galexplorer.labels import Event
    j = Journal()
    live = LiveLabels(j)
    j.evs = [Event(1, 1, "retract", "a", None, "u", "t", None, 2)]
    live.read_new()
    j.evs.append(Event(2, 2, "score", "a", 5, "u", "t", None, None))
    live.read_new()
    assert live.consensus_of("a") is None and live.count("u") == 0
    # two retractions of one score (a file merged by hand): the second changes nothing
    j.evs += [Event(3, 3, "score", "a", 4, "u", "t", None, None), Event(4, 4, "retract", "a", None, "u", "t", None, 3)]
    live.read_new()
    j.evs += [Event(5, 5, "retract", "a", None, "u", "t", None, 3), Event(6, 6, "score", "a", 1, "v", "t", None, None)]
    live.read_new()
    assert live.consensus_of("a") == (1.0, 1, False) and live.users() == {"v"}


def _journal_with(store, n_labels: int) -> None:
    """``n_labels`` current labels of two users (as many score events, in actions of 100)."""
    ids = [f"obj{i:05d}" for i in range(n_labels)]
    for user, part in (("ana", ids[: n_labels // 2]), ("ben", ids[n_labels // 2:])):
        with LabelJournal.for_store(store, user) as j:
            for a in range(0, len(part), 100):
                j.score_many(part[a:a + 100], 3)


class RowCounter:
    """Counts the rows the journal's queries return (its connection's ``query``)."""

    def __init__(self, journal: LabelJournal):
        self.rows = 0
        real = journal._conn.query

        def query(sql, params=()):
            got = real(sql, params)
            self.rows += len(got)
            return got
        journal._conn.query = query


def _presses(store, n_labels: int, presses: int) -> tuple[list[float], list[int]]:
    """CPU seconds and journal rows read per press (score, sync, the status bar's counts); CPU,
    not wall time: the commit's fsync waits on a disk shared with other jobs, the same at any
    number of labels."""
    _journal_with(store, n_labels)
    ses = LabellingSession(open_store(store), "ana")
    counter = RowCounter(ses.journal)
    seconds, rows = [], []
    try:
        for k in range(presses):
            ses.open(ses.n - 1 - k)
            counter.rows = 0
            t = time.process_time()
            ses.score_current(k % 6)
            counts = (ses.n_mine, ses.n_labelled, ses.batch_left())
            seconds.append(time.process_time() - t)
            rows.append(counter.rows)
            assert counts[0] == n_labels // 2 + k + 1
    finally:
        ses.close()
    return seconds, rows


def test_a_press_reads_only_the_new_events_and_costs_the_same_at_50_and_5000_labels(tmp_path):
    emb, _, _ = planted(10_000, dim=8, seed=4)
    base = write_store(tmp_path / "base.h5", emb, {}, with_pca=False, anomaly=False)
    times, rows = {}, {}
    for n_labels in (50, 5000):
        store = tmp_path / f"s{n_labels}.h5"
        store.write_bytes(base.read_bytes())
        t, r = _presses(store, n_labels, 40)
        times[n_labels], rows[n_labels] = statistics.median(t[5:]), max(r)
    # the full read returned every label (5,000 rows a press); now: the press's own event and
    # a few one-row answers (the last seq, the undo's lookups are not in a press)
    assert rows[5000] == rows[50] and rows[5000] <= 8, rows
    assert times[5000] < 2 * times[50], {k: f"{1000 * v:.2f} ms" for k, v in times.items()}


def _fake_journal(tmp_path):
    class Journal:
        path = tmp_path / "j.sqlite"
        evs: list = []

        def last_seq(self):
            return max((e.seq for e in self.evs), default=0)

        def events_after(self, seq):
            return [e for e in self.evs if e.seq > seq]

    return Journal()


def test_forty_users_rescores_and_a_middle_retraction_keep_each_users_newest_score(tmp_path):
    """Users are held as numbers packed beside the score: past 32 users the packed code leaves
    the small-int range, and a retracted score that was not the newest changes nothing."""
    from galexplorer.labels import Event
    j = _fake_journal(tmp_path)
    live = LiveLabels(j)
    seq = 0
    for u in range(40):
        for s in (u % 6, (u + 1) % 6, (u + 2) % 6):   # each user scores "a" three times
            seq += 1
            j.evs.append(Event(seq, seq, "score", "a", s, f"user{u}", "t", None, None))
    live.read_new()
    assert live.users() == {f"user{u}" for u in range(40)}
    assert all(live.label_of("a", f"user{u}") == (u + 2) % 6 for u in range(40))
    assert live.all_current() == {("a", f"user{u}"): (u + 2) % 6 for u in range(40)}
    # user39's second score (seq 119) retracted: still their third; then the third (seq 120): the first
    j.evs += [Event(121, 121, "retract", "a", None, "user39", "t", None, 119)]
    live.read_new()
    assert live.label_of("a", "user39") == 41 % 6
    j.evs += [Event(122, 122, "retract", "a", None, "user39", "t", None, 120)]
    live.read_new()
    assert live.label_of("a", "user39") == 39 % 6 and live.count("user39") == 1
    j.evs += [Event(123, 123, "retract", "a", None, "user39", "t", None, 118)]
    live.read_new()
    assert live.label_of("a", "user39") is None and live.count("user39") == 0
    assert live.consensus_of("a")[1] == 39 and live.current("user39") == {}


def test_an_exclusion_retracted_falls_back_on_the_older_mark(tmp_path):
    from galexplorer.labels import Event
    j = _fake_journal(tmp_path)
    live = LiveLabels(j)
    j.evs = [Event(1, 1, "exclude", "a", None, "u", "t", None, None),
             Event(2, 2, "include", "a", None, "u", "t", None, None),
             Event(3, 3, "score", "a", 2, "u", "t", None, None)]
    live.read_new()
    assert not live.is_excluded("a") and live.consensus_of("a") == (2.0, 1, False)
    j.evs.append(Event(4, 4, "retract", "a", None, "u", "t", None, 2))
    assert live.read_new().marked == {"a"}
    assert live.is_excluded("a") and live.consensus_of("a") == (2.0, 1, False)


def test_live_labels_hold_a_quarter_kib_a_label_not_objects_per_label(tmp_path):
    """10^4 labels of one user, each event row with its own copies of the strings (as SQLite
    gives them): what stays held, per label (was ~670 bytes: dicts and tuples per label)."""
    import gc
    import tracemalloc

    from galexplorer.labels import Event
    j = _fake_journal(tmp_path)
    live = LiveLabels(j)
    n = 10_000
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for a in range(0, n, 100):   # read in batches, as a window's presses and polls do
            j.evs = [Event(s, s, "score", "".join(["obj", str(s).zfill(6)]), s % 6, "".join(["an", "a"]),
                           "t", None, None) for s in range(a + 1, a + 101)]
            live.read_new()
        j.evs = []
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert live.count("ana") == n and live.label_of("obj000007", "ana") == 1
    assert held / n < 300, f"{held / n:.0f} bytes a label"
