"""Issue #23's acceptance session, in-process (the real window, offscreen): every shortcut in
every focus state, 30 labels, undo, the inspector zoomed, every Colour entry, a second labeller
and a third through File ▸ Labeller… — nothing reaches stderr, every control of the map's tool
bar stays visible at 1600×1000, the journal holds what was pressed, and the map shows what the
Colour box says. ``benchmarks/xvfb_session.py`` runs the same session in a real process under
Xvfb, with xdotool."""

from __future__ import annotations

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window
from PySide6 import QtCore, QtGui, QtTest, QtWidgets

from galexplorer.gui.actions import SHORTCUTS
from galexplorer.gui.geometry_report import toolbar_controls, window_report
from galexplorer.gui.main_window import MainWindow
from galexplorer.labels import LabelJournal

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 300   # objects in the store fixture's store (gui_qt.store)
SIZE = (1600, 1000)


@pytest.fixture
def no_browser(monkeypatch):
    """V opens the sky viewer: record the URL instead of starting a browser."""
    urls = []
    monkeypatch.setattr(QtGui.QDesktopServices, "openUrl", lambda url: urls.append(url.toString()) or True)
    return urls


class DialogCloser:
    """Closes, as Esc would, every dialog or extra window a key opens (a modal one from a timer,
    since it runs its own event loop), and counts them."""

    def __init__(self, window):
        self.window = window
        self.closed: list[str] = []
        self.timer = QtCore.QTimer()
        self.timer.setInterval(30)
        self.timer.timeout.connect(self.close_modal)

    def close_modal(self) -> None:
        for get in (QtWidgets.QApplication.activePopupWidget, QtWidgets.QApplication.activeModalWidget):
            top = get()
            if top is not None and top is not self.window:
                self.closed.append(top.windowTitle() or type(top).__name__)
                QtTest.QTest.keyClick(top, QtCore.Qt.Key.Key_Escape)

    def close_others(self) -> None:
        for top in QtWidgets.QApplication.topLevelWidgets():
            if top.isWindow() and top.isVisible() and top is not self.window \
                    and not isinstance(top, MainWindow):
                self.closed.append(top.windowTitle() or type(top).__name__)
                QtTest.QTest.keyClick(top, QtCore.Qt.Key.Key_Escape)
                if top.isVisible():
                    top.close()
        QtWidgets.QApplication.processEvents()


def press(w, seq: str, closer: DialogCloser | None = None) -> None:
    """A key as the platform delivers it (to the window's QWindow, which passes it on to the
    focus widget), closing what it opens."""
    ks = QtGui.QKeySequence(seq)[0]
    if closer is not None:
        closer.timer.start()
    QtTest.QTest.keyClick(w.windowHandle(), ks.key(), ks.keyboardModifiers())
    QtWidgets.QApplication.processEvents()
    if closer is not None:
        closer.timer.stop()
        closer.close_others()


def hidden_controls(w) -> list[str]:
    return [name for name, _, whole in toolbar_controls(w) if not whole]


def settle(w) -> None:
    assert w.explorer.wait_idle(120)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()


def check_step(w, capfd, step: str) -> None:
    """After each step: nothing on stderr, every tool-bar control whole, the map coloured as the
    Colour box says."""
    settle(w)
    err = capfd.readouterr().err
    assert err == "", f"{step} printed:\n{err}"
    assert hidden_controls(w) == [], f"after {step}"
    assert w.scatter.colour_spec.name == w.scatter_panel.colour.currentText(), f"after {step}"


def every_key_but_quit() -> list[str]:
    return [k for s in SHORTCUTS for k in s.keys if s.action != "quit"]


def label(w, scores: list[int]) -> dict[str, int]:
    """Score the objects shown, one key each; what each object got, by id."""
    ex = w.explorer
    w.activateWindow()             # as a user clicks into the window they label in
    w.scatter.setFocus()
    QtWidgets.QApplication.processEvents()
    given = {}
    for s in scores:
        i = ex.current
        assert i is not None
        press(w, str(s))
        assert ex.current != i, "the next object follows a score"
        given[ex.object_id(i)] = s
    return given


def mine(store, user: str) -> dict[str, int]:
    with LabelJournal.for_store(store, user=user, readonly=True) as j:
        return j.current(user)


@pytest.mark.slow
def test_scripted_session_leaves_stderr_empty_and_every_control_visible(qtbot, store, gui_settings, capfd,
                                                                       no_browser):
    w = open_window(qtbot, store, gui_settings, user="alice", size=SIZE)
    closer = DialogCloser(w)
    check_step(w, capfd, "opening")
    assert len(toolbar_controls(w)) == 11
    # 1. every key of the action table in every focus state (Ctrl+Q at the end)
    focus = {"map": w.scatter, "text field": w.candidates.text, "inspector": w.inspector.stretch,
             "gallery": w.gallery, "queue": w.queue}
    keys = every_key_but_quit()
    for where, widget in focus.items():
        for k in keys:
            w.activateWindow()
            widget.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
            QtWidgets.QApplication.processEvents()
            press(w, k, closer)
            err = capfd.readouterr().err
            assert err == "", f"{k} with the focus in the {where} printed:\n{err}"
        check_step(w, capfd, f"every key with the focus in the {where}")
    assert {"Open store", "Export ranked list", "Note", "Keyboard shortcuts"} <= {
        t.split(" — ")[0] for t in closer.closed}, closer.closed
    assert no_browser, "V opened the sky viewer"
    ex = w.explorer
    if ex.excluded.any():          # X excluded objects (and undo/redo moved them): take them back
        ex.include(np.flatnonzero(ex.excluded))
    w.candidates.text.clear()      # the digits typed into the filter field
    before = mine(store, "alice")

    # 2. 30 labels with the number keys, focus on the map, then undo
    w.scatter.setFocus()
    if ex.current is None:
        press(w, "Space")
    scores = [k % 6 for k in range(30)]
    given = label(w, scores)
    settle(w)
    now = mine(store, "alice")
    assert len(given) == 30
    assert {o: now[o] for o in given} == given
    assert len(now) == len(set(before) | set(given))
    last = list(given)[-1]
    press(w, "Ctrl+Z")
    settle(w)
    after_undo = mine(store, "alice")
    assert last not in after_undo or before.get(last) == after_undo[last]
    assert len(after_undo) == len(now) - (last not in before)
    check_step(w, capfd, "30 labels and undo")

    # 3. zoom the inspector with the wheel
    docks = {n: d.width() for n, d in w.docks.items() if d.isVisible()}
    stamp = w.inspector.stamp
    centre = QtCore.QPointF(stamp.width() / 2, stamp.height() / 2)
    for _ in range(8):
        ev = QtGui.QWheelEvent(centre, stamp.mapToGlobal(centre), QtCore.QPoint(0, 0), QtCore.QPoint(0, 120),
                               QtCore.Qt.MouseButton.NoButton, QtCore.Qt.KeyboardModifier.NoModifier,
                               QtCore.Qt.ScrollPhase.NoScrollPhase, False)
        QtWidgets.QApplication.sendEvent(stamp, ev)
    QtWidgets.QApplication.processEvents()
    assert stamp.zoom > 4
    check_step(w, capfd, "zooming the inspector")
    assert {n: d.width() for n, d in w.docks.items() if d.isVisible()} == docks

    # 4. every entry of the Colour box, chosen with the arrow key in the box
    box = w.scatter_panel.colour
    box.setFocus()
    entries = [box.itemText(k) for k in range(box.count())]
    assert len(entries) >= 10
    for k in range(1, len(entries)):
        QtTest.QTest.keyClick(box, QtCore.Qt.Key.Key_Down)
        assert box.currentIndex() == k
        check_step(w, capfd, f"colour by {entries[k]}")

    # 5. a second labeller in another window on the same store, then a third in this one
    bob = open_window(qtbot, store, gui_settings, user="bob", size=SIZE)
    bob.scatter.setFocus()
    if bob.explorer.current is None:
        press(bob, "Space")
    bob_given = label(bob, [4, 4, 1, 0, 5])
    check_step(bob, capfd, "bob's labels")
    assert mine(store, "bob") == bob_given
    ex.poll_journal()              # (its timer may have read them already, while bob labelled)
    check_step(w, capfd, "alice's window after bob's labels")
    for oid, s in bob_given.items():
        i = ex.index_of(oid)
        if oid not in after_undo:
            assert ex.labels[i] == s, "bob's score reaches alice's consensus at once"
    bob.close()
    w.scatter.setFocus()

    def answer_carol():
        dialog = QtWidgets.QApplication.activeModalWidget()
        if isinstance(dialog, QtWidgets.QInputDialog):
            dialog.setTextValue("carol")
            dialog.accept()

    QtCore.QTimer.singleShot(200, answer_carol)
    w.act["labeller"].trigger()
    settle(w)
    assert w.explorer.user == "carol" and "carol" in w.windowTitle()
    check_step(w, capfd, "File ▸ Labeller… carol")
    if w.explorer.current is None:
        press(w, "Space")
    carol_given = label(w, [3, 2, 5])
    check_step(w, capfd, "carol's labels")
    assert mine(store, "carol") == carol_given
    rep = window_report(w)
    assert rep["hidden"] == [] and rep["user"] == "carol"
    press(w, "Ctrl+Q")
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10000)
    assert capfd.readouterr().err == ""


def test_map_keeps_the_colour_box_choice_when_the_labeller_changes(qtbot, store, gui_settings):
    """Found by the Xvfb session: after File ▸ Labeller… the Colour box still said "column:
    peak" (with its limits) while the map, reopened, was drawn by density."""
    w = open_window(qtbot, store, gui_settings, user="alice", size=SIZE)
    box = w.scatter_panel.colour
    box.setCurrentText("column: peak")
    QtWidgets.QApplication.processEvents()
    assert w.scatter.colour_spec.name == "column: peak"
    w.switch_user("carol")
    settle(w)
    assert box.currentText() == "column: peak"
    assert w.scatter.colour_spec.name == "column: peak"
    assert w.scatter.colour_spec.kind == "continuous"
    w.close()


def test_map_legend_says_whose_scores_the_discs_show(qtbot, store, gui_settings):
    """Found by the Xvfb session: the score discs show the consensus of every labeller, but the
    legend called them "your scores" (bob saw alice's 29 as his)."""
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = list(s.ids)
    w = open_window(qtbot, store, gui_settings, user="bob", size=SIZE)
    w.explorer.open(5)
    assert w.explorer.score(3)
    settle(w)
    assert w.scatter.legend.labels_caption == "your scores"
    with LabelJournal.for_store(store, user="alice") as j:
        for oid in ids[10:20]:
            j.score(oid, 4)
    assert w.explorer.poll_journal()
    settle(w)
    assert w.scatter.legend.labels_caption == "scores (consensus of 2 labellers)"
    w.close()


def test_window_writes_its_geometry_report_when_asked(qtbot, store, gui_settings, tmp_path, monkeypatch):
    """``$GALEXPLORER_GEOMETRY``: what the Xvfb session reads from outside the process."""
    import json

    from galexplorer.gui.geometry_report import ENV, start_from_environment

    w = open_window(qtbot, store, gui_settings, user="alice", size=SIZE)
    assert start_from_environment(w) is None           # not asked: nothing written
    path = tmp_path / "geometry.json"
    monkeypatch.setenv(ENV, str(path))
    reporter = start_from_environment(w)
    qtbot.waitUntil(path.exists, timeout=5000)
    rep = json.loads(path.read_text(encoding="utf-8"))
    assert rep["user"] == "alice" and rep["busy"] is False and rep["hidden"] == []
    assert [c["name"] for c in rep["controls"]] == ["Pan", "Lasso", "Rectangle", "selection_mode", "colour",
                                                    "colour_low", "colour_high", "log", "diverging",
                                                    "Reset view", "Find similar"]
    assert rep["colour"]["map"] == rep["colour"]["current"] == "density"
    assert "Labeller…" in rep["menus"]["File"]
    w.scatter_panel.colour.setCurrentText("score: anomaly")
    qtbot.waitUntil(lambda: json.loads(path.read_text(encoding="utf-8"))["colour"]["map"] == "score: anomaly",
                    timeout=5000)
    w.resize(700, 600)                                  # too narrow: the report names what is cut off
    qtbot.waitUntil(lambda: json.loads(path.read_text(encoding="utf-8"))["hidden"] != [], timeout=5000)
    reporter.stop()
    w.close()


def test_status_bar_says_how_many_scores_are_yours_beside_everyones(qtbot, store, gui_settings):
    """Found by the Xvfb session: carol, with 3 labels, read "37 scored" beside "labeller:
    carol" — the count is every labeller's; her own now shows beside it."""
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = list(s.ids)
    with LabelJournal.for_store(store, user="alice") as j:
        for oid in ids[10:20]:
            j.score(oid, 4)
    w = open_window(qtbot, store, gui_settings, user="carol", size=SIZE)
    scored = w.status.counters["scored"]
    assert scored.text() == "10 scored · 0 yours"
    for i in (3, 4):
        w.explorer.open(i)
        assert w.explorer.score(2)
    settle(w)
    assert scored.text() == "12 scored · 2 yours"
    w.close()


@pytest.mark.interop
def test_the_xvfb_session_script_passes(tmp_path):
    """``benchmarks/xvfb_session.py``: the same session in a real process under Xvfb, driven by
    xdotool (opt-in, like the other Xvfb tests: ``python -m pytest -m interop``)."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    missing = [exe for exe in ("xvfb-run", "xdotool", "import") if shutil.which(exe) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: apt-get install xvfb xdotool imagemagick")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "xvfb_session.py"
    run = subprocess.run([sys.executable, str(script), "--screenshots", str(tmp_path / "shots")],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "stderr bytes: {'alice': 0, 'bob': 0}" in run.stdout
    assert "controls hidden: 0" in run.stdout
    assert len(list((tmp_path / "shots").glob("*.png"))) >= 7
