"""BYOL (Grill et al. 2020): an online network predicts a slowly moving target network."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .backbones import ResNetEncoder
from .heads import MLPHead
from .loss_byol import symmetric_byol_loss


class BYOL(nn.Module):
    """Online (backbone, projector, predictor) and target (backbone, projector) networks.

    ``forward(v1, v2)`` returns the symmetric loss ``(L(p1, z2') + L(p2, z1')) / 2`` with
    ``L = 2 - 2 cos`` computed in float32; gradients reach only the online network. After each
    optimiser step call :meth:`update_target` with the EMA rate tau.

    Args:
        backbone: the online encoder (its ``dim`` is the representation size).
        proj_hidden, proj_dim: projector sizes (4096, 256 in the paper).
        pred_hidden: predictor hidden size (4096).
    """

    def __init__(self, backbone: ResNetEncoder, proj_hidden: int = 4096, proj_dim: int = 256,
                 pred_hidden: int = 4096):
        super().__init__()
        self.backbone = backbone
        self.projector = MLPHead(backbone.dim, proj_hidden, proj_dim)
        self.predictor = MLPHead(proj_dim, pred_hidden, proj_dim)
        self.target_backbone = copy.deepcopy(backbone)
        self.target_projector = copy.deepcopy(self.projector)
        for p in self.target_parameters():
            p.requires_grad_(False)

    def target_parameters(self):
        yield from self.target_backbone.parameters()
        yield from self.target_projector.parameters()

    def forward(self, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
        b = v1.shape[0]
        both = torch.cat([v1, v2])
        # one pass over both views: batch-norm statistics over 2B images, half the launches
        p = self.predictor(self.projector(self.backbone(both)))
        with torch.no_grad():
            z = self.target_projector(self.target_backbone(both))
        with torch.autocast(device_type=both.device.type, enabled=False):
            return symmetric_byol_loss(p[:b], p[b:], z[:b], z[b:])

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """target <- tau * target + (1 - tau) * online, for parameters and float buffers."""
        online = list(self.backbone.parameters()) + list(self.projector.parameters())
        target = list(self.target_backbone.parameters()) + list(self.target_projector.parameters())
        torch._foreach_mul_(target, tau)
        torch._foreach_add_(target, online, alpha=1.0 - tau)
        for src, dst in ((self.backbone, self.target_backbone), (self.projector, self.target_projector)):
            for b_src, b_dst in zip(src.buffers(), dst.buffers()):
                if b_dst.dtype.is_floating_point:
                    b_dst.mul_(tau).add_(b_src, alpha=1.0 - tau)
                else:
                    b_dst.copy_(b_src)
