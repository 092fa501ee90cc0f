"""How the loop sees the embedding: the default beside a wider view, 32 components each to unit variance (#22).

By default the loop learns on the principal components of the embedding that explain 95% of its
variance, scaled with one factor (``LoopConfig()``: ``pca_components=None,
feature_scaling="global"``). For the networks of the benchmark domains that is 1-5 components (size
and flux); the shape information the rare classes differ by lies further down the spectrum. The
**wide** view: at most 32 leading components, those above the embedding's noise floor, each scaled
to unit variance (``pca_components=32, feature_scaling="per-component"``; ``rank``/``simulate
--pca-components 32 --feature-scaling per-component``). It is not the default: see
bench_discovery.py ``--loop-features wide`` and docs/active-learning.md.

For each domain (``xdf``, ``radio``, ``optical``, ``lens``) and seed: a cutouts file with the
domain's own ``oracle`` column (5 for the rare class, 0-1 for the common ones), the default encoder
trained on it (``TrainConfig()`` at the benchmark's CPU sizes, ``--epochs``), ``galexplorer embed``
with its defaults (8 views; it also writes the raw-pixel PCA and the morphology features), and a
second store of the **random network** (the same backbone untrained, its embeddings averaged over
the same views, ``embed --embeddings``). Then ``simulate``'s default loop (gp-anomaly, ei, 200
labels in batches of 10) on:

* ``narrow auto`` (``--representation auto``, the default representation, on the default view,
  without the wide candidates: the loop's default before ``auto_wide``), ``auto + wide
  candidates`` (``auto_wide=True``: once the labels can compare the sets, ``auto`` also weighs
  ``wide`` and ``combined-wide``), ``wide auto`` (every set built on the wide view), ``widen after 1
  find`` / ``3 finds`` (``widen_after``: the default view until that many finds, then the wide view
  as the set kept by default);
* ``narrow embedding`` and ``wide embedding``: the embedding alone, what the loop has on data
  where morphology does not help;
* the references, in the same run: the loop on the raw-pixel PCA (``pixels``), on the random
  network's store (wide view, auto and embedding), and random order.

Printed per run: found@50/100/end (rare objects among the first 50, 100 and all ``--budget``
labels) and recall@100 of the final ranking; then the means over seeds with the ratios to
``narrow auto`` and of ``wide auto`` to raw pixels, to the random network and to random order.

    python benchmarks/bench_loop_features.py --quick            # ~1 min: radio, 1 seed, 400 objects
    python benchmarks/bench_loop_features.py --seeds 0 1 2 3 4  # 4 domains x 5 seeds, 1500 objects (~45 min)

``--loops NAME ...`` runs only those loops (and ``narrow auto``, the reference).
``--work DIR`` keeps the cutouts, runs and stores there and reuses those already built by this
script (same recipe), so a run can be extended by seeds.

``--start-cost N`` measures instead what the wide view costs when the loop starts (the explorer's
model process, ``rank``, ``simulate``): a store of N objects with 512-d embeddings (rank 24, a
decaying spectrum) whose PCA kept the components for 95% of the variance, as ``embed`` writes it,
and the seconds of ``learning_features`` with the wide view (the spectrum from at most 10^5 rows,
then a PCA of the embeddings streamed from the file) beside the default, reading the store's PCA
(the reference), median of 3.

    python benchmarks/bench_loop_features.py --start-cost 1000000   # ~2 GB of embeddings on disk
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_choose_representation import write_domain  # noqa: E402
from bench_representation import COMMON, encoder_embeddings  # noqa: E402

NARROW = {"auto_wide": False}                          # the default view, auto without the wide candidates
WIDE = {"pca_components": 32, "feature_scaling": "per-component", "auto_wide": False}
#: (label, store, loop options, representation) of every loop run on a domain and seed
LOOPS = (("narrow auto", "trained", NARROW, "auto"),
         ("auto + wide candidates", "trained", {"auto_wide": True}, "auto"),
         ("wide auto", "trained", WIDE, "auto"),
         ("widen after 1 find", "trained", {"widen_after": 1}, "auto"),
         ("widen after 3 finds", "trained", {"widen_after": 3}, "auto"),
         ("narrow embedding", "trained", NARROW, "embedding"), ("wide embedding", "trained", WIDE, "embedding"),
         ("raw pixels", "trained", NARROW, "pixels"),
         ("random net auto", "random", WIDE, "auto"), ("random net embedding", "random", WIDE, "embedding"))


def build(domain: str, seed: int, args, work: Path) -> tuple[Path, Path, int]:
    """The trained network's and the random network's stores of a domain and seed (reused when built)."""
    from galexplorer.cli import main as cli
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import train
    from galexplorer.store import CutoutStore

    tag = f"{domain}-{seed}-n{args.n}-e{args.epochs}"
    cut, run_dir = work / f"{tag}.h5", work / f"run-{tag}"
    trained, random_net = work / f"s-{tag}.h5", work / f"r-{tag}.h5"
    quiet = (contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()))
    if not trained.exists():
        write_domain(domain, args.n, seed, cut)
        with quiet[0], quiet[1]:
            train(cut, run_dir, TrainConfig.from_dict({**COMMON, "seed": seed, "epochs": args.epochs}))
            assert cli(["-q", "embed", str(cut), "--run", str(run_dir), "-o", str(trained), "--device", "cpu",
                        "--seed", str(seed)]) == 0
    if not random_net.exists():
        from galexplorer.explore.pipeline import EmbedConfig
        from galexplorer.ssl.backbones import resolve_stem

        stem = resolve_stem(TrainConfig.from_dict(COMMON).stem, COMMON["image_size"], "cpu")
        with CutoutStore(cut) as c:
            stamps = c.images[:]
        emb = encoder_embeddings(cut, None, {**COMMON, "stem": stem}, stamps, EmbedConfig().views)
        np.save(work / f"r-{tag}.npy", emb)
        with quiet[0], quiet[1]:
            assert cli(["-q", "embed", str(cut), "--embeddings", str(work / f"r-{tag}.npy"), "-o",
                        str(random_net), "--seed", str(seed)]) == 0
    with CutoutStore(cut) as c:
        return trained, random_net, int(np.sum(c.column("oracle") >= 3))


def loops(stores: dict[str, Path], seed: int, budget: int, only: list[str] | None = None) -> dict[str, dict[str, float]]:
    from galexplorer.active.config import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    out = {}
    for label, which, options, rep in LOOPS:
        if only and label not in only and label != "narrow auto":
            continue
        with EmbeddingStore(stores[which]) as s:
            budget = min(budget, s.n)
            cfg = SimulateConfig(truth="oracle", budget=budget, batch=10, seeds=20, remaining=False,
                                 loop=LoopConfig(seed=seed, representation=rep, **options))
            t0 = time.perf_counter()
            r = simulate(s, cfg)
        found = dict((int(a), int(b)) for a, b in r.history)
        out[label] = {"f50": found.get(50, np.nan), "f100": found.get(100, np.nan), "f200": int(r.history[-1][1]),
                      "recall100": float(r.loop.recall[100]), "seconds": time.perf_counter() - t0,
                      "features": r.result.info.get("features", {}).get("n_features", np.nan),
                      "used": r.result.representation}
        if label == "narrow auto":
            out["random order"] = {"f50": float(r.random.curve[min(50, budget) - 1]),
                                   "f100": float(r.random.curve[min(100, budget) - 1]),
                                   "f200": float(r.random.curve[budget - 1]), "recall100": float("nan")}
    return out


def start_cost(n: int, work: Path, dim: int = 512, repeats: int = 3) -> None:
    """Seconds of the loop's features at start: 32 components computed again vs the store's PCA."""
    from galexplorer.active.features import learning_features
    from galexplorer.explore.pca import fit_pca_model
    from galexplorer.store import EmbeddingStore, EmbeddingStoreWriter, ObjectTable

    path = work / f"start-{n}.h5"
    rng = np.random.default_rng(0)
    mix = rng.normal(0, 1, (24, dim)).astype(np.float32) * np.geomspace(3, 0.05, 24, dtype=np.float32)[:, None]
    t0 = time.perf_counter()
    ids = np.array([f"o{i}" for i in range(n)], dtype=object)
    with EmbeddingStoreWriter(path, ObjectTable(ids, np.zeros(n), np.zeros(n), {})) as w:
        d = w.create("embeddings", (n, dim), np.float32)
        chunk = 1 << 16
        for a in range(0, n, chunk):
            m = min(chunk, n - a)
            d[a:a + m] = rng.standard_normal((m, 24), dtype=np.float32) @ mix + \
                0.01 * rng.standard_normal((m, dim), dtype=np.float32)
        model = fit_pca_model(d, variance=0.95)          # what embed keeps
        pca = np.concatenate([model.transform(d[a:a + chunk]) for a in range(0, n, chunk)])
        w.write("pca", pca, attrs={"explained_variance_ratio": np.asarray(model.explained_variance_ratio)})
    print(f"start cost: store of {n:,} x {dim} embeddings built in {time.perf_counter() - t0:.0f} s", flush=True)
    ref_name = f"the store's pca ({model.n_components} components to 95%, one scale)"
    times: dict[str, list[float]] = {ref_name: [], "32 components, per component": []}
    with EmbeddingStore(path) as s:
        for _ in range(repeats):
            t0 = time.perf_counter()
            learning_features(s, 0.95, "global")
            times[ref_name].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            f = learning_features(s, 0.95, "per-component", 32)
            times["32 components, per component"].append(time.perf_counter() - t0)
    ref = float(np.median(times[ref_name]))
    for name, t in times.items():
        print(f"  learning features at start, {name}: {np.median(t):.2f} s (runs {', '.join(f'{x:.2f}' for x in t)}); "
              f"ratio {np.median(t) / ref:.1f}x", flush=True)
    print(f"  ({f.n_features} components, source {f.source})")
    path.unlink()


def _fmt(m: dict[str, float]) -> str:
    return (f"found@50/100/end {m['f50']:5.1f} {m['f100']:5.1f} {m['f200']:5.1f}  "
            f"recall@100 {m['recall100']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["xdf", "radio", "optical", "lens"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n", type=int, default=1500, help="objects per synthetic domain (xdf: all its stamps)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--work", type=Path, help="keep (and reuse) cutouts, runs and stores here")
    ap.add_argument("--loops", nargs="+", choices=[x[0] for x in LOOPS], metavar="LOOP",
                    help="run only these loops (and narrow auto, the reference; quote names with spaces)")
    ap.add_argument("--quick", action="store_true", help="radio, 1 seed, 400 objects, 1 epoch, 120 labels")
    ap.add_argument("--start-cost", type=int, metavar="N", help="time the features at the loop's start at N objects")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if args.start_cost:
        with tempfile.TemporaryDirectory() as tmp:
            start_cost(args.start_cost, args.work or Path(tmp))
        return
    if args.quick:
        args.domains, args.seeds, args.n, args.epochs, args.budget = ["radio"], [0], 400, 1, 120
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for domain in args.domains:
            for seed in args.seeds:
                t0 = time.perf_counter()
                trained, random_net, n_rare = build(domain, seed, args, work)
                out = loops({"trained": trained, "random": random_net}, seed, args.budget, args.loops)
                feats = ", ".join(f"{k} {m['features']}" for k, m in out.items() if "features" in m and k.endswith("auto"))
                ended = ", ".join(f"{k} ended on {out[k]['used']}" for k in out if "used" in out[k] and k.startswith(("auto", "widen")))
                print(f"{domain} seed {seed}: {n_rare} rare; stores and loops {time.perf_counter() - t0:.0f} s; "
                      f"learning features {feats}; "
                      f"{ended}", flush=True)
                for label, m in out.items():
                    print(f"  {domain:8s} s{seed} {label:21s} {_fmt(m)}", flush=True)
                    results.setdefault((domain, label), []).append(m)
    print(f"\nmeans over seeds {args.seeds} ({args.budget} labels in batches of 10):")
    for domain in args.domains:
        mean = {label: {k: float(np.mean([r[k] for r in results[(domain, label)]]))
                        for k in ("f50", "f100", "f200", "recall100")}
                for label in [x[0] for x in LOOPS] + ["random order"] if (domain, label) in results}
        for label, m in mean.items():
            print(f"  {domain:8s} {label:21s} {_fmt(m)}")

        def ratio(a: str, b: str, mean=mean) -> str | None:
            if a not in mean or b not in mean:
                return None
            return f"{a} / {b} {mean[a]['f200'] / max(mean[b]['f200'], 1e-9):.2f}x"

        pairs = [(x[0], "narrow auto") for x in LOOPS if x[0] != "narrow auto" and x[2] is not NARROW
                 and x[1] == "trained" and x[3] == "auto"]
        pairs += [("wide embedding", "narrow embedding"), ("wide auto", "raw pixels"), ("wide auto", "random net auto"),
                  ("wide auto", "random order"), ("wide embedding", "random net embedding"),
                  ("widen after 1 find", "random net auto"), ("widen after 1 find", "random order")]
        shown = [r for r in (ratio(a, b) for a, b in pairs) if r]
        per_seed = {label: [r["f200"] for r in results[(domain, label)]] for label in mean if label != "random order"}
        print(f"  {domain:8s} found@{args.budget} ratios: " + "; ".join(shown), flush=True)
        for label in per_seed:
            if label != "narrow auto" and "narrow auto" in per_seed:
                d = np.subtract(per_seed[label], per_seed["narrow auto"])
                print(f"  {domain:8s} {label:21s} vs narrow auto per seed: {' '.join(f'{x:+.0f}' for x in d)}")


if __name__ == "__main__":
    main()
