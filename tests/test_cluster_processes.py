"""``--cluster local:N`` runs its scheduler and workers as child processes (not in the client's
memory) and leaves none behind: after a run, after an error in it, after Ctrl+C, and after the
client is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from galexplorer.explore import cluster  # noqa: E402


def _alive(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def _double(x):
    return 2 * x


def test_local_cluster_runs_in_child_processes_and_leaves_none_after_a_run():
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with cluster.connect("local:2") as client:
        kids = [p for p in me.children(recursive=True) if p.pid not in before]
        commands = [" ".join(p.cmdline()) for p in kids]
        assert sum("dask scheduler" in c for c in commands) == 1, commands
        assert sum("dask worker" in c for c in commands) == 1, commands
        # the scheduler is not in this process: its address is a child's port
        assert not hasattr(client, "cluster") or client.cluster is None
        workers = client.run(os.getpid)
        assert len(workers) == 2 and os.getpid() not in workers.values()
        assert client.submit(_double, 21).result() == 42
    pids = [p.pid for p in kids] + list(workers.values())
    assert _gone_within(pids, 5) == []


def test_no_process_left_after_an_error_in_the_run():
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with pytest.raises(ZeroDivisionError), cluster.connect("local:1") as client:
        kids = [p for p in me.children(recursive=True) if p.pid not in before]
        pids = [p.pid for p in kids] + list(client.run(os.getpid).values())
        client.submit(lambda: 1 / 0).result()
    assert _gone_within(pids, 5) == []


# Ctrl+C as a terminal gives it: a suite started as a background job (`cmd &`) passes SIGINT on
# ignored, and Python then installs no KeyboardInterrupt handler; the child restores it
CHILD = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from galexplorer.explore import cluster
with cluster.connect("local:1") as client:
    pids = [os.getpid(), *client.run(os.getpid).values()]
    import psutil
    pids += [p.pid for p in psutil.Process().children(recursive=True)]
    print(" ".join(map(str, pids)), flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("how", [signal.SIGINT, pytest.param(signal.SIGKILL, marks=pytest.mark.slow)],
                         ids=["ctrl-c", "killed"])
def test_no_process_left_when_the_client_is_interrupted_or_killed(how):
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    try:
        line = proc.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) >= 4, line     # the client, its worker, the scheduler, the worker's nanny process
        os.kill(proc.pid, how)
        proc.wait(30)
        assert _gone_within(pids[1:], 20) == []
    finally:
        if proc.poll() is None:
            proc.kill()
