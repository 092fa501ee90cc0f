"""The UI thread keeps running while the model refits on 10^5 objects: a 10 ms timer never
waits more than 100 ms."""

from __future__ import annotations

import time

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window
from gui_stores import build_store
from PySide6 import QtCore

from galexplorer.active.registry import DEFAULT_SCORER
from galexplorer.labels import LabelJournal

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks

N = 100_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    path = build_store(tmp_path_factory.mktemp("big") / "big.h5", N, thumbnails=False)
    # 80 labels spread over the map, as after an afternoon's first hour
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(path) as s:
        ids, cluster = s.ids, s.score("cluster")
    rng = np.random.default_rng(1)
    rows = rng.choice(N, 80, replace=False)
    with LabelJournal.for_store(path, user="tester") as j:
        for r in rows:
            j.score(ids[r], 4 if cluster[r] == 0 else int(rng.integers(0, 3)))
    return path


def test_ui_thread_never_blocked_during_a_refit(qtbot, qapp, big_store, gui_settings):
    w = open_window(qtbot, big_store, gui_settings)
    ex = w.explorer
    assert ex.state.n_labels == 80 and ex.state.scorer == DEFAULT_SCORER
    ticks: list[float] = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    # colour by the model, so the new result also repaints the map
    w.scatter_panel.colour.setCurrentText("model: predicted score")
    timer.start()
    qtbot.wait(50)
    runs = ex.refits.runs
    for _ in range(2):
        key_t = time.perf_counter()
        # a burst of three requests: the first runs, the third replaces the second, which never runs
        for _ in range(3):
            ex.request_refit("manual")
        while ex.refitting and time.perf_counter() - key_t < 120:
            qtbot.wait(5)
        assert not ex.refitting, "the refit did not finish"
    qtbot.wait(150)   # the result's repaint and table update happen in the UI thread too
    timer.stop()
    gaps = np.diff(ticks)
    assert len(gaps) > 20
    assert ex.refits.runs == runs + 2 * 2
    assert gaps.max() < 0.100, f"UI thread blocked {gaps.max() * 1e3:.0f} ms (median tick {np.median(gaps) * 1e3:.0f} ms)"
    w.close()
