"""Embedding with a trained encoder: cutouts -> (N, D) representations, streamed in batches.

``galexplorer embed CUTOUTS.h5 --run RUN_DIR -o STORE.h5`` comes here. :func:`load_encoder`
rebuilds the encoder from ``RUN_DIR/encoder.pt`` + ``encoder.json`` (weights only) and
:func:`embed_with_encoder` hands a streaming *filler* to the store pipeline
(:func:`galexplorer.explore.pipeline.build_store`), which owns the store, PCA, projection and
scores. The filler reads the stamps batch by batch (a background thread reads the next batch
while the model runs), applies exactly the training normalisation and the un-augmented centre
crop, runs the backbone under ``torch.inference_mode()`` (bf16 autocast on CUDA), and writes
each batch into the (N, D) float32 dataset: memory stays flat in N.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import nn

from .. import progress
from ..errors import CheckpointError, ConfigError, InputError
from ..explore.pipeline import check_views
from ..store import CutoutStore
from .backbones import ResNetEncoder
from .checkpoint import check_fits, read_encoder_files
from .normalize import center_crop, normalize
from .runtime import retain_freed_memory

log = logging.getLogger(__name__)


class Encoder(nn.Module):
    """Raw stamps in, representations out: centre crop, asinh normalisation, backbone.

    Args:
        backbone: the trained :class:`ResNetEncoder`.
        median, mad: (C,) band statistics of the training set (data units).
        image_size: the crop side the backbone was trained on, pixels.
        views: average the backbone's output over this many symmetric views of the crop (one of
            :data:`~galexplorer.explore.pipeline.VIEWS`): the sky has no preferred orientation, and the average is exactly the
            same for a stamp and its rotations by 90 degrees (and, with 8, its mirror image). It
            costs ``views`` forward passes.

    ``forward(x)`` takes (B, C, S, S) float32 stamps in data units, S >= image_size, and returns
    (B, D) float32.
    """

    def __init__(self, backbone: ResNetEncoder, median, mad, image_size: int, views: int = 1):
        super().__init__()
        self.backbone = backbone
        self.image_size = int(image_size)
        self.views = check_views(views)
        self.register_buffer("median", torch.as_tensor(np.asarray(median), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("mad", torch.as_tensor(np.asarray(mad), dtype=torch.float32).view(1, -1, 1, 1))

    @property
    def dim(self) -> int:
        return self.backbone.dim

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) raw -> (B, C, image_size, image_size) normalised network input."""
        return normalize(center_crop(x, self.image_size), self.median, self.mad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(x)
        if self.views == 1:
            return self.backbone(x).float()
        total = None
        for k in range(4):                  # one view at a time: memory as for one pass
            turned = torch.rot90(x, k, dims=(2, 3))
            for view in ((turned, turned.flip(3)) if self.views == 8 else (turned,)):
                z = self.backbone(view).float()
                total = z if total is None else total + z
        return total / self.views


def resolve_device(pref: str) -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cuda' without a GPU is a :class:`ConfigError`."""
    if pref not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"unknown device {pref!r}; choose auto, cpu or cuda")
    if pref == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but no CUDA GPU is visible to PyTorch", hint="use --device cpu or auto")
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(pref)


def load_encoder(run_dir: str | Path, device: str | torch.device = "cpu",
                 views: int = 1) -> tuple[Encoder, dict[str, Any]]:
    """Rebuild the encoder of a training run, in eval mode on ``device``.

    Args:
        run_dir: the run folder holding ``encoder.pt`` and ``encoder.json``.
        device: where to put it ('cpu', 'cuda', 'auto' or a torch.device).
        views: the views its embedding averages (:class:`Encoder`).

    Returns:
        (encoder, meta): the :class:`Encoder` and the metadata of ``encoder.json``: bands,
        normalization {median, mad}, image_size, stamp_size, backbone, stem, in_channels, dim,
        method, config, epoch, sha256.

    Raises:
        CheckpointError: missing, corrupt or mismatched files.
        ConfigError: ``views`` not one of :data:`~galexplorer.explore.pipeline.VIEWS`.
    """
    dev = resolve_device(device) if isinstance(device, str) else device
    payload, meta = read_encoder_files(run_dir)
    path = Path(run_dir) / "encoder.pt"
    try:
        backbone = ResNetEncoder(payload["backbone"], int(payload["in_channels"]), payload["stem"])
        backbone.load_state_dict(payload["state_dict"])
        norm = meta["normalization"]
        if len(norm["median"]) != backbone.in_channels or len(meta["bands"]) != backbone.in_channels:
            raise CheckpointError("encoder.json's bands or normalisation do not fit the encoder's "
                                  f"{backbone.in_channels} input bands", Path(run_dir))
        enc = Encoder(backbone, norm["median"], norm["mad"], int(meta["image_size"]), views)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"the encoder cannot be rebuilt ({first})", path,
                              "it may come from another galexplorer version; retrain") from None
    return enc.to(dev).eval(), meta


def _autocast(device: torch.device, precision: str):
    use_bf16 = device.type == "cuda" and precision in ("auto", "bf16") and torch.cuda.is_bf16_supported()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16)


def _read_checked(cut: CutoutStore, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
    x = cut.read(slice(a, b))
    return x, ~np.isfinite(x).reshape(len(x), -1).all(axis=1)


def _prefetched(cut: CutoutStore, batch_size: int, start: int, stop: int
                ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(offset, images, bad)`` batches of rows start:stop; the next batch is read (and checked
    for NaN/inf) in a background thread while the model runs on this one."""
    starts = list(range(start, stop, batch_size))
    if not starts:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="galexplorer-read") as pool:
        future = pool.submit(_read_checked, cut, starts[0], min(starts[0] + batch_size, stop))
        for i, a in enumerate(starts):
            x, bad = future.result()
            if i + 1 < len(starts):
                b = starts[i + 1]
                future = pool.submit(_read_checked, cut, b, min(b + batch_size, stop))
            yield a, x, bad


def encode_rows(encoder: Encoder, cut: CutoutStore, start: int, stop: int, out, batch_size: int = 256,
                precision: str = "auto", desc: str = "embedding") -> None:
    """Embed rows ``start:stop`` of ``cut`` into ``out[0:stop - start]`` batch by batch.

    Args:
        encoder: from :func:`load_encoder` (its device is used).
        out: an (stop - start, D) float32 h5py dataset or numpy array.
        batch_size: stamps per forward pass.
        precision: 'auto' (bf16 autocast on CUDA), 'fp32' or 'bf16'.

    Raises:
        InputError: a stamp with NaN or inf pixels.
        ConfigError: a batch does not fit in the GPU's memory.
    """
    dev = next(encoder.parameters()).device
    non_blocking = dev.type == "cuda"
    with progress.Bar(desc, total=stop - start, unit="img") as bar, torch.inference_mode():
        for a, x, bad in _prefetched(cut, batch_size, start, stop):
            if bad.any():
                ids = [str(cut.ids[a + i]) for i in np.flatnonzero(bad)[:3]]
                raise InputError(f"NaN or inf pixels in object(s) {', '.join(ids)}", cut.path,
                                 "replace or drop them before embedding")
            t = torch.from_numpy(x)
            if non_blocking:
                t = t.pin_memory().to(dev, non_blocking=True)
            try:
                with _autocast(dev, precision):
                    z = encoder(t)
            except torch.cuda.OutOfMemoryError:
                raise ConfigError(f"a batch of {len(x)} stamps does not fit in the GPU's memory while embedding",
                                  cut.path, f"use a smaller --batch-size, e.g. {max(1, len(x) // 2)}") from None
            out[a - start:a - start + len(x)] = z.float().cpu().numpy()
            bar.update(len(x))


_WORKER_ENCODERS: dict[tuple[str, str, str, int], Encoder] = {}
CLUSTER_BLOCK_ROWS = 4096       # rows per Dask task when embedding on a cluster


def _encode_block(run_dir: str, sha256: str, device: str, cutouts_path: str, a: int, b: int, batch_size: int,
                  precision: str, views: int = 1):
    """Runs on a Dask worker: the (b - a, D) embeddings of cutouts rows a:b and their moments (for
    the PCA). The encoder is read once per worker process (cached by checkpoint hash)."""
    from ..explore.distributed import block_moments

    key = (run_dir, sha256, device, views)
    if key not in _WORKER_ENCODERS:
        torch.set_num_threads(1)
        _WORKER_ENCODERS.clear()
        _WORKER_ENCODERS[key] = load_encoder(run_dir, device, views)[0]
    enc = _WORKER_ENCODERS[key]
    out = np.empty((b - a, enc.dim), np.float32)
    with CutoutStore(cutouts_path) as cut:
        encode_rows(enc, cut, a, b, out, batch_size=batch_size, precision=precision, desc="")
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise InputError(f"the encoder gave NaN or inf for object {cut.ids[a + int(np.argmax(bad))]!r} "
                             f"({int(bad.sum())} in rows {a}:{b})", cutouts_path, "check the run's encoder")
    return out, block_moments(out)


def encode_rows_on_cluster(client, run_dir: str | Path, sha256: str, cut: CutoutStore, start: int, stop: int,
                           out, batch_size: int = 256, precision: str = "auto", device: str = "auto",
                           block_rows: int | None = None, views: int = 1):
    """:func:`encode_rows` with the blocks of ``block_rows`` rows run on the Dask cluster of
    ``client``; the client writes them into ``out`` in order, keeping at most two blocks per
    worker in flight (its memory stays flat in N). A worker lost mid-block: Dask reruns the block.

    Returns:
        The merged covariance moments of all rows (a ``CovarianceAccumulator``; the workers
        checked every row is finite), so the store pipeline need not read the embeddings back.
    """
    from collections import deque

    from ..explore.distributed import merge_moments

    block_rows = int(block_rows or CLUSTER_BLOCK_ROWS)
    starts = list(range(start, stop, block_rows))
    window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    args = (str(Path(run_dir).resolve()), sha256, device, str(Path(cut.path).resolve()))
    pending: deque = deque()
    moments = []
    with progress.Bar("embedding on the cluster", total=stop - start, unit="img") as bar:
        for i, a in enumerate(starts):
            b = min(a + block_rows, stop)
            pending.append((a, client.submit(_encode_block, *args, a, b, batch_size, precision, views, pure=False,
                                             key=f"galexplorer-embed-{sha256[:12]}-{a}-{b}")))
            while pending and (len(pending) >= window or i == len(starts) - 1):
                a0, fut = pending.popleft()
                z, acc = fut.result()
                out[a0 - start:a0 - start + len(z)] = z
                moments.append(acc)
                fut.release()
                bar.update(len(z))
    return merge_moments(moments)


def embed_with_encoder(cutouts_path: str | Path, run_dir: str | Path, output: str | Path, config,
                       shard: tuple[int, int] | None = None, client=None, extra_attrs: dict | None = None):
    """Embed a cutouts file with a run's encoder and build the store at ``output``.

    Args:
        cutouts_path: the cutouts HDF5 file.
        run_dir: the training run folder (``encoder.pt`` + ``encoder.json``).
        output: the store to write (atomically, by the store pipeline).
        config: a :class:`galexplorer.explore.pipeline.EmbedConfig` (batch_size, device, ...).
        shard: ``(i, n)`` to embed only the i-th of n contiguous blocks.
        client: a ``distributed.Client`` (:func:`galexplorer.explore.cluster.connect`): run the
            encoder on its workers, in blocks (None: in this process).
        extra_attrs: more root attributes of the store (``refined_from``).

    Returns:
        The pipeline's ``EmbedReport``.

    Raises:
        CheckpointError: missing/corrupt encoder, or bands that differ from the cutouts'.
        ConfigError: an empty shard, stamps smaller than the encoder's crop, no GPU for 'cuda'.
        StoreError: an unreadable cutouts file.
    """
    from ..explore.pipeline import build_store, shard_rows

    retain_freed_memory()
    cut = CutoutStore(cutouts_path)
    try:
        # on a cluster the workers resolve --device and load the encoder themselves: the client
        # rebuilds it on the CPU only to check the checkpoint, and does not keep it (see below)
        device = resolve_device(getattr(config, "device", "auto") if client is None else "cpu")
        encoder, meta = load_encoder(run_dir, device, getattr(config, "views", 1))
        views = encoder.views
        check_fits(meta, Path(run_dir) / "encoder.json", bands=list(cut.bands))
        if cut.size < encoder.image_size:
            raise CheckpointError(f"the encoder crops {encoder.image_size} px but the stamps are "
                                  f"{cut.size} px", Path(cutouts_path),
                                  "ingest larger stamps (--size) or train with a smaller --image-size")
        rows = shard_rows(cut.n, shard)
        a, b = rows.start, rows.stop
        if b <= a:
            raise ConfigError(f"shard {shard[0]}/{shard[1]} of {cut.n} objects is empty",
                              hint="use fewer shards") if shard else \
                ConfigError("the cutouts file holds no objects", cutouts_path)
        batch = int(getattr(config, "batch_size", 256))
        precision = getattr(config, "precision", "auto")
        image_size, dim = int(encoder.image_size), int(encoder.dim)
        log.info("embedding %d stamps with %s/%s (%s stem, %d px, %d-d, %d view%s) on %s", b - a, meta["method"],
                 meta["backbone"], meta["stem"], image_size, dim, views, "" if views == 1 else "s",
                 device if client is None else "the cluster's workers")
        if client is not None:
            del encoder     # its weights are not held here through the run (the workers load theirs)

        def fill(dset: h5py.Dataset):
            if client is None:
                return encode_rows(encoder, cut, a, b, dset, batch_size=batch, precision=precision)
            return encode_rows_on_cluster(client, run_dir, meta["sha256"], cut, a, b, dset, batch_size=batch,
                                       precision=precision, device=getattr(config, "device", "auto"), views=views)

        train_cfg = meta.get("config", {})
        embedding_attrs = {"method": meta["method"], "backbone": meta["backbone"],
                           "checkpoint_sha256": meta["sha256"], "config": train_cfg,
                           "image_size": image_size, "source": "encoder",
                           "stem": meta["stem"], "epoch": meta.get("epoch"), "views": views,
                           "run_dir": str(Path(run_dir).resolve()), "refined_from": meta.get("refined_from")}
        store_attrs = {"cutouts_path": str(Path(cutouts_path).resolve()), "cutouts_uuid": cut.uuid,
                       "bands": list(cut.bands), **(extra_attrs or {})}
        rows = np.arange(a, b)
        return build_store(output, objects=cut.objects.subset(rows), dim=dim, fill=fill,
                           config=config, cutouts=cut, rows=slice(a, b), embedding_attrs=embedding_attrs,
                           store_attrs=store_attrs, shard=shard,
                           source=f"{meta['method']}/{meta['backbone']} encoder of {Path(run_dir).name}")
    finally:
        cut.close()


def embed_array(encoder: Encoder, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 embeddings of an in-memory (N, C, S, S) array (small sets, tests, demo)."""
    dev = next(encoder.parameters()).device
    out = np.empty((len(images), encoder.dim), np.float32)
    with torch.inference_mode():
        for a in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[a:a + batch_size], dtype=np.float32)).to(dev)
            with _autocast(dev, "auto"):
                out[a:a + len(x)] = encoder(x).float().cpu().numpy()
    return out


__all__ = ["Encoder", "load_encoder", "embed_with_encoder", "encode_rows", "encode_rows_on_cluster", "embed_array",
           "resolve_device"]
