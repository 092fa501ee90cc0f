"""Label events as data: the :class:`Event` row, its kinds and score check, and the CSV/JSON
files ``galexplorer labels export`` writes and ``labels import`` reads (a journal too)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LabelError
from ..label_scale import MAX_SCORE, MIN_SCORE
from ..store.atomic import atomic_output
from .connection import JOURNAL_VERSION

KINDS = ("score", "note", "exclude", "include", "retract")


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


def check_score(score) -> int:
    """Return ``score`` as an int in 0..5 or raise LabelError."""
    if isinstance(score, (bool, np.bool_)) or not isinstance(score, (int, np.integer, float, np.floating)):
        raise LabelError(f"score {score!r} is not a number; scores are integers 0 to 5")
    if float(score) != int(score) or not MIN_SCORE <= int(score) <= MAX_SCORE:
        raise LabelError(f"score {score!r} is outside 0–5; scores are integers 0 to 5")
    return int(score)


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
        from .journal import LabelJournal  # the journal module imports this one

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
