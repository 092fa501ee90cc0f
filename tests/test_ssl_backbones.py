"""ResNet encoders for 1, 5 and 12 bands, small and standard stems; --init from local weights."""

from __future__ import annotations

import pytest
import torch

from galexplorer.errors import ConfigError
from galexplorer.ssl.backbones import FEATURE_DIMS, ResNetEncoder, adapt_torchvision_state, resolve_stem


@pytest.mark.parametrize("bands", [1, 5, 12])
def test_small_stem_takes_any_band_count_and_keeps_resolution(bands):
    enc = ResNetEncoder("resnet18", bands, "small").eval()
    conv = enc.net.conv1
    assert conv.in_channels == bands and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
    assert isinstance(enc.net.maxpool, torch.nn.Identity)
    seen = {}
    enc.net.layer1.register_forward_hook(lambda m, i, o: seen.update(layer1=o.shape))
    with torch.no_grad():
        out = enc(torch.randn(2, bands, 16, 16))
    assert out.shape == (2, 512) and out.dtype == torch.float32
    assert seen["layer1"][-2:] == (16, 16)            # no downsampling before the first stage


@pytest.mark.parametrize("bands", [1, 5, 12])
def test_standard_stem(bands):
    enc = ResNetEncoder("resnet18", bands, "standard").eval()
    assert enc.net.conv1.kernel_size == (7, 7) and enc.net.conv1.stride == (2, 2)
    assert isinstance(enc.net.maxpool, torch.nn.MaxPool2d)
    with torch.no_grad():
        assert enc(torch.randn(2, bands, 32, 32)).shape == (2, 512)


def test_medium_stem_keeps_twice_the_standard_resolution():
    shapes = {}
    for stem in ("medium", "standard"):
        enc = ResNetEncoder("resnet18", 3, stem).eval()
        assert enc.net.conv1.kernel_size == (7, 7) and enc.net.conv1.stride == (2, 2)
        enc.net.layer1.register_forward_hook(lambda m, i, o, stem=stem: shapes.update({stem: o.shape[-2:]}))
        with torch.no_grad():
            assert enc(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    assert isinstance(ResNetEncoder("resnet18", 3, "medium").net.maxpool, torch.nn.Identity)
    assert shapes == {"medium": (16, 16), "standard": (8, 8)}


def test_representation_sizes():
    assert FEATURE_DIMS == {"resnet18": 512, "resnet34": 512, "resnet50": 2048}
    enc = ResNetEncoder("resnet50", 5, "standard").eval()
    with torch.no_grad():
        assert enc(torch.randn(2, 5, 32, 32)).shape == (2, 2048)


def test_unknown_backbone_and_stem():
    with pytest.raises(ConfigError, match="unknown backbone 'vgg16'"):
        ResNetEncoder("vgg16", 3)
    with pytest.raises(ConfigError, match="unknown stem"):
        ResNetEncoder("resnet18", 3, "tiny")


def test_auto_stem_rule():
    assert resolve_stem("auto", 64, "cuda") == "small"
    assert resolve_stem("auto", 96, "cuda") == "small"
    assert resolve_stem("auto", 128, "cuda") == "standard"
    assert resolve_stem("auto", 32, "cpu") == "medium"
    assert resolve_stem("auto", 64, "cpu") == "medium"
    assert resolve_stem("auto", 65, "cpu") == "standard"
    assert resolve_stem("small", 128, "cpu") == "small"


def test_torchvision_weights_adapted_to_more_bands():
    import torchvision

    tv = torchvision.models.resnet18(weights=None).state_dict()
    enc = ResNetEncoder("resnet18", 5, "standard")
    state = adapt_torchvision_state(tv, enc)
    assert "fc.weight" not in state
    w = state["conv1.weight"]
    assert w.shape == (64, 5, 7, 7)
    # the response to a flat image is the same as the 3-band network's to a flat 3-band image
    torch.testing.assert_close(w.sum(dim=1), tv["conv1.weight"].sum(dim=1), rtol=1e-5, atol=1e-6)
    small = ResNetEncoder("resnet18", 5, "small")
    assert "conv1.weight" not in adapt_torchvision_state(tv, small)   # 7x7 does not fit 3x3
