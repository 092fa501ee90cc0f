"""The labelling session behind the explorer (no Qt; the window and the model process use it):
what is shown, scored and queued.

A :class:`LabellingSession` ties one embedding store to its label journal. Every score goes
to the journal (committed before the call returns) *before* the session moves on, and the
session's own place — the object on screen, the recent history, skipped objects, labels since
the last refit — is kept in the journal's meta table, so reopening the store resumes where the
user stopped, even after a crash or ``kill -9``.

Navigation is a browser-like history: scoring or skipping moves forward (through objects
already visited, then to the next object of the queue), ← goes back. The queue is the
acquisition order of the latest model (or the spanning first batch before there is one) with
labelled, excluded and skipped objects left out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import GalexplorerError, LabelError, StoreError
from ..label_scale import MAX_SCORE
from ..labels import Event, LabelJournal
from ..store import EmbeddingStore
from ..store.ranking import HoldsScores, Scores
from .cold_start import ColdStart
from .registry import scorer_label
from .snapshot import LabelSnapshot, LiveSnapshot

log = logging.getLogger(__name__)

PROJECTION_FIX = ("compute it with `galexplorer embed CUTOUTS.h5 --run RUN_DIR -o STORE.h5` "
                  "(or --embeddings FILE for your own embeddings)")
HISTORY_KEPT = 200


def open_store(path: str | Path) -> EmbeddingStore:
    """Open an embedding store for exploring: it must have a finite (N, 2) projection.

    Raises:
        StoreError: not a store, truncated, inconsistent, or without a usable projection.
    """
    store = EmbeddingStore(path)
    try:
        store.require("projection", PROJECTION_FIX)
        shape = store.file["projection"].shape
        if len(shape) != 2 or shape[1] != 2:
            raise StoreError(f"the projection has shape {shape}, expected (N, 2)", store.path, PROJECTION_FIX)
        xy = store.projection
        if not np.isfinite(xy).any():
            raise StoreError("the projection has no finite coordinates", store.path, PROJECTION_FIX)
    except BaseException:
        store.close()
        raise
    return store


@dataclass
class ModelState(HoldsScores):
    """The latest scorer output shown by the explorer (arrays in store order).

    Attributes:
        scores: the fit's :class:`~galexplorer.store.ranking.Scores`, float32 (``mean``, ``std``,
            ``acquisition``, ``scorer``, ``acquisition_name``, ``n_labels`` read through to it).
        next_batch: (k,) int64 the batch the acquisition picked.
        queue_order: (M,) int64 what to show next, best first: the batch, then the rest by
            acquisition, then by predicted score.
        ranking: (N,) int64 every object, best first (the candidates table's order).
        rank: (N,) int32 1-based position of each object in ``ranking``.
        seconds: the fit's wall time.
        labelled, labels, excluded: the fit's inputs ((n,) int64 rows, (n,) float32 scores,
            (m,) int64 rows), so labels given since can be ranked without a refit.
    """

    scores: Scores
    next_batch: np.ndarray
    queue_order: np.ndarray
    ranking: np.ndarray
    rank: np.ndarray
    seconds: float = 0.0
    labelled: np.ndarray | None = None
    labels: np.ndarray | None = None
    excluded: np.ndarray | None = None
    portfolio: dict | None = None     # the portfolio's state (shares per strategy), see active/portfolio.py
    representation: str = "embedding"  # what the scorer learned on, and why (active/representation.py)
    representation_reason: str = ""
    # interesting objects left (RemainingEstimate.as_dict(), see active/remaining.py), or None
    # where the scorer has no uncertainty or the std of every object was not computed
    remaining: dict | None = None
    # which rows of next_batch were drawn at random (no find yet, active/cold_start.py), or None
    cold_start: ColdStart | None = None

    @property
    def description(self) -> str:
        if self.scorer.startswith("prior"):
            return "no model yet: anomaly order"
        text = f"{scorer_label(self.scorer)} on {self.n_labels} labels ({self.seconds:.1f} s)"
        if self.portfolio:
            text = f"portfolio on {self.n_labels} labels ({self.seconds:.1f} s); this batch: " + ", ".join(
                f"{a} {100 * v:.0f}%" for a, v in self.portfolio["shares"].items())
        text = f"{text}; learns on {self.representation}"
        return f"{text}; {self.cold_start.reason}" if self.cold_start is not None else text

    @property
    def random_picks(self) -> np.ndarray:
        """(r,) int64 the rows of ``next_batch`` drawn at random by the cold start (empty: none)."""
        return self.cold_start.random if self.cold_start is not None else np.empty(0, np.int64)

    def picked_at_random(self, row: int) -> bool:
        """Whether ``row`` is in the queue as a random pick of the cold start."""
        return bool(np.isin(int(row), self.random_picks))


def model_state(result) -> ModelState:
    """A :class:`ModelState` from a :class:`galexplorer.active.loop.LoopResult`."""
    n = len(result.mean)
    taken = np.zeros(n, bool)
    taken[result.labelled] = True
    taken[result.excluded] = True
    parts = []
    for block in (np.asarray(result.next_batch, np.int64), _by_value(result.acquisition),
                  np.asarray(result.order, np.int64)):
        block = block[~taken[block]]
        if len(block) and np.bincount(block, minlength=n).max() > 1:   # first occurrence of each, in order
            _, first = np.unique(block, return_index=True)
            block = block[np.sort(first)]
        taken[block] = True
        parts.append(block)
    ranking = np.asarray(result.order, np.int64)
    rank = np.empty(n, np.int32)
    rank[ranking] = np.arange(1, n + 1, dtype=np.int32)
    return ModelState(result.scores.float32(), np.asarray(result.next_batch, np.int64),
                      np.concatenate(parts), ranking, rank, float(result.seconds), np.asarray(result.labelled, np.int64),
                      np.asarray(result.labels, np.float32), np.asarray(result.excluded, np.int64),
                      portfolio=result.portfolio, representation=result.representation,
                      representation_reason=str(result.info.get("representation", {}).get("reason", "")),
                      remaining=_remaining(result), cold_start=result.cold_start)


def _remaining(result) -> dict | None:
    """The fit's estimate of the interesting objects left, where it costs no more std passes
    (the scorer has an uncertainty and every object's std is known), else None."""
    model = result._model
    if model is None or not model.has_std or result.n_labels == 0 or not result.std_complete:
        return None
    try:
        return result.remaining().as_dict()
    except GalexplorerError as exc:      # e.g. a degenerate fit: the window shows no estimate
        log.info("no remaining-count estimate: %s", exc)
        return None


RERANK_LIMIT = 5000   # more changed objects than this: one full sort instead of insertions


def live_ranking(state: ModelState, labels: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """The ranking of ``state`` with the labels and exclusions as they are now.

    The same order as :func:`galexplorer.active.ordering.ranking_order` on the model's mean and the
    current labels (what ``ranked_table`` and ``galexplorer export`` write), so an object is
    ranked by its label the moment it is scored. Objects whose label or exclusion did not change
    since the fit keep their relative order; the few that changed are taken out and put back by
    binary search: O(N) array work plus O(k log N) comparisons, a few ms at 10^6 objects.

    Args:
        state: the latest fit (with its inputs).
        labels: (N,) float32 consensus labels now (NaN = not labelled).
        excluded: (N,) bool excluded now.

    Returns:
        (N,) int64 every object, best first.
    """
    from .ordering import ranking_order, rerank

    n = len(labels)
    if state.labelled is None:
        return state.ranking
    fit_labels = np.full(n, np.nan, np.float32)
    fit_labels[state.labelled] = state.labels
    fit_ex = np.zeros(n, bool)
    fit_ex[state.excluded] = True
    same = (fit_labels == labels) | (np.isnan(fit_labels) & np.isnan(labels))
    changed = np.flatnonzero(~same | (fit_ex != excluded))
    if len(changed) == 0:
        return state.ranking
    if len(changed) > RERANK_LIMIT:
        lab = np.flatnonzero(np.isfinite(labels))
        return ranking_order(state.mean, lab, labels[lab], np.flatnonzero(excluded))
    return rerank(state.ranking, changed, state.mean, labels, excluded, MAX_SCORE)


def _by_value(values: np.ndarray) -> np.ndarray:
    """Rows with a finite value, highest first (ties by row)."""
    v = np.asarray(values)
    rows = np.flatnonzero(np.isfinite(v))
    return rows[np.argsort(-v[rows], kind="stable")].astype(np.int64)   # stable: ties by row, as a lexsort


class LabellingSession:
    """One user's labelling session on one store.

    Args:
        store: an open store (see :func:`open_store`); the session closes it in :meth:`close`.
        user: name recorded with the labels (default: the login name).

    Attributes:
        ids: (N,) object ids, read on demand (:class:`~galexplorer.store.ondemand.ObjectIds`).
        index: id -> row (``index[id]``, ``id in index``, ``index.get(id)``, ``index.rows_of(ids)``).
        xy: (N, 2) float32 projection.
        labels: (N,) float32 consensus label per object (NaN = not labelled).
        n_labellers: (N,) int32 users who scored each object; disputed: (N,) bool.
        excluded: (N,) bool, excluded from ranking (artefacts).
        model: the latest :class:`ModelState`, or None before the first fit.
        batch_size: labels between refits.
    """

    def __init__(self, store: EmbeddingStore, user: str | None = None, batch_size: int = 10):
        self.store = store
        self.journal = LabelJournal.for_store(store.path, user)
        self.user = self.journal.user
        # read on demand (``ids[rows]``, ``index.get(id)``): at 10^7 objects the ids alone are
        # ~0.7 GB of strings and seconds to read
        self.ids = store.object_ids
        self.n = len(self.ids)
        self.index = store.object_ids.index
        self.xy = np.asarray(store.projection, dtype=np.float32)
        # the labels kept up to date from the journal's new events only (issue #27 item 4);
        # its arrays are updated in place: widgets hold them
        self.live = LiveSnapshot(store, self.journal)
        self.labels = self.live.label
        self.n_labellers = self.live.n_labellers   # users who scored each object
        self.disputed = self.live.disputed         # the users disagree (see LabelJournal.consensus)
        self.excluded = self.live.excluded
        self.model: ModelState | None = None
        self.batch_size = int(batch_size)
        self.since_refit = 0
        self.skipped: set[int] = set()
        self.history: list[int] = []
        self.hpos = -1
        self._order = np.empty(0, np.int64)     # queue source: acquisition order or first batch
        self._context: list[int] | None = None  # a list being worked through (the gallery)
        self.following = False   # the object on screen came from the queue (not a click, not ←)
        self.ranking: np.ndarray | None = None  # the live ranking (model + labels as they are now)
        self.rank: np.ndarray | None = None     # (N,) int32 1-based position in ``ranking``
        self.sync_labels()
        self._restore()

    # -- labels --------------------------------------------------------------------------------
    def sync_labels(self) -> bool:
        """Bring consensus labels and exclusions up to date with the journal (after any change):
        only the events recorded since the last sync are read and only the objects they touch
        are recomputed (:class:`~galexplorer.active.snapshot.LiveSnapshot`), giving what
        :func:`~galexplorer.active.snapshot.label_snapshot` (``galexplorer rank``) gives.

        Returns:
            True when there were new events.
        """
        news = self.live.update()
        self.refresh_ranking()
        return news

    @property
    def snapshot(self) -> LabelSnapshot:
        """The labels now, as ``label_snapshot`` gives them (arrays shared, not copied)."""
        return self.live.snapshot()

    def sync_if_changed(self) -> bool:
        """Read the labels when the journal holds events this session has not read (another
        labeller's scores, from another window or process); True when it did."""
        if self.journal.last_seq() == self.live.live.seen_seq:
            return False
        return self.sync_labels()

    def refresh_ranking(self) -> None:
        """Rank by the latest model and the labels as they are now (see :func:`live_ranking`)."""
        if self.model is None:
            return
        self.ranking = live_ranking(self.model, self.labels, self.excluded)
        if self.ranking is self.model.ranking:
            self.rank = self.model.rank
        else:
            self.rank = np.empty(self.n, np.int32)
            self.rank[self.ranking] = np.arange(1, self.n + 1, dtype=np.int32)

    def users(self) -> list[str]:
        """Everyone with a current score in the journal (this session's user first)."""
        names = self.live.live.users()
        return [self.user] + sorted(names - {self.user})

    def user_labels(self, user: str) -> np.ndarray:
        """(N,) float32 one user's current scores (NaN where that user gave none)."""
        out = np.full(self.n, np.nan, np.float32)
        theirs = self.live.live.current(user)
        rows = self.index.rows_of(list(theirs))
        known = rows >= 0
        out[rows[known]] = np.fromiter(theirs.values(), np.float32, len(theirs))[known]
        return out

    def agreement(self):
        """Per pair of labellers: objects in common and weighted Cohen's kappa
        (:func:`galexplorer.labels.agreement.pairwise_agreement`)."""
        from ..labels.agreement import pairwise_agreement

        return pairwise_agreement(self.live.live.all_current())

    @property
    def n_labelled(self) -> int:
        return int(np.count_nonzero(np.isfinite(self.labels)))

    def my_label(self, i: int) -> int | None:
        """This user's current label of object ``i`` (None when not labelled by them)."""
        return self.live.live.label_of(self.ids[i], self.user)

    @property
    def n_mine(self) -> int:
        """Objects this session's user labels now (the status bar's "yours")."""
        return self.live.live.count(self.user)

    def note_of(self, i: int) -> str | None:
        """The latest note on object ``i`` by anyone (None when there is none)."""
        return self.journal.note_of(self.ids[i])

    def labelled_indices(self) -> np.ndarray:
        return np.flatnonzero(np.isfinite(self.labels))

    def fit_inputs(self, scorer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What a fit of ``scorer`` needs, as copies safe to hand to a worker thread:
        ``(labelled_idx int64, labels float32, excluded_idx int64)`` — exactly what
        ``galexplorer rank`` fits on (:meth:`LabelSnapshot.fit_inputs`)."""
        return self.snapshot.fit_inputs(scorer)

    # -- the object on screen ------------------------------------------------------------------
    @property
    def current(self) -> int | None:
        return self.history[self.hpos] if 0 <= self.hpos < len(self.history) else None

    def open(self, i: int, context: Sequence[int] | None = None) -> int:
        """Show object ``i`` now (a click in the scatter, the table or the gallery).

        Args:
            context: the list ``i`` was picked from (the gallery): scoring then moves on to the
                next unscored object of that list rather than of the queue.
        """
        i = int(i)
        self._context = None if context is None else [int(c) for c in context]
        self.following = False
        if i == self.current:
            return i
        del self.history[self.hpos + 1:]
        self.history.append(i)
        self.hpos = len(self.history) - 1
        self._trim_history()
        self._persist()
        return i

    def back(self) -> int | None:
        """← : the previously shown object."""
        if self.hpos > 0:
            self.hpos -= 1
            self.following = False
            self._persist()
        return self.current

    def forward(self) -> int | None:
        """→ : forward in the history, else the next object of the queue (leaving this one
        in the queue)."""
        return self._advance(skip=False)

    def skip(self) -> int | None:
        """S : leave the current object unscored and out of the queue for this session."""
        return self._advance(skip=True)

    def _advance(self, skip: bool) -> int | None:
        cur = self.current
        if skip and cur is not None:
            self.skipped.add(cur)
        if self.hpos < len(self.history) - 1:
            self.hpos += 1
            self.following = False
        else:
            nxt = self._next_in_context(cur)
            self.following = nxt is None
            if nxt is None:
                nxt = next(self.upcoming(exclude_current=True), None)
            if nxt is None:
                self._persist()
                return cur
            self.history.append(int(nxt))
            self.hpos = len(self.history) - 1
            self._trim_history()
        self._persist()
        return self.current

    def _next_in_context(self, cur: int | None) -> int | None:
        ctx = self._context
        if not ctx:
            return None
        start = ctx.index(cur) + 1 if cur in ctx else 0
        for i in ctx[start:] + ctx[:start]:
            if i != cur and i not in self.skipped and not self.excluded[i] and not np.isfinite(self.labels[i]):
                return i
        self._context = None   # the list is done: back to the queue
        return None

    def _trim_history(self) -> None:
        extra = len(self.history) - HISTORY_KEPT
        if extra > 0:
            del self.history[:extra]
            self.hpos -= extra

    # -- scoring -------------------------------------------------------------------------------
    def score_current(self, score: int) -> Event:
        """Record ``score`` for the object on screen (committed to the journal when this
        returns), then move on to the next object.

        Raises:
            LabelError: no object is shown, or the score is not an integer 0–5.
        """
        cur = self.current
        if cur is None:
            from ..errors import LabelError

            raise LabelError("no object is shown to score")
        ev = self.journal.score(self.ids[cur], score)
        self.sync_labels()   # the consensus of all users, as the model will see it
        self.since_refit += 1
        self.skipped.discard(cur)
        self._advance(skip=False)
        return ev

    def score_many(self, indices: Sequence[int], score: int) -> list[Event]:
        """Give many objects (a selection, a gallery) the same score, as one undo step."""
        evs = self.journal.score_many(self.ids[np.asarray(indices, dtype=np.int64)], score)
        self.sync_labels()
        self.since_refit += len(evs)
        self._persist()
        return evs

    def note(self, text: str) -> Event | None:
        cur = self.current
        if cur is None or not text.strip():
            return None
        ev = self.journal.note(self.ids[cur], text.strip())
        if ev is not None:
            self.live.live.skip_own(ev)   # our own note: nothing new for the labels
        return ev

    def exclude(self, indices: Sequence[int]) -> list[Event]:
        """Exclude objects from ranking (artefacts); undoable."""
        evs = self.journal.exclude(self.ids[np.asarray(indices, dtype=np.int64)])
        self.sync_labels()
        self.since_refit += 1 if evs else 0
        self._persist()
        return evs

    def include(self, indices: Sequence[int]) -> list[Event]:
        evs = self.journal.include(self.ids[np.asarray(indices, dtype=np.int64)])
        self.sync_labels()
        self._persist()
        return evs

    def undo(self) -> list[Event]:
        """Retract this user's last action and show the object it was about."""
        evs = self.journal.undo()
        if evs:
            self.sync_labels()
            n_scores = sum(e.kind == "score" for e in evs)
            self.since_refit = max(0, self.since_refit - n_scores)
            if len(evs) == 1 and evs[0].object_id in self.index:
                self.open(self.index[evs[0].object_id])
            self._persist()
        return evs

    def redo(self) -> list[Event]:
        """Record again what :meth:`undo` retracted; a single score moves on as scoring does."""
        evs = self.journal.redo()
        if evs:
            self.sync_labels()
            self.since_refit += sum(e.kind == "score" for e in evs)
            if len(evs) == 1 and evs[0].kind == "score" and self.current == self.index.get(evs[0].object_id):
                self._advance(skip=False)
            self._persist()
        return evs

    @property
    def can_redo(self) -> bool:
        return self.journal.can_redo

    # -- the queue -----------------------------------------------------------------------------
    def set_order(self, order: np.ndarray) -> None:
        """The queue's source: objects in the order they should be shown."""
        self._order = np.asarray(order, dtype=np.int64)

    @property
    def order(self) -> np.ndarray:
        return self._order

    def upcoming(self, exclude_current: bool = False) -> Iterator[int]:
        """Objects still to show, best first: the order without labelled, excluded, skipped
        objects (and without the current one when asked)."""
        cur = self.current if exclude_current else None
        labels, excluded, skipped = self.labels, self.excluded, self.skipped
        order = self._order
        for a in range(0, len(order), 512):   # lazily: the order may hold 10^6 objects
            for i in order[a:a + 512].tolist():
                if i == cur or i in skipped or excluded[i] or labels[i] == labels[i]:  # x == x: not NaN
                    continue
                yield i

    def batch_left(self) -> int:
        """Objects of the model's current batch still to score."""
        if self.model is None:
            batch = self._order[:self.batch_size]
        else:
            batch = self.model.next_batch
        return sum(1 for i in batch.tolist() if i not in self.skipped and not self.excluded[i]
                   and not np.isfinite(self.labels[i]))

    def queue(self, k: int = 50) -> list[int]:
        """The next ``k`` objects of the queue (the current one first if it is queued)."""
        out = []
        for i in self.upcoming():
            out.append(i)
            if len(out) >= k:
                break
        return out

    def apply_model(self, model: ModelState) -> bool:
        """A refit finished: new colours, a new queue, the refit counter restarts.

        When the object on screen came from the queue (the user was following it), the view
        moves to the head of the new queue, so the next score goes to an object the model
        chose; after a click or ← it stays (see :attr:`batch_waiting`).

        Returns:
            True when the view moved to the new queue's head.
        """
        self.model = model
        self.set_order(model.queue_order)
        self.since_refit = max(0, self.n_labelled - model.n_labels)
        self.refresh_ranking()
        moved = False
        if self.following:
            moved = self.go_to_queue_head()
        self._persist()
        try:   # fold the -wal in after each refit batch: the .sqlite alone then holds every label
            self.journal.checkpoint()
        except LabelError as exc:   # every label is still safe in the -wal
            log.warning("%s", exc)
        return moved

    def queue_head(self) -> int | None:
        """The first object of the queue (None when it is empty)."""
        return next(self.upcoming(), None)

    @property
    def batch_waiting(self) -> bool:
        """A model's batch waits while the user looks elsewhere (after a click or ←)."""
        head = self.queue_head()
        return self.model is not None and head is not None and head != self.current and not self.following

    def go_to_queue_head(self) -> bool:
        """Show the head of the queue (Space); True when the view moved."""
        head = self.queue_head()
        self._context = None
        self.following = True
        if head is None or head == self.current:
            return False
        del self.history[self.hpos + 1:]
        self.history.append(int(head))
        self.hpos = len(self.history) - 1
        self._trim_history()
        self._persist()
        return True

    @property
    def needs_refit(self) -> bool:
        """Enough new labels since the last fit (and at least two to fit on)."""
        return self.since_refit >= self.batch_size and self.n_labelled >= 2

    # -- persistence ---------------------------------------------------------------------------
    @property
    def _meta_key(self) -> str:
        return f"explorer.{self.user}.state"

    def _persist(self) -> None:
        state = {
            "history": [self.ids[i] for i in self.history],
            "hpos": self.hpos,
            "skipped": [self.ids[i] for i in sorted(self.skipped)],
            "since_refit": self.since_refit,
        }
        try:
            self.journal.set_meta(self._meta_key, json.dumps(state))
        except Exception as exc:  # the labels themselves are already committed; keep going
            log.warning("could not save the session state: %s", exc)

    def _restore(self) -> None:
        raw = self.journal.get_meta(self._meta_key)
        if not raw:
            return
        try:
            state = json.loads(raw)
            rows = self.index.rows_of(state.get("history", []))   # one lookup for all ids
            hist = [int(r) for r in rows if r >= 0]
            self.history = hist
            self.hpos = min(int(state.get("hpos", len(hist) - 1)), len(hist) - 1)
            rows = self.index.rows_of(state.get("skipped", []))
            self.skipped = {int(r) for r in rows if r >= 0}
            self.since_refit = int(state.get("since_refit", 0))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("%s: the saved session state is unreadable (%s); starting afresh", self.journal.path, exc)

    def start(self) -> int | None:
        """Show the object the user left off at, else the first object of the queue."""
        if self.current is None:
            nxt = next(self.upcoming(), None)
            if nxt is not None:
                self.open(nxt)
                self.following = True
        return self.current

    def close(self) -> None:
        self.journal.close()
        self.store.close()
