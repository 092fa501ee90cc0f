"""``galexplorer demo``: the whole workflow on real Hubble XDF galaxies, offline.

Stages, each skipped when its output already exists and is valid (``--rebuild`` starts again):

1. **cutouts** — detect sources in the XDF image shipped with scikit-image
   (:mod:`galexplorer.data.xdf`), cut 64-px three-band stamps, write ``cut.h5`` with
   catalogue columns measured on the segmentation (area, peak, colour, ...);
2. **train** — a small SimCLR encoder on the CPU (:data:`DEMO_TRAINING`, a few minutes on 2 cores);
3. **embed** — embeddings, PCA, UMAP, anomaly and cluster scores into ``store.h5``;
4. **open** — the explorer (unless ``--no-gui`` or there is no display).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import StoreError

log = logging.getLogger(__name__)

#: the CPU training preset: the training defaults (SimCLR with the default augmentations, lr 1e-3,
#: the medium stem that --stem auto picks on CPU) on 48-px crops, batch 64, 20 epochs (241 s on 2
#: cores in benchmarks/bench_demo_shapes.py; the standard stem's 40 epochs took 214 s and knew
#: size, ridge ellipticity and asymmetry less well). Until issue #10 the demo trained BYOL at lr
#: 3e-4 with the old augmentations (lr 2e-3 collapsed BYOL to rank ~5);
#: benchmarks/bench_demo_shapes.py compares the presets' maps on shape.
DEMO_TRAINING = {"method": "simclr", "backbone": "resnet18", "stem": "medium", "epochs": 20,
                 "batch_size": 64, "image_size": 48, "lr": 1e-3, "warmup_epochs": 3, "device": "cpu",
                 "seed": 0, "stats_objects": 1000, "monitor_objects": 256}
#: the reduced preset used by tests and `--quick`
QUICK_TRAINING = dict(DEMO_TRAINING, epochs=1, batch_size=16, image_size=32)


@dataclass
class DemoResult:
    out_dir: Path
    cutouts: Path
    run_dir: Path
    store: Path
    seconds: dict[str, float] = field(default_factory=dict)
    reused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"demo store: {self.store}"]
        for stage, sec in self.seconds.items():
            how = "reused" if stage in self.reused else f"{sec:.0f} s"
            lines.append(f"  {stage:<8} {how}")
        lines.append(f"open it with:  galexplorer open {self.store}")
        return "\n".join(lines)


def default_out_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("galexplorer")) / "demo"


def xdf_catalogue(size: int = 64, nsigma: float = 5.0, min_area: int = 25, limit: int | None = None):
    """Stamps and catalogue columns of the XDF sources.

    Returns:
        ``(stamps (K, 3, size, size) float32, ids, ra, dec, columns)``.
    """
    from .data.morphology import measure_morphology
    from .data.xdf import cut_stamps, detect_sources, xdf_image

    img = xdf_image()
    src = detect_sources(img, nsigma=nsigma, min_area=min_area, edge=8)
    order = np.argsort(-src.flux, kind="stable")          # brightest first: stable ids across runs
    if limit is not None and limit < len(order):           # a subset spanning the whole range of flux
        order = order[np.unique(np.linspace(0, len(order) - 1, limit).round().astype(int))]
    stamps = cut_stamps(img, src.y[order], src.x[order], size)
    ids = [f"XDF{k:04d}" for k in range(len(order))]
    columns = {
        "x": src.x[order], "y": src.y[order],
        "area": src.area[order].astype(np.int64),
        "peak": src.peak[order], "flux": src.flux[order],
        "colour_red_blue": src.colour[order], "ellipticity": src.ellipticity[order],
        "saturated_px": src.saturated[order].astype(np.int64),
        # pixels at the 8-bit ceiling in the central 8x8 px: saturated stars and bright nuclei
        "core_saturated_px": core_saturation(stamps),
    }
    # shape measured on the stamps (explore.morphology): colour the map by it, or probe with it
    morph = measure_morphology(stamps)
    columns["concentration"] = morph["concentration"]
    columns["asymmetry"] = morph["asymmetry"]
    return stamps, ids, src.ra[order], src.dec[order], columns


def core_saturation(stamps: np.ndarray, half: int = 4) -> np.ndarray:
    """(K,) int64 number of central pixels (2*half square) at the 8-bit ceiling in any band."""
    c = stamps.shape[-1] // 2
    core = stamps[:, :, c - half:c + half, c - half:c + half]
    return (core >= 254.5 / 255).any(axis=1).sum(axis=(1, 2)).astype(np.int64)


def _valid(path: Path, kind: str) -> bool:
    from .store import CutoutStore, EmbeddingStore

    if not path.exists():
        return False
    try:
        opener = CutoutStore if kind == "cutouts" else EmbeddingStore
        with opener(path) as f:
            return kind == "cutouts" or f.has("projection")
    except StoreError as exc:
        log.warning("rebuilding %s: %s", path, exc)
        return False


def build_demo(out_dir: str | Path | None = None, rebuild: bool = False, quick: bool = False,
               limit: int | None = None) -> DemoResult:
    """Build (or reuse) the demo's cutouts, encoder and store in ``out_dir``.

    Args:
        out_dir: folder for everything (default: the user cache folder).
        rebuild: delete what exists and start again.
        quick: one short epoch on 32-px crops (tests).
        limit: keep only ``limit`` sources, evenly spread in brightness (tests).
    """
    from . import progress
    from .data.thumbnails import make_thumbnails
    from .explore.pipeline import EmbedConfig
    from .ssl.config import TrainConfig
    from .ssl.embed import embed_with_encoder
    from .ssl.trainer import train
    from .store import CutoutWriter

    out = Path(out_dir) if out_dir else default_out_dir()
    if rebuild and out.exists():
        for name in ("cut.h5", "store.h5", "run"):
            p = out / name
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    res = DemoResult(out, out / "cut.h5", out / "run", out / "store.h5")

    t = time.monotonic()
    if _valid(res.cutouts, "cutouts"):
        res.reused.append("cutouts")
    else:
        log.info("demo 1/3: cutting galaxy stamps from the Hubble XDF image")
        stamps, ids, ra, dec, columns = xdf_catalogue(limit=limit)
        with CutoutWriter(res.cutouts, bands=["blue", "green", "red"], size=stamps.shape[-1], thumb_size=64,
                          attrs={"ingest": {"source": "skimage.data.hubble_deep_field()", "detection":
                                            "5 sigma above a sigma-clipped background, area >= 25 px"}}) as w:
            bar = progress.Bar("cutouts", total=len(ids), unit="stamp")
            for a in range(0, len(ids), 128):
                sl = slice(a, a + 128)
                w.add(stamps[sl], ids[sl], ra=ra[sl], dec=dec[sl], columns={k: v[sl] for k, v in columns.items()},
                      source=["hubble_deep_field"] * len(ids[sl]),
                      thumbnails=make_thumbnails(stamps[sl], ["blue", "green", "red"], 64))
                bar.update(len(ids[sl]))
            bar.close()
    res.seconds["cutouts"] = time.monotonic() - t

    t = time.monotonic()
    encoder = res.run_dir / "encoder.pt"
    if encoder.exists() and (res.run_dir / "encoder.json").exists() and "cutouts" in res.reused:
        res.reused.append("train")
    else:
        log.info("demo 2/3: training a small SimCLR encoder on the CPU")
        cfg = TrainConfig.from_dict(QUICK_TRAINING if quick else DEMO_TRAINING)
        train(res.cutouts, res.run_dir, cfg)
    res.seconds["train"] = time.monotonic() - t

    t = time.monotonic()
    if "train" in res.reused and _valid(res.store, "store"):
        res.reused.append("embed")
    else:
        log.info("demo 3/3: embedding, PCA, UMAP and anomaly scores")
        embed_with_encoder(res.cutouts, res.run_dir, res.store, EmbedConfig(device="cpu", seed=0))
    res.seconds["embed"] = time.monotonic() - t
    return res
