"""``galexplorer refine``: a new store whose encoder has learned from the labels (issue #22 item 2).

The store's encoder (its run folder) is fine-tuned on the labels of the store's journal and the
unlabelled cutouts (:mod:`galexplorer.ssl.refine`), written as a new run folder beside the output
(``OUTPUT.refine/``), and the cutouts are embedded again with it into ``OUTPUT``: the same objects
in the same order (the same ids), every analysis stage anew (PCA, map, scores, the other
representations), and the journal copied so every label stays. The new store's root attribute
``refined_from`` names the store, its uuid, the labels' hash and the run it came from.

The refine is resumable (``--resume`` continues the fine-tuning from its last epoch); the store is
written atomically as ``embed`` writes it.

A store of the user's own embeddings (``embed --embeddings``) has no encoder: there a small head
is refined on the embeddings instead (:mod:`galexplorer.ssl.refine_head`), written to
``OUTPUT.refine/`` (``head.pt`` + ``head.json``), and the new store is built from the head's
output through the same store pipeline; ``refined_from`` then says ``"kind": "head"``. A store
made that way refines again from the original embeddings (the store it records), not from the
head's output, so refines do not compound.

:func:`store_refiner` is the same refine for ``simulate --refine-every`` (labels given as rows,
not read from a journal).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError, StoreError
from .labels.journal import journal_path
from .store import EmbeddingStore
from .store.atomic import check_output

if TYPE_CHECKING:
    from .ssl.refine_head import HeadRefineConfig

log = logging.getLogger(__name__)

FIX_RUN = "pass the run folder the store was embedded with: --run RUN_DIR"


@dataclass
class RefineStoreReport:
    output: Path
    refine: object            # galexplorer.ssl.refine.RefineReport
    embed: object             # galexplorer.explore.pipeline.EmbedReport
    journal_copied: bool
    kind: str = "encoder"     # or "head": a head refined on the user's own embeddings
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [self.refine.summary(), self.embed.summary(), *(f"note: {n}" for n in self.notes)]
        if self.journal_copied:
            lines.append(f"labels: the journal was copied to {journal_path(self.output)}")
        lines.append(f"open it with `galexplorer open {self.output}`")
        return "\n".join(lines)


def refine_kind(store: EmbeddingStore) -> str:
    """``"head"`` when the store holds the user's own embeddings (or a head refined on them),
    ``"encoder"`` when an encoder embedded it.

    Raises:
        StoreError: the store has no ``embeddings`` dataset.
    """
    if not store.has("embeddings"):
        raise StoreError("the store holds no embeddings dataset: there is nothing to refine", store.path,
                         "build the store with `galexplorer embed` (--run RUN_DIR or --embeddings FILE)")
    attrs = store.dataset_attrs("embeddings")
    own = attrs.get("method") in ("external", "head") or attrs.get("source") not in (None, "encoder")
    return "head" if own else "encoder"


def head_base(store: EmbeddingStore) -> Path:
    """The store of the user's own embeddings a head refine starts from: the store itself, or the
    one a head-refined store records (the same objects in the same order, checked).

    Raises:
        StoreError: the recorded store is gone, replaced, or holds other objects.
    """
    attrs = store.dataset_attrs("embeddings")
    if attrs.get("method") != "head":
        return Path(store.path)
    base = Path(attrs.get("base_store") or "")
    fix = "refine the store of your own embeddings (`galexplorer refine ORIGINAL.h5 -o NEW.h5`)"
    if not base.is_file():
        raise StoreError(f"this store was refined from {base}, which holds your own embeddings and is gone",
                         store.path, fix)
    with EmbeddingStore(base) as b:
        if b.uuid != attrs.get("base_uuid") or b.n != store.n or not np.array_equal(b.ids, store.ids):
            raise StoreError(f"{base} is not the store this one was refined from (uuid or objects differ)",
                             store.path, fix)
    return base


def sources(store: EmbeddingStore, cutouts: str | Path | None = None, run: str | Path | None = None
            ) -> tuple[Path, Path]:
    """The cutouts file and run folder a store was built from (or the ones given), checked.

    Raises:
        StoreError: the store came from the user's own embeddings, has no cutouts, or holds a
            subset of them.
        ConfigError: no run folder known, or one whose encoder is not the store's.
    """
    attrs = store.dataset_attrs("embeddings") if store.has("embeddings") else {}
    if refine_kind(store) == "head":
        raise StoreError("this store holds your own embeddings: there is no encoder to refine", store.path,
                         "`galexplorer refine` refines a small head on them instead (without --run)")
    cut = Path(cutouts) if cutouts else store.cutouts_path
    if cut is None or not Path(cut).exists():
        raise StoreError("the store's cutouts file is not available", store.path,
                         "pass the cutouts file the store was built from: --cutouts CUTOUTS.h5")
    run_dir = Path(run) if run else (Path(attrs["run_dir"]) if attrs.get("run_dir") else None)
    if run_dir is None:
        raise ConfigError("this store does not record its run folder (embedded before refine existed)",
                          store.path, FIX_RUN)
    enc = run_dir / "encoder.json"
    if not enc.is_file():
        raise ConfigError("no encoder.json in the run folder", run_dir, FIX_RUN)
    import json

    try:
        sha = json.loads(enc.read_text(encoding="utf-8")).get("sha256")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError("encoder.json is not valid JSON", enc, FIX_RUN) from None
    want = attrs.get("checkpoint_sha256")
    if want and sha and want != sha:
        raise ConfigError("this run's encoder is not the one the store was embedded with (sha256 differs)",
                          run_dir, FIX_RUN)
    from .store import CutoutStore

    with CutoutStore(cut) as c:
        check_cutouts_uuid(store, c)
        if c.n != store.n or not np.array_equal(store.cutouts_rows, np.arange(c.n)):
            raise StoreError(f"the store holds {store.n} of the {c.n} cutouts (built with --allow-missing or "
                             "--shard): refine re-embeds every cutout", store.path,
                             "refine a store built from the whole cutouts file")
    return Path(cut), run_dir


def check_cutouts_uuid(store: EmbeddingStore, cut) -> None:
    """Raise :class:`StoreError` when the open cutouts file ``cut`` is not the one ``store`` was built from."""
    if store.attrs.get("cutouts_uuid") and cut.uuid != store.attrs.get("cutouts_uuid"):
        raise StoreError("this is not the cutouts file the store was built from (uuid differs)", cut.path,
                         "pass the cutouts file the store was built from: --cutouts CUTOUTS.h5")


def copy_journal(source_store: str | Path, output: str | Path) -> bool:
    """Copy the label journal of ``source_store`` to ``output``'s (SQLite's backup: consistent even
    while someone labels). False when there is none; an existing journal there is kept."""
    src, dst = journal_path(source_store), journal_path(output)
    if not src.exists() or dst.exists():
        return False
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{src}?mode=ro", uri=True) as a, sqlite3.connect(tmp) as b:
        a.backup(b)
    b.close()
    a.close()
    tmp.replace(dst)
    return True


def _embed_config(store: EmbeddingStore):
    from .explore.pipeline import config_from_store_attrs

    return config_from_store_attrs(store.attrs.get("config") or {})


def refine_store(store_path: str | Path, output: str | Path, *, cutouts=None, run=None, config=None,
                 head_config=None, user: str | None = None, resume: bool = False,
                 device: str | None = None) -> RefineStoreReport:
    """Refine the store's encoder (or, for a store of your own embeddings, a small head on them)
    on its journal's labels and write the new store.

    Args:
        config: :class:`~galexplorer.ssl.refine.RefineConfig` (the encoder; its ``interesting_above``,
            ``seed``, ``device``, ``holdout``, ``confidence`` and ``unlabelled_weight`` also steer a head).
        head_config: :class:`~galexplorer.ssl.refine_head.HeadRefineConfig` (a head; default from ``config``).
        resume: continue an interrupted encoder refine (a head refine takes seconds and starts again).

    Raises:
        ConfigError: the output is the store, no labels or labels on one side only, ``run`` for a
            store of your own embeddings, bad options.
        StoreError: no embeddings dataset, missing or foreign cutouts (encoder), a missing base store (head).
    """
    from .ssl.refine import RefineConfig

    output = Path(output)
    if Path(store_path).resolve() == output.resolve():
        raise ConfigError("the output is the store itself", output, "write the refined store to a new file: -o NEW.h5")
    check_output(output)
    cfg = config or RefineConfig()
    if device:
        cfg.device = device
    with EmbeddingStore(store_path) as store:
        kind = refine_kind(store)
        if kind == "head" and run:
            raise ConfigError("--run is for a store an encoder embedded; this one holds your own embeddings",
                              store.path, "leave out --run: a small head is refined on your embeddings")
        cut, run_dir = sources(store, cutouts, run) if kind == "encoder" else (cutouts, None)
        rows, labels = _journal_labels(store, store_path, user)
        provenance = {"store": str(Path(store_path).resolve()), "uuid": store.uuid, "n_labels": int(len(rows)),
                      "user": user or "consensus", "kind": kind}
        embed_cfg = _embed_config(store)
        base = head_base(store) if kind == "head" else None
        cut_rows = store.cutouts_rows[rows]
    if device:
        embed_cfg.device = device
    refine_dir = Path(str(output) + ".refine")
    if kind == "head":
        if resume:
            log.info("refine: a head on your own embeddings takes seconds; --resume starts it again")
        hcfg = head_config or head_config_from(cfg)
        rep, emb, notes = _refine_head_into(base, refine_dir, output, rows, labels, hcfg, embed_cfg, provenance, cut)
        return RefineStoreReport(output, rep, emb, copy_journal(store_path, output), "head", notes)
    from .ssl.embed import embed_with_encoder
    from .ssl.refine import refine_encoder

    rep = refine_encoder(cut, run_dir, refine_dir, cut_rows, labels, cfg, resume=resume)
    provenance.update(run=str(refine_dir.resolve()), labels_hash=rep.run_dir and _hash(cut_rows, labels))
    emb = embed_with_encoder(cut, refine_dir, output, embed_cfg, extra_attrs={"refined_from": provenance})
    copied = copy_journal(store_path, output)
    return RefineStoreReport(output, rep, emb, copied)


def _journal_labels(store: EmbeddingStore, store_path, user: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(store rows, labels) of the journal's labels (one user's, or the consensus)."""
    from .active.snapshot import label_snapshot
    from .labels import LabelJournal

    with LabelJournal.for_store(store_path, readonly=True) as journal:
        snap = label_snapshot(store, journal, user=user)
    rows, labels, _ = snap.fit_inputs("gp")
    if len(rows) == 0:
        raise ConfigError("the store has no labels to refine on", store.path,
                          "label some objects with `galexplorer open` first")
    return rows, labels


def head_config_from(cfg) -> HeadRefineConfig:
    """A :class:`~galexplorer.ssl.refine_head.HeadRefineConfig` that shares an encoder refine's
    threshold, seed, device and semi-supervised options (the rest are the head's own defaults)."""
    from .ssl.refine_head import HeadRefineConfig

    shared = ("interesting_above", "seed", "device", "holdout", "confidence", "unlabelled_weight")
    return HeadRefineConfig(**{k: getattr(cfg, k) for k in shared})


def _refine_head_into(base: Path, head_dir: Path, output: Path, rows, labels, hcfg, embed_cfg, provenance: dict,
                      cutouts=None):
    """Refine a head on ``base``'s embeddings and write the store of its output to ``output``;
    returns (HeadRefineReport, EmbedReport, notes)."""
    from .ssl.refine_head import embed_with_head, refine_head

    notes = []
    with EmbeddingStore(base) as feats:
        record = {"store": str(base.resolve()), "uuid": feats.uuid}
        rep = refine_head(feats.embeddings, rows, labels, head_dir, hcfg, provenance=record)
        provenance = {**provenance, "kind": "head", "head": str(head_dir.resolve()), "base_store": record["store"],
                      "labels_hash": _hash(rows, labels)}
        cut = _head_cutouts(feats, cutouts)
        if cut is None and feats.cutouts_path is not None:
            notes.append(f"the cutouts file {feats.cutouts_path} is not available: the new store has no thumbnails "
                         "and no pixel or morphology sets (pass --cutouts CUTOUTS.h5)")
        try:
            emb = embed_with_head(feats, head_dir, output, embed_cfg, cutouts=cut,
                                  extra_attrs={"refined_from": provenance})
        finally:
            if cut is not None:
                cut.close()
    return rep, emb, notes


def _head_cutouts(store: EmbeddingStore, cutouts=None):
    """The cutouts file of a store of own embeddings, open and checked, or None when it has none
    or it is gone (then the new store has no thumbnails)."""
    from .store import CutoutStore

    if cutouts and store.cutouts_path is None:
        raise ConfigError("this store was built without a cutouts file (--no-cutouts)", store.path,
                          "leave out --cutouts")
    path = Path(cutouts) if cutouts else store.cutouts_path
    if path is None or not path.exists():
        if cutouts:
            raise StoreError("no such cutouts file", path, "pass the cutouts file the store was built from")
        return None
    cut = CutoutStore(path)
    try:
        check_cutouts_uuid(store, cut)
        if len(store.cutouts_rows) and int(store.cutouts_rows.max()) >= cut.n:
            raise StoreError(f"the store links rows beyond the {cut.n} cutouts of this file", path,
                             "pass the cutouts file the store was built from: --cutouts CUTOUTS.h5")
    except BaseException:
        cut.close()
        raise
    return cut


def _hash(rows, labels) -> str:
    from .ssl.refine import labels_hash

    return labels_hash(rows, labels)


class StoreRefiner:
    """``refine(store, rows, labels) -> EmbeddingStore`` for ``simulate --refine-every``: refines
    the store's encoder (or, for a store of your own embeddings, a small head on them) on those
    labels (store rows) and returns the new store, open, written under ``work``. Each refine starts
    from the original encoder or embeddings, so refines do not compound. ``kind`` is "encoder" or
    "head" once it has run."""

    def __init__(self, work: str | Path, config=None, device: str = "cpu"):
        self.work, self.config, self.device = Path(work), config, device
        self.work.mkdir(parents=True, exist_ok=True)
        self.k = 0
        self.kind: str | None = None
        self._sources = None

    def __call__(self, store: EmbeddingStore, rows: np.ndarray, labels: np.ndarray) -> EmbeddingStore:
        from .ssl.refine import RefineConfig

        if self.kind is None:
            self.kind = refine_kind(store)
            self._sources = sources(store) if self.kind == "encoder" else head_base(store)
        self.k += 1
        cfg = self.config or RefineConfig()
        cfg.device = self.device
        out = self.work / f"refined-{self.k}.h5"
        embed_cfg = _embed_config(store)
        embed_cfg.device = self.device
        prov = {"store": str(store.path), "uuid": store.uuid, "n_labels": int(len(rows)), "kind": self.kind}
        rows = np.asarray(rows, np.int64)
        if self.kind == "head":
            rep, _, _ = _refine_head_into(self._sources, self.work / f"head-{self.k}", out, rows, labels,
                                          head_config_from(cfg), embed_cfg, prov)
        else:
            rep = self._refine_encoder(store, rows, labels, cfg, embed_cfg, out, prov)
        log.info("simulate: refine %d (%s) on %d labels: %s", self.k, self.kind, len(rows),
                 rep.summary().splitlines()[-1])
        return EmbeddingStore(out)

    def _refine_encoder(self, store, rows, labels, cfg, embed_cfg, out: Path, prov: dict):
        from .ssl.embed import embed_with_encoder
        from .ssl.refine import refine_encoder

        cut, run_dir = self._sources
        out_run = self.work / f"refine-{self.k}"
        rep = refine_encoder(cut, run_dir, out_run, store.cutouts_rows[rows], labels, cfg)
        embed_with_encoder(cut, out_run, out, embed_cfg, extra_attrs={"refined_from": {**prov, "run": str(out_run)}})
        return rep


def store_refiner(work: str | Path, config=None, device: str = "cpu") -> StoreRefiner:
    """A :class:`StoreRefiner` writing under ``work`` (the function ``simulate --refine-every`` takes)."""
    return StoreRefiner(work, config, device)


__all__ = ["refine_store", "store_refiner", "StoreRefiner", "sources", "refine_kind", "head_base",
           "copy_journal", "RefineStoreReport"]
