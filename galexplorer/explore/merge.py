"""Join shard stores (``galexplorer embed --shard i/n``) into one store: ``embed --merge``.

Each shard holds the objects, thumbnails and embeddings of one contiguous block of rows of the
same cutouts file. :func:`merge_shards` checks that the shards fit together — the same cutouts
file (uuid), the same encoder (embedding attributes), the same dimension, every shard of ``n``
present once and their rows covering the cutouts file exactly once — then writes a new store in
shard order, either copying the arrays (default) or linking them as HDF5 virtual datasets, and
runs the same PCA / projection / anomaly / clustering stages as a single-machine ``embed``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np

from .. import progress
from ..errors import ConfigError, StoreError
from ..store.embeddings import EmbeddingStore, EmbeddingStoreWriter
from ..store.schema import ObjectTable, read_attr

log = logging.getLogger(__name__)

FIX = "rebuild the missing or wrong shards with `galexplorer embed CUTOUTS.h5 --run RUN_DIR --shard i/n`"
COPY_ROWS = 8192
# embedding attributes that must agree between shards (they identify the encoder or source)
SAME_ATTRS = ("method", "backbone", "checkpoint_sha256", "source_sha256")


def _parse_shard(value, path: Path) -> tuple[int, int]:
    try:
        i, k = (int(t) for t in str(value).split("/"))
    except ValueError:
        raise StoreError(f"not a shard store (shard attribute {value!r})", path, FIX) from None
    return i, k


def _concat_objects(tables: list[ObjectTable], paths: list[Path]) -> ObjectTable:
    names = list(tables[0].columns)
    for t, p in zip(tables[1:], paths[1:]):
        if list(t.columns) != names:
            raise StoreError(f"catalogue columns differ from those of {paths[0]} "
                             f"({sorted(t.columns)} vs {sorted(names)})", p, FIX)
    cols = {}
    for name in names:
        parts = [t.columns[name] for t in tables]
        cols[name] = np.concatenate([np.asarray(v, dtype=object) for v in parts]) \
            if any(np.asarray(v).dtype == object for v in parts) else np.concatenate(parts)
    return ObjectTable(np.concatenate([t.ids for t in tables]), np.concatenate([t.ra for t in tables]),
                       np.concatenate([t.dec for t in tables]), cols,
                       np.concatenate([t.source for t in tables]))


def merge_shards(paths: list[str | Path], output: str | Path, config=None, virtual: bool = False):
    """Join shard stores into ``output`` and compute PCA, projection, anomaly score and clusters.

    Args:
        paths: the shard stores, in any order.
        output: the merged store to write (atomically).
        config: an :class:`~galexplorer.explore.pipeline.EmbedConfig` for the analysis stages;
            None uses the one recorded in the shards.
        virtual: link ``embeddings`` and ``thumbnails`` to the shard files as HDF5 virtual
            datasets instead of copying them (fast and small, but the shard files must stay
            where they are, by absolute path).

    Returns:
        An :class:`~galexplorer.explore.pipeline.EmbedReport`.

    Raises:
        StoreError: a file is not a shard store, or the shards do not fit together (different
            cutouts file or encoder, missing or repeated shards, overlapping or missing rows).
        ConfigError: no shards given, or ``output`` is one of the shards.
    """
    from .pipeline import (
        EmbedReport,
        config_from_store_attrs,
        write_similarity_index,
    )

    paths = [Path(p) for p in paths]
    output = Path(output)
    if not paths:
        raise ConfigError("no shard stores given to merge", hint="pass --merge SHARD.h5 ...")
    if any(p.resolve() == output.resolve() for p in paths if p.exists()):
        raise ConfigError("the output is one of the shards", output, "write the merged store to a new file")
    stores: list[EmbeddingStore] = []
    try:
        for p in paths:
            stores.append(EmbeddingStore(p))
        infos = [_shard_info(s) for s in stores]
        first = infos[0][3]                  # the first given: its config and attributes are kept
        infos = _shard_order(infos, len(paths))
        k, d = infos[0][1], first.embeddings.shape[1]
        ordered = [t[3] for t in infos]
        objects = _concat_objects([s.objects for s in ordered], [s.path for s in ordered])
        if len(set(objects.ids)) != len(objects):
            raise StoreError("the shards hold duplicate object ids", None, FIX)
        if config is None:
            config = config_from_store_attrs(read_attr(first.file, "config"))
        config.validate()
        n = len(objects)
        report = EmbedReport(output=output, n=n, dim=d, source=f"{k} shards")
        _write_merged(output, objects, ordered, first, config, report, virtual)
    finally:
        for s in stores:
            s.close()
    write_similarity_index(output, config, report)
    return report


def _shard_info(s: EmbeddingStore) -> tuple[int, int, list[int], EmbeddingStore]:
    """``(i, k, [first row, end row], store)`` of a shard store, checked on its own."""
    shard = read_attr(s.file, "shard")
    if shard is None:
        raise StoreError("not a shard store (no shard attribute): it is a complete store already",
                         s.path, "merge only the outputs of `embed --shard i/n`")
    i, k = _parse_shard(shard, s.path)
    span = read_attr(s.file, "shard_rows")
    span = [int(v) for v in (span if isinstance(span, list) else
                             json.loads(span))] if span is not None else None
    if span is None or span[1] - span[0] != s.n:
        raise StoreError(f"shard {shard}: its shard_rows {span} do not match its {s.n} objects",
                         s.path, FIX)
    s.require("embeddings", FIX)
    return i, k, span, s


def _shard_order(infos: list, n_given: int) -> list:
    """The shards sorted by index, once checked to fit together: the same split, cutouts file,
    dimension and embedding attributes; each shard once, none missing; rows contiguous and
    covering the cutouts file."""
    first = infos[0][3]
    ref = {"k": infos[0][1], "cutouts_uuid": read_attr(first.file, "cutouts_uuid"),
           "dim": first.embeddings.shape[1],
           "attrs": {a: read_attr(first.embeddings, a) for a in SAME_ATTRS}}
    for i, k, _span, s in infos[1:]:
        if k != ref["k"]:
            raise StoreError(f"shard {i}/{k} belongs to a split into {k}, not {ref['k']} like {first.path}",
                             s.path, FIX)
        if read_attr(s.file, "cutouts_uuid") != ref["cutouts_uuid"]:
            raise StoreError(f"built from a different cutouts file than {first.path} (cutouts uuid differs)",
                             s.path, FIX)
        if s.embeddings.shape[1] != ref["dim"]:
            raise StoreError(f"{s.embeddings.shape[1]}-d embeddings, but {first.path} has {ref['dim']}-d",
                             s.path, FIX)
        for a in SAME_ATTRS:
            if read_attr(s.embeddings, a) != ref["attrs"][a]:
                raise StoreError(f"embeddings made differently from {first.path} ({a}: "
                                 f"{read_attr(s.embeddings, a)!r} vs {ref['attrs'][a]!r})", s.path, FIX)
    k = ref["k"]
    seen: dict[int, Path] = {}
    for i, _k, _span, s in infos:
        if i in seen:
            raise StoreError(f"shard {i}/{k} given twice (also {seen[i]})", s.path, "give each shard once")
        seen[i] = s.path
    missing = sorted(set(range(k)) - set(seen))
    if missing:
        raise StoreError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(f'{m}/{k}' for m in missing)} "
                         f"missing: {n_given} of {k} given", None, FIX)
    infos.sort(key=lambda t: t[0])
    expect = 0
    for i, _k, (a, b), s in infos:
        if a != expect:
            what = "overlap" if a < expect else "leave a gap"
            raise StoreError(f"shard {i}/{k} covers rows {a}..{b} and would {what} "
                             f"(expected to start at row {expect})", s.path, FIX)
        expect = b
    total = read_attr(first.file, "cutouts_n")
    if total is not None and expect != int(total):
        raise StoreError(f"the shards cover {expect} rows but the cutouts file has {total}", first.path, FIX)
    return infos


def _write_merged(output: Path, objects: ObjectTable, ordered: list[EmbeddingStore], first: EmbeddingStore,
                  config, report, virtual: bool) -> None:
    """Write the merged store (the shards joined in row order; attributes from ``first``), then
    run the analysis stages on it."""
    from .pipeline import _Timer, analyse, cutouts_link, scan_embeddings

    n, d = len(objects), first.embeddings.shape[1]
    attrs = {key: read_attr(first.file, key) for key in ("cutouts_uuid", "bands")}
    cut_path = first.cutouts_path
    attrs["cutouts_path"] = cutouts_link(cut_path, output) if cut_path is not None else None
    attrs.update(config=config.to_dict(), merged_from=[str(s.path.resolve()) for s in ordered],
                 merge_mode="virtual" if virtual else "copy")
    emb_attrs = {key: read_attr(first.embeddings, key) for key in first.embeddings.attrs}
    with EmbeddingStoreWriter(output, objects, attrs) as w:
        if all("objects/cutouts_row" in s.file for s in ordered):
            w.write("objects/cutouts_row", np.concatenate([s.file["objects/cutouts_row"][:] for s in ordered]))
        with _Timer(report, "merge"):
            _join(w, "embeddings", ordered, (n, d), np.float32, emb_attrs, virtual)
            if all(s.thumbnails is not None for s in ordered):
                shape = (n,) + ordered[0].thumbnails.shape[1:]
                if any(s.thumbnails.shape[1:] != shape[1:] for s in ordered):
                    raise StoreError("the shards' thumbnails differ in size", None, FIX)
                _join(w, "thumbnails", ordered, shape, np.uint8, {}, virtual)
        # read the shards directly: HDF5 would reopen a virtual dataset's sources read-write,
        # which clashes with our read-only handles
        emb = _Rows([s.file["embeddings"] for s in ordered]) if virtual else w["embeddings"]
        with _Timer(report, "check"):
            acc = scan_embeddings(emb, objects.ids)
        analyse(w, emb, config, report, acc)


def _join(w: EmbeddingStoreWriter, name: str, shards: list[EmbeddingStore], shape, dtype, attrs: dict,
          virtual: bool) -> None:
    from ..store.schema import write_attrs

    if virtual:
        layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
        a = 0
        for s in shards:
            src = s.file[name]
            layout[a:a + src.shape[0]] = h5py.VirtualSource(str(s.path.resolve()), name, shape=src.shape)
            a += src.shape[0]
        dset = w.file.create_virtual_dataset(name, layout)
        write_attrs(dset, attrs)
        return
    if name == "thumbnails":
        dset = w.file.create_dataset(name, shape=shape, dtype=dtype, chunks=(min(16, shape[0]),) + shape[1:],
                                     compression="gzip", compression_opts=1)
    else:
        from .pipeline import embedding_chunks

        dset = w.create(name, shape, dtype, chunks=embedding_chunks(*shape))
    write_attrs(dset, attrs)
    total = sum(s.file[name].shape[0] for s in shards)
    with progress.Bar(f"merge {name}", total, unit="obj") as bar:
        a = 0
        for s in shards:
            src = s.file[name]
            for b in range(0, src.shape[0], COPY_ROWS):
                block = src[b:b + COPY_ROWS]
                dset[a + b:a + b + len(block)] = block
                bar.update(len(block))
            a += src.shape[0]


class _Rows:
    """Row slices across several (n_i, D) datasets as if they were one (N, D) array."""

    def __init__(self, parts: list[h5py.Dataset]):
        self.parts = parts
        self.starts = np.cumsum([0] + [p.shape[0] for p in parts])
        self.shape = (int(self.starts[-1]),) + tuple(parts[0].shape[1:])

    def __getitem__(self, index: slice) -> np.ndarray:
        a, b, _ = index.indices(self.shape[0])
        out = []
        for p, s0, s1 in zip(self.parts, self.starts[:-1], self.starts[1:]):
            lo, hi = max(a, s0), min(b, s1)
            if lo < hi:
                out.append(p[lo - s0:hi - s0])
        return np.concatenate(out) if out else np.empty((0,) + self.shape[1:], np.float32)
