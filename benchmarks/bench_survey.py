"""Survey scale: every step of galexplorer on N synthetic objects, beside the 10^6 run of the same
invocation (issue 14).

For each size (the reference size first, then N) the script writes synthetic low-rank 128-d
embeddings (a few clusters, a continuum and a rare population of 0.1%) as ``.npy`` and a
catalogue CSV (id, ra, dec, mag, rare), then runs, each in its own process, timed, with its peak
memory (``ru_maxrss`` of that process):

* ``galexplorer embed --embeddings emb.npy --no-cutouts --catalog cat.csv`` (and the stage
  times it prints);
* ``galexplorer open --screenshot`` (open to first paint, offscreen Qt);
* ``galexplorer export`` CSV of all objects, and ``--top 1000``;

and in this process: a GP refit (500 labels on the store's standardised PCA features, batch of
10 by expected improvement, as bench_active.py), similarity search (median query time over 20
queries; recall@20 against an exact scan of the store's embeddings), and the trustworthiness
(sklearn.manifold) of the projection's kNN extension against ``umap.transform`` on
``--tw-n`` objects.

    nice -n 5 python benchmarks/bench_survey.py --n 1000000            # one size
    nice -n 5 python benchmarks/bench_survey.py --n 10000000           # 10^7 beside 10^6
    python benchmarks/bench_survey.py --quick                          # 10^4 (smoke test)
    # after changing the explorer, GP or export: rerun only those on the kept 10^6 and 10^7 stores
    nice -n 5 python benchmarks/bench_survey.py --n 10000000 --workdir DIR --reuse --stages open,refit,similarity,export

With ``--workdir`` each size's figures are also saved in ``DIR/nN/results.json``. ``--reuse``
keeps the data, the store and those figures of an earlier run in ``DIR`` and reruns only the
``--stages`` named (the data is made, and ``embed`` run, only where missing); the table then
shows the earlier figures of the stages not rerun.

Files go to ``--workdir`` (default: a temporary folder, removed at the end; 10^7 needs ~12 GB).
Targets at 10^7 (2 cores): embed <= 30 min, peak <= 8 GB; open <= 10 s; refit <= 5 s; similarity
<= 100 ms with recall@20 >= 0.95; export CSV <= 2 min. At 10^6: embed <= 3 min.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIM = 128
LATENT = 12
RARE = 0.001
CHUNK = 1 << 17


def draw_latent(m: int, rng: np.random.Generator, centres: np.ndarray,
                rare_centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, LATENT) latent positions of the synthetic survey and the (m,) rare mask: 60% in six
    clusters about ``centres``, a fraction RARE in a tight group about ``rare_centre``, the rest
    a continuum."""
    kind = rng.random(m)
    rare = kind < RARE
    clustered = (kind >= RARE) & (kind < 0.6)
    z = rng.normal(0, 1.0, (m, LATENT))
    z[clustered] = centres[rng.integers(0, 6, clustered.sum())] + rng.normal(0, 0.5, (clustered.sum(), LATENT))
    z[rare] = rare_centre + rng.normal(0, 0.3, (rare.sum(), LATENT))
    return z, rare


def make_data(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """(n, 128) float32 embeddings of rank ~12 + noise, and a catalogue; returns both paths."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3.0, (6, LATENT))
    rare_centre = rng.normal(0, 3.0, LATENT) + 6.0
    mix = rng.normal(0, 1 / np.sqrt(LATENT), (LATENT, DIM)).astype(np.float32)
    emb_path, cat_path = folder / "emb.npy", folder / "cat.csv"
    emb = np.lib.format.open_memmap(emb_path, mode="w+", dtype=np.float32, shape=(n, DIM))
    with open(cat_path, "w") as cat:
        cat.write("id,ra,dec,mag,rare\n")
        for a in range(0, n, CHUNK):
            m = min(CHUNK, n - a)
            z, rare = draw_latent(m, rng, centres, rare_centre)
            noise = rng.standard_normal((m, DIM), dtype=np.float32)   # float32 draws: half the time of float64
            noise *= np.float32(0.05)
            noise += z.astype(np.float32) @ mix
            emb[a:a + m] = noise
            ids = np.arange(a, a + m)
            ra, dec = rng.uniform(0, 360, m), rng.uniform(-60, 60, m)
            mag = rng.uniform(17, 24, m)
            cat.write("".join(f"g{i},{r:.6f},{d:.6f},{g:.3f},{int(f)}\n"
                              for i, r, d, g, f in zip(ids, ra, dec, mag, rare)))
    emb.flush()
    del emb
    return emb_path, cat_path


#: runs a command and writes its peak RSS (KB) and CPU seconds to a file. The benchmark's own
#: process holds gigabytes by the time it runs export and open, and Linux hands a child the
#: parent's RSS high-water mark through fork/exec: measured from this small launcher instead,
#: the peak is the command's own.
LAUNCHER = ("import os, subprocess, sys\n"
            "p = subprocess.Popen(sys.argv[2:])\n"
            "_, st, ru = os.wait4(p.pid, 0)\n"
            "open(sys.argv[1], 'w').write(f'{ru.ru_maxrss} {ru.ru_utime + ru.ru_stime}')\n"
            "sys.exit(os.waitstatus_to_exitcode(st))\n")


def run_timed(cmd: list[str], env: dict | None = None, usage_out: dict | None = None) -> tuple[float, float, str]:
    """Run a command: (wall seconds, peak RSS in GB of that process, its stdout + stderr).

    ``usage_out``: filled with ``cpu``, the process's user + system CPU seconds (on cores shared
    with other jobs the wall time grows with their load; the CPU time much less)."""
    with tempfile.NamedTemporaryFile("r", suffix=".usage") as f:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", LAUNCHER, f.name, *cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})})
        wall = time.perf_counter() - t0
        maxrss_kb, cpu = (float(v) for v in (f.read().split() or ["nan", "nan"]))
    if usage_out is not None:
        usage_out["cpu"] = cpu
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return wall, maxrss_kb / 2**20, proc.stdout


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "galexplorer", *args]


def refit_time(store_path: Path, cat_rare: np.ndarray, repeats: int = 3) -> dict:
    # What the user waits for: the explorer's / simulate's refit, ActiveLoop.fit with the default
    # configuration (scorer gp-anomaly on the store's anomaly score, the loop's learning features:
    # the PCA components keeping 95% of the variance, standardised), 500 labels, batch of 10 by
    # EI. Above PREFILTER_MIN_ROWS objects that is the candidate pre-filter (active/prefilter.py).
    # (This used to time a plain GP on every PCA column: its long fitted length scale sent the
    # mean to float64, 5x the float32 pass: ~30 s at 10^6, see docs/scaling.md.)
    from galexplorer.active.loop import ActiveLoop, LoopConfig
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_path) as s:
        loop = ActiveLoop(s, LoopConfig())
        n = loop.n
        rng = np.random.default_rng(0)
        rare_rows = np.flatnonzero(cat_rare)
        lab = np.unique(np.concatenate([rng.choice(n, min(n, 490), replace=False),
                                        rng.choice(rare_rows, min(10, len(rare_rows)), replace=False)]))
        y = np.where(cat_rare[lab], 5.0, rng.integers(0, 2, len(lab))).astype(np.float32)
        loop.fit(lab[:50], y[:50])                                  # warm up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = loop.fit(lab, y)
            times.append(time.perf_counter() - t0)
    hits = int(cat_rare[res.next_batch].sum())
    return {"refit": statistics.median(times), "batch_rare": hits}


def exact_top_k(V: np.ndarray, qs: np.ndarray, k: int) -> tuple[dict, list[float]]:
    """The reference search: each query row's k most similar other rows by a NumPy scan of the
    unit rows ``V`` (as sets), and the seconds each scan took."""
    truth, times = {}, []
    for q in qs:
        t0 = time.perf_counter()
        sims = V @ V[q]
        sims[q] = -np.inf
        truth[q] = set(np.argpartition(-sims, k)[:k].tolist())
        times.append(time.perf_counter() - t0)
    return truth, times


def similarity(store_path: Path, n_queries: int = 20, k: int = 20, settings: tuple[tuple[int, int], ...] = ()) -> dict:
    """Median query time and recall@20 against an exact scan, for the search the explorer uses;
    ``settings``: also (nprobe, shortlist) pairs of the faiss index, printed one line each."""
    from galexplorer.explore.similarity import ApproximateIndex, index_for_store, normalise_rows
    from galexplorer.store import EmbeddingStore

    s = EmbeddingStore(store_path)
    t0 = time.perf_counter()
    index = index_for_store(s)   # what the explorer loads: the faiss file embed wrote, else exact
    t_build = time.perf_counter() - t0
    V = normalise_rows(s.embeddings)
    qs = np.random.default_rng(1).choice(index.n, n_queries, replace=False)
    truth, exact_t = exact_top_k(V, qs, k)
    del V

    def measure(search) -> tuple[float, float]:
        search.query(int((qs[0] + 1) % index.n), k)   # warm-up on another object: the first query maps the index
        times, recall = [], []
        for q in qs:
            t0 = time.perf_counter()
            got, _ = search.query(int(q), k)
            times.append(time.perf_counter() - t0)
            recall.append(len(truth[q] & set(got.tolist())) / k)
        return statistics.median(times), float(np.mean(recall))

    query, recall = measure(index)
    print(f"  similarity: {type(index).__name__}: median {1000 * query:.1f} ms, recall@20 {recall:.3f}", flush=True)
    if isinstance(index, ApproximateIndex):
        for nprobe, shortlist in settings:
            t, r = measure(ApproximateIndex(index.index, s.embeddings, nprobe=nprobe, shortlist=shortlist))
            print(f"    nprobe {nprobe:4d}, shortlist {shortlist:2d}·k: median {1000 * t:6.1f} ms, recall@20 {r:.3f}, "
                  f"time {t / query:.2f}x the default's", flush=True)
    s.close()
    return {"sim_build": t_build, "sim_query": query, "sim_recall": recall, "sim_exact": statistics.median(exact_t)}


def trustworthiness_check(n: int, fit: int) -> dict:
    """Trustworthiness of the kNN extension and of umap.transform, same fit, on the placed rows."""
    from sklearn.manifold import trustworthiness

    from galexplorer.explore.projection import project_2d

    folder = Path(tempfile.mkdtemp(prefix="galexplorer-tw-"))
    try:
        emb, _ = make_data(folder, n, seed=3)
        x = np.load(emb)
        from galexplorer.explore.pca import fit_pca

        feats, _ = fit_pca(x, 0.95)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    from galexplorer.explore.projection import knn_extend

    out = {}
    fit_rows = np.sort(np.random.default_rng(0).choice(n, fit, replace=False))   # project_2d's sample (seed 0)
    rest = np.setdiff1d(np.arange(n), fit_rows)
    ev = np.random.default_rng(2).choice(rest, min(len(rest), 5000), replace=False)
    for ext in ("knn", "transform"):
        t0 = time.perf_counter()
        xy = project_2d(feats, fit_sample=fit, extend=ext)
        out[f"{ext}_s"] = time.perf_counter() - t0
        out[ext] = trustworthiness(feats[ev], xy[ev], n_neighbors=15)
        if ext == "knn":   # the placement alone, without the UMAP fit both share
            t0 = time.perf_counter()
            knn_extend(feats[fit_rows], xy[fit_rows], feats, rest, 15)
            out["knn_alone_s"] = time.perf_counter() - t0
    return out


def fit_sample_sweep(n: int, fits: tuple[tuple[int, int | None], ...] = ((20000, None), (30000, None),
                                                                          (50000, 100), (50000, None))) -> list:
    """The projection at N objects for several UMAP fit samples (and epochs): the fit's time with
    the faiss graph, the kNN extension's, and the trustworthiness of the whole layout (15
    neighbours, 5 000 placed objects); then, on the smallest sample, UMAP's own NN-descent graph
    in place of faiss's (the reference; its time includes numba compiling NN-descent)."""
    import umap
    from sklearn.manifold import trustworthiness

    from galexplorer.explore.ann import build_index
    from galexplorer.explore.projection import cache_umap_compilation, knn_extend, sample_knn_graph

    cache_umap_compilation()
    folder = Path(tempfile.mkdtemp(prefix="galexplorer-sweep-"))
    try:
        emb, _ = make_data(folder, n)
        from galexplorer.explore.pca import fit_pca

        feats, _ = fit_pca(np.load(emb, mmap_mode="r"), 0.95)
        feats = np.ascontiguousarray(feats, dtype=np.float32)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    ev = np.random.default_rng(2).choice(n, 5000, replace=False)
    rows_out = []
    for i, (fit, epochs) in enumerate(fits + ((fits[0][0], None),)):
        graph = "umap" if i == len(fits) else "faiss"
        rows = np.sort(np.random.default_rng(0).choice(n, fit, replace=False))
        fx = feats[rows]
        t0 = time.perf_counter()
        index = build_index(fx, "l2")
        pre = sample_knn_graph(index, fx, 15) if graph == "faiss" else (None, None, None)
        reducer = umap.UMAP(n_neighbors=15, min_dist=0.01, random_state=0, n_jobs=1, low_memory=True,
                            n_epochs=epochs, precomputed_knn=pre)
        xy = np.empty((n, 2), np.float32)
        xy[rows] = reducer.fit_transform(fx)
        t_fit = time.perf_counter() - t0
        rest = np.setdiff1d(np.arange(n), rows)
        t0 = time.perf_counter()
        xy[rest] = knn_extend(fx, xy[rows], feats, rest, 15, index=index)
        t_ext = time.perf_counter() - t0
        tw = trustworthiness(feats[ev], xy[ev], n_neighbors=15)
        rows_out.append((fit, epochs or (200 if fit > 10000 else 500), graph, t_fit, t_ext, tw))   # umap-learn's default epochs
        print(f"  fit {fit:,} epochs {rows_out[-1][1]} graph {graph}: fit {t_fit:.1f} s, extension {t_ext:.1f} s, "
              f"trustworthiness {tw:.4f}", flush=True)
    return rows_out


STAGES = ("embed", "similarity", "export", "open", "refit")


def run_size(n: int, workdir: Path, keep: bool, embed_options: tuple[str, ...] = (),
             stages: tuple[str, ...] = STAGES, reuse: bool = False,
             sim_settings: tuple[tuple[int, int], ...] = ()) -> dict:
    """Run the ``stages`` on N objects in ``workdir/nN``; with ``reuse``, keep what an earlier run
    left there (data, store, figures in ``results.json``) and make data / run embed only if missing."""
    folder = workdir / f"n{n}"
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / "results.json"
    r: dict = {"n": n, "stages": {}}
    if reuse and saved.exists():
        r.update(json.loads(saved.read_text()))
    emb, cat, store = folder / "emb.npy", folder / "cat.csv", folder / "store.h5"

    def save() -> None:
        if keep:
            saved.write_text(json.dumps(r, indent=1))

    if reuse and emb.exists() and cat.exists() and np.load(emb, mmap_mode="r").shape == (n, DIM):
        print(f"  N={n:,} reusing the data in {folder}", flush=True)
    else:
        t0 = time.perf_counter()
        make_data(folder, n)
        r["data"] = time.perf_counter() - t0
        store.unlink(missing_ok=True)   # a store of other data
    if "embed" in stages or not store.exists():
        usage: dict = {}
        wall, peak, out = run_timed(cli("embed", "--embeddings", str(emb), "--no-cutouts", "--catalog", str(cat),
                                        "-o", str(store), *embed_options), usage_out=usage)
        r["embed"], r["embed_peak"], r["embed_cpu"] = wall, peak, usage.get("cpu", float("nan"))
        r["load"] = os.getloadavg()[1]
        line = next((ln for ln in out.splitlines() if ln.startswith("time: ")), "")
        print(f"  N={n:,} embed {wall:.1f} s, peak {peak:.2f} GB: {line}", flush=True)
        r["stages"] = {k: float(v) for k, v in re.findall(r"(\w[\w ]*?) ([\d.]+) s", line[6:])}
        save()
    else:
        print(f"  N={n:,} reusing the store {store}", flush=True)
    if "similarity" in stages:
        r.update(similarity(store, settings=sim_settings))
        save()
    if "export" in stages:
        wall, peak, _ = run_timed(cli("export", str(store), "-o", str(folder / "all.csv")))
        r["export"], r["export_peak"] = wall, peak
        print(f"  N={n:,} export {wall:.1f} s, peak {peak:.2f} GB", flush=True)
        wall, peak, _ = run_timed(cli("export", str(store), "-o", str(folder / "top.csv"), "--top", "1000"))
        r["export_top"], r["export_top_peak"] = wall, peak
        (folder / "all.csv").unlink(missing_ok=True)   # ~1 GB at 10^7
        save()
    if "open" in stages:
        env = {"QT_QPA_PLATFORM": "offscreen"}
        wall, peak, _ = run_timed(cli("open", str(store), "--screenshot", str(folder / "shot.png")), env)
        r["open"], r["open_peak"] = wall, peak
        r.update(hover_latency(store))
        print(f"  N={n:,} open {wall:.1f} s, peak {peak:.2f} GB, hover {r['hover_ms']:.1f} ms", flush=True)
        save()
    if "refit" in stages:
        rare = np.loadtxt(cat, delimiter=",", skiprows=1, usecols=4, dtype=np.int8).astype(bool)
        r.update(refit_time(store, rare))
        save()
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
    return r


def hover_latency(store_path: Path, n_hover: int = 100) -> dict:
    """Hover -> card on screen in a real (offscreen) window, median of ``n_hover`` objects in view:
    bench_explorer_scale.py's measure, in a child process."""
    import json

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_explorer_scale.py"), "--child",
                          str(store_path), str(store_path.with_suffix(".hover.png")), str(time.time()),
                          str(n_hover), "hover"], capture_output=True, text=True, check=True,
                         env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
    return {"hover_ms": json.loads(line[len("RESULT "):])["hover_ms"]}


def table(runs: list[dict]) -> str:
    ref = runs[0]
    rows = [("data (synthetic, not galexplorer)", "data", "s")]
    stages = list(dict.fromkeys(k for r in runs for k in r["stages"]))
    rows += [(f"  embed stage: {k}", ("stages", k), "s") for k in stages]
    rows += [("embed (total, process)", "embed", "s"), ("embed CPU time (user + system)", "embed_cpu", "s"),
             ("  load average (5 min) at its end", "load", ""), ("embed peak memory", "embed_peak", "GB"),
             ("open --screenshot (to first paint)", "open", "s"), ("open peak memory", "open_peak", "GB"),
             ("hover -> card on screen (median of 100)", "hover_ms", "ms"),
             ("GP refit + batch of 10 (median of 3)", "refit", "s"), ("  rare objects in that batch", "batch_rare", ""),
             ("similarity index load/build", "sim_build", "s"), ("similarity query (median of 20)", "sim_query", "s"),
             ("  exact scan (reference, in memory)", "sim_exact", "s"), ("  recall@20 vs exact", "sim_recall", ""),
             ("export CSV (all)", "export", "s"), ("export peak memory", "export_peak", "GB"),
             ("export CSV --top 1000", "export_top", "s")]

    def get(r, key):
        return r["stages"].get(key[1], float("nan")) if isinstance(key, tuple) else r.get(key, float("nan"))

    head = f"{'step':40s}" + "".join(f"{'N=' + format(r['n'], ','):>16s}" for r in runs)
    if len(runs) > 1:
        head += f"{'growth':>10s}"
    lines = [head, "-" * len(head)]
    for label, key, unit in rows:
        vals = [get(r, key) for r in runs]
        cells = "".join(f"{v:>13.3f} {unit:2s}" if unit else f"{v:>16.3f}" for v in vals)
        if len(runs) > 1:
            g = vals[-1] / vals[0] if vals[0] else float("nan")
            cells += f"{g:>9.1f}x" if unit else ""
        lines.append(f"{label:40s}{cells}")
    lines.append(f"growth = N={runs[-1]['n']:,} / N={ref['n']:,} ({runs[-1]['n'] / ref['n']:.0f}x the objects)")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="objects (default 10^6)")
    p.add_argument("--ref-n", type=int, default=1_000_000, help="the reference size run first (default 10^6)")
    p.add_argument("--tw-n", type=int, default=100_000, help="objects of the trustworthiness check (0: skip)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N = 10^4 alone, PCA projection, no trustworthiness check unless --tw-n is given")
    p.add_argument("--tw-only", action="store_true", help="only the trustworthiness check")
    p.add_argument("--sim-settings", default="",
                   help="also these faiss search settings, NPROBExSHORTLIST comma-separated (e.g. 32x4,64x8)")
    p.add_argument("--sweep", action="store_true",
                   help="only the projection's fit-sample sweep at --n objects (time and trustworthiness)")
    p.add_argument("--workdir", help="keep the files here (default: a temporary folder, removed)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the data, store and figures an earlier run left in --workdir; rerun only --stages")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated stages to run (default: all of {','.join(STAGES)})")
    args = p.parse_args(argv)
    stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
    if set(stages) - set(STAGES):
        p.error(f"unknown stages {sorted(set(stages) - set(STAGES))}; choose from {','.join(STAGES)}")
    sim_settings = tuple(tuple(int(v) for v in item.split("x")) for item in args.sim_settings.split(",") if item)
    if args.reuse and not args.workdir:
        p.error("--reuse needs --workdir (the folder of the earlier run)")
    if args.quick:
        args.n, args.ref_n = 10_000, 10_000
        args.tw_n = 0 if "--tw-n" not in (argv if argv is not None else sys.argv) else args.tw_n
    warnings.simplefilter("ignore")
    if args.sweep:
        out = fit_sample_sweep(args.n)
        ref = out[-2]
        print(f"\nprojection of {args.n:,} objects: fit sample, UMAP fit (with its graph), kNN extension, "
              f"trustworthiness; ratio of time to the {ref[0]:,}/{ref[1]} faiss row")
        for fit, epochs, graph, t_fit, t_ext, tw in out:
            print(f"  {fit:>7,} {epochs:>4d} epochs {graph:5s} graph  fit {t_fit:6.1f} s  extension {t_ext:6.1f} s  "
                  f"trustworthiness {tw:.4f}  time {(t_fit + t_ext) / (ref[3] + ref[4]):.2f}x")
        return 0
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="galexplorer-survey-"))
    sizes = [] if args.tw_only else [args.ref_n, args.n] if args.ref_n != args.n else [args.n]
    runs = []
    try:
        for n in sizes:
            # --quick: the PCA projection (UMAP's numba compilation alone takes minutes on busy cores)
            runs.append(run_size(n, workdir, keep=bool(args.workdir),
                                 embed_options=("--projection", "pca") if args.quick else (),
                                 stages=stages, reuse=args.reuse, sim_settings=sim_settings))
            print(f"[N={n:,} done]", flush=True)
            print(table(runs), flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.tw_n:
        fit = max(args.tw_n // 10, 1000)
        tw = trustworthiness_check(args.tw_n, fit)
        print(f"\ntrustworthiness (15 neighbours, 5000 placed rows) of {args.tw_n:,} objects, UMAP fit on {fit:,}:"
              f"\n  kNN extension   {tw['knn']:.4f}  (UMAP fit + placement {tw['knn_s']:.1f} s, the first "
              f"call also compiles UMAP; placement alone {tw['knn_alone_s']:.1f} s)"
              f"\n  umap.transform  {tw['transform']:.4f}  (UMAP fit + transform {tw['transform_s']:.1f} s, reference)"
              f"\n  difference      {tw['knn'] - tw['transform']:+.4f} (target: within 0.02)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
