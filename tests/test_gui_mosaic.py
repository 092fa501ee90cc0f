"""The image mosaic in the window: toggled by its key, thumbnails of the cells' representatives,
clickable, saved as a PNG, and redrawn on zoom and pan."""

from __future__ import annotations

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window
from gui_stores import build_store
from PySide6 import QtCore, QtGui, QtTest, QtWidgets

from galexplorer.gui.actions import BY_ACTION
from galexplorer.gui.mosaic import choose_cells_brute

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 2000   # objects in the store fixture's store (gui_qt.store)


def _press(w, seq: str) -> None:
    ks = QtGui.QKeySequence(seq)[0]
    QtTest.QTest.keyClick(w.windowHandle(), ks.key(), ks.keyboardModifiers())
    QtWidgets.QApplication.processEvents()


def _pixels(img: QtGui.QImage) -> np.ndarray:
    """(H, W, 3) uint8 copy of a QImage's pixels."""
    rgb = img.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    h, w = rgb.height(), rgb.width()
    return np.frombuffer(rgb.constBits(), np.uint8).reshape(h, rgb.bytesPerLine())[:, :w * 3] \
        .reshape(h, w, 3).copy()


def _settle(w) -> None:
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    w.scatter.mosaic.finish_loading()
    QtWidgets.QApplication.processEvents()


def test_key_toggles_the_mosaic_of_the_cells_representatives(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    sc = w.scatter
    assert BY_ACTION["mosaic"].keys == ("M",) and not sc.mosaic.enabled
    _press(w, "M")
    _settle(w)
    assert w.act["mosaic"].isChecked() and sc.mosaic.enabled and sc.mosaic_item.isVisible()
    assert "mosaic" in sc.legend._title()
    cells = sc.mosaic.cells
    assert cells is not None and len(cells) > 10
    # the cells are those of the view, each with the object nearest its centre
    r = sc.view_rect()
    ref = choose_cells_brute(sc._xy, r, cells.side)
    assert dict(zip(zip(cells.ix.tolist(), cells.iy.tolist()), cells.index.tolist())) == \
        dict(zip(zip(ref.ix.tolist(), ref.iy.tolist()), ref.index.tolist()))
    assert all(pm is not None for pm in sc.mosaic_item._pixmaps)
    # zoom in: smaller cells, redrawn
    side = cells.side
    sc.getViewBox().scaleBy((0.25, 0.25))
    _settle(w)
    assert sc.mosaic.cells.side < side and len(sc.mosaic.cells) > 0
    assert sc.mosaic.last_redraw_ms < 1000
    # clicking a thumbnail opens its object in the inspector
    cells, r = sc.mosaic.cells, sc.view_rect()
    s = cells.side
    mid = np.hypot((cells.ix + 0.5) * s - (r.x0 + r.x1) / 2, (cells.iy + 0.5) * s - (r.y0 + r.y1) / 2)
    m = int(np.argmin(mid))     # the cell nearest the middle of the view
    a, b, i = int(cells.ix[m]), int(cells.iy[m]), int(cells.index[m])
    pos = gui_qt.viewport_pos(sc, (a + 0.5) * s, (b + 0.5) * s)
    QtTest.QTest.mouseClick(sc.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    QtWidgets.QApplication.processEvents()
    assert w.explorer.current == i
    _press(w, "M")
    assert not sc.mosaic.enabled and not sc.mosaic_item.isVisible() and sc.mosaic.cells is None
    assert "mosaic" not in sc.legend._title()
    w.close()


def test_mosaic_paints_thumbnails_on_the_map(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    sc = w.scatter
    before = sc.grab().toImage()
    _press(w, "M")
    _settle(w)
    after = sc.grab().toImage()
    a, b = _pixels(before), _pixels(after)
    # thumbnails cover much of the map: many pixels change
    assert np.mean(a != b) > 0.2
    w.close()


def test_save_mosaic_as_png(qtbot, store, gui_settings, tmp_path, monkeypatch):
    w = open_window(qtbot, store, gui_settings)
    out = tmp_path / "mosaic.png"
    # off: a message, no file
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "PNG (*.png)"))
    w.run_action("save_mosaic")
    assert not out.exists() and "mosaic is off" in w.last_error
    _press(w, "M")
    _settle(w)
    w.run_action("save_mosaic")
    img = QtGui.QImage(str(out))
    cells = w.scatter.mosaic.cells
    t = w.thumbs.size
    cols = int(cells.ix.max() - cells.ix.min()) + 1
    rows = int(cells.iy.max() - cells.iy.min()) + 1
    assert (img.width(), img.height()) == (cols * (t + 2) + 2, rows * (t + 2) + 2)
    # the top-left cell that holds an object shows that object's thumbnail, pixel for pixel
    top = cells.iy == cells.iy.max()
    k = int(np.flatnonzero(top)[np.argmin(cells.ix[top])])
    c = int(cells.ix[k] - cells.ix.min()) * (t + 2) + 2
    rgb = _pixels(img)
    assert np.array_equal(rgb[2:2 + t, c:c + t], w.thumbs.rgb(int(cells.index[k])))
    # a folder that does not exist: a message naming the file, no traceback
    assert not w.dialogs.save_mosaic(tmp_path / "missing" / "m.png")
    assert "missing" in w.last_error and "writable" in w.last_error
    w.close()


def test_mosaic_without_images_says_so(qtbot, tmp_path, gui_settings):
    path = build_store(tmp_path / "bare.h5", 300, thumbnails=False)
    w = open_window(qtbot, path, gui_settings)
    _press(w, "M")
    assert not w.act["mosaic"].isChecked() and not w.scatter.mosaic.enabled
    assert "no thumbnails" in w.statusBar().currentMessage()
    w.close()


def test_mosaic_redraw_time_on_pan_and_zoom(qtbot, store, gui_settings):
    """Loose bound (a busy machine); benchmarks/bench_mosaic.py measures it at 10^6."""
    w = open_window(qtbot, store, gui_settings)
    sc = w.scatter
    _press(w, "M")
    _settle(w)
    vb = sc.getViewBox()
    times = []
    for k in range(6):
        vb.translateBy(x=0.3 * (-1) ** k, y=0.2)
        sc.refresh()
        times.append(sc.mosaic.last_redraw_ms)
        _settle(w)
    assert np.median(times) < 100
    w.close()
