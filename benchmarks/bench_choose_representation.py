"""Does choosing the representation on the labels help the loop find the rare class? (issue #22 item 3)

For each domain (``xdf``, ``radio``, ``optical``) and seed: a cutouts file, the default encoder
trained on it (``TrainConfig()`` at the benchmark's CPU sizes, ``--epochs``), ``galexplorer embed``
(which writes the raw-pixel PCA and the morphology features beside the embedding), then
``galexplorer simulate``'s loop (default scorer, 200 labels in batches of 10, the ``oracle``
column: 5 for the rare class, 0-1 otherwise) once for each ``representation``:

* ``embedding`` (the loop before this issue), ``auto`` (chosen at each refit by cross-validated AP,
  the new default), and the fixed ``morphology``, ``pixels`` and ``combined``.

Printed per run: found@200 (rare objects among the 200 labelled), its ratio to random order,
recall@100 of the final ranking, the representation ``auto`` used at the end, and the median
refit time; then the mean over seeds with the ratio of each representation's found@200 to the
embedding's in the same run.

    python benchmarks/bench_choose_representation.py --quick          # ~2 min: radio, 1 seed, 600 objects
    python benchmarks/bench_choose_representation.py                  # 3 domains x 3 seeds, 2000 objects
    python benchmarks/bench_choose_representation.py --domains radio radio-crowded --representations auto pixels
                                            # a domain clean and crowded (field sources added), same objects
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_representation import COMMON  # noqa: E402

REPRESENTATIONS = ("embedding", "auto", "morphology", "pixels", "combined")


def write_domain(domain: str, n: int, seed: int, path: Path) -> int:
    """Write the domain's cutouts with an ``oracle`` column; return the number of rare objects."""
    from galexplorer.data.domains import DomainSet, make_domain, write_domain_cutouts

    if domain == "xdf":
        from galexplorer.data.inject import xdf_benchmark_set

        b = xdf_benchmark_set(seed=seed, size=40, per_class=max(2, n // 100), morphology=False)
        rare = np.asarray(b.rare, bool)
        dom = DomainSet(name="xdf", stamps=b.stamps, ids=[f"x{i}" for i in range(len(rare))],
                        labels=rare.astype(np.int64), class_names=("common", "rare"),
                        oracle=np.where(rare, 5, 0).astype(np.int64), bands=["b0", "b1", "b2"])
    else:
        dom = make_domain(domain, n, seed=seed, size=40)
    write_domain_cutouts(path, dom)
    return int(dom.rare.sum())


def compare(store: Path, representations, seed: int, budget: int) -> tuple[int, dict[str, dict]]:
    """Run ``simulate``'s default loop on ``store`` once per representation; return the number
    of objects and, per representation, found@budget, its ratio to random order, recall@100, the
    representation the last refit used and the median refit time."""
    from galexplorer.active.loop import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    out = {}
    with EmbeddingStore(store) as s:
        n = s.n
        budget = min(budget, n)
        for rep in representations:
            cfg = SimulateConfig(truth="oracle", budget=budget, batch=10, seeds=20, remaining=False,
                                 loop=LoopConfig(seed=seed, representation=rep))
            r = simulate(s, cfg)
            found = int(r.history[-1][1])
            rand = float(r.random.curve[budget - 1])
            out[rep] = {"found": found, "x_random": found / max(rand, 1e-9), "recall100": r.loop.recall[100],
                        "used": r.result.representation, "refit_s": float(np.median(r.refit_seconds))}
    return n, out


def print_runs(domain: str, seed: int, budget: int, out: dict[str, dict]) -> None:
    for rep, m in out.items():
        vs = f"   found/embedding {m['found'] / max(out['embedding']['found'], 1):.2f}" if "embedding" in out else ""
        print(f"  {domain:8s} s{seed} {rep:10s} found@{budget} {m['found']:3d} ({m['x_random']:.1f}x random)  "
              f"recall@100 {m['recall100']:.3f}  ended on {m['used']:10s}  refit {m['refit_s']:.2f} s" + vs,
              flush=True)


def print_means(results: dict[tuple[str, str], list[dict]], against: tuple[str, ...] = ("embedding",)) -> None:
    """Mean over seeds per domain and representation, with the ratio of its found to that of each
    representation in ``against`` (same runs)."""
    print(f"\nmean over seeds (ratio of found to {' / '.join(f'the {a}' for a in against)}'s, same runs):")
    for (domain, rep), runs in results.items():
        f = np.mean([r["found"] for r in runs])
        ratios = " ".join(f"{f / max(np.mean([r['found'] for r in results[(domain, a)]]), 1e-9):.2f}"
                          for a in against if (domain, a) in results)
        print(f"  {domain:8s} {rep:10s} found {f:6.1f} ({ratios})  "
              f"x random {np.mean([r['x_random'] for r in runs]):.1f}  "
              f"recall@100 {np.mean([r['recall100'] for r in runs]):.3f}  "
              f"refit {np.median([r['refit_s'] for r in runs]):.2f} s  "
              f"ended on {', '.join(sorted({r['used'] for r in runs}))}")


def print_crowding(results: dict[tuple[str, str], list[dict]]) -> None:
    """For each domain run both clean and crowded (``NAME`` and ``NAME-crowded``, the same objects
    with unrelated field sources added), per representation: found@budget and recall@100 crowded
    against clean, mean over seeds, and their ratio (same run)."""
    pairs = sorted({(d, r) for d, r in results if f"{d}-crowded" in {k for k, _ in results}
                    and (f"{d}-crowded", r) in results})
    if not pairs:
        return
    print("\ncrowded against clean (the same objects, field sources added), mean over seeds:")
    for d, rep in pairs:
        clean, crowded = results[(d, rep)], results[(f"{d}-crowded", rep)]
        fc, fx = np.mean([r["found"] for r in clean]), np.mean([r["found"] for r in crowded])
        rc, rx = np.mean([r["recall100"] for r in clean]), np.mean([r["recall100"] for r in crowded])
        print(f"  {d:8s} {rep:10s} found {fc:5.1f} -> {fx:5.1f} ({fx / max(fc, 1e-9):.2f}x)   "
              f"recall@100 {rc:.3f} -> {rx:.3f}   [crowded per seed: found {' '.join(str(r['found']) for r in crowded)}]")


def run(domain: str, seed: int, args, work: Path) -> dict[str, dict]:
    from galexplorer.cli import main as cli
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import train

    cut, run_dir, store = work / f"{domain}-{seed}.h5", work / f"run-{domain}-{seed}", work / f"s-{domain}-{seed}.h5"
    n_rare = write_domain(domain, args.n, seed, cut)
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        train(cut, run_dir, TrainConfig.from_dict({**COMMON, "seed": seed, "epochs": args.epochs}))
        t_train = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert cli(["embed", str(cut), "--run", str(run_dir), "-o", str(store), "--device", "cpu",
                    "--seed", str(seed)]) == 0
    t_embed = time.perf_counter() - t0
    n, out = compare(store, args.representations, seed, args.budget)
    print(f"{domain} seed {seed}: {n} objects, {n_rare} rare; train {t_train:.0f} s, embed {t_embed:.0f} s", flush=True)
    print_runs(domain, seed, min(args.budget, n), out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["xdf", "radio", "optical"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain (xdf: all its stamps)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--representations", nargs="+", default=list(REPRESENTATIONS), choices=REPRESENTATIONS)
    ap.add_argument("--quick", action="store_true", help="radio, 1 seed, 600 objects, 2 epochs")
    args = ap.parse_args()
    import logging

    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if "embedding" not in args.representations:
        args.representations = ["embedding", *args.representations]
    if args.quick:
        args.domains, args.seeds, args.n, args.epochs = ["radio"], [0], 600, 2
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            for seed in args.seeds:
                for rep, m in run(domain, seed, args, Path(tmp)).items():
                    results.setdefault((domain, rep), []).append(m)
    print_means(results)
    print_crowding(results)


if __name__ == "__main__":
    main()
