"""A damaged journal: `labels check` finds it, `labels recover` copies back what can be read,
and every command (and the window) that meets it says so in one line pointing to `recover`."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import gui_qt
import pytest
from active_synthetic import planted, restore_cli_logging, write_store

from galexplorer.active.session import LabellingSession
from galexplorer.cli import main
from galexplorer.errors import LabelError
from galexplorer.labels import LabelJournal, journal_path
from galexplorer.labels.journal import wal_path
from galexplorer.labels.pagescan import scan_rows
from galexplorer.labels.recover import check_journal, recover_journal
from galexplorer.store import EmbeddingStore

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)
gui_settings = gui_qt.gui_settings

N = 1500          # events: about 40 pages, a b-tree two levels deep


def _labelled_store(tmp_path, n_objects=300):
    """A store whose journal holds N events by two users (scores, notes, an exclusion, undos)."""
    emb, _, _ = planted(n_objects)
    store = write_store(tmp_path / "s.h5", emb, {})
    with EmbeddingStore(store) as s:
        ids = [str(i) for i in s.ids[:n_objects]]
    ana, ben = (LabelJournal.for_store(store, user=u) for u in ("ana", "ben"))
    made = 0
    while made < N - 4:
        j = ana if made % 3 else ben
        j.score(ids[made % len(ids)], made % 6)
        made += 1
    ana.note(ids[0], "a \"merger\", =odd")
    ben.exclude([ids[1]])
    ana.undo()                      # retracts the note
    ben.score(ids[2], 5)
    ana.close()
    ben.close()
    return store, ids


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(path):
    with LabelJournal(path, readonly=True) as j:
        return j.events()


@pytest.fixture(scope="module")
def _labelled_template(tmp_path_factory):
    """The 1,500-event store, written once a module (each commit is a disk sync: seconds)."""
    folder = tmp_path_factory.mktemp("labelled")
    store, ids = _labelled_store(folder)
    return folder, store.name, ids


@pytest.fixture
def labelled(_labelled_template, tmp_path):
    """A fresh copy of the template's store and journal (with its -wal, if any) for each test."""
    folder, name, ids = _labelled_template
    for f in folder.iterdir():
        shutil.copyfile(f, tmp_path / f.name)
    store = tmp_path / name
    good = tmp_path / "good.sqlite"
    shutil.copyfile(journal_path(store), good)
    return store, ids, _events(good)


def _truncate(path):
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _overwrite_middle(path):
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size // 2 + 100)
        fh.write(bytes((i * 37 + 11) % 256 for i in range(3000)))   # a bad copy: fixed garbage


def _zero_events_root(path):
    """Zero the events table's root page: every row is below it, so SQLite reaches none."""
    db = sqlite3.connect(path)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(b"\0" * size)


def test_check_a_healthy_journal_counts_per_user_and_last_event(labelled, capsys):
    store, ids, events = labelled
    assert main(["labels", "check", str(store)]) == 0
    out = capsys.readouterr().out
    assert "ok (integrity_check)" in out and f"{N:,} events" in out
    n_ana = sum(e.user == "ana" and e.kind == "score" for e in events)
    assert f"ana: 1 note, 1 retract, {n_ana:,} score" in out
    assert f"last event: #{N} score 5 of {ids[2]} by ben" in out
    found = check_journal(journal_path(store))    # the journal named directly
    assert found.ok and found.events == N and found.last.seq == N


@pytest.mark.parametrize("damage", [_truncate, _overwrite_middle])
def test_check_says_damaged_and_recover_gets_back_what_is_readable(labelled, tmp_path, capsys, damage):
    store, _, events = labelled
    journal = journal_path(store)
    damage(journal)
    before = _digest(journal)
    assert main(["labels", "check", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the label journal is damaged" in err
    assert "galexplorer labels recover" in err and "internal error" not in err

    out_path = tmp_path / "new.sqlite"
    assert main(["labels", "recover", str(store), "-o", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert _digest(journal) == before and not wal_path(journal).exists()    # the input is untouched
    got = _events(out_path)
    original = {e.seq: e for e in events}
    assert all(original[e.seq] == e for e in got)          # every recovered event exactly as written
    lost = sorted(set(original) - {e.seq for e in got})
    assert 0 < len(lost) < N and len(got) > N // 3
    assert f"recovered {len(got):,} of {N:,} events" in out
    assert f"lost {len(lost):,} event(s): #{lost[0]}" in out
    assert main(["labels", "check", str(out_path)]) == 0   # the new journal is healthy and opens
    with LabelJournal(out_path, user="ana") as j:
        j.score("x", 3)                                    # and can be labelled in
        assert j.events()[-1].seq == max(e.seq for e in got) + 1


def test_a_lost_interior_page_is_recovered_from_the_leaf_pages(labelled, tmp_path):
    store, _, events = labelled
    journal = journal_path(store)
    _zero_events_root(journal)
    with pytest.raises(LabelError, match="no event could be read"):     # SQLite alone reaches nothing
        recover_journal(store, tmp_path / "sqlite-only.sqlite", scan_pages=False)
    assert not (tmp_path / "sqlite-only.sqlite").exists()
    rec = recover_journal(store, tmp_path / "new.sqlite")
    assert rec.lost == 0 and rec.events == events and "a scan of its pages" in rec.methods
    assert _events(tmp_path / "new.sqlite") == events


def test_the_page_scan_reads_committed_events_in_the_wal(tmp_path):
    path = tmp_path / "j.sqlite"
    j = LabelJournal(path, user="ana")            # opened: checkpointed, then every score lands in the -wal
    j._db.execute("PRAGMA wal_autocheckpoint=0")  # (which SQLite would fold in past 1000 pages)
    for i in range(300):
        j.score(f"o{i}", i % 6)
    copy = tmp_path / "copy.sqlite"
    shutil.copyfile(path, copy)                   # as left by a kill -9: nothing folded in yet
    shutil.copyfile(wal_path(path), wal_path(copy))
    rows = {rowid: v for rowid, v in scan_rows(copy, wal_path(copy)) if len(v) == 9}
    assert sorted(rows) == list(range(1, 301)) and rows[300][2:5] == ("score", "o299", 5)
    assert not {rowid for rowid, v in scan_rows(copy) if len(v) == 9}   # not in the main file alone
    j.close()


def test_recover_never_overwrites(labelled, tmp_path, capsys):
    store, _, _ = labelled
    journal = journal_path(store)
    other = tmp_path / "exists.sqlite"
    other.write_bytes(b"keep me")
    before = _digest(journal)
    for target in (other, journal):
        assert main(["labels", "recover", str(store), "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert "recovery never overwrites a file" in err and len(err.strip().splitlines()) == 1
    assert other.read_bytes() == b"keep me" and _digest(journal) == before


@pytest.mark.parametrize("damage", [_truncate, _overwrite_middle, _zero_events_root])
def test_commands_meeting_a_damaged_journal_say_so_and_point_to_recover(labelled, tmp_path, capsys, damage):
    store, _, _ = labelled
    damage(journal_path(store))
    for argv in (["rank", str(store)], ["export", str(store), "-o", str(tmp_path / "r.csv")],
                 ["labels", "export", str(store), str(tmp_path / "e.csv")], ["info", str(store)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "damaged" in err, (argv, err)
        assert "galexplorer labels recover" in err and "internal error" not in err
    assert not (tmp_path / "r.csv").exists()
    # the labelling session (the window's open) refuses before writing anything into it
    before = _digest(journal_path(store))
    with EmbeddingStore(store) as s, pytest.raises(LabelError, match="labels recover"):
        LabellingSession(s, "ana")
    assert _digest(journal_path(store)) == before


def test_a_journal_damaged_in_the_middle_is_not_written_to(labelled):
    # before: SQLite opened it and appended, the damage found only by some later read
    store, _, _ = labelled
    _overwrite_middle(journal_path(store))
    with pytest.raises(LabelError, match="damaged") as exc:
        LabelJournal.for_store(store, user="ana")
    assert "galexplorer labels recover" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.gui
def test_the_window_opening_a_damaged_journal_says_so(qtbot, tmp_path, gui_settings):
    from gui_stores import build_store

    from galexplorer.gui.main_window import MainWindow

    store = build_store(tmp_path / "w.h5", 300)
    with LabelJournal.for_store(store, user="ana") as j:
        for i in range(N):
            j.score(f"nobody{i}", i % 6)
    _overwrite_middle(journal_path(store))
    w = MainWindow(gui_settings, user="tester")
    qtbot.addWidget(w)
    w.show()
    assert not w.try_load(store)
    assert "damaged" in w.last_error and "galexplorer labels recover" in w.last_error
    assert "internal error" not in w.last_error and w.explorer is None
    w.close()


def test_recover_names_a_missing_file(tmp_path, capsys):
    assert main(["labels", "check", str(tmp_path / "none.h5")]) == 2
    assert "no label journal here" in capsys.readouterr().err
    assert main(["labels", "recover", str(tmp_path / "none.h5"), "-o", str(tmp_path / "n.sqlite")]) == 2
    assert not (tmp_path / "n.sqlite").exists()
