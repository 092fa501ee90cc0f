"""Refine a small head on the user's own embeddings (issue #22 item 2, stores without an encoder).

A store built with ``galexplorer embed --embeddings FILE`` (Zoobot features, a published catalogue,
a feature table) has no encoder to fine-tune, so the labels teach a small network on top of the
features instead, in the same way :mod:`galexplorer.ssl.refine` teaches the encoder:

* the head is ``z = P x + MLP(x)`` on the standardised features ``x`` (D values per object):
  ``P`` (D -> ``dim``) starts as the principal axes of the features and the MLP
  (D -> ``hidden`` -> ``dim``) starts at zero, so before training ``z`` is the PCA of the
  features (nothing is lost at the start) and the training bends it where the labels say;
* a linear classifier on ``z`` (started as a balanced logistic regression) learns "interesting or
  not" (a label >= ``interesting_above``), the labelled loss weighted by the class balance;
* the unlabelled objects take part as in FixMatch, in feature space: the classifier's probability
  on a weak view (Gaussian noise of ``weak_noise`` standard deviations) is the pseudo-label where it
  is confident, and a strong view (``strong_dropout`` of the features dropped, ``strong_noise``
  noise) must reproduce it;
* a stratified hold-out of the labelled objects (from :data:`~galexplorer.ssl.refine.MIN_FINDS_FOR_HOLDOUT`
  finds, as for the encoder) picks the best epoch and stops the run after ``patience`` epochs
  without a gain; with fewer finds the head is not trained (``fixed_epochs`` = 0): its start, the
  PCA of the standardised features, is the new representation.

The ``dim``-d ``z`` of every object is the new representation. The head is written as
``head.pt`` (a state dict: ``torch.save``, read back with ``torch.load(weights_only=True)``) and
``head.json`` (its shape, options, labels' hash and figures) in the output folder.

Memory stays flat in N: the features are read in row blocks; training uses the labelled objects
and at most :data:`UNLABELLED_POOL` unlabelled ones drawn at random.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import progress
from ..errors import CheckpointError, ConfigError
from .embed import resolve_device
from .refine import (
    MIN_FINDS_FOR_HOLDOUT,
    RefineReport,
    _average_precision,
    fit_logistic,
    holdout_plan,
    labels_hash,
)
from .refine_config import FixMatchConfig

log = logging.getLogger(__name__)

HEAD_FORMAT = "galexplorer-feature-head"
HEAD_WEIGHTS, HEAD_CONFIG = "head.pt", "head.json"
UNLABELLED_POOL = 50_000      # unlabelled objects the training draws from
PCA_SAMPLE = 20_000           # objects the starting principal axes are fitted on
READ_ROWS = 8192


@dataclass
class HeadRefineConfig(FixMatchConfig):
    """Options of a head refine (saved in ``head.json``): :class:`FixMatchConfig`'s, with a
    head's defaults, and the head's shape and feature-space views."""

    _NAME: ClassVar[str] = "head refine"
    _COUNTS: ClassVar[tuple[str, ...]] = ("hidden", "dim", "epochs", "patience", "batch_size", "min_steps")

    hidden: int = 256
    dim: int = 64                 # the new representation's dimension
    epochs: int = 100             # at most; early stopping on the held-out labels
    # without a held-out set (fewer than MIN_FINDS_FOR_HOLDOUT finds): 0, no training. A head bent to
    # 1-3 finds with nothing to stop on made the loop find fewer (bench_refine_head: 18 -> 10, 39 -> 24)
    fixed_epochs: int = 0
    patience: int = 15
    batch_size: int = 64
    min_steps: int = 10           # optimiser steps per epoch at least (a few hundred labels fill 3-4 batches)
    unlabelled_ratio: int = 4
    weak_noise: float = 0.1       # in standard deviations of each feature
    strong_noise: float = 0.5
    strong_dropout: float = 0.2
    lr: float = 1e-3

    def _validate_counts(self) -> None:
        if int(self.fixed_epochs) < 0:
            raise ConfigError(f"head refine fixed_epochs must be >= 0, got {self.fixed_epochs!r}")

    def _validate_own(self) -> None:
        if not 0 <= self.strong_dropout < 1 or self.weak_noise < 0 or self.strong_noise < 0:
            raise ConfigError("strong_dropout must be in [0, 1) and the noise levels >= 0")
        if self.lr <= 0:
            raise ConfigError("the learning rate must be > 0")


@dataclass
class HeadRefineReport(RefineReport):
    """What a head refine did (``run_dir`` is the head's folder)."""

    in_dim: int = 0
    dim: int = 0
    hidden: int = 0
    n_unlabelled: int = 0

    def summary(self) -> str:
        lines = [f"this store holds your own embeddings (no encoder): refined a small head "
                 f"({self.in_dim} -> {self.hidden} -> {self.dim}) on them, not an encoder, with {self.n_labelled} "
                 f"labels ({self.n_finds} finds) and {self.n_unlabelled} unlabelled objects: {self.epochs_run} "
                 f"epochs in {self.seconds:.1f} s -> {self.run_dir}"]
        if self.holdout_ap:
            lines.append(f"  held-out average precision {self.start_ap:.3f} before, "
                         f"{self.holdout_ap[self.best_epoch - 1] if self.best_epoch else self.start_ap:.3f} "
                         f"at the best epoch {self.best_epoch}" + (" (stopped early)" if self.stopped_early else ""))
        if self.note:
            lines.append(f"  note: {self.note}")
        return "\n".join(lines)


class FeatureHead(nn.Module):
    """``z = P x + MLP(x)`` on standardised features.

    Args:
        in_dim: D, the features' dimension; hidden, dim: the MLP's widths.
    Shapes: ``forward((batch, in_dim) raw features) -> (batch, dim)``.
    """

    def __init__(self, in_dim: int, hidden: int = 256, dim: int = 64):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.base = nn.Linear(in_dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale

    def represent(self, xs: torch.Tensor) -> torch.Tensor:
        """(batch, in_dim) standardised -> (batch, dim)."""
        return self.base(xs) + self.mlp(xs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.represent(self.standardise(x))

    def start_at_pca(self, mean: np.ndarray, scale: np.ndarray, sample: np.ndarray) -> None:
        """Standardise with ``mean``/``scale`` (D,); ``P`` = the principal axes of ``sample`` (n, D)
        standardised (unused rows zero when D < dim); the MLP's last layer zero."""
        xs = (sample - mean) / scale
        xs = xs - xs.mean(axis=0)
        cov = (xs.T.astype(np.float64) @ xs) / max(len(xs) - 1, 1)
        w, v = np.linalg.eigh(cov)
        axes = v[:, np.argsort(w)[::-1]].T[: self.base.out_features]
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
            self.base.weight.zero_()
            self.base.weight[: len(axes)] = torch.as_tensor(axes, dtype=torch.float32)
            self.mlp[-1].weight.zero_()
            self.mlp[-1].bias.zero_()

    @torch.inference_mode()
    def embed(self, x: np.ndarray, batch: int = READ_ROWS) -> np.ndarray:
        """(n, in_dim) features -> (n, dim) float32 representation."""
        dev = self.mean.device
        out = [self(torch.as_tensor(np.asarray(x[a:a + batch], np.float32), device=dev)).float().cpu().numpy()
               for a in range(0, len(x), batch)]
        return np.concatenate(out) if out else np.empty((0, self.base.out_features), np.float32)


@dataclass
class _Data:
    """What the training reads: the labelled objects' features, a random pool of unlabelled
    ones, and each feature's mean and spread over the pool and the labelled objects."""

    labelled: np.ndarray        # (n_labelled, D) float32, in the order of ``rows``
    pool: np.ndarray            # (n_pool, D) float32
    mean: np.ndarray
    scale: np.ndarray


def _read(features, rows: np.ndarray, pool_size: int, rng: np.random.Generator) -> _Data:
    """One pass over ``features`` (N, D) in row blocks (an HDF5 dataset or an array)."""
    n = len(features)
    others = np.setdiff1d(np.arange(n), rows)
    pool_rows = np.sort(rng.choice(others, min(pool_size, len(others)), replace=False))
    want = np.zeros(n, np.int8)
    want[pool_rows], want[rows] = 1, 2
    where = np.full(n, -1, np.int64)
    where[rows] = np.arange(len(rows))
    labelled = np.empty((len(rows), features.shape[1]), np.float32)
    pool_parts = []
    for a in progress.track(range(0, n, READ_ROWS), "reading the embeddings"):
        take = want[a:a + READ_ROWS]
        if not take.any():
            continue
        block = np.asarray(features[a:a + READ_ROWS], np.float32)
        pool_parts.append(block[take == 1])
        lab = np.flatnonzero(take == 2)
        labelled[where[a + lab]] = block[lab]
    pool = np.concatenate(pool_parts) if pool_parts else np.empty((0, labelled.shape[1]), np.float32)
    both = np.concatenate([pool, labelled]).astype(np.float64)
    mean, scale = both.mean(axis=0), both.std(axis=0)
    scale = np.where(scale > 1e-12 * max(float(scale.max()), 1e-30), scale, 1.0)
    return _Data(labelled, pool, mean.astype(np.float32), scale.astype(np.float32))


def refine_head(features, rows: np.ndarray, labels: np.ndarray, out_dir: str | Path,
                config: HeadRefineConfig | None = None, provenance: dict | None = None) -> HeadRefineReport:
    """Train a :class:`FeatureHead` on labelled rows of ``features`` and the unlabelled rest.

    Args:
        features: (N, D) the user's embeddings (an HDF5 dataset or an array), read in row blocks.
        rows: (n,) rows of the labelled objects; labels: their 0-5 scores.
        out_dir: the head's folder (created; ``head.pt`` and ``head.json`` there are replaced).
        config: :class:`HeadRefineConfig`.
        provenance: where the features came from (saved in ``head.json``).

    Raises:
        ConfigError: no finds or no non-finds among the labels, bad options, rows outside 0..N-1.
    """
    cfg = (config or HeadRefineConfig()).validate()
    t0 = time.perf_counter()
    rows, labels = np.asarray(rows, np.int64), np.asarray(labels, np.float32)
    y = cfg.finds(labels)
    n = int(features.shape[0])
    if rows.min(initial=0) < 0 or rows.max(initial=-1) >= n or len(np.unique(rows)) != len(rows):
        raise ConfigError(f"labelled rows must be distinct rows of the embeddings' 0..{n - 1}")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    data = _read(features, rows, UNLABELLED_POOL, rng)
    with _few_threads(device):
        job = _HeadTraining(data, y, cfg, device, rng)
        stopped = job.run()
    report = job.report(stopped, Path(out_dir), len(rows), t0)
    save_head(out_dir, job.head, cfg, report, labels_hash(rows, labels), provenance)
    return report


@contextlib.contextmanager
def _few_threads(device):
    """One CPU thread while training: the batches are a few hundred rows, where several threads
    cost more in start-up than they save (25x slower per step on a busy 2-core machine)."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _HeadTraining:
    """The FixMatch training of a :class:`FeatureHead` and its classifier."""

    def __init__(self, data: _Data, y: np.ndarray, cfg: HeadRefineConfig, device, rng: np.random.Generator):
        self.cfg, self.y, self.device, self.rng = cfg, y, device, rng
        self.plan = holdout_plan(y, cfg.holdout, cfg.epochs, cfg.fixed_epochs, rng)
        self.gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.head = FeatureHead(data.labelled.shape[1], cfg.hidden, cfg.dim)
        pca_rows = rng.choice(len(data.pool), min(PCA_SAMPLE, len(data.pool)), replace=False)
        sample = data.pool[np.sort(pca_rows)] if len(pca_rows) > 1 else data.labelled
        self.head.start_at_pca(data.mean, data.scale, sample)
        self.head.to(device)
        self.classifier = nn.Linear(cfg.dim, 1).to(device)
        self.xl = self.head.standardise(torch.as_tensor(data.labelled, device=device))
        self.xu = self.head.standardise(torch.as_tensor(data.pool, device=device))
        train_y = y[self.plan.train_idx]
        with torch.inference_mode():
            z0 = self.head.represent(self.xl[torch.as_tensor(self.plan.train_idx, device=device)])
        fit_logistic(self.classifier, z0.float().cpu().numpy(), train_y)
        self.pos_weight = torch.tensor([(~train_y).sum() / max(train_y.sum(), 1)], device=device)
        self.opt = torch.optim.AdamW([*self.head.parameters(), *self.classifier.parameters()], lr=cfg.lr,
                                     weight_decay=cfg.weight_decay)
        self.start_ap = self.holdout_ap()
        self.history: list[float] = []
        self.pseudo: list[float] = []
        self.best_epoch, self.best_ap, self.best_state = 0, self.start_ap, copy.deepcopy(self.head.state_dict())

    def _noise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        return x + sigma * torch.randn(x.shape, generator=self.gen).to(x.device)

    def _strong(self, x: torch.Tensor) -> torch.Tensor:
        keep = (torch.rand(x.shape, generator=self.gen) >= self.cfg.strong_dropout).to(x.device)
        return self._noise(x * keep / (1 - self.cfg.strong_dropout), self.cfg.strong_noise)

    def _logits(self, xs: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head.represent(xs)).squeeze(1)

    def holdout_ap(self) -> float:
        hold = self.plan.hold_idx
        if len(hold) == 0:
            return float("nan")
        with torch.inference_mode():
            s = self._logits(self.xl[torch.as_tensor(hold, device=self.device)]).float().cpu().numpy()
        return _average_precision(s, self.y[hold])

    def step(self, idx: np.ndarray) -> tuple[int, int]:
        """One optimiser step on labelled ``idx`` and unlabelled objects; (confident, seen)."""
        cfg = self.cfg
        xl = self.xl[torch.as_tensor(idx, device=self.device)]
        yl = torch.as_tensor(self.y[idx], dtype=torch.float32, device=self.device)
        loss = F.binary_cross_entropy_with_logits(self._logits(self._noise(xl, cfg.weak_noise)), yl,
                                                  pos_weight=self.pos_weight)
        n_u = min(len(self.xu), cfg.unlabelled_ratio * len(idx))
        kept = 0
        if n_u:
            xu = self.xu[torch.as_tensor(self.rng.choice(len(self.xu), n_u, replace=False), device=self.device)]
            with torch.no_grad():
                p = torch.sigmoid(self._logits(self._noise(xu, cfg.weak_noise)))
            mask = ((p >= cfg.confidence) | (p <= 1 - cfg.confidence)).float()
            lu = F.binary_cross_entropy_with_logits(self._logits(self._strong(xu)), (p >= 0.5).float(),
                                                    reduction="none")
            loss = loss + cfg.unlabelled_weight * (lu * mask).mean()
            kept = int(mask.sum())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return kept, n_u

    def run(self) -> bool:
        """The epochs until the last or early stopping; True when stopped early."""
        b = self.cfg.batch_size
        with progress.Bar("refine (head)", total=self.plan.max_epochs, unit="epoch") as bar:
            for epoch in range(self.plan.max_epochs):
                steps = max(math.ceil(len(self.plan.train_idx) / b), self.cfg.min_steps)
                order = np.concatenate([self.rng.permutation(self.plan.train_idx)
                                        for _ in range(math.ceil(steps * b / len(self.plan.train_idx)))])
                kept = seen = 0
                for s in range(steps):
                    k, m = self.step(order[s * b:(s + 1) * b])
                    kept, seen = kept + k, seen + m
                self.pseudo.append(kept / max(seen, 1))
                ap = self.holdout_ap()
                self.history.append(ap)
                if len(self.plan.hold_idx) == 0 or (np.isfinite(ap) and ap > self.best_ap + 1e-6):
                    self.best_epoch, self.best_ap, self.best_state = epoch + 1, ap, copy.deepcopy(
                        self.head.state_dict())
                bar.update(1)
                if len(self.plan.hold_idx) and epoch + 1 - self.best_epoch >= self.cfg.patience:
                    return True
        return False

    def report(self, stopped: bool, out_dir: Path, n_labelled: int, t0: float) -> HeadRefineReport:
        """Keep the best epoch's head and say what the run did."""
        note = self.plan.note
        if self.plan.max_epochs == 0:
            note = (f"only {int(self.y.sum())} finds: too few to train the head with a held-out set to stop on "
                    f"(from {MIN_FINDS_FOR_HOLDOUT} finds), so the new representation is the PCA of your "
                    "standardised embeddings")
        elif self.best_epoch == 0:
            note = (note + "; " if note else "") + ("no epoch beat the start on the held-out labels: the new "
                                                    "representation is the PCA of your standardised embeddings")
        self.head.load_state_dict(self.best_state)
        self.head.eval()
        return HeadRefineReport(out_dir, n_labelled, int(self.y.sum()), len(self.history), self.best_epoch,
                                self.history, self.start_ap, self.pseudo, time.perf_counter() - t0, stopped, 0, note,
                                in_dim=int(self.xl.shape[1]), dim=self.cfg.dim, hidden=self.cfg.hidden,
                                n_unlabelled=int(len(self.xu)))


def save_head(out_dir: str | Path, head: FeatureHead, cfg: HeadRefineConfig, report: HeadRefineReport,
              key: str, provenance: dict | None = None) -> None:
    """``head.pt`` (state dict) and ``head.json`` (shape, options, figures, provenance) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in head.state_dict().items()}, out_dir / HEAD_WEIGHTS)
    meta = {"format": HEAD_FORMAT, "version": 1, "in_dim": report.in_dim, "hidden": cfg.hidden, "dim": cfg.dim,
            "config": cfg.to_dict(), "report": report.to_dict(), "labels_hash": key,
            "features": provenance or {}}
    (out_dir / HEAD_CONFIG).write_text(json.dumps(meta, indent=2, default=float), encoding="utf-8")


def load_head(out_dir: str | Path, device: str = "cpu") -> tuple[FeatureHead, dict[str, Any]]:
    """The head saved in ``out_dir``, in eval mode, and its ``head.json``.

    Raises:
        CheckpointError: missing, foreign or corrupt files.
    """
    out_dir = Path(out_dir)
    fix = "refine again: galexplorer refine STORE.h5 -o NEW.h5"
    try:
        meta = json.loads((out_dir / HEAD_CONFIG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError("no head.json in the head folder", out_dir, fix) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError("head.json is not valid JSON", out_dir / HEAD_CONFIG, fix) from None
    if not isinstance(meta, dict) or meta.get("format") != HEAD_FORMAT:
        raise CheckpointError("not a galexplorer feature head", out_dir / HEAD_CONFIG, fix)
    head = FeatureHead(int(meta["in_dim"]), int(meta["hidden"]), int(meta["dim"]))
    try:
        state = torch.load(out_dir / HEAD_WEIGHTS, map_location="cpu", weights_only=True)
        head.load_state_dict(state)
    except (FileNotFoundError, RuntimeError, EOFError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot read head.pt ({type(exc).__name__})", out_dir / HEAD_WEIGHTS,
                              fix) from None
    return head.to(device).eval(), meta


def embed_with_head(features_store, head_dir: str | Path, output: str | Path, config, cutouts=None,
                    extra_attrs: dict | None = None, device: str = "cpu"):
    """Pass every object's own embedding through the head and build the store at ``output``
    through the store pipeline that ``embed --embeddings`` uses (PCA, map, scores, the
    other representations when ``cutouts`` is given).

    Args:
        features_store: the open :class:`~galexplorer.store.EmbeddingStore` of the user's
            embeddings (its objects, in its order, are the new store's).
        head_dir: the folder of :func:`refine_head`'s head.
        output: the store to write (atomically).
        config: an :class:`~galexplorer.explore.pipeline.EmbedConfig` (its ``pca_standardise`` is
            turned off: the head's output is one space, and standardising it would undo what the
            head stretched).
        cutouts: the open cutouts file the store links (thumbnails, pixel and morphology sets),
            or None.
        extra_attrs: more root attributes (``refined_from``).

    Returns:
        The pipeline's ``EmbedReport``.

    Raises:
        CheckpointError: an unreadable head, or one made for embeddings of another dimension.
    """
    from ..explore.pipeline import build_store

    head, meta = load_head(head_dir, device)
    feats = features_store.embeddings
    if int(meta["in_dim"]) != feats.shape[1]:
        raise CheckpointError(f"the head takes {meta['in_dim']}-d embeddings, the store holds "
                              f"{feats.shape[1]}-d ones", Path(head_dir), "refine the store again")
    config.pca_standardise = False

    def fill(dset) -> None:
        for a in progress.track(range(0, len(feats), READ_ROWS), "embedding (head)"):
            dset[a:a + READ_ROWS] = head.embed(feats[a:a + READ_ROWS])

    base = features_store.dataset_attrs("embeddings")
    embedding_attrs = {"method": "head", "source": "head", "head_dir": str(Path(head_dir).resolve()),
                       "base_store": str(Path(features_store.path).resolve()), "base_uuid": features_store.uuid,
                       "base_source_path": base.get("source_path"), "base_source_sha256": base.get("source_sha256"),
                       "head": {k: meta[k] for k in ("in_dim", "hidden", "dim", "labels_hash")}}
    store_attrs = {"embeddings_source": features_store.json_attr("embeddings_source"), **(extra_attrs or {})}
    return build_store(output, objects=features_store.objects, dim=int(meta["dim"]), fill=fill, config=config,
                       cutouts=cutouts, rows=features_store.cutouts_rows if cutouts is not None else None,
                       embedding_attrs=embedding_attrs, store_attrs={k: v for k, v in store_attrs.items()
                                                                     if v is not None},
                       source=f"a head refined on the embeddings of {Path(features_store.path).name}")


__all__ = ["HeadRefineConfig", "HeadRefineReport", "FeatureHead", "refine_head", "save_head", "load_head",
           "embed_with_head"]
