"""Why here (issue #23 item 10): the explanation of the inspected object's prediction, asked of
the model's process (:meth:`~.modelproc.ModelProcess.explain`, which calls
:func:`~galexplorer.active.explain.explain` on the fit the window shows) from a latest-only
worker, so the window never waits for it. :mod:`.why_panel` shows the answers.

An answer that no longer fits what the window shows (another object, a newer refit) is
dropped: the request for what is shown now follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore

from .workers import LatestOnlyRunner


@dataclass(frozen=True)
class WhyAnswer:
    """What the Why-here panel shows for one object.

    Attributes:
        row: the object (None: no object).
        explanation: an :class:`~galexplorer.active.explain.Explanation` of that one row, or None
            with ``reason`` saying why there is none.
        scorer: the model's scorer ("prior:anomaly" before the first labels).
        n_labels: the labels it was fitted on.
        reason: why there is no explanation ("no model yet", an error), or "".
        picked: why the object is in the queue when the model did not pick it (a random pick of
            the cold start, :mod:`galexplorer.active.cold_start`), or "".
    """

    row: int | None
    explanation: object = None
    scorer: str = ""
    n_labels: int = 0
    reason: str = ""
    picked: str = ""

    @property
    def has_model(self) -> bool:
        """A model fitted on labels (not the anomaly order of the first batch)."""
        return self.explanation is not None and not self.scorer.startswith("prior")


class WhyHere(QtCore.QObject):
    """The Why-here requests of one :class:`~.controller.Explorer` (``explorer``).

    Signals:
        explained(object): a :class:`WhyAnswer` for the object in the inspector.

    Attributes:
        runner: the worker (``busy``, ``wait`` for tests).
    """

    explained = QtCore.Signal(object)

    def __init__(self, explorer):
        super().__init__(explorer)
        self.ex = explorer
        self.runner = LatestOnlyRunner("why-here", self)
        self.runner.finished.connect(self._on_answer)
        self.runner.failed.connect(self._on_failed)

    def request(self, row: int | None) -> None:
        """Explain ``row`` by the model the window shows (answered by :attr:`explained`; at once
        when there is no object or no model yet)."""
        state = self.ex.state
        if row is None:
            self.explained.emit(WhyAnswer(None, reason="no object in the inspector"))
            return
        if state is None:
            self.explained.emit(WhyAnswer(int(row), reason="no model yet: the first fit is running"))
            return
        model = self.ex.model
        labelled, labels = state.labelled, state.labels
        self.runner.submit(lambda: model.explain(int(row), labelled, labels), tag=(int(row), state))

    def _fits_now(self, tag) -> bool:
        row, state = tag
        return state is self.ex.state and row == self.ex.current

    def _on_answer(self, tag, answer) -> None:
        if not self._fits_now(tag):
            return      # another object or a newer fit: its own request follows
        if answer is None:
            if not self.ex.refitting:   # a new model process, without this fit (it was restarted)
                self.explained.emit(WhyAnswer(tag[0], reason="the model's process was restarted: the "
                                              "explanation returns with the next refit (Ctrl+R)"))
            return      # else the refit running now lands, and its request follows
        explanation, scorer, n_labels = answer
        row, state = tag
        picked = state.cold_start.short if state.picked_at_random(row) else ""
        self.explained.emit(WhyAnswer(row, explanation, scorer, n_labels, picked=picked))

    def _on_failed(self, tag, message: str) -> None:
        if self._fits_now(tag):
            self.explained.emit(WhyAnswer(tag[0], reason=f"cannot explain this object: {message}"))
