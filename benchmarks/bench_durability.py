"""What durability costs: fsync in the one rename-into-place helper, and the journal's checkpoints.

1. ``store.atomic.rename_into_place`` (fsync the file, rename, fsync the folder) against the
   reference ``os.replace`` alone (what the four writers did before), for a 1 MB file (a
   ranking sidecar, an export) and a 45 MB file (a ResNet-18 checkpoint), written fresh each
   run; median of the runs.
2. ``LabelJournal.score`` (one committed event, WAL, synchronous=FULL): median latency over
   the labels of a session, and the time of ``checkpoint()`` (wal_checkpoint(TRUNCATE)) after
   a refit batch of 10 labels, against the median label itself.

usage: python benchmarks/bench_durability.py [--runs 7] [--labels 200] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def bench_rename(folder: Path, size: int, runs: int) -> tuple[float, float]:
    from galexplorer.store.atomic import rename_into_place, temporary_sibling

    data = np.random.default_rng(0).bytes(size)
    final = folder / f"out-{size}.bin"
    durable, plain = [], []
    for _ in range(runs):
        for fn, times in ((rename_into_place, durable), (os.replace, plain)):
            tmp = temporary_sibling(final)
            _write(tmp, data)
            t = time.perf_counter()
            fn(tmp, final)
            times.append(time.perf_counter() - t)
    return statistics.median(durable), statistics.median(plain)


def bench_journal(folder: Path, n: int) -> tuple[float, float, float]:
    from galexplorer.labels import LabelJournal

    j = LabelJournal(folder / "s.h5.labels.sqlite", user="bench")
    lat, ckpt = [], []
    for i in range(n):
        t = time.perf_counter()
        j.score(f"obj{i}", i % 6)
        lat.append(time.perf_counter() - t)
        if (i + 1) % 10 == 0:      # a refit batch
            t = time.perf_counter()
            j.checkpoint()
            ckpt.append(time.perf_counter() - t)
    j.close()
    return statistics.median(lat), statistics.median(ckpt), float(np.percentile(lat, 95))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--labels", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="small sizes (the smoke test)")
    args = ap.parse_args(argv)
    runs, labels = (3, 30) if args.quick else (args.runs, args.labels)
    sizes = (1 << 20,) if args.quick else (1 << 20, 45 << 20)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR") or None) as tmp:
        folder = Path(tmp)
        print(f"folder {folder} (file system of {'BENCH_DIR' if os.environ.get('BENCH_DIR') else 'the temp dir'}); "
              f"median of {runs} runs")
        print(f"{'file':>10} {'rename_into_place':>18} {'os.replace':>11} {'ratio':>7}")
        for size in sizes:
            d, p = bench_rename(folder, size, runs)
            print(f"{size / 2**20:>8.0f}MB {d * 1e3:>15.2f} ms {p * 1e3:>8.3f} ms {d / p:>6.0f}x")
        lat, ck, p95 = bench_journal(folder, labels)
        print(f"journal: {labels} labels, median score() {lat * 1e3:.2f} ms (95th percentile {p95 * 1e3:.2f} ms); "
              f"checkpoint() after each 10 labels {ck * 1e3:.2f} ms = {ck / lat:.1f}x one label (ratio)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
