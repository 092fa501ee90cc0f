"""The window's status bar: the counters (labeller, objects, scored, batch, refit, selection,
model), the estimate of interesting objects left, the typing hint and the refit's progress."""

from __future__ import annotations

from PySide6 import QtWidgets

from .remaining import RemainingIndicator

COUNTERS = ("labeller", "objects", "scored", "queue", "since_refit", "selected", "model")


class WindowStatus:
    """The permanent widgets of one window's status bar, and what updates them.

    Attributes:
        counters: one label per name of :data:`COUNTERS`.
        remaining: interesting objects left (:mod:`.remaining`).
        typing: the hint shown while a text field takes the keys.
        refit_bar: the refit's progress (hidden when no refit runs).
    """

    def __init__(self, window):
        self.window = window
        sb = window.statusBar()
        self.counters: dict[str, QtWidgets.QLabel] = {}
        for name in COUNTERS:
            lab = QtWidgets.QLabel("")
            lab.setObjectName(f"counter_{name}")
            lab.setProperty("counter", True)
            sb.addPermanentWidget(lab)
            self.counters[name] = lab
        self.remaining = RemainingIndicator(window)
        sb.addPermanentWidget(self.remaining)
        self.typing = QtWidgets.QLabel("keys go to the text field · Esc returns them to labelling")
        self.typing.setObjectName("TypingHint")
        self.typing.hide()
        sb.addPermanentWidget(self.typing)
        self.refit_bar = QtWidgets.QProgressBar()
        self.refit_bar.setObjectName("RefitProgress")
        self.refit_bar.setMaximumWidth(120)
        self.refit_bar.setMaximumHeight(10)
        self.refit_bar.setTextVisible(False)
        self.refit_bar.hide()
        sb.addPermanentWidget(self.refit_bar)

    def update_counters(self) -> None:
        ex = self.window.explorer
        if ex is None:
            for lab in self.counters.values():
                lab.setText("")
            return
        c = ex.counters()
        self.counters["labeller"].setText(f"labeller: {ex.user}")
        self.counters["objects"].setText(f"{c['objects']:,} objects")
        # "scored" counts every labeller's objects: say which are yours once others have labelled
        mine = f" · {c['yours']:,} yours" if c["yours"] != c["scored"] else ""
        self.counters["scored"].setText(f"{c['scored']:,} scored{mine}")
        self.counters["queue"].setText(f"{c['queue']} in batch")
        self.counters["since_refit"].setText(f"{c['since_refit']}/{c['batch']} to refit")
        n_sel = len(ex.selection)
        self.counters["selected"].setText(f"{n_sel:,} selected" if n_sel else "")
        self.counters["selected"].setVisible(bool(n_sel))
        self.counters["model"].setText(str(c["model"]))
        state = ex.state
        reason = getattr(state, "representation_reason", "") if state is not None else ""
        self.counters["model"].setToolTip(f"learns on {reason}" if reason else "")

    def on_refit_state(self, busy: bool, text: str) -> None:
        self.window.queue.set_busy(busy, text)
        self.refit_bar.setVisible(busy)
        if busy:
            self.refit_bar.setRange(0, 0)
        self.update_counters()

    def on_progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.refit_bar.setRange(0, total)
            self.refit_bar.setValue(min(done, total))
            self.window.queue.set_progress(done, total)

    def on_hover(self, i: int) -> None:
        ex = self.window.explorer
        if i >= 0 and ex is not None:
            self.window.statusBar().showMessage(f"{ex.object_id(i)} — click to inspect", 3000)
