"""Thumbnails as cached QPixmaps, for the hover card, the queue and the gallery.

Pixmaps are made once per object and kept in a least-recently-used cache, so moving the mouse
back and forth over the same points never reads the store again. The cache is bounded in bytes
(:data:`CACHE_BYTES`), not in pixmaps: a 64-pixel thumbnail holds four times the memory of a
32-pixel one, and a count bound of 4,096 held 64 MiB of 64-pixel stamps.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

import numpy as np
from PySide6 import QtCore, QtGui

log = logging.getLogger(__name__)

#: bytes of pixmaps the cache keeps: 1,024 thumbnails of 64 pixels (RGB32, 16 KiB each), more
#: than the mosaic's cells on a 2560x1440 plot (cells span 64-128 screen pixels), or 4,096 of 32
CACHE_BYTES = 16 * 2**20


def pixmap_bytes(pm: QtGui.QPixmap) -> int:
    """The pixel memory a pixmap holds (width x height x depth)."""
    return pm.width() * pm.height() * max(pm.depth(), 8) // 8


def rgb_to_qimage(rgb: np.ndarray) -> QtGui.QImage:
    """(H, W, 3) uint8 -> a QImage that owns a copy of the pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()


class ThumbnailCache:
    """Thumbnails of the objects of one store.

    Args:
        thumbnails: the store's (N, T, T, 3) uint8 dataset, or None.
        cutouts: the linked :class:`~galexplorer.store.CutoutStore` (used when the store has
            no thumbnails), or None.
        cutouts_rows: (N,) the cutouts row of each store object, or None for row to row.
        max_bytes: pixel memory kept (the least recently used pixmaps go first); at least the
            newest pixmap is always kept.

    Raises:
        ValueError: ``max_bytes`` is not positive.
    """

    def __init__(self, thumbnails=None, cutouts=None, max_bytes: int = CACHE_BYTES, cutouts_rows=None):
        if not max_bytes > 0:
            raise ValueError(f"the thumbnail cache's budget must be positive, not {max_bytes} bytes")
        self._thumbs = thumbnails
        self._cutouts = cutouts
        self._rows = cutouts_rows
        self._cache: OrderedDict[int, QtGui.QPixmap] = OrderedDict()
        self.max_bytes = int(max_bytes)
        self.nbytes = 0          # pixel memory of the pixmaps held now
        self.size = int(thumbnails.shape[1]) if thumbnails is not None else 64
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def capacity(self) -> int:
        """Thumbnails of this store's size (RGB32) that the budget holds."""
        return max(1, self.max_bytes // (self.size * self.size * 4))

    @property
    def full(self) -> bool:
        """The pixmaps held fill the byte budget: the next new thumbnail evicts an old one. From
        then on the cache holds :attr:`max_bytes` less at most one thumbnail, however long the
        session (``benchmarks/bench_soak.py`` judges memory growth after this warm-up)."""
        return self.nbytes + self.size * self.size * 4 > self.max_bytes

    @property
    def available(self) -> bool:
        return self._thumbs is not None or self._cutouts is not None

    def rgb(self, i: int) -> np.ndarray | None:
        """(T, T, 3) uint8 pixels of object ``i``, or None when the store has no images."""
        try:
            if self._thumbs is not None:
                return np.asarray(self._thumbs[int(i)], dtype=np.uint8)
            if self._cutouts is not None:
                from ..data.stretch import to_rgb8

                row = int(i if self._rows is None else self._rows[int(i)])
                return to_rgb8(self._cutouts.read(row), self._cutouts.bands, "asinh")
        except (OSError, ValueError) as exc:  # a damaged chunk: show the placeholder, say why once
            log.warning("cannot read the image of object %d: %s", i, exc)
        return None

    def pixmap(self, i: int) -> QtGui.QPixmap:
        """The thumbnail of object ``i`` (a grey placeholder when there is none)."""
        i = int(i)
        pm = self._cache.get(i)
        if pm is not None:
            self._cache.move_to_end(i)
            self.hits += 1
            return pm
        self.misses += 1
        rgb = self.rgb(i)
        if rgb is None:
            pm = placeholder(self.size)
        else:
            pm = QtGui.QPixmap.fromImage(rgb_to_qimage(rgb))
        self._cache[i] = pm
        self.nbytes += pixmap_bytes(pm)
        while self.nbytes > self.max_bytes and len(self._cache) > 1:
            self.nbytes -= pixmap_bytes(self._cache.popitem(last=False)[1])
        return pm

    def peek(self, i: int) -> QtGui.QPixmap | None:
        """The thumbnail of object ``i`` if it is cached (never reads the store)."""
        return self._cache.get(int(i))

    def clear(self) -> None:
        self._cache.clear()
        self.nbytes = 0


def placeholder(size: int) -> QtGui.QPixmap:
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtGui.QColor("#262b36"))
    p = QtGui.QPainter(pm)
    p.setPen(QtGui.QColor("#5c6678"))
    p.drawText(pm.rect(), QtCore.Qt.AlignmentFlag.AlignCenter, "no\nimage")
    p.end()
    return pm
