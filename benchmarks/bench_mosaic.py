"""The image mosaic at 10^6 objects: its redraw on pan and zoom, against the map alone.

In the same run, on the same offscreen ScatterView (1000 x 750 px) and the same 10^6 clustered
points as bench_scatter.py:

* redraw: a fixed sequence of pans and zooms (full view, zooming into a cluster, panning there),
  each from the view change to the frame rendered (``widget.grab()``), median of the sequence
  repeated ``--repeats`` times: the map alone (mosaic off, the reference) and with the mosaic on
  (thumbnails cached: the sequence is run once before, reading them); also the mosaic's own part
  (choosing the cells and handing over the cached pixmaps, ``MosaicLayer.last_redraw_ms``) and
  the brute-force choice over every point that the KD-tree replaces;
* cold: the first pass, when every new cell's thumbnail must be read: the frames (which do not
  wait for the reads) and the time until the last thumbnail is on screen; thumbnails here come
  from memory (10^6 real 64-px thumbnails would be a 12 GB store); a real store's read is timed
  apart, per thumbnail, from a gzip-chunked HDF5 dataset as the stores write it;
* first paint of the 10^6 map with the layer present and off (the default) against a view whose
  mosaic item was taken out of the scene (the map as it was before the layer), alternating,
  median of 5.

Target: redraw <= 50 ms at 10^6; first paint unchanged.

Run:  flock /tmp/galexplorer-bench.lock python benchmarks/bench_mosaic.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from bench_scatter import SIZE, apply_op, clustered, operations, settle  # noqa: E402

THUMB = 64


class CycledThumbnails:
    """An (N, T, T, 3) uint8 'dataset' that cycles a pool of images (indexing as h5py's)."""

    def __init__(self, n: int, pool: int = 512, size: int = THUMB, seed: int = 0):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[:size, :size] - size / 2
        r = np.hypot(yy, xx)
        self._pool = np.stack([(np.clip(255 * np.exp(-r / rng.uniform(3, 12)), 0, 255)[..., None]
                                * rng.uniform(0.3, 1, 3)).astype(np.uint8) for _ in range(pool)])
        self.shape = (n, size, size, 3)

    def __getitem__(self, i):
        return self._pool[int(i) % len(self._pool)]


def h5_read_ms(n: int = 20_000, reads: int = 300) -> float:
    """Median ms to read one random thumbnail from a gzip-chunked HDF5 dataset (64 rows a chunk,
    as the stores write them), the cost of a cold cell in a real store."""
    import h5py

    pool = CycledThumbnails(1, pool=4096)._pool
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.h5")
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("thumbnails", (n, THUMB, THUMB, 3), np.uint8, chunks=(64, THUMB, THUMB, 3),
                                  compression="gzip")
            for a in range(0, n, 4096):
                b = min(n, a + 4096)
                ds[a:b] = pool[: b - a]
        with h5py.File(path, "r") as f:
            ds = f["thumbnails"]
            idx = np.random.default_rng(1).integers(0, n, reads)
            t = []
            for i in idx:
                t0 = time.perf_counter()
                np.asarray(ds[int(i)])
                t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e3


def new_view(app, xy, remove_layer: bool = False):
    from galexplorer.gui.scatter import ScatterView
    from galexplorer.gui.thumbs import ThumbnailCache

    view = ScatterView()
    if remove_layer:   # the map as it was before the mosaic: no such item in the scene
        view.getViewBox().removeItem(view.mosaic_item)
    view.resize(*SIZE)
    view.show()
    settle(app)
    view.thumbnails = ThumbnailCache(CycledThumbnails(len(xy)))
    return view


def first_paint(app, xy, remove_layer: bool) -> float:
    view = new_view(app, xy, remove_layer)
    t0 = time.perf_counter()
    view.set_points(xy)
    view.refresh()
    view.grab()
    t = time.perf_counter() - t0
    view.picker.wait()
    view.close()
    view.deleteLater()
    settle(app)
    return t


def frames(app, view, ops) -> np.ndarray:
    vb = view.getViewBox()
    view.reset_view()
    settle(app)
    out = []
    for op in ops:
        t0 = time.perf_counter()
        apply_op(vb, op)
        app.processEvents()      # the coalesced refresh (map, then the mosaic's cells)
        view.grab()
        out.append(time.perf_counter() - t0)
        if view.mosaic.enabled:  # the reads queued by this frame, outside the timed frame
            view.mosaic.finish_loading()
    return np.array(out)


def run(n: int, repeats: int, n_each: int, app) -> dict:
    from galexplorer.gui.mosaic import choose_cells_brute

    xy, _ = clustered(n)
    b = (float(xy[:, 0].min()), float(xy[:, 0].max()), float(xy[:, 1].min()), float(xy[:, 1].max()))
    dense = xy[np.random.default_rng(1).integers(0, n)].astype(np.float64)
    ops = operations(b, dense, n_each)
    r: dict = {"n": n}
    fp_on, fp_off = [], []
    for k in range(5):   # alternating, and which goes first too
        for remove in ((True, False) if k % 2 == 0 else (False, True)):
            (fp_off if remove else fp_on).append(first_paint(app, xy, remove_layer=remove))
    r["first_without"], r["first_with"] = float(np.median(fp_off)), float(np.median(fp_on))

    view = new_view(app, xy)
    view.set_points(xy)
    view.refresh()
    view.grab()
    view.picker.wait()
    # cold: the mosaic turned on, then the sequence with nothing cached
    view.set_mosaic(True)
    settle(app)
    cache = view.thumbnails
    cache.clear()
    vb = view.getViewBox()
    view.reset_view()
    settle(app)
    misses0 = cache.misses
    cold, t_start = [], time.perf_counter()
    for op in ops:
        t0 = time.perf_counter()
        apply_op(vb, op)
        app.processEvents()
        view.grab()
        cold.append(time.perf_counter() - t0)
    while view.mosaic.loading:
        app.processEvents()
    view.grab()
    r["cold_frames"], r["cold_total"] = np.array(cold), time.perf_counter() - t_start
    r["cold_reads"] = cache.misses - misses0
    # warm: the reference (mosaic off) and the mosaic, alternating, same sequence
    base, mosaic, parts, cells = [], [], [], []
    for _ in range(repeats):
        view.set_mosaic(False)
        base.append(frames(app, view, ops))
        view.set_mosaic(True)
        settle(app)
        view.mosaic.finish_loading()
        t = []
        vb = view.getViewBox()
        view.reset_view()
        settle(app)
        view.mosaic.finish_loading()
        for op in ops:
            t0 = time.perf_counter()
            apply_op(vb, op)
            app.processEvents()
            view.grab()
            t.append(time.perf_counter() - t0)
            parts.append(view.mosaic.last_redraw_ms)
            cells.append(len(view.mosaic.cells) if view.mosaic.cells is not None else 0)
            view.mosaic.finish_loading()
        mosaic.append(np.array(t))
    r["base"], r["mosaic"] = np.concatenate(base), np.concatenate(mosaic)
    r["phases"] = np.tile(np.repeat(np.arange(3), n_each), repeats)
    r["parts"], r["cells"] = np.array(parts), np.array(cells)
    # what the KD-tree replaces: the same choice by a pass over every point (full view)
    view.reset_view()
    settle(app)
    t0 = time.perf_counter()
    choose_cells_brute(xy[: min(n, 200_000)], view.view_rect(), view.mosaic.cells.side)
    r["brute_200k"] = time.perf_counter() - t0
    view.close()
    view.deleteLater()
    settle(app)
    return r


def report(r: dict, read_ms: float) -> list[str]:
    ms = 1e3
    mb, mm = np.median(r["base"]) * ms, np.median(r["mosaic"]) * ms
    return [
        f"N={r['n']:,}, view {SIZE[0]}x{SIZE[1]} px, {len(r['base'])} frames each (pans, zooms into a cluster, pans)",
        f"  redraw (view change -> frame)  map alone {mb:.1f} ms | map + mosaic {mm:.1f} ms "
        f"| ratio {mm / mb:.2f}x the map alone",
        "  by phase (map alone | map + mosaic, median ms): " + ", ".join(
            f"{name} {np.median(r['base'][r['phases'] == k]) * ms:.1f} | {np.median(r['mosaic'][r['phases'] == k]) * ms:.1f}"
            for k, name in enumerate(("pans, whole map", "zooms", "pans, zoomed in"))),
        f"  p90: map alone {np.percentile(r['base'], 90) * ms:.1f} ms | map + mosaic "
        f"{np.percentile(r['mosaic'], 90) * ms:.1f} ms",
        f"  the mosaic's part: cells + cached thumbnails {np.median(r['parts']):.2f} ms median "
        f"(max {r['parts'].max():.2f}), {int(np.median(r['cells']))} cells median",
        f"  brute-force choice over 200,000 points (full view) {r['brute_200k'] * ms:.0f} ms "
        f"| {r['brute_200k'] * ms / max(np.median(r['parts']), 1e-3):.0f}x the KD-tree's whole part at {r['n']:,}",
        f"  cold (nothing cached): frames median {np.median(r['cold_frames']) * ms:.1f} ms "
        f"(max {r['cold_frames'].max() * ms:.1f}); {r['cold_reads']} thumbnails read from memory, all on "
        f"screen {r['cold_total']:.2f} s after the first change",
        f"  a real store's cold read: {read_ms:.2f} ms a thumbnail (gzip HDF5, 64-row chunks) -> "
        f"~{read_ms * np.median(r['cells']):.0f} ms to fill a whole new view, in {20:.0f}-ms slices",
        f"  first paint: without the layer {r['first_without']:.3f} s | with it (off) {r['first_with']:.3f} s "
        f"| ratio {r['first_with'] / r['first_without']:.2f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^5 points, few operations (smoke test)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from galexplorer.gui.app import application

    app = application()
    n, n_each, repeats = (100_000, 3, 1) if args.quick else (1_000_000, 10, args.repeats)
    r = run(n, repeats, n_each, app)
    read_ms = h5_read_ms(4096 if args.quick else 20_000, 50 if args.quick else 300)
    for line in report(r, read_ms):
        print(line, flush=True)
    if n >= 1_000_000:
        mm = np.median(r["mosaic"]) * 1e3
        checks = [("redraw <= 50 ms", mm <= 50),
                  ("first paint unchanged (within 10%)", r["first_with"] <= 1.1 * r["first_without"])]
        print("targets at 10^6: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in checks))


if __name__ == "__main__":
    main()
