"""The label journal: current labels, undo/redo, consensus, append-only, and crash safety."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from galexplorer.errors import LabelError
from galexplorer.labels import LabelJournal, journal_path


@pytest.fixture
def journal(tmp_path):
    j = LabelJournal.for_store(tmp_path / "store.h5", user="ana")
    yield j
    j.close()


def test_path_beside_store(tmp_path):
    assert journal_path(tmp_path / "store.h5") == tmp_path / "store.h5.labels.sqlite"


def test_current_label_is_last_event(journal):
    journal.score("a", 3)
    journal.score("b", 1)
    journal.score("a", 5)
    assert journal.current() == {"a": 5, "b": 1}
    assert [e.score for e in journal.history("a")] == [3, 5]


@pytest.mark.parametrize("bad", [-1, 6, 2.5, "3", None, True])
def test_scores_outside_range_are_refused(journal, bad):
    with pytest.raises(LabelError, match="0 to 5"):
        journal.score("a", bad)
    assert journal.events() == []


def test_undo_redo(journal):
    journal.score("a", 2)
    journal.score("a", 4)
    journal.score("b", 1)
    assert [e.object_id for e in journal.undo()] == ["b"]
    assert journal.current() == {"a": 4}
    journal.undo()
    assert journal.current() == {"a": 2}            # the earlier label is back
    assert journal.can_redo
    journal.redo()
    assert journal.current() == {"a": 4}
    journal.redo()
    assert journal.current() == {"a": 4, "b": 1}
    assert journal.redo() == []
    # a new label clears the redo stack
    journal.undo()
    journal.score("c", 0)
    assert not journal.can_redo


def test_undo_survives_reopen_and_is_per_user(tmp_path):
    store = tmp_path / "s.h5"
    with LabelJournal.for_store(store, user="ana") as a:
        a.score("x", 5)
    with LabelJournal.for_store(store, user="ben") as b:
        b.score("x", 1)
        b.undo()
        assert b.current() == {}
    with LabelJournal.for_store(store, user="ana") as a:
        assert a.current() == {"x": 5}
        a.undo()
        assert a.current() == {}
        assert a.undo() == []


def test_one_objects_label_and_note_follow_the_journals_retraction_rules(tmp_path):
    """label_of / note_of (what the explorer's session shows for one object) agree with
    current() / notes() through scores, notes, undo and redo, per user."""
    path = tmp_path / "store.h5"
    with LabelJournal.for_store(path, user="ana") as ana, LabelJournal.for_store(path, user="bo") as bo:
        ana.score("a", 2)
        ana.score("a", 4)
        bo.score("a", 1)
        ana.note("a", "ring?")
        bo.note("a", "a ring")
        assert ana.label_of("a") == 4 and ana.label_of("a", "bo") == 1 and ana.label_of("zz") is None
        assert ana.note_of("a") == "a ring" and ana.note_of("a", "ana") == "ring?"
        bo.undo()                                  # bo's note
        assert ana.note_of("a") == "ring?"
        ana.undo()                                 # ana's note
        ana.undo()                                 # ana's 4: the 2 is back
        assert ana.label_of("a") == 2 == ana.current()["a"] and ana.note_of("a") is None
        ana.redo()
        assert ana.label_of("a") == 4 == ana.current()["a"]
        for user in ("ana", "bo"):
            assert ana.label_of("a", user) == ana.current(user).get("a")
            assert ana.note_of("a", user) == ana.notes(user).get("a")


def test_bulk_score_is_one_undo_step(journal):
    journal.score_many(["a", "b", "c"], 0)
    journal.score("d", 5)
    journal.undo()
    assert journal.current() == {"a": 0, "b": 0, "c": 0}
    journal.undo()
    assert journal.current() == {}


def test_consensus_median_and_disputed(tmp_path):
    store = tmp_path / "s.h5"
    votes = {"ana": {"x": 5, "y": 1, "z": 2}, "ben": {"x": 4, "y": 1, "z": 2},
             "cy": {"x": 0, "y": 1}}
    for user, labels in votes.items():
        with LabelJournal.for_store(store, user=user) as j:
            for oid, s in labels.items():
                j.score(oid, s)
    with LabelJournal.for_store(store, readonly=True) as j:
        c = j.consensus()
        assert list(c.ids) == ["x", "y", "z"]
        np.testing.assert_array_equal(c.score, [4.0, 1.0, 2.0])
        np.testing.assert_array_equal(c.n_labellers, [3, 3, 2])
        # x: 3 distinct scores among 3 labellers > ceil(3/2)=2 -> disputed
        np.testing.assert_array_equal(c.disputed, [True, False, False])
        idx, s = j.labels_for(["z", "y", "x", "w"], skip_disputed=True)
        np.testing.assert_array_equal(idx, [0, 1])
        np.testing.assert_array_equal(s, [2.0, 1.0])
        assert j.counts()["users"] == 3 and j.counts()["disputed"] == 1


def test_labels_for_unknown_ids(journal):
    journal.score("ghost", 4)
    with pytest.raises(LabelError, match="not in the store"):
        journal.labels_for(["a", "b"])
    idx, s = journal.labels_for(["a", "b"], strict=False)
    assert len(idx) == 0


def test_exclusions_and_notes(journal):
    journal.exclude(["a", "b"])
    journal.include(["a"])
    journal.note("c", "tidal tail to the NE")
    assert journal.excluded() == {"b"}
    assert journal.notes() == {"c": "tidal tail to the NE"}
    journal.undo()  # the note
    journal.undo()  # the include
    assert journal.excluded() == {"a", "b"} and journal.notes() == {}


def test_append_only(journal, tmp_path):
    journal.score("a", 3)
    db = sqlite3.connect(journal.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE events SET score = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM events")
    db.close()


def test_readonly_missing_journal_is_empty(tmp_path):
    j = LabelJournal.for_store(tmp_path / "none.h5", readonly=True)
    assert j.current() == {} and j.counts()["labels"] == 0
    with pytest.raises(LabelError, match="read-only"):
        j.score("a", 1)
    assert not journal_path(tmp_path / "none.h5").exists()


def test_not_a_journal(tmp_path):
    p = tmp_path / "s.h5.labels.sqlite"
    p.write_text("this is not sqlite" * 100)
    with pytest.raises(LabelError, match="not a label journal"):
        LabelJournal(p)


WRITER = """
import sys
from galexplorer.labels import LabelJournal
j = LabelJournal(sys.argv[1], user="w")
i = 0
while True:
    j.score(f"obj{i}", i % 6)
    print(i, flush=True)   # acknowledged: score() returned, so it is committed
    i += 1
"""


def test_sigkill_loses_no_acknowledged_label(tmp_path):
    path = tmp_path / "k.h5.labels.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acked = []
    t0 = time.monotonic()
    while len(acked) < 150 and time.monotonic() - t0 < 60:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)   # mid-stream: it is writing the next label now
    proc.wait()
    assert len(acked) >= 50, "the writer did not get going"
    with LabelJournal(path, readonly=True) as j:
        cur = j.current("w")
    for i in acked:
        assert cur.get(f"obj{i}") == i % 6


# -- SQLite failures become one-line LabelErrors naming the file ---------------------------------
@pytest.fixture
def short_busy_timeout(monkeypatch):
    import galexplorer.labels.journal as jmod

    monkeypatch.setattr(jmod, "BUSY_TIMEOUT_S", 0.1)


def _lock_exclusively(path, readers_too=False):
    """Another process's connection holding the journal's write lock (and the read lock too)."""
    db = sqlite3.connect(path, isolation_level=None)
    if readers_too:
        db.execute("PRAGMA locking_mode=EXCLUSIVE")
    db.execute("BEGIN EXCLUSIVE")
    db.execute("INSERT INTO meta (key, value) VALUES ('lock', 'held')")
    return db


def test_locked_journal_is_a_label_error_naming_the_file(tmp_path, short_busy_timeout):
    j = LabelJournal.for_store(tmp_path / "s.h5", user="ana")
    j.score("a", 3)
    other = _lock_exclusively(j.path)
    try:
        with pytest.raises(LabelError, match="locked by another process") as exc:
            j.score("b", 4)
        assert str(j.path) in str(exc.value) and "\n" not in str(exc.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert j.current() == {"a": 3}          # nothing half-recorded; the journal works again
    j.score("b", 4)
    assert j.current() == {"a": 3, "b": 4}
    j.close()


@pytest.mark.parametrize("message, expected", [
    ("database or disk is full", "disk is full"),
    ("attempt to write a readonly database", "read-only"),
    ("disk I/O error", "I/O error"),
    ("unable to open database file", "cannot be opened"),
    ("something new", "cannot be used"),
])
def test_operational_errors_are_explained(tmp_path, message, expected):
    from galexplorer.labels.journal import operational_error

    err = operational_error(sqlite3.OperationalError(message), tmp_path / "j.sqlite")
    assert isinstance(err, LabelError) and expected in str(err) and message in str(err)
    assert str(err).startswith(str(tmp_path / "j.sqlite") + ": ")


def test_failed_write_is_rolled_back_and_reported(journal, monkeypatch):
    journal.score("a", 1)
    real = journal._db

    class Failing:   # the disk fills up between the INSERT and the COMMIT
        in_transaction = property(lambda self: real.in_transaction)

        def execute(self, sql, *params):
            if sql == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *params)

    journal._db = Failing()
    with pytest.raises(LabelError, match="disk is full"):
        journal.score("b", 2)
    journal._db = real
    assert journal.current() == {"a": 1}


def test_cli_exits_2_on_a_locked_journal(tmp_path, capsys, short_busy_timeout):
    from galexplorer.cli import main
    from galexplorer.store import EmbeddingStoreWriter, ObjectTable

    store = tmp_path / "s.h5"
    with EmbeddingStoreWriter(store, ObjectTable(np.array(["a", "b"], dtype=object), None, None)) as w:
        w.write("embeddings", np.ones((2, 3), np.float32))
    with LabelJournal.for_store(store, user="u") as j:
        j.score("a", 4)
    other = _lock_exclusively(journal_path(store), readers_too=True)
    try:
        code = main(["info", str(store)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    err = capsys.readouterr().err
    assert code == 2 and "locked by another process" in err and "internal error" not in err


def test_busy_timeout_set_after_opening_bounds_the_wait(tmp_path):
    """``busy_timeout_s`` is settable on an open journal (the explorer's tests shorten it)."""
    j = LabelJournal(tmp_path / "j.sqlite", user="ana")
    j.busy_timeout_s = 0.2
    other = sqlite3.connect(j.path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        t = time.monotonic()
        with pytest.raises(LabelError, match="locked by another process"):
            j.score("x", 1)
        assert time.monotonic() - t < 2.0   # not the 5 s default
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert j.busy_timeout_s == 0.2 and j.score("x", 1).score == 1
    j.close()
