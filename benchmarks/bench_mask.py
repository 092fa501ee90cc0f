"""Does masking the unrelated sources help the loop find the rare class? (issue #22, 2026-12-07)

``galexplorer.data.morphfeatures.target_mask`` sets the detached unrelated sources of a stamp to
the sky before the morphology numbers are measured. For each domain - the synthetic ``radio``,
``optical`` and ``lens``, each also ``-crowded`` (the same objects with unrelated field sources
added, :mod:`galexplorer.data.domains`), and ``xdf`` (the real XDF stamps with injected rare
classes) - and each seed, one store is built as ``bench_remaining.py`` builds it (raw-pixel PCA in
the embedding's place, so no network is trained: the morphology set is what changes), and a copy
whose morphology is measured again without the mask. On both, ``simulate``'s default loop
(``auto``, gp-anomaly + EI, 200 labels in batches of 10, the domain's ``oracle`` column); beside
them the loop on raw-pixel PCA alone (``pixels``). Printed per run and as means over seeds:
found@200, its ratio to random order, recall@100, and the ratio masked / unmasked (same store,
same run).

    python benchmarks/bench_mask.py                      # 7 sets x seeds 0 1 2, 2000 objects (~35 min)
    python benchmarks/bench_mask.py --domains lens lens-crowded --seeds 0
    python benchmarks/bench_mask.py --quick               # smoke test: radio-crowded, 1 seed, 300 objects
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_choose_representation import compare  # noqa: E402
from bench_refine import no_mask_copy  # noqa: E402
from bench_remaining import domain_store  # noqa: E402

DOMAINS = ["radio", "radio-crowded", "optical", "optical-crowded", "lens", "lens-crowded", "xdf"]
RUNS = (("masked", "auto"), ("unmasked", "auto"), ("pixels", "pixels"))


def run(domain: str, seed: int, args, work: Path) -> dict[str, dict]:
    store = domain_store(domain, args.n, seed, work)
    cut = work / f"{domain}-{seed}-cutouts.h5"
    stores = {"masked": store, "unmasked": no_mask_copy(store, cut, work / f"{domain}-{seed}-unmasked.h5"),
              "pixels": store}
    out = {name: compare(stores[name], [rep], seed, args.budget)[1][rep] for name, rep in RUNS}
    for name, m in out.items():
        print(f"  {domain:15s} s{seed} {name:8s} found@{args.budget} {m['found']:3d} ({m['x_random']:.1f}x random)  "
              f"recall@100 {m['recall100']:.3f}  ended on {m['used']}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=DOMAINS)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain (xdf: all its stamps)")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="smoke test: radio-crowded, seed 0, 300 objects, 60 labels")
    args = ap.parse_args()
    if args.quick:
        args.domains, args.seeds, args.n, args.budget = ["radio-crowded"], [0], 300, 60
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            for seed in args.seeds:
                results.setdefault(domain, []).append(run(domain, seed, args, Path(tmp)))
    print(f"\nmean over seeds {', '.join(map(str, args.seeds))} (ratio masked / unmasked: same stores, same run):")
    for domain, runs in results.items():
        mean = {name: {k: float(np.mean([r[name][k] for r in runs])) for k in ("found", "x_random", "recall100")}
                for name, _ in RUNS}
        for name, _ in RUNS:
            per = " ".join(str(r[name]["found"]) for r in runs)
            print(f"  {domain:15s} {name:8s} found {mean[name]['found']:5.1f} ({mean[name]['x_random']:.1f}x random)  "
                  f"recall@100 {mean[name]['recall100']:.3f}  [per seed {per}]")
        m, u = mean["masked"], mean["unmasked"]
        print(f"  {domain:15s} masked/unmasked: found {m['found'] / max(u['found'], 1e-9):.2f}x, recall@100 "
              f"{m['recall100']:.3f}/{u['recall100']:.3f}; masked/pixels found "
              f"{m['found'] / max(mean['pixels']['found'], 1e-9):.2f}x", flush=True)


if __name__ == "__main__":
    main()
