"""The journal as files a user handles: odd folder names, the -wal, backups, merging, two writers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
from active_synthetic import planted, restore_cli_logging, write_store

from galexplorer.cli import main
from galexplorer.errors import LabelError
from galexplorer.labels import LabelJournal, journal_path
from galexplorer.labels.journal import read_events, wal_label_count, wal_path, write_events

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)

ODD = "a #?% b ü"

WRITER = """
import sys
from galexplorer.labels import LabelJournal
j = LabelJournal(sys.argv[1], user=sys.argv[2])
n = int(sys.argv[3])
i = 0
while n < 0 or i < n:
    j.score(f"{sys.argv[2]}{i}", i % 6)
    print(i, flush=True)   # acknowledged: score() returned, so it is committed
    i += 1
j.close()
"""


def _writer(path, user, n=-1):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), user, str(n)], stdout=subprocess.PIPE,
                            text=True, env=env)


def test_store_in_an_odd_folder_opens_labels_and_exports(tmp_path, capsys):
    folder = tmp_path / ODD
    emb, _, _ = planted(60)
    store = write_store(folder / "s.h5", emb, {})
    with LabelJournal.for_store(store, user="u") as j:
        for i in range(45):
            j.score(f"obj{i:05d}", i % 6)
    with LabelJournal.for_store(store, readonly=True) as j:     # the read-only URI is quoted
        assert j.counts()["labels"] == 45
    assert main(["info", str(store)]) == 0
    assert "45 by 1 user(s)" in capsys.readouterr().out
    assert main(["export", str(store), "-o", str(folder / "ranked.csv")]) == 0
    assert pd.read_csv(folder / "ranked.csv")["label"].notna().sum() == 45
    assert main(["labels", "export", str(store), str(folder / "ev.json")]) == 0
    assert len(json.loads((folder / "ev.json").read_text())["events"]) == 45


@pytest.mark.parametrize("name", ["hash#dir", "q?dir", "pc%41dir", "sp ace", "ümlaut"])
def test_readonly_open_in_each_odd_folder(tmp_path, name):
    path = journal_path(tmp_path / name / "s.h5")
    with LabelJournal(path, user="u") as j:
        j.score("x", 2)
    with LabelJournal(path, readonly=True) as j:
        assert j.current("u") == {"x": 2}
    assert not (tmp_path / name.split("#")[0].split("?")[0]).with_suffix(".h5.labels.sqlite").exists()


def test_kill_9_mid_session_info_and_documented_copy_hold_every_label(tmp_path, capsys):
    folder = tmp_path / ODD
    emb, _, _ = planted(20)
    store = write_store(folder / "s.h5", emb, {})
    path = journal_path(store)
    proc = _writer(path, "w")
    acked = []
    t0 = time.monotonic()
    while len(acked) < 60 and time.monotonic() - t0 < 60:
        line = proc.stdout.readline()
        if not line:
            break
        acked.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(acked) >= 20
    assert wal_path(path).exists()            # the labels since the last checkpoint are in the -wal
    assert main(["info", str(store)]) == 0     # read-only: counts every acknowledged label
    out = capsys.readouterr().out
    labelled = int(out.split("  labels       ")[1].split(" by ")[0])
    assert labelled >= len(acked) and "-wal" in out
    # the backup docs/store-format.md describes: the .sqlite with its -wal beside it
    backup = tmp_path / "backup"
    backup.mkdir()
    for f in (path, wal_path(path)):
        shutil.copy2(f, backup / f.name)
    assert wal_label_count(backup / path.name) >= len(acked)
    with LabelJournal(backup / path.name, readonly=True) as j:
        cur = j.current("w")
    assert all(cur.get(f"w{i}") == i % 6 for i in acked)
    # ...or `labels export`, one file with every event
    assert main(["labels", "export", str(store), str(backup / "events.csv")]) == 0
    ev = pd.read_csv(backup / "events.csv")
    assert set(f"w{i}" for i in acked) <= set(ev["object_id"])


def test_checkpoint_puts_every_label_in_the_sqlite_file(tmp_path):
    path = journal_path(tmp_path / "s.h5")
    j = LabelJournal(path, user="u")
    for i in range(30):
        j.score(f"o{i}", 3)
    assert wal_path(path).stat().st_size > 0
    assert j.checkpoint()
    assert wal_path(path).stat().st_size == 0
    alone = tmp_path / "alone.sqlite"
    shutil.copy2(path, alone)                  # a copy of the .sqlite only
    with LabelJournal(alone, readonly=True) as c:
        assert c.counts()["labels"] == 30
    j.close()


def test_a_file_whose_tables_are_elsewhere_says_so_and_never_says_move_a_labelled_file_aside(tmp_path):
    # a bare .sqlite without tables and without a -wal (e.g. copied alone from a crashed session)
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).execute("PRAGMA user_version=1").connection.close()
    with pytest.raises(LabelError, match="no -wal is beside it") as exc:
        LabelJournal(empty, readonly=True)
    assert "copy FILE-wal beside it" in str(exc.value)
    # events without the meta table: holds labels, so never "move aside"
    held = tmp_path / "held.sqlite"
    db = sqlite3.connect(held)
    db.execute("CREATE TABLE events (seq INTEGER, kind TEXT)")
    db.executemany("INSERT INTO events VALUES (?, 'score')", [(i,) for i in range(7)])
    db.commit()
    db.close()
    with pytest.raises(LabelError, match="holds 7 labels") as exc:
        LabelJournal(held, readonly=True)
    assert "move" not in str(exc.value) and "keep the file" in str(exc.value)
    # a damaged file with a -wal beside it: keep both
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"x" * 5000)
    wal_path(bad).write_bytes(b"y" * 5000)
    with pytest.raises(LabelError, match="-wal") as exc:
        LabelJournal(bad, readonly=True)
    assert "keep both" in str(exc.value) and "move the file aside" not in str(exc.value)


def test_two_processes_label_one_store_at_once(tmp_path):
    path = journal_path(tmp_path / "s.h5")
    LabelJournal(path, user="setup").close()
    procs = [_writer(path, user, 80) for user in ("ana", "ben")]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(len(o.split()) == 80 for o in outs)
    with LabelJournal(path, readonly=True) as j:
        assert j.counts()["users"] == 2 and j.counts()["labels"] == 160
        assert j.current("ana") == {f"ana{i}": i % 6 for i in range(80)}


def _two_labellers(tmp_path):
    a = LabelJournal(tmp_path / "ana.sqlite", user="ana")
    a.score("x", 5)
    a.score_many(["y", "z"], 1)
    a.note("x", "-ve, +J1234 =odd")
    a.undo()                       # retracts the note
    a.exclude(["z"])
    b = LabelJournal(tmp_path / "ben.sqlite", user="ben")
    b.score("x", 3)
    b.score("y", 2)
    b.undo()
    return a, b


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_import_round_trip_is_exact(tmp_path, fmt):
    a, _ = _two_labellers(tmp_path)
    out = write_events(a.events(), tmp_path / f"ana.{fmt}")
    back = read_events(out)
    assert back == a.events()
    fresh = LabelJournal(tmp_path / "fresh.sqlite", user="c")
    assert fresh.import_events(back) == (len(back), 0)
    assert fresh.current("ana") == a.current() and fresh.excluded() == a.excluded()
    assert fresh.notes() == {} and fresh.import_events(back) == (0, len(back))   # idempotent


def test_import_merges_two_labellers_and_is_idempotent(tmp_path, capsys):
    emb, _, _ = planted(10)
    store = write_store(tmp_path / "s.h5", emb, {})
    a, b = _two_labellers(tmp_path)
    a.close()
    b.close()
    write_events(LabelJournal(tmp_path / "ben.sqlite", readonly=True).events(), tmp_path / "ben.csv")
    assert main(["labels", "import", str(store), str(tmp_path / "ana.sqlite"), str(tmp_path / "ben.csv")]) == 0
    assert "6 events added, 0 already present" in capsys.readouterr().out.splitlines()[0]
    assert main(["labels", "import", str(store), str(tmp_path / "ben.csv"), str(tmp_path / "ana.sqlite")]) == 0
    assert capsys.readouterr().out.count("0 events added") == 2
    with LabelJournal.for_store(store, user="ana") as j:
        assert j.all_current() == {("x", "ana"): 5, ("y", "ana"): 1, ("z", "ana"): 1, ("x", "ben"): 3}
        assert j.excluded() == {"z"}
        j.undo()                   # an imported action is still one undo step for its user
        assert j.excluded() == set()


def test_import_refuses_bad_files_with_one_line(tmp_path, capsys):
    emb, _, _ = planted(10)
    store = write_store(tmp_path / "s.h5", emb, {})
    bad = tmp_path / "bad.csv"
    bad.write_text("seq,action,kind,object_id,score,user,time,note,target\n1,1,score,x,9,u,t,,\n")
    assert main(["labels", "import", str(store), str(bad)]) == 2
    assert "outside 0–5" in capsys.readouterr().err
    bad.write_text("seq,kind\n1,score\n")
    assert main(["labels", "import", str(store), str(bad)]) == 2
    assert "lacks action" in capsys.readouterr().err
    (tmp_path / "x.json").write_text("[1, 2]")
    assert main(["labels", "import", str(store), str(tmp_path / "x.json")]) == 2
    assert "not a label-events JSON" in capsys.readouterr().err
    assert main(["labels", "import", str(tmp_path / "none.h5"), str(bad)]) == 2
    assert main(["labels", "export", str(store), str(tmp_path / "ev.txt.gz")]) == 2
    err = capsys.readouterr().err
    assert "no such store" in err and "cannot tell the format" in err
    assert LabelJournal.for_store(store, readonly=True).counts()["events"] == 0
