"""Losses against plain reference computations; the gathered (DDP) NT-Xent path with a mocked
``torch.distributed`` and with a real 2-process gloo group; schedules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from galexplorer.ssl import distributed
from galexplorer.ssl.loss_byol import byol_loss, symmetric_byol_loss
from galexplorer.ssl.loss_ntxent import nt_xent_loss
from galexplorer.ssl.schedule import cosine_tau, warmup_cosine, warmup_steps_for


def _ref_byol(p, z):
    out = []
    for a, b in zip(p.tolist(), z.tolist()):
        a, b = np.array(a), np.array(b)
        cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        out.append(2 - 2 * cos)
    return float(np.mean(out))


def _ref_ntxent(z1, z2, t):
    """SimCLR's loss written out as in the paper: 2N anchors, one positive, 2N - 2 negatives."""
    z = np.concatenate([z1.numpy(), z2.numpy()]).astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        sims = np.array([z[i] @ z[k] / t for k in range(n2)])
        denom = sum(math.exp(sims[k]) for k in range(n2) if k != i)
        total += -math.log(math.exp(sims[j]) / denom)
    return total / n2


@pytest.mark.parametrize("b, d", [(2, 3), (8, 16), (33, 128)])
def test_byol_loss_matches_reference(b, d):
    g = torch.Generator().manual_seed(b * d)
    p, z = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    assert byol_loss(p, z).item() == pytest.approx(_ref_byol(p, z), abs=1e-5)
    assert byol_loss(p, p).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(p, -p).item() == pytest.approx(4.0, abs=1e-5)
    p2, z2 = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    sym = symmetric_byol_loss(p, p2, z, z2).item()
    assert sym == pytest.approx((_ref_byol(p, z2) + _ref_byol(p2, z)) / 2, abs=1e-5)


def test_byol_loss_is_float32_and_stops_target_gradient():
    p = torch.randn(4, 8, dtype=torch.bfloat16, requires_grad=True)
    z = torch.randn(4, 8, requires_grad=True)
    loss = byol_loss(p, z)
    assert loss.dtype == torch.float32
    loss.backward()
    assert p.grad is not None and z.grad is None


@pytest.mark.parametrize("b, d", [(2, 4), (6, 16), (17, 32)])
@pytest.mark.parametrize("t", [0.05, 0.1, 0.5])
def test_ntxent_matches_reference(b, d, t):
    g = torch.Generator().manual_seed(b + d)
    z1, z2 = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    assert nt_xent_loss(z1, z2, t).item() == pytest.approx(_ref_ntxent(z1, z2, t), rel=1e-4)


def test_ntxent_bad_arguments():
    z = torch.randn(4, 8)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent_loss(z, z, 1e-5)
    with pytest.raises(ValueError, match="same shape"):
        nt_xent_loss(z, torch.randn(3, 8))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent_loss(z[:1], z[:1])


@pytest.mark.parametrize("world", [2, 3])
def test_ntxent_gathered_mean_equals_loss_of_the_whole_batch(monkeypatch, world):
    """Mocked torch.distributed (as lightly tests it): each 'process' sees every process's
    projections as candidates; the mean of the per-process losses is the single-process loss of
    the concatenated batch."""
    g = torch.Generator().manual_seed(world)
    b, d = 5, 12
    z1, z2 = torch.randn(world * b, d, generator=g), torch.randn(world * b, d, generator=g)
    full = nt_xent_loss(z1, z2, 0.1, gather=False).item()
    losses = []
    for r in range(world):
        # what every process contributes: its normalised projections, in rank order
        calls = iter([F.normalize(z1, dim=1), F.normalize(z2, dim=1)])
        monkeypatch.setattr(distributed, "world_size", lambda: world)
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        monkeypatch.setattr(distributed, "gather_with_grad", lambda x, calls=calls: next(calls))
        losses.append(nt_xent_loss(z1[r * b:(r + 1) * b], z2[r * b:(r + 1) * b], 0.1).item())
    assert np.mean(losses) == pytest.approx(full, rel=1e-5)
    assert len(set(np.round(losses, 6))) == world       # each process has its own anchors


def _gather_worker(rank: int, world: int, port: int, z1: torch.Tensor, z2: torch.Tensor, out: dict) -> None:
    import os

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        b = len(z1) // world
        a1 = z1[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        a2 = z2[rank * b:(rank + 1) * b].clone().requires_grad_(True)
        loss = nt_xent_loss(a1, a2, 0.2)
        (loss / world).backward()        # DDP averages gradients over processes
        out[rank] = (loss.item(), a1.grad.clone(), a2.grad.clone())
    finally:
        dist.destroy_process_group()


def test_gather_layer_gradients_with_two_gloo_processes():
    """A real 2-process gloo group: losses and gradients equal those of one process on the whole batch."""
    import socket

    import torch.multiprocessing as mp

    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_gather_worker, args=(2, port, z1, z2, out), nprocs=2, join=True)
    r1, r2 = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
    full = nt_xent_loss(r1, r2, 0.2, gather=False)
    full.backward()
    assert (out[0][0] + out[1][0]) / 2 == pytest.approx(full.item(), rel=1e-5)
    torch.testing.assert_close(torch.cat([out[0][1], out[1][1]]), r1.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(torch.cat([out[0][2], out[1][2]]), r2.grad, rtol=1e-4, atol=1e-6)


def test_ema_schedule_values():
    assert cosine_tau(0, 100) == pytest.approx(0.99)
    assert cosine_tau(50, 100) == pytest.approx(0.995)
    assert cosine_tau(100, 100) == pytest.approx(1.0)
    assert cosine_tau(25, 100, 0.996) == pytest.approx(1 - 0.004 * (math.cos(math.pi / 4) + 1) / 2)
    taus = [cosine_tau(s, 40) for s in range(41)]
    assert all(a <= b for a, b in zip(taus, taus[1:]))
    with pytest.raises(ValueError):
        cosine_tau(-1, 10)
    with pytest.raises(ValueError):
        cosine_tau(0, 0)


def test_warmup_cosine_values():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(0, 10, 0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        warmup_cosine(0, 10, 11)
    assert warmup_steps_for(10, 50, 20) == 100          # a tenth of 50 epochs
    assert warmup_steps_for(10, 500, 20) == 200         # ten epochs


def test_ntxent_gradient_reaches_both_views():
    z1 = torch.randn(4, 8, requires_grad=True)
    z2 = torch.randn(4, 8, requires_grad=True)
    nt_xent_loss(z1, z2).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0
