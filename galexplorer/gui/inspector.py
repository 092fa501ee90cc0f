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
from . import theme
from .colouring import SCORE_COLOURS
from .thumbs import rgb_to_qimage

COMPOSITE = "colour"


class StampView(QtWidgets.QWidget):
    """An image scaled to fit, keeping its aspect, sharp pixels when enlarged."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._image: QtGui.QImage | None = None
        self._message = ""
        self.setMinimumSize(180, 180)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding)

    def set_rgb(self, rgb: np.ndarray | None, message: str = "") -> None:
        self._image = None if rgb is None else rgb_to_qimage(rgb)
        self._message = message
        self.update()

    @property
    def image(self) -> QtGui.QImage | None:
        return self._image

    def heightForWidth(self, w: int) -> int:
        return w

    def paintEvent(self, ev) -> None:
        p = QtGui.QPainter(self)
        p.fillRect(self.rect(), QtGui.QColor(theme.BG))
        reserve = 22 if self._message else 0   # the message sits below the image
        side = max(10, min(self.width(), self.height() - reserve) - 8)
        target = QtCore.QRectF((self.width() - side) / 2, (self.height() - reserve - side) / 2, side, side)
        if self._image is not None:
            big = side >= 2 * self._image.width()
            p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, not big)
            p.drawImage(target, self._image)
            p.setPen(QtGui.QPen(QtGui.QColor(theme.BORDER_LIGHT), 1))
            p.setBrush(QtCore.Qt.BrushStyle.NoBrush)
            p.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
        if self._message:
            p.setPen(QtGui.QColor(theme.TEXT_DIM))
            p.drawText(self.rect().adjusted(8, 8, -8, -8),
                       QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignBottom
                       | QtCore.Qt.TextFlag.TextWordWrap, self._message)
        p.end()


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

        head = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel("no object")
        self.title.setObjectName("InspectorTitle")
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.state = QtWidgets.QLabel("")
        self.state.setObjectName("StateChip")
        head.addWidget(self.title, 1)
        head.addWidget(self.state)
        lay.addLayout(head)
        self.position = QtWidgets.QLabel("")
        self.position.setObjectName("Dim")
        self.position.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.position)

        self.stamp = StampView(self)
        lay.addWidget(self.stamp, 5)

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
        lay.addLayout(ctl)

        self.scores = ScoreButtons(self)
        self.scores.scored.connect(self.scored)
        lay.addWidget(self.scores)

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
        lay.addLayout(nav)

        self.details = QtWidgets.QTableWidget(0, 2, self)
        self.details.setObjectName("Details")
        self.details.horizontalHeader().hide()
        self.details.verticalHeader().hide()
        self.details.setShowGrid(False)
        self.details.setAlternatingRowColors(True)
        self.details.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.details.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.details.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.details.horizontalHeader().setStretchLastSection(True)
        self.details.verticalHeader().setDefaultSectionSize(22)
        lay.addWidget(self.details, 3)
        self.set_enabled(False)

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

    def _redraw(self) -> None:
        i = self.index
        if i is None:
            return
        if self._cutouts is not None:
            try:
                img = self._cutouts.read(int(i if self._rows is None else self._rows[i]))
            except (OSError, ValueError) as exc:
                self.stamp.set_rgb(None, f"cannot read the cutout: {exc}")
                return
            band = self.band.currentIndex() - 1
            rgb = to_rgb8(img, self._bands, self.stretch.currentText(), band=None if band < 0 else band)
            self.stamp.set_rgb(rgb)
        elif self._thumbs is not None:
            self.stamp.set_rgb(self._thumbs.rgb(int(i)),
                               "thumbnail only: the cutouts file is not available")
        else:
            self.stamp.set_rgb(None, "this store has no images")

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
