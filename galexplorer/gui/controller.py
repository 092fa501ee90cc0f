"""The explorer's controller: the labelling session, the active-learning loop, similarity
search and export, behind Qt signals.

Widgets call its methods and listen to its signals; it calls the same library functions as the
command line: the :class:`~galexplorer.labels.LabelJournal` (through the session) here, and
:class:`~galexplorer.active.loop.ActiveLoop`, :func:`~galexplorer.active.ranking.ranked_table`,
:class:`~galexplorer.explore.similarity.SimilarityIndex` and :func:`~galexplorer.export.write_ranked`
in the model's own process (:mod:`.modelproc`). Requests to that process go through
:class:`~.workers.LatestOnlyRunner` threads: a refit asked for while one runs waits in a single
slot, so a burst of requests runs only the latest, and the UI thread never waits. Exports and
SAMP sends go through a :class:`~.workers.QueuedRunner` instead: every one runs, in order, or
is refused with a message.

Its collaborators each hold one concern: the gallery's content (:mod:`.gallery_content`), the
map's colour choices (:class:`~.colouring.MapColours`), the texts about an object
(:mod:`.object_text`), exports and SAMP sends (:mod:`.output_jobs`), similarity searches
(:mod:`.similar_search`) and the Why-here explanations (:mod:`.why_here`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from ..active.loop import LoopConfig
from ..active.portfolio import save_state
from ..active.session import LabellingSession, ModelState
from ..errors import GalexplorerError
from .colouring import MapColours
from .gallery_content import GalleryContent, label_view
from .modelproc import ModelProcess, ModelProcessError
from .object_text import ObjectText
from .output_jobs import OutputJobs
from .selection import SelectionMode, combine
from .similar_search import SimilarSearch
from .why_here import WhyHere
from .workers import LatestOnlyRunner

log = logging.getLogger(__name__)

JOURNAL_POLL_MS = 1000          # how often the window looks for labels recorded elsewhere


@dataclass(frozen=True)
class ModelStopped:
    """A refit that did not finish because the model's process died or failed.

    Attributes:
        reason: what happened, one line ("the model's process stopped (killed by SIGKILL)").
        given_up: it failed too many times in a row and is not restarted.
    """

    reason: str
    given_up: bool


def fit_job(model: ModelProcess, config: LoopConfig, labelled: np.ndarray, labels: np.ndarray,
            excluded: np.ndarray) -> ModelState | ModelStopped:
    """A refit in the model's process (runs in a worker thread, which just waits for it)."""
    try:
        return model.fit(config, labelled, labels, excluded)
    except ModelProcessError as exc:
        return ModelStopped(exc.reason, exc.given_up)


class Explorer(QtCore.QObject):
    """Everything the explorer's widgets show and do, for one store.

    Signals:
        currentChanged(object): the object in the inspector (int or None).
        labelsChanged(): scores, notes or exclusions changed.
        queueChanged(): the queue changed.
        modelChanged(): a refit finished (colours, queue, candidates).
        refitStateChanged(bool, str): a refit started (True) or ended, with a status line.
        selectionChanged(): the selection changed.
        galleryChanged(): the gallery's content changed.
        scored(str, int): a score was committed to the journal (object id, score).
        message(str): a status-bar message.
        failed(str): something the user should see in a dialog (one line).
        progressed(str, int, int): progress of a long job (stage, done, total or -1).
    """

    currentChanged = QtCore.Signal(object)
    labelsChanged = QtCore.Signal()
    queueChanged = QtCore.Signal()
    modelChanged = QtCore.Signal()
    refitStateChanged = QtCore.Signal(bool, str)
    selectionChanged = QtCore.Signal()
    galleryChanged = QtCore.Signal()
    scored = QtCore.Signal(str, int)
    message = QtCore.Signal(str)
    failed = QtCore.Signal(str)
    progressed = QtCore.Signal(str, int, int)

    def __init__(self, session: LabellingSession, config: LoopConfig | None = None, parent=None):
        super().__init__(parent)
        self.session = session
        self.store = session.store
        self.config = config or LoopConfig(batch_size=session.batch_size)
        self.session.batch_size = self.config.batch_size
        self.model = ModelProcess(self.store.path)
        self.state: ModelState | None = None
        self.selection = np.empty(0, np.int64)
        self.gallery = GalleryContent(lambda: self.session.rank, self.galleryChanged.emit)
        self.refit_started_at: float | None = None
        self.refits = LatestOnlyRunner("refit", self)
        self.similar = SimilarSearch(self)
        self.searches = self.similar.runner
        self.why = WhyHere(self)
        self.outputs = OutputJobs(self)
        self.io = self.outputs.io
        self.refits.finished.connect(self._on_fitted)
        self.refits.failed.connect(self._on_fit_failed)
        self.refits.progressed.connect(self.progressed)
        self._scores = {name: None for name in self.store.score_names}
        self.colours = MapColours(session, self.score_array, lambda: self.state)
        self.text = ObjectText(session, self.score_array, lambda: self.state, lambda: self.config.acquisition)
        # other labellers' scores (another window or process on the same journal) show at once
        self._journal_timer = QtCore.QTimer(self)
        self._journal_timer.setInterval(JOURNAL_POLL_MS)
        self._journal_timer.timeout.connect(self.poll_journal)

    # -- lifetime --------------------------------------------------------------------------------
    def start(self) -> None:
        """Show where the user stopped, and start the first fit (features, first batch)."""
        if self.session.current is not None:
            self.currentChanged.emit(self.session.current)
        self.request_refit(tag="startup")
        self._journal_timer.start()

    def shutdown(self) -> None:
        """Stop the model's process (abandoning a running job: it only reads, and writes files
        atomically), end the worker threads, close the store and the journal."""
        self._journal_timer.stop()
        self.model.close()
        for runner in (self.refits, self.searches, self.io, self.why.runner):
            runner.shutdown()
        self.session.close()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Tests and screenshots: wait until no job runs."""
        deadline = time.monotonic() + timeout
        ok = True
        for runner in (self.refits, self.searches, self.io, self.why.runner):
            ok = runner.wait(max(0.0, deadline - time.monotonic())) and ok
        return ok

    @property
    def n(self) -> int:
        return self.session.n

    # -- what the widgets read (they never reach into the session) ---------------------------------
    @property
    def user(self) -> str:
        return self.session.user

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) float32 the 2-D map."""
        return self.session.xy

    @property
    def labels(self) -> np.ndarray:
        """(N,) float32 consensus labels (NaN = not labelled); read-only for widgets."""
        return self.session.labels

    @property
    def excluded(self) -> np.ndarray:
        """(N,) bool excluded from the ranking."""
        return self.session.excluded

    def object_id(self, i: int) -> str:
        return str(self.session.ids[i])

    def index_of(self, object_id: str) -> int | None:
        return self.session.index.get(object_id)

    def labelled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, consensus labels)`` of the labelled objects."""
        idx = self.session.labelled_indices()
        return idx, self.session.labels[idx]

    def disputes(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, disputed)`` of the labelled objects: whether their labellers disagree."""
        idx = self.session.labelled_indices()
        return idx, self.session.disputed[idx]

    def note_of(self, i: int) -> str | None:
        return self.session.note_of(i)

    def my_label(self, i: int) -> int | None:
        return self.session.my_label(i)

    def queue(self, k: int = 50) -> list[int]:
        """The next ``k`` objects to score."""
        return self.session.queue(k)

    @property
    def batch_size(self) -> int:
        return self.session.batch_size

    # -- the object on screen --------------------------------------------------------------------
    @property
    def current(self) -> int | None:
        return self.session.current

    def open(self, i: int, context: np.ndarray | None = None) -> None:
        self.session.open(int(i), None if context is None else context.tolist())
        self.currentChanged.emit(self.session.current)

    def back(self) -> None:
        before = self.session.current
        if self.session.back() != before:
            self.currentChanged.emit(self.session.current)

    def forward(self) -> None:
        before = self.session.current
        if self.session.forward() != before:
            self.currentChanged.emit(self.session.current)
            self.queueChanged.emit()
        else:
            self.message.emit(self._stopped_line() if self.model.given_up else
                              "no next object yet: the queue refills after the refit")

    def go_to_queue(self) -> None:
        """Space: the head of the queue (the model's new batch after a refit)."""
        if self.session.go_to_queue_head():
            self.currentChanged.emit(self.session.current)
            self.queueChanged.emit()
        elif self.session.queue_head() is None:
            self.message.emit("the queue is empty")

    def skip(self) -> None:
        self.session.skip()
        self.currentChanged.emit(self.session.current)
        self.queueChanged.emit()

    # -- labelling ---------------------------------------------------------------------------------
    def score(self, s: int) -> bool:
        """Record score ``s`` for the current object (committed before the view moves on)."""
        cur = self.session.current
        if cur is None:
            self.message.emit("no object to score")
            return False
        try:
            ev = self.session.score_current(s)
        except GalexplorerError as exc:
            self.failed.emit(str(exc))
            return False
        self.scored.emit(ev.object_id, int(ev.score))
        self._after_labels()
        self.currentChanged.emit(self.session.current)
        return True

    def score_many(self, indices: np.ndarray, s: int) -> None:
        if len(indices) == 0:
            return
        try:
            evs = self.session.score_many(indices, s)
        except GalexplorerError as exc:
            self.failed.emit(str(exc))
            return
        self.message.emit(f"scored {len(evs)} objects {s} (Ctrl+Z undoes it)")
        self._after_labels()
        self.currentChanged.emit(self.session.current)

    def exclude(self, indices: np.ndarray) -> None:
        if len(indices) == 0:
            return
        self.session.exclude(indices)
        self.message.emit(f"excluded {len(indices)} objects from the ranking (Ctrl+Z undoes it)")
        self._after_labels()
        self.currentChanged.emit(self.session.current)

    def label_view(self, score: int | None = None, user: str | None = None, note: str = "",
                   disputed: bool = False) -> tuple[np.ndarray, dict[int, int]]:
        """My labels: ``(mask, counts)`` of the labelled objects kept by the filters
        (:func:`~.gallery_content.label_view`)."""
        return label_view(self.session, score, user, note, disputed)

    def users(self) -> list[str]:
        return self.session.users()

    def agreement(self):
        """Per pair of labellers: objects both scored, weighted Cohen's kappa."""
        return self.session.agreement()

    def target(self) -> np.ndarray:
        """What an action on "the selection or this object" acts on (X, F, SAMP)."""
        if len(self.selection):
            return self.selection
        cur = self.session.current
        return np.array([cur], np.int64) if cur is not None else np.empty(0, np.int64)

    def exclude_target(self) -> None:
        """X: exclude the selection (or the object in the inspector) from the ranking."""
        self.exclude(self.target())

    @property
    def can_go_back(self) -> bool:
        return self.session.hpos > 0

    def include(self, indices: np.ndarray) -> None:
        if len(indices) == 0:
            return
        self.session.include(indices)
        self.message.emit(f"{len(indices)} objects are back in the ranking")
        self._after_labels()
        self.currentChanged.emit(self.session.current)

    def note(self, text: str) -> None:
        if self.session.note(text) is not None:
            self.message.emit("note saved")
            self.labelsChanged.emit()
            self.currentChanged.emit(self.session.current)

    def undo(self) -> None:
        evs = self.session.undo()
        if not evs:
            self.message.emit("nothing to undo")
            return
        self.message.emit(f"undid: {_describe_events(evs)}")
        self._after_labels(refit=False)
        self.currentChanged.emit(self.session.current)

    def redo(self) -> None:
        evs = self.session.redo()
        if not evs:
            self.message.emit("nothing to redo")
            return
        self.message.emit(f"redid: {_describe_events(evs)}")
        self._after_labels()
        self.currentChanged.emit(self.session.current)

    def poll_journal(self) -> bool:
        """Read labels recorded elsewhere since the last look (every :data:`JOURNAL_POLL_MS`):
        the consensus, n_labellers, disputed and the live ranking follow at once; the model
        takes them at its next refit. True when there were some."""
        try:
            news = self.session.sync_if_changed()
        except GalexplorerError as exc:   # a journal locked or gone: try again at the next tick
            log.warning("cannot read the label journal: %s", exc)
            return False
        if news:
            self.message.emit("new labels in the journal (another labeller or window)")
            self._after_labels(refit=False)
        return news

    def _after_labels(self, refit: bool = True) -> None:
        self.labelsChanged.emit()
        self.queueChanged.emit()
        if refit and self.session.needs_refit:
            self.request_refit()

    # -- the loop ----------------------------------------------------------------------------------
    def set_config(self, **changes) -> None:
        """New loop options (``LoopConfig`` fields by name; those left out keep their values):
        they apply at the next refit, started now if what picks changed."""
        try:
            config = replace(self.config, **changes)
        except GalexplorerError as exc:
            self.failed.emit(str(exc))
            return
        picks = ("scorer", "acquisition", "xi", "cold_start", "widen_after")
        changed_model = any(getattr(config, k) != getattr(self.config, k) for k in picks)
        self.config = config
        self.session.batch_size = config.batch_size
        if changed_model and self.state is not None:
            self.request_refit(tag="options")

    def request_refit(self, tag: str = "batch") -> None:
        """Refit on every label now, in the worker (a request made while one runs waits; only
        the latest waits). Labels another labeller committed meanwhile are read in first, so
        the fit and the views have them. After the model's process failed too many times in a
        row only a refit the user asks for (``tag="manual"``, Ctrl+R) starts a new one."""
        if self.model.given_up:
            if tag != "manual":
                self.refitStateChanged.emit(self.refits.busy, self._stopped_line())
                return
            self.model.restart()
            self.message.emit("starting a new model process…")
        if self.session.journal.changed_elsewhere():
            self.session.sync_labels()
            self.labelsChanged.emit()
        labelled, labels, excluded = self.session.fit_inputs(self.config.scorer)
        self.refit_started_at = time.monotonic()
        self.refitStateChanged.emit(True, f"refitting {self.config.scorer} on {len(labelled)} labels…")
        self.refits.submit(fit_job, self.model, self.config, labelled, labels, excluded, tag=tag)

    @property
    def refitting(self) -> bool:
        return self.refits.busy

    def _stopped_line(self) -> str:
        return (f"no refits: the model's process stopped {self.model.failures} times in a row; "
                "your labels are saved; Ctrl+R tries again")

    def _on_model_stopped(self, stopped: ModelStopped) -> None:
        """The model's process died or failed during a refit: say so in the status bar and
        refit again in a new one, or, when it failed too often in a row, say that once (a
        dialog) and stop refitting until the user asks."""
        if stopped.given_up:
            self.refitStateChanged.emit(self.refits.busy, self._stopped_line())
            self.failed.emit(f"{stopped.reason}; it stopped {self.model.failures} times in a row and is not "
                             "restarted; your labels are saved; press Ctrl+R (Model > Refit now) to try again")
            return
        self.message.emit(f"{stopped.reason} during the refit; started a new one and refitting again "
                          "(your labels are saved)")
        # after the runner has finished delivering (it may start a waiting refit, which then
        # runs in the new process: no second one is needed)
        QtCore.QTimer.singleShot(0, self, self._refit_after_stop)   # dropped if the window closes first

    def _refit_after_stop(self) -> None:
        if not self.refits.busy and not self.model.closed:
            self.request_refit(tag="restart")

    def _on_fitted(self, tag, state: ModelState | ModelStopped) -> None:
        if isinstance(state, ModelStopped):
            self._on_model_stopped(state)
            return
        self.state = state
        if state.portfolio:   # the strategies' shares and history, kept with the labels
            save_state(self.session.journal, state.portfolio)
        moved = self.session.apply_model(state)
        if self.session.current is None:
            self.session.start()
            moved = True
        if moved:
            self.currentChanged.emit(self.session.current)
        elif self.session.batch_waiting:
            self.message.emit("a new batch is ready: press Space to go to it")
        self.modelChanged.emit()
        self.queueChanged.emit()
        if not self.refits.busy:
            self.refitStateChanged.emit(False, self.state.description)

    def _on_fit_failed(self, tag, message: str) -> None:
        self.refitStateChanged.emit(self.refits.busy, f"refit failed: {message}")
        self.failed.emit(f"the refit failed: {message}")

    # -- selection, similarity, gallery ------------------------------------------------------------
    def select(self, indices: np.ndarray, mode: SelectionMode = SelectionMode.REPLACE) -> None:
        self.selection = combine(self.selection, indices, mode)
        self.selectionChanged.emit()
        self.show_selection()

    def clear_selection(self) -> None:
        if len(self.selection):
            self.selection = np.empty(0, np.int64)
            self.selectionChanged.emit()
            if self.gallery.kind == "selection":
                self.gallery.show(np.empty(0, np.int64), "", None, "empty")

    def show_selection(self) -> None:
        n = len(self.selection)
        title = f"Selection · {n:,} object{'s' if n != 1 else ''}" if n else ""
        self.gallery.show(self.selection, title, None, "selection" if n else "empty")

    def find_similar(self, k: int = 24) -> None:
        """The ``k`` objects most similar to the selection or to the inspected object, in the
        gallery (:class:`~.similar_search.SimilarSearch`)."""
        self.similar.find(k)

    # -- export ------------------------------------------------------------------------------------
    def export(self, path: str | Path, fmt: str | None = None, subset: np.ndarray | None = None) -> bool:
        """Write the ranked list (all objects, or ``subset``) on the current labels, as
        ``galexplorer export`` does (:meth:`.output_jobs.OutputJobs.export`)."""
        return self.outputs.export(path, fmt, subset)

    # -- what to show --------------------------------------------------------------------------------
    def score_array(self, name: str) -> np.ndarray:
        values = self._scores.get(name)
        if values is None:
            values = np.asarray(self.store.score(name))
            self._scores[name] = values
        return values

    def table_columns(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The candidates table: the columns of :func:`~galexplorer.active.ranking.ranked_table`
        (the ranked CSV's), in store order, with the labels and the ranking as they are now;
        and the ranking, best first. Nothing is copied per row; ids and catalogue columns are
        the store's on-disk columns (the table reads the rows it shows)."""
        from ..active.ranking import ranked_columns

        s, ses = self.state, self.session
        n = ses.n
        nan = np.full(n, np.nan, np.float32)
        scores = {name: self.score_array(name) for name in ("anomaly", "cluster") if name in self._scores}
        cols = ranked_columns(
            self.store, ses.rank if ses.rank is not None else np.arange(1, n + 1, dtype=np.int32),
            ses.labels, ses.n_labellers, ses.disputed, ses.excluded,
            s.mean if s is not None else nan, s.std if s is not None else nan,
            s.acquisition if s is not None else nan, scores, on_demand=True)
        order = ses.ranking if ses.ranking is not None else np.arange(n, dtype=np.int64)
        return cols, order

    def describe(self, i: int) -> tuple[str, list[tuple[str, str]]]:
        """Id and key values of object ``i`` for the hover card (:class:`~.object_text.ObjectText`)."""
        return self.text.describe(i)

    def details(self, i: int) -> list[tuple[str, object]]:
        """Rows of the inspector's table for object ``i``."""
        return self.text.details(i)

    def position(self, i: int) -> tuple[float, float]:
        return float(self.store.values_at("ra", [i])[0]), float(self.store.values_at("dec", [i])[0])

    def counters(self) -> dict[str, object]:
        ses = self.session
        return {"objects": ses.n, "scored": ses.n_labelled, "yours": ses.n_mine,
                "queue": ses.batch_left(),
                "since_refit": ses.since_refit, "batch": ses.batch_size,
                "model": "refitting…" if self.refits.busy else
                "stopped (Ctrl+R tries again)" if self.model.given_up else
                (self.state.description if self.state is not None else "starting…")}


def _describe_events(evs) -> str:
    kinds = {e.kind for e in evs}
    if len(evs) == 1:
        e = evs[0]
        what = {"score": f"score {e.score}", "note": "note", "exclude": "exclusion",
                "include": "inclusion"}.get(e.kind, e.kind)
        return f"{what} of {e.object_id}"
    return f"{len(evs)} {'/'.join(sorted(kinds))} events"

