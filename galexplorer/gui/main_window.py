"""The main window: the scatter in the centre, docked panels around it, menus, shortcuts and
the status bar. It opens and closes stores and holds the widgets; the rest is in its parts:

* :mod:`.window_actions` — the action table's ``QAction`` objects, menus and enable check;
* :mod:`.window_views` — the widgets' signals to the controller, the controller's to the widgets;
* :mod:`.window_status` — the status bar's counters and progress;
* :mod:`.window_dialogs` — the dialogs (open, labeller, export, note, save the mosaic);
* :mod:`.window_samp` — what goes out over SAMP, and rows highlighted in TOPCAT;
* :mod:`.window_tools` — the sky viewer and Model ▸ Refine;
* :mod:`.window_keys` — Esc from a text field gives the keys back to labelling.

It holds no logic of its own beyond that wiring."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from ..active.loop import LoopConfig
from ..active.registry import ACQUISITIONS, DEFAULT_ACQUISITION, DEFAULT_SCORER, SCORERS
from ..active.session import LabellingSession, open_store
from ..data.hdf5 import H5_SUFFIXES
from ..errors import GalexplorerError
from . import theme
from .agreement_panel import AgreementPanel
from .controller import Explorer
from .gallery import GalleryPanel
from .inspector import Inspector
from .keymap import ShortcutHelp
from .queue import QueuePanel
from .scatter import Tool
from .scatter_panel import ScatterPanel
from .settings import Settings
from .start_page import WelcomePage
from .thumbs import ThumbnailCache
from .why_panel import WhyPanel
from .window_actions import WindowActions
from .window_dialogs import WindowDialogs
from .window_keys import TextFieldKeys
from .window_samp import SampLink
from .window_status import WindowStatus
from .window_tools import Refinement, SkyViewer
from .window_views import ExplorerViews

log = logging.getLogger(__name__)
#: the bottom row's height in the default layout: the candidates table's 10 rows (24 px each),
#: its two filter lines, header, scroll bar and tabs; the gallery's two rows of thumbnails
BOTTOM_ROW_PX = 420


class MainWindow(QtWidgets.QMainWindow):
    """The explorer window. ``load(path)`` opens a store (raising ``GalexplorerError`` when it
    cannot be used); File ▸ Open and drops go through :meth:`try_load`, which shows a dialog
    instead.

    Attributes:
        act: the table's actions by name (``act[name].trigger()`` runs one as a key press does).
        dialogs, samp, sky, refinement, views, status: the window's parts (see the module's text).
    """

    #: a row of a table we sent was highlighted in another program (TOPCAT): the store index and
    #: the program's name; emitted from pyvo's receiving thread, delivered in the UI thread
    sampHighlighted = QtCore.Signal(int, str)

    def __init__(self, settings: Settings | None = None, user: str | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.user = user
        self.explorer: Explorer | None = None
        self.thumbs: ThumbnailCache | None = None
        self.cutouts = None           # the store's cutouts file, when it links one
        self._help: ShortcutHelp | None = None
        self.setObjectName("MainWindow")
        self.setWindowTitle("galexplorer")
        self.setWindowIcon(theme.icon("galexplorer"))
        self.setAcceptDrops(True)
        self.setDockOptions(QtWidgets.QMainWindow.DockOption.AnimatedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowTabbedDocks
                            | QtWidgets.QMainWindow.DockOption.AllowNestedDocks)
        self.views = ExplorerViews(self)
        self.dialogs = WindowDialogs(self)
        self.samp = SampLink(self)
        self.refinement = Refinement(self)
        self.sky = SkyViewer(self)
        self.sampHighlighted.connect(self.samp.on_highlight)
        self._make_panels()
        self._make_docks()
        self.window_actions = WindowActions(self)
        self.act = self.window_actions.act
        self.act["random_start"].setChecked(self.settings.cold_start == "random-share")
        self.act["widen_view"].setChecked(self.settings.widen_after is not None)
        self.window_actions.make_menus(self.menuBar(), self.docks, self._fill_recent)
        self.scatter_panel.add_tools(self.act)
        self.status = WindowStatus(self)
        self.counters, self.remaining, self.typing = self.status.counters, self.status.remaining, self.status.typing
        self.views.connect_widgets()
        self.keys = TextFieldKeys(self)
        self.keys.install()
        self._size_docks()
        self.settings.restore_window(self)
        self._set_loaded(False)

    # -- construction -------------------------------------------------------------------------
    def _make_panels(self) -> None:
        from .candidates import CandidatesPanel

        self.scatter_panel = ScatterPanel(self)
        self.scatter = self.scatter_panel.view
        self.inspector = Inspector(self)
        self.queue = QueuePanel(self.views.queue_caption, self.views.tooltip, self)
        self.gallery = GalleryPanel(self.views.gallery_caption, self.views.tooltip, self)
        self.candidates = CandidatesPanel(self)
        self.agreement = AgreementPanel(self)
        self.why = WhyPanel(self)
        self.central = QtWidgets.QStackedWidget(self)
        self.welcome = WelcomePage(self.settings.recent_files(), self)
        self.welcome.openRequested.connect(self.try_load)
        self.central.addWidget(self.welcome)
        self.central.addWidget(self.scatter_panel)
        self.setCentralWidget(self.central)

    def _make_docks(self) -> None:
        area = QtCore.Qt.DockWidgetArea
        self.docks: dict[str, QtWidgets.QDockWidget] = {}
        self._dock("inspector", "Inspector", self.inspector, area.RightDockWidgetArea)
        self._dock("queue", "Queue", self.queue, area.LeftDockWidgetArea)
        self._dock("gallery", "Gallery", self.gallery, area.BottomDockWidgetArea)
        self._dock("candidates", "Candidates", self.candidates, area.BottomDockWidgetArea)
        self.splitDockWidget(self.docks["gallery"], self.docks["candidates"], QtCore.Qt.Orientation.Horizontal)
        self._dock("agreement", "Agreement", self.agreement, area.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["candidates"], self.docks["agreement"])
        self._dock("why", "Why here", self.why, area.BottomDockWidgetArea)
        self.tabifyDockWidget(self.docks["candidates"], self.docks["why"])
        self.docks["candidates"].raise_()
        self.docks["agreement"].visibilityChanged.connect(lambda on: on and self.views.on_agreement())
        self._default_state = None
        self._layout: QtCore.QByteArray | None = None   # the panels' layout while the start page shows

    def _dock(self, name: str, title: str, widget: QtWidgets.QWidget, area) -> None:
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(f"{name}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QtWidgets.QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        self.docks[name] = dock

    def _size_docks(self) -> None:
        """The default layout at 1600×1000 (View ▸ Reset layout goes back to it): the bottom row
        is tall enough for 10 rows of the candidates table and two rows of the gallery (#23);
        the map keeps the full width its tool bar needs and about 920×470 pixels."""
        self.resize(1600, 1000)
        horizontal, vertical = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        self.resizeDocks([self.docks["queue"], self.docks["inspector"]], [270, 400], horizontal)
        self.resizeDocks([self.docks["gallery"]], [BOTTOM_ROW_PX], vertical)
        self.resizeDocks([self.docks["gallery"], self.docks["candidates"]], [700, 900], horizontal)
        self._default_state = self.saveState()

    def run_action(self, name: str) -> None:
        """Run one action of the table (:mod:`.actions`) when its enable check allows."""
        self.window_actions.run(name)

    def update_enabled(self) -> None:
        """Enable each action as the table's ``needs`` says."""
        self.window_actions.update_enabled()

    def _fill_recent(self, menu: QtWidgets.QMenu) -> None:
        menu.clear()
        for path in self.settings.recent_files():
            menu.addAction(path, lambda p=path: self.try_load(p))
        if not menu.actions():
            menu.addAction("(none)").setEnabled(False)

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
        s = self.settings
        config = LoopConfig(scorer=s.scorer if s.scorer in SCORERS else DEFAULT_SCORER,
                            acquisition=s.acquisition if s.acquisition in ACQUISITIONS else DEFAULT_ACQUISITION,
                            xi=s.xi, batch_size=s.batch_size, cold_start=s.cold_start, widen_after=s.widen_after)
        ex = Explorer(session, config, self)
        self.explorer = ex
        self._show_sources(store)
        self.queue.set_config(config.scorer, config.acquisition, config.xi, config.batch_size)
        self.scatter.set_points(ex.xy)
        if self.act["mosaic"].isChecked() and not self.thumbs.available:   # a store with no images
            self.act["mosaic"].setChecked(False)
            self.scatter.set_mosaic(False)
        self.views.bind(ex)
        self.central.setCurrentWidget(self.scatter_panel)
        self._set_loaded(True)
        self.setWindowTitle(f"{Path(path).name} — galexplorer ({ex.n:,} objects, labels by {ex.user})")
        self.settings.add_recent(path)
        ex.start()
        self.views.on_current(ex.current)

    def _show_sources(self, store) -> None:
        """The store's images (thumbnails, and the cutouts file when it links one) in every panel."""
        self.cutouts = store.open_cutouts() if store.cutouts_path is not None else None
        rows = store.cutouts_rows if self.cutouts is not None else None
        self.thumbs = ThumbnailCache(store.thumbnails, self.cutouts, cutouts_rows=rows)
        self.scatter.thumbnails = self.thumbs
        for panel in (self.queue, self.gallery, self.candidates):
            panel.model.thumbnails = self.thumbs
        self.inspector.set_sources(self.cutouts, self.thumbs, rows)
        self.inspector.set_stretch(self.settings.stretch_for(store.path))

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
        if self.cutouts is not None:
            self.cutouts.close()
            self.cutouts = None
        self.samp.forget_tables()      # its tables' rows name the objects of the store closed now
        self.remaining.reset()
        self._set_loaded(False)

    def _set_loaded(self, on: bool) -> None:
        """With no store open the window is its start page: the panels are hidden (no live-looking
        score buttons) and every action that needs a store is disabled."""
        self.update_enabled()
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

    def switch_user(self, name: str) -> None:
        """Label as ``name``: the store reopens as them, where they stopped."""
        path = self.explorer.store.path
        self.user = name
        self.load(path)
        self.statusBar().showMessage(f"labelling as {name}", 6000)

    # -- what the table's window actions do to the view -----------------------------------------------
    def score(self, s: int) -> None:
        self.run_action(f"score_{s}")

    def set_tool(self, tool: str) -> None:
        self.scatter.set_tool(tool)

    def on_tool_changed(self, tool: str) -> None:
        name = {Tool.PAN: "pan", Tool.LASSO: "lasso", Tool.RECT: "rectangle"}[tool]
        self.act[name].setChecked(True)
        hint = {Tool.PAN: "", Tool.LASSO: "drag to draw a lasso · Shift adds · Ctrl removes · Esc stops",
                Tool.RECT: "drag a rectangle · Shift adds · Ctrl removes · Esc stops"}[tool]
        self.scatter_panel.info.setText(hint)

    def escape(self) -> None:
        """Esc: stop drawing; with the pan tool, clear the selection."""
        if self.scatter.tool != Tool.PAN:
            self.scatter.set_tool(Tool.PAN)
        if self.explorer is not None:
            self.explorer.clear_selection()

    def find_similar(self) -> None:
        if self.explorer is not None:
            self.explorer.find_similar(self.settings.similar_k)
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

    def toggle_cold_start(self) -> None:
        """Model ▸ Random picks until the first find: the cold start of this and later sessions."""
        mode = "random-share" if self.act["random_start"].isChecked() else "model"
        self.settings.cold_start = mode
        ex = self.explorer
        if ex is not None:
            ex.set_config(cold_start=mode)

    def toggle_widen_view(self) -> None:
        """Model ▸ Widen the view after the first find: ``LoopConfig.widen_after`` 1 (or None) for
        this and later sessions."""
        widen = 1 if self.act["widen_view"].isChecked() else None
        self.settings.widen_after = widen
        ex = self.explorer
        if ex is not None:
            ex.set_config(widen_after=widen)

    def reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state)
        for d in self.docks.values():
            d.show()

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
        self.refinement.cancel()      # no refine left running with nobody to open its store
        self.keys.remove()
        if self._layout is not None:   # the start page: save the user's layout, not the hidden panels
            self.restoreState(self._layout)
        self.settings.save_window(self)
        self.settings.sync()
        self.unload()
        self.samp.close()
        if self._help is not None:
            self._help.close()
        if self.inspector.large is not None:
            self.inspector.large.close()
        super().closeEvent(ev)
