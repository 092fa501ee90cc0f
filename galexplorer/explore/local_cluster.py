"""``--cluster local:N``: a Dask scheduler and N one-thread workers in processes of their own.

Dask's ``LocalCluster`` runs its scheduler inside the client's process (~22 MB there at 10^6
objects, docs/scaling.md); here the scheduler (``dask scheduler``) and the workers (one ``dask
worker --nworkers N`` process, whose nannies start and restart the N worker processes) are
child processes, and the client only connects to them. They are stopped on leaving
:func:`local_processes`, however it is left (an error, Ctrl+C): SIGTERM, then SIGKILL after
``STOP_TIMEOUT_S``. On Linux each child also gets SIGTERM when the process that started it dies
(``PR_SET_PDEATHSIG``: tied to the thread that started them, so enter :func:`local_processes`
in the thread that runs the stages, as the CLI does), so a client killed with SIGKILL leaves no
scheduler or workers behind; a worker process whose nanny is gone exits by itself (Dask watches
its parent). The children run in a session of their own: Ctrl+C reaches only the client, which
then stops them in order.

The children inherit this process's ``sys.path`` (as ``PYTHONPATH``), as LocalCluster's spawned
workers do, so they import the same galexplorer and any module a task's function lives in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 10


def _die_with_parent() -> None:      # runs in the child between fork and exec
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)    # PR_SET_PDEATHSIG


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [p or os.getcwd() for p in sys.path]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _spawn(args: list[str], log_file: Path) -> subprocess.Popen:
    with open(log_file, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "dask", *args], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)


def _last_line(log_file: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [ln.strip() for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
        if lines:
            return lines[-1][:160]
    return "no output"


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM each child in turn (the workers before their scheduler), then SIGKILL one still
    there after ``STOP_TIMEOUT_S``."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            p.wait(STOP_TIMEOUT_S)
            log.debug("Dask process %d stopped in %.1f s", p.pid, time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            log.warning("Dask process %d did not stop within %d s: killed", p.pid, STOP_TIMEOUT_S)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)      # its own session: the worker processes too
            p.wait()


@contextlib.contextmanager
def local_processes(n_workers: int) -> Iterator[str]:
    """Start a scheduler and ``n_workers`` one-thread worker processes on this machine; yield the
    scheduler's address (the workers may still be connecting: ``Client.wait_for_workers``).

    Raises:
        ConfigError: the scheduler did not start (its last log line is named).
    """
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="galexplorer-dask-") as tmp:
        tmp_path = Path(tmp)
        scheduler_file = tmp_path / "scheduler.json"
        try:
            procs.append(_spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(scheduler_file)], tmp_path / "scheduler.log"))
            address = _wait_for_address(procs[0], scheduler_file, tmp_path / "scheduler.log")
            # workers first in the list: they are stopped before the scheduler they report to
            procs.insert(0, _spawn(["worker", address, "--nworkers", str(int(n_workers)), "--nthreads", "1",
                                    "--no-dashboard", "--host", "127.0.0.1"], tmp_path / "workers.log"))
            yield address
        finally:
            _stop(procs)


def _wait_for_address(proc: subprocess.Popen, scheduler_file: Path, log_file: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(f"--cluster local: the Dask scheduler exited at start ({_last_line(log_file)})",
                              hint='is dask[distributed] installed in this environment?')
        with contextlib.suppress(OSError, ValueError):
            address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
            if isinstance(address, str):
                return address
        time.sleep(0.05)
    raise ConfigError(f"--cluster local: the Dask scheduler did not start within {START_TIMEOUT_S} s "
                      f"({_last_line(log_file)})", hint="is the machine overloaded? try again")


__all__ = ["local_processes", "START_TIMEOUT_S", "STOP_TIMEOUT_S"]
