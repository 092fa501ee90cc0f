"""How many interesting objects are left, in the status bar (issue #23 item 11).

:class:`RemainingIndicator` is a flat button in the status bar: ``12 found · ~34 left``, with the
interval and the next batch's expected yield in its tooltip, marked when the stopping hint fires.
Clicking it shows :class:`RemainingPlot`: found and estimated-remaining (with its interval)
against labels given, one point per refit. It only displays what each refit's
:class:`~galexplorer.active.session.ModelState` carries (``remaining``, from
:mod:`galexplorer.active.remaining`, computed in the model's process).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets


@dataclass(frozen=True)
class RemainingPoint:
    """One refit's estimate: labels given, found, expected remaining and its interval."""

    labels: int
    found: int
    expected: float
    low: int
    high: int
    stop: bool


def indicator_text(est: dict) -> str:
    """The status bar's short text for an estimate (``RemainingEstimate.as_dict()``)."""
    text = f"{est['found']} found · ~{est['expected']:.0f} left"
    return text + " · stop?" if est["stop"] else text


def indicator_tooltip(est: dict) -> str:
    lines = [f"interesting (score ≥ {est['threshold']:g}) among the {est['n_unlabelled']} unlabelled objects: "
             f"about {est['expected']:.1f}, {est['low']}–{est['high']} at {100 * est['level']:.0f}%",
             f"the next batch of {est['batch_size']} is expected to bring {est['next_yield']:.1f}"]
    if est["stop"]:
        lines.append(f"below {est['stop_below']:g}: labelling more is unlikely to find much")
    lines.append("an estimate from the model (see docs/active-learning.md); click for its history")
    return "\n".join(lines)


class RemainingPlot(QtWidgets.QFrame):
    """Found and estimated-remaining (with the interval) against labels given."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent, QtCore.Qt.WindowType.Tool)
        self.setObjectName("RemainingPlot")
        self.setWindowTitle("Interesting objects: found and left")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumSize(360, 220)
        self.plot.setLabel("bottom", "labels given")
        self.plot.setLabel("left", "interesting objects")
        self.plot.addLegend(offset=(5, 5))
        self.found = self.plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=5, name="found")
        self.low = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=0.5))
        self.high = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=0.5))
        self.band = pg.FillBetweenItem(self.low, self.high, brush=pg.mkBrush(214, 39, 40, 50))
        self.plot.addItem(self.band)
        self.estimate = self.plot.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="o", symbolSize=5,
                                       name="estimated left (interval)")
        layout.addWidget(self.plot)

    def set_points(self, points: list[RemainingPoint]) -> None:
        x = np.array([p.labels for p in points], dtype=float)
        self.found.setData(x, [p.found for p in points])
        self.estimate.setData(x, [p.expected for p in points])
        self.low.setData(x, [p.low for p in points])
        self.high.setData(x, [p.high for p in points])


class RemainingIndicator(QtWidgets.QToolButton):
    """The status bar's estimate of the interesting objects left; click for the plot."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("counter_remaining")
        self.setAutoRaise(True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)     # keys stay with labelling
        self.points: list[RemainingPoint] = []
        self.estimate: dict | None = None
        self.popup: RemainingPlot | None = None
        self.clicked.connect(self.toggle_plot)
        self.hide()

    def reset(self) -> None:
        """Forget the history (a store was closed or another opened)."""
        self.points = []
        self.estimate = None
        self.setText("")
        self.hide()
        if self.popup is not None:
            self.popup.set_points([])
            self.popup.hide()

    def update_state(self, state) -> None:
        """Show a refit's estimate (``state.remaining``; hidden where it has none)."""
        est = getattr(state, "remaining", None)
        self.estimate = est
        if not est:
            self.hide()
            return
        n = int(state.n_labels)
        # an undo or another labeller's view can go back: keep the history up to these labels
        self.points = [p for p in self.points if p.labels < n]
        self.points.append(RemainingPoint(n, int(est["found"]), float(est["expected"]), int(est["low"]),
                                          int(est["high"]), bool(est["stop"])))
        self.setText(indicator_text(est))
        self.setToolTip(indicator_tooltip(est))
        self.setProperty("stop", bool(est["stop"]))
        self.setStyleSheet("font-weight: bold; color: #b35900;" if est["stop"] else "")
        self.show()
        if self.popup is not None:
            self.popup.set_points(self.points)

    def toggle_plot(self) -> None:
        if self.popup is None:
            self.popup = RemainingPlot(self.window())
        if self.popup.isVisible():
            self.popup.hide()
            return
        self.popup.set_points(self.points)
        self.popup.show()
        self.popup.raise_()
