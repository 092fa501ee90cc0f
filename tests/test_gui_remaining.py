"""The status bar's estimate of the interesting objects left (issue #23 item 11), through the
real window (offscreen): updated after each refit, its plot, and reset when the store closes."""

from __future__ import annotations

import gui_qt
import numpy as np
import pytest
from gui_qt import key, open_window
from PySide6 import QtCore

from galexplorer.gui.remaining import RemainingIndicator, RemainingPoint, indicator_text

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 600   # objects in the store fixture's store (gui_qt.store)
Key = QtCore.Qt.Key


def _label_batch(w, n: int = 10) -> None:
    ex = w.explorer
    c = ex.score_array("cluster")
    for _ in range(n):
        key(w, Key.Key_5 if c[ex.current] == 0 else Key.Key_1)


def test_the_estimate_follows_each_refit_and_plots_its_history(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ind = w.remaining
    assert ind.isHidden()                              # no model yet: nothing to estimate
    for refit in (1, 2):
        _label_batch(w)
        assert ex.wait_idle(60)
        qtbot.waitUntil(lambda refit=refit: len(ind.points) == refit, timeout=5000)
        est = ex.state.remaining
        assert est is not None and ind.isVisible()
        assert ind.text() == indicator_text(est) and f"~{est['expected']:.0f} left" in ind.text()
        assert f"{est['found']} found" in ind.text()
        assert "next batch" in ind.toolTip()
        # what the window shows is what the labels say: found = labelled objects scored >= 3
        labels = ex.session.labels
        assert est["found"] == int(np.sum(labels[np.isfinite(labels)] >= 3))
        assert est["low"] <= est["expected"] <= est["high"]
    assert [p.labels for p in ind.points] == [10, 20]
    ind.click()
    qtbot.waitUntil(lambda: ind.popup is not None and ind.popup.isVisible(), timeout=2000)
    xs, ys = ind.popup.estimate.getData()
    assert list(xs) == [10, 20] and list(ys) == [p.expected for p in ind.points]
    ind.click()
    assert not ind.popup.isVisible()
    assert QtCore.Qt.FocusPolicy.NoFocus == ind.focusPolicy()      # keys stay with labelling
    w.unload()
    assert ind.isHidden() and ind.points == []
    w.close()


def test_undo_rewinds_the_history_and_the_stopping_hint_is_marked(qtbot):
    class State:
        def __init__(self, n, found, expected, stop, remaining=True):
            self.n_labels = n
            self.remaining = {"found": found, "expected": expected, "low": 0, "high": 9, "stop": stop,
                              "threshold": 3.0, "n_unlabelled": 100, "level": 0.9, "batch_size": 10,
                              "next_yield": 0.2 if stop else 2.0, "stop_below": 0.5} if remaining else None

    ind = RemainingIndicator()
    qtbot.addWidget(ind)
    for n in (10, 20, 30):
        ind.update_state(State(n, n // 10, 5.0, False))
    ind.update_state(State(20, 2, 4.0, True))          # an undo: the refit at 20 labels replaces 20 and 30
    assert ind.points == [RemainingPoint(10, 1, 5.0, 0, 9, False), RemainingPoint(20, 2, 4.0, 0, 9, True)]
    assert ind.text().endswith("stop?") and ind.property("stop") is True
    assert "unlikely to find much" in ind.toolTip()
    ind.update_state(State(30, 3, 1.0, False, remaining=False))   # a scorer without an uncertainty
    assert ind.isHidden()
