"""The map with its tool bar: tools, selection mode, colour control and limits, view actions."""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from . import theme
from .scatter import ScatterView
from .selection import SelectionMode

# (name, mode, the key that gives it while dragging)
MODE_NAMES = [("replace", SelectionMode.REPLACE, ""), ("add", SelectionMode.ADD, "Shift"),
              ("remove", SelectionMode.REMOVE, "Ctrl"), ("intersect", SelectionMode.INTERSECT, "Shift+Ctrl")]
LIMIT_SAMPLE = "-0000.00"   # the colour limit boxes show a value this wide whole (#23)


class LimitEdit(QtWidgets.QLineEdit):
    """A colour limit box as wide as a value like ``-0000.00`` needs (the style's frame and
    padding included), so 483.21 shows whole rather than "4…"."""

    def sizeHint(self) -> QtCore.QSize:
        opt = QtWidgets.QStyleOptionFrame()
        self.initStyleOption(opt)
        inner = self.style().subElementRect(QtWidgets.QStyle.SubElement.SE_LineEditContents, opt, self)
        m = self.textMargins()
        overhead = self.width() - inner.width() + m.left() + m.right() + 4   # 4: QLineEdit's own margin
        width = self.fontMetrics().horizontalAdvance(LIMIT_SAMPLE) + overhead
        return QtCore.QSize(width, super().sizeHint().height())

    def minimumSizeHint(self) -> QtCore.QSize:
        return self.sizeHint()



class ScatterPanel(QtWidgets.QMainWindow):
    """The scatter with its toolbar (tools, selection mode, colour, view).

    A main window of its own (inside the explorer's) so that the tool bar overflows the Qt
    way: when the map is too narrow for every control, the tool bar's extension button (») at
    its right end shows the rest in extra rows of the tool bar, widgets included (a tool bar
    outside a main window offers only its plain actions in a menu).
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowFlags(QtCore.Qt.WindowType.Widget)
        self.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.PreventContextMenu)   # no bar toggle
        bar = QtWidgets.QToolBar(self)
        bar.setObjectName("ScatterBar")
        bar.setIconSize(QtCore.QSize(18, 18))
        bar.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonIconOnly)
        bar.setMovable(False)
        bar.setFloatable(False)
        bar.toggleViewAction().setVisible(False)
        self.toolbar = bar
        self.view = ScatterView(self)
        self.colour = QtWidgets.QComboBox()
        self.colour.setObjectName("colour")
        self.colour.setMinimumWidth(150)
        self.colour.setMaximumWidth(240)
        self.colour.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colour.setMinimumContentsLength(21)   # "model: predicted score" whole
        self.colour.setToolTip("colour the map by density, the model, a score or a catalogue column")
        self.mode = QtWidgets.QComboBox()
        self.mode.setObjectName("selection_mode")
        for k, (text, mode, key) in enumerate(MODE_NAMES):
            self.mode.addItem(text, mode)
            if key:
                self.mode.setItemData(k, f"{text} ({key} while dragging)", QtCore.Qt.ItemDataRole.ToolTipRole)
        self.mode.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.mode.setToolTip("how a new lasso or rectangle combines with the selection "
                             "(Shift adds, Ctrl removes, Shift+Ctrl intersects)")
        self.lo = LimitEdit()
        self.hi = LimitEdit()
        for w, text in ((self.lo, "low"), (self.hi, "high")):
            w.setObjectName(f"colour_{text}")
            w.setValidator(QtGui.QDoubleValidator(w))
            w.setToolTip(f"the colour bar's {text} end (empty: the {'1st' if text == 'low' else '99th'} "
                         "percentile); Enter applies")
        self.log = QtWidgets.QCheckBox("log")
        self.log.setToolTip("colour by log10 of the values (values <= 0 get no colour)")
        self.diverging = QtWidgets.QCheckBox("diverging")
        self.diverging.setToolTip("a blue-white-red map centred on the median")
        self.info = QtWidgets.QLabel("")
        self.info.setObjectName("Dim")
        # the counts give way first when the window is narrow (the tool bar sets its minimum width)
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.addToolBar(QtCore.Qt.ToolBarArea.TopToolBarArea, bar)
        self.setCentralWidget(self.view)


    def add_tools(self, act: dict[str, QtGui.QAction]) -> None:
        """Fill the tool bar: the table's map tools (``act``: the window's actions by name), the
        selection mode, the colour control and its limits, the view actions and the hint line."""
        bar = self.toolbar
        for name in ("pan", "lasso", "rectangle"):
            bar.addAction(act[name])
        bar.addWidget(self.mode)
        bar.addSeparator()
        bar.addWidget(QtWidgets.QLabel("Colour"))
        bar.addWidget(self.colour)
        for w in (self.lo, self.hi, self.log, self.diverging):
            bar.addWidget(w)
        bar.addSeparator()
        bar.addAction(act["reset_view"])
        bar.addAction(act["similar"])
        spacer = QtWidgets.QWidget()
        spacer.setObjectName("BarSpacer")
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addWidget(self.info)
        more = bar.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
        if more is not None:   # Qt's overflow button: shown only when the map is too narrow
            more.setIcon(theme.icon("more"))
            more.setToolTip("more tools: the tool bar's controls that do not fit")

    def colour_limits(self) -> tuple[float | None, float | None]:
        """The limit boxes' values (None where empty or not a number)."""
        return tuple(float(w.text().replace(",", ".")) if w.hasAcceptableInput() and w.text() else None
                     for w in (self.lo, self.hi))

    def clear_limits(self) -> None:
        for w in (self.lo, self.hi):
            w.blockSignals(True)
            w.clear()
            w.blockSignals(False)

    def show_spec(self, spec) -> None:
        """Limits and scale controls for a colour spec: enabled for a continuous column, with its
        automatic range as the boxes' placeholders."""
        continuous = spec.kind == "continuous"
        for w, v in ((self.lo, spec.auto_range[0]), (self.hi, spec.auto_range[1])):
            w.setEnabled(continuous)
            w.setPlaceholderText(f"{v:.3g}" if continuous else "")
        self.log.setEnabled(continuous)
        self.diverging.setEnabled(continuous)
