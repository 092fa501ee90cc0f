"""Fine-tune a trained encoder on the user's labels and the unlabelled objects (issue #22 item 2).

The target is "interesting or not" (a label ≥ ``interesting_above``), as AnomalyMatch frames
anomaly search. Each step takes a batch of labelled stamps and ``unlabelled_ratio`` times as many
unlabelled ones (FixMatch, Sohn et al. 2020, as AnomalyMatch uses it):

* labelled: a weak view (rotation, flip, ±2 px jitter) through backbone + a linear head, binary
  cross-entropy weighted by the class balance (``pos_weight`` = non-finds / finds);
* unlabelled: the head's probability on a weak view is the pseudo-label where it is confident
  (≥ ``confidence`` or ≤ 1 − ``confidence``); the strong view (the training augmentations: noise,
  blur, gain, scale) of the same stamp learns it (``unlabelled_weight``).

A stratified ``holdout`` fraction of the labelled objects (when there are at least
:data:`MIN_FINDS_FOR_HOLDOUT` finds) is kept out: after each epoch its average precision decides
the best epoch, and ``patience`` epochs without a gain stop the run. With fewer finds there is no
hold-out and the run is ``fixed_epochs`` long (said in the report). The best backbone is written
as a new run folder (``encoder.pt`` + ``encoder.json``, the same normalisation and crop, with the
refine's options and figures in ``refine.json``), which ``galexplorer embed`` and
:func:`galexplorer.refining.refine_store` use as any run. ``refine-checkpoint.pt`` after each epoch
makes the run resumable.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import progress
from ..errors import CheckpointError, ConfigError
from ..store import CutoutStore
from .augment import AstroAugment
from .checkpoint import _load, _save, check_fits, save_encoder
from .config import AugmentConfig, TrainConfig
from .embed import load_encoder, resolve_device
from .refine_config import FixMatchConfig

log = logging.getLogger(__name__)

REFINE_CHECKPOINT = "refine-checkpoint.pt"
REFINE_FORMAT = "galexplorer-refine-checkpoint"
MIN_FINDS_FOR_HOLDOUT = 4
IN_MEMORY_BYTES = 1 << 30
WEAK = AugmentConfig(jitter_px=2, scale=False, blur=False, noise=False, gain=False)


@dataclass
class RefineConfig(FixMatchConfig):
    """Options of a refine (saved in ``refine.json``): :class:`FixMatchConfig`'s, with its
    defaults, and the linear head's learning rate."""

    head_lr: float = 1e-3

    def _validate_own(self) -> None:
        if self.lr <= 0 or self.head_lr <= 0:
            raise ConfigError("learning rates must be > 0")


@dataclass
class RefineReport:
    """What a refine did."""

    run_dir: Path
    n_labelled: int
    n_finds: int
    epochs_run: int
    best_epoch: int
    holdout_ap: list[float] = field(default_factory=list)
    start_ap: float = float("nan")
    pseudo_fraction: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    resumed_from: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["run_dir"] = str(self.run_dir)
        return d

    def summary(self) -> str:
        lines = [f"refined the encoder on {self.n_labelled} labels ({self.n_finds} finds) and the unlabelled "
                 f"objects: {self.epochs_run} epochs in {self.seconds:.0f} s -> {self.run_dir}"]
        if self.holdout_ap:
            lines.append(f"  held-out average precision {self.start_ap:.3f} before, "
                         f"{self.holdout_ap[self.best_epoch - 1]:.3f} at the best epoch {self.best_epoch}"
                         + (" (stopped early)" if self.stopped_early else ""))
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


def labels_hash(rows: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256(np.asarray(rows, np.int64).tobytes())
    h.update(np.asarray(labels, np.float32).tobytes())
    return h.hexdigest()[:16]


def _split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, holdout) indices into ``y``."""
    hold = []
    for cls in (True, False):
        idx = np.flatnonzero(y == cls)
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        hold.append(rng.permutation(idx)[:k])
    hold = np.sort(np.concatenate(hold))
    train = np.setdiff1d(np.arange(len(y)), hold)
    return train, hold


def _average_precision(score: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(-score, kind="stable")
    hits = y[order].astype(np.float64)
    if hits.sum() == 0:
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


class _Images:
    """Stamps by cutouts row: all in memory when they fit in :data:`IN_MEMORY_BYTES`."""

    def __init__(self, cut: CutoutStore):
        self.cut = cut
        n, c, s, _ = cut.shape
        self.all = cut.read(slice(0, n)) if n * c * s * s * 4 <= IN_MEMORY_BYTES else None

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        x = self.all[rows] if self.all is not None else self.cut.read(rows)
        return torch.from_numpy(np.nan_to_num(np.ascontiguousarray(x, np.float32)))


def refine_encoder(cutouts_path: str | Path, run_dir: str | Path, out_dir: str | Path, rows: np.ndarray,
                   labels: np.ndarray, config: RefineConfig | None = None, resume: bool = False) -> RefineReport:
    """Fine-tune the run's encoder on labelled cutouts rows and the unlabelled rest.

    Args:
        cutouts_path: the cutouts file the run was trained on.
        run_dir: the run folder (``encoder.pt`` + ``encoder.json``).
        out_dir: the new run folder (created; a finished refine there is replaced unless ``resume``).
        rows: (n,) cutouts rows of the labelled objects; labels: their 0-5 scores.
        config: :class:`RefineConfig`.
        resume: continue from ``out_dir/refine-checkpoint.pt`` (same labels only).

    Raises:
        ConfigError: no finds or no non-finds among the labels, bad options, or a checkpoint of
            other labels in ``out_dir`` with ``resume``.
        CheckpointError: a missing or foreign encoder, or bands that differ from the cutouts'.
    """
    cfg = (config or RefineConfig()).validate()
    t0 = time.perf_counter()
    rows = np.asarray(rows, np.int64)
    labels = np.asarray(labels, np.float32)
    y = cfg.finds(labels)
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    encoder, meta = load_encoder(run_dir, device)
    cut = CutoutStore(cutouts_path)
    try:
        check_fits(meta, Path(run_dir) / "encoder.json", bands=list(cut.bands))
        if rows.min(initial=0) < 0 or rows.max(initial=-1) >= cut.n:
            raise ConfigError(f"labelled rows outside the cutouts file's 0..{cut.n - 1}", cutouts_path)
        images = _Images(cut)
        return _refine(encoder, meta, cut, images, rows, labels, y, cfg, out_dir, resume, device, t0, run_dir)
    finally:
        cut.close()


@dataclass
class HoldoutPlan:
    """Which labelled objects train and which are held out to stop on, and for how many epochs.

    Attributes:
        train_idx, hold_idx: indices into the labels (hold_idx empty without a held-out set).
        max_epochs: at most this many epochs.
        note: why there is no held-out set ("" when there is one).
    """

    train_idx: np.ndarray
    hold_idx: np.ndarray
    max_epochs: int
    note: str = ""


def holdout_plan(y: np.ndarray, holdout: float, epochs: int, fixed_epochs: int,
                 rng: np.random.Generator) -> HoldoutPlan:
    """A stratified ``holdout`` fraction of ``y`` (bool, the finds) kept out when there are at least
    :data:`MIN_FINDS_FOR_HOLDOUT` finds; else every label trains for ``min(fixed_epochs, epochs)``."""
    n_pos = int(np.sum(y))
    if n_pos >= MIN_FINDS_FOR_HOLDOUT:
        train_idx, hold_idx = _split(y, holdout, rng)
        return HoldoutPlan(train_idx, hold_idx, epochs)
    max_epochs = min(fixed_epochs, epochs)
    return HoldoutPlan(np.arange(len(y)), np.empty(0, np.int64), max_epochs,
                       f"only {n_pos} finds: no held-out set to stop on, so a fixed {max_epochs} epochs "
                       f"(early stopping from {MIN_FINDS_FOR_HOLDOUT} finds)")


class _EncoderRefine:
    """One FixMatch fine-tuning of a backbone with a linear head (see the module's docstring)."""

    def __init__(self, encoder, meta, cut, images, rows, labels, y, cfg: RefineConfig, out_dir: Path, device):
        self.encoder, self.meta, self.images = encoder, meta, images
        self.rows, self.y, self.cfg, self.out_dir, self.device = rows, y, cfg, out_dir, device
        self.backbone = encoder.backbone
        self.head = nn.Linear(encoder.dim, 1).to(device)
        median, mad = encoder.median.flatten().cpu().numpy(), encoder.mad.flatten().cpu().numpy()
        self.weak = AstroAugment(WEAK, encoder.image_size, median, mad)
        self.strong = AstroAugment(_training_augment(meta), encoder.image_size, median, mad)
        self.gen = torch.Generator(device=device).manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.plan = holdout_plan(y, cfg.holdout, cfg.epochs, cfg.fixed_epochs, self.rng)
        labelled_mask = np.zeros(cut.n, bool)
        labelled_mask[rows] = True
        self.unlabelled = np.flatnonzero(~labelled_mask)
        train_y = y[self.plan.train_idx]
        self.pos_weight = torch.tensor([(~train_y).sum() / max(train_y.sum(), 1)], device=device)
        self.opt = torch.optim.AdamW([{"params": self.backbone.parameters(), "lr": cfg.lr},
                                      {"params": self.head.parameters(), "lr": cfg.head_lr}],
                                     weight_decay=cfg.weight_decay)
        self.key = labels_hash(rows, labels)
        self.ck_path = out_dir / REFINE_CHECKPOINT
        # the head starts as a logistic fit on the frozen embeddings, so the first epochs refine the
        # representation instead of teaching a random head
        _init_head(self.head, self.backbone, encoder, images, rows[self.plan.train_idx], train_y, device)
        self.start_ap = self.holdout_ap()
        self.history: list[float] = []
        self.pseudo: list[float] = []
        self.best_epoch, self.best_ap, self.best_state = 0, self.start_ap, copy.deepcopy(self.backbone.state_dict())
        self.first = 0

    def holdout_ap(self) -> float:
        hold = self.plan.hold_idx
        if len(hold) == 0:
            return float("nan")
        self.backbone.eval()
        with torch.inference_mode():
            x = self.images(self.rows[hold]).to(self.device)
            s = self.head(self.backbone(self.encoder.preprocess(x))).squeeze(1).float().cpu().numpy()
        self.backbone.train()
        return _average_precision(s, self.y[hold])

    def resume(self) -> None:
        """Continue from the checkpoint in the output folder (the same labels only)."""
        ck = _load(self.ck_path, "refine checkpoint", "start again without --resume")
        if ck.get("format") != REFINE_FORMAT or ck.get("labels_hash") != self.key:
            raise ConfigError("the refine checkpoint here was made from other labels", self.ck_path,
                              "start again without --resume, or use another output")
        self.backbone.load_state_dict(ck["backbone"])
        self.head.load_state_dict(ck["head"])
        self.opt.load_state_dict(ck["optimizer"])
        self.gen.set_state(ck["generator"])
        self.history, self.pseudo = list(ck["history"]), list(ck["pseudo"])
        self.best_epoch, self.best_ap, self.best_state = int(ck["best_epoch"]), float(ck["best_ap"]), ck["best_state"]
        self.first = int(ck["epoch"])
        self.rng = np.random.default_rng([self.cfg.seed, self.first])
        log.info("resuming the refine at epoch %d of %d", self.first + 1, self.plan.max_epochs)

    def step(self, idx: np.ndarray) -> tuple[int, int]:
        """One optimiser step on labelled objects ``idx`` (indices into the labels) and unlabelled
        ones; returns (confident pseudo-labels, unlabelled objects seen)."""
        cfg, dev, weak, strong, gen = self.cfg, self.device, self.weak, self.strong, self.gen
        xl = self.images(self.rows[idx]).to(dev)
        yl = torch.as_tensor(self.y[idx], dtype=torch.float32, device=dev)
        views = [weak.apply(xl, weak.sample(len(xl), xl.shape[1], gen, dev), gen, normalise=True)]
        n_u = min(len(self.unlabelled), cfg.unlabelled_ratio * len(idx))
        if n_u:
            xu = self.images(np.sort(self.rng.choice(self.unlabelled, n_u, replace=False))).to(dev)
            with torch.no_grad():
                wu = weak.apply(xu, weak.sample(n_u, xu.shape[1], gen, dev), gen, normalise=True)
                p = torch.sigmoid(self.head(self.backbone(wu)).squeeze(1))
            mask = (p >= cfg.confidence) | (p <= 1 - cfg.confidence)
            views.append(strong.apply(xu, strong.sample(n_u, xu.shape[1], gen, dev), gen, normalise=True))
        logits = self.head(self.backbone(torch.cat(views))).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logits[:len(idx)], yl, pos_weight=self.pos_weight)
        kept = 0
        if n_u:
            lu = F.binary_cross_entropy_with_logits(logits[len(idx):], (p >= 0.5).float(), reduction="none")
            loss = loss + cfg.unlabelled_weight * (lu * mask.float()).mean()
            kept = int(mask.sum())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return kept, n_u

    def epoch(self, epoch: int) -> None:
        """One pass over the training labels, then the held-out AP, the best state and the checkpoint."""
        order = self.rng.permutation(self.plan.train_idx)
        b = self.cfg.batch_size
        kept = seen = 0
        for s in range(max(1, math.ceil(len(order) / b))):
            k, n = self.step(order[s * b:(s + 1) * b])
            kept, seen = kept + k, seen + n
        self.pseudo.append(kept / max(seen, 1))
        ap = self.holdout_ap()
        self.history.append(ap)
        if len(self.plan.hold_idx) == 0 or (np.isfinite(ap) and ap > self.best_ap + 1e-6):
            self.best_epoch, self.best_ap, self.best_state = epoch + 1, ap, copy.deepcopy(self.backbone.state_dict())
        held = f"held-out AP {ap:.3f}" if np.isfinite(ap) else "no held-out finds to score"
        log.info("refine epoch %d: %s, %.0f%% of the unlabelled confident", epoch + 1, held, 100 * self.pseudo[-1])
        _save({"format": REFINE_FORMAT, "labels_hash": self.key, "epoch": epoch + 1,
               "backbone": self.backbone.state_dict(), "head": self.head.state_dict(),
               "optimizer": self.opt.state_dict(), "generator": self.gen.get_state(), "history": self.history,
               "pseudo": self.pseudo, "best_epoch": self.best_epoch, "best_ap": self.best_ap,
               "best_state": self.best_state}, self.ck_path)

    def run(self) -> bool:
        """The epochs (with a progress bar) until the last or early stopping; True when stopped early."""
        self.backbone.train()
        with progress.Bar("refine", total=self.plan.max_epochs, unit="epoch") as bar:
            bar.update(self.first)
            for epoch in range(self.first, self.plan.max_epochs):
                self.epoch(epoch)
                bar.update(1)
                if len(self.plan.hold_idx) and epoch + 1 - max(self.best_epoch, self.first) >= self.cfg.patience:
                    return True
        return False

    def save(self, stopped: bool, t0: float, run_dir) -> RefineReport:
        """Write the best backbone as a run folder (+ ``refine.json``) and return the report."""
        note = self.plan.note
        if self.best_epoch == 0:
            note = (note + "; " if note else "") + ("no epoch beat the encoder on the held-out labels: it is kept "
                                                    "unchanged")
        self.backbone.load_state_dict(self.best_state)
        self.backbone.eval()
        report = RefineReport(self.out_dir, len(self.rows), int(self.y.sum()), len(self.history), self.best_epoch,
                              self.history, self.start_ap, self.pseudo, time.perf_counter() - t0, stopped,
                              self.first, note)
        cfg = self.cfg.to_dict()
        keep = {k: v for k, v in self.meta.items() if k not in (
            "format", "version", "galexplorer_version", "created", "sha256", "backbone", "in_channels", "stem", "dim")}
        save_encoder(self.out_dir, self.backbone, {**keep, "refined_from": {
            "run": str(Path(run_dir).resolve()), "sha256": self.meta.get("sha256")},
            "refine": {"config": cfg, "labels_hash": self.key}})
        (self.out_dir / "refine.json").write_text(json.dumps({"config": cfg, "report": report.to_dict(),
                                                              "labels_hash": self.key}, indent=2, default=float),
                                                  encoding="utf-8")
        return report


def _refine(encoder, meta, cut, images, rows, labels, y, cfg: RefineConfig, out_dir: Path, resume: bool,
            device, t0: float, run_dir) -> RefineReport:
    job = _EncoderRefine(encoder, meta, cut, images, rows, labels, y, cfg, out_dir, device)
    out_dir.mkdir(parents=True, exist_ok=True)
    if resume and job.ck_path.exists():
        job.resume()
    stopped = job.run()
    return job.save(stopped, t0, run_dir)


def _training_augment(meta: dict) -> AugmentConfig:
    """The run's own augmentations (the strong view), or the defaults when they cannot be read."""
    try:
        return TrainConfig.from_dict(meta.get("config") or {}).augment
    except (ConfigError, TypeError, ValueError):
        log.info("the run's augmentations cannot be read; the strong view uses the defaults")
        return AugmentConfig()


def _init_head(head: nn.Linear, backbone, encoder, images, rows: np.ndarray, y: np.ndarray, device) -> None:
    """Set the head to a balanced logistic regression of ``y`` on the frozen embeddings."""
    backbone.eval()
    with torch.inference_mode():
        z = np.concatenate([backbone(encoder.preprocess(images(rows[a:a + 256]).to(device))).float().cpu().numpy()
                            for a in range(0, len(rows), 256)])
    backbone.train()
    fit_logistic(head, z, y)


def fit_logistic(head: nn.Linear, z: np.ndarray, y: np.ndarray) -> None:
    """Set a (dim -> 1) linear head to a balanced logistic regression of ``y`` (n,) bool on ``z`` (n, dim)."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000).fit(z, y)
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(lr.coef_, dtype=torch.float32))
        head.bias.copy_(torch.as_tensor(lr.intercept_, dtype=torch.float32))


__all__ = ["RefineConfig", "RefineReport", "refine_encoder", "labels_hash", "CheckpointError"]
