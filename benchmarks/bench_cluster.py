"""``embed --cluster local:2`` against one process, in the same run: wall time and peak memory of
the client and of the workers (issue #25).

Each mode runs in a fresh process (``--child``) that builds the store with
``galexplorer.ssl.embed.embed_with_encoder`` (ResNet-18, random weights, real XDF pixels; the
analysis stages with ``--projection pca`` so the encoder dominates) and reports its own peak RSS
and, for the cluster, each worker's (``client.run``). The ratio cluster/single is printed; on one
2-core machine shared with other jobs the cluster cannot be faster, the figure is its overhead.

``--stages`` times the stages that run in row blocks on the workers after the encoder (issue
#25 items 1-2), each against one process in the same run, on synthetic (N, 8) features: the
isolation-forest scores, the mixture's labels, the projection's kNN extension (the UMAP fit on
the sample, on one worker under ``--cluster``: not timed here), the GP's exact mean and std of every object
(300 labels; the refit stays on the client), and the export's CSV text. It prints each stage's
seconds, the ratio cluster/single and the time of one block.

``--embed-stages`` times ``embed``'s analysis of (N, 128) embeddings (synthetic, rank ~12, as
``bench_survey.py``'s) read from an HDF5 file, as ``embed --embeddings`` runs it: the store built
by ``build_store`` with the default UMAP projection and the SQ8 similarity index, one process
against ``local:2`` in the same run, each in a fresh process. It prints each stage's seconds
(check + covariance, the PCA transform, projection, anomaly, clusters, the similarity index
split into its training and its filling) with the ratio cluster/single, the client's peak
memory through ``build_store`` (not the benchmark's own checks after it, which read the index
back whole) against the single process's, the workers' peaks, and whether the results are equal.

    python benchmarks/bench_cluster.py --n 10000 20000     # sizes as arguments
    python benchmarks/bench_cluster.py --stages --n 1000000
    python benchmarks/bench_cluster.py --embed-stages --n 1000000
    python benchmarks/bench_cluster.py --quick             # smoke test (both)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import write_cutouts, write_encoder  # noqa: E402


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(cutouts: str, run_dir: str, out: str, cluster: str | None, batch: int) -> None:
    """Build one store (single process, or on ``cluster``) and print JSON figures."""
    import torch

    from galexplorer.explore.pipeline import EmbedConfig
    from galexplorer.ssl.embed import embed_with_encoder

    torch.set_num_threads(1)            # the same one thread per process as each worker
    cfg = EmbedConfig(batch_size=batch, device="cpu", projection="pca", similarity_index="none")
    t0 = time.perf_counter()
    workers_mb: list[float] = []
    if cluster:
        from galexplorer.explore.cluster import connect, describe

        with connect(cluster, [cutouts, run_dir]) as client:
            cfg.cluster = describe(client)
            t0 = time.perf_counter()        # the cluster's start-up is reported apart
            embed_with_encoder(cutouts, run_dir, out, cfg, client=client)
            seconds = time.perf_counter() - t0
            workers_mb = sorted(client.run(_rss_mb).values())
    else:
        embed_with_encoder(cutouts, run_dir, out, cfg)
        seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "client_mb": _rss_mb(), "workers_mb": workers_mb}))


STAGES = ("anomaly", "clusters", "knn extension", "GP mean", "GP std", "export CSV")


def _features(n: int) -> np.ndarray:
    """(n, 8) float32: six broad groups and 0.5% rare objects, like a store's PCA features."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (6, 8))
    x = centres[rng.integers(0, 6, n)] + rng.normal(0, 1, (n, 8))
    x[rng.choice(n, max(1, n // 200), replace=False)] += 12.0
    return x.astype(np.float32)


def _has_lsdb() -> bool:
    import importlib.util

    return importlib.util.find_spec("lsdb") is not None


def _warm_up() -> None:
    import faiss  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.mixture  # noqa: F401

    import galexplorer.active.gp  # noqa: F401
    import galexplorer.export  # noqa: F401


@contextlib.contextmanager
def scoring_client(cluster: str | None):
    """The client of ``cluster`` within ``scoring_on``, its workers' imports done (start-up is
    reported apart from the stages); None, for one process, when ``cluster`` is None or ""."""
    if not cluster:
        yield None
        return
    from galexplorer.explore.cluster import connect, scoring_on

    with connect(cluster) as client, scoring_on(client):
        client.run(_warm_up)
        yield client


def _workers_mb(client) -> list[float]:
    """Each worker's peak memory, MB (none for one process)."""
    return [] if client is None else sorted(client.run(_rss_mb).values())


def stages_child(n: int, cluster: str | None, out: str) -> None:
    """Time every block stage once, here or on ``cluster`` (the same calls inside ``scoring_on``)."""
    from galexplorer.active import cluster_scoring
    from galexplorer.active.gp import GaussianProcessRegressor
    from galexplorer.active.ranking import RankedTable
    from galexplorer.explore.anomaly import isolation_forest_scores
    from galexplorer.explore.clustering import bayesian_gmm_clusters
    from galexplorer.explore.projection import knn_extend
    from galexplorer.export import write_ranked

    x = _features(n)
    rng = np.random.default_rng(1)
    fit_rows = np.sort(rng.choice(n, min(n, 20_000), replace=False))
    rest = np.setdiff1d(np.arange(n), fit_rows)
    fit_xy = x[fit_rows, :2] + rng.normal(0, 0.1, (len(fit_rows), 2)).astype(np.float32)
    lab = rng.choice(n, 300, replace=False)
    gp = GaussianProcessRegressor().fit(x[lab], np.clip(x[lab, 0], 0, 5))
    seconds: dict[str, float] = {}
    results: dict[str, np.ndarray] = {}
    with scoring_client(cluster) as client:

        def timed(name, fn):
            t0 = time.perf_counter()
            results[name] = fn()
            seconds[name] = time.perf_counter() - t0

        timed("anomaly", lambda: isolation_forest_scores(x, n_trees=200, seed=0))
        timed("clusters", lambda: bayesian_gmm_clusters(x, 20, fit_sample=20_000))
        timed("knn extension", lambda: knn_extend(x[fit_rows], fit_xy, x, rest, 15))
        if client is None:
            timed("GP mean", lambda: gp.predict_mean(x))
            timed("GP std", lambda: gp.predict_std(x))
        else:
            timed("GP mean", lambda: cluster_scoring.predict_mean_on_cluster(client, gp, x))
            timed("GP std", lambda: cluster_scoring.predict_std_on_cluster(client, gp, x))
        table = RankedTable({"id": np.array([f"obj{i:09d}" for i in range(n)], dtype=object),
                             "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
                             "rank": np.arange(1, n + 1), "score_mean": results["GP mean"],
                             "score_std": results["GP std"], "anomaly": results["anomaly"],
                             "cluster": results["clusters"]})
        timed("export CSV", lambda: write_ranked(table, out, provenance=False))
        mb_like_for_like = _rss_mb()             # the peak through the stages both modes run
        if client is None and _has_lsdb():       # --hats, in this process only, against the CSV
            from galexplorer.export import write_hats

            table.columns["ra"], table.columns["dec"] = (rng.uniform(0, 360, n),
                                                         np.degrees(np.arcsin(rng.uniform(-1, 1, n))))
            timed("export HATS", lambda: write_hats(table, Path(out).with_suffix(".hats")))
        workers_mb = _workers_mb(client)
    digest = {k: float(np.asarray(v, np.float64).sum()) for k, v in results.items() if not k.startswith("export")}
    print(json.dumps({"seconds": seconds, "client_mb": mb_like_for_like, "peak_mb": _rss_mb(), "workers_mb": workers_mb,
                      "digest": digest}))


def run_stages(n: int, workers: int, tmp: Path) -> None:
    res = {}
    for mode in ("", f"local:{workers}"):
        cmd = [sys.executable, __file__, "--stages-child", str(n), mode, str(tmp / f"ranked{mode[-1:]}.csv")]
        run = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    one, two = res[""], res[f"local:{workers}"]
    same = (tmp / "ranked.csv").read_bytes() == (tmp / f"ranked{workers}.csv").read_bytes()
    print(f"N={n} block stages (8 features, 300 labels), single process vs local:{workers}:")
    for name in STAGES:
        a, b = one["seconds"][name], two["seconds"][name]
        rows = {"knn extension": 32768, "export CSV": 65536}.get(name, 65536)
        print(f"  {name:14s} single {a:7.2f} s ({1e6 * a / n:6.2f} µs/object, {a * rows / n:6.2f} s per block of "
              f"{rows}) | cluster {b:7.2f} s | ratio cluster/single {b / a:.2f}")
    total_a = sum(v for k, v in one["seconds"].items() if k in STAGES)
    total_b = sum(two["seconds"].values())
    print(f"  all            single {total_a:7.2f} s | cluster {total_b:7.2f} s | ratio {total_b / total_a:.2f}; "
          f"peak memory: single {one['client_mb']:.0f} MB, cluster client {two['client_mb']:.0f} MB (ratio "
          f"{two['client_mb'] / one['client_mb']:.2f}), workers {', '.join(f'{m:.0f}' for m in two['workers_mb'])} MB")
    if "export HATS" in one["seconds"]:
        h, c = one["seconds"]["export HATS"], one["seconds"]["export CSV"]
        print(f"  export HATS    single {h:7.2f} s ({1e6 * h / n:6.2f} µs/object) | ratio HATS/CSV {h / c:.2f}; "
              f"single's peak with it {one['peak_mb']:.0f} MB (the memory ratio above is without it: like for like)")
    diff = {k: abs(one["digest"][k] - two["digest"][k]) / max(abs(one["digest"][k]), 1e-12) for k in one["digest"]}
    print(f"  same results: CSV byte-identical {same}; relative difference of the column sums "
          + ", ".join(f"{k} {v:.1e}" for k, v in diff.items()))


EMBED_DIM = 128


def write_embeddings(path: Path, n: int, seed: int = 0) -> None:
    """(n, 128) float32 embeddings of rank ~12 + noise (``bench_survey.make_data``'s), in an HDF5
    file, written 2^17 rows at a time."""
    import h5py
    from bench_survey import CHUNK, LATENT, draw_latent

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3.0, (6, LATENT))
    rare_centre = rng.normal(0, 3.0, LATENT) + 6.0
    mix = rng.normal(0, 1 / np.sqrt(LATENT), (LATENT, EMBED_DIM)).astype(np.float32)
    with h5py.File(path, "w") as f:
        emb = f.create_dataset("embeddings", (n, EMBED_DIM), np.float32, chunks=(2048, EMBED_DIM))
        for a in range(0, n, CHUNK):
            m = min(CHUNK, n - a)
            z, _ = draw_latent(m, rng, centres, rare_centre)
            x = rng.standard_normal((m, EMBED_DIM), dtype=np.float32) * np.float32(0.05)
            x += z.astype(np.float32) @ mix
            emb[a:a + m] = x


def embed_child(source: str, out: str, cluster: str | None) -> None:
    """Build a store from the embeddings in ``source`` (one process, or within ``scoring_on``
    of ``cluster``) and print JSON: the stage times, peak memory, and digests of the results."""
    import h5py

    from galexplorer.explore import similarity
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store import EmbeddingStore, ObjectTable

    with h5py.File(source, "r") as f:
        n = int(f["embeddings"].shape[0])
    objects = ObjectTable(np.array([f"g{i}" for i in range(n)], dtype=object), np.zeros(n), np.zeros(n), {})

    def fill(emb):
        with h5py.File(source, "r") as f:
            for a in range(0, n, 1 << 16):
                emb[a:a + (1 << 16)] = f["embeddings"][a:a + (1 << 16)]

    train_s: list[float] = []
    real_train = similarity._train_ann_index

    def timed_train(*a, **kw):
        t0 = time.perf_counter()
        out = real_train(*a, **kw)
        train_s.append(time.perf_counter() - t0)
        return out

    similarity._train_ann_index = timed_train
    cfg = EmbedConfig(similarity_index="sq8", features="none")
    with scoring_client(cluster) as client:
        if client is not None:
            from galexplorer.explore.cluster import describe

            cfg.cluster = describe(client)
        t0 = time.perf_counter()
        report = build_store(out, objects=objects, dim=EMBED_DIM, fill=fill, config=cfg)
        total = time.perf_counter() - t0
        client_mb = _rss_mb()       # build_store's peak, not the checks below (they read the index back whole)
        workers_mb = _workers_mb(client)
        # local:N's scheduler is a process of its own (once the client's): reported beside the client
        scheduler_mb = None if client is None else client.run_on_scheduler(_rss_mb)
    seconds = dict(report.seconds)
    seconds["similarity index (train)"] = train_s[0]
    seconds["similarity index (fill)"] = seconds["similarity index"] - train_s[0]
    seconds["total"] = total
    with EmbeddingStore(out) as s:
        digest = {"pca": float(np.asarray(s.pca, np.float64).sum()),
                  "projection": float(np.asarray(s.file["projection"][:], np.float64).sum()),
                  "anomaly": float(np.asarray(s.score("anomaly"), np.float64).sum()),
                  "cluster": float(np.asarray(s.score("cluster"), np.float64).sum())}
        np.save(out + ".xy.npy", s.file["projection"][:])
    digest["index file"] = _index_cells(similarity.ann_path(out), n, out + ".cells.npy")
    print(json.dumps({"seconds": seconds, "client_mb": client_mb, "workers_mb": workers_mb,
                      "scheduler_mb": scheduler_mb, "digest": digest}))


def _index_cells(path: Path, n: int, cells_out: str) -> str:
    """Save the cell of every row of the IVF index at ``path`` to ``cells_out``; return the
    file's sha1 (first 12 digits)."""
    import hashlib

    import faiss

    index = faiss.read_index(str(path))
    ivf = faiss.extract_index_ivf(index)       # a view into ``index``: keep that alive
    cells = np.full(n, -1, np.int32)
    for c in range(ivf.nlist):
        size = ivf.invlists.list_size(c)
        if size:
            cells[faiss.rev_swig_ptr(ivf.invlists.get_ids(c), size).copy()] = c
    np.save(cells_out, cells)
    return hashlib.sha1(path.read_bytes()).hexdigest()[:12]


EMBED_STAGES = ("embeddings", "check", "pca", "projection", "anomaly", "clustering", "similarity index (train)",
                "similarity index (fill)", "total")


def run_embed_stages(n: int, workers: int, tmp: Path) -> None:
    source = tmp / f"emb{n}.h5"
    subprocess.run([sys.executable, __file__, "--write-embeddings", str(source), str(n)], check=True)
    res = {}
    for mode in ("", f"local:{workers}"):
        cmd = [sys.executable, __file__, "--embed-child", str(source), str(tmp / f"store{mode[-1:]}.h5"), mode]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"the {mode or 'single'} child failed (exit {run.returncode}): {run.stderr[-3000:]}")
        res[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    one, two = res[""], res[f"local:{workers}"]
    print(f"N={n} embed's analysis of ({n}, {EMBED_DIM}) embeddings, single process vs local:{workers} "
          "(PCA transform, projection's extension, anomaly, clusters, the index's encoding on the workers):")
    for name in EMBED_STAGES:
        a, b = one["seconds"].get(name, 0.0), two["seconds"].get(name, 0.0)
        print(f"  {name:26s} single {a:7.2f} s | cluster {b:7.2f} s | ratio cluster/single "
              f"{b / a if a else float('nan'):.2f}")
    print(f"  peak memory through build_store: single {one['client_mb']:.0f} MB, cluster client {two['client_mb']:.0f} MB (ratio "
          f"{two['client_mb'] / one['client_mb']:.2f}), workers {', '.join(f'{m:.0f}' for m in two['workers_mb'])} MB"
          + (f", scheduler {two['scheduler_mb']:.0f} MB" if two.get("scheduler_mb") else ""))
    print("  same results: " + ", ".join(f"{k} {one['digest'][k] == two['digest'][k]}" for k in one["digest"]))
    # faiss assigns a row that lies within rounding of two cells by its BLAS partition (the
    # threads, the block): such rows may land in the other cell, as between one process's runs
    # with one and with two threads
    cells = [np.load(tmp / f"store{m[-1:]}.h5.cells.npy") for m in ("", f"local:{workers}")]
    moved = int(np.sum(cells[0] != cells[1]))
    print(f"  similarity index: {moved} of {n} rows ({moved / n:.2e}) in another cell (ties within rounding)")
    xy = [np.load(tmp / f"store{m[-1:]}.h5.xy.npy") for m in ("", f"local:{workers}")]
    off = np.abs(xy[0] - xy[1]).max(axis=1)
    span = float(np.ptp(xy[0], axis=0).max())
    # the acceptance for the layout (issue #25): trustworthiness within 0.01, on 5 000 evenly spaced rows
    import h5py
    from sklearn.manifold import trustworthiness

    ev = np.unique(np.linspace(0, n - 1, min(n, 5000)).astype(np.int64))
    with h5py.File(tmp / "store.h5", "r") as f:
        feats = f["pca"][ev]
    tw = [trustworthiness(feats, layout[ev], n_neighbors=15) for layout in xy]
    print(f"  projection: {int(np.sum(off > 0))} of {n} rows placed elsewhere, the farthest by {off.max():.2e} "
          f"({off.max() / span:.1e} of the layout's extent); trustworthiness (15 neighbours, {len(ev)} rows) "
          f"single {tw[0]:.4f}, cluster {tw[1]:.4f}, difference {abs(tw[0] - tw[1]):.4f} (acceptance <= 0.01)")


def run_mode(cutouts: Path, run_dir: Path, out: Path, cluster: str | None, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", str(cutouts), str(run_dir), str(out), cluster or "", str(batch)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000], help="objects per run")
    ap.add_argument("--size", type=int, default=32, help="stamp side (and crop), px")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small sizes for the smoke test")
    ap.add_argument("--stages", action="store_true", help="time the block stages after the encoder instead")
    ap.add_argument("--embed-stages", action="store_true",
                    help="time embed's analysis stages of (N, 128) embeddings instead")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--stages-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--embed-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--write-embeddings", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_embeddings:
        write_embeddings(Path(args.write_embeddings[0]), int(args.write_embeddings[1]))
        return
    if args.embed_child:
        s, o, cl = args.embed_child
        embed_child(s, o, cl or None)
        return
    if args.child:
        c, r, o, cl, b = args.child
        child(c, r, o, cl or None, int(b))
        return
    if args.stages_child:
        n, cl, o = args.stages_child
        stages_child(int(n), cl or None, o)
        return
    sizes = [256] if args.quick else args.n
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.embed_stages:
            for n in ([3000] if args.quick else args.n):
                run_embed_stages(n, args.workers, tmp)
            return
        if args.stages or args.quick:
            for n in ([8_000] if args.quick else args.n):
                run_stages(n, args.workers, tmp)
            if args.stages:
                return
        for n in sizes:
            cut, run = tmp / f"cut{n}.h5", tmp / f"run{n}"
            write_cutouts(cut, n, args.size)
            write_encoder(run, cut, args.size)
            one = run_mode(cut, run, tmp / "one.h5", None, args.batch)
            two = run_mode(cut, run, tmp / "two.h5", f"local:{args.workers}", args.batch)
            print(f"N={n} ({args.size} px, ResNet-18 on CPU): single {one['seconds']:.1f} s "
                  f"({n / one['seconds']:.0f} img/s), peak {one['client_mb']:.0f} MB | "
                  f"local:{args.workers} {two['seconds']:.1f} s ({n / two['seconds']:.0f} img/s), client peak "
                  f"{two['client_mb']:.0f} MB, workers {', '.join(f'{m:.0f}' for m in two['workers_mb'])} MB | "
                  f"time ratio cluster/single {two['seconds'] / one['seconds']:.2f}, client memory ratio "
                  f"{two['client_mb'] / one['client_mb']:.2f}")
            for f in (tmp / "one.h5", tmp / "two.h5"):
                f.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
