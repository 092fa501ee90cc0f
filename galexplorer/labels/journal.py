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

import datetime as _dt
import getpass
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabelError

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1
SUFFIX = ".labels.sqlite"
KINDS = ("score", "note", "exclude", "include", "retract")
MIN_SCORE, MAX_SCORE = 0, 5
BUSY_TIMEOUT_S = 5.0  # how long to wait for another process's lock before giving up with a LabelError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    action    INTEGER NOT NULL,
    kind      TEXT    NOT NULL CHECK (kind IN ('score', 'note', 'exclude', 'include', 'retract')),
    object_id TEXT    NOT NULL,
    score     INTEGER CHECK (score IS NULL OR (score BETWEEN 0 AND 5)),
    user      TEXT    NOT NULL,
    time      TEXT    NOT NULL,
    note      TEXT,
    target    INTEGER REFERENCES events(seq)
);
CREATE INDEX IF NOT EXISTS events_object ON events(object_id);
CREATE INDEX IF NOT EXISTS events_action ON events(action);
CREATE INDEX IF NOT EXISTS events_target ON events(target);
CREATE TRIGGER IF NOT EXISTS events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the label journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the label journal is append-only'); END;
"""


def operational_error(exc: sqlite3.OperationalError, path: str | Path) -> LabelError:
    """A one-line :class:`LabelError` naming ``path`` for an ``sqlite3.OperationalError``.

    The event being recorded when it happened was not recorded (its transaction rolled back);
    every event acknowledged before it is in the journal.
    """
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    if "locked" in low or "busy" in low:
        return LabelError(f"the label journal is locked by another process ({text})", path,
                          "close the other galexplorer window or command using this store and try again")
    if "full" in low:
        return LabelError(f"the disk is full; the label journal cannot grow ({text})", path,
                          "free some space on this disk and try again; no recorded label was lost")
    if "readonly" in low or "read-only" in low:
        return LabelError(f"the label journal cannot be written: read-only file or folder ({text})", path,
                          "give yourself write permission on the file and its folder, "
                          "or copy the store somewhere writable")
    if "i/o" in low:
        return LabelError(f"an I/O error occurred while using the label journal ({text})", path,
                          "check the disk or network share and try again; "
                          "back up the journal as docs/store-format.md says")
    if "unable to open" in low:
        return LabelError(f"the label journal cannot be opened ({text})", path,
                          "check that the folder exists and that you may write in it")
    return LabelError(f"the label journal cannot be used ({text})", path,
                      "check the disk and the file's permissions, then try again")


def journal_path(store_path: str | Path) -> Path:
    """``store.h5`` -> ``store.h5.labels.sqlite``."""
    return Path(str(store_path) + SUFFIX)


def default_user() -> str:
    try:
        return getpass.getuser() or "user"
    except Exception:  # no login name (some containers)
        return "user"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def check_score(score) -> int:
    """Return ``score`` as an int in 0..5 or raise LabelError."""
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (int, np.integer, float, np.floating)):
        raise LabelError(f"score {score!r} is not a number; scores are integers 0 to 5")
    if float(score) != int(score) or not MIN_SCORE <= int(score) <= MAX_SCORE:
        raise LabelError(f"score {score!r} is outside 0–5; scores are integers 0 to 5")
    return int(score)


@dataclass(frozen=True)
class Event:
    """One row of the journal."""

    seq: int
    action: int
    kind: str
    object_id: str
    score: int | None
    user: str
    time: str
    note: str | None
    target: int | None


@dataclass
class Consensus:
    """Consensus labels, one row per labelled object.

    Attributes:
        ids: (M,) object ids (str), sorted.
        score: (M,) float64 median of the users' current scores.
        n_labellers: (M,) int.
        disputed: (M,) bool, more than ⌈N/2⌉ distinct scores among N labellers.
    """

    ids: np.ndarray
    score: np.ndarray
    n_labellers: np.ndarray
    disputed: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.ids.tolist(), self.score.tolist()))


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

    def __init__(self, path: str | Path, user: str | None = None, readonly: bool = False):
        self.path = Path(path)
        self.user = user or default_user()
        self.readonly = readonly
        self._lock = threading.RLock()
        self._redo: list[list[Event]] = []
        self._db: sqlite3.Connection | None = None
        if readonly and not self.path.exists():
            return
        try:
            if readonly:
                uri = f"file:{self.path.resolve().as_posix()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                           timeout=BUSY_TIMEOUT_S)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(_SCHEMA)
                if self._meta("version") is None:
                    self._set_meta_now("version", str(JOURNAL_VERSION))
                    self._set_meta_now("created", _now())
            version = self._meta("version")
        except sqlite3.OperationalError as exc:
            self.close()
            if "no such table" not in str(exc):
                raise operational_error(exc, self.path) from None
            raise LabelError(f"not a label journal ({exc})", self.path,
                             "move the file aside; galexplorer will start a new journal") from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise LabelError(f"not a label journal ({exc})", self.path,
                             "move the file aside; galexplorer will start a new journal") from None
        if version is not None and int(version) > JOURNAL_VERSION:
            self.close()
            raise LabelError(f"label journal version {version} is newer than this galexplorer reads",
                             self.path, "upgrade galexplorer: pip install -U galexplorer")

    @classmethod
    def for_store(cls, store_path: str | Path, user: str | None = None, readonly: bool = False) -> LabelJournal:
        return cls(journal_path(store_path), user=user, readonly=readonly)

    # -- plumbing ------------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        if self._db is None:
            return []
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None

    def _meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def _set_meta_now(self, key: str, value: str) -> None:
        assert self._db is not None
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """Session state kept with the labels (e.g. the explorer's last object)."""
        value = self._meta(key)
        return default if value is None else value

    def set_meta(self, key: str, value: str) -> None:
        self._writable()
        with self._lock:
            try:
                self._set_meta_now(key, value)
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None

    def _writable(self) -> None:
        if self.readonly or self._db is None:
            raise LabelError("the label journal is open read-only", self.path)

    def _append(self, rows: list[tuple[str, str, int | None, str | None, int | None]]) -> list[Event]:
        """Append (kind, object_id, score, note, target) rows as one action, in one transaction."""
        self._writable()
        assert self._db is not None
        if not rows:
            return []
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                action = db.execute("SELECT COALESCE(MAX(action), 0) + 1 FROM events").fetchone()[0]
                t = _now()
                events = []
                for kind, oid, score, note, target in rows:
                    cur = db.execute(
                        "INSERT INTO events (action, kind, object_id, score, user, time, note, target) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (action, kind, oid, score, self.user, t, note, target))
                    events.append(Event(cur.lastrowid, action, kind, oid, score, self.user, t, note, target))
                db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback(db)
                raise operational_error(exc, self.path) from None
            except BaseException:
                self._rollback(db)
                raise
        return events

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        """Roll back a failed transaction; a failing rollback must not hide the first error."""
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                log.debug("rollback failed", exc_info=True)

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

    def history(self, object_id: str) -> list[Event]:
        """Every event about ``object_id``, oldest first (retractions included)."""
        return self._events("WHERE object_id = ?", (str(object_id),))

    _ACTIVE = ("SELECT e.object_id, e.user, e.score, e.note, e.kind, e.seq FROM events e "
               "WHERE e.kind IN ({kinds}) AND NOT EXISTS "
               "(SELECT 1 FROM events r WHERE r.kind = 'retract' AND r.target = e.seq) ORDER BY e.seq")

    def _latest(self, kinds: Sequence[str], per_user: bool) -> dict:
        sql = self._ACTIVE.format(kinds=",".join("?" * len(kinds)))
        latest: dict = {}
        for oid, user, score, note, kind, _ in self._query(sql, tuple(kinds)):
            latest[(oid, user) if per_user else oid] = (score, note, kind)
        return latest

    def current(self, user: str | None = None) -> dict[str, int]:
        """Current labels of one user (default: this journal's user): ``{object_id: score}``."""
        user = user or self.user
        return {oid: s for (oid, u), (s, _, _) in self._latest(["score"], True).items() if u == user}

    def all_current(self) -> dict[tuple[str, str], int]:
        """Current labels of every user: ``{(object_id, user): score}``."""
        return {k: s for k, (s, _, _) in self._latest(["score"], True).items()}

    def consensus(self) -> Consensus:
        """Median of the users' current labels per object, with the disputed flag."""
        per_object: dict[str, list[int]] = {}
        for (oid, _), s in sorted(self.all_current().items()):
            per_object.setdefault(oid, []).append(s)
        ids = np.array(sorted(per_object), dtype=object)
        scores = [per_object[i] for i in ids]
        n = np.array([len(s) for s in scores], dtype=int)
        med = np.array([float(np.median(s)) for s in scores], dtype=np.float64)
        disputed = np.array([len(set(s)) > math.ceil(len(s) / 2) for s in scores], dtype=bool)
        return Consensus(ids, med, n, disputed)

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
            ids: (N,) the store's object ids.
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
        pos = {oid: i for i, oid in enumerate(np.asarray(ids, dtype=object).tolist())}
        unknown = [oid for oid in labels if oid not in pos]
        if unknown:
            msg = (f"{len(unknown)} labelled object(s) are not in the store "
                   f"(e.g. {', '.join(map(repr, unknown[:3]))})")
            if strict:
                raise LabelError(msg, self.path, "was the store rebuilt from other cutouts?")
            log.warning("%s: %s; they are ignored", self.path, msg)
        pairs = sorted((pos[o], s) for o, s in labels.items() if o in pos)
        index = np.array([p for p, _ in pairs], dtype=np.int64)
        score = np.array([s for _, s in pairs], dtype=np.float32)
        return index, score

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

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                db, self._db = self._db, None
                try:
                    db.close()
                except sqlite3.OperationalError as exc:
                    raise operational_error(exc, self.path) from None

    def __enter__(self) -> LabelJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LabelJournal({str(self.path)!r}, user={self.user!r})"
