"""The Why-here panel (issue #23 item 10), through the real window (offscreen): its numbers are
``explain(...)``'s for the inspected object, its thumbnails inspect their objects, and it says
"no model yet" before any model and what a scorer without a GP cannot split — with nothing on
stderr."""

from __future__ import annotations

import time

import gui_qt
import numpy as np
import pytest
from gui_qt import key, open_window
from gui_stores import build_store
from PySide6 import QtCore, QtWidgets

from galexplorer.active.explain import TOP_PULLS, Explanation, explain
from galexplorer.active.loop import LoopConfig
from galexplorer.gui.modelproc import ModelServer
from galexplorer.gui.why_here import WhyAnswer
from galexplorer.gui.why_panel import WhyPanel
from galexplorer.label_scale import format_prediction

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks
store = gui_qt.store
STORE_OBJECTS = 600   # objects in the store fixture's store (gui_qt.store)
Key = QtCore.Qt.Key


def _label_batch(w, n: int = 10) -> None:
    ex = w.explorer
    c = ex.score_array("cluster")
    for _ in range(n):
        key(w, Key.Key_5 if c[ex.current] == 0 else Key.Key_1)


def _fitted_on_all(qtbot, w, n: int, timeout: int = 20000) -> None:
    """Refit on all ``n`` labels now (Ctrl+R, as the user would) and wait for that model: the
    batch refits alone may leave the last labels of a batch to the next refit (a label given
    while a refit runs waits for the next batch)."""
    ex = w.explorer
    w.act["refit"].trigger()
    assert ex.wait_idle(120)
    qtbot.waitUntil(lambda: ex.state is not None and ex.state.n_labels == n, timeout=timeout)


def _fitted_knn_on_a_batch(qtbot, w) -> None:
    """Switch the loop to kNN (no GP: no split), label a batch of 10 and wait for that fit."""
    ex = w.explorer
    ex.set_config(scorer="knn")
    _label_batch(w, 10)
    ex.request_refit("manual")
    assert ex.wait_idle(60)
    qtbot.waitUntil(lambda: ex.state.scorer == "knn" and ex.state.n_labels == 10, timeout=10000)


def _answered(qtbot, w, row: int, timeout: int = 10000) -> WhyAnswer:
    """Wait for the panel's answer about ``row`` (an explanation, or a reason with no "…")."""
    panel = w.why
    qtbot.waitUntil(lambda: panel.answer is not None and panel.answer.row == row
                    and (panel.answer.explanation is not None or panel.answer.reason not in ("", "…")),
                    timeout=timeout)
    return panel.answer


def _open_why(qtbot, w) -> WhyPanel:
    w.act["why"].trigger()
    qtbot.waitUntil(lambda: w.why.in_view(), timeout=3000)
    return w.why


def _inside(widget: QtWidgets.QWidget, window: QtWidgets.QWidget) -> bool:
    """The widget is shown whole inside the window (not cut off, not squeezed to nothing)."""
    r = QtCore.QRect(widget.mapTo(window, QtCore.QPoint(0, 0)), widget.size())
    return widget.isVisible() and r.width() > 4 and r.height() > 4 and window.rect().contains(r)


def test_the_numbers_shown_are_explains_and_a_thumbnail_inspects_its_object(qtbot, store, gui_settings, capfd):
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    assert ex.config.scorer == "gp-anomaly"
    _label_batch(w, 12)
    _fitted_on_all(qtbot, w, 12)
    assert not w.why.in_view() and w.why.answer.explanation is None   # a tab behind Candidates: not asked
    panel = _open_why(qtbot, w)
    row = ex.current
    a = _answered(qtbot, w, row)
    e = a.explanation
    assert isinstance(e, Explanation) and a.has_model and a.n_labels == 12 and a.scorer == "gp-anomaly"
    # the same fit as the window's: the predicted score is the candidates' model mean
    assert e.mean[0] == pytest.approx(float(ex.state.mean[row]), abs=1e-5)
    # prior + what the labels add = the prediction
    assert e.prior[0] + e.from_labels[0] == pytest.approx(e.mean[0], abs=1e-6)
    # what the model's process answers for this object, asked again directly: the same numbers
    again, scorer, n = ex.model.explain(row, ex.state.labelled, ex.state.labels)
    for f in ("mean", "std", "prior", "prior_std", "from_labels", "pulls", "pull_contributions",
              "anomaly_percentile", "nearest", "nearest_label"):
        np.testing.assert_array_equal(getattr(e, f), getattr(again, f))
    # ... and what the panel shows is exactly them
    assert panel.prediction.text() == f"predicted  {format_prediction(e.mean[0], e.std[0])}"
    assert format_prediction(e.prior[0], e.prior_std[0]) in panel.prior.text()
    assert panel.prior.text().startswith("= prior (anomaly)")
    assert f"{abs(e.from_labels[0]):.2f}" in panel.from_labels.text()
    assert f"{e.anomaly_percentile[0]:.1f}" in panel.percentile.text()
    pulls = [int(r) for r in e.pulls[0] if r >= 0]
    assert len(pulls) == min(TOP_PULLS, 12)
    labels = ex.session.labels
    for b, r, c in zip(panel.pulls, pulls, e.pull_contributions[0]):
        assert b.row == r and b.isVisible() and np.isfinite(labels[r])
        assert ex.object_id(r)[:6] in b.text() and f"{abs(c):.2f}" in b.text()
        assert not b.icon().isNull()
    assert panel.nearest.row == int(e.nearest[0]) and np.isfinite(labels[panel.nearest.row])
    # every control of the panel is visible at 1600×1000
    for widget in (panel.heading, panel.prediction, panel.prior, panel.from_labels, panel.percentile, panel.model,
                   *panel.pulls, panel.nearest):
        assert _inside(widget, w), widget.objectName() or widget.text()
    # the UI thread's share of an answer (thumbnails and text) stays far below a stall
    t0 = time.perf_counter()
    panel.show_answer(a)
    assert time.perf_counter() - t0 < 0.1
    # clicking the strongest pull inspects it, and the panel then explains it
    target = pulls[0]
    qtbot.mouseClick(panel.pulls[0], QtCore.Qt.MouseButton.LeftButton)
    assert ex.current == target and w.inspector.index == target
    b = _answered(qtbot, w, target)
    assert b.explanation is not None and b.explanation.rows[0] == target
    # so does the nearest labelled neighbour
    near = panel.nearest.row
    qtbot.mouseClick(panel.nearest, QtCore.Qt.MouseButton.LeftButton)
    assert ex.current == near
    _answered(qtbot, w, near)
    w.close()
    assert capfd.readouterr().err == ""


def test_before_any_model_it_says_so_and_shows_no_prediction(qtbot, store, gui_settings, capfd):
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    assert ex.state is not None and ex.state.n_labels == 0      # the first batch: anomaly order
    key(w, Key.Key_W)
    qtbot.waitUntil(lambda: w.why.in_view(), timeout=3000)
    a = _answered(qtbot, w, ex.current)
    assert not a.has_model
    assert w.why.prediction.text().startswith("no model yet")
    assert w.why.prior.text() == w.why.from_labels.text() == ""
    assert not any(b.isVisible() for b in w.why.pulls) and not w.why.nearest.isVisible()
    assert "anomaly percentile" in w.why.percentile.text()
    w.unload()                                                   # the store closed: nothing stale
    qtbot.waitUntil(lambda: w.why.answer.row is None, timeout=3000)
    w.close()
    assert capfd.readouterr().err == ""


def test_before_the_first_fit_lands_no_number_is_shown(qtbot):
    """The state the window has between opening and the first fit."""
    class Stub(QtCore.QObject):
        currentChanged = QtCore.Signal(object)
        modelChanged = QtCore.Signal()
        state = None
        current = 3

        class model:   # noqa: N801 (the controller's ModelProcess, open)
            closed = False

        def __init__(self):
            super().__init__()
            from galexplorer.gui.why_here import WhyHere

            self.why = WhyHere(self)

        def object_id(self, i):
            return f"G{i:07d}"

    stub = Stub()
    panel = WhyPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.bind(stub, None)
    assert panel.answer.row == 3 and panel.answer.explanation is None
    assert panel.prediction.text().startswith("no model yet")
    assert not any(ch.isdigit() for ch in panel.prior.text() + panel.from_labels.text() + panel.note.text())
    assert stub.why.runner.runs == 0                    # nothing was asked of a model that is not there


def test_a_label_changed_or_undone_since_the_fit_is_never_shown_as_if_it_held(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    _label_batch(w, 12)
    _fitted_on_all(qtbot, w, 12)
    panel = _open_why(qtbot, w)
    a = _answered(qtbot, w, ex.current)
    assert "changed since" not in panel.note.text()
    assert not any(b.row is not None and "now" in b.text() for b in [*panel.pulls, panel.nearest])
    # the strongest pull is scored again, differently: the same answer, shown again, says so
    r = int(a.explanation.pulls[0][0])
    before = float(ex.session.labels[r])
    ex.open(r)
    key(w, Key.Key_1 if before == 5 else Key.Key_5)
    assert float(ex.session.labels[r]) != before
    panel.show_answer(a)
    assert "★5 now" in panel.pulls[0].text() or "★1 now" in panel.pulls[0].text()
    assert "changed since this fit (12 now)" in panel.note.text() and "Ctrl+R" in panel.note.text()
    assert panel.note.isVisible() and _inside(panel.note, w)
    # the change undone: the label is the fit's again, and nothing is marked
    ex.undo()
    assert float(ex.session.labels[r]) == before
    panel.show_answer(a)
    assert "now" not in panel.pulls[0].text() and "changed since" not in panel.note.text()
    # a label of the batch undone: 11 labels now, and that object, where shown, is "unscored now"
    labelled = set(np.flatnonzero(np.isfinite(ex.session.labels)).tolist())
    ex.undo()
    gone = labelled - set(np.flatnonzero(np.isfinite(ex.session.labels)).tolist())
    assert ex.session.n_labelled == 11 and len(gone) == 1
    panel.show_answer(a)
    assert "changed since this fit (11 now)" in panel.note.text()
    for b in [*panel.pulls, panel.nearest]:
        assert (b.row in gone) == ("unscored now" in b.text()), b.text()


def test_the_queue_panel_options_reach_the_loop_and_the_settings(qtbot, store, gui_settings):
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    before = ex.config
    k = w.queue.scorer.findData("knn")
    assert k >= 0 and before.scorer != "knn"
    w.queue.scorer.setCurrentIndex(k)
    w.queue.batch.setValue(7)
    assert ex.config.scorer == "knn" and ex.config.batch_size == 7
    assert ex.session.batch_size == 7 and w.settings.scorer == "knn"
    assert ex.config.cold_start == before.cold_start and ex.config.widen_after == before.widen_after


def test_disputed_labels_a_fit_leaves_out_are_not_taken_for_a_change(qtbot, store, gui_settings):
    """kNN is fitted without disputed objects: the labels it took are fewer than the labelled
    objects, and that is not "labels changed since this fit"."""
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        ids = list(s.ids)
    for user, score in (("ann", 4), ("bob", 0)):
        with LabelJournal.for_store(store, user=user) as j:
            for i in (40, 41, 42):
                j.score(ids[i], score)
    w = open_window(qtbot, store, gui_settings, user="ann", size=(1600, 1000))
    ex = w.explorer
    _fitted_knn_on_a_batch(qtbot, w)
    assert ex.session.n_labelled == 13
    panel = _open_why(qtbot, w)
    _answered(qtbot, w, ex.current)
    assert "changed since" not in panel.note.text()


def test_a_scorer_without_a_gp_shows_the_percentile_and_neighbour_and_says_why_no_split(
        qtbot, store, gui_settings, capfd):
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    _fitted_knn_on_a_batch(qtbot, w)
    panel = _open_why(qtbot, w)
    a = _answered(qtbot, w, ex.current)
    assert a.scorer == "knn" and a.has_model
    assert "needs a GP scorer" in panel.prior.text()
    assert not any(b.isVisible() for b in panel.pulls)
    assert panel.nearest.isVisible() and np.isfinite(ex.session.labels[panel.nearest.row])
    assert f"{a.explanation.anomaly_percentile[0]:.1f}" in panel.percentile.text()
    w.close()
    assert capfd.readouterr().err == ""


def test_a_mean_beyond_the_scale_shows_clipped_with_the_exact_sum_said(qtbot):
    panel = WhyPanel()
    qtbot.addWidget(panel)
    one, nan = np.array([1.0]), np.array([np.nan])
    e = Explanation(np.array([7]), np.array([5.31]), np.array([0.4]), np.array([3.1]), np.array([0.9]),
                    np.array([2.21]), np.array([[2, -1, -1]]), np.array([[5.0, np.nan, np.nan]]),
                    np.array([[0.5, np.nan, np.nan]]), np.array([[2.21, np.nan, np.nan]]), 99 * one,
                    np.array([2]), one, 5 * one)
    del nan
    panel.show_answer(WhyAnswer(7, e, "gp-anomaly", 4))
    assert panel.prediction.text() == "predicted  ≥5 ± 0.40"
    assert "5.31" in panel.note.text() and "beyond the 0–5 scale" in panel.note.text()
    assert [b.row for b in panel.pulls if b.row is not None] == [2]


def test_the_model_process_explains_the_fit_the_window_shows(store):
    """The request's answer is :func:`explain` on the latest ``fit`` (and nothing for another)."""
    srv = ModelServer(store)
    try:
        cfg = LoopConfig()
        labelled = np.arange(0, 60, 4, dtype=np.int64)
        labels = (labelled % 6).astype(np.float32)
        state = srv.fit(cfg.to_dict(), labelled, labels, np.empty(0, np.int64))
        got = srv.explain(11, state["labelled"], state["labels"], TOP_PULLS)
        want = explain(srv.shown, srv.loop.X, srv.loop.anomaly_prior(), np.array([11]))
        assert got["scorer"] == "gp-anomaly" and got["n_labels"] == len(labelled)
        for f in ("mean", "prior", "from_labels", "pulls", "pull_contributions", "nearest", "anomaly_percentile"):
            np.testing.assert_array_equal(got[f], getattr(want, f))
        assert got["mean"][0] == pytest.approx(state["scores"].mean[11], abs=1e-5)
        # an export that refits on newer labels does not change what the window's fit explains
        srv.export(cfg.to_dict(), labelled[:-1], labels[:-1], np.empty(0, np.int64), str(store) + ".csv", None)
        np.testing.assert_array_equal(srv.explain(11, state["labelled"], state["labels"], TOP_PULLS)["mean"],
                                      got["mean"])
        assert srv.explain(11, labelled[:-1], labels[:-1], TOP_PULLS) is None     # not the window's fit
    finally:
        srv.close()


@pytest.mark.slow
def test_the_window_keeps_responding_while_objects_are_explained(qtbot, tmp_path, gui_settings):
    """Stepping through objects with the panel in view (a request and an answer each) never
    holds the UI thread 100 ms: the explanation is the model process's work, the window only
    draws it (measured as tests/test_gui_responsive.py does: each gap between 10 ms ticks less
    the UI thread's wait for a core)."""
    from gui_qt import runqueue_wait
    from test_gui_responsive import _phase

    store = build_store(tmp_path / "mid.h5", 20_000)
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    _label_batch(w, 12)
    _fitted_on_all(qtbot, w, 12)
    _open_why(qtbot, w)
    _answered(qtbot, w, ex.current, timeout=20000)
    ticks: list[tuple[float, float, float]] = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time(), runqueue_wait())))
    timer.start()
    rows = np.random.default_rng(3).choice(ex.n, 15, replace=False)
    asked = ex.why.runner.runs
    todo = list(rows)
    opened_at = [0.0]

    def step() -> bool:
        """Inside the measured phase: open the next object every 30 ms (as fast as clicks in the
        map; each request replaces the one still waiting), then wait for the last answer."""
        if todo:
            if time.perf_counter() - opened_at[0] > 0.03:
                ex.open(int(todo.pop(0)))
                opened_at[0] = time.perf_counter()
            return False
        return w.why.answer.row == int(rows[-1]) and w.why.answer.explanation is not None

    phase = _phase(qtbot, ticks, until=step)
    timer.stop()
    assert ex.why.runner.runs > asked
    msg = (f"UI thread stalled {phase['stall'] * 1e3:.0f} ms (wall {phase['wall'] * 1e3:.0f} ms, "
           f"most UI-thread CPU between ticks {phase['cpu'] * 1e3:.0f} ms)")
    print(msg)
    assert phase["stall"] < 0.100 and phase["cpu"] < 0.100, msg
    w.close()


def test_thumbnails_grow_with_the_dock_and_stay_inside_it(qtbot):
    """A short dock shows 64-px thumbnails; a taller one larger ones (scaled up, pixels square),
    never cut off by the panel's edges nor squeezing the numbers' column below two fifths."""
    from PySide6 import QtGui

    from galexplorer.gui.why_panel import MAX_THUMB, THUMB

    panel = WhyPanel()
    qtbot.addWidget(panel)
    source = QtGui.QPixmap(64, 64)
    source.fill(QtGui.QColor("red"))
    for b in [*panel.pulls, panel.nearest]:
        b.show_object(1, source, "G1\n★5 · +0.5", "tip")
    sides = {}
    for height in (110, 270, 600):
        panel.resize(900, height)
        panel.show()
        qtbot.waitExposed(panel)
        QtWidgets.QApplication.processEvents()
        b = panel.pulls[0]
        sides[height] = b.iconSize().width()
        assert THUMB <= sides[height] <= MAX_THUMB
        assert b.icon().actualSize(QtCore.QSize(999, 999)).width() == sides[height]   # scaled up, not left small
        for btn in [*panel.pulls, panel.nearest]:
            r = QtCore.QRect(btn.mapTo(panel, QtCore.QPoint(0, 0)), btn.size())
            assert panel.rect().contains(r), (height, r, panel.rect())
        assert panel.heading.width() >= 0.35 * panel.width()
    assert sides[110] == THUMB
    assert sides[270] > 1.4 * THUMB            # the screenshot's dock: the thumbnails were 64 px there
    assert sides[600] >= sides[270]


def test_widen_the_view_after_the_first_find_from_the_model_menu(qtbot, store, gui_settings, capfd):
    """Model ▸ Widen the view after the first find: LoopConfig.widen_after = 1, kept in the
    settings; before a find the loop learns on the default set, after it on the wide view, and
    the status line says why. Off again: the default set."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    assert ex.config.widen_after is None and not w.act["widen_view"].isChecked()      # the default
    w.act["widen_view"].trigger()
    assert ex.config.widen_after == 1 and gui_settings.widen_after == 1
    for _ in range(20):
        key(w, Key.Key_0)
    _fitted_on_all(qtbot, w, 20)
    assert "wide" not in ex.state.representation
    key(w, Key.Key_5)
    for _ in range(9):
        key(w, Key.Key_0)
    _fitted_on_all(qtbot, w, 30)
    assert ex.state.representation in ("combined-wide", "wide")
    assert "the wide view after 1 find" in ex.state.representation_reason
    w.act["widen_view"].trigger()
    assert ex.config.widen_after is None and gui_settings.widen_after is None
    state = ex.state
    assert ex.wait_idle(120)
    qtbot.waitUntil(lambda: ex.state is not state and ex.state.n_labels == 30, timeout=20000)
    assert "wide" not in ex.state.representation
    w.close()
    assert capfd.readouterr().err == ""


def test_a_random_pick_of_the_cold_start_says_why_it_is_in_the_queue(qtbot, store, gui_settings, capfd):
    """Model ▸ Random picks until the first find on, 40 labels and no find: the next batch is
    drawn at random (galexplorer.active.cold_start); the queue's status line says so, and so does
    Why here for such an object (not for others). Off again, the model picks every object."""
    w = open_window(qtbot, store, gui_settings, size=(1600, 1000))
    ex = w.explorer
    assert ex.config.cold_start == "model" and not w.act["random_start"].isChecked()   # the default
    w.act["random_start"].trigger()
    assert ex.config.cold_start == "random-share" and gui_settings.cold_start == "random-share"
    for _ in range(40):
        key(w, Key.Key_1)
    _fitted_on_all(qtbot, w, 40)
    state = ex.state
    assert len(state.random_picks) == 10 and set(state.random_picks) == set(state.next_batch)
    assert "no score ≥ 3 in 40 labels yet: this batch is drawn at random" in w.queue.status.text()
    panel = _open_why(qtbot, w)
    pick = int(state.random_picks[0])
    ex.open(pick)
    a = _answered(qtbot, w, pick)
    assert a.picked == "picked at random: no find (≥ 3) in 40 labels"
    assert panel.picked.text() == a.picked and _inside(panel.picked, w)
    labelled = int(state.labelled[0])
    ex.open(labelled)
    _answered(qtbot, w, labelled)
    assert panel.answer.picked == "" and not panel.picked.isVisible()
    w.act["random_start"].trigger()                                  # off: a refit, no random picks
    assert ex.config.cold_start == "model" and gui_settings.cold_start == "model"
    assert ex.wait_idle(120)
    qtbot.waitUntil(lambda: ex.state is not state and ex.state.n_labels == 40, timeout=20000)
    assert len(ex.state.random_picks) == 0 and "at random" not in w.queue.status.text()
    w.close()
    assert capfd.readouterr().err == ""
