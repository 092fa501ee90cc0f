"""What the gallery shows: a selection, similar objects or a label view ("My labels"), in rank
or similarity order (no Qt). The controller owns one and says when it changed."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..label_scale import SCORES

ORDERS = ("rank", "similarity")


class GalleryContent:
    """The gallery's objects, title, kind and order.

    Args:
        rank: ``rank()`` → (N,) the live rank of every object (1 = best), or None before any.
        changed: called after every change.

    Attributes:
        indices: (k,) int64 the objects shown, in the gallery's order.
        values: (k,) the value shown under each (similarity), or None.
        title: the gallery's caption.
        kind: "empty", "selection", "similar" or "labelled".
        order: "rank" (the live ranking, best first) or "similarity" (most similar first).
    """

    def __init__(self, rank: Callable[[], np.ndarray | None], changed: Callable[[], None]):
        self._rank = rank
        self._changed = changed
        self.indices = np.empty(0, np.int64)
        self.values: np.ndarray | None = None
        self.title = ""
        self.kind = "empty"
        self.order = "rank"
        self._given: tuple[np.ndarray, np.ndarray | None] = (np.empty(0, np.int64), None)

    def show(self, indices: np.ndarray, title: str, values: np.ndarray | None, kind: str) -> None:
        """Show objects: similar objects by similarity, anything else by rank."""
        self._given = (np.asarray(indices, np.int64), None if values is None else np.asarray(values))
        self.title = title
        self.kind = kind
        self.order = "similarity" if kind == "similar" else "rank"
        self._apply_order()

    def show_labelled(self, mask: np.ndarray, what: str = "labelled", counts: dict[int, int] | None = None) -> None:
        """The objects of a label view (by rank), with the counts per score in the title when given."""
        idx = np.flatnonzero(mask)
        per = "  ·  " + "  ".join(f"{s}: {n:,}" for s, n in counts.items()) if counts else ""
        self.show(idx, f"{what.capitalize()} · {len(idx):,}{per}", None, "labelled")

    def order_by(self, by: str) -> None:
        """Order by ``"rank"`` or ``"similarity"`` (a selection has no similarity and stays by rank).

        Raises:
            ValueError: ``by`` is neither.
        """
        if by not in ORDERS:
            raise ValueError(f"unknown gallery order {by!r}")
        self.order = by
        self._apply_order()

    def _apply_order(self) -> None:
        idx, values = self._given
        rank = self._rank()
        if (self.order == "rank" or values is None) and rank is not None and len(idx):
            o = np.argsort(rank[idx], kind="stable")
            idx, values = idx[o], None if values is None else values[o]
        self.indices, self.values = idx, values
        self._changed()


def label_view(session, score: int | None = None, user: str | None = None, note: str = "",
               disputed: bool = False) -> tuple[np.ndarray, dict[int, int]]:
    """My labels: every labelled object of ``session`` (a
    :class:`~galexplorer.active.session.LabellingSession`), filtered by score (the user's when
    ``user`` is given, else the consensus), by labeller, by note text (case-insensitive) and by
    "disputed".

    Returns:
        ``(mask, counts)``: (N,) bool objects kept; ``{score: objects}`` among them.
    """
    labels = session.user_labels(user) if user else session.labels
    mask = np.isfinite(labels)
    if score is not None:
        mask &= labels == score
    if disputed:
        mask &= session.disputed
    text = note.strip().lower()
    if text:
        hit = np.zeros(session.n, bool)
        found = [oid for oid, body in session.journal.notes().items() if text in body.lower()]
        rows = session.index.rows_of(found)
        hit[rows[rows >= 0]] = True
        mask &= hit
    kept = np.rint(labels[mask]).astype(np.int64)
    counts = {s: int(np.count_nonzero(kept == s)) for s in SCORES}
    return mask, counts
