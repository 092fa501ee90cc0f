"""The MLP heads of BYOL and SimCLR: Linear -> BatchNorm -> ReLU -> Linear."""

from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """Two-layer MLP with batch normalisation, as in BYOL's projector/predictor and SimCLR v2.

    Input (B, in_dim) -> output (B, out_dim).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
