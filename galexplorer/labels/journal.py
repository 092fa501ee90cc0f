"""The label journal: every score, note, exclusion and undo a person makes, in SQLite.

The journal lives beside its store (``STORE.h5.labels.sqlite``) in WAL mode with
``synchronous=FULL``: each call that records something commits before it returns, so a crash
or ``kill -9`` loses nothing that was acknowledged. Rows are never updated or deleted
(triggers refuse it); undo appends a *retraction* of the events it undoes, redo appends them
again. Everything else is derived:

* a user's current label of an object = the last non-retracted ``score`` event of that user;
* consensus = the median of the users' current labels; an object is *disputed* when more than
  ⌈N/2⌉ distinct scores are given by its N labellers (Gondhalekar et al. 2024);
* an object is excluded (artefact) when its last non-retracted ``exclude``/``include`` event
  is an ``exclude``.
"""

from __future__ import annotations

import getpass
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import LabelError
from ..label_scale import MAX_SCORE, MIN_SCORE
from .connection import (
    BUSY_TIMEOUT_S,
    JOURNAL_VERSION,
    RETRY_DELAYS_S,
    JournalConnection,
    WriteStats,
    insert_event,
    operational_error,
    utc_now,
    wal_label_count,
    wal_path,
)
from .consensus import Consensus, consensus_of
from .events import EVENT_FIELDS, KINDS, Event, check_score, event_format, read_events, write_events
from .merging import check_importable, match_present

log = logging.getLogger(__name__)
T = TypeVar("T")

SUFFIX = ".labels.sqlite"

# with the names callers import from here that now live in connection.py, events.py and consensus.py
__all__ = ["BUSY_TIMEOUT_S", "EVENT_FIELDS", "JOURNAL_VERSION", "KINDS", "RETRY_DELAYS_S", "SUFFIX", "Consensus",
           "Event", "LabelJournal", "WriteStats", "check_score", "default_user", "event_format", "journal_path",
           "operational_error", "read_events", "wal_label_count", "wal_path", "write_events"]


def journal_path(store_path: str | Path) -> Path:
    """``store.h5`` -> ``store.h5.labels.sqlite``."""
    return Path(str(store_path) + SUFFIX)


def default_user() -> str:
    try:
        return getpass.getuser() or "user"
    except Exception:  # no login name (some containers)
        return "user"


class LabelJournal:
    """Append-only, transactional journal of labels for one store.

    Args:
        path: the SQLite file (use :func:`journal_path` or :meth:`for_store`).
        user: name recorded with this instance's events (default: the login name).
        readonly: open without creating or writing (for ``info`` and ``export``); a missing
            file then reads as an empty journal.

    Raises:
        LabelError: the file is not a label journal, or of a newer version; and from any method,
            when SQLite fails (locked past ``BUSY_TIMEOUT_S``, disk full, I/O error, read-only):
            one line naming the file, the event not recorded.
    """

    def __init__(self, path: str | Path, user: str | None = None, readonly: bool = False,
                 busy_timeout_s: float | None = None):
        self.path = Path(path)
        self.user = user or default_user()
        self.readonly = readonly
        self._conn = JournalConnection(self.path, readonly,
                                       BUSY_TIMEOUT_S if busy_timeout_s is None else float(busy_timeout_s))
        self._data_version: int | None = None
        self._redo: list[list[Event]] = []
        self._conn.open()

    @property
    def busy_timeout_s(self) -> float:
        """How long a write waits for another process's lock, retries included (settable)."""
        return self._conn.busy_timeout_s

    @busy_timeout_s.setter
    def busy_timeout_s(self, seconds: float) -> None:
        self._conn.busy_timeout_s = float(seconds)

    @property
    def write_stats(self) -> WriteStats:
        """How this journal's writes went (commits, retries, the longest wait)."""
        return self._conn.write_stats

    @property
    def _db(self) -> sqlite3.Connection | None:
        return self._conn.db

    @_db.setter
    def _db(self, db: sqlite3.Connection | None) -> None:   # tests put a failing connection in its place
        self._conn.db = db

    @property
    def _lock(self) -> threading.RLock:
        return self._conn.lock

    @classmethod
    def for_store(cls, store_path: str | Path, user: str | None = None, readonly: bool = False) -> LabelJournal:
        return cls(journal_path(store_path), user=user, readonly=readonly)

    # -- plumbing ------------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return self._conn.query(sql, params)

    def _meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Session state kept with the labels (e.g. the explorer's last object)."""
        value = self._meta(key)
        return default if value is None else value

    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        self._write(lambda db: db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value)))

    def _writable(self) -> None:
        if self.readonly or self._db is None:
            raise LabelError("the label journal is open read-only", self.path)

    def _append(self, rows: list[tuple[str, str, int | None, str | None, int | None]]) -> list[Event]:
        """Append (kind, object_id, score, note, target) rows as one action, in one transaction."""
        self._writable()
        assert self._db is not None
        if not rows:
            return []

        def append(db: sqlite3.Connection) -> list[Event]:
            action = db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM events").fetchone()[0]
            t = utc_now()
            events = []
            for kind, oid, score, note, target in rows:
                seq = insert_event(db, action, kind, oid, score, self.user, t, note, target)
                events.append(Event(seq, action, kind, oid, score, self.user, t, note, target))
            return events
        return self._write(append)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one write transaction, tried again while another process holds the
        journal (:meth:`JournalConnection.write`)."""
        return self._conn.write(work)

    # -- recording -----------------------------------------------------------------------------
    def score(self, object_id: str, score: int, note: str | None = None) -> Event:
        """Record ``score`` (0–5) for ``object_id``; committed when this returns."""
        s = check_score(score)
        ev = self._append([("score", str(object_id), s, note, None)])[0]
        self._redo.clear()
        return ev

    def score_many(self, object_ids: Iterable[str], score: int) -> list[Event]:
        """Give many objects the same score as one action (one undo step)."""
        s = check_score(score)
        evs = self._append([("score", str(o), s, None, None) for o in object_ids])
        self._redo.clear()
        return evs

    def note(self, object_id: str, text: str) -> Event:
        ev = self._append([("note", str(object_id), None, str(text), None)])[0]
        self._redo.clear()
        return ev

    def exclude(self, object_ids: Iterable[str], reason: str | None = "artefact") -> list[Event]:
        """Exclude objects from ranking (artefacts) as one action."""
        evs = self._append([("exclude", str(o), None, reason, None) for o in object_ids])
        self._redo.clear()
        return evs

    def include(self, object_ids: Iterable[str]) -> list[Event]:
        evs = self._append([("include", str(o), None, None, None) for o in object_ids])
        self._redo.clear()
        return evs

    # -- undo / redo ---------------------------------------------------------------------------
    def undo(self) -> list[Event]:
        """Retract this user's most recent action that is still in effect.

        Returns:
            The events that were undone (empty when there is nothing to undo).
        """
        self._writable()
        with self._lock:
            rows = self._query(
                "SELECT e.action FROM events e WHERE e.user = ? AND e.kind != 'retract' AND NOT EXISTS "
                "(SELECT 1 FROM events r WHERE r.kind = 'retract' AND r.target = e.seq) "
                "ORDER BY e.seq DESC LIMIT 1", (self.user,))
            if not rows:
                return []
            undone = [e for e in self._events("WHERE action = ?", (rows[0][0],))
                      if not self._is_retracted(e.seq)]
            self._append([("retract", e.object_id, None, None, e.seq) for e in undone])
            self._redo.append(undone)
        return undone

    def redo(self) -> list[Event]:
        """Record again the action most recently undone by :meth:`undo` in this session."""
        with self._lock:
            if not self._redo:
                return []
            undone = self._redo.pop()
            return self._append([(e.kind, e.object_id, e.score, e.note, None) for e in undone])

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _is_retracted(self, seq: int) -> bool:
        return bool(self._query("SELECT 1 FROM events WHERE kind = 'retract' AND target = ?", (seq,)))

    # -- reading -------------------------------------------------------------------------------
    def _events(self, where: str = "", params: Sequence = ()) -> list[Event]:
        rows = self._query("SELECT seq, action, kind, object_id, score, user, time, note, target FROM events "
                           f"{where} ORDER BY seq", params)
        return [Event(*r) for r in rows]

    def events(self) -> list[Event]:
        """The whole journal, oldest first."""
        return self._events()

    def events_after(self, seq: int) -> list[Event]:
        """Events newer than ``seq``, oldest first (a range of the primary key: costs what it
        returns, not what the journal holds; see :class:`~.incremental.LiveLabels`)."""
        return self._events("WHERE seq > ?", (int(seq),))

    def last_seq(self) -> int:
        """The newest event's number (0 for an empty journal): it grows with every event any
        user records, in any process, so a reader can tell cheaply that something changed."""
        rows = self._query("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(rows[0][0]) if rows else 0

    def history(self, object_id: str) -> list[Event]:
        """Every event about ``object_id``, oldest first (retractions included)."""
        return self._events("WHERE object_id = ?", (str(object_id),))

    _ACTIVE = ("SELECT e.object_id, e.user, e.score, e.note, e.kind, e.seq FROM events e "
               "WHERE e.kind IN ({kinds}){only} AND NOT EXISTS "
               "(SELECT 1 FROM events r WHERE r.kind = 'retract' AND r.target = e.seq) ORDER BY e.seq")

    def _latest(self, kinds: Sequence[str], per_user: bool, object_id: str | None = None) -> dict:
        """The retraction rules, in one place: per object (and user), the last event of ``kinds``
        that no ``retract`` event targets; ``object_id`` limits it to one object."""
        only = "" if object_id is None else " AND e.object_id = ?"
        sql = self._ACTIVE.format(kinds=",".join("?" * len(kinds)), only=only)
        params = tuple(kinds) + (() if object_id is None else (str(object_id),))
        latest: dict = {}
        damaged = 0
        for oid, user, score, note, kind, _ in self._query(sql, params):
            if not isinstance(oid, str) or not isinstance(user, str) or (
                    kind == "score" and not (isinstance(score, int) and MIN_SCORE <= score <= MAX_SCORE)):
                damaged += 1    # a damaged row (the file was altered outside SQLite): skip, keep the rest
                continue
            latest[(oid, user) if per_user else oid] = (score, note, kind)
        if damaged:
            log.warning("%s: %d damaged event(s) ignored", self.path, damaged)
        return latest

    def current(self, user: str | None = None) -> dict[str, int]:
        """Current labels of one user (default: this journal's user): ``{object_id: score}``."""
        user = user or self.user
        return {oid: s for (oid, u), (s, _, _) in self._latest(["score"], True).items() if u == user}

    def label_of(self, object_id: str, user: str | None = None) -> int | None:
        """One user's current label of one object (default: this journal's user), or None."""
        got = self._latest(["score"], True, object_id).get((str(object_id), user or self.user))
        return None if got is None else got[0]

    def note_of(self, object_id: str, user: str | None = None) -> str | None:
        """The latest note on one object (of ``user``, or of anyone when None), or None."""
        if user is None:
            got = self._latest(["note"], False, object_id).get(str(object_id))
        else:
            got = self._latest(["note"], True, object_id).get((str(object_id), user))
        return None if got is None else got[1]

    def all_current(self) -> dict[tuple[str, str], int]:
        """Current labels of every user: ``{(object_id, user): score}``."""
        return {k: s for k, (s, _, _) in self._latest(["score"], True).items()}

    def consensus(self) -> Consensus:
        """Median of the users' current labels per object, with the disputed flag."""
        return consensus_of(self.all_current())

    def notes(self, user: str | None = None) -> dict[str, str]:
        """Latest note per object (of ``user``, or of anyone when None)."""
        out = {}
        for (oid, u), (_, note, _) in self._latest(["note"], True).items():
            if user is None or u == user:
                out[oid] = note
        return out

    def excluded(self) -> set[str]:
        """Objects whose latest exclude/include event (any user) is an exclude."""
        return {oid for oid, (_, _, kind) in self._latest(["exclude", "include"], False).items()
                if kind == "exclude"}

    def labels_for(self, ids: Sequence[str] | np.ndarray, user: str | None = None, strict: bool = True,
                   skip_disputed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Labels as indices into ``ids`` (the store's object order).

        Args:
            ids: (N,) the store's object ids (or its ``object_ids``, looked up without reading all).
            user: one user's labels; None = consensus of all users.
            strict: raise when labelled objects are not among ``ids``; otherwise log and skip them.
            skip_disputed: leave out disputed objects (consensus only).

        Returns:
            ``(index, score)``: (M,) int64 indices into ``ids`` in ascending order, (M,) float32.

        Raises:
            LabelError: labels for ids not in ``ids`` (when ``strict``).
        """
        if user is not None:
            labels = self.current(user)
        else:
            cons = self.consensus()
            keep = ~cons.disputed if skip_disputed else np.ones(len(cons), bool)
            labels = dict(zip(cons.ids[keep].tolist(), cons.score[keep].tolist()))
        if hasattr(ids, "rows_of"):   # a store's ids read on demand: look up only the labelled
            rows = ids.rows_of(list(labels))
            pos = {oid: int(r) for oid, r in zip(labels, rows.tolist()) if r >= 0}
        else:
            pos = {oid: i for i, oid in enumerate(np.asarray(ids, dtype=object).tolist())}
        unknown = [oid for oid in labels if oid not in pos]
        if unknown:
            self.report_unknown(unknown, strict)
        pairs = sorted((pos[o], s) for o, s in labels.items() if o in pos)
        index = np.array([p for p, _ in pairs], dtype=np.int64)
        score = np.array([s for _, s in pairs], dtype=np.float32)
        return index, score

    def report_unknown(self, unknown: Sequence[str], strict: bool) -> None:
        """Labels for objects that are not in the store: raise, or log that they are ignored.

        Raises:
            LabelError: when ``strict``.
        """
        msg = (f"{len(unknown)} labelled object(s) are not in the store "
               f"(e.g. {', '.join(map(repr, list(unknown)[:3]))})")
        if strict:
            raise LabelError(msg, self.path, "was the store rebuilt from other cutouts?")
        log.warning("%s: %s; they are ignored", self.path, msg)

    def counts(self) -> dict[str, int]:
        """Numbers for ``galexplorer info`` and the status bar."""
        cur = self.all_current()
        return {
            "events": self._query("SELECT COUNT(*) FROM events")[0][0] if self._db else 0,
            "labelled_objects": len({oid for oid, _ in cur}),
            "labels": len(cur),
            "users": len({u for _, u in cur}),
            "excluded": len(self.excluded()),
            "disputed": int(self.consensus().disputed.sum()),
        }

    # -- backup and merging ---------------------------------------------------------------------
    def import_events(self, events: Sequence[Event], source: str | Path | None = None) -> tuple[int, int]:
        """Merge another journal's events (e.g. a second labeller's) into this one, in one transaction.

        Each event keeps its user and time; each source action stays one action (one undo step);
        retractions point at the merged copies of their targets. Idempotent: an event already here
        (same user, time, kind, object, score, note and target) is not added again, so importing
        the same file twice, or a journal that was itself merged from this one, adds nothing.

        Returns:
            ``(added, already_present)``.

        Raises:
            LabelError: an event is malformed (unknown kind, score outside 0–5, dangling target).
        """
        self._writable()
        assert self._db is not None
        events = sorted(events, key=lambda e: e.seq)
        check_importable(events, source if source is not None else self.path)
        with self._lock:
            merged, todo = match_present(self._events(), events)
            if not todo:
                return 0, len(events)
            before = dict(merged)

            def insert(db: sqlite3.Connection) -> None:
                merged.clear()           # a retried transaction starts again from what was present
                merged.update(before)
                next_action = db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM events").fetchone()[0]
                actions: dict[int, int] = {}
                for e in todo:
                    if e.action not in actions:
                        actions[e.action] = next_action + len(actions)
                    target = merged[e.target] if e.target is not None else None
                    merged[e.seq] = insert_event(db, actions[e.action], e.kind, e.object_id, e.score, e.user, e.time,
                                                 e.note, target)
            self._write(insert)
        self.checkpoint()
        return len(todo), len(events) - len(todo)

    def changed_elsewhere(self) -> bool:
        """True when another connection (another labeller's window, a ``labels import``) has
        committed since the last call (SQLite's ``PRAGMA data_version``; this journal's own
        writes do not count). The first call answers True."""
        if self._db is None:
            return False
        version = self._query("PRAGMA data_version")[0][0]
        changed, self._data_version = version != self._data_version, version
        return changed

    # -- lifetime ------------------------------------------------------------------------------
    def checkpoint(self) -> bool:
        """Fold the ``-wal`` into the journal file and truncate it (``wal_checkpoint(TRUNCATE)``),
        so that the ``.sqlite`` file alone holds every label so far. Called when a session opens
        and closes; the explorer calls it after each refit batch. A no-op when read-only.

        Returns:
            True when the whole log was folded in (False: another connection was reading).
        """
        return self._conn.checkpoint()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LabelJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelJournal({str(self.path)!r}, user={self.user!r})"
