"""SimCLR (Chen et al. 2020): two views of an image attract, every other view repels."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import ResNetEncoder
from .heads import MLPHead
from .loss_ntxent import nt_xent_loss


class SimCLR(nn.Module):
    """Backbone + projection MLP trained with NT-Xent.

    ``forward(v1, v2)`` returns the NT-Xent loss (float32) with negatives gathered from every
    process under DDP.

    Args:
        backbone: the encoder.
        proj_hidden, proj_dim: projector sizes (2048, 128).
        temperature: NT-Xent temperature (0.1).
    """

    def __init__(self, backbone: ResNetEncoder, proj_hidden: int = 2048, proj_dim: int = 128,
                 temperature: float = 0.1):
        super().__init__()
        self.backbone = backbone
        self.projector = MLPHead(backbone.dim, proj_hidden, proj_dim)
        self.temperature = temperature

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        b = v1.shape[0]
        z = self.projector(self.backbone(torch.cat([v1, v2])))
        with torch.autocast(device_type=v1.device.type, enabled=False):
            return nt_xent_loss(z[:b], z[b:], self.temperature)
