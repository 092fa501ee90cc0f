"""The gallery: a grid of thumbnails — the selection, or the objects most similar to one —
with bulk actions (score all, exclude as artefacts, export, send over SAMP)."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from ..label_scale import SCORES
from .objectlist import ObjectListModel, ObjectListView


class GalleryPanel(QtWidgets.QWidget):
    """Signals:
        opened(int): an object was clicked (to show in the inspector).
        scoreAll(int): give the targets (:meth:`targets`) this score.
        excludeAll(): exclude the targets from the ranking.
        includeAll(): take them back into the ranking.
        exportAll(): export the targets.
        broadcast(): send the targets to TOPCAT/DS9/Aladin over SAMP.

    The bulk buttons only ask: the window runs the action table's ``gallery_*`` rows (and their
    enable check), which read :meth:`targets`.
        labelViewToggled(bool): the My labels toggle (on: the labelled objects; off: back to
            the selection).
    """

    opened = QtCore.Signal(int)
    scoreAll = QtCore.Signal(int)
    excludeAll = QtCore.Signal()
    includeAll = QtCore.Signal()
    exportAll = QtCore.Signal()
    broadcast = QtCore.Signal()
    orderChanged = QtCore.Signal(str)
    labelViewToggled = QtCore.Signal(bool)

    def __init__(self, caption, tooltip=None, parent=None):
        super().__init__(parent)
        self.setObjectName("GalleryPanel")
        self.kind = "empty"            # "selection" or "similar"
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(6)
        bar = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel("Select objects in the map (L, R) or press F for similar ones")
        self.title.setObjectName("PanelTitle")
        # the caption has a line of its own: beside the buttons a long one widened the window past the screen
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        lay.addWidget(self.title)
        bar.addStretch(1)
        self.order = QtWidgets.QComboBox()
        self.order.addItem("by rank", "rank")
        self.order.addItem("by similarity", "similarity")
        self.order.setToolTip("the gallery's order: the live ranking (best first), or most similar first")
        self.order.currentIndexChanged.connect(lambda _: self.orderChanged.emit(self.order.currentData()))
        bar.addWidget(self.order)
        self.mine = QtWidgets.QToolButton()
        self.mine.setText("My labels")
        self.mine.setCheckable(True)
        self.mine.setToolTip("show the objects you labelled (the table's My labels filter, with its "
                             "labeller, when it is on), with counts per score; off: back to the selection")
        self.mine.toggled.connect(self.labelViewToggled)
        bar.addWidget(self.mine)

        self.score_button = QtWidgets.QToolButton()
        self.score_button.setText("Score all")
        self.score_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QtWidgets.QMenu(self.score_button)
        for s in SCORES:
            act = menu.addAction(f"{s}")
            act.triggered.connect(lambda _=False, s=s: self.scoreAll.emit(s))
        self.score_button.setMenu(menu)
        self.score_button.setToolTip("give the shown (or the picked) objects one score, as one undo step")
        bar.addWidget(self.score_button)
        self.buttons: dict[str, QtWidgets.QAbstractButton] = {"score": self.score_button}
        for name, text, tip, sig in [
                ("exclude", "Artefacts", "exclude them from the ranking", self.excludeAll),
                ("include", "Include", "take them back into the ranking", self.includeAll),
                ("export", "Export…", "write them to CSV or VOTable", self.exportAll),
                ("samp", "SAMP", "send them to TOPCAT, DS9 or Aladin (a SAMP hub must run)", self.broadcast)]:
            b = QtWidgets.QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, sig=sig: sig.emit())
            bar.addWidget(b)
            self.buttons[name] = b
        lay.addLayout(bar)
        self.model = ObjectListModel(caption, tooltip, self)
        self.view = ObjectListView(self.model, grid=True, icon=96, parent=self)
        self.view.opened.connect(self._opened)
        lay.addWidget(self.view, 1)
        self._enable()

    def _opened(self, i: int) -> None:
        self.opened.emit(i)

    def _enable(self) -> None:
        on = len(self.model.indices) > 0
        for b in self.buttons.values():
            b.setEnabled(on)

    def show_objects(self, indices: np.ndarray, title: str, values: np.ndarray | None = None,
                     kind: str = "selection", order: str = "rank") -> None:
        same_view = kind == self.kind == "labelled"    # My labels refreshed after a score: keep the place
        self.kind = kind
        self.order.blockSignals(True)
        self.order.setCurrentIndex(max(0, self.order.findData(order)))
        self.order.model().item(1).setEnabled(kind == "similar")   # a selection has no similarity
        self.order.blockSignals(False)
        self.mine.blockSignals(True)
        self.mine.setChecked(kind == "labelled")
        self.mine.blockSignals(False)
        self.model.set_objects(indices, values)
        self.title.setText(title)
        if not same_view:
            self.view.scrollToTop()
        self._enable()

    @property
    def indices(self) -> np.ndarray:
        return self.model.indices

    def targets(self) -> np.ndarray:
        """The objects picked in the grid, or all shown when none are picked."""
        picked = self.view.selected_objects()
        return picked if len(picked) else self.model.indices
