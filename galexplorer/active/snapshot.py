"""The one path from the label journal to the rows a scorer is fitted on.

Every fit — ``galexplorer rank``, the ranking ``export`` makes when none is saved, the explorer's
refits, its exports and SAMP sends (made in the model process) — reads the journal through
:func:`label_snapshot` and hands the scorer :meth:`LabelSnapshot.fit_inputs`. Whether a scorer
leaves disputed objects out is a property of the scorer (``skips_disputed`` in
:mod:`.registry`), so the window and the command line cannot disagree about it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..labels import LabelJournal
from ..labels.incremental import LiveLabels
from ..store import EmbeddingStore
from .registry import skips_disputed

log = logging.getLogger(__name__)


@dataclass
class LabelSnapshot:
    """Labels of a store at one moment, per object.

    Attributes:
        label: (N,) float32 consensus (or one user's) score, NaN where unlabelled.
        n_labellers: (N,) int32 users who scored each object (0 when unlabelled).
        disputed: (N,) bool the users disagree (see :meth:`LabelJournal.consensus`).
        excluded: (m,) int64 sorted rows excluded from the ranking.
    """

    label: np.ndarray
    n_labellers: np.ndarray
    disputed: np.ndarray
    excluded: np.ndarray

    def fit_inputs(self, scorer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What a fit of ``scorer`` takes, as fresh arrays (safe to hand to another thread):
        ``(labelled rows int64, their labels float32, excluded rows int64)``; disputed objects
        are left out for a scorer that skips them."""
        keep = np.isfinite(self.label)
        if skips_disputed(scorer):
            keep &= ~self.disputed
        labelled = np.flatnonzero(keep).astype(np.int64)
        return labelled, self.label[labelled].astype(np.float32), self.excluded.astype(np.int64)

    def excluded_mask(self) -> np.ndarray:
        """(N,) bool."""
        mask = np.zeros(len(self.label), bool)
        mask[self.excluded] = True
        return mask


def label_snapshot(store: EmbeddingStore, journal: LabelJournal, user: str | None = None,
                   strict: bool = True) -> LabelSnapshot:
    """The journal's current labels as rows of ``store``.

    Args:
        user: one user's labels; None = the consensus of all users.
        strict: raise on labels for objects that are not in the store (``rank``); otherwise log
            and ignore them (the explorer keeps working on a store rebuilt from fewer cutouts).

    Raises:
        LabelError: labels for ids that are not in the store (when ``strict``).
    """
    ids = store.object_ids   # looked up through the store's id index, not read in full
    n = len(ids)
    label = np.full(n, np.nan, np.float32)
    n_lab = np.zeros(n, np.int32)
    disputed = np.zeros(n, bool)
    if user is None:
        cons = journal.consensus()
        rows = _rows(ids, cons.ids.tolist(), journal, strict)
        known = rows >= 0
        label[rows[known]] = cons.score[known]
        n_lab[rows[known]] = cons.n_labellers[known]
        disputed[rows[known]] = cons.disputed[known]
    else:
        labelled, labels = journal.labels_for(ids, user=user, strict=strict)
        label[labelled] = labels
        n_lab[labelled] = 1
    excluded_ids = sorted(journal.excluded())
    found = ids.rows_of(excluded_ids)
    unknown = [o for o, r in zip(excluded_ids, found.tolist()) if r < 0]
    if unknown:
        log.warning("%d excluded object(s) are not in the store (e.g. %r); ignored", len(unknown), unknown[0])
    excluded = np.sort(found[found >= 0]).astype(np.int64)
    return LabelSnapshot(label, n_lab, disputed, excluded)


class LiveSnapshot:
    """The journal's labels as rows of a store, kept up to date in place: what
    :func:`label_snapshot` gives (``strict=False``), at the cost of the events recorded since
    the last :meth:`update` rather than of every label (:class:`~galexplorer.labels.incremental.LiveLabels`).

    Args:
        store: the store whose rows the arrays follow.
        journal: its label journal (every user's events are read).

    Attributes:
        label: (N,) float32 consensus score, NaN where unlabelled; n_labellers: (N,) int32;
        disputed: (N,) bool; excluded: (N,) bool. Updated in place (widgets hold them).
        live: the :class:`LiveLabels` behind them (per-user current labels, counts).
    """

    def __init__(self, store: EmbeddingStore, journal: LabelJournal):
        self.ids = store.object_ids
        n = len(self.ids)
        self.label = np.full(n, np.nan, np.float32)
        self.n_labellers = np.zeros(n, np.int32)
        self.disputed = np.zeros(n, bool)
        self.excluded = np.zeros(n, bool)
        self.journal = journal
        self.live = LiveLabels(journal)

    def update(self) -> bool:
        """Read the events recorded since the last call and update the rows they touch.

        Returns:
            True when there were new events (of any kind, any user).

        Raises:
            LabelError: SQLite failed.
        """
        touched = self.live.read_new()
        if touched.reset:
            self.label[:] = np.nan
            self.n_labellers[:] = 0
            self.disputed[:] = False
            self.excluded[:] = False
            touched.labelled.update(self.live.labelled_objects())
            touched.marked.update(self.live.excluded())
        if touched.labelled:
            self._set_labels(sorted(touched.labelled))
        if touched.marked:
            self._set_excluded(sorted(touched.marked))
        return bool(touched)

    def _set_labels(self, oids: list[str]) -> None:
        rows = _rows(self.ids, oids, self.journal, strict=False)
        for oid, row in zip(oids, rows.tolist()):
            if row < 0:
                continue
            got = self.live.consensus_of(oid)
            self.label[row], self.n_labellers[row], self.disputed[row] = (np.nan, 0, False) if got is None else got

    def _set_excluded(self, oids: list[str]) -> None:
        rows = self.ids.rows_of(oids)
        unknown = [o for o, r in zip(oids, rows.tolist()) if r < 0 and self.live.is_excluded(o)]
        if unknown:
            log.warning("%d excluded object(s) are not in the store (e.g. %r); ignored", len(unknown), unknown[0])
        for oid, row in zip(oids, rows.tolist()):
            if row >= 0:
                self.excluded[row] = self.live.is_excluded(oid)

    def snapshot(self) -> LabelSnapshot:
        """The arrays as a :class:`LabelSnapshot` (they are shared, not copied:
        :meth:`LabelSnapshot.fit_inputs` makes fresh arrays)."""
        return LabelSnapshot(self.label, self.n_labellers, self.disputed,
                             np.flatnonzero(self.excluded).astype(np.int64))


def _rows(ids, labelled_ids: list[str], journal: LabelJournal, strict: bool) -> np.ndarray:
    """Store rows of labelled ids (-1 where absent), raising or logging as ``labels_for`` does."""
    rows = ids.rows_of(labelled_ids)
    unknown = [oid for oid, r in zip(labelled_ids, rows.tolist()) if r < 0]
    if unknown:
        journal.report_unknown(unknown, strict)
    return rows


__all__ = ["LabelSnapshot", "LiveSnapshot", "label_snapshot"]
