"""Connecting to a Dask cluster for the heavy stages (``--cluster ADDRESS``; see docs/scaling.md).

``ADDRESS`` is one of

- ``tcp://host:port`` (or ``tls://``, ``ucx://``): a running ``dask scheduler``;
- a path to a scheduler file (``dask scheduler --scheduler-file FILE``, as dask-jobqueue and
  ``dask-mpi`` write them);
- ``local:N``: a scheduler and N worker processes with one thread each, on this machine, all
  started (and stopped) by :func:`connect` as child processes (:mod:`.local_cluster`).

:func:`connect` opens the client (and starts the ``local:N`` processes), then checks that every worker imports
galexplorer and can read the files the stage needs; each failure is a one-line
:class:`~galexplorer.errors.ConfigError` (CLI exit 2), never a traceback from Dask.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path

from .. import progress
from ..errors import ConfigError

_RESENDS = 3          # times map_blocks sends its shared inputs again after a lost worker took them

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10
#: how long closing a client may take (distributed's default is twice its connect timeout: two
#: minutes for a local cluster, a Ctrl+C that hangs); past it the client is left and the local
#: processes are stopped anyway
CLOSE_TIMEOUT_S = 10


def parse_address(address: str) -> tuple[str, object]:
    """``("local", n_workers)``, ``("file", path)`` or ``("tcp", address)``.

    Raises:
        ConfigError: ``local:`` without a positive worker count, or a string that is neither an
            address nor an existing scheduler file.
    """
    address = str(address).strip()
    if address.startswith("local:"):
        n = address.split(":", 1)[1]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError(f"--cluster {address}: local:N needs a positive number of workers, e.g. local:4")
        return "local", int(n)
    if "://" in address:
        return "tcp", address
    if Path(address).is_file():
        _check_scheduler_file(address)
        return "file", address
    if address.endswith((".json", ".yaml")) or os.sep in address:
        raise ConfigError(f"--cluster {address}: no such scheduler file",
                          hint="start the scheduler with `dask scheduler --scheduler-file FILE` (or dask-jobqueue, "
                          "dask-mpi) on a filesystem this machine mounts, or give tcp://host:port")
    raise ConfigError(f"--cluster {address}: neither a scheduler address (tcp://host:port), an existing "
                      "scheduler file, nor local:N", hint="e.g. --cluster tcp://node1:8786 or --cluster local:4")


def _check_scheduler_file(path: str) -> None:
    """A scheduler file is JSON with the scheduler's ``address`` (Dask only asserts it).

    Raises:
        ConfigError: unreadable, not JSON, or no address in it.
    """
    import json

    try:
        info = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"--cluster: not a Dask scheduler file ({type(exc).__name__})", path,
                          "give the file `dask scheduler --scheduler-file` writes, or tcp://host:port") from None
    if not isinstance(info, dict) or not isinstance(info.get("address"), str):
        raise ConfigError("--cluster: not a Dask scheduler file (no scheduler address in it)", path,
                          "give the file `dask scheduler --scheduler-file` writes, or tcp://host:port")


def _worker_check(paths: list[str]) -> str | None:
    """Runs on each worker: None when galexplorer imports and every path is readable, else why not."""
    try:
        import galexplorer  # noqa: F401
    except ImportError:
        return "galexplorer is not installed"
    for p in paths:
        if not os.access(p, os.R_OK):
            return f"cannot read {p}"
    return None


def check_workers(client, paths: list[str | Path] = ()) -> int:
    """Check that every worker imports galexplorer and can read ``paths``; return the worker count.

    Raises:
        ConfigError: no workers, or a worker that fails a check (the first one is named).
    """
    workers = list(client.scheduler_info().get("workers", {}))
    if not workers:
        raise ConfigError("the Dask cluster has no workers", hint="start workers (dask worker ADDRESS) and rerun")
    try:
        answers = client.run(_worker_check, [str(Path(p).resolve()) for p in paths])
    except Exception as exc:        # noqa: BLE001 — a worker could not even run the check
        # a worker without galexplorer cannot unpickle the check: Dask re-raises that as a plain
        # Exception whose text holds the worker's ModuleNotFoundError
        text = str(exc)
        missing = re.search(r"No module named '([\w.]+)'", text)
        if isinstance(exc, ModuleNotFoundError) or missing:
            name = getattr(exc, "name", None) or (missing.group(1) if missing else "galexplorer")
            raise ConfigError(f"a Dask worker cannot import {name}",
                              hint="install galexplorer (the same version) in the workers' environment") from None
        first = (text.strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ConfigError(f"a Dask worker failed the start-up check ({first})",
                          hint="look at the worker's log; is its environment the client's?") from None
    for worker, why in sorted(answers.items()):
        if why is not None:
            hint = ("install galexplorer in the workers' environment" if "installed" in why else
                    "put the files on a filesystem every worker mounts at the same path")
            raise ConfigError(f"Dask worker {worker}: {why}", hint=hint)
    return len(workers)


def _closing(stack: contextlib.ExitStack, client):
    """``client``, closed when ``stack`` unwinds within :data:`CLOSE_TIMEOUT_S` (a close that
    times out is left to the interpreter's exit, with a log line)."""
    def close() -> None:
        try:
            client.close(timeout=CLOSE_TIMEOUT_S)
        except (TimeoutError, OSError) as exc:
            log.warning("the Dask client did not close within %d s (%s): left", CLOSE_TIMEOUT_S, exc)

    stack.callback(close)
    return client


@contextlib.contextmanager
def connect(address: str, paths: list[str | Path] = ()) -> Iterator[object]:
    """A checked ``distributed.Client`` for ``address`` (see the module doc); closed on exit,
    and for ``local:N`` its scheduler and workers stopped (no process left, whatever the exit).

    Raises:
        ConfigError: dask.distributed not installed, bad address, scheduler unreachable, or a
            worker that fails :func:`check_workers`.
    """
    kind, value = parse_address(address)
    try:
        import distributed
    except ImportError:
        raise ConfigError("--cluster needs dask.distributed", hint='pip install "dask[distributed]"') from None
    with contextlib.ExitStack() as stack:
        try:
            if kind == "local":      # scheduler and workers in child processes: not in the client's memory
                from .local_cluster import START_TIMEOUT_S, local_processes

                scheduler = stack.enter_context(local_processes(value))
                client = _closing(stack, distributed.Client(scheduler, timeout=START_TIMEOUT_S))
                try:
                    client.wait_for_workers(value, timeout=START_TIMEOUT_S)
                except TimeoutError:
                    raise ConfigError(f"--cluster {address}: the Dask workers did not start within "
                                      f"{START_TIMEOUT_S} s", hint="is the machine overloaded? try again") from None
            elif kind == "file":
                client = _closing(stack, distributed.Client(scheduler_file=value, timeout=CONNECT_TIMEOUT_S))
            else:
                client = _closing(stack, distributed.Client(value, timeout=CONNECT_TIMEOUT_S))
        except (OSError, TimeoutError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise ConfigError(f"--cluster {address}: cannot reach the Dask scheduler ({first})",
                              hint="check the address and that `dask scheduler` is running") from None
        check_workers(client, paths)
        yield client


def describe(client) -> str:
    """``"<scheduler address>, N workers"`` for the store's config and ``galexplorer info``."""
    n = len(client.scheduler_info().get("workers", {}))
    return f"{client.scheduler.address}, {n} worker{'s' if n != 1 else ''}"


_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("galexplorer_cluster", default=None)


@contextlib.contextmanager
def scoring_on(client) -> Iterator[object]:
    """Within the block, the stages that stream over every object (the GP's mean and std of all
    N, the export's table) run in row blocks on ``client``'s workers (:func:`active_client`).
    ``rank``/``export``/``simulate --cluster`` wrap their work in it; the refit stays here."""
    token = _ACTIVE.set(client)
    try:
        yield client
    finally:
        _ACTIVE.reset(token)


def active_client():
    """The client of the enclosing :func:`scoring_on` block, or None (run in this process)."""
    return _ACTIVE.get()


def worker_threads() -> int:
    """Threads of the Dask worker this runs on (1 outside a worker): the block's own threads."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return 1


def map_blocks(client, func: Callable, n_rows: int, block_rows: int, block_args: Callable[[int, int], tuple],
               shared: tuple = (), desc: str = "", unit: str = "obj") -> Iterator[tuple[int, int, object]]:
    """Run ``func(*shared, *block_args(a, b))`` for the row blocks ``a:b`` of ``n_rows`` on the
    workers; yield ``(a, b, result)`` in row order.

    At most two blocks per worker are in flight, so the client holds O(workers × block) of
    inputs and results whatever N is. ``shared`` are sent once (``client.scatter``, broadcast)
    and passed to every task as futures. A worker lost mid-block: Dask reruns the block; lost
    with the last copy of a shared input, the inputs are sent again and the blocks in flight
    resubmitted (up to ``_RESENDS`` times).

    Args:
        client: a ``distributed.Client``.
        func: a module-level function (it is pickled by reference: the workers import it).
        block_args: ``(a, b) -> tuple`` the block's own arguments, built here on the client.
        shared: objects every block needs (a fitted model's state).
        desc: progress-bar name ("" for none).
    """
    shared_f = [client.scatter(obj, broadcast=True, hash=False) for obj in shared]

    def submit(a: int, b: int):
        return client.submit(func, *shared_f, *block_args(a, b), pure=False)

    window = 2 * max(1, len(client.scheduler_info().get("workers", {})))
    starts = list(range(0, n_rows, max(1, int(block_rows))))
    pending: deque = deque()
    resent = 0
    try:
        with progress.Bar(desc, total=n_rows, unit=unit) if desc else contextlib.nullcontext() as bar:
            for i, a in enumerate(starts):
                b = min(a + block_rows, n_rows)
                pending.append((a, b, submit(a, b)))
                while pending and (len(pending) >= window or i == len(starts) - 1):
                    a0, b0, fut = pending[0]
                    try:
                        result = fut.result()
                    except CancelledError:
                        # Dask's memory manager keeps one copy of a broadcast input: a worker lost
                        # with it takes every block that needs it along. Send the inputs again and
                        # resubmit what is in flight (a few times; a closed client fails each time).
                        resent += 1
                        if resent > _RESENDS:
                            raise
                        for f in [*shared_f, *(f1 for _, _, f1 in pending)]:
                            f.cancel()
                        shared_f[:] = [client.scatter(obj, broadcast=True, hash=False) for obj in shared]
                        pending = deque((a1, b1, submit(a1, b1)) for a1, b1, _ in pending)
                        continue
                    pending.popleft()
                    fut.release()
                    if bar is not None:
                        bar.update(b0 - a0)
                    yield a0, b0, result
    finally:        # a failed block or an abandoned loop: nothing left running for it on the cluster
        for _, _, fut in pending:
            fut.cancel()
        for f in shared_f:
            f.release()


def _rows_digest(path: str, name: str, at: list[int]) -> str | None:
    """Runs on a worker (and on the client): a digest of the dataset's shape and of the rows
    ``at``, read from the file at ``path``; None when the worker cannot open it."""
    import h5py

    try:
        # the client holds the file open for writing: HDF5's lock would refuse a reader, and
        # the client writes nothing to it while the workers read (it flushed before asking)
        with h5py.File(path, "r", locking=False) as f:
            return _digest(f[name], at)
    except (OSError, KeyError, ValueError):
        return None


def _digest(dataset, at: list[int]) -> str:
    import hashlib

    import numpy as np

    h = hashlib.sha1(repr(tuple(dataset.shape)).encode())
    for i in at:
        h.update(np.ascontiguousarray(dataset[i:i + 1]).tobytes())
    return h.hexdigest()


def shared_rows(client, dataset) -> tuple[str, str] | None:
    """``(path, name)`` of an HDF5 ``dataset`` when every worker reads the same rows from it as
    this process (a shared filesystem, or ``local:N``), else None: the rows must then travel with
    each block from the client.

    The file is flushed (and synced, for network filesystems) first, so a store this process is
    still writing can be read by the workers; the caller must write nothing to it until they are
    done. A few rows (first, middle, last) and the shape are compared, by digest, on every worker.
    """
    f = dataset.file
    f.flush()
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        os.fsync(f.id.get_vfd_handle())
    path, name, n = str(Path(f.filename).resolve()), dataset.name, int(dataset.shape[0])
    at = sorted({0, n // 2, max(n - 1, 0)}) if n else []
    want = _digest(dataset, at)
    try:
        answers = client.run(_rows_digest, path, name, at)
    except Exception:       # noqa: BLE001 — a worker that cannot even answer: send the rows
        return None
    return (path, name) if answers and all(v == want for v in answers.values()) else None


def read_rows(path: str, name: str, a: int, b: int):
    """Runs on a worker: rows ``a:b`` of the dataset ``name`` in the HDF5 file ``path`` (opened
    without HDF5's lock: see :func:`shared_rows`)."""
    import h5py
    import numpy as np

    with h5py.File(path, "r", locking=False) as f:
        return np.asarray(f[name][a:b])


__all__ = ["parse_address", "check_workers", "connect", "describe", "scoring_on", "active_client",
           "worker_threads", "map_blocks", "shared_rows", "read_rows"]
