"""The queue panel: what to score next (by acquisition), and the loop's controls — scorer,
acquisition, ξ, batch size, "refit now" — with a progress indicator while the model refits."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from ..active.registry import ACQUISITION_INFO, SCORER_INFO
from .objectlist import ObjectListModel, ObjectListView

SCORERS = list(SCORER_INFO.items())
ACQUISITIONS = list(ACQUISITION_INFO.items())


def _narrow(box: QtWidgets.QComboBox) -> None:
    """A menu of long names that does not set its panel's width (#23): the box elides the
    current name (whole in its tooltip), the open list shows every name whole."""
    box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    box.setMinimumContentsLength(12)
    box.view().setMinimumWidth(box.view().sizeHintForColumn(0) + 24)
    box.view().setTextElideMode(QtCore.Qt.TextElideMode.ElideNone)

    def tip(_=None) -> None:
        box.setToolTip(box.currentText())

    box.currentIndexChanged.connect(tip)
    tip()


NBSP = "\u00a0"


def break_points(text: str) -> str:
    """``text`` as the status line shows it: one line per clause (split at "; "), and no line
    break inside parentheses ("GP (anomaly prior) on 34 labels (0.0 s)" never ends a line at
    "(0.0"): their spaces become non-breaking."""
    out, depth = [], 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        out.append(NBSP if ch == " " and depth > 0 else ch)
    return "\n".join("".join(out).split("; "))


class StatusLine(QtWidgets.QLabel):
    """The model line under "Refit now" (the text is made by ``active.session``): it wraps only
    at the sensible points of :func:`break_points` and never sets the panel's width (a part
    longer than the panel is cut, and whole in the tooltip). ``text()`` is the text as set."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setWordWrap(True)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.setText(text)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        self._full = str(text)
        super().setText(break_points(self._full))
        self.setToolTip(self._full)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(0, super().minimumSizeHint().height())


class QueuePanel(QtWidgets.QWidget):
    """Signals:
        opened(int): an object of the queue was clicked.
        configChanged(): scorer, acquisition, ξ or batch size changed.
        refitRequested(): "Refit now".
    """

    opened = QtCore.Signal(int)
    configChanged = QtCore.Signal()
    refitRequested = QtCore.Signal()

    def __init__(self, caption, tooltip=None, parent=None):
        super().__init__(parent)
        self.setObjectName("QueuePanel")
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(6)

        form = QtWidgets.QGridLayout()
        form.setHorizontalSpacing(6)
        form.setVerticalSpacing(4)
        self.scorer = QtWidgets.QComboBox()
        for key, text in SCORERS:
            self.scorer.addItem(text, key)
        self.acquisition = QtWidgets.QComboBox()
        for key, text in ACQUISITIONS:
            self.acquisition.addItem(text, key)
        self.xi = QtWidgets.QDoubleSpinBox()
        self.xi.setRange(0.0, 5.0)
        self.xi.setSingleStep(0.1)
        self.xi.setDecimals(2)
        self.xi.setValue(0.5)
        self.xi.setToolTip("ξ: exploration of expected improvement (larger explores more)")
        self.batch = QtWidgets.QSpinBox()
        self.batch.setRange(1, 500)
        self.batch.setValue(10)
        self.batch.setToolTip("labels between refits")
        form.addWidget(QtWidgets.QLabel("Scorer"), 0, 0)
        form.addWidget(self.scorer, 0, 1, 1, 3)
        form.addWidget(QtWidgets.QLabel("Pick by"), 1, 0)
        form.addWidget(self.acquisition, 1, 1, 1, 3)
        form.addWidget(QtWidgets.QLabel("ξ"), 2, 0)
        form.addWidget(self.xi, 2, 1)
        form.addWidget(QtWidgets.QLabel("Batch"), 2, 2)
        form.addWidget(self.batch, 2, 3)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        lay.addLayout(form)
        for w in (self.scorer, self.acquisition):
            _narrow(w)
            w.currentIndexChanged.connect(self._changed)
        for w in (self.xi, self.batch):
            w.valueChanged.connect(self._changed)

        row = QtWidgets.QHBoxLayout()
        self.refit = QtWidgets.QPushButton("Refit now")
        self.refit.setObjectName("Primary")
        self.refit.setToolTip("refit the model on all labels now (Ctrl+R)")
        self.refit.clicked.connect(self.refitRequested)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        row.addWidget(self.refit)
        row.addWidget(self.progress, 1)
        lay.addLayout(row)
        self.status = StatusLine("no model yet")
        self.status.setObjectName("Dim")
        lay.addWidget(self.status)

        self.model = ObjectListModel(caption, tooltip, self)
        self.view = ObjectListView(self.model, grid=False, icon=48, parent=self)
        self.view.opened.connect(self.opened)
        lay.addWidget(self.view, 1)
        self._xi_enabled()

    def _changed(self, *args) -> None:
        self._xi_enabled()
        self.configChanged.emit()

    def _xi_enabled(self) -> None:
        self.xi.setEnabled(self.acquisition.currentData() == "ei")

    # -- state ---------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"scorer": self.scorer.currentData(), "acquisition": self.acquisition.currentData(),
                "xi": float(self.xi.value()), "batch_size": int(self.batch.value())}

    def set_config(self, scorer: str, acquisition: str, xi: float, batch_size: int) -> None:
        widgets = (self.scorer, self.acquisition, self.xi, self.batch)
        for w in widgets:
            w.blockSignals(True)
        try:
            k = self.scorer.findData(scorer)
            self.scorer.setCurrentIndex(max(k, 0))
            k = self.acquisition.findData(acquisition)
            self.acquisition.setCurrentIndex(max(k, 0))
            self.xi.setValue(float(xi))
            self.batch.setValue(int(batch_size))
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._xi_enabled()

    def set_queue(self, indices: list[int] | np.ndarray, values: np.ndarray | None = None) -> None:
        self.model.set_objects(np.asarray(indices, np.int64), values)

    def set_busy(self, busy: bool, text: str | None = None) -> None:
        if busy:
            self.progress.setRange(0, 0)   # an indeterminate bar until progress arrives
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
        if text is not None:
            self.status.setText(text)

    def set_progress(self, done: int, total: int) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
