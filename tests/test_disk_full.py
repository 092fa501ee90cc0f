"""A disk that fills: the store's folder on a small tmpfs (mounted and removed by the test).

A label that cannot be committed is a one-line "disk full" error and nothing acknowledged
before it is lost; once space is freed, labelling goes on in the same journal, without
reopening it. An export to a full disk is a one-line error (exit 2) and the old file is intact.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import uuid

import gui_qt
import pytest
from active_synthetic import planted, restore_cli_logging, write_store

from galexplorer.cli import main
from galexplorer.errors import LabelError
from galexplorer.labels import LabelJournal, journal_path

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs mounted on a fresh folder (root and a mount-capable container needed)."""
    yield from _mounted(tmp_path, "2m")


@pytest.fixture
def roomier_disk(tmp_path):
    """An 8 MiB tmpfs: room for a store with thumbnails for the window."""
    yield from _mounted(tmp_path, "8m")


def _mounted(tmp_path, size: str):
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    if not shutil.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(folder) -> os.PathLike:
    """Write a file in ``folder`` until the disk is full; returns it (delete it to free the space)."""
    filler = folder / "filler.bin"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_label_on_a_full_disk_is_one_line_and_labelling_goes_on_after_space_is_freed(small_disk):
    emb, _, _ = planted(60)
    store = write_store(small_disk / "s.h5", emb, {})
    j = LabelJournal.for_store(store, user="ana")
    for i in range(40):
        j.score(f"obj{i:05d}", i % 6)
    filler = fill(small_disk)
    with pytest.raises(LabelError) as exc:
        for i in range(40, 400):        # the -wal has room for a few more frames at most
            j.score(f"obj{i:05d}", i % 6)
    acked = i                            # scores 0..acked-1 returned: they are committed
    msg = str(exc.value)
    assert msg.startswith(f"{journal_path(store)}: disk full") and "free" in msg and "\n" not in msg
    with LabelJournal.for_store(store, readonly=True) as other:          # nothing acknowledged is lost
        assert other.current("ana") == {f"obj{k:05d}": k % 6 for k in range(acked)}
    filler.unlink()
    j.score(f"obj{acked:05d}", 5)        # the same journal, not reopened
    j.score("obj00999", 1)
    assert j.current()[f"obj{acked:05d}"] == 5 and len(j.current()) == acked + 2
    j.close()
    with LabelJournal.for_store(store, readonly=True) as other:
        assert len(other.current("ana")) == acked + 2


@pytest.mark.parametrize("what", ["export", "labels export"])
def test_an_export_to_a_full_disk_is_one_line_and_the_old_file_is_intact(tmp_path, small_disk, capsys, what):
    emb, _, _ = planted(300)
    store = write_store(tmp_path / "s.h5", emb, {})
    with LabelJournal.for_store(store, user="ana") as j:
        for i in range(30):
            j.score(f"obj{i:05d}", i % 6)
    out = small_disk / ("ranked.csv" if what == "export" else "events.csv")
    argv = (["export", str(store), "-o", str(out)] if what == "export"
            else ["labels", "export", str(store), str(out)])
    assert main(argv) == 0
    capsys.readouterr()
    old = _digest(out)
    with LabelJournal.for_store(store, user="ana") as j:   # more labels: the new file would be bigger
        for i in range(30, 300):
            j.score(f"obj{i:05d}", i % 6)
    filler = fill(small_disk)
    assert main(argv) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]   # (export logs its steps)
    assert len(errors) == 1, errors
    err = errors[0]
    assert err.startswith(f"galexplorer {what.split()[0]}: error: {out}: disk full") and "free some space" in err, err
    assert "internal error" not in err and "Traceback" not in err
    assert _digest(out) == old
    assert sorted(p.name for p in small_disk.iterdir()) == sorted([out.name, filler.name] +
                                                                   ([out.name + ".json"] if what == "export" else []))
    filler.unlink()
    assert main(argv) == 0 and _digest(out) != old


@pytest.mark.gui
def test_a_key_press_on_a_full_disk_says_so_in_the_window_and_does_not_advance(qtbot, roomier_disk, gui_settings,
                                                                               no_leaks):
    from gui_qt import key, open_window
    from gui_stores import build_store
    from PySide6 import QtCore

    store = build_store(roomier_disk / "store.h5", 300)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    key(w, QtCore.Qt.Key.Key_4)
    assert w.counters["scored"].text() == "1 scored"
    filler = fill(roomier_disk)
    here = ex.current
    w.last_error = ""
    for _ in range(200):                 # until the -wal's last free frame is used up
        key(w, QtCore.Qt.Key.Key_4)
        if w.last_error:
            break
        here = ex.current
    assert w.last_error.startswith(f"{journal_path(store)}: disk full") and "no need to reopen" in w.last_error
    assert ex.current == here, "the view advanced past a score that was not saved"
    scored = ex.session.n_labelled
    with LabelJournal.for_store(store, readonly=True) as other:
        assert len(other.current("tester")) == scored        # every acknowledged key press is there
    filler.unlink()
    key(w, QtCore.Qt.Key.Key_4)          # the same window goes on
    assert ex.current != here and ex.session.n_labelled == scored + 1
    w.close()


def test_a_store_or_cutouts_file_that_does_not_fit_is_one_line_and_leaves_nothing(tmp_path, small_disk, capsys):
    # before: the temporary file stayed, the error was HDF5's many-line text, and the
    # interpreter could crash at exit closing the half-written file
    import numpy as np
    from astropy.io import fits

    from galexplorer.errors import StoreError

    emb, _, _ = planted(60)
    old = write_store(small_disk / "s.h5", emb, {})        # fits; the next, bigger one does not
    before = _digest(old)
    big, _, _ = planted(20000, dim=16)
    with pytest.raises(StoreError) as exc:
        write_store(small_disk / "s.h5", big, {})
    assert str(exc.value).startswith(f"{old}: disk full") and "\n" not in str(exc.value)
    assert _digest(old) == before and sorted(p.name for p in small_disk.iterdir()) == ["s.h5"]
    # ingest (the cutouts writer) through the command line
    rng = np.random.default_rng(0)
    (tmp_path / "in").mkdir()
    for k in range(40):
        fits.PrimaryHDU(rng.normal(0, 1, (3, 32, 32)).astype(np.float32)).writeto(tmp_path / "in" / f"o{k:03d}.fits")
    filler = fill(small_disk)
    code = main(["ingest", str(tmp_path / "in"), "-o", str(small_disk / "c.h5"), "--size", "32", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(
        f"galexplorer ingest: error: {small_disk / 'c.h5'}: disk full"), err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "s.h5"]
    filler.unlink()
    assert main(["ingest", str(tmp_path / "in"), "-o", str(small_disk / "c.h5"), "--size", "32", "-q"]) == 0


def test_a_training_checkpoint_that_does_not_fit_is_one_line_and_the_previous_one_is_intact(small_disk):
    # before: torch's "unexpected pos 704 vs 598" RuntimeError ("internal error" in the CLI)
    torch = pytest.importorskip("torch")
    from galexplorer.errors import CheckpointError
    from galexplorer.ssl.checkpoint import LATEST, save_checkpoint

    run = small_disk / "run"
    run.mkdir()
    save_checkpoint(run, {"epoch": 1, "w": torch.zeros(1000)})
    before = _digest(run / LATEST)
    filler = fill(small_disk)
    with pytest.raises(CheckpointError) as exc:
        save_checkpoint(run, {"epoch": 2, "w": torch.zeros(200_000)})
    assert str(exc.value).startswith(f"{run / LATEST}: disk full") and "--resume" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert _digest(run / LATEST) == before and [p.name for p in run.iterdir()] == [LATEST]
    filler.unlink()
    save_checkpoint(run, {"epoch": 2, "w": torch.zeros(200_000)})
    assert torch.load(run / LATEST, weights_only=True)["epoch"] == 2
