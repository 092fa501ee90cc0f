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
The script prints the grid and the best point of each case, then derives a rule: for each size
class (n <= 500, 1500, 5000, 20 000), the grid point whose worst gain over the current default
(15, 0.01) across the class's domains is largest, kept only when that worst gain is above
:data:`NOISE` (the seed-to-seed spread of the default's score; ``--noise`` measures it). A rule
that differs from the default in some class beats it on every domain of that class; the
pipeline's default would change only then.

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
#: the seed-to-seed standard deviation of (T+C)/2 at the default: 0.0005-0.0046 at 300-1000
#: objects (``--noise``); a gain below this is not a gain
NOISE = 0.002
BUCKETS = (500, 1500, 5000, 20_000)   # size classes: the demo-size sets, ~10^3, ~3·10^3, ~10^4


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
    from galexplorer.explore.projection import project_2d

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one size, a small grid (smoke test)")
    ap.add_argument("--demo-store", help="a built demo store (galexplorer demo): adds its encoder features")
    ap.add_argument("--json", help="write every result here")
    ap.add_argument("--demo-maps", metavar="OUT.png", help="with --demo-store: only draw the demo's map at a "
                    "few grid points")
    ap.add_argument("--noise", action="store_true", help="only measure the score's spread over 4 seeds")
    ap.add_argument("--from-json", metavar="FILE", help="only summarise a grid written by --json")
    args = ap.parse_args()
    if args.noise:
        noise(args.demo_store)
        return
    if args.demo_maps:
        demo_maps(args.demo_store, args.demo_maps)
        return
    if args.from_json:
        with open(args.from_json) as f:
            summarise([{k: (tuple(v) if isinstance(v, list) else v) for k, v in r.items()} for r in json.load(f)])
        return
    sizes = (300,) if args.quick else SIZES
    cases = [("xdf", 374)] + [(d, n) for d in ("radio", "optical") for n in sizes]
    if args.demo_store and os.path.exists(args.demo_store):
        cases.insert(1, ("xdf-encoder", 374))
    results = []
    print(f"trustworthiness T / continuity C, each the mean at k={K_EVAL}, score (T+C)/2; raw-pixel PCA features "
          f"(30 components) unless named", flush=True)
    for domain, n in cases:
        x = features(domain, n, args.demo_store)
        n = len(x)
        grid = grid_for(n, args.quick)
        points = list(dict.fromkeys(grid + [OLD_DEFAULT]))
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
        old = row[OLD_DEFAULT][2]
        print(f"  best {best}: {row[best][2]:.4f} | the default {OLD_DEFAULT}: {old:.4f} | gain "
              f"{row[best][2] - old:+.4f} ({row[best][2] / old:.4f}x)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in results], f,
                      indent=1)
    summarise(results)


def demo_maps(store: str, out: str, points=((15, 0.01), (15, 0.1), (30, 0.3), (100, 0.3))) -> None:
    """The demo's map (its encoder's PCA features) at a few grid points, side by side, coloured
    by the catalogue's log flux, with T and C in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from galexplorer.explore.projection import project_2d
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store) as s:
        x = np.asarray(s.pca, np.float32)
        flux = np.log10(np.maximum(np.asarray(s.column("flux"), np.float64), 1e-3))
    fig, axes = plt.subplots(1, len(points), figsize=(4 * len(points), 4.2), facecolor="#0b0d12")
    for ax, (nb, md) in zip(axes, points):
        xy = project_2d(x, n_neighbors=nb, min_dist=md, seed=0)
        t, c = quality(x, xy)
        ax.scatter(xy[:, 0], xy[:, 1], c=flux, s=7, cmap="viridis", linewidths=0)
        ax.set_title(f"n_neighbors {nb}, min_dist {md}\nT {t:.3f}  C {c:.3f}", color="#d8dee9", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("#0b0d12")
        for sp in ax.spines.values():
            sp.set_color("#3b4252")
    fig.suptitle(f"the demo's map ({len(x)} XDF galaxies, the demo encoder's {x.shape[1]} PCA features; "
                 "colour: log flux)", color="#d8dee9")
    fig.tight_layout()
    fig.savefig(out, dpi=90, facecolor=fig.get_facecolor())
    print(f"wrote {out}")


def bucket_of(n: int) -> int:
    """The size class a case belongs to: the first of BUCKETS at least ``n``."""
    return next(b for b in BUCKETS if n <= b)


def derive_rule(results: list[dict]) -> dict[int, tuple[tuple[int, float], float]]:
    """For each size class, the grid point whose worst gain over the old default, across the
    class's domains, is largest: ``{bucket: ((n_neighbors, min_dist), worst gain)}``. A class
    keeps the old default unless that worst gain is above :data:`NOISE` (it beats it on every
    domain, by more than a change of seed does)."""
    scores = _scores(results)
    rule = {}
    for b in BUCKETS:
        cases = [c for c in scores if bucket_of(c[1]) == b]
        if not cases:
            continue
        common = set.intersection(*(set(scores[c]) for c in cases))
        gain = {p: min(scores[c][p] - scores[c][OLD_DEFAULT] for c in cases) for p in common}
        best = max(sorted(gain), key=lambda p: gain[p])
        rule[b] = (best, gain[best]) if gain[best] > NOISE else (OLD_DEFAULT, gain[best])
    return rule


def summarise(results: list[dict]) -> None:
    scores = _scores(results)
    print(f"\nthe rule from the grid: per size class, the point with the largest worst-case gain over {OLD_DEFAULT} "
          f"across the class's domains, kept where that gain is above the noise ({NOISE})")
    rule = derive_rule(results)
    for b, (p, g) in rule.items():
        cases = [c for c in scores if bucket_of(c[1]) == b]
        print(f"  n <= {b:<6} {str(p):<12} worst gain {g:+.4f} over {', '.join(f'{d} {n}' for d, n in cases)}")
    changed = {b: p for b, (p, g) in rule.items() if p != OLD_DEFAULT}
    print("each case, (T+C)/2: the default | the rule | the grid's best")
    for (domain, n), sc in scores.items():
        mine = rule[bucket_of(n)][0]
        best = max(sc, key=sc.get)
        print(f"  {domain:<12} n={n:<6} {sc[OLD_DEFAULT]:.4f} | {str(mine):<12} {sc[mine]:.4f} "
              f"(ratio {sc[mine] / sc[OLD_DEFAULT]:.4f}) | {best} {sc[best]:.4f}")
    if changed:
        print(f"the rule beats the default on every domain in {len(changed)} size class(es): {changed}")
    else:
        print(f"no grid point beats the default {OLD_DEFAULT} by more than the noise on every domain of any size "
              "class: the default stays")


def noise(demo_store: str | None) -> None:
    """The seed-to-seed spread of (T+C)/2 at the default and at one neighbour, 4 seeds."""
    from galexplorer.explore.projection import project_2d

    cases = [("xdf", 374), ("radio", 300), ("optical", 300), ("radio", 1000), ("optical", 1000)]
    for domain, n in cases:
        x = features(domain, n, demo_store)
        for p in (OLD_DEFAULT, (15, 0.1)):
            s = []
            for seed in range(4):
                t, c = quality(x, project_2d(x, n_neighbors=p[0], min_dist=p[1], seed=seed))
                s.append((t + c) / 2)
            print(f"  {domain:<8} n={len(x):<5} {str(p):<11} mean {np.mean(s):.4f}  sd {np.std(s, ddof=1):.4f}  "
                  f"{np.round(s, 4).tolist()}", flush=True)


def _scores(results: list[dict]) -> dict[tuple[str, int], dict[tuple[int, float], float]]:
    out: dict[tuple[str, int], dict[tuple[int, float], float]] = {}
    for r in results:
        if not r.get("summary"):
            out.setdefault((r["domain"], r["n"]), {})[(r["n_neighbors"], r["min_dist"])] = (r["T"] + r["C"]) / 2
    return out


if __name__ == "__main__":
    main()
