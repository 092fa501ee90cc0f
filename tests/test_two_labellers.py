"""Two people labelling one store at once: no score lost, no "database is locked", each sees
the other's labels; and the journal's retries when SQLite answers busy."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time

import gui_qt
import numpy as np
import pytest
from active_synthetic import planted, write_store
from labellers import score_as_fast_as_possible

from galexplorer.active.session import LabellingSession, open_store
from galexplorer.errors import LabelError
from galexplorer.labels import LabelJournal, journal_path
from galexplorer.labels.journal import RETRY_DELAYS_S

N_EACH = 500
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks


def run_labellers(path, users, n):
    """Each user in a spawned process, scoring ``n`` objects as fast as possible, all at once."""
    ctx = mp.get_context("spawn")
    results, go = ctx.Queue(), ctx.Event()
    readies = [ctx.Event() for _ in users]
    procs = [ctx.Process(target=score_as_fast_as_possible, args=(str(path), u, n, r, go, results))
             for u, r in zip(users, readies)]
    for p in procs:
        p.start()
    for r in readies:
        assert r.wait(120), "a labeller did not open the journal"
    go.set()
    got = {}
    for _ in users:
        res = results.get(timeout=300)
        got[res["user"]] = res
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return got


def test_two_processes_score_500_each_at_once_and_lose_nothing(tmp_path):
    path = journal_path(tmp_path / "s.h5")      # new: both processes create it at the same moment
    got = run_labellers(path, ["ana", "ben"], N_EACH)
    assert [e for r in got.values() for e in r["errors"]] == []          # no "database is locked"
    a, b = got["ana"], got["ben"]
    assert a["start"] < b["end"] and b["start"] < a["end"], "the two labellers did not overlap"
    assert a["commits"] == b["commits"] == N_EACH + 1   # + the meta row written when opening
    with LabelJournal(path, readonly=True) as j:
        events = j.events()
        assert sum(e.kind == "score" for e in events) == 2 * N_EACH
        for user in ("ana", "ben"):
            assert j.current(user) == {f"{user}{i:05d}": i % 6 for i in range(N_EACH)}
        assert j.get_meta("version") == "1"
    print(f"retries ana {a['retries']} ben {b['retries']}; max commit {max(a['max_commit_s'], b['max_commit_s']):.3f} s")


class _Busy:
    """A connection whose ``BEGIN IMMEDIATE`` answers "database is locked" at once ``times`` times
    (as SQLite does, without waiting, while another connection recovers or folds the -wal)."""

    def __init__(self, real: sqlite3.Connection, times: int):
        self.real, self.left, self.begins = real, times, 0

    in_transaction = property(lambda self: self.real.in_transaction)

    def execute(self, sql, *params):
        if sql == "BEGIN IMMEDIATE":
            self.begins += 1
            if self.left:
                self.left -= 1
                raise sqlite3.OperationalError("database is locked")
        return self.real.execute(sql, *params)


def test_a_write_answered_busy_at_once_is_tried_again(tmp_path):
    j = LabelJournal(tmp_path / "j.sqlite", user="ana")
    real = j._db
    j._db = busy = _Busy(real, 3)
    ev = j.score("x", 4)                      # before: LabelError "locked by another process"
    j._db = real
    assert busy.begins == 4 and j.write_stats.retries == 3 and j.write_stats.max_backoff_s > 0
    assert [e.seq for e in j.events()] == [ev.seq] and j.current() == {"x": 4}
    j.close()


def test_retries_are_bounded_and_end_in_one_line(tmp_path):
    j = LabelJournal(tmp_path / "j.sqlite", user="ana", busy_timeout_s=1.0)
    real = j._db
    j._db = busy = _Busy(real, 10 ** 6)
    t = time.monotonic()
    with pytest.raises(LabelError, match="locked by another process") as exc:
        j.score("x", 4)
    took = time.monotonic() - t
    j._db = real
    assert busy.begins == len(RETRY_DELAYS_S) + 1 and took < 1.0 + 0.2
    assert "\n" not in str(exc.value) and j.events() == []
    j.close()


def test_a_lock_held_for_a_while_is_waited_out(tmp_path):
    j = LabelJournal(tmp_path / "j.sqlite", user="ana")
    other = sqlite3.connect(j.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    j.score("x", 2)                            # waits in SQLite's busy handler, then commits
    assert j.write_stats.max_commit_s >= 0.25 and j.current() == {"x": 2}
    other.close()
    j.close()


def test_two_sessions_see_each_others_labels_in_consensus_and_fit_inputs(tmp_path):
    emb, _, _ = planted(200)
    store = write_store(tmp_path / "s.h5", emb, {})
    a = LabellingSession(open_store(store), "ana")
    b = LabellingSession(open_store(store), "ben")
    try:
        a.open(0)
        a.score_current(5)                     # both score object 0, differently
        b.open(0)
        b.score_current(1)
        for i in (1, 2, 3):
            b.open(i)
            b.score_current(4)
        a.open(10)
        a.score_current(2)                     # a's next label reloads the journal: b's are there
        for s in (a, b):
            s.sync_labels()
            labelled, labels, _ = s.fit_inputs("gp")
            assert set(labelled.tolist()) == {0, 1, 2, 3, 10}          # what the next refit fits on
            assert s.labels[0] == 3.0 and s.n_labellers[0] == 2        # median of 5 and 1
            assert s.users()[0] == s.user and set(s.users()) == {"ana", "ben"}
            pair = s.agreement()
            assert len(pair) == 1 and pair[0].n_common == 1
        assert np.isfinite(a.user_labels("ben")[[1, 2, 3]]).all()
    finally:
        a.close()
        b.close()


@pytest.mark.gui
def test_a_window_refit_reads_the_other_labellers_labels_and_agreement_counts_both(qtbot, tmp_path, gui_settings,
                                                                                    no_leaks):
    # before: a refit (Ctrl+R, a new scorer) fitted on the labels as of this window's last change
    from gui_qt import key, open_window
    from gui_stores import build_store
    from PySide6 import QtCore

    store = build_store(tmp_path / "s.h5", 300)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    first = ex.current
    key(w, QtCore.Qt.Key.Key_4)                       # tester scores the first object
    ben = LabelJournal.for_store(store, user="ben")   # another labeller's window, elsewhere
    ids = [str(ex.session.ids[i]) for i in range(300)]
    others = [i for i in range(300) if i != first][:5]
    ben.score(ids[first], 2)
    for i in others:
        ben.score(ids[i], 5)
    ben.close()
    w.docks["agreement"].show()
    w.docks["agreement"].raise_()
    key(w, QtCore.Qt.Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)   # refit now
    assert ex.wait_idle(60)
    qtbot.waitUntil(lambda: not ex.refitting, timeout=60000)
    labelled, labels, _ = ex.session.fit_inputs(ex.config.scorer)
    assert set(others) | {first} <= set(labelled.tolist())                     # fitted on ben's labels too
    assert ex.session.labels[first] == 3.0 and ex.session.n_labellers[first] == 2   # median of 4 and 2
    assert ex.users() == ["tester", "ben"]
    table = w.agreement.table
    rows = {(table.item(r, 0).text(), table.item(r, 1).text()): table.item(r, 2).text()
            for r in range(table.rowCount())}
    assert rows == {("ben", "tester"): "1"}
    w.close()


def test_changed_elsewhere_sees_other_connections_commits_not_its_own(tmp_path):
    a = LabelJournal(tmp_path / "j.sqlite", user="ana")
    assert a.changed_elsewhere()              # the first call: nothing seen yet
    a.score("x", 1)
    assert not a.changed_elsewhere()          # its own write
    with LabelJournal(tmp_path / "j.sqlite", user="ben") as b:
        b.score("y", 2)
    assert a.changed_elsewhere() and not a.changed_elsewhere()
    a.close()
