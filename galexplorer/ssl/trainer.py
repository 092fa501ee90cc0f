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
        return _train(Path(cutouts), run_dir, config, ckpt, init, stop_after, device, info)
    finally:
        distributed.shutdown()


def _train(cutouts: Path, run_dir: Path, cfg: TrainConfig, ckpt, init, stop_after, device: torch.device,
           info: distributed.DistInfo) -> TrainReport:
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
    per_rank = math.ceil(n / info.world_size)
    batch = min(cfg.batch_size, per_rank)
    if batch < 2:
        raise InputError(f"{n} stamp(s) are too few to train on ({info.world_size} process(es))", cutouts,
                         "self-supervised training needs at least 2 stamps per process")
    if batch < cfg.batch_size:
        log.info("only %d stamps per process: batch size %d instead of %d", per_rank, batch, cfg.batch_size)
    steps_per_epoch = per_rank // batch
    total_steps = steps_per_epoch * cfg.epochs
    warmup = warmup_steps_for(cfg.warmup_epochs, cfg.epochs, steps_per_epoch)
    amp = _precision(cfg.precision, device)

    # -- the run folder ----------------------------------------------------------------------------
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None and any((run_dir / f).exists() for f in RUN_FILES):
            clear_run(run_dir)
            log.info("%s already held a run: starting afresh and replacing it (use --resume to continue one)",
                     run_dir)
        with replacing(run_dir / "config.json") as tmp:
            tmp.write_text(cfg.to_json(), encoding="utf-8")
    distributed.barrier()

    # -- model, optimiser, schedule ----------------------------------------------------------------
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
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(min(s, total_steps - 1), total_steps, warmup))
    aug_gen = torch.Generator(device=device)
    aug_gen.manual_seed(cfg.seed * 1_000_003 + info.rank + 1)
    start_epoch, step = 0, 0
    history: list[dict[str, Any]] = []
    best = {"value": -math.inf, "epoch": 0}
    if ckpt is not None:
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"the checkpoint does not fit this model ({str(exc).splitlines()[0][:120]})",
                                  run_dir / LATEST, "start a new run") from None
        start_epoch, step = int(ckpt["epoch"]), int(ckpt["step"])
        history = list(ckpt.get("metrics", []))
        best = dict(ckpt.get("best", best))
        set_rng_state(ckpt["rng"], aug_gen)
        per_rank = ckpt["rng"].get("augment_ranks", [])
        if len(per_rank) == info.world_size:
            aug_gen.set_state(per_rank[info.rank].cpu())
        elif info.enabled:  # another number of processes: a fresh, distinct stream per process
            aug_gen.manual_seed(cfg.seed * 1_000_003 + info.rank + 1 + 7919 * start_epoch)
        log.info("resuming %s after epoch %d (step %d)", run_dir, start_epoch, step)
    inner = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    # -- data --------------------------------------------------------------------------------------
    source = StampSource(cutouts)
    dataset = BatchDataset(source)
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                                                  shuffle=True, seed=cfg.seed, drop_last=False)
    loader = torch.utils.data.DataLoader(
        dataset, sampler=torch.utils.data.BatchSampler(sampler, batch, drop_last=True), batch_size=None,
        num_workers=cfg.workers, pin_memory=device.type == "cuda", persistent_workers=cfg.workers > 0)
    augment = AstroAugment(cfg.augment, cfg.image_size, stats.median, stats.mad)
    monitor_rows = np.sort(np.random.default_rng(cfg.seed).choice(n, min(n, cfg.monitor_objects), replace=False))
    eval_set: LabelledSet | None = labelled_set(labels, cfg.eval_column, cfg.eval_objects, cfg.seed) \
        if labels is not None else None
    reference = ckpt.get("monitor_reference") if ckpt is not None else None
    retrieval_views = None
    if info.is_main and reference is None:
        # the starting value the monitor compares with: the untrained network on the probe set
        start = collapse_stats(_embed_rows(Encoder(inner.backbone, stats.median, stats.mad, cfg.image_size)
                                           .to(device), source, monitor_rows, device, amp))
        reference = [start.effective_rank, start.pca95]
        log.info("before training: effective rank %.1f, %d PCA components for 95%% of the variance",
                 *reference)
    monitor = CollapseMonitor(reference=None if reference is None else (float(reference[0]), int(reference[1])))
    if info.is_main:
        # one fixed augmented view per monitor stamp, from its own generator: the training
        # streams (and so --resume) are untouched
        view_gen = torch.Generator(device=device)
        view_gen.manual_seed(cfg.seed * 7919 + 17)
        with torch.no_grad():
            retrieval_views = augment(torch.from_numpy(source.read(monitor_rows)).to(device), view_gen,
                                      normalise=True)
    encoder_meta = {"bands": bands, "method": cfg.method, "image_size": cfg.image_size, "stamp_size": stamp,
                    "normalization": stats.to_dict(), "config": cfg.to_dict(),
                    "cutouts_path": str(cutouts.resolve()), "cutouts_uuid": uuid}
    if info.is_main:
        log.info("training %s/%s (%s stem) on %d stamps of %d bands, %d px crops: %d epochs x %d steps of %d "
                 "on %s%s%s", cfg.method, cfg.backbone, cfg.stem, n, len(bands), cfg.image_size, cfg.epochs,
                 steps_per_epoch, batch, device, f" x{info.world_size} processes" if info.enabled else "",
                 ", bf16" if amp else "")

    # -- epochs ------------------------------------------------------------------------------------
    done_now = 0
    collapsed = False
    last_loss = last_speed = None
    for epoch in range(start_epoch, cfg.epochs):
        if stop_after is not None and done_now >= stop_after:
            break
        sampler.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        images, lr, tau = 0, optimizer.param_groups[0]["lr"], None
        bar = progress.Bar(f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch, unit="step") \
            if info.is_main else None
        try:
            for i, (x, rows, bad) in enumerate(loader):
                if bool(bad.any()):
                    with CutoutStore(cutouts) as cut:
                        ids = [str(cut.ids[r]) for r in rows[bad].tolist()[:3]]
                    raise InputError(f"NaN or inf pixels in object(s) {', '.join(ids)}", cutouts,
                                     "replace or drop them (galexplorer ingest replaces NaN by the sky level)")
                x = x.to(device, non_blocking=True)
                with torch.no_grad():
                    v1 = augment(x, aug_gen, normalise=True)
                    v2 = augment(x, aug_gen, normalise=True)
                lr = optimizer.param_groups[0]["lr"]
                try:
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                        loss = model(v1, v2)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                except torch.cuda.OutOfMemoryError:
                    optimizer.zero_grad(set_to_none=True)
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    raise _oom_error(batch, cfg, device) from None
                scheduler.step()
                step += 1
                if cfg.method == "byol":
                    tau = cosine_tau(step, total_steps, cfg.tau_base)
                    inner.update_target(tau)
                loss_sum += loss.detach()
                images += x.shape[0]
                if bar is not None:
                    bar.update(1)
                    if i % 10 == 0 or i + 1 == steps_per_epoch:
                        elapsed = time.perf_counter() - t0
                        bar.set_postfix(loss=f"{loss.item():.4f}",
                                        img_s=f"{images * info.world_size / max(elapsed, 1e-9):.1f}")
        finally:
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - t0
        mean_loss = float(distributed.all_reduce_mean(loss_sum / max(steps_per_epoch, 1)))
        speed = images * info.world_size / max(seconds, 1e-9)
        if not math.isfinite(mean_loss):
            raise ConfigError(f"the loss became {mean_loss} in epoch {epoch + 1} (training diverged)",
                              hint=f"lower --lr (now {cfg.lr}); the last good checkpoint is kept in {run_dir}")
        row: dict[str, Any] = {"epoch": epoch + 1, "step": step, "loss": round(mean_loss, 6), "lr": lr,
                               "tau": None if tau is None else round(tau, 6), "images_per_s": round(speed, 2),
                               "seconds": round(seconds, 2)}
        # every process's augmentation stream goes into the checkpoint, so --resume continues each
        aug_states = distributed.all_gather_object(aug_gen.get_state())
        # every process's weights, to check that DDP kept the replicas identical
        replicas = distributed.all_gather_object(distributed.parameter_fingerprint(inner))
        if len(set(replicas)) > 1:
            log.warning("the %d processes hold different weights after epoch %d", len(replicas), epoch + 1)
        if info.is_main:
            enc = Encoder(inner.backbone, stats.median, stats.mad, cfg.image_size).to(device)
            emb = _embed_rows(enc, source, monitor_rows, device, amp)
            cs = monitor.check(emb, epoch + 1)
            collapsed = collapsed or cs.collapsed
            retrieval = view_retrieval(inner.backbone, retrieval_views, emb)
            row.update(embedding_std=round(cs.embedding_std, 5), effective_rank=round(cs.effective_rank, 3),
                       pca95=cs.pca95, view_retrieval=round(retrieval, 4))
            if eval_set is not None:
                knn, lin = evaluate(_embed_rows(enc, source, eval_set.rows, device, amp), eval_set, cfg.seed)
                row.update(knn_acc=round(knn, 4), linear_acc=round(lin, 4))
                log.info("epoch %d: loss %.4f, kNN accuracy %.3f, linear probe %.3f", epoch + 1, mean_loss, knn, lin)
            else:
                log.info("epoch %d: loss %.4f, %.1f images/s, effective rank %.1f, %d PCA components, view "
                         "retrieval %.3f", epoch + 1, mean_loss, speed, cs.effective_rank, cs.pca95, retrieval)
            history.append(row)
            # the best epoch by a label-free measure (not the loss, which can fall while the
            # representation collapses; not the kNN accuracy, which needs labels a survey lacks)
            # a tie goes to the later epoch: on small or faint sets retrieval can sit at the same
            # value for many epochs (the demo's stays at chance), and then the longer-trained weights
            # are the better guess than the first epoch's
            score = retrieval
            is_best = score >= best["value"]
            if is_best:
                best = {"value": float(score), "epoch": epoch + 1}
            save_checkpoint(run_dir, {
                "config": cfg.to_json(), "bands": bands, "stats": stats.to_dict(), "epoch": epoch + 1,
                "step": step, "model": inner.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": {**rng_state(aug_gen), "augment_ranks": aug_states}, "metrics": history,
                "best": best, "cutouts_uuid": uuid, "stamp_size": stamp, "replicas": replicas,
                "monitor_reference": reference,
            }, best=is_best)
            _write_metrics(run_dir, history)
            if is_best:
                save_encoder(run_dir, inner.backbone, {**encoder_meta, "epoch": epoch + 1, "loss": mean_loss,
                                                       "selected_by": "view_retrieval",
                                                       "view_retrieval": retrieval})
        distributed.barrier()
        done_now += 1
        last_loss, last_speed = mean_loss, speed
    source.close()
    encoder_path = run_dir / "encoder.pt"
    epochs_done = start_epoch + done_now
    monitor.finish(epochs_done)
    note = ""
    if done_now == 0 and ckpt is not None:
        note = f"nothing to do: the run already finished its {cfg.epochs} epochs (raise --epochs to go on)"
    return TrainReport(run_dir, epochs_done, cfg.epochs, last_loss, last_speed,
                       encoder_path if encoder_path.exists() else None, collapsed, history, info.is_main, note,
                       best_epoch=best["epoch"] or None, dimensional_collapse=monitor.dimensional,
                       dimensional_epochs=list(monitor.dimensional_epochs), dimensional_at_end=monitor.dimensional_now)


__all__ = ["TrainReport", "train", "BEST", "LATEST"]
