"""The window's panels kept in step with the controller: the widgets' signals go to the
controller (or to the action table), and the controller's signals redraw the widgets.

Nothing here decides anything: what an object's caption says, what a colour means, which
objects a label view keeps, all come from :class:`~.controller.Explorer`; this module only
says which widget shows it.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from .colouring import DENSITY_SOURCE

TABLE_AFTER_PAINT_MS = 100   # at opening, the candidates table is filled this long after the map
RANGE_COLUMNS = ("score_mean", "label", "acquisition", "anomaly", "score_std")   # the table's range filters


def range_columns(cols) -> list[str]:
    """The candidates table's columns that its range filter offers."""
    return [c for c in RANGE_COLUMNS if c in cols]


class ExplorerViews:
    """The wiring between one window's widgets and its controller (when a store is open)."""

    def __init__(self, window):
        self.window = window

    def _ex(self, call) -> None:
        """``call(explorer)`` when a store is open (widgets reach the controller this way)."""
        if self.window.explorer is not None:
            call(self.window.explorer)

    # -- widgets → controller -----------------------------------------------------------------
    def connect_widgets(self) -> None:
        """The panels' signals: actions of the table go through ``run_action`` (and its enable
        check); the rest (open an object, a selection drawn, the gallery's order, the loop's
        options) call the controller."""
        w = self.window
        sc = w.scatter
        sc.clicked.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        sc.regionSelected.connect(lambda idx, mode: self._ex(lambda ex: ex.select(idx, mode)))
        sc.hovered.connect(w.status.on_hover)
        sc.toolChanged.connect(w.on_tool_changed)
        sc.describe = lambda i: w.explorer.describe(i) if w.explorer else (str(i), [])
        self._connect_colour_controls()
        ins = w.inspector
        ins.scored.connect(w.score)
        for signal, name in ((ins.previous, "previous"), (ins.next, "next"), (ins.skip, "skip"),
                             (ins.note, "note"), (ins.similar, "similar"), (ins.viewer, "viewer"),
                             (ins.exclude, "exclude")):
            signal.connect(lambda name=name: w.run_action(name))
        ins.displayChanged.connect(self.on_display)
        w.queue.opened.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        w.queue.configChanged.connect(self.on_loop_config)
        w.queue.refitRequested.connect(lambda: w.run_action("refit"))
        g = w.gallery
        g.opened.connect(lambda i: self._ex(lambda ex: ex.open(i, g.indices)))
        g.scoreAll.connect(lambda s: w.run_action(f"gallery_score_{s}"))
        for signal, name in ((g.excludeAll, "gallery_exclude"), (g.includeAll, "gallery_include"),
                             (g.exportAll, "gallery_export"), (g.broadcast, "gallery_samp")):
            signal.connect(lambda name=name: w.run_action(name))
        g.orderChanged.connect(lambda by: self._ex(lambda ex: ex.gallery.order_by(by)))
        g.labelViewToggled.connect(self.gallery_label_view)
        c = w.candidates
        c.opened.connect(lambda i: self._ex(lambda ex: ex.open(i)))
        c.exportRequested.connect(lambda: w.run_action("export"))
        c.labelViewChanged.connect(self.on_label_view)
        c.disputed.toggled.connect(lambda _: self.on_label_view())
        c.labelGalleryRequested.connect(self.label_view_in_gallery)
        w.why.opened.connect(lambda i: self._ex(lambda ex: ex.open(i)))

    def _connect_colour_controls(self) -> None:
        panel = self.window.scatter_panel
        panel.colour.currentTextChanged.connect(self.on_colour_choice)
        for box in (panel.lo, panel.hi):
            box.editingFinished.connect(self.on_colour)
        for box in (panel.log, panel.diverging):
            box.toggled.connect(lambda _: self.on_colour_choice())
        panel.mode.currentIndexChanged.connect(
            lambda _: setattr(panel.view, "default_mode", panel.mode.currentData()))

    # -- controller → widgets -----------------------------------------------------------------
    def bind(self, ex) -> None:
        """Connect a new controller's signals to the widgets, and show its state."""
        w = self.window
        ex.currentChanged.connect(self.on_current)
        ex.labelsChanged.connect(self.on_labels)
        ex.queueChanged.connect(self.on_queue)
        ex.modelChanged.connect(self.on_model)
        w.status.remaining.reset()
        ex.modelChanged.connect(lambda: w.status.remaining.update_state(ex.state))
        ex.refitStateChanged.connect(w.status.on_refit_state)
        ex.selectionChanged.connect(self.on_selection)
        ex.galleryChanged.connect(self.on_gallery)
        ex.message.connect(lambda text: w.statusBar().showMessage(text, 6000))
        ex.failed.connect(w.show_error)
        ex.progressed.connect(w.status.on_progress)
        w.why.bind(ex, w.thumbs)
        # the map of a newly opened store starts by density: colour it as the box still says
        self.refresh_colour_options(redraw=True)
        w.candidates.set_users(ex.users())
        self.on_labels()
        self.on_queue()
        self.on_selection()
        self.on_gallery()

    def on_current(self, i) -> None:
        w = self.window
        ex = w.explorer
        if ex is None:
            return
        w.scatter.set_current(i)
        if i is None:
            w.inspector.show_object(None)
            return
        ra, dec = ex.position(i)
        w.inspector.show_object(i, ex.object_id(i), ra, dec, ex.details(i), ex.my_label(i),
                                bool(ex.excluded[i]), ex.note_of(i))
        w.update_enabled()

    def on_labels(self) -> None:
        w = self.window
        ex = w.explorer
        if ex is None:
            return
        w.scatter.set_labelled(*ex.labelled(), caption=ex.text.score_discs_caption())
        w.scatter.set_excluded(np.flatnonzero(ex.excluded))
        w.gallery.model.refresh()
        if ex.state is None:
            # opening: the map paints first, the table (~2 s at 10^7 objects) fills after
            QtCore.QTimer.singleShot(TABLE_AFTER_PAINT_MS, self.refresh_table)
        else:
            self.refresh_table()
        w.scatter.refresh_card()
        source = w.scatter_panel.colour.currentData()
        if source is not None and source.follows_labels:
            self.on_colour()
        if w.docks["agreement"].isVisible():
            self.on_agreement()
        if w.candidates.label_filter() is not None:
            self.on_label_view()
        elif ex.gallery.kind == "labelled":
            self.gallery_label_view(True)
        w.status.update_counters()

    def refresh_table(self) -> None:
        ex = self.window.explorer
        if ex is None:
            return
        cols, order = ex.table_columns()
        self.window.candidates.model.set_headers(ex.text.column_headers())   # first: the columns are sized to them
        self.window.candidates.update_table(cols, order, range_columns(cols))

    def on_queue(self) -> None:
        w = self.window
        ex = w.explorer
        if ex is None:
            return
        q = ex.queue(50)
        w.queue.set_queue(q)
        w.scatter.set_queue(np.asarray(q[:ex.batch_size], np.int64))
        w.status.update_counters()

    def on_model(self) -> None:
        w = self.window
        ex = w.explorer
        if ex is None or ex.state is None:
            return
        cols, order = ex.table_columns()
        w.candidates.model.set_headers(ex.text.column_headers())   # first: the columns are sized to them
        w.candidates.set_table(cols, order, range_columns(cols))
        self.refresh_colour_options()
        w.queue.model.refresh()
        w.gallery.model.refresh()
        self.on_current(ex.current)

    def on_selection(self) -> None:
        w = self.window
        ex = w.explorer
        if ex is None:
            return
        w.scatter.set_selection(ex.selection)
        w.update_enabled()
        w.status.update_counters()
        w.samp.select(ex.selection)      # the same rows selected in TOPCAT

    def on_gallery(self) -> None:
        w = self.window
        ex = w.explorer
        if ex is None:
            return
        g = ex.gallery
        title = g.title or "Select objects in the map (L, R) or press F for similar ones"
        w.gallery.show_objects(g.indices, title, g.values, g.kind, g.order)
        w.update_enabled()

    # -- colour -----------------------------------------------------------------------------------
    def refresh_colour_options(self, redraw: bool = False) -> None:
        """The Colour box's entries (typed sources as the items' data), keeping the choice when
        it is still offered; a model colouring is redrawn with the new model (any colouring with
        ``redraw``: the map was reset)."""
        ex = self.window.explorer
        box = self.window.scatter_panel.colour
        current = box.currentText()
        sources = ex.colours.sources() if ex is not None else [DENSITY_SOURCE]
        labels = [src.label for src in sources]
        box.blockSignals(True)
        box.clear()
        for src in sources:
            box.addItem(src.label, src)
        box.setCurrentText(current if current in labels else DENSITY_SOURCE.label)
        box.blockSignals(False)
        chosen = box.currentData()
        if ex is not None and (redraw or current not in labels or chosen.kind == "model" or not current):
            self.on_colour()

    def on_colour_choice(self, _text: str = "") -> None:
        """Another column (or scale, or map): the limits go back to the percentiles."""
        self.window.scatter_panel.clear_limits()
        self.on_colour()

    def on_colour(self) -> None:
        """Colour the map by the Colour box's choice, with its scale, map and limits."""
        w = self.window
        source = w.scatter_panel.colour.currentData()
        if w.explorer is None or source is None:
            return
        p = w.scatter_panel
        spec = w.explorer.colours.spec(source, "log" if p.log.isChecked() else "linear", p.diverging.isChecked(),
                                       p.colour_limits())
        p.show_spec(spec)
        w.scatter.set_colour(spec)
        empty = np.empty(0, np.int64)
        w.scatter.set_disputes(*(w.explorer.disputes() if source.kind == "disputed" else (empty, empty)))

    # -- label views, agreement, display, loop options ---------------------------------------------
    def on_label_view(self) -> None:
        """My labels (the table's toggle): labelled objects only, filtered, with counts."""
        w = self.window
        ex = w.explorer
        f = w.candidates.label_filter()
        if ex is None or f is None:
            w.candidates.set_label_view(None, None)
            return
        mask, counts = ex.label_view(**f)
        w.candidates.set_label_view(mask, counts)
        if ex.gallery.kind == "labelled":      # the gallery's My labels follows the table's filter
            ex.gallery.show_labelled(mask, counts=counts)

    def label_view_in_gallery(self) -> None:
        w = self.window
        ex = w.explorer
        f = w.candidates.label_filter()
        if ex is not None and f is not None:
            mask, counts = ex.label_view(**f)
            ex.gallery.show_labelled(mask, counts=counts)
            w.docks["gallery"].raise_()

    def gallery_label_view(self, on: bool) -> None:
        """The gallery's My labels toggle: the objects this user labelled (the table's filter,
        with the labeller it names, when its toggle is on), or back to the selection."""
        w = self.window
        ex = w.explorer
        if ex is None:
            w.gallery.mine.setChecked(False)
            return
        if not on:
            ex.show_selection()
            return
        f = w.candidates.label_filter()
        if f is None:
            mask, counts = ex.label_view(user=ex.user)
            ex.gallery.show_labelled(mask, f"labelled by {ex.user}", counts)
        else:
            mask, counts = ex.label_view(**f)
            ex.gallery.show_labelled(mask, counts=counts)

    def on_agreement(self) -> None:
        if self.window.explorer is not None:
            self.window.agreement.show_pairs(self.window.explorer.agreement())

    def on_display(self) -> None:
        """The inspector's stretch changed: remembered for this store."""
        w = self.window
        if w.explorer is not None:
            w.settings.set_stretch_for(w.explorer.store.path, w.inspector.stretch.currentText())
        else:
            w.settings.stretch = w.inspector.stretch.currentText()

    def on_loop_config(self) -> None:
        w = self.window
        c = w.queue.config()
        w.settings.scorer, w.settings.acquisition = c["scorer"], c["acquisition"]
        w.settings.xi, w.settings.batch_size = c["xi"], c["batch_size"]
        self._ex(lambda ex: ex.set_config(**c))
        w.status.update_counters()

    # -- captions (the text itself comes from the controller) -------------------------------------
    def queue_caption(self, i: int, v) -> str:
        ex = self.window.explorer
        return str(i) if ex is None else ex.text.queue_caption(i)

    def gallery_caption(self, i: int, v) -> str:
        ex = self.window.explorer
        return str(i) if ex is None else ex.text.gallery_caption(i, v)

    def tooltip(self, i: int, v) -> str:
        ex = self.window.explorer
        return "" if ex is None else ex.text.tooltip(i)
