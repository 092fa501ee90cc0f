"""The Qt side of the action table (:mod:`.actions`): key sequences and the ``?`` dialog."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from .actions import GROUPS, Shortcut, display_keys, with_keys


def key_sequences(shortcut: Shortcut) -> list[QtGui.QKeySequence]:
    return [QtGui.QKeySequence(k) for k in shortcut.keys]


class ShortcutHelp(QtWidgets.QDialog):
    """The ``?`` dialog: every shortcut, grouped."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setObjectName("ShortcutHelp")
        layout = QtWidgets.QVBoxLayout(self)
        table = QtWidgets.QTableWidget(0, 2, self)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        table.setShowGrid(False)
        table.horizontalHeader().setStretchLastSection(True)
        group = None
        for s in sorted(with_keys(), key=lambda s: GROUPS.index(s.group)):
            if s.group != group:
                group = s.group
                r = table.rowCount()
                table.insertRow(r)
                head = QtWidgets.QTableWidgetItem(group)
                f = head.font()
                f.setBold(True)
                head.setFont(f)
                head.setForeground(QtGui.QColor("#5aa9ff"))
                table.setItem(r, 0, head)
                table.setSpan(r, 0, 1, 2)
            r = table.rowCount()
            table.insertRow(r)
            k = QtWidgets.QTableWidgetItem(display_keys(s))
            k.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            table.setItem(r, 0, k)
            table.setItem(r, 1, QtWidgets.QTableWidgetItem(s.description))
        table.setWordWrap(True)
        table.resizeColumnToContents(0)
        table.setColumnWidth(0, max(table.columnWidth(0) + 24, 130))
        table.verticalHeader().setDefaultSectionSize(26)
        layout.addWidget(table)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        for b in buttons.buttons():
            b.setIcon(QtGui.QIcon())
        layout.addWidget(buttons)
        self.table = table
        self.resize(780, 760)
