"""BYOL's regression loss: ``2 - 2 cos(p, z)`` between the online prediction and the target."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``2 - 2 * cos(p_i, z_i)`` (Grill et al. 2020, eq. 2), in float32.

    Args:
        p: (B, D) online predictions.
        z: (B, D) target projections (no gradient flows into them).

    Returns:
        Scalar in [0, 4]; 0 when every prediction points along its target.

    Raises:
        ValueError: shapes differ or are not 2-D.
    """
    if p.shape != z.shape or p.dim() != 2:
        raise ValueError(f"byol_loss needs two (B, D) tensors of the same shape, got {tuple(p.shape)} "
                         f"and {tuple(z.shape)}")
    p = F.normalize(p.float(), dim=1)
    z = F.normalize(z.detach().float(), dim=1)
    return (2.0 - 2.0 * (p * z).sum(dim=1)).mean()


def symmetric_byol_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """``(byol_loss(p1, z2) + byol_loss(p2, z1)) / 2``: each view predicts the other's target."""
    return 0.5 * (byol_loss(p1, z2) + byol_loss(p2, z1))
