"""The explorer's window, driven as a user would (offscreen): open, hover, score by key, undo,
lasso, similarity, refit, export, bad stores, resume."""

from __future__ import annotations

import csv

import gui_qt
import numpy as np
import pytest
from gui_qt import drag, hover, key, open_window
from gui_stores import build_store
from PySide6 import QtCore

from galexplorer.active.registry import DEFAULT_SCORER
from galexplorer.gui.selection import in_polygon
from galexplorer.labels import LabelJournal

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings   # fixtures shared by the GUI tests
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 600   # objects in the store fixture's store (gui_qt.store)
Key = QtCore.Qt.Key
Mod = QtCore.Qt.KeyboardModifier


@pytest.fixture(scope="module")
def xdf_store(tmp_path_factory, xdf_cutouts):
    """48 real XDF galaxies, linked to their 3-band cutouts."""
    return build_store(tmp_path_factory.mktemp("xdf") / "xdf.h5", 48, cutouts=xdf_cutouts)


def journal_scores(path, user="tester") -> dict:
    with LabelJournal.for_store(path, readonly=True) as j:
        return j.current(user)


def test_open_shows_the_store(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    assert "store.h5" in w.windowTitle()
    assert w.counters["objects"].text() == "600 objects"
    assert w.counters["scored"].text() == "0 scored"
    assert w.scatter.n_points == 600 and w.scatter.mode == "markers"
    # the first batch spans the data and is queued; the inspector shows its first object
    assert ex.state is not None and ex.state.scorer.startswith("prior")
    assert len(w.queue.model.indices) > 0
    assert ex.current == int(w.queue.model.indices[0])
    assert w.inspector.title.text() == ex.session.ids[ex.current]
    assert w.candidates.model.rowCount() == 600
    w.close()


def test_hover_shows_card_with_the_nearest_object(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    sc = w.scatter
    xy = sc._xy.astype(np.float64)
    # an isolated object, so "nearest within a few pixels" has one answer
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    i = int(np.argmax(d.min(axis=1)))
    hover(sc, *(xy[i] + [0.02, -0.02]))
    qtbot.waitUntil(lambda: sc.card.isVisible() and sc.card.index == i, timeout=2000)
    assert sc.card.object_id == w.explorer.session.ids[i]
    assert dict(sc.card.lines)["cluster"] == str(w.explorer.score_array("cluster")[i])
    # far from every point: no card
    b = sc.view_rect()
    hover(sc, b.x0 + 0.001 * b.width, b.y1 - 0.001 * b.height)
    qtbot.waitUntil(lambda: not sc.card.isVisible(), timeout=2000)
    # a click opens the object in the inspector
    qtbot.mouseClick(sc.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=hover(sc, *xy[i]))
    qtbot.waitUntil(lambda: w.explorer.current == i, timeout=2000)
    assert w.inspector.title.text() == w.explorer.session.ids[i]
    w.close()


def test_score_key_commits_advances_and_undoes(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    first = ex.current
    queue_before = [int(i) for i in w.queue.model.indices]
    oid = ex.session.ids[first]
    key(w, Key.Key_3)
    assert journal_scores(store) == {oid: 3}       # in the journal, read by another connection
    assert ex.current != first and ex.current == queue_before[1]
    assert first not in w.queue.model.indices
    assert w.counters["scored"].text() == "1 scored"
    key(w, Key.Key_Z, Mod.ControlModifier)
    assert journal_scores(store) == {}
    assert ex.current == first                       # back on the undone object
    key(w, Key.Key_Z, Mod.ControlModifier | Mod.ShiftModifier)
    assert journal_scores(store) == {oid: 3}
    key(w, Key.Key_Left)
    assert ex.current == first
    key(w, Key.Key_S)                                  # skip: out of the queue, unscored
    assert ex.current != first and len(journal_scores(store)) == 1
    w.close()


def test_lasso_and_rectangle_selection(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    sc, ex = w.scatter, w.explorer
    c = ex.score_array("cluster")
    xy = sc._xy.astype(np.float64)
    centre = xy[c == 0].mean(axis=0)
    t = np.linspace(0, 2 * np.pi, 40)
    lasso = centre + 2.0 * np.c_[np.cos(t), np.sin(t)]
    key(w, Key.Key_L)
    assert sc.tool == "lasso"
    drag(sc, lasso)
    qtbot.waitUntil(lambda: len(ex.selection) > 0, timeout=2000)
    # the selection is what the drawn lasso (as mapped back from pixels) contains
    expect = in_polygon(xy, lasso)
    assert abs(len(ex.selection) - len(expect)) <= max(2, 0.03 * len(expect))
    assert len(np.intersect1d(ex.selection, expect)) >= 0.97 * len(expect)
    assert w.gallery.kind == "selection" and len(w.gallery.indices) == len(ex.selection)
    # Shift adds a rectangle, Ctrl removes it again
    key(w, Key.Key_R)
    other = xy[c == 1].mean(axis=0)
    box = np.array([other - 1.0, other + 1.0])
    before = ex.selection.copy()
    drag(sc, np.array([box[0], (box[0] + box[1]) / 2, box[1]]), Mod.ShiftModifier)
    qtbot.waitUntil(lambda: len(ex.selection) > len(before), timeout=2000)
    assert np.isin(before, ex.selection).all()
    drag(sc, np.array([box[0], (box[0] + box[1]) / 2, box[1]]), Mod.ControlModifier)
    qtbot.waitUntil(lambda: len(ex.selection) == len(before), timeout=2000)
    key(w, Key.Key_Escape)                            # stop drawing, clear the selection
    assert sc.tool == "pan" and len(ex.selection) == 0
    assert w.scatter.selection.size == 0
    w.close()


def test_similarity_search_in_gallery(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    cur = ex.current
    key(w, Key.Key_F)
    qtbot.waitUntil(lambda: w.gallery.kind == "similar", timeout=10000)
    idx, sim = w.gallery.indices, w.gallery.model.values
    assert len(idx) == gui_settings.similar_k and cur not in idx
    # the answer is the exact top-k by cosine similarity of the embeddings
    emb = ex.store.load_embeddings().astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cos = emb @ emb[cur]
    cos[cur] = -np.inf
    top = np.argsort(-cos)[:len(idx)]
    np.testing.assert_allclose(np.sort(sim)[::-1], cos[top], atol=1e-5)
    # open one from the gallery and score it: the next object comes from the gallery
    w.gallery.view.clicked.emit(w.gallery.model.index(0))
    assert ex.current == idx[0]
    key(w, Key.Key_4)
    assert journal_scores(ex.store.path) == {ex.session.ids[idx[0]]: 4}
    assert ex.current == idx[1]
    w.close()


def test_refit_after_a_batch_updates_model_queue_and_table(qtbot, store, gui_settings, tmp_path):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    c = ex.score_array("cluster")
    w.queue.batch.setValue(5)
    scored = {}
    for _ in range(5):
        i = ex.current
        s = 5 if c[i] == 0 else 1
        key(w, getattr(Key, f"Key_{s}"))
        scored[ex.session.ids[i]] = s
    assert ex.refitting or ex.state.n_labels == 5
    assert ex.wait_idle(60)
    assert ex.state.scorer == DEFAULT_SCORER and ex.state.n_labels == 5
    assert "on 5 labels" in w.counters["model"].text()
    assert w.counters["since_refit"].text() == "0/5 to refit"
    assert "model: predicted score" in [w.scatter_panel.colour.itemText(k)
                                        for k in range(w.scatter_panel.colour.count())]
    # the queue is the new batch; the table is ranked by the model
    assert len(w.queue.model.indices) and not np.isin(w.queue.model.indices,
                                                      [ex.session.index[o] for o in scored]).any()
    col = w.candidates.model.column("label")
    assert np.isfinite(col).sum() == 5
    # export from the window reads back as the ranked CSV
    out = tmp_path / "ranked.csv"
    assert ex.export(out)
    assert ex.wait_idle(60)
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 600
    got = {r["id"]: float(r["label"]) for r in rows if r["label"]}
    assert got == {k: float(v) for k, v in scored.items()}
    ranks = [int(r["rank"]) for r in rows]
    assert ranks == sorted(ranks)
    w.close()


def test_resume_where_the_user_stopped(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    for s in (2, 3):
        key(w, getattr(Key, f"Key_{s}"))
    here = ex.session.ids[ex.current]
    w.close()
    w2 = open_window(qtbot, store, gui_settings)
    ex2 = w2.explorer
    assert ex2.session.ids[ex2.current] == here
    assert ex2.session.n_labelled == 2 and w2.counters["scored"].text() == "2 scored"
    # the model is refitted on opening, on every label there is
    assert ex2.state.n_labels == 2 and w2.counters["since_refit"].text() == "0/10 to refit"
    w2.close()


def test_inspector_stretch_and_bands_from_cutouts(qtbot, xdf_store, gui_settings):
    w = open_window(qtbot, xdf_store, gui_settings)
    ins = w.inspector
    assert ins.stretch.isEnabled() and ins.band.count() == 4     # composite + b, g, r
    images = []
    for k in range(4):
        ins.stretch.setCurrentIndex(k)
        images.append(ins.stamp.image.copy())
    assert len({bytes(im.constBits()) for im in images}) == 4    # every stretch looks different
    key(w, Key.Key_B)
    assert ins.band.currentIndex() == 1
    assert gui_settings.stretch == ins.stretch.currentText()
    w.close()


def test_inspector_follows_cutouts_rows_of_a_subset_store(qtbot, tmp_path, xdf_cutouts, gui_settings):
    """A store built with --allow-missing holds some cutouts, in its own order."""
    from galexplorer.data.stretch import to_rgb8
    from galexplorer.store import CutoutStore

    rows = np.array([40, 3, 17, 8, 29, 11, 47, 0, 22, 35, 5, 14])
    store = build_store(tmp_path / "subset.h5", len(rows), cutouts=xdf_cutouts, cutouts_rows=rows)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ex.open(2)
    with CutoutStore(xdf_cutouts) as cut:
        assert ex.session.ids[2] == cut.ids[17]
        expect = to_rgb8(cut.read(17), cut.bands, w.inspector.stretch.currentText())
    img = w.inspector.stamp.image
    got = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3]
    np.testing.assert_array_equal(got.reshape(expect.shape), expect)
    w.close()


@pytest.mark.parametrize("damage, words", [
    ("text", "not an HDF5 file"),
    ("truncated", "truncated"),
    ("no projection", "galexplorer embed"),
    ("cutouts", "this is a cutouts file"),
])
def test_bad_stores_say_what_is_wrong_and_how_to_fix(qtbot, tmp_path, xdf_cutouts, gui_settings,
                                                     damage, words):
    from galexplorer.gui.main_window import MainWindow

    path = tmp_path / "bad.h5"
    if damage == "text":
        path.write_text("hello")
    elif damage == "truncated":
        good = build_store(tmp_path / "good.h5", 300)
        path.write_bytes(good.read_bytes()[:5000])
    elif damage == "no projection":
        build_store(path, 50, projection=False)
    else:
        path = xdf_cutouts
    w = MainWindow(gui_settings, user="tester")
    qtbot.addWidget(w)
    w.show()
    assert not w.try_load(path)
    assert words in w.last_error
    assert str(path) in w.last_error
    assert w.explorer is None
    w.close()


def test_help_note_table_and_bulk_actions(qtbot, store, gui_settings, monkeypatch):
    from PySide6 import QtWidgets

    from galexplorer.gui.actions import with_keys

    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    # ? lists every shortcut
    w.act["help"].trigger()
    assert w._help.isVisible()
    texts = [w._help.table.item(r, 1).text() for r in range(w._help.table.rowCount())
             if w._help.table.item(r, 1) is not None]
    assert texts == [s.description for s in with_keys()]
    w._help.close()
    # N writes a note (the dialog answered by the test)
    monkeypatch.setattr(QtWidgets.QInputDialog, "getMultiLineText",
                        staticmethod(lambda *a, **k: ("tidal tail to the north", True)))
    key(w, Key.Key_N)
    with LabelJournal.for_store(store, readonly=True) as j:
        assert j.notes() == {ex.session.ids[ex.current]: "tidal tail to the north"}
    assert w.inspector.details.item(0, 1).text() == "tidal tail to the north"
    # the candidates table filters by text and range, sorts, and opens on double click
    cand = w.candidates
    cand.text.setText("G00001")
    cand.apply_filter()
    ids = [cand.model.index(r, cand.model.column_names.index("id")).data() for r in range(cand.model.rowCount())]
    assert ids and all("G00001" in i for i in ids)
    cand.text.setText("")
    cand.column.setCurrentText("anomaly")
    cand.lo.setText("0.5")
    cand.apply_filter()
    col = cand.model.column_names.index("anomaly")
    vals = [float(cand.model.index(r, col).data()) for r in range(cand.model.rowCount())]
    assert vals and min(vals) >= 0.5
    cand.table.sortByColumn(col, QtCore.Qt.SortOrder.DescendingOrder)
    vals = [float(cand.model.index(r, col).data()) for r in range(cand.model.rowCount())]
    assert vals == sorted(vals, reverse=True)
    target = int(cand.model.index(3, 0).data(QtCore.Qt.ItemDataRole.UserRole + 1))
    cand.table.doubleClicked.emit(cand.model.index(3, 0))
    assert ex.current == target
    # a rectangle selection scored 0 in bulk, then undone in one step
    ex.select(np.arange(20, 30))
    w.gallery.scoreAll.emit(0)
    assert len(journal_scores(store)) == 10
    key(w, Key.Key_Z, Mod.ControlModifier)
    assert journal_scores(store) == {}
    w.gallery.excludeAll.emit()
    assert ex.session.excluded[20:30].all()
    w.close()


def test_layout_recent_files_and_drop(qtbot, store, tmp_path, gui_settings):
    from PySide6 import QtGui

    from galexplorer.gui.main_window import MainWindow

    w = open_window(qtbot, store, gui_settings)
    w.removeDockWidget(w.docks["queue"])
    w.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, w.docks["queue"])
    w.docks["queue"].show()
    w.close()
    assert gui_settings.recent_files()[0] == str(store.resolve())
    w2 = MainWindow(gui_settings, user="tester")
    qtbot.addWidget(w2)
    w2.show()
    assert w2.dockWidgetArea(w2.docks["queue"]) == QtCore.Qt.DockWidgetArea.RightDockWidgetArea
    # dropping a store opens it
    other = build_store(tmp_path / "other.h5", 100)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(other))])
    pos = QtCore.QPointF(200, 200)
    enter = QtGui.QDragEnterEvent(pos, QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    w2.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    w2.dropEvent(drop)
    qtbot.waitUntil(lambda: w2.explorer is not None and w2.explorer.n == 100, timeout=5000)
    assert "other.h5" in w2.windowTitle()
    w2.explorer.wait_idle(30)
    w2.close()
