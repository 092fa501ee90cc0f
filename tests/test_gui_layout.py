"""The default layout at 1600×1000 and the small layout defects of issue #23 (item 8): the
candidates table and the gallery have room, F11 keeps the inspector's zoom, and the queue's
model line breaks only between its parts."""

from __future__ import annotations

import gui_qt
import pytest
from gui_qt import open_window
from PySide6 import QtCore, QtGui, QtWidgets

from galexplorer.gui.geometry_report import toolbar_controls

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 300   # objects in the store fixture's store (gui_qt.store)


def _pump(n: int = 10) -> None:
    for _ in range(n):
        QtWidgets.QApplication.processEvents()


def _room(w) -> dict[str, float]:
    """Rows of the candidates table and of the gallery's grid that show whole, and the map's size."""
    table, grid = w.candidates.table, w.gallery.view
    return {"table rows": table.viewport().height() / table.verticalHeader().defaultSectionSize(),
            "gallery rows": grid.viewport().height() / grid.gridSize().height(),
            "gallery columns": grid.viewport().width() // grid.gridSize().width(),
            "map width": w.scatter.width(), "map height": w.scatter.height()}


def _check_default_layout(w) -> None:
    room = _room(w)
    assert w.docks["candidates"].isVisible() and w.docks["gallery"].isVisible()
    assert room["table rows"] >= 10, room
    assert room["gallery rows"] >= 2 and room["gallery columns"] >= 4, room
    # the map stays usable: its tool bar whole, and a plot of at least 900×440 pixels
    assert room["map width"] >= 900 and room["map height"] >= 440, room
    hidden = [name for name, _, whole in toolbar_controls(w) if not whole]
    assert not hidden, f"tool bar controls cut off: {hidden}"


def test_default_layout_shows_ten_table_rows_and_two_gallery_rows(qtbot, store, gui_settings):
    """Issue #23 item 8: at 1600×1000 the table showed 4 rows and the gallery one row of 5."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    w.explorer.find_similar(24)
    assert w.explorer.wait_idle(60)
    _pump()
    assert len(w.gallery.indices) >= 10      # enough thumbnails for two rows
    _check_default_layout(w)
    # View ▸ Reset layout returns to it after the panels were moved about
    w.resizeDocks([w.docks["gallery"]], [150], QtCore.Qt.Orientation.Vertical)
    w.docks["candidates"].hide()
    w.docks["queue"].setFloating(True)
    _pump()
    assert _room(w)["gallery rows"] < 2
    w.act["reset_layout"].trigger()
    _pump()
    assert not w.docks["queue"].isFloating()
    _check_default_layout(w)
    w.close()


def test_large_view_opens_at_the_inspectors_zoom(qtbot, store, gui_settings):
    """Issue #23 item 8: F11 opened unzoomed when the inspector was at ×2; it opens at the
    inspector's zoom and centre, and the inspector keeps them."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    w.explorer.open(3)
    _pump()
    stamp = w.inspector.stamp
    assert stamp.image is not None
    corner = QtCore.QPointF(stamp.width() * 0.3, stamp.height() * 0.3)   # off the centre: a pan too
    stamp.zoom_by(2.0, corner)
    zoom, box = stamp.zoom, stamp.view_box()
    assert zoom == pytest.approx(2.0) and box != (0.0, 0.0, 32.0, 32.0)
    w.act["larger"].trigger()
    _pump()
    large = w.inspector.large
    assert large is not None and large.isVisible()
    assert large.stamp.zoom == pytest.approx(zoom)
    assert large.stamp.view_box() == pytest.approx(box)
    assert stamp.zoom == pytest.approx(zoom) and stamp.view_box() == pytest.approx(box)
    large.close()
    # unzoomed in the inspector: the large view opens whole, whatever it showed before
    w.explorer.open(4)
    _pump()
    assert stamp.zoom == 1.0
    w.act["larger"].trigger()
    _pump()
    assert large.stamp.zoom == 1.0
    large.close()
    w.close()


MODEL_LINES = ("GP (anomaly prior) on 34 labels (0.0 s); learns on embedding",
               "portfolio on 120 labels (12.3 s); this batch: ei 40%, ucb 35%, thompson 25%; learns on pca",
               "refitting gp on 34 labels…")


def _lines(label: QtWidgets.QLabel, width: int) -> list[str]:
    """The lines a word-wrapped label draws its text in at ``width`` pixels (as Qt's TextWordWrap
    lays it out)."""
    text = QtWidgets.QLabel.text(label)          # what is drawn, not StatusLine's text()
    out = []
    for paragraph in text.split("\n"):
        layout = QtGui.QTextLayout(paragraph, label.font())
        option = QtGui.QTextOption()
        option.setWrapMode(QtGui.QTextOption.WrapMode.WordWrap)
        layout.setTextOption(option)
        layout.beginLayout()
        while (line := layout.createLine()).isValid():
            line.setLineWidth(width)
            out.append(paragraph[line.textStart():line.textStart() + line.textLength()])
        layout.endLayout()
    return out


def test_queue_model_line_breaks_between_its_parts(qtbot, store, gui_settings):
    """Issue #23 item 8: "GP … on 34 labels (0.0 s)" wrapped mid-parenthesis in the queue. It
    breaks at "; " and between words outside parentheses, at any width of the queue, and a long
    line never widens the queue's dock."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    status = w.queue.status
    before = w.docks["queue"].width()
    for text in MODEL_LINES:
        w.queue.set_busy(False, text)
        _pump()
        assert status.text() == text and status.toolTip() == text
        assert w.docks["queue"].width() == before
        widths = [status.contentsRect().width(), *range(160, 480, 7)]
        for width in widths:
            lines = _lines(status, width)
            inside = [ln for ln in lines if ln.count("(") != ln.count(")")]
            assert not inside, f"{text!r} at {width} px breaks inside parentheses: {lines}"
        if "; " in text:        # one line per clause
            assert len(_lines(status, 2000)) == text.count("; ") + 1
    w.queue.set_busy(False, "x" * 400)
    _pump()
    assert w.docks["queue"].width() == before
    w.close()
