"""The model's process dies under the real window (offscreen), issue #27 item 3: ``kill -9``
mid-refit and an exception raised inside it are said in one status line, a new process
starts, the next refit works and no label is lost; a process that fails three times in a row
is reported once (a dialog) and not restarted until Ctrl+R.

Faults are injected through ``$GALEXPLORER_MODEL_FAULT`` (:data:`galexplorer.gui.modelproc.FAULT_ENV`):
a file of faults, one a line, each taken by the next fit in the model's process."""

from __future__ import annotations

import os
import signal

import gui_qt
import numpy as np
import pytest
from gui_qt import key, open_window
from PySide6 import QtCore

from galexplorer.gui.modelproc import FAULT_ENV, MAX_FAILURES_IN_A_ROW
from galexplorer.labels import LabelJournal

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 400   # objects in the store fixture's store (gui_qt.store)
Key = QtCore.Qt.Key


@pytest.fixture
def faults(tmp_path, monkeypatch):
    """The fault file the window's model processes read (empty: no fault)."""
    path = tmp_path / "faults.txt"
    path.write_text("")
    monkeypatch.setenv(FAULT_ENV, str(path))
    return path


class Recorder:
    """The window's status messages and committed scores, as they come."""

    def __init__(self, ex):
        self.messages: list[str] = []
        self.scored: list[tuple[str, int]] = []
        ex.message.connect(self.messages.append)
        ex.scored.connect(lambda oid, s: self.scored.append((oid, s)))

    def said(self, words: str) -> list[str]:
        return [m for m in self.messages if words in m]


def _press(w, n: int) -> None:
    """Score ``n`` objects by key, whatever the queue shows (1, 2, 3, …)."""
    for i in range(n):
        key(w, getattr(Key, f"Key_{i % 6}"))


def _journal_scores(store, user: str = "tester") -> list[tuple[str, int]]:
    with LabelJournal.for_store(store, readonly=True) as j:
        return [(e.object_id, int(e.score)) for e in j.events() if e.kind == "score" and e.user == user]


def _hang_and_kill(qtbot, w, faults, presses: int = 0) -> int:
    """Start a refit that hangs in the model's process, score ``presses`` objects meanwhile,
    then kill -9 that process mid-refit."""
    ex = w.explorer
    faults.write_text("hang")
    key(w, Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)      # Refit now
    qtbot.waitUntil(lambda: faults.read_text() == "", timeout=30_000)   # the child took it: mid-fit
    _press(w, presses)                 # labelling goes on while the model is stuck
    assert ex.refitting
    pid = ex.model.pid
    os.kill(pid, signal.SIGKILL)
    return pid


def _assert_no_label_lost(store, rec: Recorder) -> None:
    assert rec.scored, "nothing was scored"
    assert _journal_scores(store) == rec.scored     # every acknowledged score, in order, once


def test_kill_9_mid_refit_restarts_the_model_and_loses_no_label(qtbot, store, gui_settings, faults):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    rec = Recorder(ex)
    _press(w, 5)
    first = ex.model.pid
    starts = ex.model.starts
    _hang_and_kill(qtbot, w, faults, presses=3)
    assert ex.wait_idle(60)
    # one status line says what happened; no dialog for a process that was replaced
    said = rec.said("the model's process stopped (killed by SIGKILL) during the refit")
    assert len(said) == 1 and "started a new one" in said[0]
    assert getattr(w, "last_error", None) is None
    assert ex.model.pid not in (None, first) and ex.model.starts == starts + 1
    assert ex.model.failures == 0 and not ex.model.given_up
    assert ex.state.n_labels == 8      # the refit after the restart had every label
    # the next refit works, in the same new process
    before = ex.refits.runs
    _press(w, 10)
    assert ex.wait_idle(60)
    assert ex.refits.runs > before and ex.state.n_labels == 18
    assert ex.model.starts == starts + 1
    _assert_no_label_lost(store, rec)
    w.close()


@pytest.mark.slow
def test_an_exception_in_the_model_process_restarts_it(qtbot, store, gui_settings, faults):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    rec = Recorder(ex)
    _press(w, 4)
    first, starts = ex.model.pid, ex.model.starts
    faults.write_text("raise")
    key(w, Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert ex.wait_idle(60)
    said = rec.said("the model's process failed (RuntimeError: injected fault) during the refit")
    assert len(said) == 1 and "started a new one" in said[0]
    assert getattr(w, "last_error", None) is None
    assert ex.model.starts == starts + 1 and ex.model.pid != first
    assert ex.model.failures == 0 and ex.state.n_labels == 4
    _press(w, 10)
    assert ex.wait_idle(60) and ex.state.n_labels == 14
    _assert_no_label_lost(store, rec)
    w.close()


@pytest.mark.slow
def test_three_failures_in_a_row_are_reported_not_restarted_forever(qtbot, store, gui_settings, faults):
    assert MAX_FAILURES_IN_A_ROW == 3
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    rec = Recorder(ex)
    _press(w, 3)
    starts = ex.model.starts
    # a kill -9 mid-refit, then a crash and an exception in the two processes started after it
    _hang_and_kill(qtbot, w, faults)
    faults.write_text("exit\nraise")
    assert ex.wait_idle(60)
    assert ex.model.given_up and ex.model.failures == 3
    assert ex.model.starts == starts + 2           # two restarts, no third
    assert ex.model.pid is None
    # the two recovered failures got a status line each; the third, one clear dialog
    assert len(rec.said("started a new one")) == 2
    assert "stopped 3 times in a row and is not restarted" in w.last_error
    assert "Ctrl+R" in w.last_error and w.last_error.count("\n") == 0
    assert len(rec.said("Traceback")) == 0
    # labelling goes on; its batch refit does not start a 4th process
    errors_before = w.last_error
    _press(w, 12)
    assert ex.wait_idle(30)
    assert ex.model.starts == starts + 2 and ex.model.pid is None
    assert w.last_error == errors_before               # no dialog per batch
    assert "stopped" in ex.counters()["model"]
    assert w.queue.status.text().startswith("no refits: the model's process stopped 3 times in a row")
    # Ctrl+R tries again: a new process, a refit on every label, the counter reset
    key(w, Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)
    assert ex.wait_idle(60)
    assert not ex.model.given_up and ex.model.failures == 0
    assert ex.model.starts == starts + 3 and ex.state.n_labels == 15
    _assert_no_label_lost(store, rec)
    w.close()


@pytest.mark.slow
def test_the_counter_resets_after_a_successful_refit(qtbot, store, gui_settings, faults):
    """Two failures, a good refit, two failures: never three in a row, so never given up."""
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    for _ in range(2):
        faults.write_text("raise\nexit")     # fails twice, the third try (automatic) fits
        key(w, Key.Key_R, QtCore.Qt.KeyboardModifier.ControlModifier)
        assert ex.wait_idle(60)
        assert faults.read_text() == ""
        assert not ex.model.given_up and ex.model.failures == 0
    assert ex.state is not None and np.isfinite(ex.state.mean).all()
    w.close()
