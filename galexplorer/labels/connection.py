"""The SQLite layer under the label journal: one connection, its lock, write transactions
tried again while another process holds the file, and SQLite's errors as one-line LabelErrors.

:class:`JournalConnection` opens (and creates) the file in WAL mode with ``synchronous=FULL``,
runs every write as one ``BEGIN IMMEDIATE`` transaction (rolled back on any error), tries a write
again after a jittered pause while SQLite answers "busy", and folds the ``-wal`` in
(``wal_checkpoint(TRUNCATE)``). The functions below explain a file that does not open as a
journal without ever advising to move aside a file that holds labels. :class:`~.journal.LabelJournal`
holds one connection and knows what the rows mean; nothing here does.
"""

from __future__ import annotations

import datetime as _dt
import logging
import random
import shlex
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import LabelError

log = logging.getLogger(__name__)
T = TypeVar("T")

JOURNAL_VERSION = 1
BUSY_TIMEOUT_S = 5.0  # how long to wait for another process's lock before giving up with a LabelError
#: pauses between tries of one write when SQLite answers "locked"/"busy" at once (without waiting
#: in its busy handler: a connection opening or folding the -wal in); jittered ×0.5–1.5, and all
#: the tries of one write stay within BUSY_TIMEOUT_S
RETRY_DELAYS_S = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)

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


def utc_now() -> str:
    """The time recorded with an event: UTC, ISO 8601 with microseconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def unreadable(path: Path, reason: str) -> LabelError:
    """Why the file does not read as a journal, saying where its labels may be; never advising
    to move aside a file (or a ``-wal``) that holds labels."""
    wal = wal_path(path)
    if wal.exists() and wal.stat().st_size > 0:
        held = wal_label_count(path)
        if held is None:
            return LabelError(f"not a label journal ({reason}); {wal.name} beside it cannot be read either",
                              path, "keep both files; a copy of a journal needs its -wal beside it, "
                              "see docs/store-format.md")
        return LabelError(f"the journal's tables are in {wal.name} beside it ({held} labels), "
                          f"which could not be read with it ({reason})", path,
                          "keep both files together (and the -shm if present) and open the store "
                          "once with `galexplorer open` to fold the -wal in; do not move either aside")
    held = _raw_label_count(path)
    if held is None:
        if _has_sqlite_header(path):   # an SQLite file SQLite cannot read through: damaged
            return damaged(reason, path)
        return LabelError(f"not a label journal ({reason}) and no -wal is beside it", path,
                          "if it may hold labels keep it and try `galexplorer labels recover FILE -o "
                          "recovered.sqlite`; otherwise move it aside and galexplorer will start a new journal")
    if held:
        return LabelError(f"not a readable label journal ({reason}), yet it holds {held} labels "
                          "and no -wal is beside it", path,
                          "keep the file; copy the -wal beside it if it was left behind, or recover its "
                          "events with `galexplorer labels recover FILE -o recovered.sqlite`")
    return LabelError(f"not a label journal ({reason}); it holds no labels and no -wal is beside it",
                      path, "if this is a copy, copy FILE-wal beside it too; otherwise move the file "
                      "aside and galexplorer will start a new journal")


def insert_event(db: sqlite3.Connection, action: int, kind: str, object_id: str, score: int | None, user: str,
                 time: str, note: str | None, target: int | None) -> int:
    """INSERT one event row inside the caller's transaction; returns its ``seq``."""
    cur = db.execute("INSERT INTO events (action, kind, object_id, score, user, time, note, target) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (action, kind, object_id, score, user, time, note, target))
    return int(cur.lastrowid)


class JournalConnection:
    """The one SQLite connection of a :class:`~.journal.LabelJournal`, shared by its threads.

    Args:
        path: the journal file.
        readonly: open without creating or writing; a missing file then stays closed (``db`` None).
        busy_timeout_s: how long a write may wait for another process's lock, retries included.

    Attributes:
        db: the connection (None when closed, or read-only on a missing file).
        lock: held around every statement and transaction (one connection, several threads).
        write_stats: :class:`WriteStats` of the writes so far.
    """

    def __init__(self, path: Path, readonly: bool, busy_timeout_s: float):
        self.path = path
        self.readonly = readonly
        self.busy_timeout_s = busy_timeout_s
        self.write_stats = WriteStats()
        self.lock = threading.RLock()
        self.db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Connect; unless read-only, create the tables (WAL, ``synchronous=FULL``) and fold in a
        ``-wal`` left behind.

        Raises:
            LabelError: not a label journal (see :func:`unreadable`), of a newer version, or SQLite
                cannot open it (locked, read-only folder ...).
        """
        if self.readonly and not self.path.exists():
            return
        try:
            if self.readonly:
                uri = readonly_uri(self.path)
                self.db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=self.busy_timeout_s)
                self.db.text_factory = self._text
                self._quick_check()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                                          timeout=self.busy_timeout_s)
                self.db.text_factory = self._text
                self._quick_check()
                self.db.execute("PRAGMA synchronous=FULL")
                self.retrying(self._create)   # two windows may open a new store's journal at once
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            version = self._raw_meta("version")
            if version is not None and not str(version).isdigit():
                raise sqlite3.DatabaseError(f"version {version!r} is not a number")
        except sqlite3.OperationalError as exc:
            self.close()
            if "no such table" not in str(exc):
                raise operational_error(exc, self.path) from None
            raise unreadable(self.path, str(exc)) from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:   # the latter: damaged schema text
            self.close()
            raise unreadable(self.path, str(exc)) from None
        if version is not None and int(version) > JOURNAL_VERSION:
            self.close()
            raise LabelError(f"label journal version {version} is newer than this galexplorer reads",
                             self.path, "upgrade galexplorer: pip install -U galexplorer")

    def _create(self) -> None:
        """WAL mode, the tables and the version (each statement idempotent, so it may be retried)."""
        assert self.db is not None
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        now = utc_now()
        self.in_transaction(lambda db: db.executemany(
            "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
            [("version", str(JOURNAL_VERSION)), ("created", now)]))

    def _quick_check(self) -> None:
        """SQLite's ``quick_check`` (about 5 ms per 10^4 events): a damaged page is found when the
        journal opens, before anything is written to it, not at some later read.

        Raises:
            sqlite3.DatabaseError: the file is damaged (explained by :func:`unreadable`).
        """
        assert self.db is not None
        found = [str(r[0]) for r in self.db.execute("PRAGMA quick_check(3)").fetchall()]
        if found != ["ok"]:
            raise sqlite3.DatabaseError("quick_check: " + integrity_problem(found))

    @staticmethod
    def _text(raw: bytes) -> str:
        """SQLite text as str; bytes that are not UTF-8 (a damaged file) are replaced, not raised."""
        return raw.decode("utf-8", "replace")

    def _raw_meta(self, key: str) -> str | None:
        """A ``meta`` value letting SQLite's own errors through (for the checks on open)."""
        assert self.db is not None
        rows = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
        return rows[0][0] if rows else None

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """The rows of one read (none when closed).

        Raises:
            LabelError: SQLite fails (:func:`operational_error`) or meets a damaged page.
        """
        if self.db is None:
            return []
        with self.lock:
            try:
                return self.db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:   # a damaged page or schema
                raise damaged(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.path) from None

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(db)`` in one ``BEGIN IMMEDIATE`` transaction, tried again while another process
        holds the journal (see :meth:`retrying`); SQLite's errors as one-line LabelErrors.

        Raises:
            LabelError: locked past ``busy_timeout_s``, disk full, I/O error, damaged page; the
                transaction rolled back, so nothing of this write is recorded.
        """
        with self.lock:
            try:
                return self.retrying(lambda: self.in_transaction(work))
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None
            except sqlite3.DatabaseError as exc:   # a damaged page met while writing
                raise damaged(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, self.path) from None

    def in_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """One write transaction; rolled back on any error, which propagates unchanged."""
        assert self.db is not None
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")   # the write lock first: no deadlock between two writers
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise
        return result

    def retrying(self, attempt: Callable[[], T]) -> T:
        """``attempt()``, again after a jittered pause (``RETRY_DELAYS_S``) each time SQLite says
        busy, all within ``busy_timeout_s``: SQLite's own busy handler waits out the remaining time
        on each try, and the pauses cover the answers it gives at once. Counted in ``write_stats``.

        Raises:
            sqlite3.OperationalError: still busy at the deadline, or any other SQLite error.
        """
        assert self.db is not None
        start = time.monotonic()
        deadline = start + self.busy_timeout_s
        slept = 0.0
        for tries in range(len(RETRY_DELAYS_S) + 1):
            left = deadline - time.monotonic()
            self.db.execute(f"PRAGMA busy_timeout = {max(int(left * 1000), 0)}")
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
    def _rollback(db: sqlite3.Connection) -> None:
        """Roll back a failed transaction; a failing rollback must not hide the first error."""
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                log.debug("rollback failed", exc_info=True)

    def checkpoint(self) -> bool:
        """Fold the ``-wal`` into the journal file and truncate it (``wal_checkpoint(TRUNCATE)``),
        so that the ``.sqlite`` file alone holds every label so far. A no-op when read-only.

        Returns:
            True when the whole log was folded in (False: another connection was reading).
        """
        if self.readonly or self.db is None:
            return False
        with self.lock:
            try:
                busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            except sqlite3.OperationalError as exc:
                raise operational_error(exc, self.path) from None
        if busy:
            log.debug("%s: checkpoint incomplete (another process is reading)", self.path)
        return not busy

    def close(self) -> None:
        """Fold the ``-wal`` in (a failure only logged: the labels stay in the -wal) and close."""
        with self.lock:
            if self.db is not None and not self.readonly:
                try:
                    self.checkpoint()
                except (LabelError, sqlite3.Error) as exc:   # labels are still in the -wal; close anyway
                    log.warning("%s", exc)
            if self.db is not None:
                db, self.db = self.db, None
                try:
                    db.close()
                except sqlite3.OperationalError as exc:
                    raise operational_error(exc, self.path) from None
