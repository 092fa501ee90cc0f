"""The explorer's look: a calm dark theme that lets astronomical images stand out.

Colours are defined once here; the Qt style sheet (``resources/dark.qss``) uses the same
values, and the plot, the hover card and the markers take theirs from this module.
"""

from __future__ import annotations

from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

RESOURCES = Path(__file__).parent / "resources"

BG = "#0d1016"           # the plot: near black, slightly blue, like a sky background
PANEL = "#141821"        # docks and widgets
PANEL_ALT = "#1a1f2a"    # alternating rows, inputs
BORDER = "#252b37"
BORDER_LIGHT = "#3a4354"
TEXT = "#d9dee7"
TEXT_DIM = "#8b94a6"
ACCENT = "#5aa9ff"       # focus, selection, progress
CURRENT = "#ffd84d"      # the object in the inspector
QUEUED = "#5ee3ff"       # objects in the queue
HOVER = "#ffffff"
EXCLUDED = "#8b94a6"


def font_family() -> str:
    return QtWidgets.QApplication.font().family() if QtWidgets.QApplication.instance() else "DejaVu Sans"


def icon(name: str) -> QtGui.QIcon:
    """An icon from ``resources/icons/<name>.svg`` (an empty icon when missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QtGui.QIcon(str(path)) if path.exists() else QtGui.QIcon()


def apply(app: QtWidgets.QApplication) -> None:
    """Fusion style, a dark palette and the style sheet, on the whole application."""
    app.setStyle("Fusion")
    pal = QtGui.QPalette()
    c = QtGui.QColor
    role = QtGui.QPalette.ColorRole
    for r, col in [(role.Window, PANEL), (role.WindowText, TEXT), (role.Base, BG), (role.AlternateBase, PANEL_ALT),
                   (role.ToolTipBase, PANEL_ALT), (role.ToolTipText, TEXT), (role.Text, TEXT),
                   (role.Button, PANEL_ALT), (role.ButtonText, TEXT), (role.BrightText, "#ffffff"),
                   (role.Highlight, ACCENT), (role.HighlightedText, "#0b0e14"), (role.Link, ACCENT),
                   (role.PlaceholderText, TEXT_DIM), (role.Mid, BORDER), (role.Dark, BG),
                   (role.Light, BORDER_LIGHT)]:
        pal.setColor(r, c(col))
    for r in (role.Text, role.ButtonText, role.WindowText):
        pal.setColor(QtGui.QPalette.ColorGroup.Disabled, r, c("#5c6474"))
    app.setPalette(pal)
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
        app.setFont(font)
    qss = RESOURCES / "dark.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    QtCore.QCoreApplication.setAttribute(QtCore.Qt.ApplicationAttribute.AA_DontShowIconsInMenus, False)
