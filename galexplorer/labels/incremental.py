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

    What it holds is one small tuple per object, not objects per label: a soak of 10^4 labels
    held ~0.67 KiB a label as a dict per (object, user), another per object, a key tuple and a
    fresh copy of the user's name from every event row; now ~0.2 KiB (the object's id, its
    tuple and one ``seq -> object`` entry for retractions), users kept once as small numbers.

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
        self._user_no: dict[str, int] = {}     # user -> number, the one copy of each name
        self._user_names: list[str] = []       # number -> user
        # object -> the scores in effect as a flat (seq, code, seq, code, ...), code = user * 8 + score
        self._scores: dict[str, tuple[int, ...]] = {}
        self._marks: dict[str, tuple[int, ...]] = {}   # object -> (seq, 1 exclude | 0 include, ...) in effect
        self._owner: dict[int, str] = {}       # seq of a score or mark in effect -> its object
        self._retracted: set[int] = set()      # seqs some retract targets
        self._per_user: Counter[str] = Counter()   # user -> objects they label now
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
        before: dict[str, set[int]] = {}   # object -> users labelling it before this read
        damaged = 0
        for e in events:
            damaged += self._apply(e, before, touched.marked)
        if damaged:
            log.warning("%s: %d damaged event(s) ignored", self.journal.path, damaged)
        if events:
            self.seen_seq = max(self.seen_seq, events[-1].seq)
        touched.events = len(events)
        for oid, had in before.items():
            self._settle(oid, had)
        touched.labelled = set(before)
        for oid in touched.marked:
            self._remark(oid)
        return touched

    def skip_own(self, event: Event) -> None:
        """This journal's own event that changes no label (a note), recorded right after the last
        one read: taken as read, so the next :meth:`read_new` does not report it as news."""
        if event.kind == "note" and event.seq == self.seen_seq + 1:
            self.seen_seq = event.seq

    def _apply(self, e: Event, before: dict[str, set[int]], marked: set) -> int:
        """One event into the state; returns 1 for a damaged row (skipped), else 0."""
        if e.kind == "retract":
            if e.target is None:
                return 0
            self._retracted.add(e.target)
            oid = self._owner.pop(e.target, None)   # a second retraction of one event finds it gone
            if oid is None:
                return 0
            if oid in self._scores and e.target in self._scores[oid][::2]:
                if oid not in before:
                    before[oid] = set(self._current_of(oid))
                self._scores[oid] = _without(self._scores[oid], e.target)
            else:
                self._marks[oid] = _without(self._marks.get(oid, ()), e.target)
                marked.add(oid)
            return 0
        if e.kind not in ("score", "exclude", "include"):
            return 0
        if not isinstance(e.object_id, str) or not isinstance(e.user, str) or (
                e.kind == "score" and not (isinstance(e.score, int) and MIN_SCORE <= e.score <= MAX_SCORE)):
            return 1
        if e.seq in self._retracted:   # retracted before it was read (a damaged, reordered file)
            return 0
        oid = e.object_id
        if e.kind == "score":
            if oid not in before:
                before[oid] = set(self._current_of(oid))
            user = self._user_no.get(e.user)
            if user is None:
                user = self._user_no[e.user] = len(self._user_names)
                self._user_names.append(e.user)
            self._scores[oid] = self._scores.get(oid, ()) + (e.seq, user * 8 + e.score)
        else:
            self._marks[oid] = self._marks.get(oid, ()) + (e.seq, int(e.kind == "exclude"))
            marked.add(oid)
        self._owner[e.seq] = oid
        return 0

    def _current_of(self, oid: str) -> dict[int, int]:
        """``{user number: score}``: each user's newest score of ``oid`` still in effect."""
        flat = self._scores.get(oid, ())
        newest: dict[int, tuple[int, int]] = {}
        for seq, code in zip(flat[::2], flat[1::2]):
            user = code >> 3
            if user not in newest or seq > newest[user][0]:
                newest[user] = (seq, code & 7)
        return {user: score for user, (_, score) in newest.items()}

    def _settle(self, oid: str, had: set[int]) -> None:
        """The per-user counts after the scores of ``oid`` changed (``had``: who labelled it)."""
        now = set(self._current_of(oid))
        if not now:
            self._scores.pop(oid, None)   # every score retracted: nothing to fall back on
        for user in now - had:
            self._per_user[self._user_names[user]] += 1
        for user in had - now:
            name = self._user_names[user]
            self._per_user[name] -= 1
            if not self._per_user[name]:
                del self._per_user[name]

    def _remark(self, oid: str) -> None:
        flat = self._marks.get(oid)
        if not flat:
            self._marks.pop(oid, None)
            self._excluded.discard(oid)
            return
        newest = max(range(0, len(flat), 2), key=flat.__getitem__)
        if flat[newest + 1]:
            self._excluded.add(oid)
        else:
            self._excluded.discard(oid)

    # -- what it holds -------------------------------------------------------------------------
    def consensus_of(self, object_id: str) -> tuple[float, int, bool] | None:
        """``(median, n_labellers, disputed)`` of one object, None when nobody labels it now
        (computed when asked: the session asks only for the objects a read touched)."""
        scores = list(self._current_of(object_id).values())
        return median_consensus(scores) if scores else None

    def is_excluded(self, object_id: str) -> bool:
        return object_id in self._excluded

    def excluded(self) -> set[str]:
        """As :meth:`LabelJournal.excluded` (a copy)."""
        return set(self._excluded)

    def label_of(self, object_id: str, user: str) -> int | None:
        """One user's current label of one object, or None."""
        number = self._user_no.get(user)
        return None if number is None else self._current_of(object_id).get(number)

    def count(self, user: str) -> int:
        """Objects ``user`` labels now (``len(journal.current(user))``)."""
        return self._per_user.get(user, 0)

    def users(self) -> set[str]:
        """Everyone with a current label."""
        return set(self._per_user)

    def current(self, user: str) -> dict[str, int]:
        """As :meth:`LabelJournal.current`: ``{object_id: score}`` of one user."""
        number = self._user_no.get(user)
        if number is None:
            return {}
        out = {}
        for oid in self._scores:
            score = self._current_of(oid).get(number)
            if score is not None:
                out[oid] = score
        return out

    def all_current(self) -> dict[tuple[str, str], int]:
        """As :meth:`LabelJournal.all_current`: ``{(object_id, user): score}``."""
        names = self._user_names
        return {(oid, names[u]): s for oid in self._scores for u, s in self._current_of(oid).items()}

    def labelled_objects(self) -> list[str]:
        """Objects with a consensus now."""
        return list(self._scores)


def _without(flat: tuple[int, ...], seq: int) -> tuple[int, ...]:
    """A flat ``(seq, value, seq, value, ...)`` less the pair of ``seq``."""
    return tuple(x for pair in zip(flat[::2], flat[1::2]) if pair[0] != seq for x in pair)


__all__ = ["LiveLabels", "Touched", "median_consensus"]
