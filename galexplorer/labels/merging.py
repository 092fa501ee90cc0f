"""Merging another journal's events into this one (``galexplorer labels import``): which events
are malformed, and which are already here, so that importing the same file twice adds nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import LabelError
from .events import KINDS, Event, check_score


def check_importable(events: Sequence[Event], where: str | Path) -> None:
    """Refuse a malformed event before anything is written.

    Raises:
        LabelError: an unknown kind, a score on a non-score event (or none on a score), a score
            outside 0–5, or a retraction whose target is not an event of ``events``.
    """
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


def _keyer(table: dict[int, Event]) -> Callable[[Event], tuple]:
    """An event's identity across journals: user, time, kind, object, score, note, and its
    target's identity (seq numbers differ between journals)."""
    memo: dict[int, tuple] = {}

    def key(e: Event) -> tuple:
        if e.seq not in memo:
            target = key(table[e.target]) if e.target is not None and e.target in table else None
            memo[e.seq] = (e.user, e.time, e.kind, e.object_id, e.score, e.note, target)
        return memo[e.seq]
    return key


def match_present(mine: Sequence[Event], events: Sequence[Event]) -> tuple[dict[int, int], list[Event]]:
    """Pair each of ``events`` (sorted by seq) with an identical event of ``mine``, each used once.

    Returns:
        ``(merged, todo)``: ``{source seq: seq here}`` of the events already present, and the
        events to add, in order.
    """
    key_mine, key_new = _keyer({e.seq: e for e in mine}), _keyer({e.seq: e for e in events})
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
    return merged, todo
