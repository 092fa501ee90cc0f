"""Thumbnails: small uint8 RGB display stamps stored with every cutout and shown in tooltips."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .stretch import to_rgb8


def make_thumbnails(images: np.ndarray, bands: Sequence[str], size: int = 64,
                    kind: str = "asinh") -> np.ndarray:
    """Display stamps for a batch.

    Args:
        images: (n, C, H, W) float images in data units.
        bands: the C band names, blue to red.
        size: thumbnail side T in pixels.
        kind: stretch; 'asinh' gives a Lupton colour composite for 3+ bands, grey for 1.

    Returns:
        (n, T, T, 3) uint8.
    """
    images = np.asarray(images)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    for i, img in enumerate(images):
        rgb = to_rgb8(img, bands, kind)
        if rgb.shape[0] != size or rgb.shape[1] != size:
            interp = cv2.INTER_AREA if rgb.shape[0] > size else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (size, size), interpolation=interp)
        out[i] = rgb
    return out
