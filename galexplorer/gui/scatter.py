"""The scatter of the 2-D projection: interactive at 10^6 points.

Layers, bottom to top (each a separate item, so changing one never redraws the others):

* :class:`DensityItem` — when more than ``marker_threshold`` points are in view, an image of
  the points binned at screen resolution (:mod:`.density`), recomputed after each pan or zoom
  (coalesced: one recomputation per pass of the event loop);
* a :class:`~.markers.MarkerItem` with one marker per point — when few enough are in view;
* small overlays: excluded, labelled (coloured by score), queued, the current and the hovered
  object;
* the lasso or rectangle being drawn, the legend, and the hover card (in scene coordinates).

The widget only displays and forwards: it emits :attr:`ScatterView.hovered`,
:attr:`ScatterView.clicked` and :attr:`ScatterView.regionSelected`; what a selection or a
click means is decided by the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ..label_scale import MAX_SCORE, MIN_SCORE
from . import theme
from .colouring import DISPUTE_COLOURS, SCORE_COLOURS, ColourSpec, density_spec
from .density import (
    GRID_MIN_POINTS,
    OverviewGrid,
    SortedPoints,
    ViewRect,
    bin_view,
    premultiplied_table,
    render_rgba,
)
from .markers import MarkerItem, Sprite, SpriteAtlas
from .mosaic_layer import MosaicItem, MosaicLayer, pixel_scale
from .picking import NearestIndex
from .selection import SelectionMode, in_polygon, in_rectangle
from .thumbs import ThumbnailCache
from .tooltip import HoverCard

log = logging.getLogger(__name__)

MARKER_THRESHOLD = 30_000
HOVER_RADIUS_PX = 8.0
NO_VALUE = "#4a5263"


def colormap_lut(name: str) -> np.ndarray:
    """(256, 4) uint8 lookup table of a pyqtgraph colour map (viridis, inferno, plasma ...)."""
    return pg.colormap.get(name).getLookupTable(nPts=256, alpha=True, mode="byte").astype(np.uint8)


class DensityItem(pg.GraphicsObject):
    """An RGBA image placed on a rectangle in data coordinates (the density of the points)."""

    def __init__(self):
        super().__init__()
        self._image: QtGui.QImage | None = None
        self._pixels: np.ndarray | None = None   # keeps the QImage's memory alive
        self._rect = QtCore.QRectF()

    def set_image(self, rgba: np.ndarray | None, rect: ViewRect | None) -> None:
        """``rgba``: (H, W, 4) uint8 premultiplied, row 0 at ``rect.y0``."""
        self.prepareGeometryChange()
        if rgba is None or rect is None:
            self._image, self._pixels, self._rect = None, None, QtCore.QRectF()
        else:
            self._pixels = np.ascontiguousarray(rgba)
            h, w = self._pixels.shape[:2]
            self._image = QtGui.QImage(self._pixels.data, w, h, 4 * w,
                                       QtGui.QImage.Format.Format_RGBA8888_Premultiplied)
            self._rect = QtCore.QRectF(rect.x0, rect.y0, rect.width, rect.height)
        self.update()

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(self._rect)

    def paint(self, p: QtGui.QPainter, option, widget=None) -> None:
        if self._image is not None:
            p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, False)
            p.drawImage(self._rect, self._image)


class LegendItem(QtWidgets.QGraphicsObject):
    """Colour bar (continuous) or swatches (categories), plus the label colours, drawn in the
    top-left corner of the plot."""

    def __init__(self):
        super().__init__()
        self.setZValue(900)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self._spec: ColourSpec = density_spec()
        self._lut: np.ndarray | None = None
        self._show_labels = False
        self.labels_caption = "your scores"     # whose scores the discs are (set_spec)
        self._markers = False
        self._mosaic = False
        self._size = QtCore.QSizeF(10, 10)
        self._font = QtGui.QFont(theme.font_family(), 9)

    def set_spec(self, spec: ColourSpec, lut: np.ndarray | None, show_labels: bool, markers: bool = False,
                 mosaic: bool = False, labels_caption: str = "") -> None:
        self.prepareGeometryChange()
        self.labels_caption = labels_caption or "your scores"
        self._mosaic = mosaic
        self._spec, self._lut, self._show_labels = spec, lut, show_labels
        self._markers = markers
        fm = QtGui.QFontMetricsF(self._font)
        lh = fm.height() + 2
        w = max(170.0, fm.horizontalAdvance(self._title()) + 20)
        h = 8 + lh
        if self._has_bar():
            h += 14 + lh
        elif spec.kind == "categorical":
            shown = spec.categories[:12]
            w = max(w, max((fm.horizontalAdvance(c) for c in shown), default=0) + 36)
            h += lh * len(shown) + (lh if len(spec.categories) > 12 else 0)
        if show_labels:
            h += lh + 18
            w = max(w, fm.horizontalAdvance(self.labels_caption) + 20)
        self._size = QtCore.QSizeF(w, h + 6)
        self.update()

    def _has_bar(self) -> bool:
        """A colour bar for continuous values and the density image (not for plain markers)."""
        return not self._mosaic and (self._spec.kind == "continuous"
                                     or (self._spec.kind == "density" and not self._markers))

    def _title(self) -> str:
        if self._mosaic:
            return "▦ image mosaic: the object nearest each cell's centre"
        if self._spec.kind == "density":
            return "● one marker per object" if self._markers else "density of objects (log)"
        return self._spec.name

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(0, 0, self._size.width() + 1, self._size.height() + 1)

    def paint(self, p: QtGui.QPainter, option, widget=None) -> None:
        spec = self._spec
        w, h = self._size.width(), self._size.height()
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        p.setPen(QtGui.QPen(QtGui.QColor(theme.BORDER), 1))
        p.setBrush(QtGui.QColor(13, 16, 22, 215))
        p.drawRoundedRect(QtCore.QRectF(0.5, 0.5, w, h), 6, 6)
        p.setFont(self._font)
        fm = QtGui.QFontMetricsF(self._font)
        lh = fm.height() + 2
        y = 6.0
        p.setPen(QtGui.QColor(theme.TEXT))
        p.drawText(QtCore.QPointF(10, y + fm.ascent()), self._title())
        y += lh
        if self._has_bar() and self._lut is not None:
            bar = QtCore.QRectF(10, y + 2, w - 20, 10)
            grad = QtGui.QLinearGradient(bar.topLeft(), bar.topRight())
            start = 0.3 if spec.kind == "density" else 0.0
            for k in range(0, 256, 16):
                r, g, b = (int(v) for v in self._lut[min(255, int(start * 255 + k * (1 - start)))][:3])
                grad.setColorAt(k / 255, QtGui.QColor(r, g, b))
            p.setPen(QtCore.Qt.PenStyle.NoPen)
            p.setBrush(grad)
            p.drawRect(bar)
            y += 14
            lo, hi = ("sparse", "dense") if spec.kind == "density" else (_short(spec.vrange[0]), _short(spec.vrange[1]))
            p.setPen(QtGui.QColor(theme.TEXT_DIM))
            p.drawText(QtCore.QPointF(10, y + fm.ascent()), lo)
            p.drawText(QtCore.QPointF(w - 10 - fm.horizontalAdvance(hi), y + fm.ascent()), hi)
            y += lh
        elif spec.kind == "categorical":
            for name, colour in list(zip(spec.categories, spec.colours))[:12]:
                p.setPen(QtCore.Qt.PenStyle.NoPen)
                p.setBrush(QtGui.QColor(colour))
                p.drawEllipse(QtCore.QRectF(12, y + lh / 2 - 4, 8, 8))
                p.setPen(QtGui.QColor(theme.TEXT))
                p.drawText(QtCore.QPointF(28, y + fm.ascent()), name)
                y += lh
            if len(spec.categories) > 12:
                p.setPen(QtGui.QColor(theme.TEXT_DIM))
                p.drawText(QtCore.QPointF(28, y + fm.ascent()), f"… {len(spec.categories) - 12} more")
                y += lh
        if self._show_labels:
            y += 4
            p.setPen(QtGui.QColor(theme.TEXT_DIM))
            p.drawText(QtCore.QPointF(10, y + fm.ascent()), self.labels_caption)
            y += lh
            step = (w - 20) / 6
            for s, colour in enumerate(SCORE_COLOURS):
                cx = 10 + step * s + step / 2
                p.setPen(QtGui.QPen(QtGui.QColor("#0b0d12"), 1.5))
                p.setBrush(QtGui.QColor(colour))
                p.drawEllipse(QtCore.QPointF(cx - 7, y + 6), 5, 5)
                p.setPen(QtGui.QColor(theme.TEXT))
                p.drawText(QtCore.QPointF(cx + 1, y + 6 + fm.ascent() / 2 - 1), str(s))


def _short(v: float) -> str:
    """A colour-bar end: 3 significant digits, and 0 for values that only round-off keeps."""
    return "0" if abs(v) < 5e-4 else f"{v:.3g}"


def frame(xy: np.ndarray, keep: float = 99.0, margin: float = 0.1) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` framing the central ``keep`` percent of the points on each axis,
    widened by ``margin`` of that range (never wider than all the points)."""
    if len(xy) > 200_000:   # percentiles of a sample are as good, and 10x cheaper (at 10^7: 2 s
        # less); with replacement, as choice without it permutes all N
        xy = xy[np.sort(np.random.default_rng(0).integers(0, len(xy), 200_000))]
    finite = xy[np.isfinite(xy).all(axis=1)]
    if len(finite) == 0:
        return 0.0, 1.0, 0.0, 1.0
    tail = (100.0 - keep) / 2
    (x0, y0), (x1, y1) = np.percentile(finite, [tail, 100.0 - tail], axis=0)
    mx, my = (x1 - x0) * margin or 1.0, (y1 - y0) * margin or 1.0
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    return (float(max(x0 - mx, lo[0])), float(min(x1 + mx, hi[0])),
            float(max(y0 - my, lo[1])), float(min(y1 + my, hi[1])))


class Tool:
    PAN = "pan"
    LASSO = "lasso"
    RECT = "rectangle"


class ScatterViewBox(pg.ViewBox):
    """A ViewBox whose left-drag draws a lasso or a rectangle when a selection tool is on,
    and whose left click picks the nearest object."""

    def __init__(self, owner: ScatterView):
        super().__init__(enableMenu=False)
        self._owner = owner
        self._drawing: list[QtCore.QPointF] = []

    def mouseDragEvent(self, ev, axis=None):
        tool = self._owner.tool
        if tool == Tool.PAN or ev.button() != QtCore.Qt.MouseButton.LeftButton:
            self._owner.card.hide_card()
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        pos = self.mapSceneToView(ev.scenePos())
        if ev.isStart():
            self._drawing = [self.mapSceneToView(ev.buttonDownScenePos()), pos]
        else:
            self._drawing.append(pos)
        self._owner.draw_region(tool, self._drawing)
        if ev.isFinish():
            pts = np.array([(q.x(), q.y()) for q in self._drawing], dtype=np.float64)
            self._drawing = []
            self._owner.finish_region(tool, pts, ev.modifiers())

    def mouseClickEvent(self, ev):
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            i = self._owner.object_at(ev.scenePos())
            if i >= 0:
                ev.accept()
                self._owner.clicked.emit(i)
                return
        super().mouseClickEvent(ev)


def mode_from_modifiers(mods, default: SelectionMode = SelectionMode.REPLACE) -> SelectionMode:
    """Shift adds, Ctrl removes, Shift+Ctrl intersects; otherwise ``default``."""
    shift = bool(mods & QtCore.Qt.KeyboardModifier.ShiftModifier)
    ctrl = bool(mods & (QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.MetaModifier))
    if shift and ctrl:
        return SelectionMode.INTERSECT
    if shift:
        return SelectionMode.ADD
    if ctrl:
        return SelectionMode.REMOVE
    return default


def _style_plot(pi, vb) -> None:
    """The map's axes: thin, dim, ticks inside; no pyqtgraph buttons or menu; equal aspect."""
    pi.hideButtons()
    pi.setMenuEnabled(False)
    for name in ("left", "bottom"):
        ax = pi.getAxis(name)
        ax.setPen(pg.mkPen(theme.BORDER_LIGHT))
        ax.setTextPen(pg.mkPen(theme.TEXT_DIM))
        ax.setStyle(tickLength=-4)
    vb.setAspectLocked(True)
    vb.setDefaultPadding(0.03)


class ScatterView(pg.PlotWidget):
    """The projection, drawn as density or markers, with overlays, hover card and lasso.

    Signals:
        hovered(int): the object under the cursor (-1 for none).
        clicked(int): an object was clicked.
        regionSelected(object, object): int64 indices inside a drawn lasso or rectangle, and
            the :class:`~.selection.SelectionMode` (from the modifier keys).
        rendered(str): a view was drawn as "density" or "markers" (tests, benchmarks).
    """

    hovered = QtCore.Signal(int)
    clicked = QtCore.Signal(int)
    regionSelected = QtCore.Signal(object, object)
    toolChanged = QtCore.Signal(str)
    rendered = QtCore.Signal(str)

    def __init__(self, parent=None, marker_threshold: int = MARKER_THRESHOLD):
        self._vb = ScatterViewBox(self)
        super().__init__(parent, viewBox=self._vb, background=theme.BG)
        self.marker_threshold = int(marker_threshold)
        self.tool = Tool.PAN
        self.default_mode = SelectionMode.REPLACE
        self.describe: Callable[[int], tuple[str, list[tuple[str, str]]]] | None = None
        self.thumbnails: ThumbnailCache | None = None
        self.mode = "density"
        self._labels_caption = "your scores"     # whose scores the discs are (set_labelled)
        self.last_refresh_ms = 0.0
        self._marker_size = 6.0

        _style_plot(self.getPlotItem(), self._vb)

        self._points: SortedPoints | None = None
        self._grid: OverviewGrid | None = None
        self._xy = np.empty((0, 2), np.float32)
        self._picker: NearestIndex | None = None
        self._picker_pending = False
        self._spec = density_spec()
        self._lut = colormap_lut("inferno")
        self._table = premultiplied_table(self._lut)
        self._weights: np.ndarray | None = None
        self._colour_idx = np.empty(0, np.int32)
        self._selected_sorted: np.ndarray | None = None
        self.selection = np.empty(0, np.int64)

        self._make_layers()

        self.card = HoverCard()
        self.scene().addItem(self.card)
        self.legend = LegendItem()
        self.scene().addItem(self.legend)

        self._refresh_pending = False
        self._hover_pending = False
        self._hover_scene_pos: QtCore.QPointF | None = None
        self.hovered_index = -1
        self._vb.sigRangeChanged.connect(self._schedule_refresh)
        self._vb.sigResized.connect(self._schedule_refresh)
        self._vb.sigResized.connect(self._place_legend)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.setMouseTracking(True)
        self._update_legend()

    def _make_layers(self) -> None:
        """The items drawn over one another: density or markers, the mosaic, the overlays of
        excluded, labelled, disputed, queued, current and hovered objects, the selection's outline."""
        self.density = DensityItem()
        self.density.setZValue(0)
        self.markers = MarkerItem()
        self.markers.setZValue(1)
        self.markers.hide()
        self.excluded_layer = MarkerItem(SpriteAtlas([Sprite("cross", 7, None, theme.EXCLUDED, 1.3)]))
        self.labelled_layer = MarkerItem(SpriteAtlas(
            [Sprite("disc", 9, c, "#07090d", 1.4) for c in SCORE_COLOURS]))
        # coloured by disputes: agreed and disputed labelled objects over their score discs,
        # disputed on top (one layer each: a layer draws in x order, not in the order given)
        self.agreed_layer, self.disputed_layer = (
            MarkerItem(SpriteAtlas([Sprite("disc", 10, c, "#07090d", 1.4)])) for c in DISPUTE_COLOURS)
        self.queue_layer = MarkerItem(SpriteAtlas([Sprite("ring", 13, None, theme.QUEUED, 1.6)]))
        self.current_layer = MarkerItem(SpriteAtlas([Sprite("ring", 20, None, theme.CURRENT, 2.2)]))
        self.hover_layer = MarkerItem(SpriteAtlas([Sprite("ring", 15, None, theme.HOVER, 1.6)]))
        self.mosaic_item = MosaicItem()
        self.mosaic = MosaicLayer(self.mosaic_item, parent=self)
        self.mosaic_item.hide()
        for z, item in enumerate([self.density, self.markers, self.mosaic_item, self.excluded_layer,
                                  self.labelled_layer,
                                  self.agreed_layer, self.disputed_layer,
                                  self.queue_layer, self.current_layer, self.hover_layer]):
            item.setZValue(z)
            self._vb.addItem(item, ignoreBounds=item is not self.density)
        self._region = QtWidgets.QGraphicsPathItem()
        self._region.setPen(pg.mkPen(theme.ACCENT, width=1.5, style=QtCore.Qt.PenStyle.DashLine))
        self._region.setBrush(QtGui.QColor(90, 169, 255, 40))
        self._region.setZValue(50)
        self._vb.addItem(self._region, ignoreBounds=True)
        self._region.hide()

    # -- data ----------------------------------------------------------------------------------
    def set_points(self, xy: np.ndarray) -> None:
        """Show a new projection, (N, 2) data coordinates; resets the view."""
        self._xy = np.asarray(xy, np.float32)
        self._points = SortedPoints(self._xy)
        self._grid = OverviewGrid(self._points) if self._points.n >= GRID_MIN_POINTS else None
        # the hover index is started after the map's first paint (its build competes for the
        # cores: seconds at 10^7 points); asking for it earlier starts it at once
        self._picker = None
        self._picker_pending = True
        self._selected_sorted = None
        self.selection = np.empty(0, np.int64)
        self.mosaic.clear()
        self._colour_idx = np.zeros(len(self._xy), np.int32)
        self.set_colour(density_spec())
        self.markers.set_points(self._points, self._sprites())
        self.reset_view()

    @property
    def n_points(self) -> int:
        return 0 if self._points is None else self._points.n

    @property
    def picker(self) -> NearestIndex | None:
        self._start_picker()
        return self._picker

    def _start_picker(self) -> None:
        if self._picker_pending:
            self._picker_pending = False
            self._picker = NearestIndex(self._xy)

    def set_colour(self, spec: ColourSpec) -> None:
        """Colour by density, a continuous column or categories (see :mod:`.colouring`)."""
        self._spec = spec
        pts = self._points
        if spec.kind == "density":
            self._lut = colormap_lut("inferno")
        elif spec.kind == "continuous":
            self._lut = colormap_lut(spec.cmap)
        else:
            self._lut = colormap_lut("viridis")
        self._table = premultiplied_table(self._lut)
        self._weights = None
        if pts is not None and spec.kind == "continuous":
            v = pts.sorted_values(spec.values)
            finite = np.isfinite(v)
            self._weights = np.stack([np.where(finite, v, 0).astype(np.float32), finite.astype(np.float32)])
        elif pts is not None and spec.kind == "categorical":
            rgb = pts.sorted_values(spec.rgb_weights().T).T
            valid = pts.sorted_values(spec.values >= 0).astype(np.float32)
            self._weights = np.vstack([rgb, valid[None]]).astype(np.float32)
        self._build_marker_atlas()
        if pts is not None:
            self._colour_idx = pts.sorted_values(spec.colour_index(256)) if spec.kind != "density" \
                else np.zeros(pts.n, np.int32)
            self.markers.set_sprites(self._sprites())
        self._update_legend()
        self._schedule_refresh()

    @property
    def colour_spec(self) -> ColourSpec:
        return self._spec

    def _palette(self) -> list[str]:
        spec = self._spec
        if spec.kind == "categorical":
            return list(spec.colours) + [NO_VALUE]
        if spec.kind == "continuous":
            return ["#" + bytes(self._lut[k][:3].astype(np.uint8)).hex() for k in range(256)] + [NO_VALUE]
        return ["#9fc6ff", NO_VALUE]

    def _build_marker_atlas(self, size: float | None = None) -> None:
        size = self._marker_size if size is None else size
        self._marker_size = size
        pal = self._palette()
        dpr = self.devicePixelRatioF() if self.isVisible() else 1.0
        self._n_palette = len(pal)
        key = (tuple(pal), float(size), float(dpr))
        if getattr(self, "_atlas_key", None) == key:
            return   # same colours and size (a refit's recolour): the sprites are drawn already
        sprites = [Sprite("disc", size, c + "e6", "#0b0e14", 0.6 if size >= 6 else 0) for c in pal]
        sprites += [Sprite("disc", size - 1, c + "38", None, 0) for c in pal]   # dimmed: not selected
        self.markers.set_atlas(SpriteAtlas(sprites, dpr))
        self._atlas_key = key

    def _sprites(self) -> np.ndarray:
        idx = self._colour_idx.copy() if len(self._colour_idx) else np.zeros(self.n_points, np.int32)
        n_pal = getattr(self, "_n_palette", 1)
        np.clip(idx, 0, n_pal - 1, out=idx)
        if self._selected_sorted is not None:
            idx[~self._selected_sorted] += n_pal
        return idx

    def set_selection(self, indices: np.ndarray) -> None:
        """Highlight these objects and dim the rest (empty: no selection)."""
        self.selection = np.asarray(indices, np.int64)
        if self._points is None:
            return
        if len(self.selection) == 0:
            self._selected_sorted = None
        else:
            mask = np.zeros(self._points.n, bool)
            mask[self.selection] = True
            self._selected_sorted = mask[self._points.order]
        self.markers.set_sprites(self._sprites())
        self._schedule_refresh()

    def set_labelled(self, indices: np.ndarray, scores: np.ndarray, caption: str = "your scores") -> None:
        """Labelled objects, drawn on top in their score's colour (scores 0–5); ``caption`` heads
        their key in the legend (whose scores they are)."""
        self._labels_caption = caption
        idx = np.asarray(indices, np.int64)
        s = np.clip(np.rint(np.asarray(scores, np.float64)), MIN_SCORE, MAX_SCORE).astype(np.int32)
        # draw low scores first so interesting (high) ones stay on top where they overlap
        o = np.argsort(s, kind="stable")
        self.labelled_layer.set_xy(self._xy[idx[o]], s[o])
        self._update_legend()

    def set_disputes(self, indices: np.ndarray, disputed: np.ndarray) -> None:
        """While the map is coloured by disputes: labelled objects ``indices`` drawn over their
        score discs, green where the labellers agree and red where ``disputed`` (on top).
        Empty ``indices`` clear both layers (any other colouring)."""
        idx = np.asarray(indices, np.int64)
        d = np.asarray(disputed, bool)
        self.agreed_layer.set_xy(self._xy[idx[~d]])
        self.disputed_layer.set_xy(self._xy[idx[d]])
        self._update_legend()

    def set_excluded(self, indices: np.ndarray) -> None:
        self.excluded_layer.set_xy(self._xy[np.asarray(indices, np.int64)])

    def set_queue(self, indices: np.ndarray) -> None:
        self.queue_layer.set_xy(self._xy[np.asarray(indices, np.int64)])

    def set_current(self, index: int | None) -> None:
        self.current_layer.set_xy(self._xy[[index]] if index is not None and index >= 0 else np.empty((0, 2)))

    # -- view ----------------------------------------------------------------------------------
    def reset_view(self) -> None:
        if self._points is None or self._points.n == 0:
            return
        # framed on the data: the 0.5-99.5 percentiles, so a few far outliers do not shrink the
        # map to a dot (Home, the whole map, after a zoom; the outliers are a pan away)
        x0, x1, y0, y1 = frame(self._xy)
        # a little more room at the top, where the legend sits
        self._vb.setRange(xRange=(x0, x1), yRange=(y0, y1 + 0.08 * (y1 - y0)), padding=0.03)
        self._schedule_refresh()

    def view_rect(self) -> ViewRect:
        r = self._vb.viewRect()
        return ViewRect(r.left(), r.right(), r.top(), r.bottom())

    def zoom_to(self, index: int, half_width: float | None = None) -> None:
        """Centre the view on object ``index`` (keeping the zoom unless ``half_width`` given)."""
        x, y = (float(v) for v in self._xy[index])
        r = self.view_rect()
        hw = half_width if half_width is not None else r.width / 2
        hh = half_width * r.height / r.width if half_width is not None else r.height / 2
        self._vb.setRange(xRange=(x - hw, x + hw), yRange=(y - hh, y + hh), padding=0)

    def _schedule_refresh(self, *args) -> None:
        # coalesce a burst of range changes (a drag, a wheel spin) into one recomputation
        # per pass of the event loop
        if not self._refresh_pending:
            self._refresh_pending = True
            QtCore.QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """Recompute the density image (or switch to markers) for the current view now."""
        self._refresh_pending = False
        pts = self._points
        if pts is None or pts.n == 0:
            self.density.set_image(None, None)
            return
        t0 = time.perf_counter()
        rect = self.view_rect()
        if rect.width <= 0 or rect.height <= 0:
            return
        dpr = self.devicePixelRatioF()
        geo = self._vb.boundingRect()
        w, h = max(1, int(round(geo.width() * dpr))), max(1, int(round(geo.height() * dpr)))
        b = None
        if self._grid is not None and self._grid.covers(rect, w, h):   # zoomed out at 10^7: from the grid
            b = self._grid.bin(rect, w, h, self._weights, self._selected_sorted)
            n_in = b.n_in_view
        else:
            n_in = pts.count_in(rect)
        previous = self.mode
        if n_in <= self.marker_threshold:
            # fewer points, bigger markers: crowded views stay readable
            size = 7.0 if n_in <= 2_000 else 5.5 if n_in <= 8_000 else 4.0
            if size != self._marker_size:
                self._build_marker_atlas(size)
            self.density.hide()
            self.markers.show()
            self.mode = "markers"
        else:
            spec = self._spec
            if b is None:
                b = bin_view(pts, rect, w, h, self._weights, self._selected_sorted)
            if spec.kind == "continuous":
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = b.sums[0] / b.sums[1]
                rgba = render_rgba(b, self._table, values=mean, vrange=spec.vrange)
            elif spec.kind == "categorical":
                with np.errstate(invalid="ignore", divide="ignore"):
                    rgb = np.nan_to_num(b.sums[:3] / b.sums[3][None])
                rgba = render_rgba(b, self._table, rgb=rgb)
            else:
                rgba = render_rgba(b, self._table)
            self.density.set_image(rgba, rect)
            self.markers.hide()
            self.density.show()
            self.mode = "density"
        if self.mode != previous:
            self._update_legend()
        self.last_refresh_ms = (time.perf_counter() - t0) * 1e3
        if self.mosaic.enabled:
            self._redraw_mosaic()
        if self._picker_pending:   # after the paint this refresh asked for
            QtCore.QTimer.singleShot(0, self._start_picker)
        self.rendered.emit(self.mode)

    # -- mosaic ------------------------------------------------------------------------------
    def set_mosaic(self, on: bool) -> None:
        """Show (or hide) the image mosaic: one thumbnail per cell of a grid over the view."""
        self.mosaic.thumbnails = self.thumbnails
        self.mosaic.set_enabled(on)
        self._update_legend()
        if on:
            self._start_picker()
            self._redraw_mosaic()

    def _redraw_mosaic(self) -> None:
        picker = self._picker
        if picker is None or not picker.ready:   # the KD-tree is still building: try again soon
            if self.mosaic.enabled:
                QtCore.QTimer.singleShot(50, self._retry_mosaic)
            return
        self.mosaic.thumbnails = self.thumbnails
        self.mosaic.redraw(picker, self.view_rect(), pixel_scale(self._vb))

    def _retry_mosaic(self) -> None:
        if self.mosaic.enabled:
            self._redraw_mosaic()

    # -- legend --------------------------------------------------------------------------------
    def _update_legend(self) -> None:
        # the score discs' key, unless the dispute layers cover them
        show_labels = self.labelled_layer._points is not None and len(self.disputed_layer._sprite) == 0 \
            and len(self.agreed_layer._sprite) == 0
        self.legend.set_spec(self._spec, self._lut, show_labels, markers=self.mode == "markers",
                             mosaic=self.mosaic.enabled, labels_caption=self._labels_caption)
        self._place_legend()

    def _place_legend(self, *args) -> None:
        r = self._vb.sceneBoundingRect()
        self.legend.setPos(r.left() + 10, r.top() + 10)

    # -- tools ---------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        """"pan", "lasso" or "rectangle"."""
        if tool not in (Tool.PAN, Tool.LASSO, Tool.RECT):
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self._region.hide()
        self.viewport().setCursor(QtCore.Qt.CursorShape.ArrowCursor if tool == Tool.PAN
                                  else QtCore.Qt.CursorShape.CrossCursor)
        self.toolChanged.emit(tool)

    def draw_region(self, tool: str, pts: list[QtCore.QPointF]) -> None:
        path = QtGui.QPainterPath()
        if tool == Tool.RECT:
            path.addRect(QtCore.QRectF(pts[0], pts[-1]).normalized())
        else:
            path.addPolygon(QtGui.QPolygonF(pts))
            path.closeSubpath()
        self._region.setPath(path)
        self._region.show()

    def finish_region(self, tool: str, pts: np.ndarray, modifiers) -> None:
        """A lasso (polygon) or rectangle was drawn (data coordinates)."""
        self._region.hide()
        if tool == Tool.RECT:
            idx = in_rectangle(self._xy, pts[0, 0], pts[0, 1], pts[-1, 0], pts[-1, 1])
        else:
            idx = in_polygon(self._xy, pts)
        self.regionSelected.emit(idx, mode_from_modifiers(modifiers, self.default_mode))

    # -- hover ---------------------------------------------------------------------------------
    def object_at(self, scene_pos: QtCore.QPointF) -> int:
        """The object within a few pixels of a scene position, or -1."""
        if self.picker is None or not self._vb.sceneBoundingRect().contains(scene_pos):
            return -1
        p = self._vb.mapSceneToView(scene_pos)
        if self.mosaic.enabled:   # the thumbnail under the mouse, not a point hidden under it
            i = self.mosaic.object_at(p.x(), p.y())
            if i >= 0:
                return i
        ux, uy = self._vb.viewPixelSize()   # data units per pixel
        if not (ux > 0 and uy > 0):
            return -1
        return self._picker.nearest(p.x(), p.y(), 1.0 / ux, 1.0 / uy, HOVER_RADIUS_PX)

    def _on_mouse_moved(self, scene_pos) -> None:
        self._hover_scene_pos = QtCore.QPointF(scene_pos)
        if not self._hover_pending:
            self._hover_pending = True
            QtCore.QTimer.singleShot(0, self.update_hover)

    def update_hover(self) -> None:
        """Show the card for the object under the last mouse position (or hide it)."""
        self._hover_pending = False
        pos = self._hover_scene_pos
        i = -1 if pos is None or self._region.isVisible() else self.object_at(pos)
        if i == self.hovered_index and (i < 0 or self.card.isVisible()):
            if i >= 0:
                self._place_card(i, pos)
            return
        self.hovered_index = i
        if i < 0:
            self.card.hide_card()
            self.hover_layer.set_xy(np.empty((0, 2)))
        else:
            self.hover_layer.set_xy(self._xy[[i]])
            self._place_card(i, pos)
        self.hovered.emit(i)

    def refresh_card(self) -> None:
        """Redraw the hover card's values (a label changed under the mouse)."""
        if self.card.isVisible() and self.hovered_index >= 0 and self._hover_scene_pos is not None:
            self._place_card(self.hovered_index, self._hover_scene_pos)

    def _place_card(self, i: int, pos: QtCore.QPointF) -> None:
        oid, lines = self.describe(i) if self.describe else (str(i), [])
        pm = self.thumbnails.pixmap(i) if self.thumbnails is not None else None
        self.card.show_object(i, oid, pm, lines, pos, self._vb.sceneBoundingRect())

    def leaveEvent(self, ev) -> None:
        self._hover_scene_pos = None
        self.card.hide_card()
        self.hover_layer.set_xy(np.empty((0, 2)))
        if self.hovered_index != -1:
            self.hovered_index = -1
            self.hovered.emit(-1)
        super().leaveEvent(ev)
