"""The loop's cold start on the benchmark domains: how many labels before the first rare find?

For each domain - ``radio``, ``optical`` (:func:`galexplorer.data.domains.make_domain`, 2,000
objects, rare class 3%) and ``xdf`` (846 stamps, 80 injected) - and seed, the store of
bench_remaining.py (raw-pixel PCA, the ``oracle`` column) and the default loop (``auto``,
gp-anomaly, EI, batches of 10, the spanning first batch) to 200 labels, as ``simulate`` runs it.
A fourth domain, ``lowrank``, is bench_discovery.py's store (a) at 2·10^4 objects: a 0.5% rare
cluster (unusual to the anomaly score in seed 0 only: the case the anomaly prior is for).
The **default** start is ``random-share`` (:mod:`galexplorer.active.cold_start`: after ``m``
find-less batches past the spanning one, a share ``min(1, m / 3)`` of the batch is random, the
rest the model's first picks). On the very same stores, beside it:

* **model only** (``--cold-start model``, the default until 2026-12-06): every pick by the acquisition;
* **random until the first find** (injected here by wrapping ``ActiveLoop.fit``, not an option):
  each batch after the spanning one a seeded random draw while no label is ``interesting_above``.

Printed per run and per domain: the labels at the first find, found@100, found@200, recall@100
of the final ranking, and each start's ratio to the model-only start of the same run.

    python benchmarks/bench_cold_start.py                      # radio, optical, xdf, lowrank; seeds 0-5
    python benchmarks/bench_cold_start.py --quick              # radio, 600 objects, seed 0, 100 labels
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_remaining import domain_store  # noqa: E402

STARTS = ("default: random share", "model only", "random until the first find")
REFERENCE = "model only"


def random_until_first_find():
    """Wrap ``ActiveLoop.fit`` so that, while no label is interesting, the next batch (after the
    spanning one) is a seeded random draw of the unlabelled, not excluded objects. Returns the
    function that undoes it."""
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.active.result import eligible_mask

    fit = ActiveLoop.fit

    def wrapped(self, labelled, labels, excluded=None, previous=None):
        result = fit(self, labelled, labels, excluded, previous)
        scores = np.asarray(labels, np.float64)
        if len(scores) and not (scores >= self.config.interesting_above).any():
            k = len(result.next_batch)
            rows = np.flatnonzero(eligible_mask(self.n, result.labelled, result.excluded))
            rng = np.random.default_rng(self.config.seed * 1000 + len(scores))
            result.next_batch = rng.choice(rows, min(k, len(rows)), replace=False).astype(np.int64)
        return result

    ActiveLoop.fit = wrapped
    return lambda: setattr(ActiveLoop, "fit", fit)


def run(store: Path, budget: int, start: str) -> dict:
    import galexplorer.active.simulate as sim
    from galexplorer.active.config import LoopConfig
    from galexplorer.store import EmbeddingStore

    undo = random_until_first_find() if start == "random until the first find" else (lambda: None)
    loop = LoopConfig() if start.startswith("default") else LoopConfig(cold_start="model")
    try:
        with EmbeddingStore(store) as st:
            truth = "oracle" if "oracle" in st.column_names else "truth"
            rep = sim.simulate(st, sim.SimulateConfig(truth=truth, budget=min(budget, st.n), batch=10,
                                                      remaining=False, loop=loop))
    finally:
        undo()
    found = dict(rep.history)
    return {"first": next((n for n, f in rep.history if f > 0), None), "found100": found.get(100, 0),
            "found": found.get(max(found), 0), "recall100": rep.loop.recall.get(100, float("nan")),
            "interesting": rep.n_interesting}


def lowrank_store(n: int, seed: int, work: Path) -> Path:
    """bench_discovery.py's store (a) at ``n`` objects: low-rank embeddings with a 0.5% rare
    cluster that the isolation forest does find unusual (truth 5; common objects 0-2)."""
    from bench_discovery import lowrank, write_store

    emb, truth = lowrank(n, 0.005, seed=seed)
    path = work / f"lowrank-{seed}.h5"
    write_store(path, emb, truth)
    return path


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+", default=["radio", "optical", "xdf", "lowrank"],
                    help="lowrank: bench_discovery.py's store (a), a 0.5%% rare class the anomaly score finds")
    ap.add_argument("--n-lowrank", type=int, default=20_000, help="objects of the lowrank store")
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="radio, 600 objects, seed 0, 100 labels (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.domains, args.n, args.seeds, args.budget = ["radio"], 600, [0], 100
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    table: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.domains:
            for seed in args.seeds:
                store = (lowrank_store(args.n_lowrank, seed, Path(tmp)) if name == "lowrank"
                         else domain_store(name, args.n, seed, Path(tmp)))
                got = {start: run(store, args.budget, start) for start in STARTS}
                base = got[REFERENCE]
                for start, r in got.items():
                    table.setdefault((name, start), []).append(r)
                    print(f"{name:8s} s{seed} {start:28s} first find at {r['first']} labels, found@100 "
                          f"{r['found100']:3d}, found@{args.budget} {r['found']:3d} of {r['interesting']}, recall@100 "
                          f"{r['recall100']:.3f} | ratio to model only: found@100 {_ratio(r['found100'], base['found100'])}"
                          f", found@{args.budget} {_ratio(r['found'], base['found'])}", flush=True)
    print(f"\nmeans over seeds {args.seeds} (ratio to the model-only start of the same runs):")
    for (name, start), rs in table.items():
        base = table[(name, REFERENCE)]
        mean = lambda key, rows: float(np.mean([r[key] if r[key] is not None else args.budget for r in rows]))  # noqa: E731
        print(f"  {name:8s} {start:28s} first find {mean('first', rs):5.1f} labels (no find: counted as "
              f"{args.budget}), found@100 {mean('found100', rs):5.1f} (ratio {mean('found100', rs) / max(mean('found100', base), 1e-9):.2f}), "
              f"found@{args.budget} {mean('found', rs):5.1f} (ratio {mean('found', rs) / max(mean('found', base), 1e-9):.2f}), "
              f"recall@100 {mean('recall100', rs):.3f}")


if __name__ == "__main__":
    main()
