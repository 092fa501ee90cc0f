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
