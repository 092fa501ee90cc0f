"""What does `refine` gain on a store of your own embeddings, where it refines a small head? (issue #22 item 2)

A store of "your own embeddings" is built with ``galexplorer embed CUTOUTS --embeddings FILE
--features none`` (so the loop learns on those features only), and once more with
``--pca-standardise`` (each feature scaled to unit variance before the PCA: what the head's start
does, without labels), from:

* ``radio``, ``optical``: the morphology features (55 numbers per object, mixed units) of the
  seeded benchmark domains of ``bench_choose_representation.py``, written to a ``.npy`` file;
* ``planted``: 32-d features whose rare class hides in directions of small variance
  (``tests/active_synthetic.planted_quiet``), the case the head is for.

For each store: ``simulate`` (200 labels in batches of 10, the ``oracle`` column, the loop on the
embedding) without refine and with ``--refine-every 50`` (a head refined on the labels so far and
the store rebuilt), in the same run. Printed: found@200, its ratio to random order, recall@100 of
the final ranking, each run's ratio to its reference (the same store without refine; the
standardised store against the plain one), and the seconds of each refine (head training + store
rebuild, the map included). Then the head training alone at 10^5 objects (``--timing``).

    python benchmarks/bench_refine_head.py --quick        # radio, 1 seed, 1000 objects
    python benchmarks/bench_refine_head.py                # 3 sets x 1 seed, 2000 objects, + timing
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from active_synthetic import planted_quiet  # noqa: E402
from bench_choose_representation import write_domain  # noqa: E402
from bench_refine import simulate_refining  # noqa: E402


def own_store(kind: str, n: int, seed: int, work: Path) -> tuple[Path, Path, int]:
    """A store of own embeddings with an ``oracle`` column (5 rare, 0-1 otherwise), the same built
    with ``--pca-standardise``, and the rare count."""
    from galexplorer.cli import main as cli
    from galexplorer.explore.featuresets import compute_feature_sets
    from galexplorer.store import CutoutStore, CutoutWriter

    cut, feats, store = work / f"{kind}-{seed}.h5", work / f"{kind}-{seed}.npy", work / f"own-{kind}-{seed}.h5"
    if kind == "planted":
        x, rare = planted_quiet(n, seed=seed)
        stamps = np.zeros((n, 1, 8, 8), np.float32)
        with CutoutWriter(cut, bands=["b"], size=8, thumb_size=8) as w:
            w.add(stamps, [f"p{i}" for i in range(n)], columns={"oracle": np.where(rare, 5, 0).astype(np.int64)},
                  thumbnails=np.zeros((n, 8, 8, 3), np.uint8))
        n_rare = int(rare.sum())
    else:
        n_rare = write_domain(kind, n, seed, cut)
        with CutoutStore(cut) as c:
            x = compute_feature_sets(c, np.arange(c.n), ("morphology",), seed)["morphology"][0]
    np.save(feats, np.asarray(x, np.float32))
    std = store.with_name(store.stem + "-std.h5")
    with contextlib.redirect_stdout(io.StringIO()):
        for out, extra in ((store, []), (std, ["--pca-standardise"])):
            assert cli(["-q", "embed", str(cut), "--embeddings", str(feats), "-o", str(out), "--features", "none",
                        "--seed", str(seed), *extra]) == 0
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    return store, std, n_rare


def run(kind: str, seed: int, args, work: Path) -> dict[str, dict]:
    from galexplorer.store import EmbeddingStore

    store, std, n_rare = own_store(kind, args.n, seed, work)
    out = {}
    every = args.every
    runs = [("no refine", store, 0, "no refine"), (f"refine every {every}", store, every, "no refine"),
            ("standardised", std, 0, "no refine"),
            (f"standardised, refine every {every}", std, every, "standardised")]
    for name, path, every, base in runs:
        with EmbeddingStore(path) as s:
            budget = min(args.budget, s.n)
            dim = s.embeddings.shape[1]
            out[name] = {**simulate_refining(s, seed, "embedding", every, work / f"refines-{kind}-{seed}", budget),
                         "base": base}
    print(f"{kind} seed {seed}: {args.n} objects, {n_rare} rare, {dim}-d own embeddings", flush=True)
    for name, m in out.items():
        base = out[m["base"]]
        rf = ", ".join(f"{k}: {t:.1f} s" for k, t in m["refines"]) or "-"
        print(f"  {kind:8s} s{seed} {name:35s} found@{budget} {m['found']:3d} ({m['x_random']:.1f}x random, "
              f"{m['found'] / max(base['found'], 1):.2f}x {m['base']})  recall@100 {m['recall100']:.3f} "
              f"({m['recall100'] / max(base['recall100'], 1e-9):.2f}x)  refines [{rf}]"
              + (f"  ({m['kind']})" if m["kind"] else ""), flush=True)
    return out


def timing(n: int, dims: list[int]) -> None:
    """Seconds of the head training alone on n objects (200 labels, 15 finds)."""
    from galexplorer.ssl.refine_head import HeadRefineConfig, refine_head

    rng = np.random.default_rng(0)
    for d in dims:
        x = rng.standard_normal((n, d)).astype(np.float32)
        rows = np.sort(rng.choice(n, 200, replace=False))
        labels = np.where(np.arange(200) < 15, 5.0, 0.0)
        x[rows[:15], :4] += 1.0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            rep = refine_head(x, rows, labels, Path(tmp) / "h", HeadRefineConfig(device="cpu"))
            t = time.perf_counter() - t0
        print(f"head refine alone: {n} objects x {d}-d, 200 labels: {t:.1f} s ({rep.epochs_run} epochs, "
              f"{rep.n_unlabelled} unlabelled in the pool)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["planted", "radio", "optical"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--timing", type=int, default=100_000, metavar="N", help="objects for the timing (0: skip)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if args.quick:
        args.sets, args.seeds, args.n, args.timing = ["radio"], [0], 1000, 0
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.sets:
            for seed in args.seeds:
                out = run(kind, seed, args, Path(tmp))
                ratios += [(kind, seed, name, m["found"] / max(out[m["base"]]["found"], 1))
                           for name, m in out.items() if name != m["base"] and "refine" in name]
    print("ratio of found@budget with the head refine to the same run without it: "
          + ", ".join(f"{k} s{s} {n.split(',')[0]} {r:.2f}" for k, s, n, r in ratios), flush=True)
    if args.timing:
        timing(args.timing, [32, 512])


if __name__ == "__main__":
    main()
