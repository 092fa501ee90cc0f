"""The action table is the one path of every action (docs/architecture.md, "Adding an action"):
a new row and its handler are all an action needs to be in a menu, on a key, in the ``?`` help,
enabled by its ``needs``; the panels' buttons go through the same path and its enable check."""

from __future__ import annotations

import gui_qt
import pytest
from gui_qt import key, open_window
from PySide6 import QtCore, QtGui, QtWidgets

from galexplorer.gui import actions
from galexplorer.gui.actions import Shortcut

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 300   # objects in the store fixture's store (gui_qt.store)


def _menu(w, title: str) -> QtWidgets.QMenu:
    for a in w.menuBar().actions():
        if a.text().replace("&", "") == title:
            return a.menu()
    raise AssertionError(f"no menu {title}")


def test_a_new_row_and_one_handler_make_a_whole_action(qtbot, store, gui_settings, monkeypatch):
    calls = []

    def shout(ex):      # the one handler: a function of the controller
        calls.append(ex.current)
        ex.message.emit(f"hello from {ex.object_id(ex.current)}")

    row = Shortcut("shout", ("Ctrl+Shift+H",), "Shout", "say the inspected object's id in the status bar",
                   "Exploring", "Tools", shout, needs="object")
    monkeypatch.setattr(actions, "SHORTCUTS", actions.SHORTCUTS + (row,))   # the table, nothing else

    from galexplorer.gui.main_window import MainWindow

    empty = MainWindow(gui_settings, user="tester")
    qtbot.addWidget(empty)
    assert not empty.act["shout"].isEnabled()          # its needs: no object on the start page
    empty.run_action("shout")
    assert calls == []                                 # the enable check holds for run_action too
    empty.close()

    w = open_window(qtbot, store, gui_settings)
    act = w.act["shout"]
    assert act in _menu(w, "Tools").actions()
    assert act.shortcuts() == [QtGui.QKeySequence("Ctrl+Shift+H")]
    assert "Ctrl+Shift+H" in act.toolTip()
    w.show_help()
    help_rows = [w._help.table.item(r, 1).text() for r in range(w._help.table.rowCount())
                 if w._help.table.item(r, 1) is not None]
    assert row.description in help_rows
    w._help.close()
    assert w.explorer.current is not None and act.isEnabled()
    w.activateWindow()
    key(w.scatter, QtCore.Qt.Key.Key_H, QtCore.Qt.KeyboardModifier.ControlModifier
        | QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert calls == [w.explorer.current]
    assert w.statusBar().currentMessage() == f"hello from {w.explorer.object_id(calls[0])}"
    w.close()


def test_gallery_buttons_run_the_table_rows_and_their_enable_check(qtbot, store, gui_settings, monkeypatch):
    from dataclasses import replace

    ran = []
    names = [f"gallery_score_{s}" for s in range(6)] + ["gallery_exclude", "gallery_include", "gallery_export",
                                                         "gallery_samp"]
    # each gallery row's handler replaced in the table: a button that does its own thing calls none
    rows = tuple(replace(r, handler=lambda w, n=r.action: ran.append((n, len(w.gallery.targets()))))
                 if r.action in names else r for r in actions.SHORTCUTS)
    monkeypatch.setattr(actions, "SHORTCUTS", rows)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ex.clear_selection()
    ex.gallery.show([], "", None, "empty")
    QtWidgets.QApplication.processEvents()
    assert not any(w.act[n].isEnabled() for n in names)      # "gallery": nothing shown, nothing to act on
    assert not any(actions.BY_ACTION[n].menu or actions.BY_ACTION[n].keys for n in names)   # no menu, no key
    ex.select(list(range(10, 16)))
    QtWidgets.QApplication.processEvents()
    assert all(w.act[n].isEnabled() for n in names)
    for name in ("exclude", "include", "export", "samp"):
        w.gallery.buttons[name].click()
    for a in w.gallery.score_button.menu().actions():
        a.trigger()
    assert ran == [(n, 6) for n in names[6:]] + [(n, 6) for n in names[:6]]
    assert not ex.excluded.any() and not w.explorer.session.n_labelled     # only the table's handlers ran
    w.close()


def test_the_candidates_export_button_is_the_export_action(qtbot, store, gui_settings, tmp_path, monkeypatch):
    out = tmp_path / "ranked.csv"
    asked = []

    def save_name(*args, **kwargs):
        asked.append(args[1])            # the dialog's title
        return str(out), "CSV (*.csv)"

    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", save_name)
    w = open_window(qtbot, store, gui_settings)
    w.candidates.export.click()
    assert asked == ["Export ranked list"]
    assert w.explorer.wait_idle(120)
    qtbot.waitUntil(lambda: out.exists(), timeout=30000)
    assert len(out.read_text().splitlines()) == 301      # header + every object, as File > Export
    w.close()
