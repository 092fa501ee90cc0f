"""Long work off the UI thread: one job at a time, and a burst of requests runs only the latest.

The jobs are plain library functions (a refit, a similarity query, an export). While one runs,
new requests replace each other in a single pending slot; when the job ends its result is
delivered (by a queued Qt signal, in the UI thread) and the latest pending request starts.
The UI thread never waits for a job, except :meth:`LatestOnlyRunner.wait` for tests and for
shutting down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6 import QtCore

from .. import progress
from ..errors import GalexplorerError

log = logging.getLogger(__name__)


@dataclass
class Job:
    """A request: ``fn(*args)`` run in a worker thread, tagged for the caller."""

    fn: Callable[..., Any]
    args: tuple
    tag: Any
    seq: int


class LatestOnlyRunner(QtCore.QObject):
    """Run jobs one at a time in a worker thread, keeping only the latest pending request.

    Signals:
        started(object): a job with this tag started.
        progressed(str, int, int): stage, done, total (-1 when unknown) from
            :mod:`galexplorer.progress` inside the job.
        finished(object, object): tag and result of a job.
        failed(object, str): tag and a one-line message of a job that raised.
    """

    started = QtCore.Signal(object)
    progressed = QtCore.Signal(str, int, int)
    finished = QtCore.Signal(object, object)
    failed = QtCore.Signal(object, str)
    _done = QtCore.Signal(object, object, object)   # job, result, error (worker -> UI thread)

    def __init__(self, name: str = "worker", parent=None):
        super().__init__(parent)
        self.name = name
        self._lock = threading.Lock()
        self._pending: Job | None = None
        self._running: Job | None = None
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._closed = False
        self.runs = 0
        self._done.connect(self._on_done, QtCore.Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._running is not None or self._pending is not None

    def submit(self, fn: Callable[..., Any], *args, tag: Any = None) -> int:
        """Ask for ``fn(*args)``; replaces any request still waiting. Returns the request number."""
        with self._lock:
            if self._closed:
                return -1
            self._seq += 1
            job = Job(fn, args, tag, self._seq)
            if self._running is None:
                self._start(job)
            else:
                self._pending = job
        return job.seq

    def _start(self, job: Job) -> None:
        self._running = job
        self.runs += 1
        self._thread = threading.Thread(target=self._work, args=(job,), name=f"galexplorer-{self.name}",
                                        daemon=True)
        self.started.emit(job.tag)
        self._thread.start()

    def _work(self, job: Job) -> None:
        def report(stage: str, done: int, total: int | None) -> None:
            self.progressed.emit(stage, int(done), -1 if total is None else int(total))

        result, error = None, None
        t0 = time.perf_counter()
        try:
            with progress.reporting_to(report):
                result = job.fn(*job.args)
        except GalexplorerError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a job must not take the explorer down
            log.exception("%s job failed", self.name)
            error = f"internal error: {type(exc).__name__}: {exc}"
        log.debug("%s job %d took %.2f s", self.name, job.seq, time.perf_counter() - t0)
        self._done.emit(job, result, error)

    @QtCore.Slot(object, object, object)
    def _on_done(self, job: Job, result, error) -> None:
        if self._closed:
            return
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._running = None
            self._thread = None
            nxt = self._take_next()
        if error is None:
            self.finished.emit(job.tag, result)
        else:
            self.failed.emit(job.tag, error)
        if nxt is not None:
            with self._lock:
                self._start(nxt)

    def _take_next(self) -> Job | None:
        nxt, self._pending = self._pending, None
        return nxt

    def wait(self, timeout: float = 30.0) -> bool:
        """Process events until no job runs or waits (tests, shutdown). True when idle."""
        deadline = time.monotonic() + timeout
        app = QtCore.QCoreApplication.instance()
        while self.busy and time.monotonic() < deadline:
            if app is not None:
                app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.002)
        return not self.busy

    def shutdown(self, timeout: float = 60.0) -> None:
        """Drop the pending request and wait for the running job to end."""
        with self._lock:
            self._closed = True
            self._pending = None
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s job still running after %.0f s; leaving it", self.name, timeout)
        # deliver nothing further: the owner is going away
        with self._lock:
            self._running = None
            self._thread = None


class QueuedRunner(LatestOnlyRunner):
    """Run every job, one at a time, in the order asked (exports, SAMP sends: none may be
    dropped). A request beyond ``limit`` waiting ones is refused: :meth:`submit` returns -1.
    """

    def __init__(self, name: str = "worker", parent=None, limit: int = 8):
        super().__init__(name, parent)
        self.limit = int(limit)
        self._queue: deque[Job] = deque()

    @property
    def busy(self) -> bool:
        return self._running is not None or bool(self._queue)

    @property
    def waiting(self) -> int:
        """Requests waiting for the running one to end."""
        return len(self._queue)

    def submit(self, fn: Callable[..., Any], *args, tag: Any = None) -> int:
        with self._lock:
            if self._closed or len(self._queue) >= self.limit:
                return -1
            self._seq += 1
            job = Job(fn, args, tag, self._seq)
            if self._running is None:
                self._start(job)
            else:
                self._queue.append(job)
        return job.seq

    def _take_next(self) -> Job | None:
        return self._queue.popleft() if self._queue else None

    def shutdown(self, timeout: float = 60.0) -> None:
        with self._lock:
            self._queue.clear()
        super().shutdown(timeout)
