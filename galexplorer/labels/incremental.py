"""The journal's current labels, consensus and exclusions, kept up to date by reading only the
events recorded since the last read (issue #27 item 4).

:class:`LiveLabels` reads ``events WHERE seq > last seq read`` (any user, any process: a second
labeller's window, ``labels import``), applies them to what it holds, and says which objects
they touched; the consensus of an object is recomputed only when one of its labels changed. A
key press then costs the same at 10 and at 10^4 labels in the journal, where reading every
label again and taking the median of every object grew with them.

It gives exactly what :meth:`LabelJournal.all_current`, :meth:`LabelJournal.consensus` and
:meth:`LabelJournal.excluded` give (the retraction rules of the journal's module docstring): a
user's current label of an object is their newest ``score`` event that no ``retract`` targets;
an object is excluded when its newest ``exclude``/``include`` event that no ``retract``
targets is an ``exclude``; damaged rows (the file altered outside SQLite) are skipped as those
methods skip them. ``tests/test_incremental_consensus.py`` replays random sequences against the
full recomputation.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..label_scale import MAX_SCORE, MIN_SCORE
from .events import Event

log = logging.getLogger(__name__)


@dataclass
class Touched:
    """What one :meth:`LiveLabels.read_new` changed.

    Attributes:
        events: events read (every kind).
        labelled: objects whose consensus may have changed (a score or a retraction of one).
        marked: objects whose exclusion may have changed.
        reset: the journal was read again from its start (its last seq went backwards: another
            file took its place); every object may have changed.
    """

    events: int = 0
    labelled: set[str] = field(default_factory=set)
    marked: set[str] = field(default_factory=set)
    reset: bool = False

    def __bool__(self) -> bool:
        return bool(self.events or self.reset)


def median_consensus(scores: list[int]) -> tuple[float, int, bool]:
    """``(median, n_labellers, disputed)`` of one object's current scores, as
    :func:`~.consensus.consensus_of` computes them."""
    return float(np.median(scores)), len(scores), len(set(scores)) > math.ceil(len(scores) / 2)


class LiveLabels:
    """Every user's current labels, the consensus and exclusions of one journal, updated in place.

    Args:
        journal: the :class:`~.journal.LabelJournal` to follow (any user's events are read).

    Attributes:
        seen_seq: the newest event read (0 before the first :meth:`read_new`).
    """

    def __init__(self, journal):
        self.journal = journal
        self._clear()

    def _clear(self) -> None:
        self.seen_seq = 0
        self._scores: dict[tuple[str, str], dict[int, int]] = {}   # (object, user) -> {seq: score} in effect
        self._marks: dict[str, dict[int, str]] = {}                # object -> {seq: exclude|include} in effect
        self._owner: dict[int, tuple[str, str] | str] = {}          # seq of a score or mark -> its key
        self._retracted: set[int] = set()                           # seqs some retract targets
        self._current: dict[str, dict[str, int]] = {}               # object -> {user: current score}
        self._per_user: Counter[str] = Counter()                    # user -> objects they label now
        self._excluded: set[str] = set()

    # -- reading -----------------------------------------------------------------------------
    def read_new(self) -> Touched:
        """Read and apply the events recorded since the last call (all of them the first time).

        Raises:
            LabelError: SQLite failed (see :class:`~.journal.LabelJournal`).
        """
        touched = Touched()
        if self.journal.last_seq() < self.seen_seq:   # another file in its place: start again
            log.info("%s: the journal's last event went backwards; reading it again", self.journal.path)
            self._clear()
            touched.reset = True
        events = self.journal.events_after(self.seen_seq)
        keys: set[tuple[str, str]] = set()
        damaged = 0
        for e in events:
            damaged += self._apply(e, keys, touched.marked)
        if damaged:
            log.warning("%s: %d damaged event(s) ignored", self.journal.path, damaged)
        if events:
            self.seen_seq = max(self.seen_seq, events[-1].seq)
        touched.events = len(events)
        for key in keys:
            self._settle(key)
        touched.labelled = {oid for oid, _ in keys}
        for oid in touched.marked:
            self._remark(oid)
        return touched

    def skip_own(self, event: Event) -> None:
        """This journal's own event that changes no label (a note), recorded right after the last
        one read: taken as read, so the next :meth:`read_new` does not report it as news."""
        if event.kind == "note" and event.seq == self.seen_seq + 1:
            self.seen_seq = event.seq

    def _apply(self, e: Event, keys: set, marked: set) -> int:
        """One event into the state; returns 1 for a damaged row (skipped), else 0."""
        if e.kind == "retract":
            if e.target is None:
                return 0
            self._retracted.add(e.target)
            owner = self._owner.get(e.target)
            if isinstance(owner, tuple):   # a second retraction of one event finds it gone
                self._scores.get(owner, {}).pop(e.target, None)
                keys.add(owner)
            elif owner is not None:
                self._marks.get(owner, {}).pop(e.target, None)
                marked.add(owner)
            return 0
        if e.kind not in ("score", "exclude", "include"):
            return 0
        if not isinstance(e.object_id, str) or not isinstance(e.user, str) or (
                e.kind == "score" and not (isinstance(e.score, int) and MIN_SCORE <= e.score <= MAX_SCORE)):
            return 1
        if e.seq in self._retracted:   # retracted before it was read (a damaged, reordered file)
            return 0
        if e.kind == "score":
            key = (e.object_id, e.user)
            self._scores.setdefault(key, {})[e.seq] = e.score
            self._owner[e.seq] = key
            keys.add(key)
        else:
            self._marks.setdefault(e.object_id, {})[e.seq] = e.kind
            self._owner[e.seq] = e.object_id
            marked.add(e.object_id)
        return 0

    def _settle(self, key: tuple[str, str]) -> None:
        """The current label of one (object, user): their newest score still in effect."""
        oid, user = key
        seqs = self._scores.get(key)
        users = self._current.setdefault(oid, {})
        had = user in users
        if seqs:
            users[user] = seqs[max(seqs)]
            if not had:
                self._per_user[user] += 1
            return
        self._scores.pop(key, None)   # every score of theirs retracted: nothing to fall back on
        users.pop(user, None)
        if had:
            self._per_user[user] -= 1
            if not self._per_user[user]:
                del self._per_user[user]
        if not users:
            del self._current[oid]

    def _remark(self, oid: str) -> None:
        marks = self._marks.get(oid)
        if marks and marks[max(marks)] == "exclude":
            self._excluded.add(oid)
        else:
            self._excluded.discard(oid)

    # -- what it holds -------------------------------------------------------------------------
    def consensus_of(self, object_id: str) -> tuple[float, int, bool] | None:
        """``(median, n_labellers, disputed)`` of one object, None when nobody labels it now
        (computed when asked: the session asks only for the objects a read touched)."""
        users = self._current.get(object_id)
        return median_consensus(list(users.values())) if users else None

    def is_excluded(self, object_id: str) -> bool:
        return object_id in self._excluded

    def excluded(self) -> set[str]:
        """As :meth:`LabelJournal.excluded` (a copy)."""
        return set(self._excluded)

    def label_of(self, object_id: str, user: str) -> int | None:
        """One user's current label of one object, or None."""
        return self._current.get(object_id, {}).get(user)

    def count(self, user: str) -> int:
        """Objects ``user`` labels now (``len(journal.current(user))``)."""
        return self._per_user.get(user, 0)

    def users(self) -> set[str]:
        """Everyone with a current label."""
        return set(self._per_user)

    def current(self, user: str) -> dict[str, int]:
        """As :meth:`LabelJournal.current`: ``{object_id: score}`` of one user."""
        return {oid: users[user] for oid, users in self._current.items() if user in users}

    def all_current(self) -> dict[tuple[str, str], int]:
        """As :meth:`LabelJournal.all_current`: ``{(object_id, user): score}``."""
        return {(oid, u): s for oid, users in self._current.items() for u, s in users.items()}

    def labelled_objects(self) -> list[str]:
        """Objects with a consensus now."""
        return list(self._current)


__all__ = ["LiveLabels", "Touched", "median_consensus"]
