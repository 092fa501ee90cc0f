"""Does the demo's map separate shapes? The demo's training preset before and after issue #10.

The demo's 374 XDF galaxies (``galexplorer demo``'s own stamps and catalogue columns) are
trained on with two presets in one run, each the way ``galexplorer demo`` trains:

* ``before``: the preset the demo used until issue #10 (BYOL, lr 3e-4, the old augmentations:
  noise 1-25 MADs, 7-px jitter, PSF sigma 0-1 px);
* ``after``: :data:`galexplorer.demo.DEMO_TRAINING` (the new defaults);
* ``alt`` (``--presets``): the demo preset with the other CPU stem (medium or standard) for
  about the same training time (half or twice the epochs);
* ``prev`` (``--presets``): the demo preset with the PSF blur it had until the default changed
  (sigma 0-0.7 px instead of 0-0.3 px), everything else the same.

Beside them, from the same run: raw pixels -> PCA(30) (asinh-normalised centre crops of the
same size) and the same network at random initialisation (one row per stem trained).

For each representation, R^2 of 5-fold cross-validation repeated over ten shuffles (as in
bench_representation.py: one shuffle's R^2 moves by a few hundredths) of

* ``kNN``: the mean of the 10 nearest neighbours (the question docs/getting-started.md asks:
  do an object's neighbours on the map share its shape?), and
* ``ridge``: a linear probe,

for the log of the detection area, the ellipticity (from the detection's second moments), the
concentration and the asymmetry (``galexplorer.data.morphology``). Shape is probed on the
resolved galaxies (half-light radius >= 2 px), size on all, as in bench_representation.py.
Training time is printed per preset (the demo must build in <= 10 minutes on 2 cores).

Run:  nice -n 5 python benchmarks/bench_demo_shapes.py          (~8 min on 2 cores)
``--quick``: 60 stamps, one epoch each (the smoke test).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def presets(quick: bool) -> dict[str, dict]:
    from bench_representation import OLD_AUGMENT

    from galexplorer.demo import DEMO_TRAINING, QUICK_TRAINING

    base = QUICK_TRAINING if quick else DEMO_TRAINING
    before = {**base, "method": "byol", "stem": "standard", "lr": 3e-4, "augment": OLD_AUGMENT}
    other = "standard" if base["stem"] == "medium" else "medium"
    # the demo preset with the other CPU stem, for half (medium) or twice (standard) the epochs:
    # about the same training time
    alt = {**base, "stem": other, "epochs": max(1, base["epochs"] // 2 if other == "medium" else base["epochs"] * 2)}
    prev = {**base, "augment": {"blur_sigma": [0.0, 0.7]}}
    return {"before (BYOL, old augment)": before, "after (demo preset)": dict(base), f"alt ({other} stem)": alt,
            "prev (PSF 0-0.7 px)": prev}


def probes(emb: np.ndarray, targets: dict[str, np.ndarray], resolved: np.ndarray) -> dict[str, float]:
    from bench_representation import PROBE_REPEATS
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import RepeatedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsRegressor

    out: dict[str, float] = {}
    for key, y in targets.items():
        sel = np.ones(len(y), bool) if key == "log_area" else resolved
        e = emb[sel]
        x = (e - e.mean(axis=0)) / max(float(e.std()), 1e-12)
        cv = RepeatedKFold(n_splits=5, n_repeats=PROBE_REPEATS, random_state=0)
        k = min(10, max(1, int(sel.sum() * 0.8) - 1))
        out[f"knn {key}"] = float(np.mean(cross_val_score(KNeighborsRegressor(k), x, y[sel], cv=cv, scoring="r2")))
        out[f"ridge {key}"] = float(np.mean(cross_val_score(RidgeCV(alphas=np.logspace(-2, 5, 15)), x, y[sel],
                                                            cv=cv, scoring="r2")))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60 stamps, one epoch (smoke test)")
    ap.add_argument("--presets", nargs="+", choices=["before", "after", "alt", "prev"], default=["before", "after"],
                    help="which presets to train (before: the pre-#10 preset; after: the demo's; alt: the demo's "
                         "with the other CPU stem at about the same training time; prev: the demo's with the PSF blur "
                         "of before the default changed)")
    ap.add_argument("--workdir", type=Path, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.simplefilter("ignore")

    from bench_representation import RESOLVED_PX, encoder_embeddings, raw_pca

    from galexplorer import progress
    from galexplorer.data.morphology import measure_morphology
    from galexplorer.data.thumbnails import make_thumbnails
    from galexplorer.demo import xdf_catalogue
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.embed import embed_array, load_encoder
    from galexplorer.ssl.trainer import train
    from galexplorer.store import CutoutWriter

    progress.configure(enabled=False)
    tmp = tempfile.TemporaryDirectory() if args.workdir is None else None
    work = Path(tmp.name) if tmp else args.workdir
    work.mkdir(parents=True, exist_ok=True)

    stamps, ids, ra, dec, columns = xdf_catalogue(limit=60 if args.quick else None)
    morph = measure_morphology(stamps)
    targets = {"log_area": np.log(columns["area"].astype(np.float64)), "ellipticity": columns["ellipticity"],
               "concentration": morph["concentration"], "asymmetry": morph["asymmetry"]}
    resolved = morph["size"] >= RESOLVED_PX
    if resolved.sum() < 10:
        resolved = np.ones(len(stamps), bool)
    cut = work / "cut.h5"
    if not cut.exists():
        with CutoutWriter(cut, bands=["blue", "green", "red"], size=stamps.shape[-1], thumb_size=32) as w:
            w.add(stamps, ids, ra=ra, dec=dec, columns=columns,
                  thumbnails=make_thumbnails(stamps, ["blue", "green", "red"], 32))
    print(f"demo stamps: {len(stamps)} ({int(resolved.sum())} resolved, half-light radius >= {RESOLVED_PX} px)")

    cfgs = {k: v for k, v in presets(args.quick).items() if k.split()[0] in args.presets}
    size = next(iter(cfgs.values()))["image_size"]
    rows: list[tuple[str, str, dict]] = [("raw pixels -> PCA30", "-", probes(raw_pca(stamps, size), targets, resolved))]
    for stem in sorted({c["stem"] for c in cfgs.values()}):
        random_net = encoder_embeddings(cut, None, {"backbone": "resnet18", "stem": stem, "image_size": size}, stamps)
        rows.append((f"random init, {stem} stem", "-", probes(random_net, targets, resolved)))
    trained: dict[str, dict] = {}   # the trained presets' probes, by the preset's short name
    for name, cfg in cfgs.items():
        run = work / ("run-" + name.split()[0])
        t = time.monotonic()
        report = train(cut, run, TrainConfig.from_dict(cfg))
        seconds = time.monotonic() - t
        enc, _meta = load_encoder(run)
        row = probes(embed_array(enc, stamps), targets, resolved)
        trained[name.split()[0]] = row
        rows.append((f"{name}: {cfg['method']}, {cfg['stem']}, lr {cfg['lr']:g}, {cfg['epochs']} ep", f"{seconds:.0f} s",
                     row))
        if report.dimensional_collapse:
            print(f"note: {name} triggered the collapse monitor")

    keys = list(rows[0][2])
    print(f"\n{'representation':52s} {'train':>6s} " + " ".join(f"{k:>17s}" for k in keys))
    for name, secs, r in rows:
        print(f"{name:52s} {secs:>6s} " + " ".join(f"{r[k]:17.3f}" for k in keys))
    raw = rows[0][2]
    ref = next((n for n in ("before", "prev") if n in trained), None)
    if ref is not None and len(trained) > 1:
        print(f"\neach preset - {ref} (R^2 differences; the references are near 0, so no ratios):")
        for k in keys:
            print(f"  {k:22s} {ref} {trained[ref][k]:+.3f}  " + "  ".join(
                f"{n} {r[k]:+.3f} ({r[k] - trained[ref][k]:+.3f})" for n, r in trained.items() if n != ref)
                  + f"  (raw pixels {raw[k]:+.3f})")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
