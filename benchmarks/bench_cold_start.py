"""The loop's cold start on the benchmark domains: how many labels before the first rare find?

For each domain - ``radio``, ``optical``, ``lens`` (:func:`galexplorer.data.domains.make_domain`,
2,000 objects, rare class 3%) and ``xdf`` (846 stamps, 80 injected) - and seed, the store of
bench_remaining.py (raw-pixel PCA, the ``oracle`` column) and the default loop (``auto``,
gp-anomaly, EI, batches of 10, the spanning first batch) to 200 labels, as ``simulate`` runs it.
``lowrank`` is bench_discovery.py's store (a) at 2·10^4 objects (a 0.5% rare cluster; unusual to
the anomaly score in seed 0 only). ``disc-a`` and ``disc-b`` are bench_discovery.py's stores (a)
(10^6 objects, 0.5% rare, the anomaly score finds it) and (b) (10^5, 3% rare, not unusual), built
once as bench_discovery builds them; their "seed" is the loop's seed, and the budget 100 labels
as bench_discovery runs them.

Starts (``--starts``), on the very same stores:

* ``model`` - the default (``cold_start="model"``): every pick by the acquisition;
* ``share`` - ``--cold-start random-share`` (:mod:`galexplorer.active.cold_start`): after ``m``
  find-less batches past the spanning one, a share ``min(1, m / 3)`` of the batch is random;
* ``random`` - random until the first find (injected here by wrapping ``ActiveLoop.fit``): each
  batch after the spanning one a seeded random draw while no label is a find;
* ``half`` / ``late`` / ``late-half`` - variants of ``share`` (injected here): the share capped at
  one half; the ramp starting three batches later (after 50 labels); both.

Printed per run and per domain: the labels at the first find, found@50, found@100, found@200,
recall@100 of the final ranking, and each start's ratio to the default (``model``) of the same run;
and per store, how many rare objects the loop's anomaly prior (the isolation forest on the
learning features, the ranking before any label) puts in its top 100, beside random order's
expectation - whether the prior can lead the loop to the class at all.

    python benchmarks/bench_cold_start.py                      # every domain; model, share, random
    python benchmarks/bench_cold_start.py --domains radio disc-a disc-b --starts model share half late late-half
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

REFERENCE = "model"
#: the variants of the random share: (batches of delay, ramp in batches, largest share)
SHARES = {"share": (0, 3, 1.0), "half": (0, 3, 0.5), "late": (3, 3, 1.0), "late-half": (3, 3, 0.5)}
STARTS = ("model", *SHARES, "random")
#: bench_discovery's stores: (objects, rare share, builder seed)
DISCOVERY = {"disc-a": (1_000_000, 0.005, 0), "disc-b": (100_000, 0.03, 1)}


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


def share_variant(delay: int, ramp: int, cap: float):
    """Replace the random share's schedule by ``min(cap, (m - delay) / ramp)``; ``share`` is the
    shipped one (0, 3, 1). Returns the function that undoes it."""
    import galexplorer.active.cold_start as cs

    shipped = cs.random_share
    if (delay, ramp, cap) == (0, cs.RAMP, 1.0):
        return lambda: None

    def schedule(n_labels: int, batch_size: int) -> float:
        m = max(0, int(n_labels) // max(int(batch_size), 1) - 1 - delay)
        return min(cap, m / ramp)

    cs.random_share = schedule
    return lambda: setattr(cs, "random_share", shipped)


def run(store: Path, budget: int, start: str, seed: int = 0) -> dict:
    import galexplorer.active.simulate as sim
    from galexplorer.active.config import LoopConfig
    from galexplorer.store import EmbeddingStore

    if start == "random":
        undo = random_until_first_find()
    elif start in SHARES:
        undo = share_variant(*SHARES[start])
    else:
        undo = lambda: None  # noqa: E731
    loop = LoopConfig(seed=seed, cold_start="random-share" if start in SHARES else "model")
    try:
        with EmbeddingStore(store) as st:
            truth = "oracle" if "oracle" in st.column_names else "truth"
            rep = sim.simulate(st, sim.SimulateConfig(truth=truth, budget=min(budget, st.n), batch=10,
                                                      remaining=False, loop=loop))
    finally:
        undo()
    found = dict(rep.history)
    return {"first": next((n for n, f in rep.history if f > 0), None), "found50": found.get(50, 0),
            "found100": found.get(100, 0), "found": found.get(max(found), 0),
            "recall100": rep.loop.recall.get(100, float("nan")), "interesting": rep.n_interesting}


def anomaly_top100(store: Path, seed: int) -> tuple[int, float, int]:
    """(rare objects in the anomaly prior's top 100, random order's expectation, rare objects)."""
    from galexplorer.active.config import LoopConfig
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as st:
        truth = np.asarray(st.column("oracle" if "oracle" in st.column_names else "truth"), np.float64)
        prior = ActiveLoop(st, LoopConfig(seed=seed)).anomaly_prior()
    rare = truth >= 3
    top = np.argsort(-prior, kind="stable")[:100]
    return int(rare[top].sum()), 100 * rare.mean(), int(rare.sum())


def lowrank_store(n: int, seed: int, work: Path, rare: float = 0.005, name: str = "lowrank") -> Path:
    """bench_discovery.py's low-rank store at ``n`` objects with a ``rare`` cluster (truth 5;
    common objects 0-2), built with ``seed``."""
    from bench_discovery import lowrank, write_store

    path = work / f"{name}-{n}-{seed}.h5"
    if not path.exists():
        emb, truth = lowrank(n, rare, seed=seed)
        write_store(path, emb, truth)
    return path


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+",
                    default=["radio", "optical", "xdf", "lens", "lowrank", "disc-a", "disc-b"])
    ap.add_argument("--starts", nargs="+", choices=STARTS, default=["model", "share", "random"])
    ap.add_argument("--n-lowrank", type=int, default=20_000, help="objects of the lowrank store")
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    ap.add_argument("--disc-seeds", type=int, nargs="+", default=[0, 1, 2], help="loop seeds on disc-a, disc-b")
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--workdir", help="where the disc-a/disc-b stores are kept between runs (default: temporary)")
    ap.add_argument("--quick", action="store_true", help="radio, 600 objects, seed 0, 100 labels (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.domains, args.n, args.seeds, args.budget = ["radio"], 600, [0], 100
    starts = [REFERENCE] + [s for s in args.starts if s != REFERENCE]
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    table: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        keep = Path(args.workdir) if args.workdir else Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        for name in args.domains:
            for seed in (args.disc_seeds if name in DISCOVERY else args.seeds):
                budget = args.budget
                if name in DISCOVERY:
                    n, rare, built = DISCOVERY[name]
                    store, budget = lowrank_store(n, built, keep, rare, name), min(args.budget, 100)
                elif name == "lowrank":
                    store = lowrank_store(args.n_lowrank, seed, Path(tmp))
                else:
                    store = domain_store(name, args.n, seed, Path(tmp))
                loop_seed = seed if name in DISCOVERY else 0
                hits, expected, n_rare = anomaly_top100(store, loop_seed)
                print(f"{name:8s} s{seed} the anomaly prior's top 100 holds {hits} of the {n_rare} rare objects "
                      f"(random order: {expected:.1f}; ratio {hits / expected:.1f}x)", flush=True)
                got = {start: run(store, budget, start, loop_seed) for start in starts}
                base = got[REFERENCE]
                for start, r in got.items():
                    table.setdefault((name, start), []).append({**r, "budget": budget})
                    last = f", found@{budget} {r['found']:3d}" if budget != 100 else ""
                    print(f"{name:8s} s{seed} {start:10s} first find at {r['first']} labels, found@50 {r['found50']:3d}, "
                          f"found@100 {r['found100']:3d}{last} of {r['interesting']}, "
                          f"recall@100 {r['recall100']:.3f} | ratio to model: found@100 "
                          f"{_ratio(r['found100'], base['found100'])}, found@{budget} {_ratio(r['found'], base['found'])}",
                          flush=True)
    print("\nmeans over seeds (ratio to the default, model, of the same runs; no find counted as the budget):")
    for (name, start), rs in table.items():
        base = table[(name, REFERENCE)]
        budget = rs[0]["budget"]
        m = {key: _mean(key, rs, budget) for key in ("first", "found50", "found100", "found", "recall100")}
        b = {key: _mean(key, base, budget) for key in ("found100", "found")}
        print(f"  {name:8s} {start:10s} first find {m['first']:5.1f} labels, found@50 {m['found50']:5.1f}, "
              f"found@100 {m['found100']:5.1f} (ratio {m['found100'] / max(b['found100'], 1e-9):.2f}), "
              f"found@{budget} {m['found']:5.1f} (ratio {m['found'] / max(b['found'], 1e-9):.2f}), "
              f"recall@100 {m['recall100']:.3f}")


def _mean(key: str, rows: list[dict], budget: int) -> float:
    return float(np.mean([r[key] if r[key] is not None else budget for r in rows]))


if __name__ == "__main__":
    main()
