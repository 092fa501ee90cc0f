"""``galexplorer info``: what is in a cutouts file or an embedding store, its labels and any
leftover temporaries beside it. It sits above the stores and the journal (it reads both), so
``store/`` imports neither ``labels`` nor anything above it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .labels import LabelJournal
from .store.atomic import temporaries
from .store.schema import CUTOUTS_FORMAT, H5_DAMAGE, STORE_FORMAT, open_checked, read_attr


def _file_format(path: Path) -> str | None:
    try:
        with h5py.File(path, "r") as f:
            return read_attr(f, "format")
    except H5_DAMAGE:   # not HDF5, or damaged: describe() lets the validator say which
        return None


def describe(path: str | Path) -> dict[str, Any]:
    """A summary of a cutouts file or an embedding store (validated on open).

    Raises:
        StoreError: not a galexplorer file, truncated, too new, or inconsistent.
    """
    from .store.cutouts import CutoutStore
    from .store.embeddings import EmbeddingStore

    path = Path(path)
    fmt = _file_format(path) if path.is_file() else None
    if fmt == CUTOUTS_FORMAT:
        with CutoutStore(path) as cut:
            attrs = cut.attrs
            return {"temporaries": temporaries(path.parent), **{
                "path": str(path), "kind": "cutouts", "objects": cut.n, "bands": cut.bands,
                "size": cut.size, "columns": cut.column_names,
                "with_ra_dec": int(np.isfinite(cut.objects.ra).sum()),
                "created": attrs.get("created"), "galexplorer_version": attrs.get("galexplorer_version"),
                "schema_version": attrs.get("version"), "uuid": cut.uuid,
            }}
    if fmt != STORE_FORMAT and path.is_file():
        # not ours (or damaged): let the validator name what is wrong, for either kind of file
        open_checked(path, STORE_FORMAT, "cutouts file or embedding store",
                     "give a file made by `galexplorer ingest` or `galexplorer embed`").close()
    with EmbeddingStore(path) as store:
        attrs = store.attrs
        info: dict[str, Any] = {
            "path": str(path), "kind": "store", "objects": store.n, "columns": store.column_names,
            "bands": store.bands, "created": attrs.get("created"),
            "galexplorer_version": attrs.get("galexplorer_version"), "schema_version": attrs.get("version"),
            "uuid": store.uuid, "cutouts": str(store.cutouts_path) if store.cutouts_path else None,
            "cutouts_found": bool(store.cutouts_path and store.cutouts_path.exists()),
            "thumbnails": store.has("thumbnails"),
            "scores": store.score_names,
            "temporaries": temporaries(path.parent),
        }
        if store.has("embeddings"):
            e = store.dataset_attrs("embeddings")
            info["embeddings"] = {"dim": int(store.embeddings.shape[1]), "method": e.get("method"),
                                  "backbone": e.get("backbone"), "source": e.get("source")}
            if e.get("source") == "encoder":       # stores before embed --views held 1 view
                info["embeddings"]["views"] = int(e.get("views") or 1)
        if store.has("pca"):
            p = store.dataset_attrs("pca")
            evr = p.get("explained_variance_ratio")
            info["pca"] = {"components": int(store.file["pca"].shape[1]),
                           "explained_variance": float(sum(evr)) if isinstance(evr, list) else None}
        if store.has("projection"):
            info["projection"] = store.dataset_attrs("projection")
        if attrs.get("shard"):
            info["shard"] = attrs.get("shard")
        info["cluster"] = _saved_cluster(attrs.get("config"))
        with LabelJournal.for_store(path, readonly=True) as journal:
            info["labels"] = journal.counts()
            info["labels_file"] = str(journal.path) if journal.path.exists() else None
            wal = Path(str(journal.path) + "-wal")
            info["labels_wal_bytes"] = wal.stat().st_size if wal.exists() else None
        return info


def _saved_cluster(config: Any) -> str | None:
    """The ``cluster`` entry of a store's saved embed config (JSON text or dict), if any."""
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError:
            return None
    return config.get("cluster") if isinstance(config, dict) else None


def _views(views) -> str:
    """", 8 views averaged" for an encoder's embedding (see ``embed --views``), else ""."""
    return "" if views is None else (", 1 view" if views == 1 else f", {views} views averaged")


def format_description(info: dict[str, Any]) -> str:
    """Human-readable lines for ``galexplorer info``."""
    lines = [f"{info['path']}: galexplorer {'cutouts file' if info['kind'] == 'cutouts' else 'embedding store'}"
             f" (schema v{info['schema_version']}, written by galexplorer {info['galexplorer_version']}"
             f" on {info['created']})"]
    lines.append(f"  objects      {info['objects']}")
    if info.get("bands"):
        lines.append(f"  bands        {', '.join(info['bands'])}")
    if info["kind"] == "cutouts":
        lines.append(f"  stamp size   {info['size']} px")
        lines.append(f"  ra/dec       {info['with_ra_dec']} of {info['objects']} objects")
    else:
        emb = info.get("embeddings")
        lines.append(f"  embeddings   {emb['dim']}-d ({emb.get('method') or emb.get('source') or '?'}"
                     f"{', ' + emb['backbone'] if emb.get('backbone') else ''}"
                     f"{_views(emb.get('views'))})" if emb else "  embeddings   none")
        pca = info.get("pca")
        if pca:
            ev = f", {pca['explained_variance']:.1%} of variance" if pca.get("explained_variance") else ""
            lines.append(f"  pca          {pca['components']} components{ev}")
        else:
            lines.append("  pca          none")
        proj = info.get("projection")
        lines.append(f"  projection   {proj.get('method', '?')}" if proj else
                     "  projection   none (run `galexplorer embed` without --shard, or --merge the shards)")
        lines.append(f"  scores       {', '.join(info['scores']) or 'none'}")
        lines.append(f"  thumbnails   {'yes' if info['thumbnails'] else 'no'}")
        if info.get("cluster"):
            lines.append(f"  built on     Dask cluster {info['cluster']}")
        cut = info.get("cutouts")
        lines.append(f"  cutouts      {cut} ({'found' if info['cutouts_found'] else 'NOT FOUND'})" if cut
                     else "  cutouts      none")
        lab = info["labels"]
        lines.append(f"  labels       {lab['labels']} by {lab['users']} user(s) on {lab['labelled_objects']} objects"
                     f", {lab['excluded']} excluded, {lab['disputed']} disputed"
                     f"{' (' + info['labels_file'] + ')' if info.get('labels_file') else ''}")
        if info.get("labels_wal_bytes"):
            lines.append(f"  labels -wal  {info['labels_wal_bytes']} bytes not yet folded into the journal file "
                         "(a session is open or was killed): a backup must copy it too")
    if info.get("columns"):
        lines.append(f"  columns      {', '.join(info['columns'])}")
    for t in info.get("temporaries") or []:
        why = (f"process {t['pid']} is gone: the next write of {Path(t['output']).name} removes it, "
               "or delete it" if t["stale"] else
               f"process {t['pid']} on {t['host']} may still be writing it")
        lines.append(f"  leftover     {Path(t['path']).name} ({t['bytes'] / 1e6:.1f} MB; {why})")
    return "\n".join(lines)

