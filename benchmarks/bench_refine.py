"""What does `refine` cost and gain? (issue #22 item 2)

For each domain and seed: the default encoder trained on it (``--epochs``), ``galexplorer embed``,
then ``simulate`` (200 labels in batches of 10, the ``oracle`` column) for each representation
(``auto``, the default, and ``embedding``, which shows what refining does to the embedding itself)
twice: without refine and with ``--refine-every`` (the encoder fine-tuned on the labels so far and the
cutouts embedded again, as ``galexplorer refine`` does). Printed per run: found@200, its ratio to
random order, recall@100 of the final ranking, the seconds of each refine (fine-tune + re-embed
of every object) and of the refit that follows, and the ratio of found@200 with refine to
without (same representation, same run). A refine point reached before the first find waits
for the next batch.

With ``--before-arcs`` the loop without refine also runs on a copy of the same store whose morphology
feature set holds only the columns before the residual-arc numbers (``galexplorer.data.morphfeatures``,
added 2026-12-07): the same encoder and embedding, so the ratio new / before-arcs is the arc
numbers' effect on the loop, measured in the same run. (Not with refine: each refine embeds the
cutouts again with today's morphology, arc numbers included.) ``--no-mask`` does the same with a copy
whose morphology is measured again without masking the unrelated sources in the stamp
(``morphfeatures.target_mask``, added the same evening); the domains ``radio-crowded``,
``optical-crowded`` and ``lens-crowded`` are the clean ones with field sources added.

    python benchmarks/bench_refine.py --quick        # radio, 1 seed, 600 objects, refine every 100, auto only
    python benchmarks/bench_refine.py                # 4 domains x 1 seed, 2000 objects, every 50
    python benchmarks/bench_refine.py --seeds 0 1 2 --representations auto   # the acceptance run, ~45 min
    python benchmarks/bench_refine.py --seeds 0 1 2 --representations auto --before-arcs   # ~55 min
    python benchmarks/bench_refine.py --domains radio radio-crowded --seeds 0 --representations auto --every 0 --no-mask
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_choose_representation import write_domain  # noqa: E402
from bench_representation import COMMON  # noqa: E402


def simulate_refining(store, seed: int, representation: str, every: int, refines_dir: Path, budget: int) -> dict:
    """``simulate`` on the open ``store`` (``budget`` labels in batches of 10, the ``oracle`` column,
    20 random orders, the loop on ``representation``), refining every ``every`` labels (0: never)
    with ``store_refiner(refines_dir)``. Returns found@budget, its ratio to random order,
    recall@100, each refine's (labels, seconds), the seconds of the refit after each, the
    refine's kind (None without refine) and the run's seconds."""
    from galexplorer.active.loop import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.refining import store_refiner
    from galexplorer.ssl.refine import RefineConfig

    cfg = SimulateConfig(truth="oracle", budget=budget, batch=10, seeds=20, refine_every=every,
                         loop=LoopConfig(seed=seed, representation=representation))
    t0 = time.perf_counter()
    refiner = store_refiner(refines_dir, RefineConfig(seed=seed), device="cpu") if every else None
    r = simulate(store, cfg, refine=refiner)
    found = int(r.history[-1][1])
    return {"found": found, "x_random": found / max(float(r.random.curve[budget - 1]), 1e-9),
            "recall100": r.loop.recall[100], "refines": r.refines, "seconds": time.perf_counter() - t0,
            "refit_after": [r.refit_seconds[k // cfg.batch] for k, _ in r.refines
                            if k // cfg.batch < len(r.refit_seconds)],
            "kind": refiner.kind if refiner else None}


def before_arcs_copy(store: Path, out: Path) -> Path:
    """A copy of the embedding store ``store`` whose ``features/morphology`` keeps only the columns
    before the residual-arc numbers (the vector before 2026-12-07)."""
    import shutil

    import h5py

    from galexplorer.data.morphfeatures import ARC_NAMES

    shutil.copyfile(store, out)
    with h5py.File(out, "r+") as f:
        ds = f["features/morphology"]
        names = [str(c) for c in ds.attrs["columns"].astype(str)]
        keep = [i for i, c in enumerate(names) if c not in ARC_NAMES]
        data, attrs = ds[:, keep], dict(ds.attrs)
        del f["features/morphology"]
        new = f["features"].create_dataset("morphology", data=data)
        for k, v in attrs.items():
            new.attrs[k] = v
        new.attrs["columns"] = [names[i] for i in keep]
    return out


def no_mask_copy(store: Path, cutouts: Path, out: Path) -> Path:
    """A copy of the embedding store ``store`` whose ``features/morphology`` is measured again on
    the ``cutouts`` without masking the unrelated sources (``morphfeatures.target_mask``, added
    2026-12-07): the vector before that change, same columns."""
    import shutil
    from unittest import mock

    import h5py

    from galexplorer.data import morphfeatures
    from galexplorer.store import CutoutStore

    shutil.copyfile(store, out)
    cut = CutoutStore(cutouts)
    with mock.patch.object(morphfeatures, "target_mask", lambda *a, **k: None):
        morph = morphfeatures.morphology_features(cut.read(np.arange(cut.n)))
    with h5py.File(out, "r+") as f:
        ds = f["features/morphology"]
        assert ds.shape == morph.shape, (ds.shape, morph.shape)
        ds[...] = morph
    return out


def run(domain: str, seed: int, args, work: Path) -> dict[str, dict]:
    from galexplorer.cli import main as cli
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import train
    from galexplorer.store import EmbeddingStore

    cut, run_dir, store = work / f"{domain}-{seed}.h5", work / f"run-{domain}-{seed}", work / f"s-{domain}-{seed}.h5"
    n_rare = write_domain(domain, args.n, seed, cut)
    with contextlib.redirect_stdout(io.StringIO()):
        train(cut, run_dir, TrainConfig.from_dict({**COMMON, "seed": seed, "epochs": args.epochs}))
        assert cli(["embed", str(cut), "--run", str(run_dir), "-o", str(store), "--device", "cpu",
                    "--seed", str(seed)]) == 0
    out = {}
    stores = [("", store)]
    if args.before_arcs:
        stores.append((", before arcs", before_arcs_copy(store, work / f"s-{domain}-{seed}-before-arcs.h5")))
    if args.no_mask:
        stores.append((", no mask", no_mask_copy(store, cut, work / f"s-{domain}-{seed}-no-mask.h5")))
    for tag, path in stores:
        with EmbeddingStore(path) as s:
            budget = min(args.budget, s.n)
            runs = [(f"{rep}, {'no refine' if not every else f'refine every {args.every}'}", rep, every)
                    for rep in args.representations for every in ((0,) if tag or not args.every else (0, args.every))]
            for name, rep, every in runs:
                out[name + tag] = {**simulate_refining(s, seed, rep, every, work / f"refines-{domain}-{seed}{tag}",
                                                       budget),
                                   "base": f"{rep}, no refine{tag}", "arcs": name if tag else None, "tag": tag}
    print(f"{domain} seed {seed}: {args.n if domain != 'xdf' else 'all'} objects, {n_rare} rare", flush=True)
    for name, m in out.items():
        base = out[m["base"]]["found"]
        rf = ", ".join(f"{k}: {t:.0f} s" for k, t in m["refines"]) or "-"
        tag = m["tag"].lstrip(", ") if m["arcs"] else ""
        vs = f", {out[m['arcs']]['found'] / max(m['found'], 1):.2f}x {tag}" if m["arcs"] else ""
        print(f"  {domain:8s} s{seed} {name:42s} found@{budget} {m['found']:3d} ({m['x_random']:.1f}x random, "
              f"{m['found'] / max(base, 1):.2f}x no refine)  recall@100 {m['recall100']:.3f}  refines [{rf}]  "
              f"refit after {', '.join(f'{t:.2f} s' for t in m['refit_after']) or '-'}"
              + (f"   (new/{tag}: found {out[m['arcs']]['found']}/{m['found']}, recall@100 "
                 f"{out[m['arcs']]['recall100']:.3f}/{m['recall100']:.3f}{vs})" if m["arcs"] else ""), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["xdf", "radio", "optical", "lens"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--every", type=int, default=50, help="refine every N labels (0: only the loops without refine)")
    ap.add_argument("--representations", nargs="+", default=["auto", "embedding"],
                    help="the loop's representation in each pair of runs (embedding: refine's own effect)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--before-arcs", action="store_true",
                    help="also run every pair on the store's morphology before the residual-arc numbers")
    ap.add_argument("--no-mask", action="store_true",
                    help="also run the loop without refine on the store's morphology measured without masking "
                         "the unrelated sources (the vector before 2026-12-07's evening)")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if args.quick:
        args.domains, args.seeds, args.n, args.epochs, args.every = ["radio"], [0], 600, 2, 100
        args.representations = ["auto"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            for seed in args.seeds:
                results[domain, seed] = run(domain, seed, args, Path(tmp))
    summarise(results, args.domains, args.seeds)


def summarise(results: dict, domains: list[str], seeds: list[int]) -> None:
    """Mean over seeds of each run's found@budget, its ratio to random order and recall@100, the
    ratio with refine / without (same representation, same seeds), and issue #22's end-to-end
    goals with refine: recall@100 >= 0.70 and found >= 4x random (the means; per seed in brackets)."""
    print(f"\nmean over seeds {', '.join(map(str, seeds))} (ratio: with refine / without, same run):")
    for domain in domains:
        names = list(results[domain, seeds[0]])
        for name in names:
            rows = [results[domain, seed][name] for seed in seeds]
            found = np.mean([m["found"] for m in rows])
            base = np.mean([results[domain, seed][rows[0]["base"]]["found"] for seed in seeds])
            xr = np.mean([m["x_random"] for m in rows])
            rec = np.mean([m["recall100"] for m in rows])
            per_found = " ".join(str(m["found"]) for m in rows)
            per_recall = " ".join(f"{m['recall100']:.2f}" for m in rows)
            line = (f"  {domain:8s} {name:42s} found {found:5.1f} ({xr:.1f}x random, {found / max(base, 1e-9):.2f}x "
                    f"no refine)  recall@100 {rec:.3f}  [per seed: found {per_found}; recall {per_recall}]")
            if rows[0].get("arcs"):
                new = [results[domain, seed][rows[0]["arcs"]] for seed in seeds]
                line += (f"  new/{rows[0]['tag'].lstrip(', ')}: found "
                         f"{np.mean([m['found'] for m in new]) / max(found, 1e-9):.2f}x, "
                         f"recall@100 {np.mean([m['recall100'] for m in new]):.3f}/{rec:.3f}")
            if "refine every" in name:
                met = rec >= 0.70 and xr >= 4.0
                line += f"  goals (recall@100 >= 0.70, >= 4x random): {'met' if met else 'not met'}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
