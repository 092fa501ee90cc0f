"""VICReg (Bardes et al. 2022): invariance between views, with the spread regularised explicitly."""

from __future__ import annotations

import torch
from torch import nn

from .backbones import ResNetEncoder
from .heads import MLPHead
from .loss_vicreg import vicreg_loss


class VICReg(nn.Module):
    """Backbone + expander MLP trained with the VICReg loss.

    ``forward(v1, v2)`` returns the loss (float32); variance and covariance are taken over the
    global batch under DDP.

    Args:
        backbone: the encoder.
        proj_hidden, proj_dim: expander sizes (2048, 2048 here; the paper's 8192 x 3 layers is
            far too costly on a CPU and measured no better on small stamps).
    """

    def __init__(self, backbone: ResNetEncoder, proj_hidden: int = 2048, proj_dim: int = 2048):
        super().__init__()
        self.backbone = backbone
        self.projector = MLPHead(backbone.dim, proj_hidden, proj_dim)

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        b = v1.shape[0]
        z = self.projector(self.backbone(torch.cat([v1, v2])))
        with torch.autocast(device_type=v1.device.type, enabled=False):
            return vicreg_loss(z[:b], z[b:])
