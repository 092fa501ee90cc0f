"""The Agreement panel: per pair of labellers, objects in common and weighted Cohen's kappa
(computed by :mod:`galexplorer.labels.agreement`)."""

from __future__ import annotations

import math

from PySide6 import QtWidgets


class AgreementPanel(QtWidgets.QWidget):
    """Per pair of labellers: objects both scored, and the weighted Cohen's kappa of their scores."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        self.note = QtWidgets.QLabel("Quadratic-weighted Cohen's κ on the 0–5 scale: 1 = full agreement, "
                                     "0 = what chance gives.")
        self.note.setObjectName("Dim")
        self.note.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["labeller", "labeller", "objects in common", "weighted κ"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)

    def show_pairs(self, pairs) -> None:
        self.table.setRowCount(0)
        for p in pairs:
            r = self.table.rowCount()
            self.table.insertRow(r)
            kappa = "—" if not math.isfinite(p.kappa) else f"{p.kappa:.3f}"
            for c, text in enumerate((p.user_a, p.user_b, f"{p.n_common:,}", kappa)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        if not pairs:
            self.table.insertRow(0)
            self.table.setItem(0, 0, QtWidgets.QTableWidgetItem("one labeller so far"))
        self.table.resizeColumnsToContents()

