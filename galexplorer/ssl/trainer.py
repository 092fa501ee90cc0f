"""The training loop behind ``galexplorer train`` (one process, or DDP under ``torchrun``).

Each step: read a batch of raw stamps, make two augmented views on the training device
(:class:`~galexplorer.ssl.augment.AstroAugment`), normalise them, and take one AdamW step on
the BYOL or SimCLR loss (bf16 autocast on CUDA, losses in float32). After each epoch rank 0
embeds a fixed set of stamps for the collapse monitor (and the labelled ones for
``--eval-column``), appends a row to ``metrics.csv``, writes ``checkpoint-latest.pt``, and when
the epoch is the best so far by view retrieval (a label-free measure, :func:`view_retrieval`)
``checkpoint-best.pt`` and ``encoder.pt`` + ``encoder.json``.

``--resume`` restores model, optimiser, schedule, step and every random number generator, and
the data order is a function of (seed, epoch), so on CPU 1 epoch + resume + 1 epoch gives
bit-for-bit the weights of an uninterrupted 2-epoch run.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import progress
from ..errors import CheckpointError, ConfigError, InputError
from ..store import CutoutStore
from ..store.atomic import writable_folder
from . import distributed
from .augment import AstroAugment
from .backbones import ResNetEncoder, adapt_torchvision_state, build_backbone, resolve_stem
from .byol import BYOL
from .checkpoint import (
    BEST,
    CHECKPOINT_FORMAT,
    ENCODER_FORMAT,
    LATEST,
    RUN_FILES,
    check_fits,
    clear_run,
    load_checkpoint,
    replacing,
    rng_state,
    save_checkpoint,
    save_encoder,
    set_rng_state,
)
from .collapse import CollapseMonitor, collapse_stats, epoch_ranges
from .config import TrainConfig
from .data import BatchDataset, StampSource
from .embed import Encoder, resolve_device
from .evaluate import LabelledSet, evaluate, labelled_set
from .nnclr import NNCLR
from .normalize import BandStats, compute_band_stats
from .runtime import retain_freed_memory
from .schedule import cosine_tau, warmup_cosine, warmup_steps_for
from .simclr import SimCLR
from .vicreg import VICReg

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("epoch", "step", "loss", "lr", "tau", "images_per_s", "embedding_std", "effective_rank",
                  "knn_acc", "linear_acc", "seconds", "pca95", "view_retrieval")
# options that may differ when resuming (they do not change what the next step computes)
RESUME_MAY_CHANGE = {"epochs", "device", "workers", "eval_column", "eval_objects", "monitor_objects"}


@dataclass
class TrainReport:
    """What a training run did. ``summary()`` is the CLI's closing message (empty off rank 0)."""

    run_dir: Path
    epochs_done: int
    epochs: int
    loss: float | None
    images_per_s: float | None
    encoder: Path | None
    collapsed: bool = False
    metrics: list[dict[str, Any]] = field(default_factory=list)
    is_main: bool = True
    note: str = ""
    best_epoch: int | None = None
    dimensional_collapse: bool = False
    dimensional_epochs: list[int] = field(default_factory=list)
    dimensional_at_end: bool = False

    def summary(self) -> str:
        if not self.is_main:
            return ""
        lines = [f"trained {self.epochs_done}/{self.epochs} epochs -> {self.run_dir}"]
        if self.loss is not None:
            lines.append(f"  final loss {self.loss:.4f}, {self.images_per_s:.1f} images/s")
        last = self.metrics[-1] if self.metrics else {}
        if last.get("knn_acc") not in (None, ""):
            lines.append(f"  kNN accuracy {last['knn_acc']:.3f}, linear probe {last['linear_acc']:.3f}")
        if self.best_epoch is not None:
            best = next((r for r in self.metrics if r.get("epoch") == self.best_epoch), {})
            lines.append(f"  best epoch {self.best_epoch} by view retrieval "
                         f"({best.get('view_retrieval', float('nan')):.3f}, effective rank "
                         f"{best.get('effective_rank', float('nan')):.1f}): checkpoint-best.pt and encoder.pt")
        if self.encoder:
            lines.append(f"  encoder: {self.encoder} (embed with `galexplorer embed CUTOUTS.h5 --run "
                         f"{self.run_dir} -o STORE.h5`)")
        if self.collapsed:
            lines.append("  WARNING: the representation collapsed (see metrics.csv); lower --lr or change method")
        elif self.dimensional_collapse and (self.dimensional_at_end or not self.dimensional_epochs):
            lines.append(f"  WARNING: dimensional collapse at epoch(s) {epoch_ranges(self.dimensional_epochs) or '?'}, "
                         "still at the last epoch (effective rank below a tenth of its start, or one PCA "
                         "component; see metrics.csv): lower --lr, weaken the augmentations or try another --method")
        elif self.dimensional_collapse:
            lines.append(f"  note: dimensional collapse at epoch(s) {epoch_ranges(self.dimensional_epochs)}, over by "
                         "the last epoch (see metrics.csv); early dips like this are common and harmless when "
                         "the rank comes back")
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# set-up helpers
# ------------------------------------------------------------------------------------------------

def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def _precision(pref: str, device: torch.device) -> bool:
    """True when steps run under bf16 autocast."""
    if pref == "fp32":
        return False
    if pref == "bf16":
        return True
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weights of convolutions and linear layers only."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim > 1 else no_decay).append(p)  # biases and norm scales/shifts are 1-D
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW, fused when PyTorch has a fused kernel for the device (on CPU ~20x faster than the
    per-parameter loop for the 16M parameters of a BYOL ResNet-18)."""
    groups = _param_groups(model, cfg.weight_decay)
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, fused=True)
    except (RuntimeError, TypeError):  # older PyTorch or a device without the fused kernel
        return torch.optim.AdamW(groups, lr=cfg.lr)


def _build_model(cfg: TrainConfig, n_bands: int) -> nn.Module:
    backbone = build_backbone(cfg.backbone, n_bands, cfg.stem)
    proj_hidden, proj_dim, pred_hidden = cfg.head_sizes()
    if cfg.method == "byol":
        return BYOL(backbone, proj_hidden, proj_dim, pred_hidden)
    if cfg.method == "vicreg":
        return VICReg(backbone, proj_hidden, proj_dim)
    if cfg.method == "nnclr":
        return NNCLR(backbone, proj_hidden, proj_dim, pred_hidden, cfg.temperature, cfg.queue_size)
    return SimCLR(backbone, proj_hidden, proj_dim, cfg.temperature)


def _load_init(model: nn.Module, path: str | Path, cfg: TrainConfig, bands: list[str]) -> None:
    """Start the online backbone from local weights: encoder.pt, a checkpoint, or torchvision."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("no such weights file for --init", path, "give a local encoder.pt, checkpoint "
                              "or torchvision .pth (nothing is downloaded)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot be read as weights ({first})", path,
                              "--init takes encoder.pt, a checkpoint or a torchvision state_dict") from None
    backbone: ResNetEncoder = model.backbone
    want = {"backbone": cfg.backbone, "stem": cfg.stem}
    if isinstance(obj, dict) and obj.get("format") == ENCODER_FORMAT:
        check_fits(obj, path, bands=bands, **want)
        state = obj["state_dict"]
    elif isinstance(obj, dict) and obj.get("format") == CHECKPOINT_FORMAT:
        import json

        ck_cfg = json.loads(obj["config"])
        check_fits({"bands": obj.get("bands"), "backbone": ck_cfg.get("backbone"), "stem": ck_cfg.get("stem")},
                   path, bands=bands, **want)
        state = {k.removeprefix("backbone."): v for k, v in obj["model"].items() if k.startswith("backbone.")}
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = {f"net.{k}": v for k, v in adapt_torchvision_state(obj, backbone).items()}
        missing = [k for k in backbone.state_dict() if k not in state]
        if len(missing) > len(backbone.state_dict()) // 2:
            raise CheckpointError(f"these weights do not fit a {cfg.backbone} ({len(missing)} tensors missing)",
                                  path, "give weights of the same ResNet")
        backbone.load_state_dict(state, strict=False)
        log.info("--init: %d tensors from %s (%d left at random)", len(state), path.name, len(missing))
        state = None
    else:
        raise CheckpointError("not a galexplorer encoder, checkpoint or torchvision state_dict", path)
    if state is not None:
        try:
            backbone.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not fit the {cfg.backbone} backbone "
                                  f"({str(exc).splitlines()[0][:120]})", path) from None
        log.info("--init: backbone weights from %s", path)
    if isinstance(model, BYOL):  # the target starts as a copy of the online network
        model.target_backbone.load_state_dict(backbone.state_dict())


def _resumed_config(ckpt: dict[str, Any], overrides: dict[str, Any], path: Path) -> TrainConfig:
    import json

    saved = TrainConfig.from_dict(json.loads(ckpt["config"]))
    changes = {}
    for key, value in overrides.items():
        if key == "augment" or value is None:
            continue
        old = getattr(saved, key)
        if key == "stem" and value == "auto":
            continue
        if value != old:
            if key not in RESUME_MAY_CHANGE:
                raise ConfigError(f"--resume: the run was trained with {key} = {old!r}, not {value!r}",
                                  path, "drop the option, or start a new run in another folder")
            changes[key] = value
    if "epochs" in changes:
        log.warning("--resume with --epochs %d (was %d): the learning-rate and EMA schedules are stretched "
                    "to the new length, so the result differs from an uninterrupted run",
                    changes["epochs"], saved.epochs)
    return dataclasses.replace(saved, **changes)


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    with replacing(run_dir / "metrics.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in METRIC_COLUMNS})


def _embed_rows(encoder: Encoder, source: StampSource, rows: np.ndarray, device: torch.device,
                amp: bool, batch: int = 256) -> np.ndarray:
    out = np.empty((len(rows), encoder.dim), np.float32)
    was_training = encoder.training
    encoder.eval()
    with torch.inference_mode():
        for a in range(0, len(rows), batch):
            x = torch.from_numpy(source.read(rows[a:a + batch])).to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                out[a:a + len(x)] = encoder(x).float().cpu().numpy()
    encoder.train(was_training)
    return out


def view_retrieval(backbone: nn.Module, views: torch.Tensor, originals: np.ndarray, batch: int = 256) -> float:
    """Label-free quality: the fraction of augmented views whose nearest original (cosine, among
    all ``len(originals)``) is the stamp they were made from.

    Args:
        backbone: the online backbone (run in eval mode).
        views: (N, C, s, s) normalised augmented views, fixed for the run.
        originals: (N, D) embeddings of the un-augmented stamps, same order.
    """
    was_training = backbone.training
    backbone.eval()
    with torch.inference_mode():
        v = torch.cat([backbone(views[a:a + batch]).float() for a in range(0, len(views), batch)]).cpu()
    backbone.train(was_training)
    o = torch.nn.functional.normalize(torch.from_numpy(np.asarray(originals, np.float32)), dim=1)
    v = torch.nn.functional.normalize(v, dim=1)
    return float(((v @ o.T).argmax(dim=1) == torch.arange(len(o))).float().mean())


def _oom_error(batch: int, cfg: TrainConfig, device: torch.device) -> ConfigError:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" and torch.cuda.is_available() else "the GPU"
    return ConfigError(f"a batch of {batch} stamps ({cfg.image_size} px, {cfg.backbone}, {cfg.method}, two views) "
                       f"does not fit in the memory of {name}",
                       hint=f"try --batch-size {max(2, batch // 2)} (or a smaller --image-size)")


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------

def train(cutouts: str | Path, run_dir: str | Path, config: TrainConfig | None = None, *, resume: bool = False,
          init: str | Path | None = None, overrides: dict[str, Any] | None = None,
          stop_after: int | None = None) -> TrainReport:
    """Train a self-supervised encoder on a cutouts file.

    Args:
        cutouts: the cutouts HDF5 file (``galexplorer ingest``).
        run_dir: folder for checkpoints, metrics and the encoder; an existing run there is
            replaced unless ``resume``.
        config: the options (defaults when None). With ``resume`` the checkpoint's config is
            used, and ``overrides`` (the options given explicitly) may change only epochs,
            device, workers and the evaluation options.
        resume: continue from ``run_dir/checkpoint-latest.pt``.
        init: start the backbone from local weights (encoder.pt, checkpoint, torchvision
            state_dict); ignored when resuming.
        stop_after: stop after this many epochs of this call (the schedules still span
            ``config.epochs``; continue later with ``resume``) - for wall-clock-limited jobs.

    Returns:
        A :class:`TrainReport`.

    Raises:
        InputError: empty cutouts, too few stamps, NaN pixels.
        ConfigError: invalid options, stamps smaller than the crop, CUDA out of memory.
        CheckpointError: nothing to resume, or a checkpoint for other bands/backbone.
        StoreError: an unreadable cutouts file; ``run_dir`` cannot be created or written in.
    """
    run_dir = Path(run_dir)
    config = config or TrainConfig()
    overrides = dict(overrides or {})
    # before any work: the checkpoints of an hour's training must have somewhere to go
    writable_folder(run_dir, fix="choose a run folder (-o) where you can write, or make its folder writable")
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run_dir / LATEST)
        config = _resumed_config(ckpt, overrides, run_dir / LATEST)
    config.validate()
    retain_freed_memory()   # large batch temporaries reuse memory instead of faulting in fresh pages
    device = resolve_device(config.device)
    info = distributed.init_distributed(device.type)
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not info.is_main:  # rank 0 alone logs and draws progress
        logging.getLogger("galexplorer").setLevel(logging.WARNING)
        progress.configure(enabled=False)
    try:
        report = _train(Path(cutouts), run_dir, config, ckpt, init, stop_after, device, info)
    except BaseException:
        # no barrier: the other processes may be mid-epoch and would never meet it
        distributed.shutdown(synchronise=False)
        raise
    distributed.shutdown()
    return report


@dataclass
class _Cutouts:
    """What the run reads from the cutouts file before it builds anything."""

    path: Path
    bands: list[str]
    n: int
    stamp: int
    uuid: str | None
    labels: np.ndarray | None  # the --eval-column values, or None
    stats: BandStats


@dataclass
class _Plan:
    """The fixed numbers of the run: device, precision, batch and schedule lengths."""

    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    info: distributed.DistInfo
    amp: bool
    batch: int
    steps_per_epoch: int
    total_steps: int
    warmup: int


@dataclass
class _State:
    """The model and everything a step changes; a checkpoint holds all of it (``--resume``)."""

    model: nn.Module  # wrapped in DistributedDataParallel under torchrun
    inner: nn.Module  # the unwrapped model: its backbone, target update and state_dict
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    aug_gen: torch.Generator
    start_epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"value": -math.inf, "epoch": 0})


@dataclass
class _Data:
    """The stamps the steps read, and how they are drawn and augmented."""

    source: StampSource
    sampler: torch.utils.data.DistributedSampler
    loader: torch.utils.data.DataLoader
    augment: AstroAugment


@dataclass
class _Epoch:
    """What one epoch's steps gave."""

    row: dict[str, Any]  # its metrics.csv row (rank 0 adds the probes' figures)
    loss: float  # mean loss over the steps and processes
    speed: float  # images per second, all processes together


@dataclass
class _Probes:
    """Rank 0's fixed measurements after each epoch: collapse monitor, view retrieval, kNN/linear."""

    rows: np.ndarray  # the monitor stamps (rows of the cutouts file)
    eval_set: LabelledSet | None
    reference: list[float] | None  # the untrained network's effective rank and pca95
    monitor: CollapseMonitor
    retrieval_views: torch.Tensor | None  # one fixed augmented view per monitor stamp (rank 0 only)


def _read_cutouts(cutouts: Path, run_dir: Path, cfg: TrainConfig, ckpt: dict[str, Any] | None,
                  device: torch.device) -> tuple[TrainConfig, _Cutouts]:
    """Check the cutouts file against the options (and the checkpoint); resolve image size and stem."""
    with CutoutStore(cutouts) as cut:
        bands, n, stamp = list(cut.bands), cut.n, cut.size
        uuid = cut.uuid
        if n == 0:
            raise InputError("the cutouts file holds no objects", cutouts, "ingest some stamps first")
        cfg.validate(len(bands))
        if ckpt is not None:
            check_fits({"bands": ckpt.get("bands")}, run_dir / LATEST, bands=bands)
            if ckpt.get("cutouts_uuid") and uuid and ckpt["cutouts_uuid"] != uuid:
                log.warning("resuming on a different cutouts file than the run started with (uuid %s, not %s)",
                            uuid, ckpt["cutouts_uuid"])
        image_size = cfg.image_size or min(64, stamp)
        if image_size > stamp:
            raise ConfigError(f"--image-size {image_size} is larger than the {stamp}-px stamps of {cutouts.name}",
                              hint=f"use --image-size {stamp} or smaller")
        cfg = dataclasses.replace(cfg, image_size=image_size,
                                  stem=resolve_stem(cfg.stem, image_size, device.type))
        labels = cut.column(cfg.eval_column) if cfg.eval_column else None
        if ckpt is not None:
            stats = BandStats.from_dict(ckpt["stats"])
        else:
            stats = compute_band_stats(cut, cfg.stats_objects, cfg.seed)
    return cfg, _Cutouts(cutouts, bands, n, stamp, uuid, labels, stats)


def _plan(cfg: TrainConfig, data: _Cutouts, run_dir: Path, device: torch.device,
          info: distributed.DistInfo) -> _Plan:
    """Batch size per process (at most the stamps each holds), steps per epoch and warm-up."""
    per_rank = math.ceil(data.n / info.world_size)
    batch = min(cfg.batch_size, per_rank)
    if batch < 2:
        raise InputError(f"{data.n} stamp(s) are too few to train on ({info.world_size} process(es))", data.path,
                         "self-supervised training needs at least 2 stamps per process")
    if batch < cfg.batch_size:
        log.info("only %d stamps per process: batch size %d instead of %d", per_rank, batch, cfg.batch_size)
    steps_per_epoch = per_rank // batch
    return _Plan(cfg, run_dir, device, info, amp=_precision(cfg.precision, device), batch=batch,
                 steps_per_epoch=steps_per_epoch, total_steps=steps_per_epoch * cfg.epochs,
                 warmup=warmup_steps_for(cfg.warmup_epochs, cfg.epochs, steps_per_epoch))


def _prepare_run_dir(plan: _Plan, resuming: bool) -> None:
    """Rank 0 clears an old run (unless resuming) and writes config.json; the others wait."""
    run_dir = plan.run_dir
    if plan.info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resuming and any((run_dir / f).exists() for f in RUN_FILES):
            clear_run(run_dir)
            log.info("%s already held a run: starting afresh and replacing it (use --resume to continue one)",
                     run_dir)
        with replacing(run_dir / "config.json") as tmp:
            tmp.write_text(plan.cfg.to_json(), encoding="utf-8")
    distributed.barrier()


def _build_state(plan: _Plan, bands: list[str], init: str | Path | None, ckpt: dict[str, Any] | None) -> _State:
    """Model, optimiser, schedule and augmentation generator: fresh (seeded), or from the checkpoint."""
    cfg, device, info = plan.cfg, plan.device, plan.info
    _seed_everything(cfg.seed)
    model = _build_model(cfg, len(bands))
    if init and ckpt is None:
        _load_init(model, init, cfg, bands)
    model.to(device)
    if info.enabled and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif info.enabled:
        log.info("SyncBatchNorm needs CUDA; on CPU each process normalises over its own batch")
    optimizer = make_optimizer(model, cfg)
    total_steps, warmup = plan.total_steps, plan.warmup
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(min(s, total_steps - 1), total_steps, warmup))
    aug_gen = torch.Generator(device=device)
    aug_gen.manual_seed(cfg.seed * 1_000_003 + info.rank + 1)
    state = _State(model, model, optimizer, scheduler, aug_gen)
    if ckpt is not None:
        _restore(state, ckpt, plan)
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        state.model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    return state


def _restore(state: _State, ckpt: dict[str, Any], plan: _Plan) -> None:
    """Load weights, optimiser, schedule, counters and every random stream from the checkpoint."""
    info = plan.info
    try:
        state.model.load_state_dict(ckpt["model"])
        state.optimizer.load_state_dict(ckpt["optimizer"])
        state.scheduler.load_state_dict(ckpt["scheduler"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"the checkpoint does not fit this model ({str(exc).splitlines()[0][:120]})",
                              plan.run_dir / LATEST, "start a new run") from None
    state.start_epoch, state.step = int(ckpt["epoch"]), int(ckpt["step"])
    state.history = list(ckpt.get("metrics", []))
    state.best = dict(ckpt.get("best", state.best))
    set_rng_state(ckpt["rng"], state.aug_gen)
    per_rank = ckpt["rng"].get("augment_ranks", [])
    if len(per_rank) == info.world_size:
        state.aug_gen.set_state(per_rank[info.rank].cpu())
    elif info.enabled:  # another number of processes: a fresh, distinct stream per process
        state.aug_gen.manual_seed(plan.cfg.seed * 1_000_003 + info.rank + 1 + 7919 * state.start_epoch)
    log.info("resuming %s after epoch %d (step %d)", plan.run_dir, state.start_epoch, state.step)


def _build_data(plan: _Plan, data: _Cutouts) -> _Data:
    cfg, device, info = plan.cfg, plan.device, plan.info
    source = StampSource(data.path)
    dataset = BatchDataset(source)
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                                  shuffle=True, seed=cfg.seed, drop_last=False)
    loader = torch.utils.data.DataLoader(
        dataset, sampler=torch.utils.data.BatchSampler(sampler, plan.batch, drop_last=True), batch_size=None,
        num_workers=cfg.workers, pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0)
    augment = AstroAugment(cfg.augment, cfg.image_size, data.stats.median, data.stats.mad)
    return _Data(source, sampler, loader, augment)


def _encoder(plan: _Plan, state: _State, data: _Cutouts) -> Encoder:
    return Encoder(state.inner.backbone, data.stats.median, data.stats.mad, plan.cfg.image_size).to(plan.device)


def _build_probes(plan: _Plan, state: _State, data: _Cutouts, stamps: _Data,
                  ckpt: dict[str, Any] | None) -> _Probes:
    """The monitor stamps, the labelled set, the collapse monitor's reference and the retrieval views."""
    cfg, device = plan.cfg, plan.device
    rows = np.sort(np.random.default_rng(cfg.seed).choice(data.n, min(data.n, cfg.monitor_objects),
                                                          replace=False))
    eval_set: LabelledSet | None = labelled_set(data.labels, cfg.eval_column, cfg.eval_objects, cfg.seed) \
        if data.labels is not None else None
    reference = ckpt.get("monitor_reference") if ckpt is not None else None
    retrieval_views = None
    if plan.info.is_main and reference is None:
        # the starting value the monitor compares with: the untrained network on the probe set
        start = collapse_stats(_embed_rows(_encoder(plan, state, data), stamps.source, rows, device, plan.amp))
        reference = [start.effective_rank, start.pca95]
        log.info("before training: effective rank %.1f, %d PCA components for 95%% of the variance",
                 *reference)
    monitor = CollapseMonitor(reference=None if reference is None else (float(reference[0]), int(reference[1])))
    if plan.info.is_main:
        # one fixed augmented view per monitor stamp, from its own generator: the training
        # streams (and so --resume) are untouched
        view_gen = torch.Generator(device=device)
        view_gen.manual_seed(cfg.seed * 7919 + 17)
        with torch.no_grad():
            retrieval_views = stamps.augment(torch.from_numpy(stamps.source.read(rows)).to(device), view_gen,
                                             normalise=True)
    return _Probes(rows, eval_set, reference, monitor, retrieval_views)


def _raise_bad_pixels(cutouts: Path, rows: torch.Tensor, bad: torch.Tensor) -> None:
    with CutoutStore(cutouts) as cut:
        ids = [str(cut.ids[r]) for r in rows[bad].tolist()[:3]]
    raise InputError(f"NaN or inf pixels in object(s) {', '.join(ids)}", cutouts,
                     "replace or drop them (galexplorer ingest replaces NaN by the sky level)")


def _step(plan: _Plan, state: _State, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """One optimiser step on a pair of views; a CUDA out-of-memory becomes a ConfigError naming a batch size."""
    device, optimizer = plan.device, state.optimizer
    try:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=plan.amp):
            loss = state.model(v1, v2)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    except torch.cuda.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
        raise _oom_error(plan.batch, plan.cfg, device) from None
    return loss


def _train_epoch(plan: _Plan, state: _State, stamps: _Data, cutouts: Path, epoch: int) -> _Epoch:
    """The steps of one epoch, with rank 0's progress bar."""
    cfg, device, info = plan.cfg, plan.device, plan.info
    stamps.sampler.set_epoch(epoch)
    state.model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    images, lr, tau = 0, state.optimizer.param_groups[0]["lr"], None
    bar = progress.Bar(f"epoch {epoch + 1}/{cfg.epochs}", total=plan.steps_per_epoch, unit="step") \
        if info.is_main else None
    try:
        for i, (x, rows, bad) in enumerate(stamps.loader):
            if bool(bad.any()):
                _raise_bad_pixels(cutouts, rows, bad)
            x = x.to(device, non_blocking=True)
            with torch.no_grad():
                v1 = stamps.augment(x, state.aug_gen, normalise=True)
                v2 = stamps.augment(x, state.aug_gen, normalise=True)
            lr = state.optimizer.param_groups[0]["lr"]
            loss = _step(plan, state, v1, v2)
            state.scheduler.step()
            state.step += 1
            if cfg.method == "byol":
                tau = cosine_tau(state.step, plan.total_steps, cfg.tau_base)
                state.inner.update_target(tau)
            loss_sum += loss.detach()
            images += x.shape[0]
            if bar is not None:
                bar.update(1)
                if i % 10 == 0 or i + 1 == plan.steps_per_epoch:
                    elapsed = time.perf_counter() - t0
                    bar.set_postfix(loss=f"{loss.item():.4f}",
                                    img_s=f"{images * info.world_size / max(elapsed, 1e-9):.1f}")
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - t0
    mean_loss = float(distributed.all_reduce_mean(loss_sum / max(plan.steps_per_epoch, 1)))
    speed = images * info.world_size / max(seconds, 1e-9)
    if not math.isfinite(mean_loss):
        raise ConfigError(f"the loss became {mean_loss} in epoch {epoch + 1} (training diverged)",
                          hint=f"lower --lr (now {cfg.lr}); the last good checkpoint is kept in {plan.run_dir}")
    row = {"epoch": epoch + 1, "step": state.step, "loss": round(mean_loss, 6), "lr": lr,
           "tau": None if tau is None else round(tau, 6), "images_per_s": round(speed, 2),
           "seconds": round(seconds, 2)}
    return _Epoch(row, mean_loss, speed)


def _measure(plan: _Plan, state: _State, data: _Cutouts, stamps: _Data, probes: _Probes,
             result: _Epoch) -> tuple[bool, float]:
    """Rank 0 after an epoch: collapse statistics, view retrieval and (with labels) kNN and linear
    accuracy, added to the epoch's row. Returns (collapsed this epoch, view retrieval)."""
    cfg, device, amp = plan.cfg, plan.device, plan.amp
    row, mean_loss = result.row, result.loss
    epoch = row["epoch"]
    enc = _encoder(plan, state, data)
    emb = _embed_rows(enc, stamps.source, probes.rows, device, amp)
    cs = probes.monitor.check(emb, epoch)
    retrieval = view_retrieval(state.inner.backbone, probes.retrieval_views, emb)
    row.update(embedding_std=round(cs.embedding_std, 5), effective_rank=round(cs.effective_rank, 3),
               pca95=cs.pca95, view_retrieval=round(retrieval, 4))
    if probes.eval_set is not None:
        knn, lin = evaluate(_embed_rows(enc, stamps.source, probes.eval_set.rows, device, amp), probes.eval_set,
                            cfg.seed)
        row.update(knn_acc=round(knn, 4), linear_acc=round(lin, 4))
        log.info("epoch %d: loss %.4f, kNN accuracy %.3f, linear probe %.3f", epoch, mean_loss, knn, lin)
    else:
        log.info("epoch %d: loss %.4f, %.1f images/s, effective rank %.1f, %d PCA components, view "
                 "retrieval %.3f", epoch, mean_loss, result.speed, cs.effective_rank, cs.pca95, retrieval)
    return cs.collapsed, retrieval


def _save_epoch(plan: _Plan, state: _State, data: _Cutouts, probes: _Probes, result: _Epoch,
                retrieval: float, aug_states: list, replicas: list) -> None:
    """Rank 0: the checkpoint, metrics.csv and, when the epoch is the best so far, encoder.pt."""
    cfg, row = plan.cfg, result.row
    epoch = row["epoch"]
    state.history.append(row)
    # the best epoch by a label-free measure (not the loss, which can fall while the
    # representation collapses; not the kNN accuracy, which needs labels a survey lacks)
    # a tie goes to the later epoch: on small or faint sets retrieval can sit at the same
    # value for many epochs (the demo's stays at chance), and then the longer-trained weights
    # are the better guess than the first epoch's
    score = retrieval
    is_best = score >= state.best["value"]
    if is_best:
        state.best = {"value": float(score), "epoch": epoch}
    save_checkpoint(plan.run_dir, {
        "config": cfg.to_json(), "bands": data.bands, "stats": data.stats.to_dict(), "epoch": epoch,
        "step": state.step, "model": state.inner.state_dict(), "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(), "rng": {**rng_state(state.aug_gen), "augment_ranks": aug_states},
        "metrics": state.history, "best": state.best, "cutouts_uuid": data.uuid, "stamp_size": data.stamp,
        "replicas": replicas, "monitor_reference": probes.reference,
    }, best=is_best)
    _write_metrics(plan.run_dir, state.history)
    if is_best:
        encoder_meta = {"bands": data.bands, "method": cfg.method, "image_size": cfg.image_size,
                        "stamp_size": data.stamp, "normalization": data.stats.to_dict(), "config": cfg.to_dict(),
                        "cutouts_path": str(data.path.resolve()), "cutouts_uuid": data.uuid}
        save_encoder(plan.run_dir, state.inner.backbone, {**encoder_meta, "epoch": epoch, "loss": result.loss,
                                                          "selected_by": "view_retrieval",
                                                          "view_retrieval": retrieval})


def _train(cutouts: Path, run_dir: Path, cfg: TrainConfig, ckpt, init, stop_after, device: torch.device,
           info: distributed.DistInfo) -> TrainReport:
    cfg, data = _read_cutouts(cutouts, run_dir, cfg, ckpt, device)
    plan = _plan(cfg, data, run_dir, device, info)
    _prepare_run_dir(plan, resuming=ckpt is not None)
    state = _build_state(plan, data.bands, init, ckpt)
    stamps = _build_data(plan, data)
    probes = _build_probes(plan, state, data, stamps, ckpt)
    if info.is_main:
        log.info("training %s/%s (%s stem) on %d stamps of %d bands, %d px crops: %d epochs x %d steps of %d "
                 "on %s%s%s", cfg.method, cfg.backbone, cfg.stem, data.n, len(data.bands), cfg.image_size,
                 cfg.epochs, plan.steps_per_epoch, plan.batch, device,
                 f" x{info.world_size} processes" if info.enabled else "", ", bf16" if plan.amp else "")

    done_now = 0
    collapsed = False
    last_loss = last_speed = None
    for epoch in range(state.start_epoch, cfg.epochs):
        if stop_after is not None and done_now >= stop_after:
            break
        result = _train_epoch(plan, state, stamps, cutouts, epoch)
        # every process's augmentation stream goes into the checkpoint, so --resume continues each
        aug_states = distributed.all_gather_object(state.aug_gen.get_state())
        # every process's weights, to check that DDP kept the replicas identical
        replicas = distributed.all_gather_object(distributed.parameter_fingerprint(state.inner))
        if len(set(replicas)) > 1:
            log.warning("the %d processes hold different weights after epoch %d", len(replicas), epoch + 1)
        if info.is_main:
            collapsed_now, retrieval = _measure(plan, state, data, stamps, probes, result)
            collapsed = collapsed or collapsed_now
            _save_epoch(plan, state, data, probes, result, retrieval, aug_states, replicas)
        distributed.barrier()
        done_now += 1
        last_loss, last_speed = result.loss, result.speed
    stamps.source.close()
    encoder_path = run_dir / "encoder.pt"
    epochs_done = state.start_epoch + done_now
    monitor = probes.monitor
    monitor.finish(epochs_done)
    note = ""
    if done_now == 0 and ckpt is not None:
        note = f"nothing to do: the run already finished its {cfg.epochs} epochs (raise --epochs to go on)"
    return TrainReport(run_dir, epochs_done, cfg.epochs, last_loss, last_speed,
                       encoder_path if encoder_path.exists() else None, collapsed, state.history, info.is_main,
                       note, best_epoch=state.best["epoch"] or None, dimensional_collapse=monitor.dimensional,
                       dimensional_epochs=list(monitor.dimensional_epochs),
                       dimensional_at_end=monitor.dimensional_now)


__all__ = ["TrainReport", "train", "BEST", "LATEST"]
