"""Embedding extraction: throughput against a bare forward pass, and peak memory against N.

1. Throughput: ``galexplorer.ssl.embed.encode_rows`` - read stamps from the cutouts HDF5 file
   (next batch read in a background thread), normalise, centre-crop, ResNet-18 forward, write
   the (N, 512) float32 HDF5 dataset - against a bare forward pass of the same model over the
   same stamps already cropped, normalised and held in memory, in the same run (target: >= 90%
   of the bare forward's images/s).
2. Memory: peak resident memory of a fresh process that embeds a cutouts file of N1 and of N2
   stamps (default 10^4 and 10^5) with ``encode_rows``; flat in N means the two peaks are close
   while the image data grows 10x.

Pixels are real: stamps cut from the Hubble XDF image in scikit-image (3 bands).

Run under the bench lock:  flock /tmp/galexplorer-bench.lock python benchmarks/bench_embed.py
``--quick`` runs small sizes for the smoke test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_cutouts(path: Path, n: int, size: int, seed: int = 0, chunk: int = 4096) -> None:
    """A cutouts file of n XDF stamps (random positions; thumbnails left blank to save time)."""
    from galexplorer.data.xdf import BANDS, xdf_image
    from galexplorer.store import CutoutWriter

    img = np.moveaxis(xdf_image(), -1, 0)                          # (3, H, W)
    rng = np.random.default_rng(seed)
    _, h, w = img.shape
    with CutoutWriter(path, bands=BANDS, size=size, thumb_size=8, chunk_objects=64) as wr:
        for a in range(0, n, chunk):
            m = min(chunk, n - a)
            ys, xs = rng.integers(0, h - size, m), rng.integers(0, w - size, m)
            stamps = np.stack([img[:, y:y + size, x:x + size] for y, x in zip(ys, xs)])
            wr.add(stamps, [f"X{a + i:07d}" for i in range(m)], thumbnails=np.zeros((m, 8, 8, 3), np.uint8))


def write_encoder(run_dir: Path, cutouts: Path, image_size: int) -> None:
    """A randomly initialised ResNet-18 saved as a run's encoder (throughput does not depend on weights)."""
    import torch

    from galexplorer.ssl.backbones import build_backbone
    from galexplorer.ssl.checkpoint import save_encoder
    from galexplorer.ssl.normalize import compute_band_stats
    from galexplorer.store import CutoutStore

    torch.manual_seed(0)
    with CutoutStore(cutouts) as cut:
        stats = compute_band_stats(cut, 500)
        run_dir.mkdir(parents=True, exist_ok=True)
        backbone = build_backbone("resnet18", len(cut.bands), "standard")
        save_encoder(run_dir, backbone, {"bands": cut.bands, "method": "byol", "image_size": image_size,
                                         "stamp_size": cut.size, "normalization": stats.to_dict(), "config": {}})


def throughput(cutouts: Path, run_dir: Path, batch: int, repeats: int) -> dict[str, float]:
    """Images/s of encode_rows from HDF5 and of the bare forward, best of ``repeats`` alternated
    runs, by wall clock and by process CPU time (the machine is shared: CPU time is the
    load-independent check)."""
    import h5py
    import torch

    from galexplorer.ssl.embed import encode_rows, load_encoder
    from galexplorer.store import CutoutStore

    enc, _ = load_encoder(run_dir, "cpu")
    best = {"ours": 0.0, "bare": 0.0, "ours_cpu": 0.0, "bare_cpu": 0.0}

    def record(key: str, t_wall: float, t_cpu: float, n: int) -> None:
        best[key] = max(best[key], n / t_wall)
        best[key + "_cpu"] = max(best[key + "_cpu"], n / t_cpu)

    with CutoutStore(cutouts) as cut:
        n = cut.n
        with torch.inference_mode():
            ready = [enc.preprocess(torch.from_numpy(x)).contiguous() for _, x in cut.iter_batches(batch)]
            # warm-up: the first passes over a fresh model run several times slower here, so
            # both paths first go over (up to) 1024 stamps untimed
            warm = max(1, min(len(ready), 1024 // batch))
            for x in ready[:warm] + ready[-1:]:
                enc.backbone(x)
        m = min(n, warm * batch)
        encode_rows(enc, cut, 0, m, np.empty((m, enc.dim), np.float32), batch_size=batch)
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.inference_mode():
                for x in ready:
                    enc.backbone(x).float().numpy()
            record("bare", time.perf_counter() - t0, time.process_time() - c0, n)
            with tempfile.TemporaryDirectory() as tmp, h5py.File(Path(tmp) / "e.h5", "w") as f:
                d = f.create_dataset("embeddings", (n, enc.dim), np.float32, chunks=(min(n, 1024), enc.dim))
                t0, c0 = time.perf_counter(), time.process_time()
                encode_rows(enc, cut, 0, n, d, batch_size=batch)
                record("ours", time.perf_counter() - t0, time.process_time() - c0, n)
    return best


def child(cutouts: str, run_dir: str, batch: int) -> None:
    """Embed a whole file in this (fresh) process and print its peak RSS."""
    import h5py

    from galexplorer.ssl.embed import encode_rows, load_encoder
    from galexplorer.store import CutoutStore

    enc, _ = load_encoder(run_dir, "cpu")
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with CutoutStore(cutouts) as cut, tempfile.TemporaryDirectory() as tmp, h5py.File(Path(tmp) / "e.h5", "w") as f:
        d = f.create_dataset("embeddings", (cut.n, enc.dim), np.float32, chunks=(min(cut.n, 1024), enc.dim))
        encode_rows(enc, cut, 0, cut.n, d, batch_size=batch)
        n = cut.n
    print(json.dumps({"n": n, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "after_load_mb": base / 1024, "seconds": time.perf_counter() - t0}))


def peak_memory(tmp: Path, sizes: list[int], size: int, batch: int, parallel: bool) -> list[dict]:
    """Peak RSS of a fresh process embedding a file of each N in ``sizes``."""
    cuts = []
    for n in sizes:
        cuts.append(tmp / f"mem-{n}.h5")
        write_cutouts(cuts[-1], n, size)
    run = tmp / f"run-mem-{size}"
    write_encoder(run, cuts[0], size)
    cmds = [[sys.executable, __file__, "--child", str(c), str(run), str(batch)] for c in cuts]
    if parallel:    # small runs (--quick): side by side, to keep the smoke test short
        procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in cmds]
        outs = [(p.communicate(), p.returncode) for p in procs]
    else:
        outs = []
        for c in cmds:
            r = subprocess.run(c, capture_output=True, text=True)
            outs.append(((r.stdout, r.stderr), r.returncode))
    for c in cuts:
        c.unlink()
    results = []
    for (stdout, stderr), code in outs:
        if code:
            raise SystemExit(f"the memory run failed:\n{stderr[-2000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096, help="stamps for the throughput comparison")
    ap.add_argument("--size", type=int, default=64, help="stamp side (and crop) for the throughput, px")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--mem-n", type=int, nargs=2, default=[10_000, 100_000], metavar=("N1", "N2"))
    ap.add_argument("--mem-size", type=int, default=32, help="stamp side for the memory runs, px")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    ap.add_argument("--quick", action="store_true", help="small sizes for the smoke test")
    ap.add_argument("--child", nargs=3, metavar=("CUTOUTS", "RUN", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    if args.quick:
        args.n, args.size, args.batch, args.mem_n, args.mem_size = 128, 32, 64, [64, 256], 16

    import torch

    from galexplorer.ssl.runtime import retain_freed_memory

    retain_freed_memory()   # as galexplorer embed does; the bare forward runs in the same process
    with tempfile.TemporaryDirectory(prefix="gx-bench-embed-") as tmp_name:
        tmp = Path(tmp_name)
        cut = tmp / "cut.h5"
        write_cutouts(cut, args.n, args.size)
        write_encoder(tmp / "run", cut, args.size)
        r = throughput(cut, tmp / "run", args.batch, repeats=1 if args.quick else 3)
        ratio, ratio_cpu = r["ours"] / r["bare"], r["ours_cpu"] / r["bare_cpu"]
        print(f"CPU, {torch.get_num_threads()} threads; ResNet-18 (standard stem), 3 bands, {args.size}-px stamps, "
              f"batch {args.batch}, N={args.n}, best of {1 if args.quick else 3} alternated run(s)")
        print(f"  embedding from HDF5 (read, normalise, crop, forward, write): {r['ours']:8.1f} images/s "
              f"({r['ours_cpu']:.1f} per CPU-second)")
        print(f"  bare forward of the same model on ready tensors:              {r['bare']:8.1f} images/s "
              f"({r['bare_cpu']:.1f} per CPU-second)")
        print(f"  -> {ratio:.1%} of the bare forward by wall clock, {ratio_cpu:.1%} by CPU time "
              f"(target >= 90%: {'ok' if min(ratio, ratio_cpu) >= 0.9 else 'BELOW TARGET'})")
        if args.no_memory:
            return
        n1, n2 = args.mem_n
        r1, r2 = peak_memory(tmp, [n1, n2], args.mem_size, args.batch, parallel=args.quick)
        data = lambda n: n * 3 * args.mem_size ** 2 * 4 / 2 ** 20  # noqa: E731
        for n, r in ((n1, r1), (n2, r2)):
            print(f"  peak memory, N={n:>9,} {args.mem_size}-px stamps ({data(n):6.0f} MB of images): "
                  f"{r['peak_mb']:.0f} MB, of which {r['peak_mb'] - r['after_load_mb']:.0f} MB above the loaded "
                  f"model and libraries ({r['seconds']:.0f} s)")
        grow = r2["peak_mb"] / r1["peak_mb"]
        print(f"  -> peak grows {grow:.2f}x while the data grows {n2 / n1:.0f}x "
              f"({'flat in N' if grow < 1.2 else 'NOT flat'})")


if __name__ == "__main__":
    main()
