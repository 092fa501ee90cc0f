"""Do added morphology numbers separate a rare class defined by shape better? (issue #22)

:mod:`galexplorer.data.morphfeatures` gained, with issue #22, rotation-residual numbers (shape
asymmetry, outer asymmetry, the outer residual's largest piece), Freeman et al.'s multimode /
intensity / deviation and, for several bands, each band's asymmetry and the colour dispersion
(``--old-revision c4981bb``), then the 11 residual-arc numbers (the default ``--old-revision``,
the commit before them). For each domain (``radio``, ``optical``, ``lens`` from
:mod:`galexplorer.data.domains`; ``xdf``: the real XDF stamps with ``--xdf-per-class`` injected
objects of each of four rare classes) and each seed, one run scores:

* ``old``: the first columns, as many as the module at ``--old-revision`` has - the vector before
  the added numbers (the script checks on a sample that they equal what that module computes, when
  git can show it; without git it needs ``--old-columns``);
* ``new``: every column; ``added``: the added columns alone;
* ``pca``: raw-pixel PCA (30 components of the arcsinh-normalised 32-px centre, as
  bench_domains.py).

Morphology is standardised per column, as ``bench_domains.py`` does. Scorers (5-fold, stratified,
out of fold): ``lin AP`` - average precision of the rare class from a logistic regression;
``kNN AP`` - the same from a distance-weighted 10-nearest-neighbour vote; ``kNN`` / ``linear`` -
accuracy of all classes from 5-NN and the logistic regression. Every line ends with new/old and
new/PCA ratios of the same run, and the cost in ms a stamp of the old module (from ``git show
OLD_REVISION:...``) and of the new one, timed on the same stamps one after the other.

    python benchmarks/bench_morphology.py                     # 3 domains x seeds 0 1 2, 600 objects
    python benchmarks/bench_morphology.py --quick             # radio, seed 0, 200 objects
    python benchmarks/bench_morphology.py --old-revision d943baf --domains radio radio-crowded   # the masking

When the module at ``--old-revision`` has as many columns as today's (a change in how they are
measured, such as the masking of unrelated sources after d943baf), ``old`` is that module's whole
vector computed on the same stamps, and there is no ``added`` line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import types
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_domains import domain_set, probes  # noqa: E402
from bench_representation import raw_pca  # noqa: E402

REPS = ("old", "new", "added", "pca")
METRICS = ("lin_ap", "knn_ap", "knn", "lin")
COST_SAMPLE = 200
#: the last commit before the residual-arc numbers (c4981bb: the last before issue #22's first added ones)
OLD_REVISION = "7961185"


def old_module(revision: str) -> types.ModuleType | None:
    """The morphfeatures module at ``revision``, or None where git cannot show it."""
    root = Path(__file__).resolve().parent.parent
    try:
        src = subprocess.run(["git", "-C", str(root), "show", f"{revision}:galexplorer/data/morphfeatures.py"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    mod = types.ModuleType("morphfeatures_main")
    exec(compile(src, "morphfeatures_main", "exec"), mod.__dict__)   # noqa: S102 - our own file, an older commit
    return mod


def scores(x: np.ndarray, labels: np.ndarray, rare: np.ndarray) -> dict[str, float]:
    """bench_domains.py's probes (5-NN and logistic accuracy, the logistic rare-class AP) and the
    rare-class AP of a distance-weighted 10-NN vote, on the same folds."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier

    p = probes(x, labels, rare)
    x = (x - x.mean(axis=0)) / max(float(x.std()), 1e-12)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    p_knn = cross_val_predict(KNeighborsClassifier(10, weights="distance"), x, rare.astype(int), cv=cv,
                              method="predict_proba")[:, 1]
    return {"lin_ap": p["ap"], "knn_ap": float(average_precision_score(rare, p_knn)), "knn": p["knn"],
            "lin": p["lin"]}


def cost(stamps: np.ndarray, old) -> tuple[float, float]:
    """ms a stamp of the old and the new module on the same sample (old first, then new, twice each
    alternately, the lower time of each: the cores are shared)."""
    from galexplorer.data.morphfeatures import morphology_features

    sample = stamps[:COST_SAMPLE]
    best = {"old": np.inf, "new": np.inf}
    for _ in range(2):
        for name, fn in (("old", old.morphology_features if old else None), ("new", morphology_features)):
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn(sample)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(sample) * 1e3)
    return best["old"], best["new"]


def run(domain: str, seed: int, args, old) -> dict[str, dict[str, float]]:
    from galexplorer.active.features import standardise
    from galexplorer.data.morphfeatures import morphology_features

    if domain == "xdf":
        from galexplorer.data.inject import xdf_benchmark_set

        b = xdf_benchmark_set(seed=seed, size=40, per_class=args.xdf_per_class, morphology=False)
        stamps, labels, rare = b.stamps, b.labels, b.rare
    else:
        stamps, labels, rare, _ = domain_set(domain, args.n, seed)
    n_bands = stamps.shape[1]
    n_old = len(old.feature_names(n_bands)) if old is not None else args.old_columns[n_bands > 1] + (
        2 * n_bands if n_bands > 1 else 0)
    t0 = time.perf_counter()
    new = morphology_features(stamps)
    t_new = time.perf_counter() - t0
    whole = old is not None and n_old == new.shape[1]      # the same columns, measured otherwise
    if whole:
        ref = old.morphology_features(stamps)
        changed = float(np.mean(np.any(ref != new, axis=1)))
    elif old is not None:
        ref = old.morphology_features(stamps[:COST_SAMPLE])
        same = np.array_equal(ref, new[:COST_SAMPLE, :n_old])
        if not same:
            print(f"  WARNING: the first {n_old} columns differ from {args.old_revision[:7]}'s on {domain} s{seed}",
                  flush=True)
    ms_old, ms_new = cost(stamps, old)
    if whole:
        reps = {"old": standardise(ref), "new": standardise(new), "pca": raw_pca(stamps)}
    else:
        reps = {"old": standardise(new[:, :n_old]), "new": standardise(new), "added": standardise(new[:, n_old:]),
                "pca": raw_pca(stamps)}
    out = {name: scores(x, labels, rare) for name, x in reps.items()}
    out["cost"] = {"old_ms": ms_old, "new_ms": ms_new}
    print(f"{domain} seed {seed}: {len(stamps)} stamps {stamps.shape[1:]}, {int(rare.sum())} rare, "
          f"{new.shape[1]} columns ({n_old} old), features {t_new:.1f} s", flush=True)
    if whole:
        print(f"  {domain:8s} s{seed} the same {n_old} columns as {args.old_revision[:7]}'s, measured otherwise: "
              f"{changed:.0%} of the stamps changed", flush=True)
    for name in REPS:
        if name in out:
            print("  " + line(domain, f"s{seed}", name, out), flush=True)
    print(f"  {domain:8s} s{seed} cost  old {ms_old:.2f} ms/stamp  new {ms_new:.2f} ms/stamp  "
          f"new/old {ms_new / ms_old:.2f}", flush=True)
    return out


def line(domain: str, seed: str, name: str, out: dict[str, dict[str, float]]) -> str:
    s, o, p = out[name], out["old"], out["pca"]
    text = (f"{domain:8s} {seed:5s} {name:6s} lin AP {s['lin_ap']:.3f}  kNN AP {s['knn_ap']:.3f}  "
            f"kNN {s['knn']:.3f}  linear {s['lin']:.3f}")
    if name != "old":
        text += (f"   /old: lin AP {s['lin_ap'] / max(o['lin_ap'], 1e-9):.2f} kNN AP "
                 f"{s['knn_ap'] / max(o['knn_ap'], 1e-9):.2f} kNN {s['knn'] / o['knn']:.2f}")
    if name != "pca":
        text += (f"   /pca: lin AP {s['lin_ap'] / max(p['lin_ap'], 1e-9):.2f} kNN AP "
                 f"{s['knn_ap'] / max(p['knn_ap'], 1e-9):.2f}")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["radio", "optical", "lens", "xdf"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=600, help="objects per synthetic domain")
    ap.add_argument("--xdf-per-class", type=int, default=20,
                    help="injected objects per rare class on the XDF (4 classes; ~770 real stamps)")
    ap.add_argument("--quick", action="store_true", help="smoke test: radio, seed 0, 200 objects")
    ap.add_argument("--old-revision", default=OLD_REVISION,
                    help="the commit whose morphfeatures module is 'old' (default: the last before the "
                         "residual-arc numbers; c4981bb: the last before issue #22's)")
    ap.add_argument("--old-columns", type=int, nargs=2, default=[60, 61], metavar=("ONE_BAND", "C_BANDS_LESS_2C"),
                    help="without git: how many columns 'old' has for one band, and for C bands less 2C")
    args = ap.parse_args()
    if args.quick:
        args.domains, args.seeds, args.n = ["radio"], [0], 200
    print(f"# python {' '.join(sys.argv)}\n# {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, {os.cpu_count()} cores", flush=True)
    old = old_module(args.old_revision)
    if old is None:
        print(f"# git cannot show {args.old_revision[:7]}'s module: no old cost, no column check", flush=True)
    results: dict[str, list[dict]] = {}
    for domain in args.domains:
        for seed in args.seeds:
            results.setdefault(domain, []).append(run(domain, seed, args, old))
    print(f"\nmean over seeds {args.seeds} (ratios of the means, same run):")
    for domain, runs in results.items():
        names = [name for name in REPS if name in runs[0]]
        mean = {name: {k: float(np.mean([r[name][k] for r in runs])) for k in METRICS} for name in names}
        for name in names:
            print("  " + line(domain, "mean", name, mean))
        ms_old = float(np.mean([r["cost"]["old_ms"] for r in runs]))
        ms_new = float(np.mean([r["cost"]["new_ms"] for r in runs]))
        print(f"  {domain:8s} mean  cost  old {ms_old:.2f} ms/stamp  new {ms_new:.2f} ms/stamp  "
              f"new/old {ms_new / ms_old:.2f}")
        wins = sum(r["new"]["lin_ap"] > r["old"]["lin_ap"] for r in runs)
        print(f"  {domain:8s} new beats old on lin AP in {wins} of {len(runs)} seeds; beats PCA in "
              f"{sum(r['new']['lin_ap'] > r['pca']['lin_ap'] for r in runs)} of {len(runs)}")


if __name__ == "__main__":
    main()
