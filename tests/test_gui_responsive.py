"""The UI thread keeps running while the model refits on 10^5 objects: a 10 ms timer never
waits more than 100 ms.

A wall-clock gap between two ticks is the UI thread's own work, the time it is blocked (on
the interpreter lock, a socket, a file) and the time the machine makes it wait for a free
core. On a quiet 2-core machine the last is a few ms; with a load average of 15 on 2 cores it
alone passes 100 ms (a busy loop of 0.5 s waited 0.37 s for a core). So each gap is measured
less the UI thread's run-queue wait over the same interval (Linux's per-thread
``schedstat``, measured in the same run): the stall the window would show with a core free.
That is the old wall-clock gap on a quiet machine, and it still catches a refit that holds
the interpreter lock or runs in the UI thread. Without ``schedstat`` the wall-clock gap is
used as it is. benchmarks/bench_gui_stall.py measures the figure beside a threaded reference.

The test process carries every earlier test's objects: with ~3 million of them one full
collection by Python's cyclic garbage collector takes ~0.25 s, and one fell inside the refit in
CI (a 100.2 ms "stall" with 96 ms of UI-thread CPU). So the earlier tests' objects are collected
and frozen first (``gc.freeze``, as ``run_app`` does for the window's own start-up objects),
and the collector's pauses inside the phase are reported beside the stall.
"""

from __future__ import annotations

import gc
import time

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window, runqueue_wait
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


def _phase(qtbot, ticks: list, seconds: float | None = None, until=None) -> dict:
    """Spin the event loop for ``seconds`` or ``until()``; the longest wall-clock gap between
    ticks, the longest gap less the run-queue wait inside it (the stall), the most UI-thread
    CPU time between ticks, and the duration, all in seconds."""
    ticks.clear()
    pauses: list[float] = []
    started = [0.0]

    def collector(phase, info):
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(collector)
    t0 = time.perf_counter()
    while (time.perf_counter() - t0 < seconds) if seconds is not None else not until():
        qtbot.wait(5)
        assert time.perf_counter() - t0 < 120, "the refit did not finish"
    secs = time.perf_counter() - t0
    if until is not None:
        qtbot.wait(150)   # the result's repaint and table update happen in the UI thread too
    gc.callbacks.remove(collector)
    t = np.array(ticks)
    assert len(t) > 10
    d = np.diff(t, axis=0)
    return {"wall": float(d[:, 0].max()), "stall": float((d[:, 0] - d[:, 2]).max()),
            "cpu": float(d[:, 1].max()), "secs": secs,
            "gc": max(pauses, default=0.0)}


def test_ui_thread_never_blocked_during_a_refit(qtbot, qapp, big_store, gui_settings):
    w = open_window(qtbot, big_store, gui_settings)
    ex = w.explorer
    assert ex.state.n_labels == 80 and ex.state.scorer == DEFAULT_SCORER
    ticks: list[tuple[float, float, float]] = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time(), runqueue_wait())))
    # colour by the model, so the new result also repaints the map
    w.scatter_panel.colour.setCurrentText("model: predicted score")
    gc.collect()
    gc.freeze()     # the earlier tests' objects are not the window's (see the module's docstring)
    timer.start()
    qtbot.wait(50)
    runs = ex.refits.runs
    left = [2]

    def burst():
        # a burst of three requests: the first runs, the third replaces the second, which never runs
        for _ in range(3):
            ex.request_refit("manual")

    def done():
        if ex.refitting:
            return False
        left[0] -= 1
        if left[0]:
            burst()
        return not left[0]

    idle = _phase(qtbot, ticks, seconds=1.0)
    burst()
    refit = _phase(qtbot, ticks, until=done)
    timer.stop()
    assert ex.refits.runs == runs + 2 * 2
    msg = (f"UI thread stalled {refit['stall'] * 1e3:.0f} ms during the refits (longest wall-clock gap "
           f"{refit['wall'] * 1e3:.0f} ms, the rest waiting for a core; idle for comparison: "
           f"{idle['stall'] * 1e3:.0f} ms, {idle['wall'] * 1e3:.0f} ms; most UI-thread CPU between ticks "
           f"{refit['cpu'] * 1e3:.0f} ms; longest garbage-collector pause {refit['gc'] * 1e3:.0f} ms)")
    print(msg)
    gc.unfreeze()
    assert refit["stall"] < 0.100, msg
    w.close()
