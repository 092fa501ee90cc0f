"""NNCLR's loss (Dwibedi et al. 2021): NT-Xent whose positive is the nearest neighbour of a view's
projection in a support set of earlier projections, not the view itself."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed


def nearest_neighbours(z: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """For each row of ``z`` (B, D), the row of ``support`` (K, D) nearest by cosine similarity
    (detached). An empty support set gives ``z`` itself, detached (the first steps of a run)."""
    if support.shape[0] == 0:
        return z.detach()
    zn, sn = F.normalize(z.detach().float(), dim=1), F.normalize(support.float(), dim=1)
    return support[(zn @ sn.T).argmax(dim=1)].detach()


def nnclr_loss(nn1: torch.Tensor, p2: torch.Tensor, temperature: float = 0.1, gather: bool = True) -> torch.Tensor:
    """Cross-entropy of each neighbour ``nn1[i]`` picking its own image's prediction ``p2[i]`` among
    the predictions of the (global, under DDP) batch, in float32.

    Raises:
        ValueError: shapes differ, or a temperature below 1e-3.
    """
    if nn1.shape != p2.shape or nn1.dim() != 2:
        raise ValueError(f"nnclr_loss needs two (B, D) tensors of the same shape, got {tuple(nn1.shape)} "
                         f"and {tuple(p2.shape)}")
    if temperature < 1e-3:
        raise ValueError(f"temperature must be >= 1e-3, got {temperature}")
    a, p = F.normalize(nn1.float(), dim=1), F.normalize(p2.float(), dim=1)
    rank = 0
    if gather and distributed.world_size() > 1:
        p, rank = distributed.gather_with_grad(p), distributed.rank()
    logits = a @ p.T / temperature
    target = torch.arange(a.shape[0], device=a.device) + rank * a.shape[0]
    return F.cross_entropy(logits, target)
