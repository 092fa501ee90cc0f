"""VICReg's loss against a plain NumPy computation, and the method as a training option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galexplorer.ssl import distributed
from galexplorer.ssl.loss_vicreg import covariance_term, variance_term, vicreg_loss


def _ref_vicreg(z1, z2, sim=25.0, std=25.0, cov=1.0):
    """The paper's definitions written out with loops over dimensions."""
    a, b = z1.numpy().astype(np.float64), z2.numpy().astype(np.float64)
    n, d = a.shape
    inv = np.mean((a - b) ** 2)

    def v(z):
        return np.mean([max(0.0, 1 - np.sqrt(np.var(z[:, j], ddof=1) + 1e-4)) for j in range(d)])

    def c(z):
        zc = z - z.mean(axis=0)
        total = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    total += (zc[:, i] @ zc[:, j] / (n - 1)) ** 2
        return total / d

    return sim * inv + std * (v(a) + v(b)) / 2 + cov * (c(a) + c(b))


@pytest.mark.parametrize("n, d, scale", [(2, 3, 1.0), (16, 8, 0.1), (33, 24, 3.0)])
def test_vicreg_matches_reference(n, d, scale):
    g = torch.Generator().manual_seed(n * d)
    z1 = scale * torch.randn(n, d, generator=g)
    z2 = z1 + 0.3 * torch.randn(n, d, generator=g)
    assert vicreg_loss(z1, z2).item() == pytest.approx(_ref_vicreg(z1, z2), rel=1e-4)
    assert vicreg_loss(z1, z2, 1.0, 0.0, 0.0).item() == pytest.approx(float(((z1 - z2) ** 2).mean()), rel=1e-5)


def test_vicreg_terms_see_collapse():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(256, 16, generator=g) * 2
    collapsed = torch.randn(1, 16, generator=g).expand(256, 16) + 1e-3 * torch.randn(256, 16, generator=g)
    assert variance_term(spread).item() == pytest.approx(0.0, abs=1e-6)
    assert variance_term(collapsed).item() > 0.95
    line = torch.randn(256, 1, generator=g) @ torch.ones(1, 16)   # every dimension the same: correlated
    assert covariance_term(line).item() > 100 * covariance_term(torch.randn(256, 16, generator=g)).item()
    # the collapsed pair of views has zero invariance loss but a large total
    assert vicreg_loss(collapsed, collapsed).item() > 20


def test_vicreg_bad_arguments_and_float32():
    with pytest.raises(ValueError, match="same shape"):
        vicreg_loss(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        vicreg_loss(torch.zeros(1, 3), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=">= 0"):
        vicreg_loss(torch.zeros(4, 3), torch.zeros(4, 3), sim_coeff=-1)
    z = torch.randn(8, 4, dtype=torch.bfloat16, requires_grad=True)
    loss = vicreg_loss(z, z.detach().float() + 1)
    assert loss.dtype == torch.float32
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_vicreg_gathered_variance_uses_the_global_batch(monkeypatch):
    """Under DDP the variance/covariance are over all processes' projections (mocked gather)."""
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    full = vicreg_loss(z1, z2, gather=False).item()
    calls = iter([z1, z2])
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "gather_with_grad", lambda x: next(calls))
    local = vicreg_loss(z1[:4], z2[:4]).item()
    inv_full = float(((z1 - z2) ** 2).mean())
    inv_local = float(((z1[:4] - z2[:4]) ** 2).mean())
    assert local - 25 * inv_local == pytest.approx(full - 25 * inv_full, rel=1e-5)


def test_vicreg_is_a_method(tmp_path, xdf_cutouts):
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.trainer import train

    cfg = TrainConfig(method="vicreg", epochs=1, batch_size=16, image_size=16, device="cpu", proj_hidden=64,
                      proj_dim=32, monitor_objects=16, stats_objects=48)
    rep = train(xdf_cutouts, tmp_path / "run", cfg)
    assert rep.epochs_done == 1 and rep.loss > 0 and (tmp_path / "run" / "encoder.pt").is_file()
