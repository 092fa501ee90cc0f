"""Screenshots of the explorer for the documentation, after a scripted labelling session.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/tools/screenshots.py STORE OUT_DIR

The store is copied to a temporary folder first (its label journal is never touched). The
script scores objects from the queue with key presses as a stand-in astronomer would (the
store's anomaly score, or a catalogue column, ranked and scaled to 0–5, plays the
astronomer), waits for the refits, colours
the map by the model, draws a lasso, hovers over a galaxy, and saves the window and each
panel as PNG files in OUT_DIR: ``window.png``, ``scatter.png``, ``inspector.png``,
``queue.png``, ``gallery.png``, ``candidates.png``, ``similar.png``, ``shortcuts.png``; and
the views of a labelling afternoon: ``start-page.png``, ``colour-limits.png``,
``inspector-zoom.png``, ``my-labels.png``, ``remaining.png`` (found and estimated-left), ``agreement.png`` (a second labeller, "colleague",
scores some objects first); and the image mosaic, ``mosaic.png`` and ``mosaic-export.png``
(``--mosaic-only`` for these two alone); and the Why here panel, ``why.png``
(``--why-only`` for it alone).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _copy_store(store: Path, folder: Path) -> Path:
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        raw = s.attrs.get("cutouts_path")
    dst = folder / store.name
    shutil.copy2(store, dst)
    if raw and not Path(raw).is_absolute():   # keep a relative cutouts link working
        src = (store.parent / raw).resolve()
        if src.exists():
            (folder / raw).parent.mkdir(parents=True, exist_ok=True)
            (folder / raw).symlink_to(src)
    return dst


def _colleague_labels(store: Path, rows: np.ndarray, column: str | None, seed: int = 0) -> None:
    """A second labeller ("colleague") scores ``rows``: the same oracle, with noise."""
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        prior = (s.column(column) if column else s.score("anomaly")).astype(np.float64)
        ids = s.ids
    rank = prior.argsort().argsort() / max(len(prior) - 1, 1)
    truth = np.clip(np.round(5 * rank ** 2), 0, 5).astype(int)
    rng = np.random.default_rng(seed)
    with LabelJournal.for_store(store, user="colleague") as j:
        for r in rows:
            j.score(ids[r], int(np.clip(truth[r] + rng.integers(-1, 2), 0, 5)))


def _wait(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _label_session(app, w, n_labels: int, column: str | None) -> None:
    """Score ``n_labels`` objects of the queue as the stand-in astronomer would (``column``'s rank,
    or the anomaly score's, scaled to 0–5), then refit and wait for it."""
    ex = w.explorer
    prior = (ex.store.column(column) if column else ex.score_array("anomaly")).astype(np.float64)
    rank = prior.argsort().argsort() / max(len(prior) - 1, 1)
    oracle = np.clip(np.round(5 * rank ** 2), 0, 5).astype(int)   # a few 5s, many 0-1s
    for _ in range(n_labels):
        i = ex.current
        if i is None:
            break
        # what the score keys do (key events need an active window, which a bare X server
        # without a window manager never gives)
        ex.score(int(oracle[i]))
        app.processEvents()
        if ex.refitting:
            ex.wait_idle(120)
    ex.request_refit("manual")
    ex.wait_idle(300)


def why_screenshot(store: str | Path, out: str | Path, n_labels: int = 30, size=(1600, 1000),
                   oracle: str | None = None) -> list[Path]:
    """``why.png``: the Why here panel (W) on the unlabelled object the model likes best, after
    the scripted labelling session."""
    from PySide6 import QtCore

    from galexplorer.gui.app import application, save_screenshot, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.settings import Settings

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="galexplorer-shots-") as tmp:
        tmp = Path(tmp)
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp))
        app = application()
        copy = _copy_store(Path(store), tmp)
        w = MainWindow(Settings(), user="astronomer")
        w.resize(*size)
        w.show()
        w.load(copy)
        settle(w)
        _label_session(app, w, n_labels, oracle)
        settle(w)
        ex = w.explorer
        free = np.flatnonzero(~np.isfinite(ex.session.labels))
        ex.open(int(free[np.argmax(ex.state.mean[free])]) if len(free) else 0)
        w.run_action("why")
        deadline = time.monotonic() + 30
        while (w.why.answer is None or w.why.answer.explanation is None) and time.monotonic() < deadline:
            _wait(app, 0.05)
        settle(w)
        written = [save_screenshot(w.docks["why"], out / "why.png")]
        w.close()
    return written


def make_screenshots(store: str | Path, out: str | Path, n_labels: int = 30, size=(1600, 1000),
                     oracle: str | None = None) -> list[Path]:
    """Run the scripted session and save the screenshots.

    Args:
        oracle: a catalogue column whose rank plays the astronomer (default: the anomaly score).
    """
    from PySide6 import QtCore, QtTest

    from galexplorer.gui.app import application, save_screenshot, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.scatter import Tool
    from galexplorer.gui.settings import Settings

    column = oracle
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="galexplorer-shots-") as tmp:
        tmp = Path(tmp)
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp))
        app = application()
        copy = _copy_store(Path(store), tmp)
        start = MainWindow(Settings(), user="astronomer")
        start.resize(*size)
        start.show()
        _wait(app, 0.3)
        written.append(save_screenshot(start, out / "start-page.png"))
        start.close()
        w = MainWindow(Settings(), user="astronomer")
        w.resize(*size)
        w.show()
        w.load(copy)
        settle(w)
        ex = w.explorer
        _label_session(app, w, n_labels, oracle)
        settle(w)
        w.remaining.toggle_plot()       # the status bar's estimate of what is left, and its history
        settle(w)
        written.append(save_screenshot(w.remaining.popup, out / "remaining.png"))
        w.remaining.popup.hide()
        w.scatter_panel.colour.setCurrentText("model: predicted score")
        settle(w)
        sc = w.scatter
        xy = sc._xy.astype(np.float64)

        # a lasso around the densest part of the map, shown in the gallery
        centre = np.median(xy, axis=0)
        spread = np.percentile(np.abs(xy - centre), 20, axis=0)
        t = np.linspace(0, 2 * np.pi, 60)
        lasso = centre + np.c_[spread[0] * np.cos(t) * (1 + 0.2 * np.sin(3 * t)), spread[1] * np.sin(t)]
        sc.set_tool(Tool.LASSO)
        sc.draw_region(Tool.LASSO, [QtCore.QPointF(*p) for p in lasso])
        settle(w)
        written.append(save_screenshot(w.scatter_panel, out / "lasso.png"))
        sc.finish_region(Tool.LASSO, lasso, QtCore.Qt.KeyboardModifier.NoModifier)
        sc.set_tool(Tool.PAN)
        settle(w)
        written.append(save_screenshot(w.docks["gallery"], out / "gallery.png"))
        ex.clear_selection()

        # the unlabelled object the model likes best: similar objects, and its hover card
        s = ex.state
        free = np.flatnonzero(~np.isfinite(ex.session.labels))
        i = int(free[np.argmax(s.mean[free])]) if len(free) else 0
        ex.open(i)
        w.find_similar()
        ex.wait_idle(120)
        settle(w)
        written.append(save_screenshot(w.docks["gallery"], out / "similar.png"))
        written.append(save_screenshot(w.docks["queue"], out / "queue.png"))
        written.append(save_screenshot(w.docks["inspector"], out / "inspector.png"))
        written.append(save_screenshot(w.docks["candidates"], out / "candidates.png"))
        pos = sc.mapFromScene(sc.getViewBox().mapViewToScene(QtCore.QPointF(*xy[i])))
        QtTest.QTest.mouseMove(sc.viewport(), pos)
        _wait(app, 0.3)
        written.append(save_screenshot(w.scatter_panel, out / "scatter.png"))
        written.append(save_screenshot(w, out / "window.png"))
        sc.card.hide_card()

        # the views of a labelling afternoon
        p = w.scatter_panel
        p.diverging.setChecked(True)
        settle(w)
        written.append(save_screenshot(p, out / "colour-limits.png"))
        p.diverging.setChecked(False)
        ins = w.inspector
        ins.stamp.zoom_by(2.5)
        centre = ins.stamp.rect().center()
        QtTest.QTest.mouseMove(ins.stamp, centre)
        _wait(app, 0.2)
        written.append(save_screenshot(w.docks["inspector"], out / "inspector-zoom.png"))
        # a colleague scores the same objects (with some disagreement); the store reopens
        _colleague_labels(copy, ex.labelled()[0], column)
        w.load(copy)
        settle(w)
        ex = w.explorer
        w.candidates.mine.setChecked(True)
        _wait(app, 0.2)
        written.append(save_screenshot(w.docks["candidates"], out / "my-labels.png"))
        w.candidates.mine.setChecked(False)
        w.docks["agreement"].raise_()
        w.views.on_agreement()
        _wait(app, 0.2)
        written.append(save_screenshot(w.docks["agreement"], out / "agreement.png"))
        w.docks["candidates"].raise_()

        w.show_help()
        _wait(app, 0.2)
        written.append(save_screenshot(w._help, out / "shortcuts.png"))
        w._help.close()
        w.close()
    written += mosaic_screenshots(store, out, size)
    written += why_screenshot(store, out, n_labels, size, column)
    return written


def mosaic_screenshots(store: str | Path, out: str | Path, size=(1600, 1000)) -> list[Path]:
    """The image mosaic (View ▸ Image mosaic, ``M``) on the whole map and zoomed in twice:
    ``mosaic.png`` (the map panel) and ``mosaic-export.png`` (View ▸ Save mosaic as PNG)."""
    from PySide6 import QtCore

    from galexplorer.gui.app import application, save_screenshot, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.settings import Settings

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="galexplorer-shots-") as tmp:
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, str(tmp))
        app = application()
        copy = _copy_store(Path(store), Path(tmp))
        w = MainWindow(Settings(), user="astronomer")
        w.resize(*size)
        w.show()
        w.load(copy)
        settle(w)
        w.act["mosaic"].setChecked(True)
        w.toggle_mosaic()
        w.scatter.refresh()
        _wait(app, 0.2)
        w.scatter.mosaic.finish_loading()
        _wait(app, 0.2)
        written = [save_screenshot(w.scatter, out / "mosaic.png")]
        w.dialogs.save_mosaic(out / "mosaic-export.png")
        written.append(out / "mosaic-export.png")
        w.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description="screenshots of the explorer for the docs")
    ap.add_argument("store")
    ap.add_argument("out")
    ap.add_argument("--labels", type=int, default=30, help="objects to score before the screenshots")
    ap.add_argument("--oracle", metavar="COLUMN", help="catalogue column that plays the astronomer")
    ap.add_argument("--mosaic-only", action="store_true", help="only the image mosaic's screenshots")
    ap.add_argument("--why-only", action="store_true", help="only the Why here panel's screenshots")
    args = ap.parse_args()
    shots = mosaic_screenshots(args.store, args.out) if args.mosaic_only else \
        why_screenshot(args.store, args.out, args.labels, oracle=args.oracle) if args.why_only else \
        make_screenshots(args.store, args.out, args.labels, oracle=args.oracle)
    for p in shots:
        print(p)


if __name__ == "__main__":
    main()
