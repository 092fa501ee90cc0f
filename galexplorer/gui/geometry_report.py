"""Where the window's controls are, for checks from outside the widgets (issue #23's acceptance).

:func:`toolbar_controls` lists every control of the map's tool bar (tools, selection mode, the
Colour box, its limits, log, diverging, reset view, similar) and whether it is shown whole inside
the tool bar; the tests and :func:`window_report` use it, so "visible" means one thing.

A scripted session drives a real ``galexplorer open`` process under Xvfb with xdotool
(``benchmarks/xvfb_session.py``); X11 sees one window, not Qt's widgets. With
``$GALEXPLORER_GEOMETRY=FILE.json`` set, :func:`run_app <.app.run_app>` starts a
:class:`GeometryReporter`, which writes :func:`window_report` to that file (atomically) every
250 ms while it changes: the controls, the docks' widths, the Colour box's entries, the
inspector's image and the map in screen pixels, and whether a job runs.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from PySide6 import QtCore, QtWidgets

log = logging.getLogger(__name__)
ENV = "GALEXPLORER_GEOMETRY"
INTERVAL_MS = 250


def _name(action, widget) -> str:
    text = action.text() or (widget.text() if hasattr(widget, "text") else "")
    return text or widget.objectName() or type(widget).__name__


def toolbar_controls(window) -> list[tuple[str, QtWidgets.QWidget, bool]]:
    """(name, widget, shown whole inside the tool bar) for every control of the map's tool bar
    (not the spacer, the "Colour" caption or the counts line)."""
    panel = window.scatter_panel
    bar = panel.toolbar
    out = []
    for a in bar.actions():
        widget = bar.widgetForAction(a)
        if a.isSeparator() or widget is None or widget is panel.info or widget.objectName() == "BarSpacer":
            continue
        if isinstance(widget, QtWidgets.QLabel):
            continue
        rect = QtCore.QRect(widget.mapTo(bar, QtCore.QPoint(0, 0)), widget.size())
        whole = widget.isVisible() and bar.isVisible() and bar.rect().contains(rect)
        out.append((_name(a, widget), widget, whole))
    return out


def _global_rect(widget) -> list[int]:
    p = widget.mapToGlobal(QtCore.QPoint(0, 0))
    return [p.x(), p.y(), widget.width(), widget.height()]


def window_report(window) -> dict:
    """What a check from outside needs: JSON-ready, rectangles as [x, y, width, height] in
    screen pixels."""
    ex = window.explorer
    colour = window.scatter_panel.colour
    controls = toolbar_controls(window)
    busy = ex is not None and (ex.refits.busy or ex.searches.busy or ex.io.busy)
    focus = QtWidgets.QApplication.focusWidget()
    return {
        "title": window.windowTitle(),
        "window": _global_rect(window),
        "user": ex.user if ex is not None else None,
        "busy": bool(busy),
        "current": ex.current if ex is not None else None,
        "controls": [{"name": n, "visible": v, "rect": _global_rect(w)} for n, w, v in controls],
        "hidden": [n for n, _, v in controls if not v],
        "docks": {n: d.width() for n, d in window.docks.items() if d.isVisible()},
        "colour": {"current": colour.currentText(), "index": colour.currentIndex(),
                   "map": window.scatter.colour_spec.name,
                   "entries": [colour.itemText(k) for k in range(colour.count())],
                   "rect": _global_rect(colour)},
        "inspector_image": _global_rect(window.inspector.stamp),
        "inspector_zoom": window.inspector.stamp.zoom,
        "map": _global_rect(window.scatter),
        "focus": type(focus).__name__ if focus is not None else None,
        "menus": {m.title().replace("&", ""): _keyboard_items(m) for m in _menus(window)},
        "dialogs": [type(d).__name__ for d in QtWidgets.QApplication.topLevelWidgets()
                    if d is not window and d.isVisible() and d.isWindow()],
    }


def _menus(window) -> list[QtWidgets.QMenu]:
    return [a.menu() for a in window.menuBar().actions() if a.menu() is not None]


def _keyboard_items(menu: QtWidgets.QMenu) -> list[str]:
    """The entries the arrow keys move through, in order (separators, hidden and disabled
    entries are skipped)."""
    return [a.text() for a in menu.actions() if not a.isSeparator() and a.isVisible() and a.isEnabled()]


class GeometryReporter(QtCore.QObject):
    """Writes :func:`window_report` to ``path`` every 250 ms while it changes."""

    def __init__(self, window, path: str | Path):
        super().__init__(window)
        self.window = window
        self.path = Path(path)
        self._last = ""
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.write)

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def write(self) -> None:
        text = json.dumps(window_report(self.window), sort_keys=True)
        if text == self._last:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:   # a check's aid: never worth stopping the window for
            log.debug("could not write the geometry report %s: %s", self.path, exc)
            return
        self._last = text


def start_from_environment(window) -> GeometryReporter | None:
    """A reporter writing to ``$GALEXPLORER_GEOMETRY``, when that is set."""
    path = os.environ.get(ENV)
    if not path:
        return None
    reporter = GeometryReporter(window, path)
    reporter.start()
    return reporter
