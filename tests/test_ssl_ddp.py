"""The distributed code path: ``torchrun --nproc_per_node=2 -m galexplorer train`` with gloo on CPU."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(*train_args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "galexplorer", "train", *train_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def _epochs(run) -> list[str]:
    with open(run / "metrics.csv") as f:
        return [r["epoch"] for r in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["simclr", "byol", "vicreg", "nnclr"])
def test_torchrun_two_processes_gloo(tmp_path, xdf_cutouts, method):
    cfg = tmp_path / "small.toml"
    cfg.write_text("proj_hidden = 64\nproj_dim = 32\npred_hidden = 64\nmonitor_objects = 16\n")
    run = tmp_path / "run"
    proc = _torchrun(str(xdf_cutouts), "-o", str(run), "--method", method, "--epochs", "1", "--batch-size", "8",
                     "--image-size", "16", "--device", "cpu", "--seed", "0", "--config", str(cfg))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (run / "encoder.pt").is_file() and (run / "checkpoint-latest.pt").is_file()
    # rank 0 alone wrote and reported: one summary, one metrics row, 48 stamps / 2 processes / 8 = 3 steps
    assert proc.stdout.count("trained 1/1 epochs") == 1
    with open(run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["step"] == "3" and float(rows[0]["loss"]) > 0
    assert json.loads((run / "encoder.json").read_text())["method"] == method
    assert "Traceback" not in proc.stderr
    import torch

    ck = torch.load(run / "checkpoint-latest.pt", weights_only=True)
    streams = ck["rng"]["augment_ranks"]
    assert len(streams) == 2 and not torch.equal(streams[0], streams[1])
    # both ranks end with identical weights (different data and views, one all-reduced gradient);
    # the checked fingerprint is that of the weights in the checkpoint
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.distributed import parameter_fingerprint
    from galexplorer.ssl.trainer import _build_model

    assert len(ck["replicas"]) == 2 and ck["replicas"][0] == ck["replicas"][1]
    model = _build_model(TrainConfig.from_dict(json.loads(ck["config"])), 3)
    model.load_state_dict(ck["model"])
    assert parameter_fingerprint(model) == ck["replicas"][0]
    if method == "byol":
        # --resume under torchrun: each process gets its own augmentation stream back
        proc = _torchrun(str(xdf_cutouts), "-o", str(run), "--resume", "--epochs", "2")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert _epochs(run) == ["1", "2"]
