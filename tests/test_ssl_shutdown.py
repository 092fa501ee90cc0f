"""How a process leaves the process group: a barrier then destroy on success, destroy alone on
an error, and the default group's gloo threads joined before the interpreter finalizes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch.distributed as dist

from galexplorer.ssl import distributed, trainer


def _record_dist(monkeypatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
    monkeypatch.setattr(dist, "barrier", lambda *a, **k: calls.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda *a, **k: calls.append("destroy"))
    return calls


def test_shutdown_waits_for_the_others_then_destroys(monkeypatch):
    calls = _record_dist(monkeypatch)
    distributed.shutdown()
    assert calls == ["barrier", "destroy"]


def test_shutdown_on_an_error_path_destroys_without_a_barrier(monkeypatch):
    calls = _record_dist(monkeypatch)
    distributed.shutdown(synchronise=False)
    assert calls == ["destroy"]


@pytest.mark.parametrize("fails", [False, True])
def test_train_leaves_the_group_on_every_exit_path(monkeypatch, tmp_path, fails):
    seen: list[bool] = []
    monkeypatch.setattr(distributed, "shutdown", lambda synchronise=True: seen.append(synchronise))

    def fake_train(*args):
        if fails:
            raise RuntimeError("a step failed")
        return "report"

    monkeypatch.setattr(trainer, "_train", fake_train)
    if fails:
        with pytest.raises(RuntimeError, match="a step failed"):
            trainer.train(tmp_path / "cut.h5", tmp_path / "run", trainer.TrainConfig(device="cpu"))
    else:
        assert trainer.train(tmp_path / "cut.h5", tmp_path / "run", trainer.TrainConfig(device="cpu")) == "report"
    # exactly once; no barrier after an error (the other process may never reach it)
    assert seen == [not fails]


_RANK_SCRIPT = """
import os, torch
from galexplorer.ssl import distributed
def runloops():
    return sum(open(f"/proc/self/task/{t}/comm").read().strip() == "pt_gloo_runloop"
               for t in os.listdir("/proc/self/task"))
info = distributed.init_distributed("cpu")
group = distributed.data_parallel_group()
model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 3), process_group=group)
model(torch.randn(4, 3)).sum().backward()
distributed.all_gather_object(info.rank)
distributed.gather_with_grad(torch.ones(2, 3))
before = runloops()
del model, group  # nothing of ours may hold a group past shutdown
distributed.shutdown()
print(f"rank {info.rank}: {before} {runloops()}", flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="thread names are read from /proc")
def test_shutdown_joins_the_default_groups_threads(tmp_path):
    """Under torchrun: DDP's own group outlives shutdown (torch keeps it), but the default group,
    whose collectives carry Python tensors, is freed and its worker threads joined."""
    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={port}", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    counts = sorted(line.split(": ")[1] for line in proc.stdout.splitlines() if line.startswith("rank "))
    assert len(counts) == 2
    for line in counts:
        before, after = map(int, line.split())
        if before == 0:
            pytest.skip("this torch does not name its gloo worker threads")
        # two groups' workers before, the DDP group's alone after
        assert before == 2 * after, line
