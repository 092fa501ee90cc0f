"""How well does the loop estimate the interesting objects still unlabelled? (issue #23 item 11)

For each domain - ``radio`` and ``optical`` (:func:`galexplorer.data.domains.make_domain`, rare
class 3%, oracle 5 for it) and ``xdf`` (the XDF stamps with injected rare classes, as
bench_domains.py builds them, oracle 5 for the injected) - and seed, the stamps' raw-pixel PCA
(bench_representation.raw_pca: cheap, no training) becomes a store, and ``simulate`` runs the
default loop (gp-anomaly, EI, batches of 10) to the budget. After every refit it prints the
estimate of the interesting objects left (calibrated, with its 90% interval), the truth from
the oracle, the relative error, and the uncalibrated Gaussian estimate; then per run, per seed
and for seeds 0, 1 (those looked at while choosing the estimator) against the others (held
out): the median and largest |error| after 100 labels, the fraction of those refits within ±30%
(the issue's goal), how often the interval covered the truth, and the same figures of the
previous estimator (a logistic calibration) computed on the same refits, with the ratio of the
median |errors|.

    python benchmarks/bench_remaining.py                          # radio, optical, xdf; seeds 0 1 2
    python benchmarks/bench_remaining.py --domains radio --n 1000 --seeds 0 --budget 120
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_representation import raw_pca  # noqa: E402

GOAL_LABELS, GOAL = 100, 0.30


def domain_store(name: str, n: int, seed: int, work: Path) -> Path:
    """A store of the domain's raw-pixel PCA with the ``oracle`` column (0-5)."""
    from galexplorer.data.domains import DomainSet, make_domain, write_domain_cutouts
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store import CutoutStore

    if name == "xdf":
        from galexplorer.data.inject import xdf_benchmark_set

        b = xdf_benchmark_set(seed=seed, size=40, per_class=max(2, n // 100), morphology=False)
        ids = np.array([f"x{i:05d}" for i in range(len(b.stamps))], dtype=object)
        dom = DomainSet("xdf", b.stamps, ids, b.labels, tuple(b.class_names),
                        np.where(b.rare, 5, 0).astype(np.int64), ["blue", "green", "red"])
    else:
        dom = make_domain(name, n, seed=seed, size=40)
    cut = write_domain_cutouts(work / f"{name}-{seed}-cutouts.h5", dom, thumb_size=16)
    emb = raw_pca(dom.stamps)
    store = work / f"{name}-{seed}.h5"
    with CutoutStore(cut) as c:
        build_store(store, objects=c.objects, dim=emb.shape[1], fill=emb,
                    config=EmbedConfig(projection="pca", seed=0, device="cpu"), cutouts=c)
    return store


def previous_estimate(result, threshold: float) -> float:
    """The estimator before the probit calibration (issue #23 item 11, first version), on the same
    refit: ``Σ sigmoid(a·z + b)`` with ``(a, b)`` the logistic MAP (prior N((1.702, 0), 1)) on the
    leave-one-out ``z`` of the labelled objects — the reference the ratio is measured against."""
    from scipy.special import expit

    from galexplorer.active.remaining import _z

    loo_mean, loo_std = result._model.loo()
    y = (result.labels >= threshold).astype(np.float64)
    X = np.column_stack([np.clip((loo_mean - (threshold - 0.5)) / loo_std, -50, 50), np.ones(len(y))])
    w = prior = np.array([1.702, 0.0])
    for _ in range(100):
        p = expit(X @ w)
        delta = np.linalg.solve((X * (p * (1 - p))[:, None]).T @ X + np.eye(2), X.T @ (p - y) + (w - prior))
        w = w - delta
        if np.abs(delta).max() < 1e-9:
            break
    free = np.ones(len(result.mean), bool)
    free[result.labelled] = False
    free[result.excluded] = False
    return float(expit(w[0] * _z(result.mean[free], result.std[free], threshold, 1.0, 1.0) + w[1]).sum())


def summary(rows: list[tuple], what: str) -> str:
    """One line: median |error| of the refits, share within the goal, coverage, and the previous
    estimator's median |error| on the same refits (rows: (check, previous estimate))."""
    if not rows:
        return f"{what}: no refit with some left"
    e = np.abs([r.error for r, _ in rows])
    prev = np.abs([(p - r.true) / r.true for r, p in rows])
    return (f"{what}: median |error| {100 * np.median(e):.0f}% (largest {100 * e.max():.0f}%), within "
            f"±{100 * GOAL:.0f}% at {np.mean(e <= GOAL):.0%} of {len(e)} refits, interval covered the truth at "
            f"{np.mean([r.covered for r, _ in rows]):.0%}; previous estimator {100 * np.median(prev):.0f}% "
            f"(within ±{100 * GOAL:.0f}% at {np.mean(prev <= GOAL):.0%}): ratio {np.median(e) / max(np.median(prev), 1e-9):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", nargs="+", default=["radio", "optical", "xdf"])
    ap.add_argument("--n", type=int, default=2000, help="objects per synthetic domain")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="radio only, 400 objects, one seed, 60 labels (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.domains, args.n, args.seeds, args.budget = ["radio"], 400, [0], 60

    import galexplorer.active.simulate as sim
    from galexplorer.store import EmbeddingStore

    previous: dict[int, float] = {}      # labels -> the previous estimator at that refit, this run
    check = sim._remaining_check

    def both(result, interesting):
        out = check(result, interesting)
        if out is not None:
            previous[out.labels] = previous_estimate(result, out.estimate.threshold)
        return out

    sim._remaining_check = both          # the previous estimator on the very refits the loop makes
    by_seed: dict[int, list] = {}
    every: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.domains:
            for seed in args.seeds:
                t0 = time.perf_counter()
                previous.clear()
                store = domain_store(name, args.n, seed, Path(tmp))
                with EmbeddingStore(store) as st:
                    rep = sim.simulate(st, sim.SimulateConfig(truth="oracle", budget=min(args.budget, st.n),
                                                              batch=args.batch))
                print(f"{name} seed {seed}: {rep.n_objects} objects, {rep.n_interesting} interesting, "
                      f"{time.perf_counter() - t0:.0f} s")
                print("\n".join("  " + line for line in rep.remaining_table()))
                print("  previous estimator at each refit: " + ", ".join(
                    f"{r.labels}: {previous[r.labels]:.1f}" for r in rep.remaining))
                every += [(r, previous[r.labels]) for r in rep.remaining if r.true > 0]
                after = [(r, previous[r.labels]) for r in rep.remaining if r.labels >= GOAL_LABELS and r.true > 0]
                by_seed.setdefault(seed, []).extend(after)
                print("  " + summary(after, f"after {GOAL_LABELS} labels") + "\n", flush=True)
    sim._remaining_check = check
    for seed, rows in sorted(by_seed.items()):
        print(summary(rows, f"seed {seed}, all domains, after {GOAL_LABELS} labels"))
    fitted = [r for s, rows in by_seed.items() if s in (0, 1) for r in rows]
    held = [r for s, rows in by_seed.items() if s not in (0, 1) for r in rows]
    if fitted and held:
        print(summary(fitted, f"seeds 0, 1 (looked at), after {GOAL_LABELS} labels"))
        print(summary(held, f"other seeds (held out), after {GOAL_LABELS} labels"))
    rows = [r for rs in by_seed.values() for r in rs]
    print(summary(rows, f"all, after {GOAL_LABELS} labels"))
    print(summary(every, "every refit, from the first"))
    if rows:
        worst = max(abs(r.error) for r, _ in rows)
        print(f"goal (within ±{100 * GOAL:.0f}% at every refit after {GOAL_LABELS} labels): "
              f"{'met' if worst <= GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
