"""The ranking sidecar ``STORE.h5.ranking.h5``: the last ``galexplorer rank`` (or explorer refit).

The store is written once, so scores learned from labels live beside it::

    /            attrs: format="galexplorer-ranking", version, galexplorer_version, created, uuid,
                        store_uuid, scorer, acquisition, xi, n_labels, labels_hash, config (JSON),
                        info (JSON: the scorer's fitted parameters)
    /mean        (N,) float32  the scorer's predicted score (0–5 scale)
    /std         (N,) float32  its standard deviation; NaN where not computed or not defined
    /acquisition (N,) float32  acquisition value; NaN for labelled/excluded objects
    /rank        (N,) int64    1 = best; ``order = argsort(rank)``

A sidecar whose ``store_uuid`` is not the store's (the store was rebuilt) is stale: it is
ignored with a log message.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import StoreError
from .atomic import atomic_output, check_output
from .schema import (
    RANKING_FORMAT,
    damage_is_store_error,
    json_default,
    open_checked,
    read_attr,
    read_json_attr,
    root_attrs,
    write_attrs,
)

log = logging.getLogger(__name__)

SUFFIX = ".ranking.h5"
FIX = "run `galexplorer rank STORE.h5` again"


def ranking_path(store_path: str | Path) -> Path:
    """``store.h5`` -> ``store.h5.ranking.h5``."""
    return Path(str(store_path) + SUFFIX)


def ranking_fix(store_path: str | Path) -> str:
    """The advice when the ranking cannot be saved next to ``store_path`` (``rank`` has no
    output option: the sidecar always goes beside the store)."""
    folder = Path(store_path).resolve().parent
    return (f"the ranking is saved beside the store as {Path(store_path).name}{SUFFIX}: make {folder} "
            "writable, or copy the store and its label journal to a folder you can write to and rank the copy")


def check_ranking_writable(store_path: str | Path) -> Path:
    """Check, before any work, that the ranking sidecar of ``store_path`` can be written.

    Raises:
        StoreError: the store's folder is not writable (with advice ``rank`` can follow).
    """
    return check_output(ranking_path(store_path), ranking_fix(store_path))


def labels_hash(labelled: np.ndarray, labels: np.ndarray, excluded: np.ndarray | None = None) -> str:
    """A short hash of the labels a ranking was fitted on (rows, scores, exclusions)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(labelled, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.float32).tobytes())
    if excluded is not None:
        h.update(b"|")
        h.update(np.ascontiguousarray(excluded, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Scores:
    """A scorer's output for N objects (arrays in store order): the per-object arrays that a fit
    (:class:`~galexplorer.active.loop.LoopResult`), the window's model
    (:class:`~galexplorer.active.session.ModelState`) and a saved :class:`Ranking` hold.

    The order of the objects is not here: it follows from ``mean`` and the labels by the one
    ranking rule (:func:`galexplorer.active.ordering.ranking_keys`). Frozen: the arrays are never
    rebound, though a fit fills the NaNs of ``std``/``acquisition`` in place when asked for the
    exact values (``LoopResult.complete_std``).

    Attributes:
        mean: (N,) float32 the scorer's predicted score (0–5 scale).
        std: (N,) float32 its standard deviation; NaN where not computed or not defined.
        acquisition: (N,) float32 acquisition value; NaN where not computed and for labelled or
            excluded objects.
        scorer: the scorer's name (``"prior:anomaly"`` before any label).
        acquisition_name: the acquisition that chose the batch (``ei``, ``mean``, ``initial``, ...).
        n_labels: labels the scorer was fitted on.

    Raises:
        ValueError: the arrays differ in length.
    """

    mean: np.ndarray
    std: np.ndarray
    acquisition: np.ndarray
    scorer: str
    acquisition_name: str
    n_labels: int

    def __post_init__(self):
        n = len(self.mean)
        for name in ("std", "acquisition"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"scores: {name} has {len(getattr(self, name))} rows, mean has {n}")

    @property
    def n(self) -> int:
        """N, the objects scored."""
        return len(self.mean)

    def float32(self) -> Scores:
        """These scores with float32 arrays (the same arrays where they already are)."""
        return Scores(*(np.asarray(a, np.float32) for a in (self.mean, self.std, self.acquisition)),
                      str(self.scorer), str(self.acquisition_name), int(self.n_labels))


class HoldsScores:
    """``mean``, ``std``, ``acquisition``, ``scorer``, ``acquisition_name`` and ``n_labels`` of a
    class's :class:`Scores` field ``scores``, read-only (one definition for every holder)."""

    scores: Scores

    mean = property(lambda self: self.scores.mean, doc="(N,) float32, see :class:`Scores`.")
    std = property(lambda self: self.scores.std, doc="(N,) float32, see :class:`Scores`.")
    acquisition = property(lambda self: self.scores.acquisition, doc="(N,) float32, see :class:`Scores`.")
    scorer = property(lambda self: self.scores.scorer, doc="The scorer's name.")
    acquisition_name = property(lambda self: self.scores.acquisition_name, doc="The batch's acquisition.")
    n_labels = property(lambda self: self.scores.n_labels, doc="Labels fitted on.")


@dataclass
class Ranking(HoldsScores):
    """A ranking read back from its sidecar (or built from a :class:`~galexplorer.active.loop.LoopResult`).

    Attributes:
        scores: the :class:`Scores` (``mean``, ``std``, ``acquisition``, ``scorer``,
            ``acquisition_name``, ``n_labels`` read through to them).
        rank: (N,) int64, 1 = best.
        xi: EI's trade-off.
        labels_hash: :func:`labels_hash` of the labels fitted on.
        store_uuid: uuid of the store it belongs to.
        created: ISO time.
        config, info: JSON-able dicts (loop options; fitted parameters).
    """

    scores: Scores
    rank: np.ndarray
    xi: float
    labels_hash: str
    store_uuid: str
    created: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def order(self) -> np.ndarray:
        """(N,) int64 rows, best first."""
        return np.argsort(self.rank, kind="stable").astype(np.int64)

    def top(self, k: int) -> np.ndarray:
        """(k,) int64 the rows of ranks 1..k, best first: one pass over ``rank`` and a sort of
        k values (not of N, as :attr:`order`)."""
        k = max(0, min(int(k), len(self.rank)))
        rows = np.flatnonzero(self.rank <= k) if k else np.empty(0, np.int64)
        if len(rows) != k:      # not a permutation of 1..N (a damaged sidecar): sort them all
            return self.order[:k]
        return rows[np.argsort(self.rank[rows], kind="stable")].astype(np.int64)

    @classmethod
    def from_result(cls, result, store_uuid: str) -> Ranking:
        """From a LoopResult (duck-typed, so the store layer does not import ``active``)."""
        rank = np.empty(len(result.order), np.int64)
        rank[result.order] = np.arange(1, len(result.order) + 1)
        cfg = result.config.to_dict() if hasattr(result.config, "to_dict") else dict(result.config or {})
        return cls(result.scores, rank, float(cfg.get("xi", float("nan"))),
                   labels_hash(result.labelled, result.labels, result.excluded), store_uuid,
                   config=cfg, info=dict(result.info))


def write_ranking(store_path: str | Path, ranking: Ranking) -> Path:
    """Write the sidecar of ``store_path`` atomically (replacing an older one).

    Returns:
        The sidecar's path.

    Raises:
        StoreError: arrays of different lengths.
    """
    path = ranking_path(store_path)
    n = len(ranking.rank)
    for name in ("mean", "std", "acquisition"):
        if len(getattr(ranking, name)) != n:
            raise StoreError(f"ranking: {name} has {len(getattr(ranking, name))} rows, rank has {n}", path)
    with atomic_output(path, ranking_fix(store_path)) as tmp:
        with h5py.File(tmp, "w") as f:
            f.create_dataset("mean", data=np.asarray(ranking.mean, np.float32))
            f.create_dataset("std", data=np.asarray(ranking.std, np.float32))
            f.create_dataset("acquisition", data=np.asarray(ranking.acquisition, np.float32))
            f.create_dataset("rank", data=np.asarray(ranking.rank, np.int64))
            f["rank"].attrs["description"] = "1 = best; order = argsort(rank)"
            write_attrs(f, root_attrs(
                RANKING_FORMAT, store_uuid=ranking.store_uuid, scorer=ranking.scorer,
                acquisition=ranking.acquisition_name, xi=float(ranking.xi), n_labels=int(ranking.n_labels),
                labels_hash=ranking.labels_hash, config=json.dumps(ranking.config, sort_keys=True, default=json_default),
                info=json.dumps(ranking.info, sort_keys=True, default=json_default)))
    log.debug("wrote %s", path)
    return path


def read_ranking(store_path: str | Path, store_uuid: str | None = None, n: int | None = None) -> Ranking | None:
    """Read the sidecar of ``store_path``.

    Args:
        store_path: the store.
        store_uuid: the store's uuid; a sidecar made for another uuid is stale and ignored.
        n: the store's object count; a sidecar of another length is ignored.

    Returns:
        The :class:`Ranking`, or None when there is none or it is stale (logged).

    Raises:
        StoreError: the sidecar exists but is not a ranking file or is damaged.
    """
    path = ranking_path(store_path)
    if not path.exists():
        return None
    with open_checked(path, RANKING_FORMAT, "ranking file", FIX) as f, \
            damage_is_store_error(path, "ranking file", FIX):
        found_uuid = read_attr(f, "store_uuid", "")
        if store_uuid is not None and found_uuid != store_uuid:
            log.warning("%s was made for another version of the store (uuid differs); ignoring it", path)
            return None
        try:
            arrays = {k: f[k][...] for k in ("mean", "std", "acquisition", "rank")}
        except KeyError as exc:
            raise StoreError(f"the ranking file is incomplete ({exc})", path, FIX) from None
        if len({len(a) for a in arrays.values()}) != 1:
            raise StoreError("the ranking file's arrays differ in length", path, FIX)
        if n is not None and len(arrays["rank"]) != n:
            log.warning("%s has %d rows but the store %d; ignoring it", path, len(arrays["rank"]), n)
            return None
        scores = Scores(arrays["mean"].astype(np.float32), arrays["std"].astype(np.float32),
                        arrays["acquisition"].astype(np.float32), read_attr(f, "scorer", ""),
                        read_attr(f, "acquisition", ""), int(read_attr(f, "n_labels", 0)))
        return Ranking(scores, arrays["rank"].astype(np.int64), float(read_attr(f, "xi", float("nan"))),
                       read_attr(f, "labels_hash", ""), found_uuid, read_attr(f, "created", ""),
                       read_json_attr(f, "config", {}) or {}, read_json_attr(f, "info", {}) or {})
