"""``embed --cluster local:2`` against one process, in the same run: wall time and peak memory of
the client and of the workers (issue #25).

Each mode runs in a fresh process (``--child``) that builds the store with
``galexplorer.ssl.embed.embed_with_encoder`` (ResNet-18, random weights, real XDF pixels; the
analysis stages with ``--projection pca`` so the encoder dominates) and reports its own peak RSS
and, for the cluster, each worker's (``client.run``). The ratio cluster/single is printed; on one
2-core machine shared with other jobs the cluster cannot be faster, the figure is its overhead.

Only ``embed`` runs on the cluster so far (``rank``/``export``/``simulate`` do not take --cluster yet).

    python benchmarks/bench_cluster.py --n 10000 20000     # sizes as arguments
    python benchmarks/bench_cluster.py --quick             # smoke test
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import write_cutouts, write_encoder  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(cutouts: str, run_dir: str, out: str, cluster: str | None, batch: int) -> None:
    """Build one store (single process, or on ``cluster``) and print JSON figures."""
    import torch

    from galexplorer.explore.pipeline import EmbedConfig
    from galexplorer.ssl.embed import embed_with_encoder

    torch.set_num_threads(1)            # the same one thread per process as each worker
    cfg = EmbedConfig(batch_size=batch, device="cpu", projection="pca", similarity_index="none")
    t0 = time.perf_counter()
    workers_mb: list[float] = []
    if cluster:
        from galexplorer.explore.cluster import connect, describe

        with connect(cluster, [cutouts, run_dir]) as client:
            cfg.cluster = describe(client)
            t0 = time.perf_counter()        # the cluster's start-up is reported apart
            embed_with_encoder(cutouts, run_dir, out, cfg, client=client)
            seconds = time.perf_counter() - t0
            workers_mb = sorted(client.run(_rss_mb).values())
    else:
        embed_with_encoder(cutouts, run_dir, out, cfg)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "client_mb": _rss_mb(), "workers_mb": workers_mb}))


def run_mode(cutouts: Path, run_dir: Path, out: Path, cluster: str | None, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(cutouts), str(run_dir), str(out), cluster or "", str(batch)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000], help="objects per run")
    ap.add_argument("--size", type=int, default=32, help="stamp side (and crop), px")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small sizes for the smoke test")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        c, r, o, cl, b = args.child
        child(c, r, o, cl or None, int(b))
        return
    sizes = [256] if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in sizes:
            cut, run = tmp / f"cut{n}.h5", tmp / f"run{n}"
            write_cutouts(cut, n, args.size)
            write_encoder(run, cut, args.size)
            one = run_mode(cut, run, tmp / "one.h5", None, args.batch)
            two = run_mode(cut, run, tmp / "two.h5", f"local:{args.workers}", args.batch)
            print(f"N={n} ({args.size} px, ResNet-18 on CPU): single {one['seconds']:.1f} s "
                  f"({n / one['seconds']:.0f} img/s), peak {one['client_mb']:.0f} MB | "
                  f"local:{args.workers} {two['seconds']:.1f} s ({n / two['seconds']:.0f} img/s), client peak "
                  f"{two['client_mb']:.0f} MB, workers {', '.join(f'{m:.0f}' for m in two['workers_mb'])} MB | "
                  f"time ratio cluster/single {two['seconds'] / one['seconds']:.2f}, client memory ratio "
                  f"{two['client_mb'] / one['client_mb']:.2f}")
            for f in (tmp / "one.h5", tmp / "two.h5"):
                f.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
