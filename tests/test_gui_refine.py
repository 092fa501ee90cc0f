"""#22 item 2 in the window: Model ▸ Refine the representation runs `galexplorer refine` beside the
window, which keeps answering, then opens the new store with the selection and the inspected
object kept."""

from __future__ import annotations

import gc
import time

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window, runqueue_wait

from galexplorer.gui.refine import progress_line, refined_path

gui_settings = gui_qt.gui_settings


def test_progress_lines_and_the_output_name(tmp_path):
    assert progress_line("refine:  40%|####      | 2/5 [00:03<00:04]\r") == "refine 40%"
    assert progress_line("x\rembedding:  80%|###| 40/48\rembedding: 100%|#| 48/48\n") == "embedding 100%"
    assert progress_line("galexplorer: loading\n") is None
    store = tmp_path / "s.h5"
    assert refined_path(store) == tmp_path / "s-refined.h5"
    (tmp_path / "s-refined.h5").write_bytes(b"")
    assert refined_path(store) == tmp_path / "s-refined-2.h5"


@pytest.mark.gui
@pytest.mark.slow
def test_refine_from_the_window(qtbot, tmp_path, xdf_cutouts, gui_settings):
    from galexplorer.cli import main
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    (tmp_path / "tiny.toml").write_text("proj_hidden = 32\nproj_dim = 16\npred_hidden = 32\nmonitor_objects = 16\n")
    assert main(["-q", "train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "16",
                 "--image-size", "16", "--device", "cpu", "--config", str(tmp_path / "tiny.toml")]) == 0
    store = tmp_path / "s.h5"
    assert main(["-q", "embed", str(xdf_cutouts), "--run", str(tmp_path / "run"), "-o", str(store), "--device",
                 "cpu", "--projection", "pca"]) == 0
    with EmbeddingStore(store) as s:
        ids = [str(s.ids[i]) for i in range(s.n)]
    with LabelJournal.for_store(store, user="tester") as j:
        for i in range(3):
            j.score(ids[i], 5)
        for i in range(3, 16):
            j.score(ids[i], 0)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ex.select(np.array([20, 21, 22]))
    ex.open(30)
    out = tmp_path / "refined.h5"
    assert w.act["refine"].isEnabled()
    gc.collect()
    gc.freeze()     # the earlier tests' objects are not the window's (as tests/test_gui_responsive.py)
    w.refinement.start(out)
    # the window keeps answering while the refine runs in its own process: each gap between
    # event-loop turns less the UI thread's wait for a core (the refine's process takes both
    # cores on this 2-core machine; that wait is the machine's, not the window's)
    gaps, last, waited = [], time.perf_counter(), runqueue_wait()
    deadline = time.monotonic() + 240
    while w.refinement.job.running and time.monotonic() < deadline:
        qtbot.wait(20)
        now, wait = time.perf_counter(), runqueue_wait()
        gaps.append(now - last - (wait - waited))
        last, waited = now, wait
    gc.unfreeze()
    qtbot.waitUntil(lambda: w.explorer is not ex and w.explorer is not None, timeout=60000)
    assert not getattr(w, "last_error", None), w.last_error
    assert max(gaps) < 0.5, f"the window stalled {max(gaps) * 1000:.0f} ms during the refine"
    new = w.explorer
    assert str(new.session.store.path) == str(out)
    assert sorted(new.selection.tolist()) == [20, 21, 22] and new.current == 30
    assert "refined" in w.windowTitle()
    with LabelJournal.for_store(out, readonly=True) as j:
        assert len(j.consensus().ids) == 16
    w.close()


@pytest.mark.gui
def test_a_failing_refine_is_one_line_and_the_store_stays(qtbot, tmp_path, gui_settings):
    from gui_stores import build_store

    store = build_store(tmp_path / "plain.h5", n=60)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    w.refinement.start(tmp_path / "out.h5")
    qtbot.waitUntil(lambda: not w.refinement.job.running and bool(getattr(w, "last_error", None)), timeout=60000)
    assert w.explorer is ex                       # nothing switched
    assert "the refine failed" in w.last_error and "\n" not in w.last_error
    w.close()


@pytest.mark.gui
@pytest.mark.slow
def test_refine_from_the_window_on_own_embeddings(qtbot, tmp_path, gui_settings):
    """On a store of your own embeddings the same action refines a small head (the command does;
    the window needs nothing else) and opens the new store with the selection kept."""
    from active_synthetic import own_embeddings_store, planted_quiet

    from galexplorer.labels import LabelJournal

    x, rare = planted_quiet(400, seed=1, rare=0.05)
    store = own_embeddings_store(tmp_path / "own.h5", x)
    with LabelJournal.for_store(store, user="tester") as j:
        for i in np.flatnonzero(rare)[:6]:
            j.score(f"obj{i:05d}", 5)
        for i in np.flatnonzero(~rare)[:30]:
            j.score(f"obj{i:05d}", 0)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    ex.select(np.array([3, 4]))
    out = tmp_path / "own-refined.h5"
    w.refinement.start(out)
    qtbot.waitUntil(lambda: w.explorer is not ex and w.explorer is not None, timeout=120000)
    assert not getattr(w, "last_error", None), w.last_error
    assert str(w.explorer.session.store.path) == str(out)
    assert sorted(w.explorer.selection.tolist()) == [3, 4]
    with LabelJournal.for_store(out, readonly=True) as j:
        assert len(j.consensus().ids) == 36
    w.close()
