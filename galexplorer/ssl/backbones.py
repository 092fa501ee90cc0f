"""ResNet encoders for any number of bands, with a stem suited to the stamp size.

torchvision's ResNets (random initialisation, nothing is downloaded) with:

* a first convolution taking ``in_channels`` bands (1, 3, 5, 12 ...);
* the *small* stem for small stamps - a 3x3 stride-1 first convolution and no max-pool, as
  Hayat et al. (2021) and Gondhalekar et al. (2024) use - which keeps the 4x resolution the
  standard 7x7 stride-2 + max-pool stem throws away, at ~16x the cost;
* the *medium* stem - the standard 7x7 stride-2 convolution without the max-pool - which keeps
  twice the standard stem's resolution at ~2x its cost: the CPU default for crops up to 64 px
  (on real XDF galaxies it is what lets the trained network beat raw pixels on size, see
  docs/training.md, "Judging a run");
* the classifier removed: the representation is the global-average-pooled output of the last
  stage (512-d for ResNet-18/34, 2048-d for ResNet-50).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import ConfigError

log = logging.getLogger(__name__)

FEATURE_DIMS = {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
SMALL_STEM_MAX_PX = 96
STEMS = ("small", "medium", "standard")
#: crops up to this side get the medium stem on CPU under --stem auto
MEDIUM_STEM_MAX_PX = 64


def resolve_stem(stem: str, image_size: int, device_type: str) -> str:
    """The stem for ``stem='auto'``: small on CUDA for crops <= 96 px, medium on CPU for crops <= 64 px,
    standard otherwise.

    On CPU the small stem costs ~16x the standard one (ResNet-18 at 64 px: ~3 vs ~56 images/s
    on 2 cores) and the medium one ~2x; ask for ``stem='small'`` explicitly to trade more speed
    for resolution, or ``stem='standard'`` for the fastest run.
    """
    if stem != "auto":
        return stem
    if device_type == "cuda":
        return "small" if image_size <= SMALL_STEM_MAX_PX else "standard"
    return "medium" if image_size <= MEDIUM_STEM_MAX_PX else "standard"


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without its classifier.

    Args:
        name: 'resnet18', 'resnet34' or 'resnet50'.
        in_channels: number of bands.
        stem: 'small', 'medium' or 'standard'.

    Input (B, in_channels, H, W) float; output (B, dim) float, ``dim`` = 512 or 2048.

    Raises:
        ConfigError: unknown backbone or stem, or in_channels < 1.
    """

    def __init__(self, name: str, in_channels: int, stem: str = "standard"):
        super().__init__()
        import torchvision

        if name not in FEATURE_DIMS:
            raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(FEATURE_DIMS)}")
        if stem not in STEMS:
            raise ConfigError(f"unknown stem {stem!r}; choose small, medium or standard")
        if in_channels < 1:
            raise ConfigError(f"a backbone needs at least one band, got {in_channels}")
        net = getattr(torchvision.models, name)(weights=None)
        if stem == "small":
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            if stem == "medium":
                net.maxpool = nn.Identity()
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.fc = nn.Identity()
        self.net = net
        self.name, self.in_channels, self.stem = name, in_channels, stem
        self.dim = FEATURE_DIMS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def describe(self) -> dict:
        return {"backbone": self.name, "in_channels": self.in_channels, "stem": self.stem, "dim": self.dim}


def build_backbone(name: str, in_channels: int, stem: str = "standard") -> ResNetEncoder:
    """See :class:`ResNetEncoder`."""
    return ResNetEncoder(name, in_channels, stem)


def adapt_torchvision_state(state: dict[str, torch.Tensor], encoder: ResNetEncoder) -> dict[str, torch.Tensor]:
    """Map a plain torchvision ResNet ``state_dict`` onto ``encoder`` (for ``--init``).

    The classifier (``fc.*``) is dropped. A first convolution made for another number of bands
    is averaged over its input channels and repeated (the usual way to start a multi-band
    network from 3-band weights); one of another shape (the other stem) is left at its random
    initialisation.
    """
    target = encoder.net.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("fc.") or key not in target:
            continue
        want = target[key]
        if key == "conv1.weight" and value.shape != want.shape:
            if value.shape[-2:] == want.shape[-2:]:
                have = value.shape[1]
                value = value.mean(dim=1, keepdim=True).repeat(1, want.shape[1], 1, 1) * (have / want.shape[1])
                log.info("--init: first convolution adapted from %d to %d bands", have, want.shape[1])
            else:
                log.info("--init: first convolution %s does not fit the %s stem; it starts at random",
                         tuple(value.shape), encoder.stem)
                continue
        if value.shape != want.shape:
            continue
        out[key] = value
    return out
