"""Thumbnails: small uint8 RGB display stamps stored with every cutout and shown in tooltips."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .stretch import to_rgb8_batch

_CHUNK = 64   # stamps stretched at once


def make_thumbnails(images: np.ndarray, bands: Sequence[str], size: int = 64,
                    kind: str = "asinh") -> np.ndarray:
    """Display stamps for a batch, stretched per stamp with vectorised NumPy.

    Args:
        images: (n, C, H, W) float images in data units.
        bands: the C band names, blue to red.
        size: thumbnail side T in pixels; stamps of another side are resized after the stretch
            (area averaging down, bilinear up).
        kind: stretch; 'asinh' gives a Lupton colour composite for 3+ bands, grey for 1.

    Returns:
        (n, T, T, 3) uint8.
    """
    images = np.asarray(images)
    out = np.empty((len(images), size, size, 3), dtype=np.uint8)
    # chunks keep the float temporaries of the stretch small whatever the batch size
    for a in range(0, len(images), _CHUNK):
        rgb = to_rgb8_batch(images[a:a + _CHUNK], bands, kind)
        if rgb.shape[1:3] == (size, size):
            out[a:a + len(rgb)] = rgb
            continue
        interp = cv2.INTER_AREA if rgb.shape[1] > size else cv2.INTER_LINEAR
        for i in range(len(rgb)):
            out[a + i] = cv2.resize(rgb[i], (size, size), interpolation=interp)
    return out
