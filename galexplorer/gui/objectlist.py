"""A list of objects with thumbnails, shared by the queue and the gallery.

The model holds only an int64 index array (and optional per-item values); captions and
pixmaps are produced when a row is painted, so a gallery of 10^5 selected objects costs
nothing until it is scrolled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from .thumbs import ThumbnailCache

INDEX_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
ID_CHARS = 16   # an id longer than this is shown elided in the middle (the tooltip has it whole)


def elide_middle(text: str, n: int = ID_CHARS) -> str:
    """``text`` in at most ``n`` characters, with "…" in the middle (survey ids differ at both ends)."""
    if len(text) <= n:
        return text
    head = (n - 1) // 2
    return text[:head] + "…" + text[len(text) - (n - 1 - head):]


class ObjectListModel(QtCore.QAbstractListModel):
    """Rows are objects of the store.

    Args:
        caption: ``f(index, value) -> str`` text under / beside the thumbnail.
        tooltip: ``f(index, value) -> str`` or None.
    """

    def __init__(self, caption: Callable[[int, float | None], str],
                 tooltip: Callable[[int, float | None], str] | None = None, parent=None):
        super().__init__(parent)
        self._idx = np.empty(0, np.int64)
        self._values: np.ndarray | None = None
        self._caption = caption
        self._tooltip = tooltip
        self.thumbnails: ThumbnailCache | None = None
        self.icon_size = 64
        self.item_size: QtCore.QSize | None = None   # fixed cell size (grids)

    def set_objects(self, indices: np.ndarray, values: np.ndarray | None = None) -> None:
        self.beginResetModel()
        self._idx = np.asarray(indices, np.int64)
        self._values = None if values is None else np.asarray(values, np.float64)
        self.endResetModel()

    def refresh(self) -> None:
        """Captions changed (a new label, a new model): repaint without resetting."""
        if len(self._idx):
            self.dataChanged.emit(self.index(0), self.index(len(self._idx) - 1))

    @property
    def indices(self) -> np.ndarray:
        return self._idx

    @property
    def values(self) -> np.ndarray | None:
        return self._values

    def rowCount(self, parent=QtCore.QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._idx)

    def data(self, index: QtCore.QModelIndex, role=QtCore.Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._idx):
            return None
        i = int(self._idx[index.row()])
        v = None if self._values is None else float(self._values[index.row()])
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return self._caption(i, v)
        if role == QtCore.Qt.ItemDataRole.DecorationRole and self.thumbnails is not None:
            pm = self.thumbnails.pixmap(i)
            if pm.width() != self.icon_size:
                pm = pm.scaled(self.icon_size, self.icon_size, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                               QtCore.Qt.TransformationMode.SmoothTransformation)
            return QtGui.QIcon(pm)
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and self._tooltip is not None:
            return self._tooltip(i, v)
        if role == INDEX_ROLE:
            return i
        if role == QtCore.Qt.ItemDataRole.SizeHintRole and self.item_size is not None:
            return self.item_size
        return None


class ObjectListView(QtWidgets.QListView):
    """A list or grid of thumbnails; emits :attr:`opened` with the object index on click."""

    opened = QtCore.Signal(int)

    def __init__(self, model: ObjectListModel, grid: bool, icon: int, parent=None):
        super().__init__(parent)
        self.setModel(model)
        model.icon_size = icon
        self.setIconSize(QtCore.QSize(icon, icon))
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        if grid:
            self.setViewMode(QtWidgets.QListView.ViewMode.IconMode)
            self.setResizeMode(QtWidgets.QListView.ResizeMode.Adjust)
            self.setMovement(QtWidgets.QListView.Movement.Static)
            self.setGridSize(QtCore.QSize(icon + 22, icon + 44))
            model.item_size = QtCore.QSize(icon + 18, icon + 40)   # room for two caption lines
            self.setWordWrap(True)
            self.setSpacing(2)
            self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.ExtendedSelection)
        else:
            self.setSpacing(1)
            self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.clicked.connect(self._open)
        self.activated.connect(self._open)

    def _open(self, index: QtCore.QModelIndex) -> None:
        mods = QtWidgets.QApplication.keyboardModifiers()
        if mods & (QtCore.Qt.KeyboardModifier.ControlModifier | QtCore.Qt.KeyboardModifier.ShiftModifier):
            return   # extending the selection, not opening
        i = index.data(INDEX_ROLE)
        if i is not None:
            self.opened.emit(int(i))

    def selected_objects(self) -> np.ndarray:
        rows = sorted(ix.row() for ix in self.selectionModel().selectedIndexes())
        return self.model().indices[rows] if rows else np.empty(0, np.int64)
