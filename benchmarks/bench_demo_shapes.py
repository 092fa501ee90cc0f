"""Does the demo's map know shape? Morphology probes of the demo store, before and after issue #10.

The demo (``galexplorer demo``: the Hubble XDF galaxies, BYOL, 40 epochs on the CPU) is built
twice in one run, or read from folders given with ``--before`` / ``--after``:

* *before*: the demo preset with the augmentations of the defaults before issue #10 (noise of
  1-25 band MADs, 7-px jitter, PSF sigma 0-1 px);
* *after*: the demo preset as shipped (the current defaults).

For each store's embeddings, and for raw pixels -> PCA(30) of the same stamps as the reference,
it prints 5-fold kNN (k = 5) accuracy of the tertile (chance 0.333) and ridge linear-probe R^2 of
ellipticity, concentration and asymmetry (:mod:`galexplorer.data.morphology`) on the resolved
galaxies (half-light radius >= 2 px), and R^2 of log size on all of them, plus the demo's
training time.

    nice -n 5 python benchmarks/bench_demo_shapes.py                       # builds both (~2 x 4 min)
    python benchmarks/bench_demo_shapes.py --before DIR --after DIR        # existing demo folders
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESOLVED_PX = 2.0
OLD_AUGMENT = {"jitter_px": 7, "blur_sigma": [0.0, 1.0], "noise_scale": [1.0, 25.0]}


def build(folder: Path, old: bool) -> float:
    """Build the demo into ``folder`` (old augmentations when ``old``); training seconds."""
    from galexplorer import demo

    preset = dict(demo.DEMO_TRAINING)
    if old:
        preset["augment"] = dict(OLD_AUGMENT)
    saved = demo.DEMO_TRAINING
    demo.DEMO_TRAINING = preset
    try:
        res = demo.build_demo(folder)
    finally:
        demo.DEMO_TRAINING = saved
    return res.seconds.get("train", float("nan"))


def stamps_and_embeddings(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from galexplorer.store import CutoutStore, EmbeddingStore

    with EmbeddingStore(folder / "store.h5") as s:
        emb = s.load_embeddings()
        rows = s.cutouts_rows
    with CutoutStore(folder / "cut.h5") as c:
        stamps = c.read(np.sort(rows))[np.argsort(np.argsort(rows))]
    return stamps, emb


def raw_pca(stamps: np.ndarray, k: int = 30) -> np.ndarray:
    from sklearn.decomposition import PCA

    med = np.median(stamps, axis=(0, 2, 3), keepdims=True)
    mad = np.median(np.abs(stamps - med), axis=(0, 2, 3), keepdims=True)
    x = np.arcsinh((stamps - med) / np.maximum(mad, 1e-3)).reshape(len(stamps), -1)
    return PCA(k, random_state=0).fit_transform(x)


def probes(emb: np.ndarray, morph: dict[str, np.ndarray]) -> dict[str, float]:
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    out = {}
    resolved = morph["size"] >= RESOLVED_PX
    for subset, keys in ((resolved, ("ellipticity", "concentration", "asymmetry")),
                         (np.ones(len(emb), bool), ("size",))):
        e = emb[subset]
        x = (e - e.mean(axis=0)) / max(float(e.std()), 1e-12)
        for key in keys:
            y = np.log(np.maximum(morph[key][subset], 0.5)) if key == "size" else morph[key][subset]
            if key != "size":
                t = np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))
                pred = cross_val_predict(KNeighborsClassifier(5), x, t, cv=StratifiedKFold(5, shuffle=True,
                                                                                           random_state=0))
                out["knn " + key[:4]] = float(np.mean(pred == t))
            out["R2 " + key[:4]] = float(np.mean(cross_val_score(
                RidgeCV(alphas=np.logspace(-2, 5, 15)), x, y, cv=KFold(5, shuffle=True, random_state=0), scoring="r2")))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", help="a demo folder built with the old augmentations (default: build one)")
    ap.add_argument("--after", help="a demo folder built with the current preset (default: build one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    from galexplorer import progress
    from galexplorer.data.morphology import measure_morphology

    progress.configure(enabled=False)
    with tempfile.TemporaryDirectory() as tmp:
        folders, train_s = {}, {}
        for name, given, old in (("before (old augment)", args.before, True), ("after (shipped)", args.after, False)):
            if given:
                folders[name], train_s[name] = Path(given), float("nan")
            else:
                folders[name] = Path(tmp) / name.split()[0]
                t0 = time.perf_counter()
                train_s[name] = build(folders[name], old)
                print(f"built the demo {name}: {time.perf_counter() - t0:.0f} s (training {train_s[name]:.0f} s)",
                      flush=True)
        rows = {}
        for name, folder in folders.items():
            stamps, emb = stamps_and_embeddings(folder)
            morph = measure_morphology(stamps)
            if not rows:
                rows["raw pixels PCA30"] = probes(raw_pca(stamps), morph)
            rows[name] = probes(emb, morph)
        n_res = int((morph["size"] >= RESOLVED_PX).sum())
    keys = list(next(iter(rows.values())))
    print(f"\ndemo stamps: {len(stamps)}; shape probes on the {n_res} with a half-light radius >= {RESOLVED_PX:g} px "
          f"(kNN: tertile accuracy, chance 0.333; R2: 5-fold ridge)")
    print(f"{'representation':24s}" + "".join(f"{k:>11s}" for k in keys))
    for name, r in rows.items():
        print(f"{name:24s}" + "".join(f"{r[k]:>11.3f}" for k in keys))
    b, a = rows["before (old augment)"], rows["after (shipped)"]
    print("after - before: " + ", ".join(f"{k} {a[k] - b[k]:+.3f}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
