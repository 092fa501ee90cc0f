"""Scatter of 10^5 and 10^6 points: the explorer's view against a plain pyqtgraph ScatterPlotItem.

For each size, in the same run and the same offscreen window size:

* first paint: from handing over the points to a rendered frame (``widget.grab()``);
* repaint after pan/zoom: the median over a fixed sequence of pans and zooms (full view, then
  zooming into a cluster, then panning there), each until the frame is rendered;
* hover → card: from a real mouse-move event to the hover card painted (the explorer) and to
  pyqtgraph's own hover signal (``ScatterPlotItem(hoverable=True)``).

Targets at 10^6: first paint <= 1 s, repaint <= 40 ms, hover <= 30 ms, repaint >= 8x faster
than the plain item.

Run:  flock /tmp/galexplorer-bench.lock python benchmarks/bench_scatter.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

SIZE = (1000, 750)


def clustered(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float32 points in 8 clusters of different sizes and densities, and a score."""
    rng = np.random.default_rng(seed)
    k = 8
    centres = rng.normal(0, 6, (k, 2))
    c = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 2.0)))
    xy = centres[c] + rng.normal(0, 1, (n, 2)) * rng.uniform(0.4, 2.0, k)[c, None]
    score = (np.hypot(*(xy - centres[0]).T) + rng.normal(0, 0.3, n)).astype(np.float32)
    return xy.astype(np.float32), score


def operations(bounds: tuple[float, float, float, float], centre: np.ndarray, n_each: int):
    """A fixed sequence of (kind, argument) view changes: pans at full view, zooms into
    ``centre``, pans there."""
    x0, x1, y0, y1 = bounds
    w = x1 - x0
    ops = [("pan", (w * 0.03 * (1 if k % 2 else -1), w * 0.02)) for k in range(n_each)]
    ops += [("zoom", (0.6, centre)) for _ in range(n_each)]
    ops += [("pan", (w * 0.0006 * (1 if k % 2 else -1), w * 0.0004)) for k in range(n_each)]
    return ops


def apply_op(vb, op) -> None:
    kind, arg = op
    if kind == "pan":
        vb.translateBy(x=arg[0], y=arg[1])
    else:
        from PySide6 import QtCore

        s, c = arg
        vb.scaleBy((s, s), center=QtCore.QPointF(float(c[0]), float(c[1])))


def settle(app) -> None:
    for _ in range(3):
        app.processEvents()


def bench_explorer(app, xy, score, ops, hover_points, colour: bool):
    from galexplorer.gui.colouring import spec_for
    from galexplorer.gui.scatter import ScatterView

    view = ScatterView()
    view.resize(*SIZE)
    view.show()
    settle(app)
    t0 = time.perf_counter()
    view.set_points(xy)
    if colour:
        view.set_colour(spec_for("score", score))
    view.refresh()
    view.grab()
    first = time.perf_counter() - t0
    vb = view.getViewBox()
    times = []
    modes = []
    for op in ops:
        t0 = time.perf_counter()
        apply_op(vb, op)
        app.processEvents()   # runs the coalesced recomputation
        view.grab()
        times.append(time.perf_counter() - t0)
        modes.append(view.mode)
    view.reset_view()
    settle(app)
    view.picker.wait()
    hover = hover_latency(app, view, hover_points)
    view.close()
    view.deleteLater()
    settle(app)
    return first, np.array(times), modes, hover


def mouse_move(plot, x: float, y: float):
    """A mouse-move event to the viewport pixel of data point (x, y) of a PlotWidget."""
    from PySide6 import QtCore, QtGui

    vp = plot.viewport()
    pos = plot.mapFromScene(plot.getViewBox().mapViewToScene(QtCore.QPointF(float(x), float(y))))
    return QtGui.QMouseEvent(QtCore.QEvent.Type.MouseMove, QtCore.QPointF(pos), QtCore.QPointF(vp.mapToGlobal(pos)),
                             QtCore.Qt.MouseButton.NoButton, QtCore.Qt.MouseButton.NoButton,
                             QtCore.Qt.KeyboardModifier.NoModifier)


def hover_latency(app, view, points) -> np.ndarray:
    from PySide6 import QtWidgets

    vp = view.viewport()
    out = []
    for x, y in points:
        ev = mouse_move(view, x, y)
        time.sleep(0.012)   # pyqtgraph drops mouse moves closer than 10 ms apart
        t0 = time.perf_counter()
        QtWidgets.QApplication.sendEvent(vp, ev)
        deadline = t0 + 2.0
        while not view.card.isVisible() and time.perf_counter() < deadline:
            app.processEvents()
        vp.repaint()   # the card on screen
        out.append(time.perf_counter() - t0)
        view.card.hide_card()
        view.hovered_index = -1
    return np.array(out)


def bench_plain(app, xy, ops, hover_points):
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    w = pg.PlotWidget()
    w.resize(*SIZE)
    w.show()
    settle(app)
    t0 = time.perf_counter()
    item = pg.ScatterPlotItem(x=xy[:, 0], y=xy[:, 1], pxMode=True, size=5, pen=None,
                              brush=pg.mkBrush(159, 198, 255, 200), hoverable=True)
    w.addItem(item)
    w.grab()
    first = time.perf_counter() - t0
    vb = w.getViewBox()
    vb.setAspectLocked(True)
    vb.autoRange(padding=0.03)
    settle(app)
    w.grab()
    times = []
    for op in ops:
        t0 = time.perf_counter()
        apply_op(vb, op)
        app.processEvents()
        w.grab()
        times.append(time.perf_counter() - t0)
    vb.autoRange(padding=0.03)
    settle(app)
    w.grab()
    hits = []
    item.sigHovered.connect(lambda it, pts, ev: hits.append(len(pts)))
    vp = w.viewport()
    out = []
    for x, y in hover_points:
        ev = mouse_move(w, x, y)
        time.sleep(0.012)
        n0 = len(hits)
        t0 = time.perf_counter()
        QtWidgets.QApplication.sendEvent(vp, ev)
        deadline = t0 + 5.0
        while len(hits) == n0 and time.perf_counter() < deadline:
            app.processEvents()
        vp.repaint()
        out.append(time.perf_counter() - t0)
    w.close()
    w.deleteLater()
    settle(app)
    return first, np.array(times), np.array(out)


def run(n: int, n_each: int, n_hover: int, app) -> dict:
    xy, score = clustered(n)
    b = (float(xy[:, 0].min()), float(xy[:, 0].max()), float(xy[:, 1].min()), float(xy[:, 1].max()))
    rng = np.random.default_rng(1)
    dense = xy[rng.integers(0, n)].astype(np.float64)
    ops = operations(b, dense, n_each)
    hover_points = xy[rng.choice(n, n_hover, replace=False)]
    first, times, modes, hover = bench_explorer(app, xy, score, ops, hover_points, colour=False)
    first_c, times_c, _, _ = bench_explorer(app, xy, score, ops, hover_points[:2], colour=True)
    p_first, p_times, p_hover = bench_plain(app, xy, ops, hover_points)
    return dict(n=n, first=first, times=times, modes=modes, hover=hover, first_c=first_c, times_c=times_c,
                p_first=p_first, p_times=p_times, p_hover=p_hover)


def report(r: dict) -> list[str]:
    ms = 1e3
    med, p_med = np.median(r["times"]), np.median(r["p_times"])
    lines = [
        f"N={r['n']:>9,}  first paint   explorer {r['first']:.3f} s (coloured by a score {r['first_c']:.3f} s)"
        f" | ScatterPlotItem {r['p_first']:.3f} s | {r['p_first'] / r['first']:.1f}x faster",
        f"{'':13}repaint median explorer {med * ms:.1f} ms (p90 {np.percentile(r['times'], 90) * ms:.1f}, "
        f"coloured {np.median(r['times_c']) * ms:.1f} ms) | ScatterPlotItem {p_med * ms:.1f} ms "
        f"| {p_med / med:.1f}x faster   [{r['modes'].count('density')} density / "
        f"{r['modes'].count('markers')} marker frames]",
        f"{'':13}hover->card    explorer {np.median(r['hover']) * ms:.1f} ms (max {r['hover'].max() * ms:.1f}) "
        f"| ScatterPlotItem hover {np.median(r['p_hover']) * ms:.1f} ms | "
        f"{np.median(r['p_hover']) / np.median(r['hover']):.1f}x faster",
    ]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few operations (smoke test)")
    args = ap.parse_args()
    from galexplorer.gui.app import application

    app = application()
    sizes = [20_000, 100_000] if args.quick else [100_000, 1_000_000]
    n_each, n_hover = (3, 5) if args.quick else (10, 20)
    results = []
    for n in sizes:
        r = run(n, n_each, n_hover, app)
        results.append(r)
        for line in report(r):
            print(line, flush=True)
    big = results[-1]
    if big["n"] >= 1_000_000:
        med = np.median(big["times"])
        checks = [("first paint <= 1 s", big["first"] <= 1.0), ("repaint <= 40 ms", med <= 0.040),
                  ("hover <= 30 ms", np.median(big["hover"]) <= 0.030),
                  ("repaint >= 8x ScatterPlotItem", np.median(big["p_times"]) / med >= 8)]
        print("targets at 10^6: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in checks))


if __name__ == "__main__":
    main()
