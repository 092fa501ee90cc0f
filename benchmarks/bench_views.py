"""Does averaging the embedding over a stamp's rotations and mirror images help? (``embed --views``)

The sky has no preferred orientation, but a network's embedding of a galaxy and of the same galaxy
turned by 90 degrees differ. ``embed --views 8`` (the default) embeds the mean over the eight
symmetries of the pixel grid (four rotations, each mirrored); ``--views 1`` the stamp as it is.

For each domain (``xdf``, ``radio``, ``optical``, ``lens``) and seed: a cutouts file, the default
encoder trained on it once (``TrainConfig()`` at the benchmark's CPU sizes, ``--epochs``), then
``galexplorer embed`` twice from the same run, ``--views 1`` and ``--views 8``. For each store, and
beside raw-pixel PCA of the same stamps (the reference, measured in the same run):

* ``embed s``: seconds of the ``embed`` command (encoder, PCA, UMAP, scores, features);
* ``kNN``, ``linear``, ``AP``: the stored embedding's 5-NN and logistic accuracy over the classes
  and the average precision of a rare-class probe (5-fold, as ``bench_domains.py``);
* ``like-this@10``: for each rare object, the share of rare objects among its 10 most similar
  objects (the store's own cosine search, "more like this" in the window), the mean;
* ``anomaly@100``: rare objects among the 100 highest anomaly scores (the loop's prior), as a
  ratio to what random order finds (100 x the rare fraction);
* ``found@200`` / ``recall@100``: ``simulate``'s loop (200 labels in batches of 10, the
  ``oracle`` column: the domain's own, 5 for the rare class and 0-1 for the common ones; before
  2026-12-07 it was 5 and 0), with ``--representation auto`` (the default) and
  ``embedding``.

Then the mean over seeds of each figure and the ratio 8 views / 1 view of the same run. First,
the encoder pass alone: stamps a second through the default backbone at 32 px (random weights,
one band, 2000 stamps) with 1 and 8 views, and their ratio.

    python benchmarks/bench_views.py --quick       # ~30 s: radio, 1 seed, 400 objects, 1 epoch, 120 labels
    python benchmarks/bench_views.py               # 4 domains x 2 seeds, 1500 objects
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

from bench_domains import domain_set, probes  # noqa: E402
from bench_representation import COMMON, raw_pca  # noqa: E402

FIGURES = ("embed_s", "knn", "lin", "ap", "like10", "anomaly100", "found_auto", "recall_auto",
           "found_embedding", "recall_embedding")


def throughput(n: int) -> None:
    """Stamps a second of the encoder pass alone, 1 and 8 views, in this process."""
    from galexplorer.ssl.backbones import build_backbone, resolve_stem
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.embed import Encoder, embed_array

    stem = resolve_stem(TrainConfig.from_dict(COMMON).stem, COMMON["image_size"], "cpu")
    backbone = build_backbone(COMMON["backbone"], 1, stem)
    x = np.random.default_rng(0).normal(size=(n, 1, 40, 40)).astype(np.float32)
    rate = {}
    for views in (1, 8):
        enc = Encoder(backbone, [0.0], [1.0], COMMON["image_size"], views).eval()
        embed_array(enc, x[:64])                      # warm-up
        t0 = time.perf_counter()
        embed_array(enc, x)
        rate[views] = n / (time.perf_counter() - t0)
    print(f"encoder pass ({COMMON['backbone']}, {stem} stem, {COMMON['image_size']} px, {n} stamps): "
          f"1 view {rate[1]:.0f} stamps/s, 8 views {rate[8]:.0f} stamps/s, ratio {rate[8] / rate[1]:.3f}; "
          f"10^6 stamps: {1e6 / rate[1] / 60:.0f} min vs {1e6 / rate[8] / 3600:.1f} h", flush=True)


def write(domain: str, n: int, seed: int, path: Path):
    """The domain's cutouts with ``kind`` and ``oracle`` columns; (labels, rare, stamps)."""
    from galexplorer.data.domains import ORACLE, DomainSet, write_domain_cutouts

    stamps, labels, rare, names = domain_set(domain, n, seed)
    # the domain's own oracle (the rare class 5, the common ones 0-1, as bench_loop_features.py);
    # XDF's classes have no oracle of their own: 5 for the injected rare ones, 0 for the rest
    oracle = (np.array([ORACLE[names[k]] for k in labels], np.int64) if domain != "xdf"
              else np.where(rare, 5, 0).astype(np.int64))
    dom = DomainSet(name=domain, stamps=stamps, ids=[f"{domain}{i:05d}" for i in range(len(labels))],
                    labels=np.asarray(labels, np.int64), class_names=tuple(names), oracle=oracle,
                    bands=[f"b{i}" for i in range(stamps.shape[1])])
    write_domain_cutouts(path, dom)
    return np.asarray(labels), np.asarray(rare, bool), stamps


def like_this(store, rare: np.ndarray, k: int = 10) -> float:
    from galexplorer.explore.similarity import SimilarityIndex

    index = SimilarityIndex(store.load_embeddings())
    rows = np.flatnonzero(rare)
    hits = [np.mean(rare[index.query(int(r), k=k)[0]]) for r in rows]
    return float(np.mean(hits))


def loop(store, seed: int, representation: str, budget: int) -> tuple[int, float]:
    from galexplorer.active.loop import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate

    cfg = SimulateConfig(truth="oracle", budget=budget, batch=10, seeds=5,
                         loop=LoopConfig(seed=seed, representation=representation))
    r = simulate(store, cfg)
    return int(r.history[-1][1]), float(r.loop.recall[100])


def measure(store_path: Path, labels, rare, seed: int, budget: int) -> dict[str, float]:
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_path) as s:
        emb = s.load_embeddings()
        out = probes(emb, labels, rare)
        out["like10"] = like_this(s, rare)
        top = np.argsort(-s.score("anomaly"))[:100]
        out["anomaly100"] = float(rare[top].sum()) / (100 * rare.mean())
        out["found_auto"], out["recall_auto"] = loop(s, seed, "auto", budget)
        out["found_embedding"], out["recall_embedding"] = loop(s, seed, "embedding", budget)
    out["budget"] = budget
    return out


def run(domain: str, seed: int, args, work: Path) -> dict[str, dict[str, float]]:
    from galexplorer.cli import main as cli
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import train

    cut, run_dir = work / f"{domain}-{seed}.h5", work / f"run-{domain}-{seed}"
    labels, rare, stamps = write(domain, args.n, seed, cut)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train(cut, run_dir, TrainConfig.from_dict({**COMMON, "seed": seed, "epochs": args.epochs}))
    budget = min(args.budget, len(labels))
    out = {"pixels": probes(raw_pca(stamps), labels, rare)}
    for views in (1, 8):
        store = work / f"s-{domain}-{seed}-{views}.h5"
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert cli(["-q", "embed", str(cut), "--run", str(run_dir), "-o", str(store), "--device", "cpu",
                        "--seed", str(seed), "--views", str(views)]) == 0
        seconds = time.perf_counter() - t0
        out[f"{views} view{'s' if views > 1 else ''}"] = {**measure(store, labels, rare, seed, budget),
                                                         "embed_s": seconds}
    print(f"{domain} seed {seed}: {len(labels)} objects, {int(rare.sum())} rare", flush=True)
    for name, m in out.items():
        print(f"  {domain:8s} s{seed} {name:8s} {_line(m)}", flush=True)
    return out


def _line(m: dict[str, float]) -> str:
    text = f"kNN {m['knn']:.3f}  linear {m['lin']:.3f}  AP {m['ap']:.3f}"
    if "like10" in m:
        text += (f"  like-this@10 {m['like10']:.3f}  anomaly@100 {m['anomaly100']:.2f}x random  "
                 f"found@{m['budget']:.0f} auto {m['found_auto']:.1f} / embedding {m['found_embedding']:.1f}  "
                 f"recall@100 auto {m['recall_auto']:.3f} / embedding {m['recall_embedding']:.3f}  "
                 f"embed {m['embed_s']:.1f} s")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domains", nargs="+", default=["xdf", "radio", "optical", "lens"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--n", type=int, default=1500, help="objects per synthetic domain (xdf: all its stamps)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="smoke test: radio, 1 seed, 400 objects, 1 epoch, 120 labels")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.WARNING)
    if args.quick:
        args.domains, args.seeds, args.n, args.epochs, args.budget = ["radio"], [0], 400, 1, 120
    throughput(200 if args.quick else 2000)
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for domain in args.domains:
            for seed in args.seeds:
                for name, m in run(domain, seed, args, Path(tmp)).items():
                    results.setdefault((domain, name), []).append(m)
    print("\nmean over seeds; ratio 8 views / 1 view of the same runs:")
    for domain in args.domains:
        for name in ("pixels", "1 view", "8 views"):
            runs = results[(domain, name)]
            print(f"  {domain:8s} {name:8s} {_line({k: float(np.mean([r[k] for r in runs])) for k in runs[0]})}")
        one, eight = results[(domain, "1 view")], results[(domain, "8 views")]
        ratios = {k: float(np.mean([e[k] for e in eight])) / max(float(np.mean([o[k] for o in one])), 1e-9)
                  for k in FIGURES}
        print(f"  {domain:8s} ratio    " + "  ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
