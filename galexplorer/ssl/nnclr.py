"""NNCLR (Dwibedi et al. 2021): SimCLR whose positive is a neighbour from a queue of earlier views.

The support set is a FIFO queue of the projections of earlier batches (first view, gathered from
every process under DDP so the replicas keep the same queue). It is a registered buffer, so it is
saved in every checkpoint's model state and a resumed run continues with the same neighbours.
"""

from __future__ import annotations

import torch
from torch import nn

from . import distributed
from .backbones import ResNetEncoder
from .heads import MLPHead
from .loss_nnclr import nearest_neighbours, nnclr_loss


class SupportQueue(nn.Module):
    """FIFO queue of ``size`` vectors of ``dim``; ``vectors()`` returns the filled part."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1:
            raise ValueError(f"the NNCLR queue needs at least 1 row, got {size}")
        self.register_buffer("queue", torch.zeros(size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def vectors(self) -> torch.Tensor:
        return self.queue[: int(self.filled)]

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        """Append the rows of ``z``, overwriting the oldest once full."""
        size = self.queue.shape[0]
        z = z.detach().to(self.queue.dtype)[-size:]
        idx = (int(self.ptr) + torch.arange(z.shape[0], device=z.device)) % size
        self.queue[idx] = z
        self.ptr.fill_((int(self.ptr) + z.shape[0]) % size)
        self.filled.fill_(min(size, int(self.filled) + z.shape[0]))


class NNCLR(nn.Module):
    """Backbone + projector + predictor; ``forward(v1, v2)`` returns the symmetric NNCLR loss.

    Args:
        backbone: the encoder.
        proj_hidden, proj_dim, pred_hidden: head sizes.
        temperature: the softmax temperature (0.1).
        queue_size: rows of the support set.
    """

    def __init__(self, backbone: ResNetEncoder, proj_hidden: int = 2048, proj_dim: int = 256,
                 pred_hidden: int = 4096, temperature: float = 0.1, queue_size: int = 8192):
        super().__init__()
        self.backbone = backbone
        self.projector = MLPHead(backbone.dim, proj_hidden, proj_dim)
        self.predictor = MLPHead(proj_dim, pred_hidden, proj_dim)
        self.support = SupportQueue(queue_size, proj_dim)
        self.temperature = temperature

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        b = v1.shape[0]
        z = self.projector(self.backbone(torch.cat([v1, v2])))
        p = self.predictor(z)
        with torch.autocast(device_type=v1.device.type, enabled=False):
            z, p = z.float(), p.float()
            support = self.support.vectors()
            nn1, nn2 = nearest_neighbours(z[:b], support), nearest_neighbours(z[b:], support)
            loss = 0.5 * (nnclr_loss(nn1, p[b:], self.temperature) + nnclr_loss(nn2, p[:b], self.temperature))
        if self.training:
            z1 = z[:b].detach()
            if distributed.world_size() > 1:
                with torch.no_grad():
                    z1 = distributed.gather_with_grad(z1)
            self.support.push(z1)
        return loss
