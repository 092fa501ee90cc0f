"""The explorer and export at survey scale (issue 14, items 4 and 5): 10^6 (reference) and 10^7
objects in one run.

For each size the script writes a store directly with the store's writer (synthetic: low-rank
128-d embeddings, a (N, 16) PCA, a 2-D map of a few clusters, anomaly and cluster scores,
catalogue columns mag, z (float), kind (text); no cutouts, no thumbnails), then measures:

* ``galexplorer open STORE --screenshot x.png`` (offscreen, in a subprocess): wall time to the
  saved first paint and peak memory (``ru_maxrss``, the largest of the window's process and its
  model process);
* hover latency in this process (median of 200 hovers: KD-tree pick + the card's id, ra/dec and
  catalogue lines read from the store on demand);
* the candidates table: time to the first 40 rows on screen, and to scroll to row 5·10^6 (or the
  middle, for smaller stores);
* search by id (median of 50 ids, through the store's id index);
* ``galexplorer export --top 1000`` and the full CSV export (subprocess, wall and peak).

    nice -n 5 python benchmarks/bench_explorer_scale.py                  # 10^6 and 10^7
    python benchmarks/bench_explorer_scale.py --quick                     # smoke run, 10^4 and 2·10^4
    python benchmarks/bench_explorer_scale.py --child STORE x.png $(date +%s) 100 hover   # hover only

Stores go to ``--workdir`` (10^7 needs ~6.5 GB; removed at the end unless ``--keep``).
Targets at 10^7 (2 cores): open <= 10 s and <= 6 GB; hover as at 10^6; export CSV <= 2 min.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 128
PCA_K = 16
CHUNK = 1 << 18
KINDS = np.array(["spiral", "elliptical", "merger", "ring", "edge-on", "compact"], dtype=object)


def make_store(path: Path, n: int, seed: int = 0) -> Path:
    """Write a synthetic ``n``-object store at ``path`` (see the module docstring)."""
    from galexplorer.store import EmbeddingStoreWriter, ObjectTable

    rng = np.random.default_rng(seed)
    k = 6
    centres = rng.normal(0, 6.0, (k, 2))
    mix = rng.normal(0, 0.3, (PCA_K, DIM)).astype(np.float32)
    cl = rng.integers(0, k, n).astype(np.int32)
    ids = np.array([f"g{i}" for i in range(n)], dtype=object)
    objects = ObjectTable(ids, rng.uniform(0, 360, n), rng.uniform(-60, 60, n),
                          {"mag": rng.uniform(17, 24, n), "z": rng.gamma(2.0, 0.2, n), "kind": KINDS[cl]})
    del ids
    with EmbeddingStoreWriter(path, objects, attrs={"bands": ["g", "r", "z"]}) as w:
        del objects
        emb = w.create("embeddings", (n, DIM), np.float32, attrs={"method": "synthetic"},
                       chunks=(min(n, 4096), DIM))
        pca = w.create("pca", (n, PCA_K), np.float32, attrs={"explained_variance_ratio": [1 / PCA_K] * PCA_K,
                                                           "n_components": PCA_K})
        proj = w.create("projection", (n, 2), np.float32, attrs={"method": "synthetic"})
        anomaly = w.create("scores/anomaly", (n,), np.float32, attrs={"description": "synthetic"})
        for a in range(0, n, CHUNK):
            m = min(CHUNK, n - a)
            c = cl[a:a + m]
            xy = centres[c] + rng.normal(0, 1.0, (m, 2))
            z = np.hstack([xy / 3.0, rng.normal(0, 1.0, (m, PCA_K - 2))]).astype(np.float32)
            proj[a:a + m] = xy.astype(np.float32)
            pca[a:a + m] = z
            emb[a:a + m] = z @ mix + rng.normal(0, 0.05, (m, DIM)).astype(np.float32)
            anomaly[a:a + m] = np.linalg.norm(z, axis=1).astype(np.float32) / 5
        w.write("scores/cluster", cl, attrs={"description": "synthetic"})
    return path


# -- the window, in a child process (so that ru_maxrss is this store's alone) ----------------------

def window_child(store: str, png: str, t0: float, n_hover: int, hover_only: bool = False) -> dict:
    """Open the window as ``galexplorer open`` does, then measure; returns the figures
    (``hover_only``: first paint and hover, without waiting for the model's first fit)."""
    import json

    from bench_scatter import hover_latency

    from galexplorer.gui.app import SCREENSHOT_SIZE, application, save_screenshot, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.settings import Settings

    app = application()
    window = MainWindow(Settings(), user="bench")
    window.resize(*SCREENSHOT_SIZE)
    from PySide6 import QtCore

    rendered: list[float] = []
    painted: list[float] = []
    cpu: list[float] = []      # the window process's CPU seconds (all its threads) at that paint

    class PaintSpy(QtCore.QObject):   # the map on screen: the viewport's first paint after its image
        def eventFilter(self, obj, ev):
            if ev.type() == QtCore.QEvent.Type.Paint and rendered and not painted:
                painted.append(time.time())
                cpu.append(time.process_time())
            return False

    spy = PaintSpy()
    window.scatter.viewport().installEventFilter(spy)
    window.scatter.rendered.connect(lambda mode: rendered.append(time.time()))
    window.load(store)
    window.show()
    while not painted:
        app.processEvents()
        window.scatter.viewport().update()
    out = {"first_paint": painted[0] - t0, "first_paint_cpu": cpu[0]}
    window.scatter.picker.wait(600)
    out["picker_ready"] = time.time() - t0
    if not hover_only:
        settle(window, timeout=600)
        out["model_ready"] = time.time() - t0
        save_screenshot(window, png)
    # hover: objects in view, mouse-move event to card on screen (bench_scatter's measure)
    view = window.scatter
    rect = view.view_rect()
    xy = window.explorer.xy
    rng = np.random.default_rng(1)
    cand = rng.integers(0, len(xy), 20 * n_hover)
    inside = (xy[cand, 0] > rect.x0) & (xy[cand, 0] < rect.x1) & (xy[cand, 1] > rect.y0) & (xy[cand, 1] < rect.y1)
    lat = hover_latency(app, view, xy[cand[inside][:n_hover]])
    out["hover_ms"] = float(np.median(lat) * 1e3)
    out["hover_max_ms"] = float(lat.max() * 1e3)
    if hover_only:
        window.close()
        print("RESULT " + json.dumps(out), flush=True)
        return out
    # repaint after a pan: the whole map, then zoomed in 8x (median of 10 each)
    vb = view.getViewBox()
    for key, scale in (("repaint_ms", 1.0), ("repaint_zoom_ms", 1 / 8)):
        cx, cy = (rect.x0 + rect.x1) / 2, (rect.y0 + rect.y1) / 2
        hw, hh = rect.width * scale / 2, rect.height * scale / 2
        times = []
        for k in range(10):
            dx = hw * 0.02 * k
            vb.setRange(xRange=(cx - hw + dx, cx + hw + dx), yRange=(cy - hh, cy + hh), padding=0)
            view.refresh()
            times.append(view.last_refresh_ms)
        out[key] = float(np.median(times))
    vb.setRange(xRange=(rect.x0, rect.x1), yRange=(rect.y0, rect.y1), padding=0)
    # the candidates table: first rows painted, then a scroll to row 5·10^6 (or the middle)
    panel = window.candidates
    model, table = panel.model, panel.table
    n = window.explorer.n
    ts = time.perf_counter()
    cols, order = window.explorer.table_columns()
    from galexplorer.gui.window_views import range_columns

    panel.set_table(cols, order, range_columns(cols))
    first = [model.data(model.index(r, c)) for r in range(40) for c in range(model.columnCount())]
    out["table_first_ms"] = (time.perf_counter() - ts) * 1e3
    target = min(5_000_000, n // 2)
    ts = time.perf_counter()
    table.scrollTo(model.index(target, 0))
    cells = [model.data(model.index(r, c)) for r in range(target, target + 40) for c in range(model.columnCount())]
    out["table_scroll_ms"] = (time.perf_counter() - ts) * 1e3
    out["table_rows"] = model.rowCount()
    assert first and cells and all(v is not None for v in cells[:5])
    # search by id: the store's sorted id index (what the candidates filter and labels use)
    ids = window.explorer.store.object_ids
    want = [f"g{i}" for i in rng.integers(0, n, 50)]
    times = []
    for oid in want:
        ts = time.perf_counter()
        row = ids.get(oid)
        times.append(time.perf_counter() - ts)
        assert row is not None and ids[row] == oid
    out["search_ms"] = float(np.median(times) * 1e3)
    ts = time.perf_counter()
    panel.text.setText(want[0])
    panel.apply_filter()
    out["filter_ms"] = (time.perf_counter() - ts) * 1e3
    out["filter_rows"] = model.rowCount()
    window.close()
    print("RESULT " + json.dumps(out), flush=True)
    return out


LAST_CPU = [0.0]   # CPU seconds (user + system) of the last run_child: on a shared machine the
                   # wall time also counts the others' jobs


def run_child(args: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GB of the process and its children, output); its CPU seconds in
    LAST_CPU[0]."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})}, cwd=str(ROOT))
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{out[-3000:]}")
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - t0, usage.ru_maxrss / 2**20, out


def measure(n: int, workdir: Path, n_hover: int, full_export: bool, keep: bool) -> dict:
    import json

    store = workdir / f"store{n}.h5"
    r: dict = {"n": n}
    t = time.perf_counter()
    if not store.exists():
        make_store(store, n)
    r["build"] = time.perf_counter() - t
    print(f"  N={n:,}: store written in {r['build']:.0f} s", flush=True)
    env = {"QT_QPA_PLATFORM": "offscreen", "GALEXPLORER_SETTINGS_DIR": str(workdir / "settings")}
    py = [sys.executable]
    wall, peak, _ = run_child(py + ["-m", "galexplorer", "open", str(store), "--screenshot",
                                    str(workdir / f"cli{n}.png")], env)
    r["open_cli"], r["open_cli_peak"] = wall, peak
    # the load of the machine while measuring (2 cores here, shared)
    r["load"] = os.getloadavg()[0]
    print(f"  N={n:,}: open --screenshot {wall:.1f} s, {peak:.2f} GB", flush=True)
    wall, peak, out = run_child(py + [__file__, "--child", str(store), str(workdir / f"window{n}.png"),
                                      str(time.time()), str(n_hover)], env)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r.update(json.loads(line[len("RESULT "):]))
    r["window_peak"] = peak
    print(f"  N={n:,}: first paint {r['first_paint']:.1f} s, hover {r['hover_ms']:.1f} ms", flush=True)
    wall, peak, _ = run_child(py + ["-m", "galexplorer", "rank", str(store)])
    r["rank"] = wall
    wall, peak, _ = run_child(py + ["-m", "galexplorer", "export", str(store), "-o", str(workdir / f"top{n}.csv"),
                                    "--top", "1000"])
    r["top"], r["top_peak"], r["top_cpu"] = wall, peak, LAST_CPU[0]
    if full_export:
        wall, peak, _ = run_child(py + ["-m", "galexplorer", "export", str(store), "-o", str(workdir / f"all{n}.csv")])
        r["export"], r["export_peak"], r["export_cpu"] = wall, peak, LAST_CPU[0]
        (workdir / f"all{n}.csv").unlink()
    print(f"  N={n:,}: export --top 1000 {r['top']:.1f} s; full CSV {r.get('export', float('nan')):.1f} s", flush=True)
    if not keep:
        for p in workdir.glob(f"store{n}.h5*"):
            p.unlink()
    return r


ROWS = [
    ("store written (synthetic; not galexplorer)", "build", "s"),
    ("load average of the machine (1 min)", "load", ""),
    ("open --screenshot (window + first model fit)", "open_cli", "s"),
    ("  its peak memory (window or model process)", "open_cli_peak", "GB"),
    ("window: first paint of the map", "first_paint", "s"),
    ("  the window's CPU time until then", "first_paint_cpu", "s"),
    ("window: hover index ready", "picker_ready", "s"),
    ("window: first model fit shown", "model_ready", "s"),
    ("window peak memory (after the checks below)", "window_peak", "GB"),
    ("hover -> card on screen (median)", "hover_ms", "ms"),
    ("hover -> card (max)", "hover_max_ms", "ms"),
    ("map repaint after a pan, whole map (median)", "repaint_ms", "ms"),
    ("map repaint after a pan, zoomed 8x (median)", "repaint_zoom_ms", "ms"),
    ("candidates: first 40 rows", "table_first_ms", "ms"),
    ("candidates: scroll to row 5e6 (or N/2)", "table_scroll_ms", "ms"),
    ("search by id (median of 50)", "search_ms", "ms"),
    ("candidates: filter ids by a whole id", "filter_ms", "ms"),
    ("rank (no labels: the prior ranking)", "rank", "s"),
    ("export --top 1000", "top", "s"),
    ("  its CPU time", "top_cpu", "s"),
    ("  its peak memory", "top_peak", "GB"),
    ("export CSV (all rows)", "export", "s"),
    ("  its CPU time (one core)", "export_cpu", "s"),
    ("  its peak memory", "export_peak", "GB"),
]


def table(runs: list[dict]) -> str:
    head = f"{'step':46s}" + "".join(f"{'N=' + format(r['n'], ','):>16s}" for r in runs)
    if len(runs) > 1:
        head += f"{'ratio':>9s}"
    lines = [head, "-" * len(head)]
    for label, key, unit in ROWS:
        vals = [float(r.get(key, float("nan"))) for r in runs]
        cells = "".join(f"{v:>13.2f} {unit:2s}" for v in vals)
        if len(runs) > 1:
            cells += f"{vals[-1] / vals[0]:>8.1f}x" if vals[0] else ""
        lines.append(f"{label:46s}{cells}")
    if len(runs) > 1:
        lines.append(f"ratio = N={runs[-1]['n']:,} / N={runs[0]['n']:,} (the reference, same run)")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        window_child(argv[1], argv[2], float(argv[3]), int(argv[4]), argv[5:6] == ["hover"])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000,10000000", help="store sizes, reference first")
    p.add_argument("--hovers", type=int, default=200, help="hovers measured per size")
    p.add_argument("--no-full-export", action="store_true", help="skip the full CSV export")
    p.add_argument("--workdir", help="folder for the stores (default: a temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the stores (reused by the next run)")
    p.add_argument("--quick", action="store_true", help="smoke run: 10^4 and 2·10^4 objects, 20 hovers")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.hovers = "10000,20000", 20
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="galexplorer-explorer-"))
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            runs.append(measure(n, workdir, args.hovers, not args.no_full_export, args.keep))
            print(table(runs), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
