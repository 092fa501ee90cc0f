"""The inspector: one object large, with stretch and band choice, its numbers, and the score
buttons.

It displays what it is given and forwards the user's intent as signals; recording a score is
the main window's business (through the label journal).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..data.stretch import STRETCHES, to_rgb8
from ..errors import GalexplorerError
from . import theme
from .colouring import SCORE_COLOURS
from .elided import ElidedLabel
from .thumbs import rgb_to_qimage

COMPOSITE = "colour"


class StampView(QtWidgets.QWidget):
    """An image scaled to fit, keeping its aspect, sharp pixels when enlarged; the wheel zooms
    about the cursor, a left drag pans, a double-click asks for the larger view.

    Signals:
        hovered(float, float): the image pixel (x, y) under the cursor (NaN when off the image).
        enlargeRequested(): a double-click.
    """

    hovered = QtCore.Signal(float, float)
    enlargeRequested = QtCore.Signal()
    MAX_ZOOM = 32.0

    def __init__(self, parent=None):
        super().__init__(parent)
        self._image: QtGui.QImage | None = None
        self._message = ""
        self.zoom = 1.0
        self.centre: tuple[float, float] | None = None   # image pixel at the view's centre
        self._drag: QtCore.QPointF | None = None
        self.setMinimumSize(180, 180)
        self.setMouseTracking(True)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_rgb(self, rgb: np.ndarray | None, message: str = "", keep_view: bool = False) -> None:
        old = None if self._image is None else (self._image.width(), self._image.height())
        self._image = None if rgb is None else rgb_to_qimage(rgb)
        self._message = message
        new = None if self._image is None else (self._image.width(), self._image.height())
        if not keep_view or old != new:
            self.reset_view()
        self.update()

    @property
    def image(self) -> QtGui.QImage | None:
        return self._image

    def reset_view(self) -> None:
        self.zoom = 1.0
        self.centre = None if self._image is None else (self._image.width() / 2, self._image.height() / 2)
        self.update()

    def set_view(self, zoom: float, centre: tuple[float, float] | None) -> None:
        """Show the same part of the image as another view (``zoom`` and ``centre``, in image
        pixels) — the large view opens where the inspector was."""
        if self._image is None:
            return
        self.zoom = min(max(float(zoom), 1.0), self.MAX_ZOOM)
        if centre is not None:
            self.centre = (float(centre[0]), float(centre[1]))
        self._clamp()
        self.update()

    def view_box(self) -> tuple[float, float, float, float]:
        """``(x0, y0, x1, y1)``: the part of the image shown, in image pixels."""
        if self._image is None or self.centre is None:
            return 0.0, 0.0, 0.0, 0.0
        w, h = self._image.width() / self.zoom, self._image.height() / self.zoom
        cx, cy = self.centre
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    def _target(self) -> QtCore.QRectF:
        reserve = 22 if self._message else 0   # the message sits below the image
        side = max(10, min(self.width(), self.height() - reserve) - 8)
        return QtCore.QRectF((self.width() - side) / 2, (self.height() - reserve - side) / 2, side, side)

    def image_pos(self, pos: QtCore.QPointF) -> tuple[float, float]:
        """Image pixel (x, y) under widget position ``pos`` (NaN off the image)."""
        if self._image is None:
            return math.nan, math.nan
        t = self._target()
        x0, y0, x1, y1 = self.view_box()
        fx, fy = (pos.x() - t.left()) / t.width(), (pos.y() - t.top()) / t.height()
        if not (0 <= fx < 1 and 0 <= fy < 1):
            return math.nan, math.nan
        return x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)

    def _clamp(self) -> None:
        w, h = self._image.width(), self._image.height()
        hw, hh = w / self.zoom / 2, h / self.zoom / 2
        cx, cy = self.centre
        self.centre = (min(max(cx, hw), w - hw), min(max(cy, hh), h - hh))

    def zoom_by(self, factor: float, about: QtCore.QPointF | None = None) -> None:
        """Zoom by ``factor`` keeping the image pixel under ``about`` in place."""
        if self._image is None:
            return
        new = min(max(self.zoom * factor, 1.0), self.MAX_ZOOM)
        if about is not None:
            px, py = self.image_pos(about)
            if math.isfinite(px):
                cx, cy = self.centre
                k = self.zoom / new
                self.centre = (px + (cx - px) * k, py + (cy - py) * k)
        self.zoom = new
        self._clamp()
        self.update()

    def wheelEvent(self, ev: QtGui.QWheelEvent) -> None:
        steps = ev.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25 ** steps, ev.position())
        ev.accept()

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self._drag = ev.position()
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:
        pos = ev.position()
        if self._drag is not None and self._image is not None and self.zoom > 1.0:
            t = self._target()
            scale = self._image.width() / self.zoom / t.width()   # image pixels per screen pixel
            d = pos - self._drag
            cx, cy = self.centre
            self.centre = (cx - d.x() * scale, cy - d.y() * scale)
            self._drag = pos
            self._clamp()
            self.update()
        self.hovered.emit(*self.image_pos(pos))
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev: QtGui.QMouseEvent) -> None:
        self._drag = None
        super().mouseReleaseEvent(ev)

    def mouseDoubleClickEvent(self, ev: QtGui.QMouseEvent) -> None:
        self.enlargeRequested.emit()

    def leaveEvent(self, ev) -> None:
        self.hovered.emit(math.nan, math.nan)
        super().leaveEvent(ev)

    def heightForWidth(self, w: int) -> int:
        return w

    def paintEvent(self, ev) -> None:
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(theme.BG))
        target = self._target()
        if self._image is not None:
            x0, y0, x1, y1 = self.view_box()
            big = target.width() >= 2 * (x1 - x0)
            p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, not big)
            p.drawImage(target, self._image, QtCore.QRectF(x0, y0, x1 - x0, y1 - y0))
            p.setPen(QtGui.QPen(QtGui.QColor(theme.BORDER_LIGHT), 1))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
            if self.zoom > 1.0:
                p.setPen(QtGui.QColor(theme.TEXT_DIM))
                p.drawText(target.adjusted(4, 2, -4, -2), QtCore.Qt.AlignmentFlag.AlignRight
                           | QtCore.Qt.AlignmentFlag.AlignTop, f"×{self.zoom:.1f}")
        if self._message:
            p.setPen(QtGui.QColor(theme.TEXT_DIM))
            p.drawText(self.rect().adjusted(8, 8, -8, -8),
                       QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignBottom
                       | QtCore.Qt.TextFlag.TextWordWrap, self._message)
        p.end()


class LargeView(QtWidgets.QDialog):
    """The inspector's image in a large window of its own (double-click or F11; Esc closes)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("galexplorer — image")
        self.setObjectName("LargeView")
        lay = QtWidgets.QVBoxLayout(self)
        self.stamp = StampView(self)
        self.readout = ElidedLabel("", self)
        self.readout.setObjectName("Dim")
        lay.addWidget(self.stamp, 1)
        lay.addWidget(self.readout)
        self.resize(900, 900)


class ScoreButtons(QtWidgets.QWidget):
    """Six buttons 0–5 in the label colours; the object's current score is shown pressed."""

    scored = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)
        self.buttons: list[QtWidgets.QPushButton] = []
        for s, colour in enumerate(SCORE_COLOURS):
            b = QtWidgets.QPushButton(str(s), self)
            b.setObjectName(f"score{s}")
            b.setCheckable(True)
            b.setMinimumHeight(38)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)   # keys 0–5 stay window shortcuts
            b.setToolTip(f"score {s} (key {s})")
            b.setStyleSheet(
                f"QPushButton {{ font-size: 15px; font-weight: bold; border-radius: 6px;"
                f" border: 2px solid {colour}; color: {colour}; background: #11151d; }}"
                f" QPushButton:hover {{ background: #1d2330; }}"
                f" QPushButton:checked {{ background: {colour}; color: #0b0e14; }}")
            b.clicked.connect(lambda _=False, s=s: self.scored.emit(s))
            lay.addWidget(b)
            self.buttons.append(b)

    def show_score(self, score: int | None) -> None:
        for s, b in enumerate(self.buttons):
            b.setChecked(score is not None and s == score)


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "—"
        a = abs(float(v))
        return f"{float(v):.4g}" if (a == 0 or 1e-3 <= a < 1e5) else f"{float(v):.3e}"
    return str(v)


class Inspector(QtWidgets.QWidget):
    """The object on screen.

    Signals:
        scored(int), previous(), next(), skip(), note(), similar(), viewer(), exclude():
            the user's intent, to be carried out by the main window.
        displayChanged(): stretch or band changed (to remember the stretch).
    """

    scored = QtCore.Signal(int)
    previous = QtCore.Signal()
    next = QtCore.Signal()
    skip = QtCore.Signal()
    note = QtCore.Signal()
    similar = QtCore.Signal()
    viewer = QtCore.Signal()
    exclude = QtCore.Signal()
    displayChanged = QtCore.Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("Inspector")
        self._cutouts = None
        self._rows: np.ndarray | None = None
        self._thumbs = None
        self._bands: list[str] = []
        self.index: int | None = None
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(10, 8, 10, 8)
        lay.setSpacing(8)

        lay.addLayout(self._make_head())
        lay.addWidget(self.position)
        self.stamp = StampView(self)
        lay.addWidget(self.stamp, 5)
        self.readout = ElidedLabel("", self)
        self.readout.setObjectName("Dim")
        self.readout.setToolTip("the pixel under the cursor: position, value (per band), sky position")
        lay.addWidget(self.readout)
        self.stamp.hovered.connect(lambda x, y: self.readout.setText(self.pixel_text(x, y)))
        self.stamp.enlargeRequested.connect(self.show_large)
        self._raw: np.ndarray | None = None      # (C, H, W) the cutout's pixels on screen
        self._radec = (math.nan, math.nan)
        self.pixel_scale: float | None = None    # arcsec per pixel, when the cutouts say (older files)
        self.sky: tuple[np.ndarray, np.ndarray] | None = None   # the object's (cd, crpix) from ingest
        self.large: LargeView | None = None
        lay.addLayout(self._make_display_controls())
        self.scores = ScoreButtons(self)
        self.scores.scored.connect(self.scored)
        lay.addWidget(self.scores)
        lay.addLayout(self._make_buttons())
        self.details = self._make_details()
        lay.addWidget(self.details, 3)
        self.set_enabled(False)

    def _make_head(self) -> QtWidgets.QHBoxLayout:
        """The id and its state chip (and the position line below them, ``self.position``)."""
        head = QtWidgets.QHBoxLayout()
        # long ids, positions and pixel readouts elide: no text may widen the dock (#23)
        self.title = ElidedLabel("no object", self, QtCore.Qt.TextElideMode.ElideMiddle)
        self.title.setObjectName("InspectorTitle")
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = QtWidgets.QLabel("")
        self.state.setObjectName("StateChip")
        head.addWidget(self.title, 1)
        head.addWidget(self.state)
        self.position = ElidedLabel("", self)
        self.position.setObjectName("Dim")
        self.position.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        return head

    def _make_display_controls(self) -> QtWidgets.QHBoxLayout:
        """Stretch and band."""
        ctl = QtWidgets.QHBoxLayout()
        self.stretch = QtWidgets.QComboBox()
        self.stretch.addItems(list(STRETCHES))
        self.stretch.setCurrentText("asinh")
        self.stretch.setToolTip("stretch (T cycles)")
        self.band = QtWidgets.QComboBox()
        self.band.setToolTip("colour composite or one band (B cycles)")
        for w in (self.stretch, self.band):
            w.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            w.currentIndexChanged.connect(self._redraw)
            w.currentIndexChanged.connect(self.displayChanged)
        ctl.addWidget(QtWidgets.QLabel("Stretch"))
        ctl.addWidget(self.stretch, 1)
        ctl.addWidget(QtWidgets.QLabel("Band"))
        ctl.addWidget(self.band, 1)
        return ctl

    def _make_buttons(self) -> QtWidgets.QHBoxLayout:
        """The buttons under the scores: each only emits its signal (the window runs the action)."""
        nav = QtWidgets.QHBoxLayout()
        nav.setSpacing(4)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        for name, text, tip, sig in [("previous", "◀", "previous object (←)", self.previous),
                                     ("skip", "Skip", "leave unscored, out of the queue (S)", self.skip),
                                     ("next", "▶", "next object (→)", self.next),
                                     ("note", "Note", "write a note (N)", self.note),
                                     ("similar", "Similar", "find similar objects (F)", self.similar),
                                     ("viewer", "Sky", "open ra/dec in the sky viewer (V)", self.viewer),
                                     ("exclude", "Artefact", "exclude from the ranking (X)", self.exclude)]:
            b = QtWidgets.QPushButton(text)
            b.setToolTip(tip)
            b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
            b.clicked.connect(sig)
            nav.addWidget(b, 0 if name in ("previous", "next") else 1)
            self.buttons[name] = b
        return nav

    def _make_details(self) -> QtWidgets.QTableWidget:
        """The object's values, one row each."""
        details = QtWidgets.QTableWidget(0, 2, self)
        details.setObjectName("Details")
        details.horizontalHeader().hide()
        details.verticalHeader().hide()
        details.setShowGrid(False)
        details.setAlternatingRowColors(True)
        details.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        details.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        details.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        details.horizontalHeader().setStretchLastSection(True)
        details.verticalHeader().setDefaultSectionSize(22)
        return details

    # -- sources -------------------------------------------------------------------------------
    def set_sources(self, cutouts, thumbnails, cutouts_rows: np.ndarray | None = None) -> None:
        """Where pixels come from: the linked cutouts file (full resolution, all bands), else
        the store's thumbnails.

        Args:
            cutouts_rows: (N,) the cutouts row of each store object (a store built with
                ``--allow-missing`` holds a subset of the cutouts); None maps row to row.
        """
        self._cutouts, self._thumbs, self._rows = cutouts, thumbnails, cutouts_rows
        self._bands = list(cutouts.bands) if cutouts is not None else []
        scale = None
        if cutouts is not None:
            try:
                scale = cutouts.file.attrs.get("pixel_scale_arcsec")
            except (AttributeError, OSError):
                scale = None
        self.pixel_scale = float(scale) if scale is not None else None
        self.band.blockSignals(True)
        self.band.clear()
        self.band.addItem(COMPOSITE)
        for b in self._bands:
            self.band.addItem(b)
        self.band.blockSignals(False)
        self.stretch.setEnabled(cutouts is not None)
        self.band.setEnabled(cutouts is not None and len(self._bands) > 1)

    def set_enabled(self, on: bool) -> None:
        for w in [self.scores, *self.buttons.values()]:
            w.setEnabled(on)

    # -- content -------------------------------------------------------------------------------
    def show_object(self, index: int | None, object_id: str = "", ra: float = math.nan, dec: float = math.nan,
                    rows: list[tuple[str, object]] | None = None, score: int | None = None,
                    excluded: bool = False, note: str | None = None) -> None:
        """Show object ``index`` with its numbers ``rows`` ((name, value) pairs)."""
        self.index = index
        self.set_enabled(index is not None)
        if index is None:
            self.title.setText("no object")
            self.position.setText("")
            self.state.setText("")
            self.stamp.set_rgb(None, "nothing to show")
            self.details.setRowCount(0)
            self.scores.show_score(None)
            return
        self.title.setText(object_id)
        self._radec = (ra, dec)
        self._new_object = True
        if math.isfinite(ra) and math.isfinite(dec):
            self.position.setText(f"ra {ra:.6f}°   dec {dec:+.6f}°")
        else:
            self.position.setText("no sky position")
        self.buttons["viewer"].setEnabled(math.isfinite(ra) and math.isfinite(dec))
        chips = []
        if score is not None:
            chips.append(f"scored {score}")
        if excluded:
            chips.append("artefact")
        self.state.setText("  ·  ".join(chips) if chips else "not scored")
        self.state.setProperty("scored", score is not None)
        self.state.style().unpolish(self.state)
        self.state.style().polish(self.state)
        self.scores.show_score(score)
        rows = list(rows or [])
        if note:
            rows.insert(0, ("note", note))
        self.details.setRowCount(len(rows))
        for r, (k, v) in enumerate(rows):
            key = QtWidgets.QTableWidgetItem(str(k))
            key.setForeground(QtGui.QColor(theme.TEXT_DIM))
            self.details.setItem(r, 0, key)
            val = QtWidgets.QTableWidgetItem(_fmt(v))
            if k == "note":
                val.setToolTip(str(v))
            self.details.setItem(r, 1, val)
        self.details.resizeColumnToContents(0)
        self._redraw()
        if self.pixel_scale_text() and math.isfinite(ra) and math.isfinite(dec):
            self.position.setText(f"{self.position.text()}   {self.pixel_scale_text()}")

    def _redraw(self) -> None:
        i = self.index
        if i is None:
            return
        keep = not getattr(self, "_new_object", True)   # a new stretch or band keeps the zoom
        self._new_object = False
        self._raw = None
        self.sky = None
        if self._cutouts is not None:
            try:
                row = int(i if self._rows is None else self._rows[i])
                img = self._cutouts.read(row)
                self.sky = self._sky_geometry(row)
            except (OSError, ValueError) as exc:
                self.stamp.set_rgb(None, f"cannot read the cutout: {exc}")
                return
            self._raw = np.asarray(img)
            band = self.band.currentIndex() - 1
            rgb = to_rgb8(img, self._bands, self.stretch.currentText(), band=None if band < 0 else band)
            self.stamp.set_rgb(rgb, keep_view=keep)
        elif self._thumbs is not None:
            rgb = self._thumbs.rgb(int(i))
            self.stamp.set_rgb(rgb, "thumbnail only: the cutouts file is not available", keep_view=keep)
        else:
            rgb = None
            self.stamp.set_rgb(None, "this store has no images")
        if self.large is not None and self.large.isVisible():
            self.large.stamp.set_rgb(rgb, keep_view=keep)

    def _sky_geometry(self, row: int):
        """The object's stored local WCS, or None (none stored, or a damaged dataset: no ra/dec
        under the cursor rather than an error)."""
        try:
            return self._cutouts.sky_geometry(row) if hasattr(self._cutouts, "sky_geometry") else None
        except (GalexplorerError, OSError, ValueError):
            return None

    def pixel_text(self, x: float, y: float) -> str:
        """The cursor's pixel: position, value in the band shown (every band for the composite),
        and its sky position when the cutouts give a pixel scale (north up, east left)."""
        if not (math.isfinite(x) and math.isfinite(y)):
            return ""
        ix, iy = int(x), int(y)
        parts = [f"x {ix}, y {iy}"]
        raw = self._raw
        if raw is not None and 0 <= iy < raw.shape[-2] and 0 <= ix < raw.shape[-1]:
            band = self.band.currentIndex() - 1
            if band >= 0:
                parts.append(f"{self._bands[band]} {float(raw[band, iy, ix]):.4g}")
            else:
                parts.append("  ".join(f"{b} {float(raw[k, iy, ix]):.4g}" for k, b in enumerate(self._bands)))
            sky = self.sky_at(x, y)
            if sky is not None:
                parts.append(f"ra {sky[0]:.6f}°  dec {sky[1]:+.6f}°")
            elif math.isfinite(self._radec[0]):
                parts.append("(no pixel scale: ra/dec at the centre only)")
        return "   ".join(parts)

    def sky_at(self, x: float, y: float) -> tuple[float, float] | None:
        """ICRS (ra, dec) in degrees at the view's pixel position (x, y) (pixel i spans [i, i+1)),
        from the local WCS that ingest stored for this object (a gnomonic projection about its
        ra/dec), else from an older file's ``pixel_scale_arcsec`` (north up, east left); None
        without either."""
        ra0, dec0 = self._radec
        raw = self._raw
        if raw is None or not (math.isfinite(ra0) and math.isfinite(dec0)):
            return None
        if self.sky is not None:
            cd, crpix = self.sky
        elif self.pixel_scale:
            h, w = raw.shape[-2:]
            cd = np.array([[-1.0, 0.0], [0.0, -1.0]]) * self.pixel_scale / 3600
            crpix = np.array([(w - 1) / 2, (h - 1) / 2])
        else:
            return None
        xi, eta = np.radians(cd @ np.array([x - 0.5 - crpix[0], y - 0.5 - crpix[1]]))
        a0, d0 = math.radians(ra0), math.radians(dec0)
        den = math.cos(d0) - eta * math.sin(d0)
        ra = math.degrees(a0 + math.atan2(xi, den)) % 360.0
        dec = math.degrees(math.atan2(math.sin(d0) + eta * math.cos(d0), math.hypot(xi, den)))
        return ra, dec

    def pixel_scale_text(self) -> str:
        """The stored stamp's pixel scale, e.g. '0.060″/px', or '' when unknown."""
        if self.sky is not None:
            return f"{math.sqrt(abs(np.linalg.det(self.sky[0]))) * 3600:.3g}″/px"
        return f"{self.pixel_scale:.3g}″/px" if self.pixel_scale else ""

    def show_large(self) -> None:
        """The image in a large window (double-click or F11), zoom and pan included."""
        if self.index is None:
            return
        if self.large is None:
            self.large = LargeView(self)
            self.large.stamp.hovered.connect(lambda x, y: self.large.readout.setText(self.pixel_text(x, y)))
        self.large.setWindowTitle(f"{self.title.text()} — galexplorer")
        self.large.show()
        self._redraw()      # the same object: the inspector keeps its zoom and pan ...
        self.large.stamp.set_view(self.stamp.zoom, self.stamp.centre)   # ... and the large view opens at them
        self.large.raise_()

    # -- keyboard helpers ----------------------------------------------------------------------
    def cycle_stretch(self) -> None:
        if self.stretch.isEnabled():
            self.stretch.setCurrentIndex((self.stretch.currentIndex() + 1) % self.stretch.count())

    def cycle_band(self) -> None:
        if self.band.isEnabled():
            self.band.setCurrentIndex((self.band.currentIndex() + 1) % self.band.count())

    def set_stretch(self, name: str) -> None:
        if name in STRETCHES:
            self.stretch.setCurrentText(name)
