"""Checking a label journal and recovering what can be read from a damaged one.

A journal damaged outside SQLite (a bad copy, a truncated download, a disk error) cannot be
opened by :class:`~galexplorer.labels.LabelJournal`; :func:`check_journal` says whether a
journal is healthy (SQLite's ``PRAGMA integrity_check``) and :func:`recover_journal` copies
every event that can still be read into a new journal, saying which were lost.

Recovery reads a *copy* of the damaged file (and of its ``-wal``), never the file itself, and
writes a new file that did not exist before. Events are read in ``seq`` ranges that are split
in two when SQLite reports a damaged page, down to single events, so one bad page costs only
the events stored on it; then every leaf page of the file (and of its ``-wal``) is decoded
directly (:mod:`.pagescan`, as SQLite's own ``.recover`` does), which finds the rows below a
damaged interior page of the tree.
Every row is checked (kind, score 0–5, text fields) before it is kept; ``seq`` numbers are
kept, so retractions still point at the events they undo.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LabelError
from ..label_scale import MAX_SCORE, MIN_SCORE
from ..store.atomic import rename_into_place, temporary_sibling
from .connection import _SCHEMA, BUSY_TIMEOUT_S, JOURNAL_VERSION, readonly_uri, recover_hint, wal_path
from .journal import KINDS, Event, journal_path
from .pagescan import scan_rows

log = logging.getLogger(__name__)

_COLUMNS = "seq, action, kind, object_id, score, user, time, note, target"


def journal_of(path: str | Path) -> Path:
    """The journal named by ``path``: itself when it is a ``.sqlite`` file, else ``STORE.h5``'s."""
    path = Path(path)
    return path if path.name.lower().endswith((".sqlite", ".sqlite3", ".db")) else journal_path(path)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0][:160] if text else type(exc).__name__


# -- checking -------------------------------------------------------------------------------------
@dataclass
class JournalCheck:
    """What :func:`check_journal` found.

    Attributes:
        path: the journal file.
        problems: SQLite's complaints (``integrity_check`` lines, or why the file did not open);
            empty when healthy.
        events: number of events (None when they could not be counted).
        per_user: ``{user: {kind: count}}``.
        last: the most recent event (None when there is none or it could not be read).
    """

    path: Path
    problems: list[str] = field(default_factory=list)
    events: int | None = None
    per_user: dict[str, dict[str, int]] = field(default_factory=dict)
    last: Event | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def damage(self) -> str:
        """One line: what is wrong (for the error of ``labels check``)."""
        more = f" and {len(self.problems) - 1} more problem(s)" if len(self.problems) > 1 else ""
        return f"the label journal is damaged ({self.problems[0]}{more})"

    def summary(self) -> str:
        """Lines for ``galexplorer labels check``."""
        lines = [f"{self.path}: ok (integrity_check), {self.events or 0:,} events"]
        for user, kinds in sorted(self.per_user.items()):
            lines.append(f"  {user}: " + ", ".join(f"{n:,} {k}" for k, n in sorted(kinds.items())))
        if self.last is not None:
            e = self.last
            what = f"{e.kind} {e.score}" if e.kind == "score" else e.kind
            lines.append(f"  last event: #{e.seq} {what} of {e.object_id} by {e.user} at {e.time}")
        return "\n".join(lines)


def check_journal(path: str | Path) -> JournalCheck:
    """Check a journal read-only (a window may be labelling in it meanwhile).

    Args:
        path: ``STORE.h5`` or its journal (``.sqlite``).

    Raises:
        LabelError: there is no such file.
    """
    path = journal_of(path)
    if not path.is_file():
        raise LabelError("no label journal here", path, "give STORE.h5 or its STORE.h5.labels.sqlite")
    found = JournalCheck(path)
    # without a -wal no process has the journal open (a writer keeps one while connected): read
    # it as immutable, so that checking leaves no -wal or -shm beside a file that had none
    uri = readonly_uri(path) + ("" if wal_path(path).exists() else "&immutable=1")
    try:
        db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        found.problems.append(_first_line(exc))
        return found
    db.text_factory = _text
    try:
        rows = [r[0] for r in db.execute("PRAGMA integrity_check(100)").fetchall()]
        if rows != ["ok"]:
            found.problems.extend(ln.strip() for r in rows for ln in str(r).splitlines()
                                  if ln.strip() and not ln.startswith("*** in database"))
            found.problems = found.problems or ["integrity_check failed"]
            return found
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchall():
            found.problems.append("no events table: not a label journal")
            return found
        found.events = int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        for user, kind, n in db.execute("SELECT user, kind, COUNT(*) FROM events GROUP BY user, kind"):
            found.per_user.setdefault(str(user), {})[str(kind)] = int(n)
        last = db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq DESC LIMIT 1").fetchall()
        found.last = Event(*last[0]) if last else None
    except (sqlite3.Error, UnicodeDecodeError) as exc:
        found.problems.append(_first_line(exc))
    finally:
        db.close()
    return found


# -- recovering -----------------------------------------------------------------------------------
@dataclass
class Recovery:
    """What :func:`recover_journal` got back.

    Attributes:
        source: the damaged journal (unchanged).
        output: the new journal.
        events: the recovered events, by ``seq``.
        known_last: the highest ``seq`` the damaged file is known to have reached (its
            ``sqlite_sequence``), or None when that could not be read.
        rejected: rows read that were not valid events (garbage from a damaged page).
        methods: what read them (``SQLite``, ``a scan of its pages``).
    """

    source: Path
    output: Path
    events: list[Event]
    known_last: int | None
    rejected: int = 0
    methods: list[str] = field(default_factory=list)

    def lost_ranges(self) -> list[tuple[int, int]]:
        """Inclusive ``seq`` ranges missing between 1 and the last known event (seq has no gaps
        in a healthy journal: rows are never deleted)."""
        have = sorted(e.seq for e in self.events)
        last = max([self.known_last or 0] + have[-1:])
        out, expect = [], 1
        for s in have + [last + 1]:
            if s > expect:
                out.append((expect, s - 1))
            expect = s + 1
        return out

    @property
    def lost(self) -> int:
        return sum(b - a + 1 for a, b in self.lost_ranges())

    def summary(self) -> str:
        """Lines for ``galexplorer labels recover``."""
        kinds = Counter(e.kind for e in self.events)
        total = len(self.events) + self.lost
        lines = [f"recovered {len(self.events):,} of {total:,} events into {self.output} "
                 f"({', '.join(f'{kinds[k]:,} {k}' for k in KINDS if kinds[k]) or 'none'}; "
                 f"read by {' and '.join(self.methods) or 'nothing'})"]
        users: dict[str, Counter] = {}
        for e in self.events:
            users.setdefault(e.user, Counter())[e.kind] += 1
        for user, c in sorted(users.items()):
            lines.append(f"  {user}: " + ", ".join(f"{c[k]:,} {k}" for k in KINDS if c[k]))
        ranges = self.lost_ranges()
        if ranges:
            shown = ", ".join(f"#{a}" if a == b else f"#{a}–#{b}" for a, b in ranges[:20])
            more = f" and {len(ranges) - 20} more range(s)" if len(ranges) > 20 else ""
            lines.append(f"lost {self.lost:,} event(s): {shown}{more}")
            lines.append("  an undo (retraction) among them is lost too, so a label it undid may show again: "
                         "check the objects labelled around then")
        else:
            lines.append("lost: none between #1 and the last event known")
        if self.known_last is None:
            lines.append("  the file's own count of events could not be read: events after "
                         f"#{max((e.seq for e in self.events), default=0)} may be lost as well")
        if self.rejected:
            lines.append(f"  {self.rejected:,} unreadable row(s) skipped (garbage on damaged pages)")
        return "\n".join(lines)


def _valid(row: tuple) -> Event | None:
    """``row`` as an Event when every field is what the journal's schema allows."""
    if len(row) != 9:
        return None
    seq, action, kind, oid, score, user, time, note, target = row
    if not (isinstance(seq, int) and seq > 0 and isinstance(action, int) and kind in KINDS
            and isinstance(oid, str) and isinstance(user, str) and isinstance(time, str)):
        return None
    if (kind == "score") != (score is not None) or (score is not None and not (
            isinstance(score, int) and MIN_SCORE <= score <= MAX_SCORE)):
        return None
    if (kind == "retract") != (target is not None) or (target is not None and not isinstance(target, int)):
        return None
    if note is not None and not isinstance(note, str):
        return None
    try:
        _dt.datetime.fromisoformat(time)
    except ValueError:
        return None
    return Event(seq, action, kind, oid, score, user, time, note, target)


def _read_ranges(db: sqlite3.Connection, lo: int, hi: int, out: list[tuple]) -> None:
    """Append the rows with ``lo <= seq <= hi``, splitting the range around damaged pages."""
    todo = [(lo, hi)]
    while todo:
        a, b = todo.pop()
        try:
            out.extend(db.execute(f"SELECT {_COLUMNS} FROM events WHERE seq BETWEEN ? AND ? ORDER BY seq",
                                  (a, b)).fetchall())
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            if a == b:
                continue           # this event's page is unreadable
            mid = (a + b) // 2
            todo.extend([(mid + 1, b), (a, mid)])


def _scalar(db: sqlite3.Connection, sql: str) -> int | None:
    try:
        row = db.execute(sql).fetchone()
    except (sqlite3.DatabaseError, UnicodeDecodeError):
        return None
    return int(row[0]) if row and isinstance(row[0], int) else None


def _fit_header(copy: Path) -> None:
    """Make a truncated copy's header agree with its length: SQLite refuses a file shorter than
    the page count in its header, so a truncated journal would read as nothing at all."""
    try:
        with open(copy, "r+b") as fh:
            head = fh.read(100)
            if len(head) < 100 or head[:16] != b"SQLite format 3\x00":
                return
            size = int.from_bytes(head[16:18], "big")
            size = 65536 if size == 1 else size
            if size < 512 or size & (size - 1):
                return
            pages = fh.seek(0, 2) // size
            if pages < int.from_bytes(head[28:32], "big"):
                fh.seek(28)
                fh.write(pages.to_bytes(4, "big"))
    except OSError as exc:
        log.info("could not adjust %s's header (%s)", copy, exc)


def _read_with_python(copy: Path) -> tuple[list[tuple], int | None]:
    """Rows of ``events`` readable through SQLite itself, and ``sqlite_sequence``'s last seq."""
    try:
        db = sqlite3.connect(copy, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return [], None
    db.text_factory = _text
    try:
        db.execute("PRAGMA writable_schema=ON")   # read on past a bad schema row or page count; nothing is written
        known = _scalar(db, "SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        rows: list[tuple] = []
        try:
            rows = db.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq").fetchall()
            return rows, known
        except (sqlite3.DatabaseError, UnicodeDecodeError):
            rows = []
        hi = max(x for x in (known, _scalar(db, "SELECT MAX(seq) FROM events"), 0) if x is not None)
        if not hi:   # neither end readable: bound seq by what the file's pages could hold
            pages, size = _scalar(db, "PRAGMA page_count"), _scalar(db, "PRAGMA page_size")
            hi = (pages or 0) * ((size or 4096) // 8)
        if hi:
            _read_ranges(db, 1, hi, rows)
        return rows, known
    finally:
        db.close()


def _read_pages(copy: Path) -> list[tuple]:
    """Event rows found on the leaf pages of ``copy`` and its ``-wal`` (see :mod:`.pagescan`):
    nine fields, the first (``seq``, the row id) stored as NULL."""
    return [(rowid,) + values[1:] for rowid, values in scan_rows(copy, wal_path(copy))
            if len(values) == 9 and values[0] is None]


def _write_journal(events: list[Event], dest: Path, source: Path) -> None:
    """A new journal at ``dest`` holding ``events`` with their seq numbers (dest must not exist)."""
    tmp = temporary_sibling(dest)   # the writers' temporary name: a dead process's is cleaned up later
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("BEGIN")
            now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [("version", str(JOURNAL_VERSION)), ("created", now),
                            ("recovered_from", str(source)), ("recovered", now)])
            db.executemany(f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(e.seq, e.action, e.kind, e.object_id, e.score, e.user, e.time, e.note, e.target)
                            for e in events])
            db.execute("COMMIT")
            db.execute("PRAGMA journal_mode=WAL")   # as every journal
        finally:
            db.close()
        if dest.exists():   # appeared meanwhile: never replace a file
            raise LabelError("already exists; recovery never overwrites a file", dest, "give -o a new file name")
        rename_into_place(tmp, dest)
    except sqlite3.OperationalError as exc:
        raise LabelError(f"cannot write the recovered journal ({_first_line(exc)})", dest,
                         "choose a folder you can write to, with free space") from None
    except OSError as exc:
        raise LabelError(f"cannot write the recovered journal ({exc.strerror or exc})", dest,
                         "choose a folder you can write to, with free space") from None
    finally:
        for p in (tmp, Path(str(tmp) + "-journal"), Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
            p.unlink(missing_ok=True)


def recover_journal(source: str | Path, dest: str | Path, scan_pages: bool = True) -> Recovery:
    """Copy every readable event of a (damaged) journal into a new journal ``dest``.

    Args:
        source: ``STORE.h5`` or its journal; only read, through a copy.
        dest: the new journal; must not exist (recovery never overwrites a file).
        scan_pages: also read the rows on every leaf page (:mod:`.pagescan`), which finds those
            SQLite cannot reach when a page above them in its tree is damaged.

    Raises:
        LabelError: no source, ``dest`` exists or is the source, or ``dest`` cannot be written.
    """
    source, dest = journal_of(source), Path(dest)
    if not source.is_file():
        raise LabelError("no label journal here", source, "give STORE.h5 or its STORE.h5.labels.sqlite")
    if dest.exists() or dest.resolve() == source.resolve():
        raise LabelError("already exists; recovery never overwrites a file", dest, "give -o a new file name")
    if not dest.parent.is_dir():
        raise LabelError("no such folder", dest.parent, "create it or give -o a path in an existing folder")
    with tempfile.TemporaryDirectory(prefix="galexplorer-recover-") as tmp:
        copies = [Path(tmp) / f"{i}" / "journal.sqlite" for i in range(2)]
        try:
            for copy in copies:   # each reader its own copy: SQLite may fold the -wal into its copy
                copy.parent.mkdir()
                shutil.copyfile(source, copy)
                if wal_path(source).is_file():
                    shutil.copyfile(wal_path(source), wal_path(copy))
        except OSError as exc:
            raise LabelError(f"cannot read the journal ({exc.strerror or exc})", source,
                             "check that you may read it and that the temporary folder has space") from None
        _fit_header(copies[0])
        rows, known = _read_with_python(copies[0])
        methods = ["SQLite"] if rows else []
        if scan_pages:
            found = _read_pages(copies[1])
            have = {r[0] for r in rows}
            if any(r[0] not in have for r in found if _valid(tuple(r)) is not None):
                methods.append("a scan of its pages")
            rows += found
    by_seq: dict[int, Event] = {}
    bad: set[tuple] = set()   # distinct: both readers may meet the same garbage
    for row in rows:
        ev = _valid(tuple(row))
        if ev is None:
            bad.add(tuple(row))
        elif ev.seq not in by_seq:
            by_seq[ev.seq] = ev
    events = [by_seq[s] for s in sorted(by_seq)]
    if not events:
        raise LabelError("no event could be read: the file's first page (its header and table list) or every "
                         "page of events is lost; nothing was written", source,
                         "restore a backup or a `galexplorer labels export` of it if you have one")
    _write_journal(events, dest, source)
    rec = Recovery(source, dest, events, known, len(bad), methods)
    log.debug("%s: recovered %d events, lost %d", source, len(events), rec.lost)
    return rec


__all__ = ["JournalCheck", "Recovery", "check_journal", "journal_of", "recover_hint", "recover_journal"]
