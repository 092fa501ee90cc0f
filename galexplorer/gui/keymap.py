"""Every keyboard shortcut of the explorer, in one table.

The main window creates its actions from :data:`SHORTCUTS`, the ``?`` dialog lists them, and
``docs/user-guide.md`` is checked against them by the tests, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets


@dataclass(frozen=True)
class Shortcut:
    """One action and its keys.

    Attributes:
        action: the action's name in the main window.
        keys: key sequences in Qt's portable text form ("Ctrl+Z", "Left", "?").
        text: menu text.
        description: what it does, for the help dialog and the user guide.
        group: the help dialog's section.
    """

    action: str
    keys: tuple[str, ...]
    text: str
    description: str
    group: str


def _score(s: int, meaning: str) -> Shortcut:
    return Shortcut(f"score_{s}", (str(s),), f"Score {s}",
                    f"score {s}: {meaning} (saved at once; the next object follows)", "Labelling")


SHORTCUTS: tuple[Shortcut, ...] = (
    _score(0, "nothing of interest"),
    _score(1, "barely interesting"),
    _score(2, "a little interesting"),
    _score(3, "interesting"),
    _score(4, "very interesting"),
    _score(5, "exactly what I am looking for"),
    Shortcut("previous", ("Left",), "Previous object", "go back to the object shown before", "Labelling"),
    Shortcut("next", ("Right",), "Next object", "go to the next object without scoring this one", "Labelling"),
    Shortcut("queue_head", ("Space",), "Go to the queue",
             "show the head of the queue (the model's new batch after a refit)", "Labelling"),
    Shortcut("skip", ("S",), "Skip", "leave this object unscored and take it out of the queue", "Labelling"),
    Shortcut("note", ("N",), "Note…", "write a note about this object (kept with the labels)", "Labelling"),
    Shortcut("undo", ("Ctrl+Z",), "Undo", "take back the last score, note or exclusion", "Labelling"),
    Shortcut("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "record again what was undone", "Labelling"),
    Shortcut("exclude", ("X",), "Exclude as artefact",
             "exclude the selection (or this object) from the ranking", "Labelling"),
    Shortcut("similar", ("F",), "Find similar",
             "show the objects most similar to this one (or to the selection) in the gallery", "Exploring"),
    Shortcut("lasso", ("L",), "Lasso", "draw a free-hand selection in the map (drag)", "Exploring"),
    Shortcut("rectangle", ("R",), "Rectangle", "draw a rectangular selection in the map (drag)", "Exploring"),
    Shortcut("pan", ("P",), "Pan", "back to pan and zoom with the mouse", "Exploring"),
    Shortcut("clear_selection", ("Esc",), "Clear selection",
             "clear the selection (and stop drawing)", "Exploring"),
    Shortcut("show_selection", ("G",), "Selection in gallery", "show the selected objects in the gallery",
             "Exploring"),
    Shortcut("reset_view", ("Home",), "Reset view", "show the whole map", "Exploring"),
    Shortcut("centre", ("C",), "Centre on object", "centre the map on the object in the inspector", "Exploring"),
    Shortcut("stretch", ("T",), "Next stretch", "cycle the image stretch: linear, log, asinh, zscale",
             "Exploring"),
    Shortcut("band", ("B",), "Next band", "cycle colour composite and single bands", "Exploring"),
    Shortcut("viewer", ("V",), "Open in sky viewer",
             "open the object's ra/dec in the external viewer (Legacy Surveys by default)", "Exploring"),
    Shortcut("refit", ("Ctrl+R",), "Refit now", "refit the model on all labels now", "Model"),
    Shortcut("open", ("Ctrl+O",), "Open store…", "open another store", "Files"),
    Shortcut("export", ("Ctrl+E",), "Export ranked list…",
             "write the ranked candidates as CSV or VOTable (as `galexplorer export`)", "Files"),
    Shortcut("quit", ("Ctrl+Q",), "Quit", "close the explorer (everything is already saved)", "Files"),
    Shortcut("help", ("?", "F1"), "Keyboard shortcuts", "show this list", "Help"),
)

BY_ACTION = {s.action: s for s in SHORTCUTS}


def key_sequences(shortcut: Shortcut) -> list[QtGui.QKeySequence]:
    return [QtGui.QKeySequence(k) for k in shortcut.keys]


def display_keys(shortcut: Shortcut) -> str:
    names = {"Left": "←", "Right": "→", "Esc": "Esc"}
    return " or ".join(names.get(k, k) for k in shortcut.keys)


def markdown_table() -> str:
    """The shortcuts as a Markdown table (the user guide carries a copy)."""
    rows = ["| Keys | Action |", "|---|---|"]
    for s in SHORTCUTS:
        keys = " or ".join(f"`{k}`" for k in s.keys)
        rows.append(f"| {keys} | {s.description} |")
    return "\n".join(rows)


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
        for s in SHORTCUTS:
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
