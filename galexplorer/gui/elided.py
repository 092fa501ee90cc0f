"""A one-line label that never widens its panel: text longer than the label is elided and
shown whole in the tooltip (issue #23: the inspector's pixel readout widened its dock)."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets


class ElidedLabel(QtWidgets.QLabel):
    """A ``QLabel`` whose width is the layout's to choose (size policy ``Ignored``
    horizontally, minimum width 0): a text too long for it ends in "…" (or loses its middle,
    with ``mode=ElideMiddle``), and the tooltip then holds the whole text.

    ``text()`` and ``setText()`` read and write the whole text, not what is drawn.
    """

    def __init__(self, text: str = "", parent=None, mode=QtCore.Qt.TextElideMode.ElideRight):
        super().__init__(parent)
        self._full = ""
        self._mode = mode
        self._tip = ""          # the tooltip when the text fits
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setWordWrap(False)
        self.setText(text)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        self._full = str(text)
        self._elide()

    def setToolTip(self, tip: str) -> None:
        self._tip = tip
        self._elide()

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(0, super().minimumSizeHint().height())

    def sizeHint(self) -> QtCore.QSize:
        fm = self.fontMetrics()
        m = self.contentsMargins()
        width = min(fm.horizontalAdvance(self._full), 200) + m.left() + m.right()
        return QtCore.QSize(width, super().sizeHint().height())

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:
        super().resizeEvent(ev)
        self._elide()

    def _elide(self) -> None:
        room = self.contentsRect().width() - 2 * self.margin()
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(room, 0))
        if shown != super().text():
            super().setText(shown)
        super().setToolTip(self._full if shown != self._full else self._tip)
