"""The window's dialogs: open a store, change labeller, export, write a note, save the mosaic.
Each asks, then calls the controller or the window; none holds state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtWidgets


class WindowDialogs:
    """The dialogs of one window (``window``: the :class:`~.main_window.MainWindow`)."""

    def __init__(self, window):
        self.window = window

    def _start_name(self, suffix: str) -> str:
        """A file name beside the store: ``STORE`` without ``.h5`` + ``suffix``."""
        return str(Path(self.window.explorer.store.path).with_suffix("").as_posix()) + suffix

    def open_store(self) -> None:
        """File ▸ Open store…"""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self.window, "Open store", "",
                                                        "galexplorer stores (*.h5 *.hdf5);;All files (*)")
        if path:
            self.window.try_load(path)

    def switch_user(self) -> None:
        """File ▸ Labeller…: label as someone else (the store reopens as them, where they stopped)."""
        ex = self.window.explorer
        if ex is None:
            return
        name, ok = QtWidgets.QInputDialog.getText(self.window, "Labeller", "Label as (your name):",
                                                  QtWidgets.QLineEdit.EchoMode.Normal, ex.user)
        if ok and name.strip() and name.strip() != ex.user:
            self.window.switch_user(name.strip())

    def export(self, subset: np.ndarray | None = None) -> None:
        """File ▸ Export ranked list… (every object), or the gallery's Export… (``subset``)."""
        ex = self.window.explorer
        if ex is None:
            return
        start = self._start_name("-selection.csv" if subset is not None else "-ranked.csv")
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.window, "Export ranked list", start,
                                                        "CSV (*.csv);;VOTable (*.xml *.vot)")
        if path:
            ex.export(path, None, subset)

    def write_note(self) -> None:
        """Label ▸ Note… (N): the note about the inspected object."""
        ex = self.window.explorer
        if ex is None or ex.current is None:
            return
        old = ex.note_of(ex.current) or ""
        text, ok = QtWidgets.QInputDialog.getMultiLineText(self.window, "Note",
                                                           f"Note about {ex.object_id(ex.current)}:", old)
        if ok:
            ex.note(text)

    def save_mosaic_as(self) -> None:
        """View ▸ Save mosaic as PNG…"""
        w = self.window
        if w.explorer is None:
            return
        if not w.scatter.mosaic.enabled:
            w.show_error("the mosaic is off: turn it on with View ▸ Image mosaic (M), then save it",
                         title="Save mosaic")
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(w, "Save mosaic as PNG", self._start_name("-mosaic.png"),
                                                        "PNG (*.png)")
        if path:
            self.save_mosaic(path)

    def save_mosaic(self, path: str | Path) -> bool:
        """Write the mosaic in view to ``path`` (PNG); a dialog says why when it cannot."""
        w = self.window
        try:
            n, width, height = w.scatter.mosaic.save_png(str(path))
        except (ValueError, OSError) as exc:
            w.show_error(str(exc), title="Save mosaic")
            return False
        w.statusBar().showMessage(f"saved the mosaic of {n} objects ({width}×{height} px) to {path}", 8000)
        return True
