"""The action table (:mod:`.actions`) rendered in the window: one ``QAction`` per row, the
menus in table order, the enable check, and :meth:`WindowActions.run`, the one path every
menu entry, key, tool-bar button and panel button takes.

Nothing here names an action except the few places Qt needs by hand (Open recent under Open,
the panels' toggles after Next band, the map tools' exclusive group): a new row of the table
gets its ``QAction``, menu entry, shortcut and ``?`` line from here without an edit.
"""

from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from . import actions as table
from . import theme
from .keymap import key_sequences


class WindowActions:
    """The window's actions, built from the action table when the window is made.

    Attributes:
        act: ``QAction`` by action name.
        rows: the table's rows by action name (as the table was when the window was made).
        tool_group: the exclusive group of the map tools (pan, lasso, rectangle).
        recent_menu: File ▸ Open recent.
    """

    def __init__(self, window):
        self.window = window
        self.rows = {sc.action: sc for sc in table.SHORTCUTS}
        self.act: dict[str, QtGui.QAction] = {}
        for sc in self.rows.values():
            self.act[sc.action] = self._make(sc)
        self.act["pan"].setChecked(True)
        self.tool_group = QtGui.QActionGroup(window)
        for sc in self.rows.values():
            if sc.checkable:
                self.tool_group.addAction(self.act[sc.action])
        self.recent_menu: QtWidgets.QMenu | None = None

    def _make(self, sc: table.Shortcut) -> QtGui.QAction:
        act = QtGui.QAction(sc.text, self.window)
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
        act.triggered.connect(lambda _=False, name=sc.action: self.run(name))
        self.window.addAction(act)
        return act

    def run(self, name: str) -> None:
        """Run one action of the table, when its enable check allows: its handler, on the
        controller or on the window."""
        sc = self.rows[name]
        if not self.act[name].isEnabled():
            return
        if sc.on == "window":
            sc.handler(self.window)
        elif self.window.explorer is not None:
            sc.handler(self.window.explorer)

    def update_enabled(self) -> None:
        """Enable each action as its ``needs`` says (a store, an object, a selection or object,
        objects in the gallery)."""
        w = self.window
        ex = w.explorer
        have = {"always": True, "store": ex is not None,
                "object": ex is not None and ex.current is not None,
                "target": ex is not None and (ex.current is not None or len(ex.selection) > 0),
                "gallery": ex is not None and len(w.gallery.indices) > 0}
        for sc in self.rows.values():
            self.act[sc.action].setEnabled(have[sc.needs])
        if ex is not None:
            self.act["previous"].setEnabled(ex.can_go_back)

    def make_menus(self, menu_bar: QtWidgets.QMenuBar, docks: dict[str, QtWidgets.QDockWidget],
                   fill_recent) -> None:
        """The menus, in table order (the docks' toggles and Open recent are added by hand;
        ``fill_recent(menu)`` fills Open recent each time it opens)."""
        menus = {name: menu_bar.addMenu(f"&{name}") for name in table.MENUS}
        for sc in self.rows.values():
            if not sc.menu:
                continue
            m = menus[sc.menu]
            if sc.separator and m.actions():
                m.addSeparator()
            m.addAction(self.act[sc.action])
            if sc.action == "open":
                self.recent_menu = m.addMenu("Open recent")
                self.recent_menu.aboutToShow.connect(lambda: fill_recent(self.recent_menu))
            if sc.action == "band":
                m.addSeparator()
                for dock in docks.values():
                    m.addAction(dock.toggleViewAction())
