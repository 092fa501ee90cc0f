"""Ranking: refit a scorer from the label journal, save the scores beside the store, and build
the ranked candidate table that ``export`` writes and the explorer shows.

The table has one row per object, best first, with the columns::

    id, ra, dec, rank, label, n_labellers, disputed, excluded, score_mean, score_std,
    acquisition, anomaly, cluster, <every catalogue column>

``label`` is the consensus (median) of the users' scores, or one user's; NaN where unlabelled.
``score_mean``/``score_std`` are the scorer's prediction and its std (NaN where it has none).
A catalogue column whose name clashes with these is written as ``catalog_<name>``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..explore.cluster import active_client
from ..explore.cluster import describe as describe_cluster
from ..labels import LabelJournal
from ..store import EmbeddingStore
from ..store.ondemand import as_text, as_text_value
from ..store.ranking import Ranking, check_ranking_writable, ranking_path, read_ranking, write_ranking
from .loop import ActiveLoop, LoopConfig, LoopResult
from .portfolio import load_state
from .registry import PORTFOLIO
from .snapshot import label_snapshot

log = logging.getLogger(__name__)

ON_DEMAND_FRACTION = 20   # a table of fewer than N/20 rows reads only its rows from the store


class RowsOf:
    """``values[order]`` without building it: slices and row arrays gather those rows only (from
    memory or, for a store's :class:`~galexplorer.store.ondemand.OnDiskColumn`, from the file),
    so a writer that takes 65,536 rows at a time holds 65,536 rows of text, not N.

    Args:
        values: (N,) array-like in store order (text as str objects or UTF-8 bytes).
        order: (M,) int64 store rows, in output order.
    """

    def __init__(self, values, order: np.ndarray):
        self.values = values
        self.order = np.asarray(order, np.int64)
        dt = getattr(values, "dtype", np.dtype(object))
        self.dtype = np.dtype(object) if dt.kind == "S" else dt

    def __len__(self) -> int:
        return len(self.order)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.order),)

    def __getitem__(self, key):
        rows = self.order[key]
        if np.ndim(rows) == 0:
            return as_text_value(self.values[int(rows)])
        return as_text(self.values[rows])

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)

    def __iter__(self):
        return iter(self[:].tolist())

    def tolist(self) -> list:
        return self[:].tolist()


@dataclass
class RankedTable:
    """Columns of the ranked candidate list, rows best first.

    Attributes:
        columns: name -> (M,) array-like in output order (an array, or a :class:`RowsOf` that
            gathers rows when sliced). Floats use NaN for "no value".
        meta: provenance (store, scorer, n_labels, created, ...), JSON-able.
    """

    columns: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def head(self, n: int) -> RankedTable:
        """The first ``n`` rows."""
        return RankedTable({k: v[:n] for k, v in self.columns.items()}, dict(self.meta))

    def subset(self, keep: np.ndarray) -> RankedTable:
        """The rows where ``keep`` (M,) bool is True, in the same order."""
        return RankedTable({k: v[keep] for k, v in self.columns.items()}, dict(self.meta))

    def row(self, i: int) -> dict:
        return {k: v[i] for k, v in self.columns.items()}


def _store_score(store: EmbeddingStore, name: str, dtype, fill) -> np.ndarray:
    if name in store.score_names:
        return np.asarray(store.score(name)).astype(dtype)
    return np.full(store.n, fill, dtype)


def ranked_table(store: EmbeddingStore, result: LoopResult | Ranking, journal: LabelJournal | None = None,
                 user: str | None = None, top: int | None = None) -> RankedTable:
    """The ranked candidate list of a store.

    Args:
        store: the open store.
        result: a :class:`LoopResult` (from :meth:`ActiveLoop.fit`) or a :class:`Ranking` (sidecar).
        journal: the label journal for the label columns (None: no labels shown).
        user: one user's labels; None = consensus.
        top: keep only the best ``top`` rows.

    Returns:
        :class:`RankedTable`.
    """
    if isinstance(result, LoopResult):     # exported ranks are the exact mean's (see complete_mean)
        ranking = Ranking.from_result(result.complete_mean(), store.uuid)
    else:
        ranking = result
    n = store.n
    # the top rows by rank without sorting all N (rank is a permutation of 1..N)
    order = ranking.order if top is None or int(top) >= n else ranking.top(int(top))
    if journal is not None:
        snap = label_snapshot(store, journal, user=user)
        label, n_lab, disputed, excluded = snap.label, snap.n_labellers, snap.disputed, snap.excluded_mask()
    else:
        label, n_lab = np.full(n, np.nan, np.float32), np.zeros(n, np.int32)
        disputed, excluded = np.zeros(n, bool), np.zeros(n, bool)
    per_object = ranked_columns(store, ranking.rank, label, n_lab, disputed, excluded, ranking.mean, ranking.std,
                                ranking.acquisition, on_demand=True)
    if len(order) > n // ON_DEMAND_FRACTION:
        # most rows: read each column once, in file order (text as compact UTF-8 bytes, not
        # N Python strings); a few rows (--top N): read only theirs when they are written
        per_object = {k: v.compact() if hasattr(v, "compact") else v for k, v in per_object.items()}
    cols = {name: RowsOf(values, order) for name, values in per_object.items()}
    meta = {"store": str(store.path), "store_uuid": store.uuid, "scorer": ranking.scorer,
            "acquisition": ranking.acquisition_name, "xi": ranking.xi, "n_labels": ranking.n_labels,
            "labels_hash": ranking.labels_hash, "ranked": ranking.created, "rows": len(order),
            "objects": n, "user": user or "consensus", "scorer_info": ranking.info, "config": ranking.config,
            "representation": (ranking.info or {}).get("representation", {"used": "embedding"})}
    return RankedTable(cols, meta)


def ranked_columns(store: EmbeddingStore, rank: np.ndarray, label: np.ndarray, n_labellers: np.ndarray,
                   disputed: np.ndarray, excluded: np.ndarray, mean: np.ndarray, std: np.ndarray,
                   acquisition: np.ndarray, scores: dict[str, np.ndarray] | None = None,
                   on_demand: bool = False) -> dict[str, np.ndarray]:
    """The columns of :func:`ranked_table`, in the store's object order (no row is copied:
    the explorer's table shows ``columns[name][ranking[row]]``).

    Args:
        rank: (N,) 1-based rank; label, n_labellers, disputed, excluded: (N,) per object;
        mean, std, acquisition: (N,) the scorer's output.
        scores: the store's ``anomaly`` and ``cluster`` already read (None: read them now).
        on_demand: id, ra, dec and the catalogue columns as the store's
            :class:`~galexplorer.store.ondemand.OnDiskColumn` (rows read when indexed) instead
            of arrays read in full.
    """
    scores = scores or {}
    view = store.column_view if on_demand else None
    objects = None if on_demand else store.objects
    cols: dict[str, np.ndarray] = {
        "id": view("id") if view else np.asarray(objects.ids, dtype=object),
        "ra": view("ra") if view else objects.ra,
        "dec": view("dec") if view else objects.dec,
        "rank": rank,
        "label": label,
        "n_labellers": n_labellers,
        "disputed": disputed,
        "excluded": excluded,
        "score_mean": mean,
        "score_std": std,
        "acquisition": acquisition,
        "anomaly": scores["anomaly"] if "anomaly" in scores else _store_score(store, "anomaly", np.float32, np.nan),
        "cluster": scores["cluster"] if "cluster" in scores else _store_score(store, "cluster", np.int64, -1),
    }
    for name in store.column_names:
        out = name if name not in cols else f"catalog_{name}"
        cols[out] = view(name) if view else np.asarray(objects.columns[name])
    return cols


@dataclass
class RankReport:
    """What :func:`rank_store` did."""

    store: Path
    sidecar: Path | None
    result: LoopResult
    seconds: float

    def summary(self) -> str:
        r = self.result
        lines = [f"ranked {len(r.mean)} objects of {self.store} with {r.scorer} on {r.n_labels} label(s) "
                 f"in {self.seconds:.1f} s"]
        if r.scorer.startswith("prior"):
            lines.append("no labels yet: the order is the anomaly score; label objects in `galexplorer open`")
        if "representation" in r.info:
            lines.append(f"learned on {r.info['representation']['reason']}")
        if "hyper" in r.info:
            h = r.info["hyper"]
            lines.append(f"GP: amplitude {h['amplitude']:.3g}, length scale {h['length_scale']:.3g}, "
                         f"noise {h['noise']:.3g} (normalised units)")
        if len(r.next_batch):
            lines.append(f"next to label ({r.acquisition_name}): {len(r.next_batch)} objects")
            if r.cold_start is not None:
                lines.append(r.cold_start.reason)
        if self.sidecar:
            lines.append(f"wrote {self.sidecar}")
        return "\n".join(lines)


def rank_store(store_path: str | Path, config: LoopConfig | None = None, user: str | None = None,
               write: bool = True, full_std: bool = True) -> RankReport:
    """Refit a scorer from the label journal and (by default) write the ranking sidecar.

    Args:
        store_path: the embedding store.
        config: loop options (default :class:`LoopConfig`).
        user: rank with one user's labels (None: consensus of all users).
        write: write ``STORE.h5.ranking.h5``.
        full_std: compute the exact std of every object (for export; seconds at 10^6).

    Returns:
        :class:`RankReport`.

    Raises:
        StoreError: no such store, or it has no embeddings/PCA; ``write`` and the store's
            folder is not writable (checked before the fit).
        LabelError: labels for objects not in the store.
    """
    t0 = time.perf_counter()
    config = config or LoopConfig()
    if write:
        check_ranking_writable(store_path)
    with EmbeddingStore(store_path) as store, LabelJournal.for_store(store_path, readonly=True) as journal:
        labelled, labels, excluded = label_snapshot(store, journal, user=user).fit_inputs(config.scorer)
        loop = ActiveLoop(store, config)
        if config.scorer == PORTFOLIO:      # the explorer's strategy history, from the journal
            loop.restore_portfolio(load_state(journal))
        result = loop.fit(labelled, labels, excluded)
        _note_cluster(result)
        if full_std:
            result.complete_std()
        else:                               # the saved ranking is always the exact mean's
            result.complete_mean()
        sidecar = write_ranking(store.path, Ranking.from_result(result, store.uuid)) if write else None
    return RankReport(Path(store_path), sidecar, result, time.perf_counter() - t0)


def current_ranking(store: EmbeddingStore, config: LoopConfig | None = None, user: str | None = None
                    ) -> Ranking:
    """The store's saved ranking, or a fresh one (in memory, logged) when none is saved or it is stale."""
    ranking = read_ranking(store.path, store.uuid, store.n)
    if ranking is not None:
        return ranking
    log.info("no ranking saved beside %s yet; ranking now (save one with `galexplorer rank`)", store.path)
    config = config or LoopConfig()
    with LabelJournal.for_store(store.path, readonly=True) as journal:
        labelled, labels, excluded = label_snapshot(store, journal, user=user).fit_inputs(config.scorer)
    result = ActiveLoop(store, config).fit(labelled, labels, excluded)
    _note_cluster(result)
    return Ranking.from_result(result.complete_std(), store.uuid)


def _note_cluster(result: LoopResult) -> None:
    """Record in the ranking's provenance the Dask cluster that scored every object (``--cluster``)."""
    client = active_client()
    if client is not None:
        result.info["cluster"] = describe_cluster(client)


__all__ = ["RankedTable", "RankReport", "ranked_table", "rank_store",
           "current_ranking", "ranking_path"]
