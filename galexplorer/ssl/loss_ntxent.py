"""NT-Xent, SimCLR's contrastive loss, with negatives gathered across processes under DDP."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import distributed


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1,
                 gather: bool = True) -> torch.Tensor:
    """Normalised-temperature cross-entropy (Chen et al. 2020), computed in float32.

    For each of the 2B views the positive is the other view of the same image and the
    negatives are the other 2(N - 1) views of the global batch of N images; N = B in one process,
    N = B * world_size when ``gather`` is on under DDP (every process then holds the loss of
    its own 2B anchors against all 2N candidates, and the mean over processes equals the loss
    of the concatenated batch).

    Args:
        z1, z2: (B, D) projections of the two views.
        temperature: softmax temperature, > 0 (0.1 by default; smaller is sharper).
        gather: gather the candidates from all processes when running distributed.

    Returns:
        Scalar, the mean over the 2B local anchors.

    Raises:
        ValueError: shapes differ, fewer than 2 images, or a temperature below 1e-3.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent_loss needs two (B, D) tensors of the same shape, got {tuple(z1.shape)} "
                         f"and {tuple(z2.shape)}")
    if temperature < 1e-3:
        raise ValueError(f"temperature must be >= 1e-3, got {temperature}")
    b = z1.shape[0]
    z1 = F.normalize(z1.float(), dim=1)
    z2 = F.normalize(z2.float(), dim=1)
    rank = 0
    if gather and distributed.world_size() > 1:
        all1, all2 = distributed.gather_with_grad(z1), distributed.gather_with_grad(z2)
        rank = distributed.rank()
    else:
        all1, all2 = z1, z2
    n = all1.shape[0]
    if n < 2:
        raise ValueError("nt_xent_loss needs at least 2 images in the (global) batch")
    anchors = torch.cat([z1, z2])                       # (2B, D)
    candidates = torch.cat([all1, all2])                # (2N, D)
    logits = anchors @ candidates.T / temperature       # (2B, 2N)
    own = torch.arange(b, device=z1.device) + rank * b  # index of each local image in all1
    self_idx = torch.cat([own, own + n])                # each anchor's own column
    pos_idx = torch.cat([own + n, own])                 # the other view of the same image
    is_self = torch.zeros_like(logits, dtype=torch.bool)
    is_self[torch.arange(2 * b, device=z1.device), self_idx] = True
    return F.cross_entropy(logits.masked_fill(is_self, float("-inf")), pos_idx)
