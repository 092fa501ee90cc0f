"""The Why-here panel (issue #23 item 10): why the object in the inspector ranks where it does.

Its predicted score split into the prior (the anomaly part, for ``gp-anomaly``) and what the
labels add, each with its ±; the labelled objects that pull it most (their kriging weight times
their score less the prior there) as thumbnails; its anomaly percentile and its nearest labelled
neighbour. A click on a thumbnail inspects that object. It displays what
:class:`~.why_here.WhyHere` answers (computed in the model's process by
:func:`~galexplorer.active.explain.explain`, the numbers of ``export --explain``) and asks for a
new answer when the inspected object changes, after each refit and when it comes into view
(nothing is asked while it is hidden).

Predictions leave the 0–5 scale only as "≥5"/"≤0" (:func:`~galexplorer.label_scale.format_prediction`),
with the exact value, which the parts add up to, in a line below.
"""

from __future__ import annotations

import math

import shiboken6
from PySide6 import QtCore, QtWidgets

from ..active.registry import scorer_label
from ..label_scale import MAX_SCORE, MIN_SCORE, format_prediction
from .elided import ElidedLabel
from .objectlist import elide_middle
from .why_here import WhyAnswer

THUMB = 64          # smallest thumbnail side, pixels
MAX_THUMB = 192     # largest: the dock's height decides in between
BUTTON_W = THUMB + 56   # a button's least width: its two caption lines (an id, the score)
ID_CHARS = 14       # characters of an id under a thumbnail


def _signed(v: float) -> str:
    return f"{'+' if v >= 0 else '−'}{abs(v):.2f}"


def prior_name(scorer: str) -> str:
    """What the GP's prior mean is for ``scorer``: the anomaly part, or a constant."""
    return "prior (anomaly)" if "anomaly" in scorer else "prior (constant)"


class ObjectButton(QtWidgets.QToolButton):
    """A thumbnail with a two-line caption; a click asks to inspect its object.

    Signals:
        opened(int): the object's row.
    """

    opened = QtCore.Signal(int)

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.setObjectName(name)
        self.row: int | None = None
        self.source = None      # the thumbnail at its own size; the icon is it scaled to ``side``
        self.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        self.set_side(THUMB)
        self.setAutoRaise(True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)     # keys stay with labelling
        self.clicked.connect(lambda: self.row is not None and self.opened.emit(self.row))
        self.clear()

    def set_side(self, side: int) -> None:
        """Show the thumbnail ``side`` pixels wide (scaled up from the stored thumbnail: QIcon
        only ever scales down; pixels stay square, no smoothing, as in the inspector)."""
        self.side = int(side)
        self.setIconSize(QtCore.QSize(self.side, self.side))
        self.setFixedWidth(max(self.side + 12, BUTTON_W))
        if self.source is not None:
            self._set_icon()

    def _set_icon(self) -> None:
        pm = self.source
        if max(pm.width(), pm.height()) != self.side:
            pm = pm.scaled(self.side, self.side, QtCore.Qt.AspectRatioMode.KeepAspectRatio,
                           QtCore.Qt.TransformationMode.FastTransformation)
        self.setIcon(pm)

    def show_object(self, row: int, pixmap, caption: str, tip: str) -> None:
        self.row = int(row)
        self.source = pixmap
        self._set_icon()
        self.setText(caption)
        self.setToolTip(tip)
        self.setEnabled(True)
        self.show()

    def clear(self) -> None:
        self.row = None
        self.source = None
        self.setText("")
        self.setToolTip("")
        self.hide()


class WhyPanel(QtWidgets.QWidget):
    """The Why-here dock's content.

    Signals:
        opened(int): inspect this object (a thumbnail was clicked).

    Attributes:
        answer: the :class:`~.why_here.WhyAnswer` shown (None before any).
        pulls: the three pull buttons; nearest: the nearest labelled neighbour's button.
    """

    opened = QtCore.Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("WhyPanel")
        self.ex = None
        self.thumbnails = None
        self.answer: WhyAnswer | None = None
        self._follows_dock = False
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.setSpacing(14)
        lay.addLayout(self._make_numbers(), 1)
        lay.addLayout(self._make_objects())
        self.show_answer(WhyAnswer(None, reason="open a store to see why an object ranks where it does"))

    def _make_numbers(self) -> QtWidgets.QVBoxLayout:
        col = QtWidgets.QVBoxLayout()
        col.setSpacing(4)
        self.heading = ElidedLabel("", self, QtCore.Qt.TextElideMode.ElideMiddle)
        self.heading.setObjectName("InspectorTitle")
        self.prediction = ElidedLabel("", self)
        self.prediction.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.prior = ElidedLabel("", self)
        self.from_labels = ElidedLabel("", self)
        self.note = ElidedLabel("", self)
        self.note.setObjectName("Dim")
        self.percentile = ElidedLabel("", self)
        self.percentile.setToolTip("the share of objects with a lower anomaly score (0–100)")
        self.model = ElidedLabel("", self)
        self.model.setObjectName("Dim")
        self.picked = ElidedLabel("", self)      # a random pick of the cold start says so
        self.picked.setObjectName("Dim")
        for w in (self.heading, self.prediction, self.prior, self.from_labels, self.note, self.percentile,
                  self.model, self.picked):
            col.addWidget(w)
        col.addStretch(1)
        return col

    def _make_objects(self) -> QtWidgets.QGridLayout:
        grid = QtWidgets.QGridLayout()
        grid.setHorizontalSpacing(4)
        self.pulls_title = QtWidgets.QLabel("labels that pull it most")
        self.pulls_title.setToolTip("the labelled objects whose weight × (score − the prior there) adds most to "
                                    "this prediction (these terms sum to what the labels add)")
        self.nearest_title = QtWidgets.QLabel("nearest labelled")
        for label in (self.pulls_title, self.nearest_title):
            label.setObjectName("Dim")
        grid.addWidget(self.pulls_title, 0, 0, 1, 3)
        grid.addWidget(self.nearest_title, 0, 3)
        self.pulls = [ObjectButton(f"why_pull_{k + 1}", self) for k in range(3)]
        self.nearest = ObjectButton("why_nearest", self)
        for k, b in enumerate([*self.pulls, self.nearest]):
            b.opened.connect(self.opened)
            grid.addWidget(b, 1, k, QtCore.Qt.AlignmentFlag.AlignTop)
        grid.setRowStretch(2, 1)
        return grid

    # -- what it follows ---------------------------------------------------------------------------
    def bind(self, explorer, thumbnails) -> None:
        """Follow a new controller: answers from ``explorer.why``, a new request when the
        inspected object or the model changes (while the panel is visible)."""
        self.ex, self.thumbnails = explorer, thumbnails
        dock = self.parentWidget()
        if isinstance(dock, QtWidgets.QDockWidget) and not self._follows_dock:
            # a tab brought forward shows no new widget (no showEvent): the dock says so
            dock.visibilityChanged.connect(lambda on: on and QtCore.QTimer.singleShot(0, self, self.refresh))
            self._follows_dock = True
        explorer.destroyed.connect(self._on_explorer_gone)   # a method: dropped if the panel goes first
        explorer.why.explained.connect(self.show_answer)
        explorer.currentChanged.connect(lambda _: self.refresh())
        explorer.modelChanged.connect(self.refresh)
        self.show_answer(WhyAnswer(explorer.current, reason="no model yet: the first fit is running"))
        self.refresh()

    def _on_explorer_gone(self, *_) -> None:
        QtCore.QTimer.singleShot(0, self, self._forget)   # once it is gone (dropped if the panel goes too)

    def _forget(self) -> None:
        """The store was closed: forget its controller and show nothing of it."""
        if self.ex is not None and not shiboken6.isValid(self.ex):
            self.ex = None
            self.show_answer(WhyAnswer(None, reason="open a store to see why an object ranks where it does"))

    def refresh(self) -> None:
        """Ask for the explanation of the inspected object (only while the panel is in view);
        until it comes, no number of another object or an older fit stays on screen."""
        ex = self.ex
        if ex is None or ex.model.closed or not self.in_view():
            return
        if ex.current is not None and ex.state is not None:
            self._waiting(ex.current)
        ex.why.request(ex.current)

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self.fit_thumbnails()

    def fit_thumbnails(self) -> None:
        """Make the thumbnails as large as the panel allows (:data:`THUMB`…:data:`MAX_THUMB`):
        the height less the title and the two caption lines, and the four of them in at most
        three fifths of the width (the numbers keep the rest)."""
        m = self.layout().contentsMargins()
        line = self.fontMetrics().lineSpacing()
        tall = self.height() - m.top() - m.bottom() - self.pulls_title.sizeHint().height() - 2 * line - 24
        wide = (0.6 * (self.width() - m.left() - m.right())) / 4 - 16
        side = int(max(THUMB, min(MAX_THUMB, tall, wide)))
        for b in [*self.pulls, self.nearest]:
            if b.side != side:
                b.set_side(side)

    def in_view(self) -> bool:
        """Shown, and not a tab behind another dock's."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def showEvent(self, ev) -> None:
        super().showEvent(ev)
        self.refresh()

    def reveal(self) -> None:
        """The action's handler (W, Model ▸ Why here): show the panel's dock and bring it forward."""
        dock = self.parentWidget()
        if isinstance(dock, QtWidgets.QDockWidget):
            dock.show()
            dock.raise_()
        self.refresh()

    # -- what it shows -----------------------------------------------------------------------------
    def _name(self, row) -> str:
        return str(row) if self.ex is None else self.ex.object_id(int(row))

    def _waiting(self, row) -> None:
        self.show_answer(WhyAnswer(row, reason="…"))

    def show_answer(self, answer: WhyAnswer) -> None:
        """Show one answer: the split, the pulls, the percentile and the neighbour, or why not."""
        self.answer = answer
        e = answer.explanation
        for b in [*self.pulls, self.nearest]:
            b.clear()
        self.note.setText("")
        self.note.setVisible(False)
        self.model.setText("")
        self.picked.setText(answer.picked)
        self.picked.setVisible(bool(answer.picked))
        self.prior.setText("")
        self.from_labels.setText("")
        self.percentile.setText("")
        self.pulls_title.setVisible(False)
        self.nearest_title.setVisible(False)
        if answer.row is None:
            self.heading.setText("no object")
            self.prediction.setText(answer.reason)
            return
        self.heading.setText(self._name(answer.row))
        if answer.has_model:
            self.model.setText(f"model: {scorer_label(answer.scorer)} on {answer.n_labels} labels")
            n_now = self._labels_now_if_changed(answer)
            if n_now is not None:
                self._add_note(f"labels changed since this fit ({n_now} now): Ctrl+R refits")
        if e is None:
            self.prediction.setText(answer.reason)
            return
        self.percentile.setText(f"anomaly percentile {e.anomaly_percentile[0]:.1f}")
        self._show_nearest(e)
        if not answer.has_model:
            self.prediction.setText("no model yet: the first batch follows the anomaly order")
            return
        mean, std = float(e.mean[0]), float(e.std[0])
        self.prediction.setText(f"predicted  {format_prediction(mean, std)}")
        if not math.isfinite(float(e.prior[0])):
            self.prior.setText("the split into prior and labels needs a GP scorer (the Queue panel's Scorer)")
            self._note_scale(mean)
            return
        prior = float(e.prior[0])
        self.prior.setText(f"= {prior_name(answer.scorer)}  {format_prediction(prior, float(e.prior_std[0]))}")
        self.from_labels.setText(f"{'+' if e.from_labels[0] >= 0 else '−'} what the labels add  "
                                 f"{abs(float(e.from_labels[0])):.2f}")
        self._note_scale(mean, prior, float(e.from_labels[0]))
        self._show_pulls(e)

    def _note_scale(self, mean: float, prior: float = math.nan, added: float = math.nan) -> None:
        """Below the numbers: the exact mean where the shown one left the 0–5 scale."""
        def on_scale(v: float) -> bool:
            return math.isnan(v) or MIN_SCORE <= round(v, 2) <= MAX_SCORE

        if on_scale(mean) and on_scale(prior):
            return
        parts = f" ({prior:.2f} {_signed(added)})" if math.isfinite(prior) else ""
        self._add_note(f"the model's mean is {mean:.2f}{parts}, beyond the {MIN_SCORE}–{MAX_SCORE} scale "
                       "(ranked by it)")

    def _add_note(self, text: str) -> None:
        """One more line below the numbers (the notes so far kept, joined)."""
        self.note.setText("; ".join(t for t in (self.note.text(), text) if t))
        self.note.setVisible(True)

    def _pixmap(self, row: int):
        from .thumbs import placeholder

        return self.thumbnails.pixmap(int(row)) if self.thumbnails is not None else placeholder(THUMB)

    def _label_now(self, row: int) -> float:
        """Object ``row``'s consensus score now (NaN: unscored), to set beside the fit's."""
        ex = self.ex
        return float(ex.session.labels[int(row)]) if ex is not None and shiboken6.isValid(ex) else math.nan

    def _as_fitted(self, row: int, fitted: float) -> str:
        """"" when the object's label is still the one the fit used, else what it is now
        (an undone or changed label is never shown as if it held)."""
        now = self._label_now(row)
        if now == fitted:
            return ""
        return "unscored now" if math.isnan(now) else f"★{now:g} now"

    def _labels_now_if_changed(self, answer: WhyAnswer) -> int | None:
        """None while the labels shown (pulls, nearest) and the labels a fit would take are still
        those of the fit; else how many labels a fit would take now."""
        ex, e = self.ex, answer.explanation
        if ex is None or not shiboken6.isValid(ex) or e is None:
            return None
        n_now = len(ex.session.fit_inputs(answer.scorer)[0])     # disputed objects left out as the fit does
        shown = [(r, y) for r, y in zip(e.pulls[0], e.pull_labels[0]) if r >= 0]
        if e.nearest[0] >= 0:
            shown.append((e.nearest[0], e.nearest_label[0]))
        changed = n_now != answer.n_labels or any(self._as_fitted(r, float(y)) for r, y in shown)
        return n_now if changed else None

    def _show_pulls(self, e) -> None:
        shown = 0
        for b, row, y, w, c in zip(self.pulls, e.pulls[0], e.pull_labels[0], e.pull_weights[0],
                                   e.pull_contributions[0]):
            if row < 0:
                continue
            name, changed = self._name(row), self._as_fitted(row, float(y))
            b.show_object(row, self._pixmap(row),
                          f"{elide_middle(name, ID_CHARS)}\n★{y:g} · {_signed(c)}" + (f"\n{changed}" if changed else ""),
                          f"{name}: score {y:g}; weight {w:.3g} × (its score − the prior there) = {_signed(c)} "
                          "to this prediction" + (f"\nits label changed since this fit ({changed}): the next refit "
                                                  "uses that" if changed else "") + "\nclick to inspect it")
            shown += 1
        self.pulls_title.setVisible(shown > 0)

    def _show_nearest(self, e) -> None:
        row = int(e.nearest[0])
        if row < 0:
            return
        name, y = self._name(row), float(e.nearest_label[0])
        changed = self._as_fitted(row, y)
        self.nearest.show_object(row, self._pixmap(row), f"{elide_middle(name, ID_CHARS)}\n★"
                                 f"{y:g} · d {e.nearest_distance[0]:.2g}" + (f"\n{changed}" if changed else ""),
                                 f"{name}: the nearest labelled object in the features the model learns on "
                                 f"(distance {e.nearest_distance[0]:.3g}), score {y:g}"
                                 + (f"\nits label changed since this fit ({changed})" if changed else "")
                                 + "\nclick to inspect it")
        self.nearest_title.setVisible(True)
