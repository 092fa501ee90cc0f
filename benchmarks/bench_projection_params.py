"""UMAP's n_neighbors and min_dist by sample size: trustworthiness and continuity of the map.

For each benchmark domain (``radio`` and ``optical`` from galexplorer.data.domains at 300, 1000,
3000 and 10 000 objects; ``xdf``, the demo's 374 Hubble XDF sources) the features are cheap ones:
raw-pixel PCA (the central 32 px, asinh-scaled, 30 components, as bench_representation.raw_pca),
and, when ``--demo-store`` names a built demo store, the demo encoder's own PCA features
(``xdf-encoder``). Each grid point (n_neighbors x min_dist) is projected as the pipeline does
(``explore.projection.project_2d``, deterministic, seed 0) and scored by

* trustworthiness T (``sklearn.manifold.trustworthiness``, the mean at k = 10 and k = 50: the
  nearest neighbours, and groups of a few percent of the objects): are the map's neighbours
  neighbours in feature space? (penalises false groups: far objects placed together);
* continuity C: the same with the roles swapped (are feature-space neighbours kept together on
  the map? penalises a tangle of chains that splits real neighbourhoods);

both on all objects up to 3000, and on a random 3000 of them at 10 000. The score is (T + C) / 2.
The script prints the grid, the best point at each size, the rule
(``explore.projection.umap_params_for``) and its score against the old default (15, 0.01) on
every domain and size, and whether the rule beats it everywhere.

Run:  python benchmarks/bench_projection_params.py [--quick] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

SIZES = (300, 1000, 3000, 10_000)
NEIGHBORS = (5, 15, 30, 50, 100)
MIN_DISTS = (0.01, 0.1, 0.3)
K_EVAL = (10, 50)     # local neighbourhoods, and groups of a few percent of the objects
EVAL_MAX = 3000
OLD_DEFAULT = (15, 0.01)


def raw_pca(stamps: np.ndarray, size: int = 32, k: int = 30) -> np.ndarray:
    """Raw-pixel PCA features (bench_representation.raw_pca)."""
    from sklearn.decomposition import PCA

    s = stamps.shape[-1]
    a = max(0, (s - size) // 2)
    crop = stamps[:, :, a:a + size, a:a + size]
    med = np.median(crop, axis=(0, 2, 3), keepdims=True)
    mad = np.median(np.abs(crop - med), axis=(0, 2, 3), keepdims=True)
    x = np.arcsinh((crop - med) / np.maximum(mad, 1e-3)).reshape(len(crop), -1)
    return PCA(min(k, len(x) - 1), random_state=0).fit_transform(x).astype(np.float32)


def features(domain: str, n: int, demo_store: str | None) -> np.ndarray:
    if domain == "xdf":
        from galexplorer.demo import xdf_catalogue

        stamps = xdf_catalogue()[0]
        return raw_pca(stamps)
    if domain == "xdf-encoder":
        from galexplorer.store import EmbeddingStore

        with EmbeddingStore(demo_store) as s:
            return np.asarray(s.pca, np.float32)
    from galexplorer.data.domains import make_domain

    return raw_pca(make_domain(domain, n, seed=0, size=40).stamps)


def quality(x: np.ndarray, xy: np.ndarray, ks=K_EVAL, seed: int = 0) -> tuple[float, float]:
    """(trustworthiness, continuity), each the mean over ``ks`` neighbours (on a random EVAL_MAX
    rows past that)."""
    from sklearn.manifold import trustworthiness

    if len(x) > EVAL_MAX:
        rows = np.sort(np.random.default_rng(seed).choice(len(x), EVAL_MAX, replace=False))
        x, xy = x[rows], xy[rows]
    ks = [k for k in ks if k < len(x) / 2]
    t = np.mean([trustworthiness(x, xy, n_neighbors=k) for k in ks])
    c = np.mean([trustworthiness(xy, x, n_neighbors=k) for k in ks])
    return float(t), float(c)


def grid_for(n: int, quick: bool) -> list[tuple[int, float]]:
    nbs = (5, 15, 50) if quick else NEIGHBORS
    mds = (0.01, 0.3) if quick else MIN_DISTS
    if n > 5000 and not quick:   # 10^4: the neighbourhoods that matter at smaller sizes (time)
        nbs, mds = (15, 30, 50, 100), (0.01, 0.1)
    return [(nb, md) for nb in nbs for md in mds if nb < n]


def main() -> None:
    from galexplorer.explore.projection import project_2d, umap_params_for

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two sizes, a small grid (smoke test)")
    ap.add_argument("--demo-store", help="a built demo store (galexplorer demo): adds its encoder features")
    ap.add_argument("--json", help="write every result here")
    args = ap.parse_args()
    sizes = (300, 1000) if args.quick else SIZES
    cases = [("xdf", 374)] + [(d, n) for d in ("radio", "optical") for n in sizes]
    if args.demo_store and os.path.exists(args.demo_store):
        cases.insert(1, ("xdf-encoder", 374))
    results = []
    print(f"trustworthiness T / continuity C, each the mean at k={K_EVAL}, score (T+C)/2; raw-pixel PCA features "
          f"(30 components) unless named", flush=True)
    for domain, n in cases:
        x = features(domain, n, args.demo_store)
        n = len(x)
        rule = umap_params_for(n)
        grid = grid_for(n, args.quick)
        points = list(dict.fromkeys(grid + [OLD_DEFAULT, rule]))
        row = {}
        t0 = time.perf_counter()
        for nb, md in points:
            xy = project_2d(x, n_neighbors=nb, min_dist=md, seed=0)
            t, c = quality(x, xy)
            row[(nb, md)] = (t, c, (t + c) / 2)
            results.append({"domain": domain, "n": n, "n_neighbors": nb, "min_dist": md, "T": t, "C": c})
        best = max(grid, key=lambda p: row[p][2])
        print(f"\n{domain} n={n} ({time.perf_counter() - t0:.0f} s)   " + "  ".join(
            f"md={md}" for md in dict.fromkeys(p[1] for p in grid)), flush=True)
        for nb in dict.fromkeys(p[0] for p in grid):
            cells = [f"{row[(nb, md)][0]:.3f}/{row[(nb, md)][1]:.3f}" if (nb, md) in row else "-"
                     for md in dict.fromkeys(p[1] for p in grid)]
            print(f"  nn={nb:<4} " + "  ".join(cells), flush=True)
        old, new = row[OLD_DEFAULT][2], row[rule][2]
        print(f"  best {best}: {row[best][2]:.4f} | old default {OLD_DEFAULT}: {old:.4f} | rule {rule}: "
              f"{new:.4f} ({'beats' if new > old else 'does NOT beat' if new < old else 'equals'} the old "
              f"default by {new - old:+.4f}; {new / old:.3f}x)", flush=True)
        results.append({"domain": domain, "n": n, "summary": True, "best": best, "rule": rule,
                        "rule_score": new, "old_score": old, "best_score": row[best][2]})
    summ = [r for r in results if r.get("summary")]
    wins = all(r["rule_score"] > r["old_score"] for r in summ if r["rule"] != OLD_DEFAULT)
    print("\nrule: " + umap_params_for.__doc__.strip().splitlines()[0], flush=True)
    for r in summ:
        print(f"  {r['domain']:<12} n={r['n']:<6} rule {str(r['rule']):<12} {r['rule_score']:.4f}  old "
              f"{r['old_score']:.4f}  ratio {r['rule_score'] / r['old_score']:.3f}  best {r['best']} "
              f"{r['best_score']:.4f}")
    print(f"the rule beats the old default on every domain and size where they differ: {'yes' if wins else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in results], f,
                      indent=1)


if __name__ == "__main__":
    main()
