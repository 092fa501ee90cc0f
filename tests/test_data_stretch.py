"""Display stretches and thumbnails: the batched versions keep the documented look.

The references below are the plain per-stamp computations: astropy's ``make_lupton_rgb`` for
colour and the percentile/asinh formula for single bands. Stamps of up to 32 px (1024 pixels)
must match them exactly; larger ones take their display levels from a 1024-pixel grid, which
may move pixel values by a few levels.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.visualization import make_lupton_rgb
from xdf import BANDS, xdf_stamps

from galexplorer.data.stretch import (
    STAT_PIXELS,
    STRETCHES,
    lupton_rgb,
    lupton_rgb_batch,
    rgb_band_order,
    stretch,
    stretch_batch,
    to_rgb8,
    to_rgb8_batch,
)
from galexplorer.data.thumbnails import make_thumbnails


def reference_lupton(img: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """One stamp through astropy, as galexplorer rendered colour before batching."""
    x = np.nan_to_num(img.astype(np.float32))
    chans = [x[i] - np.median(x[i]) for i in rgb_band_order(["b"] * len(x))]
    scale = max(float(np.percentile(np.max(chans, axis=0), percentile)), 1e-12)
    r, g, b = (np.clip(c / scale, 0, None) for c in chans)
    with np.errstate(invalid="ignore", divide="ignore"):
        return make_lupton_rgb(r, g, b, minimum=0.0, stretch=0.5, Q=8)


def reference_stretch(img: np.ndarray, kind: str, percentile: float = 99.5, a: float = 0.1) -> np.ndarray:
    finite = img[np.isfinite(img)]
    if kind == "linear":
        lo, hi = np.percentile(finite, 0.5), np.percentile(finite, percentile)
    elif kind == "zscale":
        from astropy.visualization import ZScaleInterval

        lo, hi = ZScaleInterval().get_limits(finite)
    else:
        lo, hi = np.median(finite), np.percentile(finite, percentile)
    y = np.clip((np.nan_to_num(img, nan=lo) - lo) / (hi - lo), 0, 1)
    if kind == "asinh":
        y = np.arcsinh(y / a) / np.arcsinh(1 / a)
    elif kind == "log":
        y = np.log1p(1000 * y) / np.log1p(1000)
    return y


@pytest.fixture(scope="module")
def stamps() -> np.ndarray:
    return xdf_stamps(40, 32)[0]


def test_lupton_batch_matches_astropy(stamps):
    got = lupton_rgb_batch(stamps)
    assert got.shape == (40, 32, 32, 3) and got.dtype == np.uint8
    ref = np.stack([reference_lupton(s) for s in stamps])
    diff = np.abs(got.astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001    # float32 rounding only
    assert got.std() > 20                                     # a picture, not black
    np.testing.assert_array_equal(lupton_rgb(stamps[3]), got[3])


def test_large_stamps_keep_the_look():
    big = xdf_stamps(30, 64)[0]
    assert STAT_PIXELS < 64 * 64
    diff = np.abs(lupton_rgb_batch(big).astype(int) - np.stack([reference_lupton(s) for s in big]))
    assert diff.mean() < 0.6 and np.percentile(diff, 99) <= 5
    grey = stretch_batch(big[:, 1])
    gdiff = np.abs(grey - np.stack([reference_stretch(s, "asinh") for s in big[:, 1]])) * 255
    assert gdiff.mean() < 1.5 and np.percentile(gdiff, 99) <= 16


def test_lupton_uses_red_for_the_reddest_band(stamps):
    s = stamps[0].copy()
    s[2] += 1.0 * (np.arange(32)[None, :] > 16)   # extra flux in the last (reddest) band, right half
    rgb = lupton_rgb(s)
    right, left = rgb[:, 20:].astype(float), rgb[:, :12].astype(float)
    assert (right[..., 0] - right[..., 2]).mean() > (left[..., 0] - left[..., 2]).mean() + 20


@pytest.mark.parametrize("kind", STRETCHES)
def test_stretch_batch_matches_reference(stamps, kind):
    planes = stamps[:12, 1].copy()
    planes[0, :3, :3] = np.nan
    got = stretch_batch(planes, kind)
    assert got.dtype == np.float32 and got.min() >= 0 and got.max() <= 1
    for k in range(12):
        np.testing.assert_allclose(got[k], reference_stretch(planes[k], kind), atol=2e-6)
    np.testing.assert_array_equal(stretch(planes[5], kind), got[5])


def test_stretch_edge_cases():
    flat = np.full((8, 8), 3.0, np.float32)
    assert np.all(stretch(flat, "linear") == 0)
    empty = np.full((8, 8), np.nan, np.float32)
    assert np.all(np.isfinite(stretch(empty)))
    with pytest.raises(ValueError, match="unknown stretch"):
        stretch(flat, "gamma")


def test_to_rgb8_modes(stamps):
    colour = to_rgb8_batch(stamps[:4], BANDS)
    np.testing.assert_array_equal(colour, lupton_rgb_batch(stamps[:4]))
    grey = to_rgb8(stamps[0], BANDS, band=1)
    assert (grey[..., 0] == grey[..., 2]).all()
    np.testing.assert_array_equal(grey[..., 0], (stretch(stamps[0, 1]) * 255 + 0.5).astype(np.uint8))
    lin = to_rgb8(stamps[0], BANDS, kind="linear")
    np.testing.assert_array_equal(lin[..., 0], (stretch(stamps[0, 2], "linear") * 255 + 0.5).astype(np.uint8))
    one = to_rgb8(stamps[0, :1], ["r"])
    assert (one[..., 0] == one[..., 1]).all()


def test_make_thumbnails_sizes(stamps):
    same = make_thumbnails(stamps[:5], BANDS, 32)
    np.testing.assert_array_equal(same, lupton_rgb_batch(stamps[:5]))
    small = make_thumbnails(stamps[:5], BANDS, 16)
    assert small.shape == (5, 16, 16, 3)
    np.testing.assert_allclose(small.mean(axis=(1, 2)), same.mean(axis=(1, 2)), atol=2)
    assert make_thumbnails(stamps[:0], BANDS, 16).shape == (0, 16, 16, 3)
