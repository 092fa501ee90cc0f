"""Defects found by a new user (issue #23): nothing reaches stderr from the window's event
handlers, and the gallery's My labels lists only the user's own labels."""

from __future__ import annotations

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window
from PySide6 import QtCore, QtGui, QtTest, QtWidgets

from galexplorer.gui.actions import SHORTCUTS

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 300   # objects in the store fixture's store (gui_qt.store)

# shortcuts that open no dialog, browser or second window (those have tests of their own)
_SAFE = ("clear_selection", "previous", "next", "reset_view", "pan", "lasso", "rectangle", "centre",
         "stretch", "band", "show_selection", "queue_head", "mosaic")


def _press(w, seq: str) -> None:
    """A key as the platform delivers it: to the window's QWindow, which passes it to the
    focus widget (the path where the application's event filter sees a QWindow)."""
    ks = QtGui.QKeySequence(seq)[0]
    QtTest.QTest.keyClick(w.windowHandle(), ks.key(), ks.keyboardModifiers())
    QtWidgets.QApplication.processEvents()


def test_shortcut_keys_in_every_focus_state_print_nothing(qtbot, store, gui_settings, capfd):
    w = open_window(qtbot, store, gui_settings)
    keys = [k for s in SHORTCUTS if s.action in _SAFE for k in s.keys]
    assert "Esc" in keys
    capfd.readouterr()
    focus = {"map": w.scatter, "text field": w.candidates.text, "inspector": w.inspector.stretch}
    for where, widget in focus.items():
        for k in keys:
            w.activateWindow()
            widget.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
            QtWidgets.QApplication.processEvents()
            _press(w, k)
            out, err = capfd.readouterr()
            assert err == "", f"{k} with the focus in the {where} printed:\n{err}"
    # Esc in a text field gives the keys back to labelling
    w.candidates.text.setFocus()
    QtWidgets.QApplication.processEvents()
    _press(w, "Esc")
    assert not w.candidates.text.hasFocus()
    assert capfd.readouterr().err == ""
    w.close()


def test_gallery_my_labels_lists_only_the_users_own_labels(qtbot, store, gui_settings):
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = list(s.ids)
    with LabelJournal.for_store(store, user="root") as j:     # another labeller's 21 labels
        for oid in ids[:21]:
            j.score(oid, 3)
    w = open_window(qtbot, store, gui_settings, user="alice")
    ex = w.explorer
    mine = [15, 25]                # one object root scored too, one only alice
    for i in mine:
        ex.open(i)
        assert ex.score(4)
    assert ex.wait_idle(60)
    w.gallery.mine.setChecked(True)
    QtWidgets.QApplication.processEvents()
    assert sorted(ex.gallery.indices.tolist()) == mine
    assert "alice" in ex.gallery.title
    w.gallery.mine.setChecked(False)
    w.close()


LONG_READOUT = ("x 32, y 31   blue 0.9647  green 0.8123  red 0.7781  nir 0.6612   "
                "(no pixel scale: ra/dec at the centre only)" * 3)


def _dock_widths(w) -> dict[str, int]:
    return {n: d.width() for n, d in w.docks.items() if d.isVisible()}


def test_long_inspector_text_and_zoom_change_no_dock_width(qtbot, store, gui_settings):
    """Issue #23 item 2: the pixel readout (and any long text) elides inside the dock; the
    docks keep their widths and the map's toolbar keeps its Colour control."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    w.explorer.open(3)
    QtWidgets.QApplication.processEvents()
    before = _dock_widths(w)
    colour = w.scatter_panel.colour
    assert colour.isVisible()
    ins = w.inspector
    ins.stamp.zoom_by(4.0)
    ins.readout.setText(LONG_READOUT)
    ins.title.setText("G" * 120)
    ins.position.setText("ra 150.363047°   dec +2.584910°   " * 6)
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    assert _dock_widths(w) == before
    assert colour.isVisible()
    # the readout is whole in its tooltip, elided on screen
    assert ins.readout.toolTip().startswith("x 32, y 31")
    assert ins.readout.width() <= ins.width()
    w.close()


def test_long_queue_option_text_does_not_widen_the_queue(qtbot, store, gui_settings):
    """The queue's scorer and acquisition menus hold long names; they elide rather than set the
    dock's minimum width (the map keeps the room its toolbar needs)."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    assert w.docks["queue"].minimumSizeHint().width() <= 300
    assert w.docks["inspector"].minimumSizeHint().width() <= 420
    w.close()


def _bar_widgets(w):
    """(action, widget) of every control of the map's tool bar (not the spacer or the counts)."""
    panel = w.scatter_panel
    bar = panel.toolbar
    out = []
    for a in bar.actions():
        if a.isSeparator():
            continue
        widget = bar.widgetForAction(a)
        if widget is panel.info or widget.objectName() == "BarSpacer":
            continue
        out.append((a, widget))
    return out


def _inside(widget, bar) -> bool:
    r = QtCore.QRect(widget.mapTo(bar, QtCore.QPoint(0, 0)), widget.size())
    return widget.isVisible() and bar.rect().contains(r)


def test_every_toolbar_control_is_visible_at_1600(qtbot, store, gui_settings):
    """Issue #23 item 3: at the default 1600×1000 every control of the map's tool bar — tools,
    selection mode, colour menu, both limits, log and diverging, reset view, similar — lies
    inside the tool bar, and the colour limits are wide enough for a value like 483.21."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    bar = w.scatter_panel.toolbar
    controls = _bar_widgets(w)
    texts = {a.text() for a, _ in controls} | {getattr(c, "text", str)() for _, c in controls}
    assert {"log", "diverging", "Reset view", "Find similar"} <= texts
    hidden = [(a.text() or type(c).__name__) for a, c in controls if not _inside(c, bar)]
    assert not hidden, f"tool bar controls cut off at 1600×1000: {hidden}"
    p = w.scatter_panel
    for edit in (p.lo, p.hi):
        for text in ("483.21", "-12.345", "0.0012"):
            edit.setText(text)
            opt = QtWidgets.QStyleOptionFrame()
            edit.initStyleOption(opt)
            room = edit.style().subElementRect(QtWidgets.QStyle.SubElement.SE_LineEditContents, opt, edit)
            m = edit.textMargins()
            assert room.width() - m.left() - m.right() - 4 >= edit.fontMetrics().horizontalAdvance(text), text
            assert edit.sizeHint().width() <= edit.width() + 1
        edit.clear()
    w.close()


def test_toolbar_overflow_at_1366_reaches_every_control(qtbot, store, gui_settings):
    """At 1366×768 what does not fit goes behind the tool bar's extension button, which
    shows it inside the tool bar when pressed (every control stays reachable)."""
    w = open_window(qtbot, store, gui_settings, size=(1366, 768))
    w.scatter_panel.colour.setCurrentText("score: anomaly")    # continuous: log and diverging apply
    bar = w.scatter_panel.toolbar
    controls = _bar_widgets(w)
    hidden = [c for _, c in controls if not _inside(c, bar)]
    assert hidden, "the test needs a window too narrow for the whole tool bar"
    ext = bar.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
    assert ext is not None and ext.isVisible()
    ext.click()
    for _ in range(10):
        QtWidgets.QApplication.processEvents()
    qtbot.waitUntil(lambda: all(_inside(c, bar) for c in hidden), timeout=3000)
    div = w.scatter_panel.diverging
    assert div in hidden and div.isEnabled()
    QtTest.QTest.mouseClick(div, QtCore.Qt.MouseButton.LeftButton)   # reachable: it takes a click
    assert div.isChecked()
    from galexplorer.gui.colouring import DIVERGING_MAP

    assert w.scatter._spec.cmap == DIVERGING_MAP       # and it takes effect
    ext.click()
    w.close()


def _pixel(w, i: int) -> QtGui.QColor:
    """The colour drawn at object ``i``'s centre in the map."""
    from gui_qt import viewport_pos

    xy = w.explorer.xy[i]
    pos = viewport_pos(w.scatter, float(xy[0]), float(xy[1]))
    img = w.scatter.viewport().grab().toImage()
    dpr = img.devicePixelRatio()
    return img.pixelColor(int(pos.x() * dpr), int(pos.y() * dpr))


def test_colour_by_disputes_draws_disputed_objects_over_the_score_discs(qtbot, store, gui_settings):
    """Issue #23 item 4: coloured by disputes, a disputed object shows red (and an agreed one
    green) — not the score disc of its consensus, which used to be drawn over it."""
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = list(s.ids)
    disputed, agreed = [40, 41, 42], [50, 51, 52]
    with LabelJournal.for_store(store, user="ann") as j:
        for i in disputed:
            j.score(ids[i], 4)
        for i in agreed:
            j.score(ids[i], 3)
    with LabelJournal.for_store(store, user="bob") as j:
        for i in disputed:
            j.score(ids[i], 0)       # median 2: a teal score disc
        for i in agreed:
            j.score(ids[i], 3)       # a yellow-green score disc
    w = open_window(qtbot, store, gui_settings, user="ann", size=(1600, 1000))
    ex = w.explorer
    assert ex.session.disputed[disputed].all() and not ex.session.disputed[agreed].any()
    ex.open(0)
    w.scatter_panel.colour.setCurrentText("disputed labels")
    for _ in range(5):
        QtWidgets.QApplication.processEvents()
    sc = w.scatter
    for i in disputed:
        c = _pixel(w, i)
        assert c.red() > c.green() + 60 and c.red() > c.blue() + 40, (i, c.name())
    for i in agreed:
        c = _pixel(w, i)
        assert c.green() > c.red() + 60, (i, c.name())
    # the order: score discs < agreed < disputed < queue, current, hover rings
    assert sc.labelled_layer.zValue() < sc.agreed_layer.zValue() < sc.disputed_layer.zValue() \
        < sc.queue_layer.zValue()
    assert sc.disputed_layer.isVisible() and sc.disputed_layer.last_drawn >= len(disputed)
    # another colouring: the score discs again, the dispute layers empty
    w.scatter_panel.colour.setCurrentText("density")
    QtWidgets.QApplication.processEvents()
    assert sc.disputed_layer._points is None and sc.agreed_layer._points is None
    c = _pixel(w, disputed[0])
    assert not (c.red() > c.green() + 60)
    w.close()


@pytest.mark.parametrize("mean, std, text", [
    (5.104, 1.06, "≥5 ± 1.06"), (-0.3, float("nan"), "≤0"), (3.271, 0.5, "3.27 ± 0.50"),
    (5.004, float("nan"), "5.00"), (0.0, 0.1, "0.00 ± 0.10")])
def test_format_prediction_keeps_the_0_to_5_scale(mean, std, text):
    from galexplorer.label_scale import format_prediction

    assert format_prediction(mean, std) == text


def _fitted(w, qtbot):
    """Score ten objects so a GP is fitted (the prior gives way to a model)."""
    ex = w.explorer
    for i in range(10):
        ex.open(i)
        assert ex.score(5 if i < 5 else 1)
    assert ex.wait_idle(60)
    qtbot.waitUntil(lambda: ex.state is not None and not ex.state.scorer.startswith("prior"), timeout=20000)
    QtWidgets.QApplication.processEvents()


def _header(w, name: str, role=QtCore.Qt.ItemDataRole.DisplayRole) -> str:
    m = w.candidates.model
    return m.headerData(m.column_names.index(name), QtCore.Qt.Orientation.Horizontal, role)


def test_predictions_beyond_the_scale_are_shown_clipped(qtbot, store, gui_settings):
    """Issue #23 item 5: a GP mean of 5.10 shows as "≥5" in the queue, the inspector, the hover
    card and the table (the ranking keeps the exact value)."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    _fitted(w, qtbot)
    ex = w.explorer
    i = int(ex.queue(5)[0])
    ex.state.mean[i], ex.state.std[i] = 5.104, 1.06
    assert w.views.queue_caption(i, None).endswith("model ≥5 ± 1.06")
    assert dict(ex.details(i))["model score"] == "≥5 ± 1.06"
    assert dict(ex.describe(i)[1])["model"] == "≥5 ± 1.06"
    w.views.refresh_table()
    m = w.candidates.model
    row = int(np.flatnonzero(m._order[m._rows] == i)[0])
    cell = m.index(row, m.column_names.index("score_mean"))
    assert cell.data() == "≥5"
    assert "5.104" in cell.data(QtCore.Qt.ItemDataRole.ToolTipRole)
    w.close()


def test_table_columns_say_prior_or_model(qtbot, store, gui_settings):
    """Before any label the table's score column is the anomaly prior, named so (the status
    says "no model yet"); after a fit it is the model's mean."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    assert "no model yet" in w.explorer.counters()["model"]
    head = _header(w, "score_mean")
    assert "prior" in head and "anomaly" in head and "model" not in head
    assert "score_mean" in _header(w, "score_mean", QtCore.Qt.ItemDataRole.ToolTipRole)
    _fitted(w, qtbot)
    head = _header(w, "score_mean")
    assert "model" in head and "prior" not in head
    assert "model" in _header(w, "score_std")
    w.close()


def test_another_labellers_scores_refresh_the_consensus_columns_at_once(qtbot, store, gui_settings):
    """A second labeller's scores (another window, another process: the shared journal) reach
    the table's label, n_labellers, disputed and rank columns within seconds, without a score
    or a refit in this window."""
    from galexplorer.labels import LabelJournal

    w = open_window(qtbot, store, gui_settings, user="alice", size=(1600, 1000))
    _fitted(w, qtbot)
    ex = w.explorer
    i = 2                                     # alice scored it 5
    m = w.candidates.model
    assert m.column("label")[i] == 5 and m.column("n_labellers")[i] == 1
    rank_before = int(m.column("rank")[i])
    refits = ex.refit_started_at
    with LabelJournal.for_store(store, user="bob") as j:
        j.score(ex.object_id(i), 0)
    qtbot.waitUntil(lambda: m.column("n_labellers")[i] == 2, timeout=5000)
    assert m.column("label")[i] == 2.5 and bool(m.column("disputed")[i])
    assert int(m.column("rank")[i]) > rank_before        # ranked by its new consensus
    assert ex.refit_started_at == refits                 # no refit was needed for that
    assert "bob" in ex.session.users()
    w.close()
