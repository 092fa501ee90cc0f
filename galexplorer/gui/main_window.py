"""The main window: the scatter in the centre, docked panels around it, menus, shortcuts and
the status bar. It wires widgets to the :class:`~.controller.Explorer` and holds no logic of
its own beyond that wiring."""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ..active.loop import LoopConfig
from ..active.registry import ACQUISITIONS, DEFAULT_ACQUISITION, DEFAULT_SCORER, SCORERS
from ..active.session import LabellingSession, open_store
from ..data.hdf5 import H5_SUFFIXES
from ..errors import GalexplorerError
from ..label_scale import format_prediction
from . import theme
from .actions import BY_ACTION, MENUS, SHORTCUTS
from .controller import DISPUTED, LABEL, Explorer
from .gallery import GalleryPanel
from .inspector import Inspector
from .keymap import ShortcutHelp, key_sequences
from .objectlist import elide_middle
from .queue import QueuePanel
from .remaining import RemainingIndicator
from .scatter import ScatterView, Tool
from .selection import SelectionMode
from .settings import Settings, viewer_url
from .thumbs import ThumbnailCache

log = logging.getLogger(__name__)

TABLE_AFTER_PAINT_MS = 100   # at opening, the candidates table is filled this long after the map
# (name, mode, the key that gives it while dragging)
MODE_NAMES = [("replace", SelectionMode.REPLACE, ""), ("add", SelectionMode.ADD, "Shift"),
              ("remove", SelectionMode.REMOVE, "Ctrl"), ("intersect", SelectionMode.INTERSECT, "Shift+Ctrl")]
LIMIT_SAMPLE = "-0000.00"   # the colour limit boxes show a value this wide whole (#23)


class WelcomePage(QtWidgets.QWidget):
    """What the centre shows before a store is open: how to open one, and recent stores."""

    openRequested = QtCore.Signal(str)

    def __init__(self, recent: list[str], parent=None):
        super().__init__(parent)
        self.setObjectName("Welcome")
        lay = QtWidgets.QVBoxLayout(self)
        lay.addStretch(2)
        title = QtWidgets.QLabel("galexplorer")
        title.setObjectName("WelcomeTitle")
        title.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(title)
        text = QtWidgets.QLabel("Open a store with File ▸ Open (Ctrl+O), or drop a store.h5 here.\n"
                                "Build one with `galexplorer embed`, or try `galexplorer demo`.")
        text.setObjectName("Dim")
        text.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(text)
        for path in recent[:6]:
            b = QtWidgets.QPushButton(path)
            b.setObjectName("RecentButton")
            b.clicked.connect(lambda _=False, p=path: self.openRequested.emit(p))
            row = QtWidgets.QHBoxLayout()
            row.addStretch(1)
            row.addWidget(b)
            row.addStretch(1)
            lay.addLayout(row)
        lay.addStretch(3)


class AgreementPanel(QtWidgets.QWidget):
    """Per pair of labellers: objects both scored, and the weighted Cohen's kappa of their scores."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        self.note = QtWidgets.QLabel("Quadratic-weighted Cohen's κ on the 0–5 scale: 1 = full agreement, "
                                     "0 = what chance gives.")
        self.note.setObjectName("Dim")
        self.note.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["labeller", "labeller", "objects in common", "weighted κ"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(self.note)
        lay.addWidget(self.table, 1)

    def show_pairs(self, pairs) -> None:
        self.table.setRowCount(0)
        for p in pairs:
            r = self.table.rowCount()
            self.table.insertRow(r)
            kappa = "—" if not math.isfinite(p.kappa) else f"{p.kappa:.3f}"
            for c, text in enumerate((p.user_a, p.user_b, f"{p.n_common:,}", kappa)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        if not pairs:
            self.table.insertRow(0)
            self.table.setItem(0, 0, QtWidgets.QTableWidgetItem("one labeller so far"))
        self.table.resizeColumnsToContents()


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
        self.colour.setMinimumWidth(150)
        self.colour.setMaximumWidth(240)
        self.colour.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.colour.setMinimumContentsLength(21)   # "model: predicted score" whole
        self.colour.setToolTip("colour the map by density, the model, a score or a catalogue column")
        self.mode = QtWidgets.QComboBox()
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


class MainWindow(QtWidgets.QMainWindow):
    """The explorer window. ``load(path)`` opens a store (raising ``GalexplorerError`` when it
    cannot be used); ``open_store_dialog`` and drops go through :meth:`try_load`, which shows a
    dialog instead."""

    #: a row of a table we sent was highlighted in another program (TOPCAT): the store index and
    #: the program's name; emitted from pyvo's receiving thread, delivered in the UI thread
    sampHighlighted = QtCore.Signal(int, str)

    def __init__(self, settings: Settings | None = None, user: str | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.user = user
        self.explorer: Explorer | None = None
        self.thumbs: ThumbnailCache | None = None
        self._cutouts = None
        self._help: ShortcutHelp | None = None
        self._samp = None
        self._samp_dir: tempfile.TemporaryDirectory | None = None
        self.refine_job = None        # gui.refine.RefineJob while Model ▸ Refine runs
        self.setObjectName("MainWindow")
        self.setWindowTitle("galexplorer")
        self.setWindowIcon(theme.icon("galexplorer"))
        self.setAcceptDrops(True)
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowNestedDocks)

        self.scatter_panel = ScatterPanel(self)
        self.scatter = self.scatter_panel.view
        self.inspector = Inspector(self)
        self.queue = QueuePanel(self._queue_caption, self._tooltip, self)
        self.gallery = GalleryPanel(self._gallery_caption, self._tooltip, self)
        from .candidates import CandidatesPanel

        self.candidates = CandidatesPanel(self)
        self.agreement = AgreementPanel(self)
        self.central = QtWidgets.QStackedWidget(self)
        self.welcome = WelcomePage(self.settings.recent_files(), self)
        self.welcome.openRequested.connect(self.try_load)
        self.sampHighlighted.connect(self._on_samp_highlight)
        self.central.addWidget(self.welcome)
        self.central.addWidget(self.scatter_panel)
        self.setCentralWidget(self.central)

        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self._dock("inspector", "Inspector", self.inspector, QtCore.Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("queue", "Queue", self.queue, QtCore.Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("gallery", "Gallery", self.gallery, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self._dock("candidates", "Candidates", self.candidates, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.docks["gallery"], self.docks["candidates"], QtCore.Qt.Orientation.Horizontal)
        self._dock("agreement", "Agreement", self.agreement, QtCore.Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["candidates"], self.docks["agreement"])
        self.docks["candidates"].raise_()
        self.docks["agreement"].visibilityChanged.connect(lambda on: on and self._on_agreement())
        self._default_state = None
        self._layout: QtCore.QByteArray | None = None   # the panels' layout while the start page shows

        self.act: dict[str, QtGui.QAction] = {}
        self._make_actions()
        self._make_menus()
        self._make_scatter_toolbar()
        self._make_status_bar()
        self._connect_widgets()
        app = QtWidgets.QApplication.instance()
        app.focusChanged.connect(self._on_focus)
        app.installEventFilter(self)
        self.resize(1600, 1000)
        self.resizeDocks([self.docks["queue"], self.docks["inspector"]], [270, 400], QtCore.Qt.Orientation.Horizontal)
        self.resizeDocks([self.docks["gallery"]], [300], QtCore.Qt.Orientation.Vertical)
        self.resizeDocks([self.docks["gallery"], self.docks["candidates"]], [700, 900],
                         QtCore.Qt.Orientation.Horizontal)
        self._default_state = self.saveState()
        self.settings.restore_window(self)
        self._set_loaded(False)

    # -- construction -------------------------------------------------------------------------
    def _dock(self, name: str, title: str, widget: QtWidgets.QWidget, area) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"{name}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    def _make_actions(self) -> None:
        """One ``QAction`` per row of :data:`.actions.SHORTCUTS` (the action table)."""
        for sc in SHORTCUTS:
            act = QtGui.QAction(sc.text, self)
            act.setObjectName(sc.action)
            if sc.keys:
                act.setShortcuts(key_sequences(sc))
                act.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
                act.setToolTip(f"{sc.description} ({' or '.join(sc.keys)})")
            else:
                act.setToolTip(sc.description)
            if sc.icon:
                act.setIcon(theme.icon(sc.icon))
            act.setCheckable(sc.checkable or sc.toggle)
            act.triggered.connect(lambda _=False, sc=sc: self.run_action(sc.action))
            self.addAction(act)
            self.act[sc.action] = act
        self.act["pan"].setChecked(True)
        self.tool_group = QtGui.QActionGroup(self)
        for sc in SHORTCUTS:
            if sc.checkable:
                self.tool_group.addAction(self.act[sc.action])

    def run_action(self, name: str) -> None:
        """Run one action of the table: its handler, on the controller or on the window."""
        sc = BY_ACTION[name]
        if not self.act[name].isEnabled():
            return
        if sc.on == "window":
            sc.handler(self)
        elif self.explorer is not None:
            sc.handler(self.explorer)

    def _update_enabled(self) -> None:
        """Enable each action as its ``needs`` says (a store, an object, a selection or object)."""
        ex = self.explorer
        have = {"always": True, "store": ex is not None,
                "object": ex is not None and ex.current is not None,
                "target": ex is not None and (ex.current is not None or len(ex.selection) > 0)}
        for sc in SHORTCUTS:
            self.act[sc.action].setEnabled(have[sc.needs])
        if ex is not None:
            self.act["previous"].setEnabled(ex.can_go_back)

    def _make_menus(self) -> None:
        """The menus, in table order (the docks' toggles and Open recent are added by hand)."""
        mb = self.menuBar()
        menus = {name: mb.addMenu(f"&{name}") for name in MENUS}
        for sc in SHORTCUTS:
            if not sc.menu:
                continue
            m = menus[sc.menu]
            if sc.separator and m.actions():
                m.addSeparator()
            m.addAction(self.act[sc.action])
            if sc.action == "open":
                self.recent_menu = m.addMenu("Open recent")
                self.recent_menu.aboutToShow.connect(self._fill_recent)
            if sc.action == "band":
                m.addSeparator()
                for dock in self.docks.values():
                    m.addAction(dock.toggleViewAction())

    def _make_scatter_toolbar(self) -> None:
        bar = self.scatter_panel.toolbar
        a = self.act
        for name in ("pan", "lasso", "rectangle"):
            bar.addAction(a[name])
        bar.addWidget(self.scatter_panel.mode)
        bar.addSeparator()
        bar.addWidget(QtWidgets.QLabel("Colour"))
        bar.addWidget(self.scatter_panel.colour)
        for w in (self.scatter_panel.lo, self.scatter_panel.hi, self.scatter_panel.log,
                  self.scatter_panel.diverging):
            bar.addWidget(w)
        bar.addSeparator()
        bar.addAction(a["reset_view"])
        bar.addAction(a["similar"])
        spacer = QtWidgets.QWidget()
        spacer.setObjectName("BarSpacer")
        spacer.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        bar.addWidget(self.scatter_panel.info)
        more = bar.findChild(QtWidgets.QToolButton, "qt_toolbar_ext_button")
        if more is not None:   # Qt's overflow button: shown only when the map is too narrow
            more.setIcon(theme.icon("more"))
            more.setToolTip("more tools: the tool bar's controls that do not fit")

    def _make_status_bar(self) -> None:
        sb = self.statusBar()
        self.counters: dict[str, QtWidgets.QLabel] = {}
        for name in ("labeller", "objects", "scored", "queue", "since_refit", "selected", "model"):
            lab = QtWidgets.QLabel("")
            lab.setObjectName(f"counter_{name}")
            lab.setProperty("counter", True)
            sb.addPermanentWidget(lab)
            self.counters[name] = lab
        self.remaining = RemainingIndicator(self)      # interesting objects left (gui/remaining.py)
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

    def _connect_widgets(self) -> None:
        sc = self.scatter
        sc.clicked.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        sc.regionSelected.connect(lambda idx, mode: self._ex(lambda ex: ex.select(idx, mode)))
        sc.hovered.connect(self._on_hover)
        sc.toolChanged.connect(self._on_tool_changed)
        sc.describe = lambda i: self.explorer.describe(i) if self.explorer else (str(i), [])
        panel = self.scatter_panel
        panel.colour.currentTextChanged.connect(self._on_colour_choice)
        for w in (panel.lo, panel.hi):
            w.editingFinished.connect(lambda: self._on_colour(panel.colour.currentText()))
        for w in (panel.log, panel.diverging):
            w.toggled.connect(lambda _: self._on_colour_choice(panel.colour.currentText()))
        self.scatter_panel.mode.currentIndexChanged.connect(
            lambda _: setattr(self.scatter, "default_mode", self.scatter_panel.mode.currentData()))
        ins = self.inspector
        ins.scored.connect(self.score)
        # the inspector's buttons are the table's actions
        for signal, name in ((ins.previous, "previous"), (ins.next, "next"), (ins.skip, "skip"),
                             (ins.note, "note"), (ins.similar, "similar"), (ins.viewer, "viewer"),
                             (ins.exclude, "exclude")):
            signal.connect(lambda name=name: self.run_action(name))
        ins.displayChanged.connect(self._on_display)
        self.queue.opened.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        self.queue.configChanged.connect(self._on_loop_config)
        self.queue.refitRequested.connect(self.refit_now)
        g = self.gallery
        g.opened.connect(lambda i: self._ex(lambda ex: ex.open(i, self.gallery.indices)))
        g.scoreAll.connect(lambda idx, s: self._ex(lambda ex: ex.score_many(idx, s)))
        g.excludeAll.connect(lambda idx: self._ex(lambda ex: ex.exclude(idx)))
        g.includeAll.connect(lambda idx: self._ex(lambda ex: ex.include(idx)))
        g.exportAll.connect(lambda idx: self.export_dialog(subset=idx))
        g.broadcast.connect(self.send_samp)
        g.orderChanged.connect(lambda by: self._ex(lambda ex: ex.order_gallery(by)))
        g.labelViewToggled.connect(self._gallery_label_view)
        self.candidates.opened.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        self.candidates.exportRequested.connect(self.export_dialog)
        self.candidates.labelViewChanged.connect(self._on_label_view)
        self.candidates.disputed.toggled.connect(lambda _: self._on_label_view())
        self.candidates.labelGalleryRequested.connect(self._label_view_in_gallery)

    # -- loading ------------------------------------------------------------------------------
    def load(self, path: str | Path) -> None:
        """Open a store in this window (closing the one open before).

        Raises:
            StoreError, LabelError: the store or its label journal cannot be used; the message
                says what to run to fix it.
        """
        store = open_store(path)
        try:
            session = LabellingSession(store, self.user, batch_size=self.settings.batch_size)
        except BaseException:
            store.close()
            raise
        self.unload()
        config = LoopConfig(scorer=self.settings.scorer if self.settings.scorer in SCORERS else DEFAULT_SCORER,
                            acquisition=self.settings.acquisition if self.settings.acquisition in
                            ACQUISITIONS else DEFAULT_ACQUISITION,
                            xi=self.settings.xi, batch_size=self.settings.batch_size)
        ex = Explorer(session, config, self)
        self.explorer = ex
        self._cutouts = store.open_cutouts() if store.cutouts_path is not None else None
        rows = store.cutouts_rows if self._cutouts is not None else None
        self.thumbs = ThumbnailCache(store.thumbnails, self._cutouts, cutouts_rows=rows)
        self.scatter.thumbnails = self.thumbs
        self.queue.model.thumbnails = self.thumbs
        self.gallery.model.thumbnails = self.thumbs
        self.candidates.model.thumbnails = self.thumbs
        self.inspector.set_sources(self._cutouts, self.thumbs, rows)
        self.inspector.set_stretch(self.settings.stretch_for(store.path))
        self.queue.set_config(config.scorer, config.acquisition, config.xi, config.batch_size)
        self.scatter.set_points(ex.xy)
        if self.act["mosaic"].isChecked() and not self.thumbs.available:   # a store with no images
            self.act["mosaic"].setChecked(False)
            self.scatter.set_mosaic(False)
        ex.currentChanged.connect(self._on_current)
        ex.labelsChanged.connect(self._on_labels)
        ex.queueChanged.connect(self._on_queue)
        ex.modelChanged.connect(self._on_model)
        self.remaining.reset()
        ex.modelChanged.connect(lambda: self.remaining.update_state(ex.state))
        ex.refitStateChanged.connect(self._on_refit_state)
        ex.selectionChanged.connect(self._on_selection)
        ex.galleryChanged.connect(self._on_gallery)
        ex.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        ex.failed.connect(self.show_error)
        ex.progressed.connect(self._on_progress)
        self._refresh_colour_options()
        self.candidates.set_users(ex.users())
        self._on_labels()
        self._on_queue()
        self._on_selection()
        self._on_gallery()
        self.central.setCurrentWidget(self.scatter_panel)
        self._set_loaded(True)
        name = Path(path).name
        self.setWindowTitle(f"{name} — galexplorer ({ex.n:,} objects, labels by {ex.user})")
        self.settings.add_recent(path)
        ex.start()
        self._on_current(ex.current)

    def try_load(self, path: str | Path) -> bool:
        """:meth:`load`, showing a dialog (what is wrong, what fixes it) instead of raising."""
        try:
            self.load(path)
        except GalexplorerError as exc:
            self.show_error(str(exc), title="Cannot open this store")
            if not Path(path).exists():
                self.settings.remove_recent(path)
            return False
        return True

    def unload(self) -> None:
        if self.explorer is not None:
            self.candidates.clear()   # its id and catalogue columns read from the store closed next
            self.explorer.shutdown()
            self.explorer.deleteLater()
            self.explorer = None
        if self._cutouts is not None:
            self._cutouts.close()
            self._cutouts = None
        if self._samp is not None:      # its tables' rows name the objects of the store closed now
            self._samp.forget_tables()
        self.remaining.reset()
        self._set_loaded(False)

    def _set_loaded(self, on: bool) -> None:
        """With no store open the window is its start page: the panels are hidden (no live-looking
        score buttons) and every action that needs a store is disabled."""
        self._update_enabled()
        if not on and self._layout is None:
            self._layout = self.saveState()
        elif on and self._layout is not None:
            self.restoreState(self._layout)
            self._layout = None
        for d in self.docks.values():
            d.widget().setEnabled(on)
            d.toggleViewAction().setEnabled(on)
            if not on:
                d.hide()
        if not on:
            self.central.setCurrentWidget(self.welcome)

    # -- actions --------------------------------------------------------------------------------
    def _ex(self, call) -> None:
        """``call(explorer)`` when a store is open (widgets reach the controller this way)."""
        if self.explorer is not None:
            call(self.explorer)

    def score(self, s: int) -> None:
        self.run_action(f"score_{s}")

    def set_tool(self, tool: str) -> None:
        self.scatter.set_tool(tool)

    def _on_tool_changed(self, tool: str) -> None:
        name = {Tool.PAN: "pan", Tool.LASSO: "lasso", Tool.RECT: "rectangle"}[tool]
        self.act[name].setChecked(True)
        hint = {Tool.PAN: "", Tool.LASSO: "drag to draw a lasso · Shift adds · Ctrl removes · Esc stops",
                Tool.RECT: "drag a rectangle · Shift adds · Ctrl removes · Esc stops"}[tool]
        self.scatter_panel.info.setText(hint)

    def escape(self) -> None:
        """Esc: stop drawing; with the pan tool, clear the selection."""
        if self.scatter.tool != Tool.PAN:
            self.scatter.set_tool(Tool.PAN)
        self._ex(lambda ex: ex.clear_selection())

    def switch_user_dialog(self) -> None:
        """File ▸ Labeller…: label as someone else (the store reopens as them, where they stopped)."""
        ex = self.explorer
        if ex is None:
            return
        name, ok = QtWidgets.QInputDialog.getText(self, "Labeller", "Label as (your name):",
                                                  QtWidgets.QLineEdit.EchoMode.Normal, ex.user)
        if ok and name.strip() and name.strip() != ex.user:
            self.switch_user(name.strip())

    def switch_user(self, name: str) -> None:
        path = self.explorer.store.path
        self.user = name
        self.load(path)
        self.statusBar().showMessage(f"labelling as {name}", 6000)

    def _on_label_view(self) -> None:
        """My labels (the table's toggle): labelled objects only, filtered, with counts."""
        ex = self.explorer
        f = self.candidates.label_filter()
        if ex is None or f is None:
            self.candidates.set_label_view(None, None)
            return
        mask, counts = ex.label_view(**f)
        self.candidates.set_label_view(mask, counts)
        if ex.gallery_kind == "labelled":      # the gallery's My labels follows the table's filter
            ex.show_labelled(mask, counts=counts)

    def _label_view_in_gallery(self) -> None:
        ex = self.explorer
        f = self.candidates.label_filter()
        if ex is not None and f is not None:
            mask, counts = ex.label_view(**f)
            ex.show_labelled(mask, counts=counts)
            self.docks["gallery"].raise_()

    def _gallery_label_view(self, on: bool) -> None:
        """The gallery's My labels toggle: the objects this user labelled (the table's filter,
        with the labeller it names, when its toggle is on), or back to the selection."""
        ex = self.explorer
        if ex is None:
            self.gallery.mine.setChecked(False)
            return
        if not on:
            ex.show_selection()
            return
        f = self.candidates.label_filter()
        if f is None:
            mask, counts = ex.label_view(user=ex.user)
            ex.show_labelled(mask, f"labelled by {ex.user}", counts)
        else:
            mask, counts = ex.label_view(**f)
            ex.show_labelled(mask, counts=counts)

    def _on_display(self) -> None:
        """The inspector's stretch changed: remembered for this store."""
        if self.explorer is not None:
            self.settings.set_stretch_for(self.explorer.store.path, self.inspector.stretch.currentText())
        else:
            self.settings.stretch = self.inspector.stretch.currentText()

    def _on_agreement(self) -> None:
        if self.explorer is not None:
            self.agreement.show_pairs(self.explorer.agreement())

    def write_note(self) -> None:
        ex = self.explorer
        if ex is None or ex.current is None:
            return
        old = ex.note_of(ex.current) or ""
        text, ok = QtWidgets.QInputDialog.getMultiLineText(self, "Note", f"Note about {ex.object_id(ex.current)}:",
                                                           old)
        if ok:
            ex.note(text)

    def find_similar(self) -> None:
        self._ex(lambda ex: ex.find_similar(self.settings.similar_k))
        self.docks["gallery"].raise_()

    def centre_on_current(self) -> None:
        if self.explorer is not None and self.explorer.current is not None:
            self.scatter.zoom_to(self.explorer.current)

    def toggle_mosaic(self) -> None:
        """View ▸ Image mosaic (M): thumbnails tiling the map, or back to the points."""
        on = self.act["mosaic"].isChecked()
        if on and (self.thumbs is None or not self.thumbs.available):
            self.act["mosaic"].setChecked(False)
            self.statusBar().showMessage("no image mosaic: this store has no thumbnails and no linked cutouts", 8000)
            return
        self.scatter.set_mosaic(on)

    def save_mosaic_dialog(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        if not self.scatter.mosaic.enabled:
            self.show_error("the mosaic is off: turn it on with View ▸ Image mosaic (M), then save it",
                            title="Save mosaic")
            return
        start = str(Path(ex.store.path).with_suffix("").as_posix()) + "-mosaic.png"
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save mosaic as PNG", start, "PNG (*.png)")
        if path:
            self.save_mosaic(path)

    def save_mosaic(self, path: str | Path) -> bool:
        """Write the mosaic in view to ``path`` (PNG); a dialog says why when it cannot."""
        layer = self.scatter.mosaic
        try:
            n, w, h = layer.save_png(str(path))
        except (ValueError, OSError) as exc:
            self.show_error(str(exc), title="Save mosaic")
            return False
        self.statusBar().showMessage(f"saved the mosaic of {n} objects ({w}×{h} px) to {path}", 8000)
        return True

    def refit_now(self) -> None:
        self.run_action("refit")

    def refine_representation(self, output: str | Path | None = None) -> None:
        """Model ▸ Refine the representation: ``galexplorer refine`` in its own process; when it
        ends, the new store opens with the selection and the inspected object kept."""
        from .refine import RefineJob, refined_path

        ex = self.explorer
        if ex is None:
            return
        if self.refine_job is not None and self.refine_job.running:
            self.statusBar().showMessage("a refine is already running", 5000)
            return
        store = Path(ex.session.store.path)
        out = Path(output) if output else refined_path(store)
        job = RefineJob(store, out, user=None, parent=self)
        self.refine_job = job
        job.progressed.connect(lambda text: self.statusBar().showMessage(text, 30000))
        job.failed.connect(lambda text: self.show_error(f"the refine failed: {text}", title="Refine"))
        job.finished.connect(self._on_refined)
        job.start()

    def _on_refined(self, path: str) -> None:
        ex = self.explorer
        keep_sel = ex.selection.copy() if ex is not None else None
        keep_cur = ex.current if ex is not None else None
        n_before = ex.n if ex is not None else None
        if not self.try_load(path):
            return
        ex = self.explorer
        if n_before == ex.n:        # the same objects in the same order (refine re-embeds every cutout)
            if keep_sel is not None and len(keep_sel):
                ex.select(keep_sel)
            if keep_cur is not None:
                ex.open(int(keep_cur))
        self.statusBar().showMessage(f"opened the refined store {Path(path).name}: the same objects and labels "
                                     "(labels given during the refine are in the previous store's journal)", 15000)

    def open_in_viewer(self) -> None:
        ex = self.explorer
        if ex is None or ex.current is None:
            return
        ra, dec = ex.position(ex.current)
        if not (math.isfinite(ra) and math.isfinite(dec)):
            self.statusBar().showMessage("this object has no sky position", 5000)
            return
        try:
            url = viewer_url(self.settings.viewer_url, ra, dec, ex.object_id(ex.current))
        except ValueError as exc:
            self.show_error(str(exc))
            return
        QtGui.QDesktopServices.openUrl(QtCore.QUrl(url))
        self.statusBar().showMessage(f"opened {url}", 6000)

    def edit_viewer_url(self) -> None:
        text, ok = QtWidgets.QInputDialog.getText(
            self, "Sky viewer", "URL template ({ra}, {dec} in degrees, {id}):",
            QtWidgets.QLineEdit.EchoMode.Normal, self.settings.viewer_url)
        if ok and text.strip():
            try:
                viewer_url(text.strip(), 0.0, 0.0, "x")
            except ValueError as exc:
                self.show_error(str(exc))
                return
            self.settings.viewer_url = text.strip()

    def send_samp(self, indices: np.ndarray) -> None:
        ex = self.explorer
        if ex is None or len(indices) == 0:
            return
        from .samp import hub_running

        if not hub_running():   # one line in the status bar: a dialog would stop the labelling
            self.statusBar().showMessage("not sent over SAMP: no SAMP hub is running; start TOPCAT, DS9 or "
                                         "Aladin (they start one) and try again", 10000)
            return
        ex.send_samp(self._samp_sender(), np.asarray(indices, np.int64), Path(self._samp_dir.name))

    def _samp_sender(self):
        if self._samp is None:
            from .samp import SampSender

            self._samp = SampSender()
            self._samp.on_highlight(self.sampHighlighted.emit)
            self._samp_dir = tempfile.TemporaryDirectory(prefix="galexplorer-samp-")
        return self._samp

    def send_cutout_samp(self) -> None:
        """The inspected object's cutout to DS9 and Aladin (``image.load.fits``, with its WCS),
        and its ra/dec (``coord.pointAt.sky``): the band the inspector shows, the first one
        for the colour composite."""
        ex = self.explorer
        if ex is None or ex.current is None:
            return
        from .samp import hub_running

        if self._cutouts is None:
            self.statusBar().showMessage("not sent over SAMP: this store has no cutouts file (only thumbnails)",
                                         10000)
            return
        if not hub_running():
            self.statusBar().showMessage("not sent over SAMP: no SAMP hub is running; start TOPCAT, DS9 or "
                                         "Aladin (they start one) and try again", 10000)
            return
        i = int(ex.current)
        rows = ex.store.cutouts_rows
        row = int(rows[i]) if rows is not None else i
        band = max(self.inspector.band.currentIndex() - 1, 0)     # 0 in the box: the composite
        ex.send_cutout_samp(self._samp_sender(), i, self._cutouts, row, Path(self._samp_dir.name), band)

    def _on_samp_highlight(self, i: int, client: str) -> None:
        """A row highlighted in TOPCAT (or another SAMP client): that object in the inspector."""
        ex = self.explorer
        if ex is None or not 0 <= i < ex.n:
            return
        ex.open(i)
        self.statusBar().showMessage(f"{ex.object_id(i)}: highlighted in {client} over SAMP", 5000)

    def export_dialog(self, subset: np.ndarray | None = None) -> None:
        ex = self.explorer
        if ex is None:
            return
        start = str(Path(ex.store.path).with_suffix("").as_posix()) + ("-selection.csv" if subset is not None
                                                                        else "-ranked.csv")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export ranked list", start,
                                                        "CSV (*.csv);;VOTable (*.xml *.vot)")
        if path:
            ex.export(path, None, subset)

    def open_store_dialog(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open store", "",
                                                        "galexplorer stores (*.h5 *.hdf5);;All files (*)")
        if path:
            self.try_load(path)

    def show_help(self) -> None:
        if self._help is None:
            self._help = ShortcutHelp(self)
            self._help.finished.connect(lambda _: self.activateWindow())   # keys go back to the window
        self._help.show()
        self._help.raise_()

    def show_error(self, message: str, title: str = "galexplorer") -> None:
        log.warning("%s", message)
        if QtWidgets.QApplication.platformName() == "offscreen":
            # headless (tests, --screenshot): nobody could close a modal dialog
            self.statusBar().showMessage(message, 10000)
            self.last_error = message
            return
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, message,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self)
        box.exec()

    def reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state)
        for d in self.docks.values():
            d.show()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.try_load(p))
        if not self.recent_menu.actions():
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _on_loop_config(self) -> None:
        c = self.queue.config()
        self.settings.scorer, self.settings.acquisition = c["scorer"], c["acquisition"]
        self.settings.xi, self.settings.batch_size = c["xi"], c["batch_size"]
        self._ex(lambda ex: ex.set_config(c["scorer"], c["acquisition"], c["xi"], c["batch_size"]))
        self._update_counters()

    # -- explorer signals -----------------------------------------------------------------------
    def _on_current(self, i) -> None:
        ex = self.explorer
        if ex is None:
            return
        self.scatter.set_current(i)
        if i is None:
            self.inspector.show_object(None)
            return
        ra, dec = ex.position(i)
        self.inspector.show_object(i, ex.object_id(i), ra, dec, ex.details(i), ex.my_label(i),
                                   bool(ex.excluded[i]), ex.note_of(i))
        self._update_enabled()

    def _on_labels(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        self.scatter.set_labelled(*ex.labelled())
        self.scatter.set_excluded(np.flatnonzero(ex.excluded))
        self.gallery.model.refresh()
        if ex.state is None:
            # opening: the map paints first, the table (~2 s at 10^7 objects) fills after
            QtCore.QTimer.singleShot(TABLE_AFTER_PAINT_MS, self._refresh_table)
        else:
            self._refresh_table()
        self.scatter.refresh_card()
        if self.scatter_panel.colour.currentText() in (LABEL, DISPUTED) or \
                self.scatter_panel.colour.currentText().startswith("labels by "):
            self._on_colour(self.scatter_panel.colour.currentText())
        if self.docks["agreement"].isVisible():
            self._on_agreement()
        if self.candidates.label_filter() is not None:
            self._on_label_view()
        elif ex.gallery_kind == "labelled":
            self._gallery_label_view(True)
        self._update_counters()

    def _refresh_table(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        cols, order = ex.table_columns()
        self.candidates.model.set_headers(ex.column_headers())   # first: the columns are sized to them
        self.candidates.update_table(cols, order, self._range_columns(cols))

    def _on_queue(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        q = ex.queue(50)
        self.queue.set_queue(q)
        self.scatter.set_queue(np.asarray(q[:ex.batch_size], np.int64))
        self._update_counters()

    def _on_model(self) -> None:
        ex = self.explorer
        if ex is None or ex.state is None:
            return
        cols, order = ex.table_columns()
        self.candidates.model.set_headers(ex.column_headers())   # first: the columns are sized to them
        self.candidates.set_table(cols, order, self._range_columns(cols))
        self._refresh_colour_options()
        self.queue.model.refresh()
        self.gallery.model.refresh()
        self._on_current(ex.current)

    @staticmethod
    def _range_columns(cols) -> list[str]:
        return [c for c in ("score_mean", "label", "acquisition", "anomaly", "score_std") if c in cols]

    def _on_refit_state(self, busy: bool, text: str) -> None:
        self.queue.set_busy(busy, text)
        self.refit_bar.setVisible(busy)
        if busy:
            self.refit_bar.setRange(0, 0)
        self._update_counters()

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        if total > 0:
            self.refit_bar.setRange(0, total)
            self.refit_bar.setValue(min(done, total))
            self.queue.set_progress(done, total)

    def _on_selection(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        self.scatter.set_selection(ex.selection)
        self._update_enabled()
        self._update_counters()
        if self._samp is not None and self._samp.has_tables and len(ex.selection):
            ex.select_samp(self._samp, ex.selection)      # the same rows selected in TOPCAT

    def _on_gallery(self) -> None:
        ex = self.explorer
        if ex is None:
            return
        title = ex.gallery_title or "Select objects in the map (L, R) or press F for similar ones"
        self.gallery.show_objects(ex.gallery_indices, title, ex.gallery_values, ex.gallery_kind, ex.gallery_order)

    def _on_hover(self, i: int) -> None:
        if i >= 0 and self.explorer is not None:
            self.statusBar().showMessage(f"{self.explorer.object_id(i)} — click to inspect", 3000)

    def _refresh_colour_options(self) -> None:
        ex = self.explorer
        box = self.scatter_panel.colour
        current = box.currentText()
        opts = ex.colour_options() if ex is not None else ["density"]
        box.blockSignals(True)
        box.clear()
        box.addItems(opts)
        box.setCurrentText(current if current in opts else "density")
        box.blockSignals(False)
        if ex is not None and (current not in opts or current.startswith("model") or not current):
            self._on_colour(box.currentText())

    def _on_colour_choice(self, name: str) -> None:
        """Another column (or scale, or map): the limits go back to the percentiles."""
        for w in (self.scatter_panel.lo, self.scatter_panel.hi):
            w.blockSignals(True)
            w.clear()
            w.blockSignals(False)
        self._on_colour(name)

    def _on_colour(self, name: str) -> None:
        if self.explorer is None or not name:
            return
        p = self.scatter_panel
        limits = tuple(float(w.text().replace(",", ".")) if w.hasAcceptableInput() and w.text() else None
                       for w in (p.lo, p.hi))
        spec = self.explorer.colour_spec(name, "log" if p.log.isChecked() else "linear", p.diverging.isChecked(),
                                         limits)
        continuous = spec.kind == "continuous"
        for w, v in ((p.lo, spec.auto_range[0]), (p.hi, spec.auto_range[1])):
            w.setEnabled(continuous)
            w.setPlaceholderText(f"{v:.3g}" if continuous else "")
        p.log.setEnabled(continuous)
        p.diverging.setEnabled(continuous)
        self.scatter.set_colour(spec)
        empty = np.empty(0, np.int64)
        self.scatter.set_disputes(*(self.explorer.disputes() if name == DISPUTED else (empty, empty)))

    def _update_counters(self) -> None:
        ex = self.explorer
        if ex is None:
            for lab in self.counters.values():
                lab.setText("")
            return
        c = ex.counters()
        self.counters["labeller"].setText(f"labeller: {ex.user}")
        self.counters["objects"].setText(f"{c['objects']:,} objects")
        self.counters["scored"].setText(f"{c['scored']:,} scored")
        self.counters["queue"].setText(f"{c['queue']} in batch")
        self.counters["since_refit"].setText(f"{c['since_refit']}/{c['batch']} to refit")
        n_sel = len(ex.selection)
        self.counters["selected"].setText(f"{n_sel:,} selected" if n_sel else "")
        self.counters["selected"].setVisible(bool(n_sel))
        self.counters["model"].setText(str(c["model"]))
        state = ex.state
        reason = getattr(state, "representation_reason", "") if state is not None else ""
        self.counters["model"].setToolTip(f"learns on {reason}" if reason else "")

    # -- captions -------------------------------------------------------------------------------
    def _queue_caption(self, i: int, v) -> str:
        ex = self.explorer
        if ex is None:
            return str(i)
        oid = elide_middle(ex.object_id(i))
        s = ex.state
        if s is None or s.scorer.startswith("prior"):
            return f"{oid}\nfirst batch"
        return f"{oid}\nmodel {format_prediction(float(s.mean[i]), float(s.std[i]))}"

    def _gallery_caption(self, i: int, v) -> str:
        ex = self.explorer
        if ex is None:
            return str(i)
        oid = elide_middle(ex.object_id(i))
        lab = ex.labels[i]
        bits = []
        if v is not None and np.isfinite(v):
            bits.append(f"{v:.3f}")
        if np.isfinite(lab):
            bits.append(f"★{lab:g}")
        if ex.excluded[i]:
            bits.append("✕")
        return oid + ("\n" + " · ".join(bits) if bits else "")

    def _tooltip(self, i: int, v) -> str:
        ex = self.explorer
        if ex is None:
            return ""
        oid, lines = ex.describe(i)
        return oid + "\n" + "\n".join(f"{k}: {val}" for k, val in lines)

    # -- keyboard focus ---------------------------------------------------------------------------
    def _is_text_field(self, w) -> bool:
        """A widget of this window that takes typed keys (digits would not reach the labelling keys).

        The application's event filter also sees key events of objects that are not widgets (a
        QWindow, which passes the key on to its focus widget): those are never text fields."""
        if not isinstance(w, QtWidgets.QWidget) or w.window() is not self:
            return False
        if isinstance(w, QtWidgets.QComboBox):
            return w.isEditable()
        return isinstance(w, (QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox, QtWidgets.QTextEdit,
                              QtWidgets.QPlainTextEdit))

    def _on_focus(self, old, new) -> None:
        self.typing.setVisible(self._is_text_field(new))

    def return_keys(self) -> None:
        """Esc in a text field: the keys go back to labelling (0–5, arrows, shortcuts)."""
        w = QtWidgets.QApplication.focusWidget()
        if w is not None:
            w.clearFocus()
        self.scatter.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        self.typing.hide()
        self.statusBar().showMessage("keys back to labelling", 3000)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress) \
                and ev.key() == QtCore.Qt.Key.Key_Escape and self._is_text_field(obj) \
                and obj is QtWidgets.QApplication.focusWidget():
            self.return_keys()
            return True
        return super().eventFilter(obj, ev)

    # -- Qt events ------------------------------------------------------------------------------
    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:
        urls = ev.mimeData().urls()
        if urls and urls[0].isLocalFile() and urls[0].toLocalFile().lower().endswith(H5_SUFFIXES):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:
        urls = ev.mimeData().urls()
        if urls and urls[0].isLocalFile():
            ev.acceptProposedAction()
            QtCore.QTimer.singleShot(0, lambda p=urls[0].toLocalFile(): self.try_load(p))

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        if self.refine_job is not None:
            self.refine_job.cancel()      # no refine left running with nobody to open its store
        app = QtWidgets.QApplication.instance()
        app.removeEventFilter(self)
        try:
            app.focusChanged.disconnect(self._on_focus)
        except (RuntimeError, TypeError):
            pass
        if self._layout is not None:   # the start page: save the user's layout, not the hidden panels
            self.restoreState(self._layout)
        self.settings.save_window(self)
        self.settings.sync()
        self.unload()
        if self._samp is not None:
            self._samp.close()
        if self._samp_dir is not None:
            self._samp_dir.cleanup()
        if self._help is not None:
            self._help.close()
        if self.inspector.large is not None:
            self.inspector.large.close()
        super().closeEvent(ev)



