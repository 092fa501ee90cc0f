"""An afternoon of labelling, driven through the real window (offscreen): the view follows the
model after a refit, ranks agree with the export after every key press, a score that cannot be
saved is shown and does not advance (issue #12, items 1, 2 and 7)."""

from __future__ import annotations

import csv
import sqlite3

import gui_qt
import numpy as np
import pytest
from gui_qt import key, open_window
from gui_stores import build_store
from PySide6 import QtCore

from galexplorer.active.ordering import ranking_order
from galexplorer.active.ranking import rank_store
from galexplorer.labels import LabelJournal

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 600   # objects in the store fixture's store (gui_qt.store)
Key = QtCore.Qt.Key


def _score_key(w, s: int) -> None:
    key(w, getattr(Key, f"Key_{s}"))


def _batch(w, n: int = 10) -> dict[str, int]:
    """Score ``n`` objects by key (5 for cluster 0, else 1), following the queue."""
    ex = w.explorer
    c = ex.score_array("cluster")
    done = {}
    for _ in range(n):
        i = ex.current
        s = 5 if c[i] == 0 else 1
        _score_key(w, s)
        done[ex.session.ids[i]] = s
    return done


def test_a_user_who_looked_away_is_told_and_space_goes_to_the_batch(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    _batch(w, 9)
    away = int(np.flatnonzero(~np.isfinite(ex.session.labels))[-1])
    assert ex.score(1)       # the 10th label starts the refit …
    ex.open(away)            # … and the user clicks somewhere else before it lands
    assert ex.wait_idle(60) and ex.state.n_labels == 10
    qtbot.waitUntil(lambda: "new batch is ready" in w.statusBar().currentMessage(), timeout=3000)
    assert "press Space" in w.statusBar().currentMessage()     # N writes a note: the message names Space
    assert ex.current == away
    # the ? help lists Space and what it does
    w.show_help()
    t = w._help.table
    rows = {t.item(r, 0).text(): t.item(r, 1).text() for r in range(t.rowCount()) if t.item(r, 1) is not None}
    assert "queue" in rows["Space"] and "new batch" in rows["Space"] and "note" in rows["N"]
    w._help.close()
    key(w, Key.Key_Space)
    assert ex.current == int(w.queue.model.indices[0]) and ex.current in ex.state.next_batch.tolist()
    w.close()


def _ranks(w, i: int) -> tuple[int, int, int]:
    """Object ``i``'s rank in the candidates table, the hover card and the inspector."""
    ex = w.explorer
    model = w.candidates.model
    table = int(model.column("rank")[i])
    card = int(dict(ex.describe(i)[1])["rank"].replace(",", ""))
    inspector = int(dict(ex.details(i))["rank"].split(" of ")[0].replace(",", ""))
    return table, card, inspector


def test_after_a_refit_keys_follow_the_new_queue_and_ranks_agree_with_export(qtbot, store, gui_settings, tmp_path):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    _batch(w, 10)
    assert ex.wait_idle(60)
    assert ex.state.scorer == "gp-anomaly" and ex.state.n_labels == 10
    # item 1: the inspector is on the head of the new queue, so the 11th key press labels it
    head = int(w.queue.model.indices[0])
    assert head in ex.state.next_batch.tolist()
    assert ex.current == head, "the inspector stayed on the pre-model order"
    assert w.inspector.title.text() == ex.session.ids[head]
    sc = w.scatter
    for k, s in enumerate((0, 5, 0, 5, 2, 0)):
        i = ex.current
        # the mouse rests on the object being scored: its card must change with the key press
        gui_qt.hover(sc, *sc._xy[i])
        qtbot.waitUntil(lambda i=i: sc.card.isVisible() and sc.card.index == i, timeout=2000)
        _score_key(w, s)
        lab = np.flatnonzero(np.isfinite(ex.session.labels))
        expect = np.empty(ex.n, np.int64)
        expect[ranking_order(ex.state.mean, lab, ex.session.labels[lab], np.empty(0, np.int64))] = \
            np.arange(1, ex.n + 1)
        for j in lab.tolist():
            assert _ranks(w, j) == (expect[j],) * 3, f"key press {k + 1}: object {j}"
        assert dict(sc.card.lines)["label"] == str(s)
        if k == 0:   # the 11th key press went to the head of the new queue
            with LabelJournal.for_store(store, readonly=True) as j:
                assert j.current("tester")[ex.session.ids[head]] == 0
        # rows of the table are in rank order (no sort chosen)
        shown = w.candidates.model.visible_indices
        np.testing.assert_array_equal(w.candidates.model.column("rank")[shown], np.arange(1, ex.n + 1))
    top = [j for j in np.flatnonzero(ex.session.labels == 5)]
    zero = [j for j in np.flatnonzero(ex.session.labels == 0)]
    assert max(_ranks(w, j)[0] for j in top) < min(_ranks(w, j)[0] for j in zero)
    # the export on the same model writes the same ranks, for every object
    ex.request_refit("manual")
    assert ex.wait_idle(60)
    out = tmp_path / "ranked.csv"
    ex.export(out)
    assert ex.wait_idle(60)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    got = {r["id"]: int(r["rank"]) for r in rows}
    # the table has the export's columns (ranked_table's), n_labellers, disputed, excluded included
    assert w.candidates.model.column_names == list(rows[0])
    col = w.candidates.model.column("rank")
    assert all(got[ex.session.ids[j]] == col[j] for j in range(ex.n))
    w.close()


def test_a_score_the_journal_refuses_shows_a_dialog_and_does_not_advance(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ex.session.journal.busy_timeout_s = 0.2   # fail fast in the test
    here = ex.current
    other = sqlite3.connect(str(store) + ".labels.sqlite", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        w.last_error = ""
        _score_key(w, 4)
        assert "locked" in w.last_error and ".labels.sqlite" in w.last_error
        assert ex.current == here, "the view advanced past a score that was not saved"
        assert w.counters["scored"].text() == "0 scored"
        assert not np.isfinite(ex.session.labels[here])
    finally:
        other.execute("ROLLBACK")
        other.close()
    _score_key(w, 4)    # once the lock is gone, the same key saves and moves on
    assert ex.current != here and w.counters["scored"].text() == "1 scored"
    w.close()


def test_two_exports_queued_back_to_back_both_land(qtbot, store, gui_settings, tmp_path):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    a, b = tmp_path / "a.csv", tmp_path / "b.votable.xml"
    assert ex.export(a) and ex.export(b)       # the second is asked while the first runs
    assert "after 1 waiting" in w.statusBar().currentMessage()
    assert ex.wait_idle(60)
    assert a.exists() and b.exists()
    with open(a, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 600
    assert "VOTABLE" in b.read_text()[:2000].upper()
    w.close()


def test_the_io_queue_refuses_with_a_message_rather_than_drops(qtbot, qapp):
    import threading

    from galexplorer.gui.workers import QueuedRunner

    gate = threading.Event()
    runner = QueuedRunner("io-test", limit=2)
    done = []
    runner.finished.connect(lambda tag, v: done.append(v))
    assert runner.submit(gate.wait, 10, tag=0) > 0
    assert runner.submit(lambda: 1) > 0 and runner.submit(lambda: 2) > 0
    assert runner.submit(lambda: 3) == -1          # over the limit: refused, not replacing one
    gate.set()
    assert runner.wait(10)
    assert done == [True, 1, 2]
    runner.shutdown()


@pytest.mark.parametrize("what", ["text file", "missing"])
def test_a_store_that_cannot_be_opened_exits_2_after_the_dialog(qtbot, tmp_path, gui_settings, what):
    from galexplorer.gui.app import run_app

    path = "/etc/hostname" if what == "text file" else str(tmp_path / "nowhere.h5")
    assert run_app(path, user="tester") == 2


def test_without_a_store_the_start_page_disables_what_needs_one(qtbot, store, gui_settings):
    from galexplorer.gui.main_window import MainWindow

    w = MainWindow(gui_settings, user="tester")
    qtbot.addWidget(w)
    w.show()
    assert w.central.currentWidget() is w.welcome
    for name in ("score_0", "score_5", "refit", "export", "similar", "undo", "queue_head"):
        assert not w.act[name].isEnabled(), name
    assert w.act["open"].isEnabled() and w.act["help"].isEnabled()
    assert not any(d.isVisible() for d in w.docks.values()), "panels with live-looking buttons"
    assert not w.try_load("/etc/hostname")
    assert not any(d.isVisible() for d in w.docks.values()) and not w.act["refit"].isEnabled()
    w.load(store)
    from galexplorer.gui.app import settle

    settle(w)
    assert w.docks["inspector"].isVisible() and w.act["score_3"].isEnabled()
    w.close()


def test_esc_from_a_text_field_gives_the_keys_back_to_labelling(qtbot, store, gui_settings):
    from PySide6 import QtTest, QtWidgets

    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    w.activateWindow()
    field = w.candidates.text
    field.setFocus()
    qtbot.waitUntil(lambda: QtWidgets.QApplication.focusWidget() is field, timeout=2000)
    assert w.typing.isVisible(), "the status bar must say keys go to the text field"
    here = ex.current
    QtTest.QTest.keyClicks(field, "G0003")
    assert field.text() == "G0003" and ex.session.n_labelled == 0 and ex.current == here
    QtTest.QTest.keyClick(field, Key.Key_Escape)
    qtbot.waitUntil(lambda: QtWidgets.QApplication.focusWidget() is not field, timeout=2000)
    assert not w.typing.isVisible()
    QtTest.QTest.keyClick(QtWidgets.QApplication.focusWidget(), Key.Key_3)
    assert ex.session.n_labelled == 1 and ex.session.labels[here] == 3
    w.close()


def test_colour_limits_and_gallery_order_elided_ids_and_framed_map(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    _batch(w, 10)
    assert ex.wait_idle(60) and ex.state.scorer == "gp-anomaly"   # the default scorer
    p = w.scatter_panel
    p.colour.setCurrentText("model: predicted score")
    spec = w.scatter.colour_spec
    mean = ex.state.mean
    np.testing.assert_allclose(spec.vrange, np.percentile(mean[np.isfinite(mean)], [1, 99]), rtol=1e-5)
    idx = spec.colour_index(256)
    assert len(np.unique(idx)) >= 40, "nearly every point has the same colour"
    lo, hi = np.percentile(mean, [1, 99])
    assert float(p.lo.placeholderText()) == pytest.approx(lo, rel=1e-2, abs=1e-3)
    # limits typed on the colour bar
    p.lo.setText("1.5")
    p.hi.setText("3")
    p.hi.editingFinished.emit()
    assert w.scatter.colour_spec.vrange == (1.5, 3.0)
    # log scale, then a diverging map centred on the median
    p.log.setChecked(True)
    s = w.scatter.colour_spec
    assert s.scale == "log" and "log10" in s.name and p.lo.text() == ""
    pos = mean[mean > 0]
    np.testing.assert_allclose(s.vrange, np.percentile(np.log10(pos), [1, 99]), rtol=1e-4)
    p.log.setChecked(False)
    p.diverging.setChecked(True)
    s = w.scatter.colour_spec
    med = float(np.median(mean))
    assert s.cmap == "CET-D1" and s.vrange[0] + s.vrange[1] == pytest.approx(2 * med, rel=1e-4)
    # a categorical column has no limits to edit
    p.colour.setCurrentText("score: cluster")
    assert not p.lo.isEnabled() and not p.log.isEnabled()
    # item 11 on the same window:
    # a selection: by rank, best first (not by id)
    sel = np.arange(0, 600, 7)
    ex.select(sel)
    shown = w.gallery.indices
    assert sorted(shown.tolist()) == sel.tolist()
    assert np.all(np.diff(ex.session.rank[shown]) > 0) and not np.array_equal(shown, sel)
    # similar objects: by similarity, and by rank when asked
    ex.clear_selection()
    ex.find_similar(20)
    assert ex.wait_idle(60)
    assert w.gallery.order.currentData() == "similarity"
    assert np.all(np.diff(ex.gallery.values) <= 1e-6)
    w.gallery.order.setCurrentIndex(w.gallery.order.findData("rank"))
    assert np.all(np.diff(ex.session.rank[w.gallery.indices]) > 0)
    # ids elided in the middle, whole in the tooltip
    from galexplorer.gui.objectlist import elide_middle

    long_id = "DESI-J123456.78+012345.6-very-long-survey-id"
    assert elide_middle(long_id) == "DESI-J1…urvey-id" and elide_middle("G0000012") == "G0000012"
    i = int(w.gallery.indices[0])
    ex.session.ids.load()[i] = long_id   # the ids are read on demand; load() keeps them in memory
    assert w.views.gallery_caption(i, None).splitlines()[0] == "DESI-J1…urvey-id"
    assert w.views.queue_caption(i, None).splitlines()[0] == "DESI-J1…urvey-id"
    assert w.views.tooltip(i, None).startswith(long_id)
    # ... and in the candidates table: elided in the cell, whole on hover, found by a filter on any part
    cols, order = ex.table_columns()
    from galexplorer.gui.window_views import range_columns

    w.candidates.update_table(cols, order, range_columns(cols))
    m = w.candidates.model
    row = int(np.flatnonzero(m.visible_indices == i)[0])
    cell = m.index(row, m.column_names.index("id"))
    assert m.data(cell) == "DESI-J1…urvey-id"
    assert m.data(cell, QtCore.Qt.ItemDataRole.ToolTipRole) == long_id
    assert w.candidates.table.textElideMode() == QtCore.Qt.TextElideMode.ElideMiddle
    m.set_filter(-np.inf, np.inf, "345.6-very", "")
    assert m.visible_indices.tolist() == [i]
    m.set_filter(-np.inf, np.inf, "", "")
    # the map's first view frames the data, not a few far outliers
    xy = ex.xy.copy()
    xy[:3] = [[500.0, 500.0], [-400.0, 300.0], [0.0, -600.0]]
    w.scatter.set_points(xy)
    r = w.scatter.view_rect()
    inside = (xy[:, 0] >= r.x0) & (xy[:, 0] <= r.x1) & (xy[:, 1] >= r.y0) & (xy[:, 1] <= r.y1)
    assert inside.mean() > 0.98 and r.width < 100
    w.close()
    w.close()


def test_several_labellers_agreement_disputed_and_switching_user(qtbot, store, gui_settings):
    from sklearn.metrics import cohen_kappa_score

    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = s.ids
    rng = np.random.default_rng(5)
    ann = rng.integers(0, 6, 40)
    bob = np.clip(ann + rng.integers(-2, 3, 40), 0, 5)
    with LabelJournal.for_store(store, user="ann") as j:
        for oid, s in zip(ids[:40], ann):
            j.score(oid, int(s))
    with LabelJournal.for_store(store, user="bob") as j:
        for oid, s in zip(ids[:40], bob):
            j.score(oid, int(s))
        j.score(ids[100], 4)                    # only bob
    w = open_window(qtbot, store, gui_settings, user="ann")
    ex = w.explorer
    assert "ann" in w.windowTitle() and w.counters["labeller"].text() == "labeller: ann"
    # the agreement panel: ann/bob, 40 objects in common, sklearn's weighted kappa
    w.docks["agreement"].show()
    w.docks["agreement"].raise_()
    w.views.on_agreement()
    t = w.agreement.table
    assert [t.item(0, c).text() for c in range(3)] == ["ann", "bob", "40"]
    expect = cohen_kappa_score(ann, bob, weights="quadratic", labels=list(range(6)))
    assert float(t.item(0, 3).text()) == pytest.approx(expect, abs=5e-4)
    # colour by one labeller, or by disputes
    p = w.scatter_panel
    p.colour.setCurrentText("labels by bob")
    spec = w.scatter.colour_spec
    np.testing.assert_array_equal(spec.values[:40], bob.astype(np.float32))
    assert spec.values[100] == 4 and np.isnan(spec.values[41])
    p.colour.setCurrentText("disputed labels")
    assert w.scatter.colour_spec.kind == "categorical"
    # the disputed filter of the candidates table
    w.candidates.disputed.setChecked(True)
    shown = w.candidates.model.visible_indices
    assert len(shown) == int(ex.session.disputed.sum()) > 0
    assert ex.session.disputed[shown].all()
    w.candidates.disputed.setChecked(False)
    # File > Labeller…: label as bob, whose score goes to bob's labels
    assert w.act["labeller"].isEnabled()
    w.switch_user("bob")
    ex = w.explorer
    assert "bob" in w.windowTitle() and w.counters["labeller"].text() == "labeller: bob"
    assert ex.wait_idle(60)
    here = ex.current
    _score_key(w, 2)
    with LabelJournal.for_store(store, readonly=True) as j:
        assert j.current("bob")[ex.session.ids[here]] == 2
        assert ex.session.ids[here] not in j.current("ann")
    w.close()


def test_my_labels_view_counts_and_filters(qtbot, store, gui_settings):
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = s.ids
    with LabelJournal.for_store(store, user="bob") as j:
        for k, s in enumerate((5, 5, 0, 3)):
            j.score(ids[k], s)
        j.note(ids[1], "Tidal tail to the north")
    w = open_window(qtbot, store, gui_settings, user="ann")
    ex = w.explorer
    _score_key(w, 5)
    _score_key(w, 1)
    c = w.candidates
    assert not c.score.isEnabled()
    c.mine.setChecked(True)
    labelled = np.flatnonzero(np.isfinite(ex.session.labels))
    assert sorted(c.model.visible_indices.tolist()) == labelled.tolist()
    expect = {s: int((ex.session.labels[labelled] == s).sum()) for s in range(6)}
    assert c.counts.text() == "  ".join(f"{s}: {n}" for s, n in expect.items())
    c.score.setCurrentIndex(c.score.findData(5))
    assert (ex.session.labels[c.model.visible_indices] == 5).all() and len(c.model.visible_indices) == expect[5]
    c.score.setCurrentIndex(0)
    c.user.setCurrentIndex(c.user.findData("bob"))
    assert sorted(c.model.visible_indices.tolist()) == [0, 1, 2, 3]
    c.note_text.setText("tidal")
    assert c.model.visible_indices.tolist() == [1]
    c.note_text.setText("")
    c.user.setCurrentIndex(0)
    c.in_gallery.click()
    assert sorted(w.gallery.indices.tolist()) == labelled.tolist()
    c.mine.setChecked(False)
    assert c.model.rowCount() == 600
    # the gallery's own My labels toggle: the user's own labels (not bob's), counts per score in
    # the title, kept current as the user scores, following the table's filter when that is on;
    # off -> back
    g = w.gallery
    assert g.mine.isChecked()          # "In gallery" above shows the same view: the toggle says so
    g.mine.click()
    assert not g.mine.isChecked() and ex.gallery.kind != "labelled" and len(g.indices) == len(ex.selection)
    g.mine.click()
    own = ex.session.user_labels("ann")
    mine = np.flatnonzero(np.isfinite(own))
    assert g.mine.isChecked() and sorted(g.indices.tolist()) == mine.tolist() and len(mine) == 2
    assert "ann" in g.title.text()
    assert "  ".join(f"{s}: {int((own[mine] == s).sum())}" for s in range(6)) in g.title.text()
    _score_key(w, 2)
    mine = np.flatnonzero(np.isfinite(ex.session.user_labels("ann")))
    assert sorted(g.indices.tolist()) == mine.tolist() and "2: 1" in g.title.text()
    c.mine.setChecked(True)
    c.score.setCurrentIndex(c.score.findData(5))
    assert len(g.indices) == expect[5] and (ex.session.labels[g.indices] == 5).all()
    c.mine.setChecked(False)
    g.mine.click()
    assert not g.mine.isChecked() and ex.gallery.kind != "labelled" and len(g.indices) == len(ex.selection)
    w.close()


def _wheel(widget, pos, steps: int) -> None:
    from PySide6 import QtGui, QtWidgets

    p = QtCore.QPointF(pos)
    ev = QtGui.QWheelEvent(p, QtCore.QPointF(widget.mapToGlobal(pos)), QtCore.QPoint(0, 0),
                           QtCore.QPoint(0, 120 * steps), QtCore.Qt.MouseButton.NoButton,
                           QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(widget, ev)


def test_inspector_zoom_pan_pixel_value_large_view_and_stretch_per_store(qtbot, tmp_path, xdf_cutouts,
                                                                         gui_settings):
    from PySide6 import QtTest

    from galexplorer.store import CutoutStore

    a = build_store(tmp_path / "a.h5", 48, cutouts=xdf_cutouts)
    b = build_store(tmp_path / "b.h5", 48, cutouts=xdf_cutouts)
    w = open_window(qtbot, a, gui_settings)
    ex, ins = w.explorer, w.inspector
    st = ins.stamp
    W = st.image.width()
    assert st.view_box() == (0.0, 0.0, float(W), float(st.image.height()))
    # the wheel zooms about the cursor: the view box shrinks around that pixel
    t = st._target()
    at = QtCore.QPoint(int(t.left() + t.width() * 0.25), int(t.top() + t.height() * 0.25))
    px, py = st.image_pos(QtCore.QPointF(at))
    _wheel(st, at, 3)
    x0, y0, x1, y1 = st.view_box()
    assert x1 - x0 == pytest.approx(W / 1.25 ** 3) and st.zoom == pytest.approx(1.25 ** 3)
    assert st.image_pos(QtCore.QPointF(at)) == pytest.approx((px, py), abs=1e-6)
    # a drag pans
    QtTest.QTest.mousePress(st, QtCore.Qt.MouseButton.LeftButton, pos=at)
    QtTest.QTest.mouseMove(st, at + QtCore.QPoint(30, 0))
    QtTest.QTest.mouseRelease(st, QtCore.Qt.MouseButton.LeftButton, pos=at + QtCore.QPoint(30, 0))
    assert st.view_box()[0] < x0
    # the pixel under the cursor: position and value in each band
    QtTest.QTest.mouseMove(st, at)
    qx, qy = st.image_pos(QtCore.QPointF(at))
    with CutoutStore(xdf_cutouts) as cut:
        raw = cut.read(int(ex.current))
        bands = cut.bands
    text = ins.readout.text()
    assert text.startswith(f"x {int(qx)}, y {int(qy)}")
    assert f"{bands[0]} {float(raw[0, int(qy), int(qx)]):.4g}" in text
    ins.pixel_scale = 0.06
    ra0, dec0 = ex.position(ex.current)
    assert "ra " in ins.pixel_text(raw.shape[-1] / 2, raw.shape[-2] / 2)
    assert f"{dec0:+.6f}" in ins.pixel_text(raw.shape[-1] / 2, raw.shape[-2] / 2)
    # F11: the larger view
    key(w, Key.Key_F11)
    assert ins.large.isVisible() and ins.large.stamp.image is not None
    ins.large.close()
    # the stretch is remembered per store
    ins.stretch.setCurrentText("zscale")
    w.load(b)
    assert w.inspector.stretch.currentText() == "zscale"      # a new store starts from the last one
    w.inspector.stretch.setCurrentText("log")
    w.load(a)
    assert w.inspector.stretch.currentText() == "zscale"
    w.load(b)
    assert w.inspector.stretch.currentText() == "log"
    w.close()


def test_window_export_equals_rank_then_export_for_every_scorer_with_disputed_labels(qtbot, store, gui_settings,
                                                                                    tmp_path):
    """Issue #24 item 1: the window (its refits and exports, made in the model process) and
    ``galexplorer rank`` + ``export`` fit on the same rows of the same journal — for kNN, which
    leaves disputed objects out, as for every other scorer."""
    from dataclasses import replace

    from galexplorer.active.registry import SCORERS, skips_disputed
    from galexplorer.active.snapshot import label_snapshot
    from galexplorer.export import export_store
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as st:
        ids = [str(st.object_ids[i]) for i in range(40)]
    with LabelJournal.for_store(store, user="alice") as a, LabelJournal.for_store(store, user="tester") as t:
        for k, oid in enumerate(ids):
            agreed = 5 if k % 4 == 0 else 1
            a.score(oid, agreed)
            t.score(oid, 0 if k % 5 == 0 and agreed == 5 else (5 if k % 5 == 0 else agreed))  # every 5th disputed
    with EmbeddingStore(store) as st, LabelJournal.for_store(store, readonly=True) as j:
        snap = label_snapshot(st, j)
    assert snap.disputed.sum() == 8 and np.isfinite(snap.label).sum() == 40
    assert len(snap.fit_inputs("knn")[0]) == 32 and len(snap.fit_inputs("gp")[0]) == 40
    assert [s for s in SCORERS if skips_disputed(s)] == ["knn"]

    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    assert ex.wait_idle(60)
    for scorer in SCORERS:
        ex.config = replace(ex.config, scorer=scorer)
        window_csv, cli_csv = tmp_path / f"window-{scorer}.csv", tmp_path / f"cli-{scorer}.csv"
        assert ex.export(window_csv)
        assert ex.wait_idle(120)
        rank_store(store, ex.config)
        export_store(store, cli_csv)
        with open(window_csv, newline="") as fh:
            window = {r["id"]: (r["rank"], r["score_mean"]) for r in csv.DictReader(fh)}
        with open(cli_csv, newline="") as fh:
            cli = {r["id"]: (r["rank"], r["score_mean"]) for r in csv.DictReader(fh)}
        assert len(window) == ex.n and window == cli, f"{scorer}: the window and `rank` + `export` disagree"
    w.close()
