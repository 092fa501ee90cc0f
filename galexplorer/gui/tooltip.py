"""The hover card: an object's thumbnail, id and key values, drawn inside the plot.

It is a QGraphicsItem in the plot's scene (not a QToolTip, which is a separate window that
flickers and cannot be placed precisely): it appears next to the cursor, stays inside the plot,
and never takes the mouse.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from . import theme

THUMB_PX = 132
PAD = 10


class HoverCard(QtWidgets.QGraphicsObject):
    """A card describing one object.

    Attributes:
        index: the object shown (-1 when hidden).
        object_id: its id.
    """

    def __init__(self):
        super().__init__()
        self.index = -1
        self.object_id = ""
        self._pixmap: QtGui.QPixmap | None = None
        self._lines: list[tuple[str, str]] = []
        self._size = QtCore.QSizeF(0, 0)
        self.setZValue(1000)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.NoButton)
        self.setAcceptHoverEvents(False)
        self._title_font = QtGui.QFont(theme.font_family(), 11)
        self._title_font.setBold(True)
        self._font = QtGui.QFont(theme.font_family(), 9)
        self.hide()

    def show_object(self, index: int, object_id: str, pixmap: QtGui.QPixmap, lines: list[tuple[str, str]],
                    anchor: QtCore.QPointF, bounds: QtCore.QRectF) -> None:
        """Show the card for object ``index`` next to ``anchor`` (scene coordinates), inside
        ``bounds`` (the plot area in scene coordinates)."""
        self.prepareGeometryChange()
        self.index, self.object_id = int(index), str(object_id)
        self._pixmap = pixmap
        self._lines = list(lines)
        fm_title = QtGui.QFontMetricsF(self._title_font)
        fm = QtGui.QFontMetricsF(self._font)
        key_w = max((fm.horizontalAdvance(k) for k, _ in self._lines), default=0)
        val_w = max((fm.horizontalAdvance(v) for _, v in self._lines), default=0)
        text_w = max(fm_title.horizontalAdvance(self.object_id), key_w + 10 + val_w)
        width = max(THUMB_PX, text_w) + 2 * PAD
        height = PAD + THUMB_PX + 8 + fm_title.height() + 4 + len(self._lines) * (fm.height() + 1) + PAD
        self._size = QtCore.QSizeF(width, height)
        # beside the cursor, flipped to the other side when it would leave the plot
        x, y = anchor.x() + 18, anchor.y() + 18
        if x + width > bounds.right():
            x = anchor.x() - 18 - width
        if y + height > bounds.bottom():
            y = anchor.y() - 18 - height
        x = max(bounds.left() + 2, x)
        y = max(bounds.top() + 2, y)
        self.setPos(x, y)
        self.show()
        self.update()

    def hide_card(self) -> None:
        self.index = -1
        self.object_id = ""
        self.hide()

    @property
    def lines(self) -> list[tuple[str, str]]:
        return list(self._lines)

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(0, 0, self._size.width() + 1, self._size.height() + 1)

    def paint(self, p: QtGui.QPainter, option, widget=None) -> None:
        w, h = self._size.width(), self._size.height()
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        p.setPen(QtGui.QPen(QtGui.QColor(theme.BORDER_LIGHT), 1))
        p.setBrush(QtGui.QColor(14, 17, 24, 240))
        p.drawRoundedRect(QtCore.QRectF(0.5, 0.5, w, h), 8, 8)
        if self._pixmap is not None:
            target = QtCore.QRectF((w - THUMB_PX) / 2, PAD, THUMB_PX, THUMB_PX)
            p.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawPixmap(target, self._pixmap, QtCore.QRectF(self._pixmap.rect()))
        y = PAD + THUMB_PX + 8
        p.setFont(self._title_font)
        p.setPen(QtGui.QColor(theme.TEXT))
        fm_title = QtGui.QFontMetricsF(self._title_font)
        p.drawText(QtCore.QPointF(PAD, y + fm_title.ascent()), self.object_id)
        y += fm_title.height() + 4
        p.setFont(self._font)
        fm = QtGui.QFontMetricsF(self._font)
        for key, value in self._lines:
            p.setPen(QtGui.QColor(theme.TEXT_DIM))
            p.drawText(QtCore.QPointF(PAD, y + fm.ascent()), key)
            p.setPen(QtGui.QColor(theme.TEXT))
            p.drawText(QtCore.QPointF(w - PAD - fm.horizontalAdvance(value), y + fm.ascent()), value)
            y += fm.height() + 1
