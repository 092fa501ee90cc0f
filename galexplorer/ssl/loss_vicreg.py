"""VICReg's loss (Bardes, Ponce & LeCun 2022): invariance + variance + covariance.

Unlike BYOL and SimCLR it regularises the spread of the representation explicitly: the
variance term keeps every projection dimension's standard deviation above 1 over the batch,
and the covariance term decorrelates the dimensions, so the embeddings cannot fall onto a few
directions (dimensional collapse) however long the run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def variance_term(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """mean over dimensions of relu(1 - std), std over the batch of (N, D) ``z``."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1.0 - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """Sum of the squared off-diagonal covariances of (N, D) ``z``, divided by D."""
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (n - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, gather: bool = True) -> torch.Tensor:
    """The VICReg loss of two views' projections, in float32.

    ``sim_coeff * MSE(z1, z2) + std_coeff * (v(z1) + v(z2)) / 2 + cov_coeff * (c(z1) + c(z2))``
    with v = :func:`variance_term` and c = :func:`covariance_term` (the paper's 25, 25, 1). Under
    DDP with ``gather`` the variance and covariance are taken over the global batch (the
    projections of every process, with gradients), as in the reference implementation.

    Args:
        z1, z2: (B, D) projections of the two views.

    Returns:
        Scalar.

    Raises:
        ValueError: shapes differ, not 2-D, fewer than 2 images, or a negative coefficient.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"vicreg_loss needs two (B, D) tensors of the same shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    if min(sim_coeff, std_coeff, cov_coeff) < 0:
        raise ValueError("vicreg_loss coefficients must be >= 0")
    z1, z2 = z1.float(), z2.float()
    inv = F.mse_loss(z1, z2)
    if gather and distributed.world_size() > 1:
        z1, z2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
    if z1.shape[0] < 2:
        raise ValueError("vicreg_loss needs at least 2 images in the (global) batch")
    var = (variance_term(z1) + variance_term(z2)) / 2
    cov = covariance_term(z1) + covariance_term(z2)
    return sim_coeff * inv + std_coeff * var + cov_coeff * cov
