"""Time the 2-D projection of 10^6 x 512 embeddings (PCA, then UMAP fitted on a sample and
transforming the rest) against plain umap-learn ``fit_transform`` on 10^5 x 50, measured in the
same run. Target (DESIGN.md): <= 5 min for 10^6 on 2 cores.

    flock /tmp/galexplorer-bench.lock python benchmarks/bench_projection.py            # N = 10^6
    python benchmarks/bench_projection.py --quick                                     # N = 5*10^3
    python benchmarks/bench_projection.py --parallel    # also the non-reproducible multi-core mode

The synthetic embeddings mix a continuous 2-D manifold and 25 clusters in a 16-d latent space,
mapped non-linearly to D dimensions with noise, so PCA keeps tens of components as with real
network embeddings. Peak memory is about N * D * 4 bytes (2 GB at 10^6 x 512).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galexplorer.explore.pca import CovarianceAccumulator  # noqa: E402
from galexplorer.explore.projection import project_2d  # noqa: E402


def synthetic_embeddings(n: int, d: int, seed: int = 0, chunk: int = 65536, latent: int = 16) -> np.ndarray:
    """(n, d) float32 embeddings with clusters and a continuum (see the module docstring)."""
    rng = np.random.default_rng(seed)
    lc = latent - 2
    centres = rng.normal(0, 2.0, (25, lc))
    a = rng.normal(0, 0.6 * np.sqrt(16 / latent), (latent, 96))
    b = rng.normal(0, 1 / np.sqrt(96), (96, d))
    out = np.empty((n, d), np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        z = np.empty((m, latent))
        in_cluster = rng.random(m) < 0.5
        lab = rng.integers(0, 25, m)
        z[:, :lc] = np.where(in_cluster[:, None], centres[lab] + rng.normal(0, 0.3, (m, lc)),
                             rng.normal(0, 0.05, (m, lc)))
        t = rng.random((m, 2))
        z[:, lc:] = np.where(in_cluster[:, None], 0.0, np.c_[np.sin(3 * t[:, 0]) * 2, t[:, 1] * 4 - 2])
        out[s:s + m] = np.tanh(z @ a) @ b + rng.normal(0, 0.02, (m, d))
    return out


def pca_features(x: np.ndarray, variance: float, extra_components: int = 0, components: int | None = None):
    acc = CovarianceAccumulator(x.shape[1])
    for s in range(0, len(x), 8192):
        acc.add(x[s:s + 8192])
    model = acc.fit(variance) if components is None else acc.fit(1.0, max_components=components)
    ref_model = acc.fit(1.0, max_components=extra_components) if extra_components else None
    feats = np.concatenate([model.transform(x[s:s + 65536]) for s in range(0, len(x), 65536)])
    return feats, model, ref_model


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N = 5*10^3, fit sample and reference 2*10^3 (below umap's 4,096-row switch "
                        "to pynndescent, whose numba compilation took ~40 s of every new process)")
    p.add_argument("--n", type=int, help="objects (default 10^6)")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--ref-n", type=int, help="rows of the umap-learn reference (default 10^5)")
    p.add_argument("--fit-sample", type=int, help="UMAP fit sample (default: galexplorer's)")
    p.add_argument("--parallel", action="store_true", help="also time the multi-core (not reproducible) mode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latent", type=int, default=16, help="latent dimensions of the synthetic data")
    p.add_argument("--components", type=int,
                   help="keep exactly this many principal components (default: 95%% of the variance); "
                        "50 projects in the reference's dimension")
    p.add_argument("--all-stages", action="store_true",
                   help="also time the isolation forest and the Bayesian mixture on the PCA features")
    args = p.parse_args(argv)
    n = args.n or (5_000 if args.quick else 1_000_000)
    ref_n = args.ref_n or (2_000 if args.quick else 100_000)
    kw = {"fit_sample": args.fit_sample or (2_000 if args.quick else 50_000)}
    warnings.simplefilter("ignore")
    import umap

    t0 = time.perf_counter()
    x = synthetic_embeddings(n, args.dim, args.seed, latent=args.latent)
    t_data = time.perf_counter() - t0

    t0 = time.perf_counter()
    feats, model, _ = pca_features(x, 0.95, components=args.components)
    t_pca = time.perf_counter() - t0
    k = model.n_components
    ref_x = feats[:ref_n, :50] if k >= 50 else \
        np.concatenate([m.transform(x[:ref_n]) for m in [pca_features(x[:ref_n], 1.0, 50)[2]]])
    del x

    # numba compiles umap's kernels on first use (cached on disk afterwards): warm up first so
    # neither timing below pays for it
    t0 = time.perf_counter()
    warm = min(kw["fit_sample"], 4200)   # above 4096 rows umap switches to approximate neighbours
    project_2d(feats[:warm + 1000], fit_sample=warm, seed=args.seed)
    t_warm = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = umap.UMAP(n_neighbors=15, min_dist=0.01, random_state=args.seed, n_jobs=1,
                    low_memory=True).fit_transform(ref_x)
    t_ref = time.perf_counter() - t0
    assert np.isfinite(ref).all()

    t0 = time.perf_counter()
    xy, info = project_2d(feats, seed=args.seed, return_info=True, **kw)
    t_ours = time.perf_counter() - t0
    assert np.isfinite(xy).all() and xy.shape == (n, 2)

    per_ours, per_ref = t_ours / n, t_ref / ref_n
    print(f"data: {n} x {args.dim} synthetic embeddings ({t_data:.1f} s to make); umap-learn {umap.__version__}")
    print(f"PCA (streamed, exact): {k} components keep {model.explained_variance_ratio.sum():.3f} of the "
          f"variance, {t_pca:.1f} s")
    print(f"numba warm-up: {t_warm:.1f} s")
    print(f"reference: umap-learn fit_transform {ref_n} x {ref_x.shape[1]} (random_state set): {t_ref:.1f} s "
          f"({1e6 * per_ref:.0f} us/object)")
    print(f"galexplorer project_2d {n} x {k} (UMAP fit on {info['fit_rows']}, transform "
          f"{info['transformed_rows']}, reproducible): {t_ours:.1f} s ({1e6 * per_ours:.0f} us/object)")
    print(f"ratio per object, galexplorer / reference: {per_ours / per_ref:.3f} "
          f"({per_ref / per_ours:.1f}x faster per object)")
    total = t_pca + t_ours
    print(f"PCA + projection of {n} objects: {total:.1f} s = {total / 60:.2f} min (target <= 5 min at 10^6: "
          f"{'met' if total <= 300 or n < 1_000_000 else 'NOT met'})")
    if args.all_stages:
        from galexplorer.explore.anomaly import isolation_forest_scores
        from galexplorer.explore.clustering import bayesian_gmm_clusters

        t0 = time.perf_counter()
        isolation_forest_scores(feats, seed=args.seed)
        t_if = time.perf_counter() - t0
        t0 = time.perf_counter()
        labels = bayesian_gmm_clusters(feats, seed=args.seed)
        t_gmm = time.perf_counter() - t0
        print(f"isolation forest (200 trees): {t_if:.1f} s; Bayesian mixture (20 components, fit on 20000): "
              f"{t_gmm:.1f} s, {len(np.unique(labels))} clusters used")
        total += t_if + t_gmm
        print(f"all analysis stages after the embeddings: {total:.1f} s = {total / 60:.2f} min "
              f"(+ {t_warm:.0f} s numba compilation once per process)")
    if args.parallel:
        t0 = time.perf_counter()
        project_2d(feats, seed=args.seed, deterministic=False, **kw)
        t_par = time.perf_counter() - t0
        print(f"galexplorer project_2d, multi-core (not reproducible): {t_par:.1f} s "
              f"({t_ours / t_par:.2f}x the reproducible mode's speed)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
