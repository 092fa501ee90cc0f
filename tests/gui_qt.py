"""Helpers and fixtures for the explorer's pytest-qt tests: isolated settings, a guard that
fails a test leaving a window open or a worker thread running, and real mouse gestures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtTest, QtWidgets


@pytest.fixture
def gui_settings(tmp_path, monkeypatch):
    """Settings in a folder of the test's own (never the user's)."""
    folder = tmp_path / "settings"
    folder.mkdir()
    monkeypatch.setenv("GALEXPLORER_SETTINGS_DIR", str(folder))
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(folder))
    from galexplorer.gui.settings import Settings

    return Settings()


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("galexplorer-") and t.is_alive()]


@pytest.fixture
def no_leaks(qapp):
    """Fail the test when it leaves a visible window or a running worker thread behind."""
    yield
    deadline = time.monotonic() + 10
    while _worker_threads() and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    # the KD-tree builder is a short daemon thread; the others are the explorer's workers
    left = [t.name for t in _worker_threads()]
    from galexplorer.gui.modelproc import live_processes

    procs = live_processes()
    qapp.processEvents()
    windows = [w for w in QtWidgets.QApplication.topLevelWidgets() if w.isVisible()]
    for w in windows:
        w.close()
    assert not left, f"worker threads still running after the test: {left}"
    assert not procs, f"model processes still running after the test: {procs}"
    assert not windows, f"windows left open: {[type(w).__name__ for w in windows]}"


@pytest.fixture
def store(request, tmp_path):
    """A fresh store of :func:`gui_stores.build_store` (labels start empty in every test) of the
    test module's ``STORE_OBJECTS`` objects (300 when it sets none), for :func:`open_window`."""
    from gui_stores import build_store

    return build_store(tmp_path / "store.h5", getattr(request.module, "STORE_OBJECTS", 300))


def open_window(qtbot, store, settings, user: str = "tester", size=(1400, 900)):
    """A real main window on ``store``, shown and settled (first fit done)."""
    from galexplorer.gui.app import application, settle
    from galexplorer.gui.main_window import MainWindow

    application()
    w = MainWindow(settings, user=user)
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    w.load(store)
    settle(w)
    return w


def viewport_pos(scatter, x: float, y: float) -> QtCore.QPoint:
    """Viewport pixel of a data point of the scatter."""
    sp = scatter.getViewBox().mapViewToScene(QtCore.QPointF(float(x), float(y)))
    return scatter.mapFromScene(sp)


def hover(scatter, x: float, y: float) -> QtCore.QPoint:
    pos = viewport_pos(scatter, x, y)
    QtTest.QTest.mouseMove(scatter.viewport(), pos)
    return pos


def drag(scatter, points_xy: np.ndarray, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    """A left-button drag through data points (lasso or rectangle), as real mouse events."""
    vp = scatter.viewport()
    pts = [viewport_pos(scatter, x, y) for x, y in points_xy]
    left = QtCore.Qt.MouseButton.LeftButton

    def send(kind, p, buttons):
        ev = QtGui.QMouseEvent(kind, QtCore.QPointF(p), QtCore.QPointF(vp.mapToGlobal(p)), left
                               if kind != QtCore.QEvent.Type.MouseMove else QtCore.Qt.MouseButton.NoButton,
                               buttons, modifiers)
        QtWidgets.QApplication.sendEvent(vp, ev)

    send(QtCore.QEvent.Type.MouseButtonPress, pts[0], left)
    # pyqtgraph drops mouse moves closer than 10 ms apart (its mouseRateLimit): pace them
    for p in pts[1:]:
        QtTest.QTest.qWait(12)
        send(QtCore.QEvent.Type.MouseMove, p, left)
    send(QtCore.QEvent.Type.MouseButtonRelease, pts[-1], QtCore.Qt.MouseButton.NoButton)


def key(widget, k, modifiers=QtCore.Qt.KeyboardModifier.NoModifier) -> None:
    QtTest.QTest.keyClick(widget, k, modifiers)
    QtWidgets.QApplication.processEvents()


def runqueue_wait() -> float:
    """Seconds the calling thread has waited for a core (Linux ``schedstat``), or 0.0 where
    unknown. A wall-clock gap in the UI thread less this is the stall the window would show
    with a core free (see tests/test_gui_responsive.py)."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0
