"""Keyboard focus between text fields and labelling: while a text field of the window has the
focus, the digits and letters are typed (a status-bar hint says so), and Esc gives the keys back
to labelling (0–5, arrows, shortcuts)."""

from __future__ import annotations

from PySide6 import QtCore, QtWidgets


class TextFieldKeys(QtCore.QObject):
    """The application's event filter and focus watcher for one window, installed by
    :meth:`install` and removed by :meth:`remove` (when the window closes)."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self._installed = False

    def install(self) -> None:
        app = QtWidgets.QApplication.instance()
        app.focusChanged.connect(self._on_focus)
        app.installEventFilter(self)
        self._installed = True

    def remove(self) -> None:
        """Idempotent: a window can be closed twice (by the user, then by its owner)."""
        if not self._installed:
            return
        self._installed = False
        app = QtWidgets.QApplication.instance()
        app.removeEventFilter(self)
        try:
            app.focusChanged.disconnect(self._on_focus)
        except (RuntimeError, TypeError):
            pass

    def is_text_field(self, w) -> bool:
        """A widget of this window that takes typed keys (digits would not reach the labelling keys).

        The application's event filter also sees key events of objects that are not widgets (a
        QWindow, which passes the key on to its focus widget): those are never text fields."""
        if not isinstance(w, QtWidgets.QWidget) or w.window() is not self.window:
            return False
        if isinstance(w, QtWidgets.QComboBox):
            return w.isEditable()
        return isinstance(w, (QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox, QtWidgets.QTextEdit,
                              QtWidgets.QPlainTextEdit))

    def _on_focus(self, old, new) -> None:
        self.window.typing.setVisible(self.is_text_field(new))

    def return_keys(self) -> None:
        """Esc in a text field: the keys go back to labelling (0–5, arrows, shortcuts)."""
        w = QtWidgets.QApplication.focusWidget()
        if w is not None:
            w.clearFocus()
        self.window.scatter.setFocus(QtCore.Qt.FocusReason.ShortcutFocusReason)
        self.window.typing.hide()
        self.window.statusBar().showMessage("keys back to labelling", 3000)

    def eventFilter(self, obj, ev) -> bool:
        if ev.type() in (QtCore.QEvent.Type.ShortcutOverride, QtCore.QEvent.Type.KeyPress) \
                and ev.key() == QtCore.Qt.Key.Key_Escape and self.is_text_field(obj) \
                and obj is QtWidgets.QApplication.focusWidget():
            self.return_keys()
            return True
        return super().eventFilter(obj, ev)
