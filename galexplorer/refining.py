"""``galexplorer refine``: a new store whose encoder has learned from the labels (issue #22 item 2).

The store's encoder (its run folder) is fine-tuned on the labels of the store's journal and the
unlabelled cutouts (:mod:`galexplorer.ssl.refine`), written as a new run folder beside the output
(``OUTPUT.refine/``), and the cutouts are embedded again with it into ``OUTPUT``: the same objects
in the same order (the same ids), every analysis stage anew (PCA, map, scores, the other
representations), and the journal copied so every label stays. The new store's root attribute
``refined_from`` names the store, its uuid, the labels' hash and the run it came from.

The refine is resumable (``--resume`` continues the fine-tuning from its last epoch); the store is
written atomically as ``embed`` writes it.

:func:`store_refiner` is the same refine for ``simulate --refine-every`` (labels given as rows,
not read from a journal).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, StoreError
from .labels.journal import journal_path
from .store import EmbeddingStore
from .store.atomic import check_output

log = logging.getLogger(__name__)

FIX_RUN = "pass the run folder the store was embedded with: --run RUN_DIR"


@dataclass
class RefineStoreReport:
    output: Path
    refine: object            # galexplorer.ssl.refine.RefineReport
    embed: object             # galexplorer.explore.pipeline.EmbedReport
    journal_copied: bool

    def summary(self) -> str:
        lines = [self.refine.summary(), self.embed.summary()]
        if self.journal_copied:
            lines.append(f"labels: the journal was copied to {journal_path(self.output)}")
        lines.append(f"open it with `galexplorer open {self.output}`")
        return "\n".join(lines)


def sources(store: EmbeddingStore, cutouts: str | Path | None = None, run: str | Path | None = None
            ) -> tuple[Path, Path]:
    """The cutouts file and run folder a store was built from (or the ones given), checked.

    Raises:
        StoreError: the store came from the user's own embeddings, has no cutouts, or holds a
            subset of them.
        ConfigError: no run folder known, or one whose encoder is not the store's.
    """
    attrs = store.dataset_attrs("embeddings") if store.has("embeddings") else {}
    if attrs.get("method") == "external" or attrs.get("source") not in (None, "encoder"):
        raise StoreError("this store holds your own embeddings: there is no encoder to refine", store.path,
                         "build a store with `galexplorer train` + `galexplorer embed --run`, or let the loop "
                         "learn on your features (rank/open do) ")
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
        if store.attrs.get("cutouts_uuid") and c.uuid != store.attrs.get("cutouts_uuid"):
            raise StoreError("this is not the cutouts file the store was built from (uuid differs)", cut,
                             "pass the cutouts file the store was built from: --cutouts CUTOUTS.h5")
        if c.n != store.n or not np.array_equal(store.cutouts_rows, np.arange(c.n)):
            raise StoreError(f"the store holds {store.n} of the {c.n} cutouts (built with --allow-missing or "
                             "--shard): refine re-embeds every cutout", store.path,
                             "refine a store built from the whole cutouts file")
    return Path(cut), run_dir


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
                 user: str | None = None, resume: bool = False, device: str | None = None) -> RefineStoreReport:
    """Refine the store's encoder on its journal's labels and write the re-embedded store."""
    from .active.snapshot import label_snapshot
    from .labels import LabelJournal
    from .ssl.refine import RefineConfig, refine_encoder

    output = Path(output)
    if Path(store_path).resolve() == output.resolve():
        raise ConfigError("the output is the store itself", output, "write the refined store to a new file: -o NEW.h5")
    check_output(output)
    cfg = config or RefineConfig()
    if device:
        cfg.device = device
    with EmbeddingStore(store_path) as store:
        cut, run_dir = sources(store, cutouts, run)
        with LabelJournal.for_store(store_path, readonly=True) as journal:
            snap = label_snapshot(store, journal, user=user)
        rows, labels, _ = snap.fit_inputs("gp")
        if len(rows) == 0:
            raise ConfigError("the store has no labels to refine on", store.path,
                              "label some objects with `galexplorer open` first")
        cut_rows = store.cutouts_rows[rows]
        embed_cfg = _embed_config(store)
        provenance = {"store": str(Path(store_path).resolve()), "uuid": store.uuid, "n_labels": int(len(rows)),
                      "user": user or "consensus"}
    refine_run = Path(str(output) + ".refine")
    rep = refine_encoder(cut, run_dir, refine_run, cut_rows, labels, cfg, resume=resume)
    provenance.update(run=str(refine_run.resolve()), labels_hash=rep.run_dir and _hash(cut_rows, labels))
    from .ssl.embed import embed_with_encoder

    if device:
        embed_cfg.device = device
    emb = embed_with_encoder(cut, refine_run, output, embed_cfg, extra_attrs={"refined_from": provenance})
    copied = copy_journal(store_path, output)
    return RefineStoreReport(output, rep, emb, copied)


def _hash(rows, labels) -> str:
    from .ssl.refine import labels_hash

    return labels_hash(rows, labels)


def store_refiner(work: str | Path, config=None, device: str = "cpu"):
    """A function ``refine(store, rows, labels) -> EmbeddingStore`` for ``simulate --refine-every``:
    it refines the store's encoder on those labels (store rows) and returns the new store, open,
    written under ``work`` (the original run each time, so refines do not compound)."""
    from .ssl.embed import embed_with_encoder
    from .ssl.refine import RefineConfig, refine_encoder

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    state = {"k": 0, "sources": None}

    def refine(store: EmbeddingStore, rows: np.ndarray, labels: np.ndarray) -> EmbeddingStore:
        if state["sources"] is None:
            state["sources"] = sources(store)
        cut, run_dir = state["sources"]
        state["k"] += 1
        k = state["k"]
        cfg = config or RefineConfig()
        cfg.device = device
        out_run, out = work / f"refine-{k}", work / f"refined-{k}.h5"
        rep = refine_encoder(cut, run_dir, out_run, store.cutouts_rows[np.asarray(rows, np.int64)], labels, cfg)
        log.info("simulate: refine %d on %d labels: %s", k, len(rows), rep.summary().splitlines()[-1])
        embed_cfg = _embed_config(store)
        embed_cfg.device = device
        embed_with_encoder(cut, out_run, out, embed_cfg, extra_attrs={"refined_from": {
            "store": str(store.path), "uuid": store.uuid, "n_labels": int(len(rows)), "run": str(out_run)}})
        return EmbeddingStore(out)

    return refine


__all__ = ["refine_store", "store_refiner", "sources", "copy_journal", "RefineStoreReport"]
