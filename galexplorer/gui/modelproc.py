"""The active-learning model in a process of its own (no Qt here).

Refits, similarity searches and exports are NumPy/SciPy work that, run in a thread of the
explorer, compete with the window for Python's interpreter lock: measured here, a GP refit of
10^5 objects in a thread stalled the window for 100–700 ms at a time. In a child process the
window keeps its interpreter to itself; the child also runs at a lower scheduling priority.

The child opens the store and its label journal (read-only: it sees every label the window
has committed), keeps the learning features, the latest fit (the GP warm start), the fit the
window shows (for "Why here") and the similarity index between requests, and calls the same
library functions as the command line: :class:`~galexplorer.active.loop.ActiveLoop`,
:func:`~galexplorer.active.ranking.ranked_table`, :func:`~galexplorer.export.write_ranked`,
:func:`~galexplorer.active.explain.explain`, :class:`~galexplorer.explore.similarity.SimilarityIndex`.
The child is a fresh interpreter (``python -m galexplorer.gui.modelproc``); requests and
answers travel over a socket pair between these two processes only, as
``multiprocessing.connection`` messages (NumPy arrays and plain values; nothing is stored).
When the window's process ends — closed, crashed or killed — the child reads end-of-file and
exits.

When the child ends instead — killed (``kill -9``, the out-of-memory killer), crashed, or a bug
raised inside it — the request fails with :class:`ModelProcessError` and the next request starts
a fresh child (the labels are the journal's, which only the window writes: none is lost). A
child that fails :data:`MAX_FAILURES_IN_A_ROW` times without a successful fit between is not
restarted again until :meth:`ModelProcess.restart` (the window's Ctrl+R) says so.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import fields
from pathlib import Path

import numpy as np

from .. import progress
from ..errors import GalexplorerError

log = logging.getLogger(__name__)

COMPLETE_STD_FLOPS = 2e10   # below this N·n² the exact std of every object comes with each fit
CHILD_NICE = 5
MAX_FAILURES_IN_A_ROW = 3   # then the child is not restarted until the user asks (Ctrl+R)
#: tests and benchmarks: a file of faults, one a line ("raise", "exit", "hang"); each fit in the
#: model's process takes the first line and acts it out before fitting (see :func:`_injected_fault`)
FAULT_ENV = "GALEXPLORER_MODEL_FAULT"


class ModelProcessError(GalexplorerError):
    """The model's process stopped or could not start.

    Attributes:
        reason: the message without its hint ("the model's process stopped (killed by SIGKILL)").
        given_up: it failed :data:`MAX_FAILURES_IN_A_ROW` times in a row and is not restarted.
    """

    def __init__(self, message: str, hint: str | None = None, given_up: bool = False):
        super().__init__(message, hint=hint)
        self.reason = message
        self.given_up = given_up


def _injected_fault() -> None:
    """Act out the first fault listed in the file named by ``$GALEXPLORER_MODEL_FAULT`` (tests
    and the soak benchmark use it; unset, this does nothing): "raise" raises a RuntimeError,
    "exit" ends the process at once, "hang" waits until the process is killed."""
    path = os.environ.get(FAULT_ENV)
    if not path:
        return
    try:
        lines = Path(path).read_text().split()
    except OSError:
        return
    if not lines:
        return
    Path(path).write_text("\n".join(lines[1:]))
    fault = lines[0]
    log.warning("injected fault in the model's process: %s", fault)
    if fault == "raise":
        raise RuntimeError("injected fault")
    if fault == "exit":
        os._exit(3)
    if fault == "hang":
        while True:
            time.sleep(1)


# -- the child ------------------------------------------------------------------------------------

class ModelServer:
    """What the child process does for each request (also usable in-process, for tests)."""

    def __init__(self, store_path: str | Path):
        from ..labels import LabelJournal
        from ..store import EmbeddingStore

        self.store = EmbeddingStore(store_path)
        self.journal = LabelJournal.for_store(store_path, readonly=True)
        self.loop = None
        self.result = None
        self.shown = None       # the latest ``fit`` request's result: what the window shows
        self.inputs: tuple | None = None
        self.similarity = None

    def close(self) -> None:
        self.journal.close()
        self.store.close()

    def handle(self, kind: str, args: dict):
        """Answer one request; ``kind`` is a key of :data:`REQUESTS` (anything else is a bug)."""
        method = REQUESTS.get(kind)
        if method is None:
            raise RuntimeError(f"unknown request {kind!r}")
        return method(self, **args)

    def _fit(self, config: dict, labelled, labels, excluded):
        from ..active.loop import ActiveLoop, LoopConfig
        from ..active.portfolio import load_state

        cfg = LoopConfig.from_dict(config)
        if self.loop is None:
            self.loop = ActiveLoop(self.store, cfg)
        elif self.loop.config != cfg:
            same_features = self.loop.config.features_key() == cfg.features_key()
            self.loop = ActiveLoop(self.store, cfg, features=self.loop.features if same_features else None,
                                   unit_vectors=self.loop.unit_vectors)
        if self.loop.portfolio_state is None:   # the portfolio resumes from the journal's session state
            self.loop.restore_portfolio(load_state(self.journal))
        previous = self.result if self.result is not None and self.result.scorer == cfg.scorer else None
        result = self.loop.fit(labelled, labels, excluded, previous=previous)
        self.result = result
        self.inputs = (config, np.asarray(labelled).tobytes(), np.asarray(labels).tobytes(),
                       np.asarray(excluded).tobytes())
        return result

    def _current(self, config, labelled, labels, excluded):
        """The latest result if it was fitted on exactly these inputs, else a new fit."""
        key = (config, np.asarray(labelled).tobytes(), np.asarray(labels).tobytes(), np.asarray(excluded).tobytes())
        if self.result is None or self.inputs != key:
            return self._fit(config, labelled, labels, excluded)
        return self.result

    def fit(self, config: dict, labelled, labels, excluded) -> dict:
        """Fit, choose the next batch; returns the :class:`~.session.ModelState` fields."""
        from ..active.session import model_state

        _injected_fault()
        result = self._fit(config, labelled, labels, excluded)
        # above PREFILTER_MIN_ROWS the batch came from the pre-filter and most objects hold the
        # low-rank mean; the window shows what the export will say, so the exact mean comes first
        # (one streamed pass, here in the model process: the window keeps responding)
        result.complete_mean()
        if len(result.mean) * max(result.n_labels, 1) ** 2 <= COMPLETE_STD_FLOPS:
            result.complete_std()   # cheap here: every object gets its exact uncertainty
        state = model_state(result)
        self.shown = result
        return {f.name: getattr(state, f.name) for f in fields(state)}

    def export(self, config: dict, labelled, labels, excluded, path: str, fmt: str | None,
                  subset=None, with_order: bool = False) -> tuple:
        """The ranked list on the current labels, written as ``galexplorer export`` writes it;
        with ``with_order``, the store index of each row written comes third."""
        from ..active.ranking import RankedTable, ranked_table
        from ..export import write_ranked

        result = self._current(config, labelled, labels, excluded)
        result.complete_std()
        table = ranked_table(self.store, result, self.journal)
        order = np.asarray(result.order, np.int64)
        if subset is not None:
            keep = np.isin(order, np.asarray(subset, np.int64))
            table = RankedTable({k: v[keep] for k, v in table.columns.items()}, dict(table.meta))
            table.meta["subset"] = f"{int(keep.sum())} objects chosen in the explorer"
            order = order[keep]
        out = write_ranked(table, path, fmt)
        return (str(out), len(table), order) if with_order else (str(out), len(table))

    def similar(self, rows, k: int):
        """The ``k`` objects most similar to ``rows`` (their mean), best first."""
        from ..explore.similarity import index_for_store

        if self.similarity is None:   # the store's faiss index when embed built one, else exact
            self.similarity = index_for_store(self.store)
        idx, sim = self.similarity.query(np.asarray(rows, np.int64), k=int(k), exclude_query=True)
        return idx, sim

    def explain(self, row: int, labelled, labels, top: int) -> dict | None:
        """Why ``row`` ranks where it does (:func:`~galexplorer.active.explain.explain`) by the
        fit the window shows, as plain values: the :class:`~galexplorer.active.explain.Explanation`
        fields (arrays of one row) with ``scorer`` and ``n_labels``. None when the window's fit
        (its ``labelled``, ``labels``) is not the latest ``fit`` here: a newer one is on its way
        to the window, which asks again when it lands."""
        from ..active.explain import explain

        r = self.shown
        if r is None or not (np.array_equal(r.labelled, np.asarray(labelled, np.int64))
                             and np.array_equal(r.labels, np.asarray(labels, np.float32))):
            return None
        ex = explain(r, self.loop.learned_features(r), self.loop.anomaly_prior(), np.array([int(row)], np.int64), int(top))
        return {"scorer": str(r.scorer), "n_labels": int(r.n_labels),
                **{f.name: getattr(ex, f.name) for f in fields(ex)}}

    def ping(self) -> int:
        return os.getpid()


#: every request the model process answers: the wire name and the server's method (the
#: client, :class:`ModelProcess`, has one typed method for each)
REQUESTS = {"fit": ModelServer.fit, "export": ModelServer.export, "similar": ModelServer.similar,
            "explain": ModelServer.explain, "ping": ModelServer.ping}


def release_free_memory() -> None:
    """Give the memory freed by a request back to the system (glibc keeps it in its arenas,
    one per thread that allocated; a long session's refits, each with its own worker threads,
    otherwise creep upward: 275 → 338 MiB over 60 identical kNN refits, flat at 262 with it).
    The window calls it too, before each refit (:meth:`ModelProcess.fit`)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import ctypes.util

        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc (musl): nothing to do
        pass


def serve(conn, store_path: str) -> None:
    """The child's main loop: answer requests until told to stop or the window goes away."""
    try:
        os.nice(CHILD_NICE)   # the window's process comes first when the cores are busy
    except (AttributeError, OSError):
        pass
    try:
        server = ModelServer(store_path)
    except Exception as exc:  # reported on the first request
        server, startup_error = None, exc
    else:
        startup_error = None
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):   # the window's process is gone (closed or killed)
                break
            if msg is None:
                break
            kind, args = msg

            def report(stage: str, done: int, total: int | None) -> None:
                conn.send(("progress", stage, int(done), None if total is None else int(total)))

            try:
                if server is None:
                    raise startup_error
                with progress.reporting_to(report):   # the window's progress bar follows the work
                    answer = ("ok", server.handle(kind, args))
            except GalexplorerError as exc:
                answer = ("error", type(exc).__name__, str(exc))
            except MemoryError:
                answer = ("error", "GalexplorerError", "out of memory in the model's process")
            except Exception as exc:  # a bug: the window shows one line, the log has the traceback
                answer = ("bug", f"{type(exc).__name__}: {exc}", traceback.format_exc())
            try:
                conn.send(answer)
            except (BrokenPipeError, OSError):
                break
            release_free_memory()
    finally:
        if server is not None:
            server.close()
        conn.close()


# -- the parent -----------------------------------------------------------------------------------

_live: set[int] = set()   # pids of running model processes (tests check none is left behind)


def live_processes() -> list[int]:
    """Process ids of the model processes still running."""
    return sorted(_live)


def _start_child(store_path: str):
    """A fresh ``python -m galexplorer.gui.modelproc`` connected by a socket pair.

    A new interpreter rather than ``multiprocessing``: the child then never re-imports the
    parent's ``__main__`` (a script without a ``__name__`` guard, code read from stdin),
    never inherits Qt's state, and starts the same way on every platform.
    """
    import socket
    import subprocess
    from multiprocessing.connection import Connection

    if not hasattr(socket, "socketpair") or sys.platform == "win32":
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(child, store_path), name="galexplorer-model", daemon=True)
        proc.start()
        child.close()
        return proc, parent
    mine, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "galexplorer.gui.modelproc", str(theirs.fileno()), store_path],
                                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
    finally:
        theirs.close()
    return proc, Connection(mine.detach())


def _alive(proc) -> bool:
    return proc.is_alive() if hasattr(proc, "is_alive") else proc.poll() is None


def _how_it_ended(proc) -> str:
    """"killed by SIGKILL", "exit code 3": how a child that closed its end of the pipe ended."""
    if proc is None:
        return "not running"
    _wait(proc, 1)     # it closed the pipe as it died: give the system a moment to reap it
    code = getattr(proc, "exitcode", None) if hasattr(proc, "exitcode") else proc.poll()
    if code is None:
        return "it closed the connection"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _wait(proc, timeout: float) -> None:
    if hasattr(proc, "join"):
        proc.join(timeout)
    else:
        import subprocess

        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass


class ModelProcess:
    """The window's handle on the model's process: started on first use, restarted after a
    crash, stopped by :meth:`close`. :meth:`call` blocks the calling (worker) thread while the
    child works; calls are serialised.

    A child that dies (killed, crashed) or raises an unexpected exception (a bug: its state may
    be half-updated) is replaced by a fresh one at the next call. After
    :data:`MAX_FAILURES_IN_A_ROW` such failures without a successful fit between, no new child
    is started until :meth:`restart`.

    Attributes:
        failures: failures since the last successful fit.
        given_up: ``failures`` reached the limit; calls fail at once until :meth:`restart`.
        starts: children started so far.

    Raises:
        GalexplorerError (subclass as raised in the child): bad labels, a store without
            features, a file that cannot be written.
        ModelProcessError: the process died or failed (a new one starts at the next call,
            unless ``given_up``).
    """

    def __init__(self, store_path: str | Path):
        self.store_path = str(store_path)
        self._proc = None
        self._conn = None
        self._lock = threading.Lock()
        # held only while the child starts (never during a request), so close() can tell for
        # sure whether a child exists: without it, a close() racing a first request's start
        # left a child running (seen when a window reopened a store at once)
        self._start_lock = threading.Lock()
        self._closed = False
        self.failures = 0
        self.given_up = False
        self.starts = 0

    def _ensure(self) -> None:
        if self._proc is not None and _alive(self._proc):
            return
        with self._start_lock:
            if self._closed:
                raise ModelProcessError("the model's process was stopped")
            if self.given_up:
                raise ModelProcessError(f"the model's process stopped {self.failures} times in a row and is "
                                        "not restarted", given_up=True,
                                        hint="your labels are saved; press Ctrl+R (Model > Refit now) to try "
                                             "again, or reopen the store")
            self._drop()
            try:
                self._proc, self._conn = _start_child(self.store_path)
            except OSError as exc:
                raise self._failed(ModelProcessError(
                    f"the model's process could not start ({exc.strerror or exc})",
                    hint="a new one starts at the next request; your labels are saved")) from None
            self.starts += 1
            _live.add(self._proc.pid)

    def restart(self) -> None:
        """Allow new children again after :attr:`given_up` (the user asked: Ctrl+R)."""
        self.failures = 0
        self.given_up = False

    def _failed(self, exc: ModelProcessError) -> ModelProcessError:
        """Count one failure of the child; the error to raise for it (``exc``, or one that says
        the child is not restarted when this was one failure too many)."""
        if self._closed:
            return ModelProcessError("the model's process was stopped")
        self.failures += 1
        if self.failures < MAX_FAILURES_IN_A_ROW:
            log.warning("%s (%d in a row); a new one starts at the next request", exc.reason, self.failures)
            return exc
        self.given_up = True
        log.error("%s; %d times in a row: not restarted", exc.reason, self.failures)
        return ModelProcessError(f"{exc.reason}; it stopped {self.failures} times in a row and is not restarted",
                                 given_up=True,
                                 hint="your labels are saved; press Ctrl+R (Model > Refit now) to try again, "
                                      "or reopen the store; if it keeps stopping, the store may be too large "
                                      "for the memory")

    def call(self, kind: str, **args):
        """Send one request and wait for its answer (use the typed methods below)."""
        with self._lock:
            self._ensure()
            bars: dict[str, progress.Bar] = {}
            try:
                self._conn.send((kind, args))
                while True:
                    answer = self._conn.recv()
                    if answer[0] != "progress":
                        break
                    # re-told through galexplorer.progress, so the caller's progress callback
                    # (the window's bar) sees the child's stages
                    _, stage, done, total = answer
                    bar = bars.get(stage)
                    if bar is None:
                        bar = bars[stage] = progress.Bar(stage, total)
                    bar.update(done - bar.done)
            except (EOFError, OSError, BrokenPipeError):
                ended = _how_it_ended(self._proc)
                self._drop()
                raise self._failed(ModelProcessError(
                    f"the model's process stopped ({ended})",
                    hint="a new one starts at the next request; your labels are saved")) from None
            finally:
                for bar in bars.values():
                    bar.close()
            if answer[0] == "bug":
                # its state may be half-updated (a fit cut short): a fresh child is safer
                log.error("the model's process failed:\n%s", answer[2])
                self._drop()
                raise self._failed(ModelProcessError(
                    f"the model's process failed ({answer[1]})",
                    hint="a new one starts at the next request; your labels are saved"))
            if answer[0] == "ok" and kind == "fit":
                self.failures = 0
        if answer[0] == "ok":
            return answer[1]
        from .. import errors

        cls = getattr(errors, answer[1], GalexplorerError)
        raise (cls if isinstance(cls, type) and issubclass(cls, GalexplorerError) else GalexplorerError)(answer[2])

    # -- one typed method per request ---------------------------------------------------------------
    def fit(self, config, labelled: np.ndarray, labels: np.ndarray, excluded: np.ndarray):
        """Refit on these labels and choose the next batch.

        Args:
            config: a :class:`~galexplorer.active.loop.LoopConfig`.

        Returns:
            :class:`~galexplorer.active.session.ModelState`.
        """
        from ..active.session import ModelState

        # the window's side: the last refit's (N,) arrays and the views' redraws were freed when
        # its result landed; hand their pages back here, in the worker thread, not in the UI's
        release_free_memory()
        return ModelState(**self.call("fit", config=config.to_dict(), labelled=labelled, labels=labels,
                                      excluded=excluded))

    def export(self, config, labelled: np.ndarray, labels: np.ndarray, excluded: np.ndarray, path: str | Path,
               fmt: str | None = None, subset: np.ndarray | None = None, with_order: bool = False) -> tuple:
        """Write the ranked list (all objects or ``subset``) as ``galexplorer export`` does.

        Returns:
            ``(path written, rows)``; with ``with_order``, ``(path, rows, order)``: the (rows,)
            store index of each row written, in the file's order.
        """
        return self.call("export", config=config.to_dict(), labelled=labelled, labels=labels, excluded=excluded,
                         path=str(path), fmt=fmt, subset=None if subset is None else np.asarray(subset, np.int64),
                         with_order=bool(with_order))

    def similar(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` objects most similar to ``rows``: ``(indices, cosine similarities)``, best first."""
        return self.call("similar", rows=np.asarray(rows, np.int64), k=int(k))

    def explain(self, row: int, labelled: np.ndarray, labels: np.ndarray, top: int | None = None):
        """Why ``row`` ranks where it does, by the fit on ``labelled``/``labels`` (a
        :class:`~galexplorer.active.session.ModelState`'s): ``(Explanation, scorer, n_labels)``,
        or None when the model's process holds a newer fit than that (ask again when it lands).

        Raises:
            ConfigError: a row outside the store.
        """
        from ..active.explain import TOP_PULLS, Explanation

        answer = self.call("explain", row=int(row), labelled=np.asarray(labelled, np.int64),
                           labels=np.asarray(labels, np.float32), top=int(top or TOP_PULLS))
        if answer is None:
            return None
        scorer, n_labels = answer.pop("scorer"), answer.pop("n_labels")
        return Explanation(**answer), scorer, n_labels

    def ping(self) -> int:
        """The child's process id (starting it if needed)."""
        return self.call("ping")

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            _wait(self._proc, 1)
            if _alive(self._proc):
                self._proc.kill()
                _wait(self._proc, 2)
            _live.discard(self._proc.pid)
        self._proc = self._conn = None

    @property
    def closed(self) -> bool:
        """:meth:`close` was called: no child starts any more."""
        return self._closed

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self, timeout: float = 10.0) -> None:
        """Stop the child. A request still running is abandoned (the child only reads, and
        writes files atomically), so closing the window never waits for a long refit."""
        with self._start_lock:
            self._closed = True
            proc, conn = self._proc, self._conn
        if proc is None:
            return
        if self._lock.acquire(blocking=False):
            try:
                conn.send(None)
                _wait(proc, timeout)
            except (OSError, BrokenPipeError):
                pass
            finally:
                self._lock.release()
        if _alive(proc):
            proc.kill()      # a worker thread waiting for an answer gets EOF and ends
            _wait(proc, 2)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            _live.discard(proc.pid)
            self._proc = self._conn = None


def _child_main(argv: list[str]) -> int:
    from multiprocessing.connection import Connection

    fd, store_path = int(argv[0]), argv[1]
    serve(Connection(fd), store_path)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
