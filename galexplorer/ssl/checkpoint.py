"""Checkpoints and the exported encoder, written atomically and read with ``weights_only=True``.

A run folder holds::

    RUN_DIR/config.json             the resolved TrainConfig (+ bands, cutouts file and uuid)
    RUN_DIR/metrics.csv             one row per epoch
    RUN_DIR/checkpoint-latest.pt    everything needed to continue exactly (--resume)
    RUN_DIR/checkpoint-best.pt      the epoch with the best label-free view retrieval (a held-back
                                    augmented view finds its own stamp), not the lowest loss
    RUN_DIR/encoder.pt              the online backbone's weights of that best epoch, for embedding
    RUN_DIR/encoder.json            what the encoder needs: bands, normalisation, crop size,
                                    backbone, stem, method, the sha256 of encoder.pt

Checkpoints hold only tensors, numbers, strings, lists and dicts, so ``torch.load(...,
weights_only=True)`` reads them and no pickled code ever runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import CheckpointError
from ..store.atomic import is_disk_full, rename_into_place, temporary_sibling
from ..store.schema import now_iso

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "galexplorer-checkpoint"
ENCODER_FORMAT = "galexplorer-encoder"
FORMAT_VERSION = 1
LATEST = "checkpoint-latest.pt"
BEST = "checkpoint-best.pt"
ENCODER_PT = "encoder.pt"
ENCODER_JSON = "encoder.json"
RUN_FILES = (LATEST, BEST, ENCODER_PT, ENCODER_JSON, "metrics.csv", "config.json")


# -- random number generators --------------------------------------------------------------------

def rng_state(augment_gen: torch.Generator | None = None) -> dict[str, Any]:
    """The state of every random number generator a run uses, in weights-only types."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss": py_state[2]},
    }
    if augment_gen is not None:
        state["augment"] = augment_gen.get_state()
    return state


def set_rng_state(state: dict[str, Any], augment_gen: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if augment_gen is not None and "augment" in state:
        augment_gen.set_state(state["augment"].to(augment_gen.get_state().device))


# -- files ---------------------------------------------------------------------------------------

def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Like :func:`atomic_output`, without its INFO line (run files are replaced every epoch).

    Raises:
        CheckpointError: the disk filled (``disk full: …``); the previous file is intact.
    """
    tmp = temporary_sibling(path)
    try:
        yield tmp
        rename_into_place(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        # torch's writer reports a full disk as a RuntimeError about stream positions; the
        # OSError of the file it was writing is its context
        if is_disk_full(exc) or (exc.__context__ is not None and is_disk_full(exc.__context__)):
            raise CheckpointError("disk full: the file could not be written", path,
                                  "free some space on this disk and go on with `galexplorer train --resume`; "
                                  "the previous file is intact") from None
        raise


def _save(obj: Any, path: Path) -> None:
    with replacing(path) as tmp, open(tmp, "wb") as fh:   # a Python file: a full disk raises ENOSPC
        torch.save(obj, fh)


def _load(path: Path, what: str, fix: str, map_location="cpu") -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"no {what} here", path, fix)
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a truncated or foreign file
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"the {what} cannot be read ({first})", path,
                              "it may be truncated or not written by galexplorer; " + fix) from None
    if not isinstance(obj, dict) or "format" not in obj:
        raise CheckpointError(f"not a galexplorer {what}", path, fix)
    return obj


def save_checkpoint(run_dir: Path, payload: dict[str, Any], best: bool = False) -> Path:
    """Write ``checkpoint-latest.pt`` (and copy it to ``checkpoint-best.pt`` when ``best``)."""
    payload = {"format": CHECKPOINT_FORMAT, "version": FORMAT_VERSION,
               "galexplorer_version": __version__, "created": now_iso(), **payload}
    path = run_dir / LATEST
    _save(payload, path)
    if best:
        with replacing(run_dir / BEST) as tmp:
            try:  # a hard link costs no space; the next latest is a new file, so best stays intact
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
    return path


def load_checkpoint(path: str | Path, map_location="cpu") -> dict[str, Any]:
    """Read a training checkpoint (weights only).

    Raises:
        CheckpointError: missing, truncated, not ours, or of a newer format version.
    """
    path = Path(path)
    ckpt = _load(path, "training checkpoint", "start a new run without --resume", map_location)
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"this is a {ckpt.get('format')!r} file, not a training checkpoint", path)
    if int(ckpt.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format version {ckpt['version']} is newer than this galexplorer "
                              f"reads ({FORMAT_VERSION})", path, "upgrade galexplorer")
    return ckpt


def check_fits(found: dict[str, Any], path: Path, *, bands: list[str] | None = None,
               backbone: str | None = None, method: str | None = None, stem: str | None = None) -> None:
    """Raise :class:`CheckpointError` when a checkpoint/encoder was made for other data or model.

    Args:
        found: a mapping with 'bands', 'backbone', 'method', 'stem' (those present are checked).
        bands: the bands of the cutouts it will see.
    """
    if bands is not None and found.get("bands") is not None:
        have = list(found["bands"])
        if len(have) != len(bands):
            raise CheckpointError(
                f"made for {len(have)} bands ({', '.join(have)}) but the cutouts have {len(bands)} "
                f"({', '.join(bands)})", path, "use cutouts with the same bands, or train a new model")
        if have != list(bands):
            raise CheckpointError(
                f"made for bands {', '.join(have)} but the cutouts have {', '.join(bands)}", path,
                "ingest the cutouts with the same band names (--bands), or train a new model")
    for key, want in (("backbone", backbone), ("method", method), ("stem", stem)):
        if want is not None and found.get(key) is not None and found[key] != want:
            raise CheckpointError(f"made with {key} {found[key]}, not {want}", path,
                                  f"use --{key} {found[key]}, or start a new run")


def save_encoder(run_dir: Path, backbone: torch.nn.Module, meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``encoder.pt`` (weights) and then ``encoder.json`` (metadata + sha256 of the .pt).

    Args:
        backbone: a :class:`~galexplorer.ssl.backbones.ResNetEncoder` (unwrapped).
        meta: bands, normalisation, image_size, method, config ... (JSON-serialisable).

    Returns:
        The metadata written to ``encoder.json``.
    """
    desc = backbone.describe()
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    payload = {"format": ENCODER_FORMAT, "version": FORMAT_VERSION, **desc,
               "bands": list(meta["bands"]), "state_dict": state}
    _save(payload, run_dir / ENCODER_PT)
    full = {"format": ENCODER_FORMAT, "version": FORMAT_VERSION, "galexplorer_version": __version__,
            "created": now_iso(), **desc, **meta, "sha256": sha256_file(run_dir / ENCODER_PT)}
    with replacing(run_dir / ENCODER_JSON) as tmp:
        tmp.write_text(json.dumps(full, indent=2, sort_keys=True), encoding="utf-8")
    return full


def read_encoder_files(run_dir: str | Path, map_location="cpu") -> tuple[dict[str, Any], dict[str, Any]]:
    """Read ``encoder.pt`` and ``encoder.json`` of a run folder and check they belong together.

    Returns:
        (payload of encoder.pt with 'state_dict', metadata of encoder.json).

    Raises:
        CheckpointError: folder or files missing, corrupt, or not a pair.
    """
    run_dir = Path(run_dir)
    fix = "train one with `galexplorer train CUTOUTS.h5 -o RUN_DIR`"
    if not run_dir.is_dir():
        raise CheckpointError("no such run folder", run_dir, fix)
    jpath = run_dir / ENCODER_JSON
    if not jpath.is_file():
        raise CheckpointError("no encoder.json in the run folder (training not finished an epoch?)",
                              run_dir, fix)
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"encoder.json is not valid JSON ({exc})", jpath, fix) from None
    if not isinstance(meta, dict) or meta.get("format") != ENCODER_FORMAT:
        raise CheckpointError("not a galexplorer encoder description", jpath, fix)
    ppath = run_dir / ENCODER_PT
    payload = _load(ppath, "encoder", fix, map_location)
    if payload.get("format") != ENCODER_FORMAT or "state_dict" not in payload:
        raise CheckpointError("not a galexplorer encoder", ppath, fix)
    digest = sha256_file(ppath)
    if meta.get("sha256") and meta["sha256"] != digest:
        raise CheckpointError("encoder.pt does not match encoder.json (sha256 differs)", run_dir,
                              "copy both files from the same run")
    for key in ("backbone", "in_channels", "stem"):
        if payload.get(key) != meta.get(key):
            raise CheckpointError(f"encoder.pt and encoder.json disagree on {key}", run_dir,
                                  "copy both files from the same run")
    meta["sha256"] = digest
    return payload, meta


def clear_run(run_dir: Path) -> list[str]:
    """Remove a previous run's files from ``run_dir`` (a fresh start); returns what went."""
    gone = []
    for name in RUN_FILES:
        p = run_dir / name
        if p.exists():
            p.unlink()
            gone.append(name)
    return gone
