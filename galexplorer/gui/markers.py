"""Fast fixed-size markers: one pre-rendered sprite atlas, drawn with ``drawPixmapFragments``.

``pyqtgraph.ScatterPlotItem`` keeps a Python record per point and costs ~3 µs per point in
``setData`` (~100 ms for 30k points), too slow to refill as the user pans. :class:`MarkerItem`
keeps only NumPy arrays (points sorted by x, a sprite index per point), culls to the view at
paint time with two ``searchsorted`` and a mask, and draws every visible point with one
``QPainter.drawPixmapFragments`` call from a small shared atlas — no Python object per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import internals
from PySide6 import QtCore, QtGui

from .density import SortedPoints, ViewRect


@dataclass(frozen=True)
class Sprite:
    """One marker look.

    Attributes:
        shape: "disc", "ring", "square", "diamond" or "cross".
        size: diameter in logical pixels.
        fill: fill colour ("#rrggbb" or "#rrggbbaa"), or None.
        line: outline colour, or None.
        width: outline width in pixels.
    """

    shape: str = "disc"
    size: float = 7.0
    fill: str | None = "#9ecbff"
    line: str | None = None
    width: float = 1.0


def _colour(c: str) -> QtGui.QColor:
    c = c.lstrip("#")
    if len(c) == 8:
        return QtGui.QColor(int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), int(c[6:8], 16))
    return QtGui.QColor("#" + c)


class SpriteAtlas:
    """Sprites rendered once into one pixmap (at the screen's device-pixel ratio).

    Attributes:
        pixmap: the atlas.
        rects: (S, 4) float64 source rectangles (x, y, w, h) in atlas pixels.
        extent: the largest sprite's half-size in logical pixels (for culling margins).
    """

    def __init__(self, sprites: list[Sprite], dpr: float = 1.0):
        self.sprites = list(sprites)
        self.dpr = float(dpr)
        cell = int(np.ceil(max(s.size + 2 * s.width for s in sprites) * dpr)) + 2
        cols = max(1, min(len(sprites), 32))
        rows = (len(sprites) + cols - 1) // cols
        img = QtGui.QImage(cols * cell, rows * cell, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        img.fill(0)
        p = QtGui.QPainter(img)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        self.rects = np.zeros((len(sprites), 4), np.float64)
        for k, s in enumerate(sprites):
            r, c = divmod(k, cols)
            cx, cy = c * cell + cell / 2, r * cell + cell / 2
            self._draw(p, s, cx, cy, dpr)
            self.rects[k] = (c * cell, r * cell, cell, cell)
        p.end()
        self.pixmap = QtGui.QPixmap.fromImage(img)
        self.cell = cell
        self.extent = max(s.size / 2 + s.width for s in sprites)

    @staticmethod
    def _draw(p: QtGui.QPainter, s: Sprite, cx: float, cy: float, dpr: float) -> None:
        d = s.size * dpr
        pen = QtGui.QPen(_colour(s.line), s.width * dpr) if s.line else QtGui.QPen(QtCore.Qt.PenStyle.NoPen)
        p.setPen(pen)
        p.setBrush(QtGui.QBrush(_colour(s.fill)) if s.fill else QtGui.QBrush(QtCore.Qt.BrushStyle.NoBrush))
        rect = QtCore.QRectF(cx - d / 2, cy - d / 2, d, d)
        if s.shape in ("disc", "ring"):
            p.drawEllipse(rect)
        elif s.shape == "square":
            p.drawRect(rect)
        elif s.shape == "diamond":
            p.drawPolygon(QtGui.QPolygonF([QtCore.QPointF(cx, cy - d / 2), QtCore.QPointF(cx + d / 2, cy),
                                           QtCore.QPointF(cx, cy + d / 2), QtCore.QPointF(cx - d / 2, cy)]))
        elif s.shape == "cross":
            p.drawLine(QtCore.QPointF(cx - d / 2, cy), QtCore.QPointF(cx + d / 2, cy))
            p.drawLine(QtCore.QPointF(cx, cy - d / 2), QtCore.QPointF(cx, cy + d / 2))
        else:
            raise ValueError(f"unknown marker shape {s.shape!r}")


class MarkerItem(pg.GraphicsObject):
    """Points drawn as fixed-size sprites (size in screen pixels, like ``pxMode=True``).

    Call :meth:`set_points` with the points (sorted by x) and a sprite index per point; the
    item draws only the points in view.
    """

    def __init__(self, atlas: SpriteAtlas | None = None):
        super().__init__()
        self._atlas = atlas
        self._points: SortedPoints | None = None
        self._sprite: np.ndarray = np.empty(0, np.int32)
        self._bounds = QtCore.QRectF()
        self._frags = internals.PrimitiveArray(QtGui.QPainter.PixmapFragment, 10)
        self.last_drawn = 0
        self.setFlag(self.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    # -- data ----------------------------------------------------------------------------------
    def set_atlas(self, atlas: SpriteAtlas) -> None:
        self._atlas = atlas
        self.update()

    @property
    def atlas(self) -> SpriteAtlas | None:
        return self._atlas

    def set_points(self, points: SortedPoints | None, sprite: np.ndarray | None = None) -> None:
        """Show ``points`` with ``sprite[k]`` (an atlas index, in x order) for the k-th point;
        ``sprite`` None draws every point with sprite 0."""
        self.prepareGeometryChange()
        self._points = points
        n = 0 if points is None else points.n
        self._sprite = np.zeros(n, np.int32) if sprite is None else np.asarray(sprite, np.int32)
        if points is None or n == 0:
            self._bounds = QtCore.QRectF()
        else:
            b = points.bounds()
            self._bounds = QtCore.QRectF(b.x0, b.y0, max(b.width, 1e-9), max(b.height, 1e-9))
        self.update()

    def set_xy(self, xy: np.ndarray, sprite: np.ndarray | None = None) -> None:
        """Convenience for small overlays: ``xy`` (M, 2) in any order, ``sprite`` (M,) per point."""
        xy = np.asarray(xy, np.float32).reshape(-1, 2)
        if len(xy) == 0:
            self.set_points(None)
            return
        pts = SortedPoints(xy)
        spr = None if sprite is None else np.asarray(sprite)[pts.order]
        self.set_points(pts, spr)

    def set_sprites(self, sprite: np.ndarray) -> None:
        """Change the sprite of every point (x order), e.g. a new colouring or selection."""
        self._sprite = np.asarray(sprite, np.int32)
        self.update()

    # -- QGraphicsItem -------------------------------------------------------------------------
    def boundingRect(self) -> QtCore.QRectF:
        if self._bounds.isNull() or self._atlas is None:
            return QtCore.QRectF(self._bounds)
        # markers reach beyond the points by their radius in screen pixels
        px = self.pixelVectors()
        if px is None or px[0] is None:
            return QtCore.QRectF(self._bounds)
        pad = self._atlas.extent + 1
        dx, dy = abs(px[0].x()) * pad, abs(px[1].y()) * pad
        return self._bounds.adjusted(-dx, -dy, dx, dy)

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()
        super().viewRangeChanged()

    def paint(self, p: QtGui.QPainter, option, widget=None) -> None:
        pts, atlas = self._points, self._atlas
        self.last_drawn = 0
        if pts is None or atlas is None or pts.n == 0:
            return
        vr = self.viewRect()
        if vr is None:
            return
        t = p.transform()
        sx, sy = abs(t.m11()) or 1.0, abs(t.m22()) or 1.0
        pad = atlas.extent + 1
        rect = ViewRect(vr.left() - pad / sx, vr.right() + pad / sx, vr.top() - pad / sy, vr.bottom() + pad / sy)
        s, mask = pts.cull(rect)
        k = np.flatnonzero(mask)
        n = len(k)
        if n == 0:
            return
        x = pts.x[s][k].astype(np.float64)
        y = pts.y[s][k].astype(np.float64)
        spr = self._sprite[s][k]
        # device coordinates: the painter's affine transform applied in NumPy
        dx = t.m11() * x + t.m21() * y + t.m31()
        dy = t.m12() * x + t.m22() * y + t.m32()
        self._frags.resize(n)
        f = self._frags.ndarray()
        f[:, 0] = dx
        f[:, 1] = dy
        f[:, 2:6] = atlas.rects[spr]
        f[:, 6] = f[:, 7] = 1.0 / atlas.dpr
        f[:, 8] = 0.0
        f[:, 9] = 1.0
        p.save()
        p.resetTransform()
        p.drawPixmapFragments(*self._frags.drawargs(), atlas.pixmap)
        p.restore()
        self.last_drawn = n
