"""Ordinary image files: PNG, JPEG and TIFF, grey or colour.

* grey -> 1 band; colour -> 3 bands in the order **blue, green, red** (galexplorer lists bands
  blue to red, so the blue channel is band 0 and the composite shows red as red); an alpha
  channel is dropped.
* 8-bit values are divided by 255 and 16-bit by 65535, so pixels lie in [0, 1]; floating-point
  TIFFs are kept as they are.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from . import registry
from .stamps import FileStamps

RGB_BANDS = ["b", "g", "r"]


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as (C, H, W) float32 with C = 1 (grey) or 3 (blue, green, red).

    Raises:
        InputError: unreadable or not an image.
    """
    path = Path(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)   # cv2.imread cannot open non-ASCII paths everywhere
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", path) from None
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if img is None:
        raise InputError("not a readable PNG, JPEG or TIFF image", path,
                         "check the file, or remove it from the inputs")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]                      # drop alpha (OpenCV gives BGRA)
    if img.ndim == 3 and img.shape[2] == 2:
        img = img[:, :, :1]                      # grey + alpha
    scale = {np.dtype(np.uint8): 1 / 255.0, np.dtype(np.uint16): 1 / 65535.0}.get(img.dtype)
    out = img.astype(np.float32)
    if scale is not None:
        out *= np.float32(scale)
    if out.ndim == 2:
        return out[None]
    # OpenCV already gives blue, green, red: exactly galexplorer's blue-to-red band order
    return np.ascontiguousarray(out.transpose(2, 0, 1))


def read_image_stamps(path: str | Path, hdu: int | str | None = None, dataset: str | None = None,
                      position: bool = True) -> FileStamps:
    """Ingest's PNG/JPEG/TIFF reader (``registry``): one object, grey = 1 band, colour = b, g, r
    (a channel order, not band names); no position (``hdu``, ``dataset`` do not apply).

    Raises:
        InputError: as :func:`read_image`.
    """
    data = read_image(path)[None]
    return FileStamps(Path(path), data, RGB_BANDS if data.shape[1] == 3 else None, named=False)


registry.register_reader("image", "ingest", read_image_stamps)
