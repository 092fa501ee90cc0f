"""Hours of labelling, accelerated: the real window (offscreen) scored by key presses for a long
session, issue #27 item 4.

The script opens a store in the explorer's main window and presses the score keys on the
window (``QTest.keyClick``, as the GUI tests do) at a held key's repeat rate, following the
queue. The window requests a refit every ``--batch`` labels (in its model process; a request
made while one runs waits, only the latest). Every ``--sample`` labels it samples:

* the resident memory (RSS) of the window's process and of the model's process;
* the window's bounded caches: the thumbnail cache's bytes against its budget (read from the
  window's :class:`~galexplorer.gui.thumbs.ThumbnailCache`) and the session's history against
  ``HISTORY_KEPT``; beside them the bytes malloc hands out (``mallinfo2``) and those in
  Python's small-object arenas (``sys._debugmallocstats``), which malloc does not count;
* open file descriptors (``/proc/PID/fd``) and threads of both processes;
* the longest UI stall since the last sample: the longest gap between two ticks of a 10 ms
  timer in the UI thread, less the UI thread's run-queue wait in it (Linux ``schedstat``), as
  tests/test_gui_responsive.py measures it; the wall-clock gap beside it.

At the end: the journal must hold exactly ``--presses`` score events, every key press that
was acknowledged; file handles and threads after the last sample against the first; and, once
the window is closed, no model process left running. With ``--kill-every K`` the model process
is killed (SIGKILL) every K labels, to soak the restart path too.

Memory growth (goal <= 10%) is judged **after the warm-up**, and the warm-up is defined, not
guessed: it ends at the first sample at which every bounded cache of the window is full (the
thumbnail cache at its byte budget, :attr:`ThumbnailCache.full`; the session's history at
``HISTORY_KEPT`` objects). Until then the window is meant to grow: the cache's 16 MiB is a
designed working set that a session fills as it meets new objects (~1.2 thumbnails a label),
after ~3,500 labels with this store's 32-pixel thumbnails, ~900 with 64-pixel ones. Growth
before that point says how big the caches are, not whether anything leaks; growth after it is
what a leak would show. The script prints both ratios: to the first sample, and to the
warm-up sample (the one the goal is judged on), and names that sample. The model's process
has no such cache: it is judged against the first sample.

The default model is kNN label transfer, whose refit costs about the same at 10 labels and at
10^4: the soak is of the window, its model process and the journal over a thousand refits.
The window's default GP costs O(n³) in the labels (minutes a refit at 10^4 labels) and holds
n×n matrices, so its memory grows with the labels by design; ``--scorer gp-anomaly`` runs it,
at fewer presses.

usage: python benchmarks/bench_soak.py [--quick] [--n 100000] [--presses 10000] [--batch 10]
       [--sample 500] [--rate 30] [--scorer NAME] [--kill-every K] [--trace]
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


KEY_REPEAT_HZ = 30.0   # a held key on most desktops: the fastest a person scores
GROWTH_GOAL = 0.10     # memory growth after the warm-up


def proc_status(pid: int | str) -> dict[str, int]:
    """RSS (bytes), threads and open file descriptors of a process (Linux ``/proc``)."""
    out = {"rss": 0, "threads": 0, "fds": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("Threads:"):
                out["threads"] = int(line.split()[1])
        out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        pass
    return out


def fd_names() -> dict[str, str]:
    """This process's open file descriptors and what they point to."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    return out


def runqueue_wait() -> float:
    """Seconds the calling thread has waited for a core (Linux), or 0.0 where unknown."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as fh:
            return int(fh.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Ticks:
    """A 10 ms timer in the UI thread: the longest gap between two ticks since the last
    :meth:`take`, wall-clock and less the run-queue wait inside it (the stall)."""

    def __init__(self):
        from PySide6 import QtCore

        self.last: tuple[float, float] | None = None
        self.wall = self.stall = 0.0
        self.count = 0
        self.timer = QtCore.QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = (time.perf_counter(), runqueue_wait())
        self.count += 1
        if self.last is not None:
            gap = now[0] - self.last[0]
            self.wall = max(self.wall, gap)
            self.stall = max(self.stall, gap - (now[1] - self.last[1]))
        self.last = now

    def take(self) -> tuple[float, float]:
        out = (self.wall, self.stall)
        self.wall = self.stall = 0.0
        return out


@functools.cache
def _mallinfo2():
    """glibc's ``mallinfo2`` as a ctypes function, loaded once (a new ``CDLL`` at each sample
    left its ctypes classes in the window's process, what the trace measures), or None."""
    try:
        import ctypes
        import ctypes.util

        class Mallinfo2(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallinfo2.restype = Mallinfo2
        return libc.mallinfo2
    except (OSError, AttributeError):
        return None


def heap_in_use() -> int:
    """Bytes malloc has handed out and not had back (glibc ``mallinfo2``), or 0 where unknown:
    RSS growing while this stays flat is freed memory the allocator keeps, not live objects."""
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return 0
    m = mallinfo2()
    return int(m.uordblks + m.hblkhd)


def pymalloc_bytes() -> int:
    """Bytes in Python's small-object allocator's arenas now (CPython), or 0 where unknown:
    memory mapped by Python itself for objects up to 512 bytes, which ``mallinfo2`` does not
    count (``sys._debugmallocstats`` writes its figures to the C ``stderr``; it writes none while
    ``tracemalloc`` hooks the allocator, so ``--trace`` runs show "n/a")."""
    import re

    if not hasattr(sys, "_debugmallocstats"):
        return 0
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                sys._debugmallocstats()
            finally:
                os.dup2(saved, 2)
            tmp.seek(0)
            text = tmp.read().decode(errors="replace")
    finally:
        os.close(saved)
    m = re.search(r"^(\d+) arenas \* (\d+) bytes/arena", text, re.M)
    return int(m.group(1)) * int(m.group(2)) if m else 0


def mib(nbytes: int, unit: str = " MiB") -> str:
    """``nbytes`` in MiB, or "n/a" for 0 (unknown)."""
    return f"{nbytes / 2**20:.0f}{unit}" if nbytes else "n/a"


class Tracer:
    """``--trace``: what grew in the window's process between two samples: live Python objects
    by type, the Python allocations by line (``tracemalloc``: numpy arrays included), the
    thumbnail cache, and malloc's bytes in use against the RSS."""

    def __init__(self, window):
        import tracemalloc

        self.w = window
        tracemalloc.start(1)
        self.snap = tracemalloc.take_snapshot()
        self.types = self._types()

    @staticmethod
    def _types() -> Counter:
        return Counter(type(o).__name__ for o in gc.get_objects())

    def take(self) -> None:
        import tracemalloc

        snap, types = tracemalloc.take_snapshot(), self._types()
        grew = [(k, v) for k, v in (types - self.types).most_common(8)]
        print(f"    objects: {sum(types.values()):,} ({sum(types.values()) - sum(self.types.values()):+,}); "
              f"grew: {', '.join(f'{k} +{v}' for k, v in grew) or 'none'}")
        for st in snap.compare_to(self.snap, "lineno")[:6]:
            print(f"    {st.size_diff / 2**10:+8.0f} KiB {st.count_diff:+6d}  {st.traceback[0]}")
        from PySide6 import QtCore, QtWidgets

        scenes = {v.scene() for v in self.w.findChildren(QtWidgets.QGraphicsView) if v.scene() is not None}
        print(f"    Qt: {len(self.w.findChildren(QtCore.QObject)):,} QObjects under the window, "
              f"{sum(len(sc.items()) for sc in scenes):,} items in {len(scenes)} scenes")
        th = self.w.thumbs
        if th is not None:
            print(f"    thumbnails: {len(th._cache):,} pixmaps, {getattr(th, 'nbytes', 0) / 2**20:.1f} MiB; "
                  f"malloc in use {heap_in_use() / 2**20:.0f} MiB, "
                  f"traced {tracemalloc.get_traced_memory()[0] / 2**20:.0f} MiB",
                  flush=True)
        self.snap, self.types = snap, types


def make_store(folder: Path, n: int) -> Path:
    from gui_stores import build_store

    return build_store(folder / "soak.h5", n, thumbnails=True)


def soak(store: Path, args) -> dict:
    from PySide6 import QtCore, QtTest

    from galexplorer.active.session import HISTORY_KEPT
    from galexplorer.gui.app import application, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.modelproc import live_processes
    from galexplorer.gui.settings import Settings

    app = application()
    settings = Settings()
    settings.scorer, settings.batch_size = args.scorer, args.batch
    fds_before = proc_status("self")["fds"]
    fd_names_before = fd_names()
    threads_before = threading.active_count()
    w = MainWindow(settings, user="soak")
    w.resize(1400, 900)
    w.show()
    w.load(store)
    settle(w)
    ex = w.explorer
    assert ex.config.scorer == args.scorer and ex.batch_size == args.batch, (ex.config.scorer, ex.batch_size)
    acked = [0]
    fitted = [0]
    ex.scored.connect(lambda oid, s: acked.__setitem__(0, acked[0] + 1))
    ex.modelChanged.connect(lambda: fitted.__setitem__(0, fitted[0] + 1))
    keys = [getattr(QtCore.Qt.Key, f"Key_{s}") for s in range(6)]
    cluster = ex.score_array("cluster")
    ticks = Ticks()
    ticks.timer.start()
    gc.collect()
    gc.freeze()      # the start-up objects, as run_app does
    tracer = Tracer(w) if args.trace else None
    samples, missed, kills = [], 0, 0
    period = 1.0 / args.rate
    t0, cpu0 = time.perf_counter(), time.process_time()
    next_at = t0
    while acked[0] < args.presses:
        # pace the presses at the key-repeat rate, the event loop running meanwhile (at least
        # once between two presses: timers, refit results); a window slower than the keys
        # gets the next press at once, not a burst to catch up
        app.processEvents()
        while time.perf_counter() < next_at:
            time.sleep(0.001)
            app.processEvents()
        next_at = max(next_at + period, time.perf_counter())
        cur = ex.current
        if cur is None:
            missed += 1
            continue
        before = acked[0]
        QtTest.QTest.keyClick(w, keys[5 if cluster[cur] == 0 else int(cur) % 3])
        if acked[0] == before:
            missed += 1
            continue
        n = acked[0]
        if args.kill_every and n % args.kill_every == 0 and ex.model.pid is not None:
            os.kill(ex.model.pid, signal.SIGKILL)
            kills += 1
        if n % args.sample == 0:
            wall, stall = ticks.take()
            me, model = proc_status("self"), proc_status(ex.model.pid) if ex.model.pid else proc_status(0)
            samples.append({"labels": n, "s": time.perf_counter() - t0, "cpu": time.process_time(), "rss": me["rss"], "fds": me["fds"],
                            "threads": me["threads"], "heap": heap_in_use(), "py_threads": threading.active_count(),
                            "model_rss": model["rss"], "model_fds": model["fds"],
                            "model_threads": model["threads"], "refits": ex.refits.runs, "fits": fitted[0],
                            "wall": wall, "stall": stall, "pymalloc": pymalloc_bytes(),
                            "thumbs": w.thumbs.nbytes if w.thumbs is not None else 0,
                            "thumbs_max": w.thumbs.max_bytes if w.thumbs is not None else 0,
                            "thumbs_full": w.thumbs is None or w.thumbs.full,
                            "history": len(ex.session.history), "history_max": HISTORY_KEPT})
            s = samples[-1]
            s["caches_full"] = s["thumbs_full"] and s["history"] >= HISTORY_KEPT
            prev = samples[-2] if len(samples) > 1 else {"labels": 0, "cpu": cpu0}
            s["cpu_ms"] = 1e3 * (s["cpu"] - prev["cpu"]) / (n - prev["labels"])
            print(f"  {n:>6} labels {s['s']:>7.0f} s  window {s['rss'] / 2**20:>6.0f} MiB  model "
                  f"{s['model_rss'] / 2**20:>6.0f} MiB  window malloc {s['heap'] / 2**20:.0f} MiB pymalloc "
                  f"{mib(s['pymalloc'])} thumbnails {s['thumbs'] / 2**20:.1f}/{s['thumbs_max'] / 2**20:.0f} MiB"
                  f"{' (full)' if s['thumbs_full'] else ''}  fds {s['fds']}/{s['model_fds']}  threads "
                  f"{s['threads']}/{s['model_threads']}  refits {s['fits']}  stall {s['stall'] * 1e3:.0f} ms  "
                  f"window CPU {s['cpu_ms']:.0f} ms/label",
                  flush=True)
            if tracer is not None:
                tracer.take()
    took = time.perf_counter() - t0
    ex.wait_idle(600)
    ticks.timer.stop()
    gc.unfreeze()
    refits, fits, starts, failures = ex.refits.runs, fitted[0], ex.model.starts, ex.model.failures
    w.close()
    app.processEvents()
    deadline = time.monotonic() + 10
    while live_processes() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.05)
    left_procs = live_processes()
    del w, ex
    gc.collect()
    app.processEvents()
    from galexplorer.labels import LabelJournal

    with LabelJournal.for_store(store, readonly=True) as j:
        events = [e for e in j.events() if e.kind == "score"]
    return {"samples": samples, "took": took, "missed": missed, "kills": kills, "refits": refits, "fits": fits,
            "starts": starts, "failures": failures, "acked": acked[0], "events": len(events),
            "soak_events": sum(e.user == "soak" for e in events),
            "fds_before": fds_before, "fds_after": proc_status("self")["fds"],
            "fds_new": sorted((Counter(fd_names().values()) - Counter(fd_names_before.values())).elements()),
            "threads_before": threads_before, "threads_after": threading.active_count(),
            "left_procs": left_procs}


def report(r: dict, args) -> bool:
    s = r["samples"]
    print(f"\n{args.presses:,} key presses on {args.n:,} objects, {args.scorer}, a refit every {args.batch} "
          f"labels, {args.rate:g} presses/s asked, {args.presses / r['took']:.1f}/s done, {r['took']:.0f} s; "
          f"{r['fits']} refits landed ({r['refits']} run); {r['missed']} presses with no object on screen"
          + (f"; model process killed {r['kills']} times, started {r['starts']} times" if r["kills"] else ""))
    if not s:
        print("no samples")
        return False
    w0 = s[0]
    wi = next((k for k, x in enumerate(s) if x["caches_full"]), None)   # the warm-up sample
    ww = s[wi] if wi is not None else None
    print("\n| labels | time s | window RSS MiB | ratio to first | ratio to warm-up | thumbnail cache MiB | "
          "malloc MiB | pymalloc MiB | model RSS MiB | ratio | fds window/model | threads window/model | refits | "
          "longest stall ms (wall) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, x in enumerate(s):
        mr = x["model_rss"] / w0["model_rss"] if w0["model_rss"] else float("nan")
        rw = f"{x['rss'] / ww['rss']:.3f}" if ww is not None and k >= wi else "—"
        print(f"| {x['labels']:,}{' (warm-up: caches full)' if k == wi else ''} | {x['s']:.0f} | "
              f"{x['rss'] / 2**20:.0f} | {x['rss'] / w0['rss']:.3f} | {rw} | "
              f"{x['thumbs'] / 2**20:.1f}{' full' if x['thumbs_full'] else ''} | {x['heap'] / 2**20:.0f} | "
              f"{mib(x['pymalloc'], '')} | {x['model_rss'] / 2**20:.0f} | {mr:.3f} | {x['fds']}/{x['model_fds']} | "
              f"{x['threads']}/{x['model_threads']} | {x['fits']} | {x['stall'] * 1e3:.0f} ({x['wall'] * 1e3:.0f}) |")
    last = s[-1]
    grow_w = last["rss"] / w0["rss"] - 1
    peak_w = max(x["rss"] for x in s) / w0["rss"] - 1
    grow_m = last["model_rss"] / w0["model_rss"] - 1 if w0["model_rss"] else float("nan")
    peak_m = max(x["model_rss"] for x in s) / w0["model_rss"] - 1 if w0["model_rss"] else float("nan")
    mid = s[len(s) // 2]
    half_w = last["rss"] / mid["rss"] - 1
    half_m = last["model_rss"] / mid["model_rss"] - 1 if mid["model_rss"] else float("nan")
    stall = max(x["stall"] for x in s[1:] or s)
    wall = max(x["wall"] for x in s[1:] or s)
    first_stall = s[0]["stall"]
    model_ok = peak_m <= GROWTH_GOAL or args.kill_every
    print(f"\nratio to the first sample ({w0['labels']:,} labels): window RSS x{1 + grow_w:.3f} "
          f"(peak x{1 + peak_w:.3f}), model RSS x{1 + grow_m:.3f} (peak x{1 + peak_m:.3f})")
    if ww is None:
        print(f"warm-up: the window's bounded caches never filled in this run (thumbnail cache "
              f"{last['thumbs'] / 2**20:.1f} of {last['thumbs_max'] / 2**20:.0f} MiB, history {last['history']} of "
              f"{last['history_max']} at the end)")
        verdict = "not judged (no sample after the warm-up)"
    else:
        after_w = last["rss"] / ww["rss"] - 1
        peak_after = max(x["rss"] for x in s[wi:]) / ww["rss"] - 1
        print(f"warm-up: the window's bounded caches are full from sample {wi + 1} ({ww['labels']:,} labels: "
              f"thumbnail cache {ww['thumbs'] / 2**20:.1f} of {ww['thumbs_max'] / 2**20:.0f} MiB, history "
              f"{ww['history']} of {ww['history_max']} objects); after it the window's RSS x{1 + after_w:.3f} "
              f"(peak x{1 + peak_after:.3f}) against that sample, over {last['labels'] - ww['labels']:,} labels")
        verdict = f"{'met' if peak_after <= GROWTH_GOAL else 'NOT met'} (x{1 + peak_after:.3f} at its peak)"
    print(f"goal <= x{1 + GROWTH_GOAL:.2f} after the warm-up: window {verdict}; model "
          f"{'met' if model_ok else 'NOT met'} (x{1 + peak_m:.3f} against the first sample: it has no cache to fill)"
          + (" (a killed process restarts small: the model's figure is not a growth)" if args.kill_every else ""))
    print(f"second half ({mid['labels']:,} -> {last['labels']:,} labels): window RSS x{1 + half_w:.3f}, "
          f"model RSS x{1 + half_m:.3f} (a leak keeps growing here; a working set that settled does not)")
    print(f"longest UI stall after the warm-up: {stall * 1e3:.0f} ms less core wait, {wall * 1e3:.0f} ms wall-clock "
          f"(warm-up interval: {first_stall * 1e3:.0f} ms)")
    fd_growth = last["fds"] - w0["fds"]
    th_growth = last["threads"] - w0["threads"]
    mfd = last["model_fds"] - w0["model_fds"]
    print(f"file handles: window {w0['fds']} -> {last['fds']} ({fd_growth:+d}), model {w0['model_fds']} -> "
          f"{last['model_fds']} ({mfd:+d}); after closing {r['fds_before']} -> {r['fds_after']} "
          f"({r['fds_after'] - r['fds_before']:+d}) against before opening"
          + (f": {', '.join(r['fds_new'])}" if r["fds_new"] else ""))
    print(f"threads: window {w0['threads']} -> {last['threads']} ({th_growth:+d}) OS, Python "
          f"{w0['py_threads']} -> {last['py_threads']}; after closing {r['threads_before']} -> "
          f"{r['threads_after']} Python threads; model processes left running: {len(r['left_procs'])}")
    print(f"journal: {r['events']:,} score events ({r['soak_events']:,} by this labeller) for "
          f"{r['acked']:,} acknowledged presses: {'exact' if r['events'] == args.presses else 'WRONG'}")
    ok = (r["events"] == args.presses == r["acked"] and not r["left_procs"]
          and fd_growth <= 2 and r["fds_after"] - r["fds_before"] <= 2 and th_growth <= 2
          and r["threads_after"] <= r["threads_before"] and (args.kill_every or mfd <= 2))
    print("leaks: none" if ok else "LEAK OR LOSS: see above")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="500 presses on 10^4 objects, a sample every 50")
    ap.add_argument("--n", type=int, help="objects in the store (100,000; --quick: 10,000)")
    ap.add_argument("--presses", type=int, help="score key presses (10,000; --quick: 500)")
    ap.add_argument("--batch", type=int, default=10, help="labels between refits")
    ap.add_argument("--sample", type=int, help="labels between samples (500; --quick: 50)")
    ap.add_argument("--rate", type=float, default=KEY_REPEAT_HZ, help="key presses per second")
    ap.add_argument("--scorer", default="knn", help="the model (default knn; see the module's docstring)")
    ap.add_argument("--kill-every", type=int, default=0, help="kill -9 the model process every K labels")
    ap.add_argument("--trace", action="store_true",
                    help="print what grew in the window between samples (slow: tracemalloc)")
    args = ap.parse_args()
    for name, full, quick in (("n", 100_000, 10_000), ("presses", 10_000, 500), ("sample", 500, 50)):
        if getattr(args, name) is None:      # not given on the command line
            setattr(args, name, quick if args.quick else full)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        tmp = Path(tmp)
        os.environ["GALEXPLORER_SETTINGS_DIR"] = str(tmp / "settings")
        t = time.perf_counter()
        store = make_store(tmp, args.n)
        print(f"store of {args.n:,} objects built in {time.perf_counter() - t:.0f} s; pressing keys…", flush=True)
        r = soak(store, args)
    return 0 if report(r, args) else 1


if __name__ == "__main__":
    sys.exit(main())
