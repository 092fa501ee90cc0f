"""The centre of the window before a store is open: how to open one, and the recent stores."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class WelcomePage(QtWidgets.QWidget):
    """What the centre shows before a store is open: how to open one, and recent stores."""

    openRequested = QtCore.Signal(str)

    def __init__(self, recent: list[str], parent=None):
        super().__init__(parent)
        self.setObjectName("Welcome")
        lay = QtWidgets.QVBoxLayout(self)
        lay.addStretch(2)
        title = QtWidgets.QLabel("galexplorer")
        title.setObjectName("WelcomeTitle")
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(title)
        text = QtWidgets.QLabel("Open a store with File ▸ Open (Ctrl+O), or drop a store.h5 here.\n"
                                "Build one with `galexplorer embed`, or try `galexplorer demo`.")
        text.setObjectName("Dim")
        text.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(text)
        for path in recent[:6]:
            b = QtWidgets.QPushButton(path)
            b.setObjectName("RecentButton")
            b.clicked.connect(lambda _=False, p=path: self.openRequested.emit(p))
            row = QtWidgets.QHBoxLayout()
            row.addStretch(1)
            row.addWidget(b)
            row.addStretch(1)
            lay.addLayout(row)
        lay.addStretch(3)

