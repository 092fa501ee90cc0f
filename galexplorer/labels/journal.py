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

import csv
import datetime as _dt
import getpass
import json
import logging
import math
import random
import shlex
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import LabelError
from ..label_scale import MAX_SCORE, MIN_SCORE
from ..store.atomic import atomic_output

log = logging.getLogger(__name__)
T = TypeVar("T")

JOURNAL_VERSION = 1
SUFFIX = ".labels.sqlite"
KINDS = ("score", "note", "exclude", "include", "retract")
BUSY_TIMEOUT_S = 5.0  # how long to wait for another process's lock before giving up with a LabelError
#: pauses between tries of one write when SQLite answers "locked"/"busy" at once (without waiting
#: in its busy handler: a connection opening or folding the -wal in); jittered ×0.5–1.5, and all
#: the tries of one write stay within BUSY_TIMEOUT_S
RETRY_DELAYS_S = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)

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


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLite's "database is locked" / "busy": another connection holds a lock; worth another try."""
    low = str(exc).lower()
    return "locked" in low or "busy" in low


@dataclass
class WriteStats:
    """How this journal's writes went (for the benchmark and the log).

    Attributes:
        commits: write transactions committed.
        retries: tries again after SQLite answered busy (see ``RETRY_DELAYS_S``).
        max_commit_s: the longest write, from its first try to its commit, waits included.
        total_commit_s: all writes together.
        max_backoff_s: the longest time one write slept between its tries.
    """

    commits: int = 0
    retries: int = 0
    max_commit_s: float = 0.0
    total_commit_s: float = 0.0
    max_backoff_s: float = 0.0


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
        return LabelError(f"disk full: the label journal cannot grow ({text}); this label was not recorded", path,
                          "free some space on this disk and go on labelling, no need to reopen; "
                          "no recorded label was lost")
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


def recover_hint(path: str | Path) -> str:
    """The advice every message about a damaged journal ends with."""
    return (f"keep the file and recover what can be read with `galexplorer labels recover {shlex.quote(str(path))} "
            "-o recovered.sqlite` (see docs/troubleshooting.md)")


def integrity_problem(rows: Sequence[str]) -> str:
    """The first of SQLite's ``integrity_check``/``quick_check`` complaints, on one line."""
    lines = [ln.strip() for r in rows for ln in str(r).splitlines()
             if ln.strip() and not ln.startswith("*** in database")]
    return lines[0] if lines else "no details"


def damaged(reason: str, path: str | Path) -> LabelError:
    """The one-line error for a journal SQLite reports as damaged (a bad page, a bad header)."""
    return LabelError(f"the label journal is damaged ({reason[:160]})", path, recover_hint(path))


def readonly_uri(path: str | Path) -> str:
    """The SQLite URI opening ``path`` read-only; any folder name (``#``, ``?``, ``%``, spaces,
    non-ASCII) is percent-quoted so SQLite opens this very file."""
    return Path(path).resolve().as_uri() + "?mode=ro"


def wal_path(path: str | Path) -> Path:
    """The write-ahead log beside a journal: labels since the last checkpoint live only there."""
    return Path(str(path) + "-wal")


def _raw_label_count(path: Path) -> int | None:
    """Score events in ``path`` read as plain SQLite (0: no events table; None: not SQLite)."""
    try:
        db = sqlite3.connect(readonly_uri(path), uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchall():
                return 0
            return int(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'score'").fetchone()[0])
        finally:
            db.close()
    except (sqlite3.Error, UnicodeDecodeError):
        return None


def _has_sqlite_header(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def wal_label_count(path: str | Path) -> int | None:
    """Score events held by ``path`` together with its ``-wal`` (read from copies, so nothing
    beside ``path`` changes); None when they do not read as a journal."""
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="galexplorer-wal-") as tmp:
        copy = Path(tmp) / "journal.sqlite"
        try:
            shutil.copyfile(path, copy)
            shutil.copyfile(wal_path(path), wal_path(copy))
        except OSError:
            return None
        try:
            db = sqlite3.connect(copy, timeout=BUSY_TIMEOUT_S)
            try:
                return int(db.execute("SELECT COUNT(*) FROM events WHERE kind = 'score'").fetchone()[0])
            finally:
                db.close()
        except (sqlite3.Error, UnicodeDecodeError):
            return None


EVENT_FIELDS = ("seq", "action", "kind", "object_id", "score", "user", "time", "note", "target")
EVENTS_FORMAT = "galexplorer label events"


def event_format(path: str | Path, fmt: str | None = None) -> str:
    """``csv``, ``json`` or ``sqlite`` (a journal), from ``fmt`` or the file name."""
    if fmt:
        return fmt
    name = str(path).lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith((".sqlite", ".sqlite3", ".db")):
        return "sqlite"
    if name.endswith((".csv", ".txt")):
        return "csv"
    raise LabelError("cannot tell the format from the file name", path,
                     "name it .csv, .json or .sqlite (a journal), or give --format")


def write_events(events: Sequence[Event], dest: str | Path, fmt: str | None = None) -> Path:
    """Write every event (retractions included) as CSV or JSON; values exactly as stored.

    The file appears complete or not at all (written beside ``dest``, then renamed).
    """
    dest = Path(dest)
    fmt = event_format(dest, fmt)
    if fmt not in ("csv", "json"):
        raise LabelError(f"events are exported as csv or json, not {fmt}", dest, "name the file .csv or .json")
    rows = [{f: getattr(e, f) for f in EVENT_FIELDS} for e in events]
    try:
        with atomic_output(dest) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            if fmt == "json":
                json.dump({"format": EVENTS_FORMAT, "version": JOURNAL_VERSION, "events": rows}, fh,
                          indent=1, ensure_ascii=False)
            else:
                w = csv.DictWriter(fh, fieldnames=EVENT_FIELDS, lineterminator="\n")
                w.writeheader()
                w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    except OSError as exc:
        raise LabelError(f"cannot write the events ({exc.strerror or exc})", dest,
                         "choose a folder you can write to") from None
    return dest


def _event_from(row: dict, where: str | Path, n: int) -> Event:
    def opt_int(v):
        return None if v is None or v == "" else int(v)
    try:
        missing = [f for f in EVENT_FIELDS if f not in row]
        if missing:
            raise LabelError(f"event {n} lacks {', '.join(missing)}", where,
                             f"export events with `galexplorer labels export`; fields: {', '.join(EVENT_FIELDS)}")
        note = row["note"]
        return Event(int(row["seq"]), int(row["action"]), str(row["kind"]), str(row["object_id"]),
                     opt_int(row["score"]), str(row["user"]), str(row["time"]),
                     None if note is None or (note == "" and row["kind"] != "note") else str(note),
                     opt_int(row["target"]))
    except (TypeError, ValueError) as exc:
        raise LabelError(f"event {n} is malformed ({exc})", where,
                         "give a file written by `galexplorer labels export`") from None


def read_events(source: str | Path, fmt: str | None = None) -> list[Event]:
    """Events from a ``labels export`` CSV/JSON file or from another journal (``.sqlite``).

    Raises:
        LabelError: missing, unreadable or not a file of label events.
    """
    source = Path(source)
    fmt = event_format(source, fmt)
    if not source.is_file():
        raise LabelError("no such file", source, "give a file written by `galexplorer labels export` or a journal")
    if fmt == "sqlite":
        with LabelJournal(source, readonly=True) as other:
            return other.events()
    try:
        with open(source, encoding="utf-8", newline="") as fh:
            if fmt == "json":
                doc = json.load(fh)
                if not isinstance(doc, dict) or doc.get("format") != EVENTS_FORMAT or \
                        not isinstance(doc.get("events"), list):
                    raise LabelError("not a label-events JSON file", source,
                                     "give a file written by `galexplorer labels export`")
                rows = doc["events"]
            else:
                rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise LabelError(f"cannot read label events ({str(exc).splitlines()[0] if str(exc) else exc})", source,
                         "give a file written by `galexplorer labels export`") from None
    if not all(isinstance(r, dict) for r in rows):
        raise LabelError("not a list of label events", source, "give a file written by `galexplorer labels export`")
    return [_event_from(r, source, i + 1) for i, r in enumerate(rows)]


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

    def __init__(self, path: str | Path, user: str | None = None, readonly: bool = False,
                 busy_timeout_s: float | None = None):
        self.path = Path(path)
        self.user = user or default_user()
        self.readonly = readonly
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else float(busy_timeout_s)
        self.write_stats = WriteStats()
        self._data_version: int | None = None
        self._lock = threading.RLock()
        self._redo: list[list[Event]] = []
        self._db: sqlite3.Connection | None = None
        if readonly and not self.path.exists():
            return
        try:
            if readonly:
                uri = readonly_uri(self.path)
                self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=self.busy_timeout_s)
                self._db.text_factory = self._text
                self._quick_check()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                           timeout=self.busy_timeout_s)
                self._db.text_factory = self._text
                self._quick_check()
                self._db.execute("PRAGMA synchronous=FULL")
                self._retrying(self._create)   # two windows may open a new store's journal at once
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            version = self._raw_meta("version")
            if version is not None and not str(version).isdigit():
                raise sqlite3.DatabaseError(f"version {version!r} is not a number")
        except sqlite3.OperationalError as exc:
            self.close()
            if "no such table" not in str(exc):
                raise operational_error(exc, self.path) from None
            raise self._unreadable(str(exc)) from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:   # the latter: damaged schema text
            self.close()
            raise self._unreadable(str(exc)) from None
        if version is not None and int(version) > JOURNAL_VERSION:
            self.close()
            raise LabelError(f"label journal version {version} is newer than this galexplorer reads",
                             self.path, "upgrade galexplorer: pip install -U galexplorer")

    def _create(self) -> None:
        """WAL mode, the tables and the version (each statement idempotent, so it may be retried)."""
        assert self._db is not None
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        now = _now()
        self._in_transaction(lambda db: db.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [("version", str(JOURNAL_VERSION)), ("created", now)]))

    def _quick_check(self) -> None:
        """SQLite's ``quick_check`` (about 5 ms per 10^4 events): a damaged page is found when the
        journal opens, before anything is written to it, not at some later read.

        Raises:
            sqlite3.DatabaseError: the file is damaged (read by :meth:`_unreadable`).
        """
        assert self._db is not None
        found = [str(r[0]) for r in self._db.execute("PRAGMA quick_check(3)").fetchall()]
        if found != ["ok"]:
            raise sqlite3.DatabaseError("quick_check: " + integrity_problem(found))

    def _unreadable(self, reason: str) -> LabelError:
        """Why the file does not read as a journal, saying where its labels may be; never advising
        to move aside a file (or a ``-wal``) that holds labels."""
        wal = wal_path(self.path)
        if wal.exists() and wal.stat().st_size > 0:
            held = wal_label_count(self.path)
            if held is None:
                return LabelError(f"not a label journal ({reason}); {wal.name} beside it cannot be read either",
                                  self.path, "keep both files; a copy of a journal needs its -wal beside it, "
                                  "see docs/store-format.md")
            return LabelError(f"the journal's tables are in {wal.name} beside it ({held} labels), "
                              f"which could not be read with it ({reason})", self.path,
                              "keep both files together (and the -shm if present) and open the store "
                              "once with `galexplorer open` to fold the -wal in; do not move either aside")
        held = _raw_label_count(self.path)
        if held is None:
            if _has_sqlite_header(self.path):   # an SQLite file SQLite cannot read through: damaged
                return damaged(reason, self.path)
            return LabelError(f"not a label journal ({reason}) and no -wal is beside it", self.path,
                              "if it may hold labels keep it and try `galexplorer labels recover FILE -o "
                              "recovered.sqlite`; otherwise move it aside and galexplorer will start a new journal")
        if held:
            return LabelError(f"not a readable label journal ({reason}), yet it holds {held} labels "
                              "and no -wal is beside it", self.path,
                              "keep the file; copy the -wal beside it if it was left behind, or recover its "
                              "events with `galexplorer labels recover FILE -o recovered.sqlite`")
        return LabelError(f"not a label journal ({reason}); it holds no labels and no -wal is beside it",
                          self.path, "if this is a copy, copy FILE-wal beside it too; otherwise move the file "
                          "aside and galexplorer will start a new journal")

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
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:   # a damaged page or schema
                raise damaged(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.path) from None

    @staticmethod
    def _text(raw: bytes) -> str:
        """SQLite text as str; bytes that are not UTF-8 (a damaged file) are replaced, not raised."""
        return raw.decode("utf-8", "replace")

    def _raw_meta(self, key: str) -> str | None:
        """:meth:`_meta` letting SQLite's own errors through (for the checks on open)."""
        assert self._db is not None
        rows = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
        return rows[0][0] if rows else None

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
            t = _now()
            events = []
            for kind, oid, score, note, target in rows:
                seq = self._insert(db, action, kind, oid, score, self.user, t, note, target)
                events.append(Event(seq, action, kind, oid, score, self.user, t, note, target))
            return events
        return self._write(append)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one ``BEGIN IMMEDIATE`` transaction, tried again while another process
        holds the journal (see :meth:`_retrying`); SQLite's errors as one-line LabelErrors.

        Raises:
            LabelError: locked past ``busy_timeout_s``, disk full, I/O error, damaged page; the
                transaction rolled back, so nothing of this write is recorded.
        """
        with self._lock:
            try:
                return self._retrying(lambda: self._in_transaction(work))
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None
            except sqlite3.DatabaseError as exc:   # a damaged page met while writing
                raise damaged(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.path) from None

    def _in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """One write transaction; rolled back on any error, which propagates unchanged."""
        assert self._db is not None
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")   # the write lock first: no deadlock between two writers
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        return result

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again after a jittered pause (``RETRY_DELAYS_S``) each time SQLite says
        busy, all within ``busy_timeout_s``: SQLite's own busy handler waits out the remaining time
        on each try, and the pauses cover the answers it gives at once. Counted in ``write_stats``.

        Raises:
            sqlite3.OperationalError: still busy at the deadline, or any other SQLite error.
        """
        assert self._db is not None
        start = time.monotonic()
        deadline = start + self.busy_timeout_s
        slept = 0.0
        for tries in range(len(RETRY_DELAYS_S) + 1):
            left = deadline - time.monotonic()
            self._db.execute(f"PRAGMA busy_timeout = {max(int(left * 1000), 0)}")
            try:
                result = attempt()
            except sqlite3.OperationalError as exc:
                left = deadline - time.monotonic()
                if not is_busy(exc) or tries == len(RETRY_DELAYS_S) or left <= 0:
                    raise
                pause = min(RETRY_DELAYS_S[tries] * random.uniform(0.5, 1.5), left)
                time.sleep(pause)
                slept += pause
                self.write_stats.retries += 1
                log.debug("%s: busy (%s); try %d after %.0f ms", self.path, exc, tries + 2, pause * 1000)
                continue
            took = time.monotonic() - start
            st = self.write_stats
            st.commits += 1
            st.total_commit_s += took
            st.max_commit_s = max(st.max_commit_s, took)
            st.max_backoff_s = max(st.max_backoff_s, slept)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    def _insert(db: sqlite3.Connection, action: int, kind: str, object_id: str, score: int | None, user: str,
                time: str, note: str | None, target: int | None) -> int:
        cur = db.execute("INSERT INTO events (action, kind, object_id, score, user, time, note, target) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (action, kind, object_id, score, user, time, note, target))
        return int(cur.lastrowid)

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
        where = source if source is not None else self.path
        events = sorted(events, key=lambda e: e.seq)
        by_seq = {e.seq: e for e in events}
        for e in events:
            if e.kind not in KINDS:
                raise LabelError(f"event {e.seq} has unknown kind {e.kind!r}; kinds are {', '.join(KINDS)}", where)
            if (e.kind == "score") != (e.score is not None):
                raise LabelError(f"event {e.seq} ({e.kind}) has score {e.score!r}", where,
                                 "only score events carry a score")
            if e.score is not None:
                check_score(e.score)
            if (e.kind == "retract") != (e.target is not None) or (e.target is not None and e.target not in by_seq):
                raise LabelError(f"event {e.seq} ({e.kind}) has target {e.target!r}", where,
                                 "a retract names the seq of an earlier event in the same file")

        def keyer(table: dict[int, Event]):
            memo: dict[int, tuple] = {}

            def key(e: Event) -> tuple:
                if e.seq not in memo:
                    target = key(table[e.target]) if e.target is not None and e.target in table else None
                    memo[e.seq] = (e.user, e.time, e.kind, e.object_id, e.score, e.note, target)
                return memo[e.seq]
            return key

        with self._lock:
            mine = self._events()
            key_mine, key_new = keyer({e.seq: e for e in mine}), keyer(by_seq)
            present: dict[tuple, list[int]] = {}
            for e in mine:
                present.setdefault(key_mine(e), []).append(e.seq)
            counts = Counter({k: len(v) for k, v in present.items()})
            merged: dict[int, int] = {}   # source seq -> seq here
            todo: list[Event] = []
            for e in events:
                k = key_new(e)
                if counts[k] > 0:
                    counts[k] -= 1
                    merged[e.seq] = present[k][len(present[k]) - counts[k] - 1]
                else:
                    todo.append(e)
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
                    merged[e.seq] = self._insert(db, actions[e.action], e.kind, e.object_id, e.score, e.user, e.time,
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
        if self.readonly or self._db is None:
            return False
        with self._lock:
            try:
                busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None
        if busy:
            log.debug("%s: checkpoint incomplete (another process is reading)", self.path)
        return not busy

    def close(self) -> None:
        with self._lock:
            if self._db is not None and not self.readonly:
                try:
                    self.checkpoint()
                except (LabelError, sqlite3.Error) as exc:   # labels are still in the -wal; close anyway
                    log.warning("%s", exc)
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
