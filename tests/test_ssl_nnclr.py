"""NNCLR (#22 item 4): the loss, the FIFO support queue, checkpoint resume and a 1-epoch run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from galexplorer.ssl.config import TrainConfig
from galexplorer.ssl.loss_nnclr import nearest_neighbours, nnclr_loss
from galexplorer.ssl.nnclr import SupportQueue

TINY = dict(method="nnclr", batch_size=16, image_size=16, device="cpu", proj_hidden=32, proj_dim=16,
            pred_hidden=32, queue_size=64, monitor_objects=32, stats_objects=32, seed=0, warmup_epochs=0)


def test_loss_properties():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(8, 16, generator=g)
    aligned = nnclr_loss(p * 3.0, p, 0.1)                  # scale-free: cosine similarity
    shuffled = nnclr_loss(p[torch.randperm(8, generator=g)], p, 0.1)
    assert aligned < shuffled and aligned >= 0
    assert math.isclose(float(nnclr_loss(torch.zeros(8, 16) + 1, torch.zeros(8, 16) + 1, 0.1)), math.log(8),
                        rel_tol=1e-5)                       # every candidate alike: log(B)
    with pytest.raises(ValueError, match="same shape"):
        nnclr_loss(p, p[:4])
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    got = nearest_neighbours(torch.tensor([[0.1, 2.0], [-3.0, 0.2]]), support)
    assert torch.equal(got, support[[1, 2]])
    z = torch.randn(3, 2, requires_grad=True)
    assert torch.equal(nearest_neighbours(z, support[:0]), z.detach())


def test_queue_is_fifo():
    q = SupportQueue(5, 1)
    q.push(torch.arange(3.0)[:, None])
    assert q.vectors().flatten().tolist() == [0, 1, 2]
    q.push(torch.arange(3.0, 7.0)[:, None])                 # 3, 4 fill it; 5, 6 overwrite the oldest (0, 1)
    assert sorted(q.vectors().flatten().tolist()) == [2, 3, 4, 5, 6] and int(q.ptr) == 2
    q.push(torch.arange(10.0, 18.0)[:, None])               # more than the queue: the newest 5 remain
    assert sorted(q.vectors().flatten().tolist()) == [13, 14, 15, 16, 17]


def test_one_epoch_and_resume_keep_the_queue(tmp_path, xdf_cutouts):
    from galexplorer.ssl.trainer import train

    run = tmp_path / "run"
    cfg = TrainConfig.from_dict({**TINY, "epochs": 2})
    train(xdf_cutouts, run, cfg, stop_after=1)
    ck = torch.load(run / "checkpoint-latest.pt", map_location="cpu", weights_only=True)
    queue = ck["model"]["support.queue"]
    assert int(ck["model"]["support.filled"]) > 0 and torch.isfinite(queue).all()
    rep = train(xdf_cutouts, run, cfg, resume=True)
    ck2 = torch.load(run / "checkpoint-latest.pt", map_location="cpu", weights_only=True)
    assert rep.epochs_done == 2 and int(ck2["model"]["support.filled"]) >= int(ck["model"]["support.filled"])
    assert not torch.equal(ck2["model"]["support.queue"], queue)   # resumed with the queue and went on filling it


def test_cli_trains_nnclr_and_embeds_it(tmp_path, xdf_cutouts):
    """The command line offers --method nnclr, and the run embeds like any other (the queue is not
    part of the encoder)."""
    import h5py

    from galexplorer.cli import main

    cfg = tmp_path / "small.toml"
    cfg.write_text("proj_hidden = 32\nproj_dim = 16\npred_hidden = 32\nqueue_size = 64\nmonitor_objects = 16\n")
    run, store = tmp_path / "run", tmp_path / "s.h5"
    assert main(["train", str(xdf_cutouts), "-o", str(run), "--method", "nnclr", "--epochs", "1", "--batch-size", "8",
                 "--image-size", "16", "--device", "cpu", "--config", str(cfg)]) == 0
    assert main(["embed", str(xdf_cutouts), "--run", str(run), "-o", str(store), "--device", "cpu"]) == 0
    with h5py.File(store, "r") as f:
        emb = f["embeddings"][:]
    assert emb.shape[0] == 48 and np.isfinite(emb).all() and emb.std(axis=0).max() > 0
