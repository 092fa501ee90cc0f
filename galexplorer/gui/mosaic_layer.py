"""The image mosaic on the map: a layer of the scatter (:mod:`.scatter`) that tiles the view into
a grid and shows one thumbnail per cell, the object nearest the cell's centre (:mod:`.mosaic`
chooses them; Hayat et al. 2021, Fig. 2).

A redraw chooses the cells (a millisecond or two at 10^6 objects, on the hover index's KD-tree)
and paints the thumbnails already cached; those not yet read are read afterwards in slices of
:data:`LOAD_BUDGET_MS`, one slice per pass of the event loop, so a pan or a zoom never waits for
the store's disk. Until read, a cell shows the map under it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from .density import ViewRect
from .mosaic import CELL_PX, MosaicCells, cell_side, choose_cells, compose
from .thumbs import ThumbnailCache, rgb_to_qimage

log = logging.getLogger(__name__)

LOAD_BUDGET_MS = 20.0


class MosaicItem(pg.GraphicsObject):
    """Thumbnails painted into cells given in data coordinates (drawn upright in device pixels,
    whatever the direction of the view's y axis)."""

    def __init__(self):
        super().__init__()
        self._cells: MosaicCells | None = None
        self._pixmaps: list[QtGui.QPixmap | None] = []
        self._rect = QtCore.QRectF()

    def set_cells(self, cells: MosaicCells | None, pixmaps: list[QtGui.QPixmap | None]) -> None:
        self.prepareGeometryChange()
        self._cells, self._pixmaps = cells, pixmaps
        if cells is None or len(cells) == 0:
            self._rect = QtCore.QRectF()
        else:
            s = cells.side
            x0, y0 = float(cells.ix.min()) * s, float(cells.iy.min()) * s
            self._rect = QtCore.QRectF(x0, y0, (float(cells.ix.max()) + 1) * s - x0,
                                       (float(cells.iy.max()) + 1) * s - y0)
        self.update()

    def set_pixmap(self, k: int, pm: QtGui.QPixmap) -> None:
        self._pixmaps[k] = pm

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def paint(self, p: QtGui.QPainter, option, widget=None) -> None:
        cells = self._cells
        if cells is None or len(cells) == 0:
            return
        s = cells.side
        tr = p.transform()
        p.save()
        p.resetTransform()
        p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
        for a, b, pm in zip(cells.ix.tolist(), cells.iy.tolist(), self._pixmaps):
            if pm is None:
                continue
            r = tr.mapRect(QtCore.QRectF(a * s, b * s, s, s)).normalized()
            p.drawPixmap(r.adjusted(1, 1, -1, -1), pm, QtCore.QRectF(pm.rect()))
        p.restore()


class MosaicLayer(QtCore.QObject):
    """The mosaic's state: on or off, its cells, and the thumbnails still to read.

    Args:
        item: where it paints.
        cell_px: the smallest cell in screen pixels (cells span ``cell_px`` to twice that).

    Attributes:
        last_redraw_ms: the last :meth:`redraw`'s time (choosing the cells and handing over the
            cached thumbnails; the paint follows in the event loop).
    """

    def __init__(self, item: MosaicItem, cell_px: int = CELL_PX, parent=None):
        super().__init__(parent)
        self.item = item
        self.cell_px = int(cell_px)
        self.enabled = False
        self.cells: MosaicCells | None = None
        self.thumbnails: ThumbnailCache | None = None
        self.last_redraw_ms = 0.0
        self._pending: list[tuple[int, int]] = []
        self._loading = False

    def set_enabled(self, on: bool) -> None:
        self.enabled = bool(on)
        self.item.setVisible(self.enabled)
        if not self.enabled:
            self.clear()

    def clear(self) -> None:
        self.cells = None
        self._pending = []
        self.item.set_cells(None, [])

    def redraw(self, index, rect: ViewRect, units_per_px: float) -> None:
        """Choose the cells of the view and show their cached thumbnails; queue the rest.

        Args:
            index: the hover index (:class:`~.picking.NearestIndex`), built.
            rect: the view in data coordinates.
            units_per_px: data units per screen pixel (the larger of x and y).
        """
        t0 = time.perf_counter()
        if index is None or index.tree is None or self.thumbnails is None or not (units_per_px > 0):
            self.clear()
            return
        side = cell_side(units_per_px, self.cell_px)
        cells = choose_cells(index.tree, index.points, index.rows, rect, side)
        pixmaps = [self.thumbnails.peek(i) for i in cells.index.tolist()]
        self._pending = [(k, i) for k, (i, pm) in enumerate(zip(cells.index.tolist(), pixmaps)) if pm is None]
        self.cells = cells
        self.item.set_cells(cells, pixmaps)
        self.last_redraw_ms = (time.perf_counter() - t0) * 1e3
        if self._pending and not self._loading:
            self._loading = True
            QtCore.QTimer.singleShot(0, self._load_some)

    def _load_some(self) -> None:
        """Read queued thumbnails for up to :data:`LOAD_BUDGET_MS`, then yield to the event loop."""
        self._loading = False
        if not self._pending or self.thumbnails is None:
            return
        t0 = time.perf_counter()
        while self._pending and (time.perf_counter() - t0) * 1e3 < LOAD_BUDGET_MS:
            k, i = self._pending.pop(0)
            self.item.set_pixmap(k, self.thumbnails.pixmap(i))
        self.item.update()
        if self._pending:
            self._loading = True
            QtCore.QTimer.singleShot(0, self._load_some)

    @property
    def loading(self) -> bool:
        """Thumbnails of the current cells are still being read."""
        return bool(self._pending)

    def finish_loading(self) -> None:
        """Read every queued thumbnail now (tests, screenshots, the PNG export)."""
        while self._pending:
            self._load_some()

    def object_at(self, x: float, y: float) -> int:
        """The object whose thumbnail covers data point (x, y), or -1."""
        if not self.enabled or self.cells is None:
            return -1
        return self.cells.lookup(x, y)

    def image(self) -> QtGui.QImage:
        """The mosaic of the cells in view, each thumbnail at its own resolution.

        Raises:
            ValueError: the mosaic is off or has no cells.
        """
        if not self.enabled or self.cells is None or self.thumbnails is None:
            raise ValueError("the mosaic is off: turn it on (View ▸ Image mosaic) before saving it")
        thumbs = self.thumbnails
        rgb = compose(self.cells, thumbs.rgb, thumbs.size)
        return rgb_to_qimage(rgb)

    def save_png(self, path: str) -> tuple[int, int, int]:
        """Write :meth:`image` to ``path`` (PNG).

        Returns:
            ``(cells, width, height)``.

        Raises:
            ValueError: the mosaic is off or empty.
            OSError: the file cannot be written.
        """
        img = self.image()
        if not img.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}: check that its folder exists and is writable")
        return len(self.cells), img.width(), img.height()


def pixel_scale(vb) -> float:
    """Data units per screen pixel of a ViewBox (the larger of x and y), or 0 before layout."""
    ux, uy = vb.viewPixelSize()
    return float(max(abs(ux), abs(uy))) if np.isfinite(ux) and np.isfinite(uy) else 0.0
