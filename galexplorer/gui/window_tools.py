"""Two tools of the window that reach outside it: the external sky viewer (Tools ▸ Open in sky
viewer, Sky viewer URL…) and Model ▸ Refine the representation (``galexplorer refine`` in its own process,
:mod:`.refine`), which ends by opening the new store."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets

from .settings import viewer_url


class SkyViewer:
    """Tools ▸ Open in sky viewer (V) and Sky viewer URL…, for one window."""

    def __init__(self, window):
        self.window = window

    def open(self) -> None:
        """The inspected object's ra/dec in the sky viewer (the settings' URL template)."""
        w = self.window
        ex = w.explorer
        if ex is None or ex.current is None:
            return
        ra, dec = ex.position(ex.current)
        if not (math.isfinite(ra) and math.isfinite(dec)):
            w.statusBar().showMessage("this object has no sky position", 5000)
            return
        try:
            url = viewer_url(w.settings.viewer_url, ra, dec, ex.object_id(ex.current))
        except ValueError as exc:
            w.show_error(str(exc))
            return
        QtGui.QDesktopServices.openUrl(QtCore.QUrl(url))
        w.statusBar().showMessage(f"opened {url}", 6000)

    def edit_url(self) -> None:
        """Tools ▸ Sky viewer URL…: the template is checked before it is kept."""
        w = self.window
        text, ok = QtWidgets.QInputDialog.getText(
            w, "Sky viewer", "URL template ({ra}, {dec} in degrees, {id}):",
            QtWidgets.QLineEdit.EchoMode.Normal, w.settings.viewer_url)
        if ok and text.strip():
            try:
                viewer_url(text.strip(), 0.0, 0.0, "x")
            except ValueError as exc:
                w.show_error(str(exc))
                return
            w.settings.viewer_url = text.strip()


class Refinement:
    """Model ▸ Refine the representation, for one window.

    Attributes:
        job: the :class:`~.refine.RefineJob` while (or after) a refine runs, else None.
    """

    def __init__(self, window):
        self.window = window
        self.job = None

    def start(self, output: str | Path | None = None) -> None:
        """``galexplorer refine`` in its own process; when it ends, the new store opens with the
        selection and the inspected object kept."""
        from .refine import RefineJob, refined_path

        w = self.window
        ex = w.explorer
        if ex is None:
            return
        if self.job is not None and self.job.running:
            w.statusBar().showMessage("a refine is already running", 5000)
            return
        store = Path(ex.session.store.path)
        out = Path(output) if output else refined_path(store)
        job = RefineJob(store, out, user=None, parent=w)
        self.job = job
        job.progressed.connect(lambda text: w.statusBar().showMessage(text, 30000))
        job.failed.connect(lambda text: w.show_error(f"the refine failed: {text}", title="Refine"))
        job.finished.connect(self._on_refined)
        job.start()

    def cancel(self) -> None:
        """The window closes: no refine left running with nobody to open its store."""
        if self.job is not None:
            self.job.cancel()

    def _on_refined(self, path: str) -> None:
        w = self.window
        ex = w.explorer
        keep_sel = ex.selection.copy() if ex is not None else None
        keep_cur = ex.current if ex is not None else None
        n_before = ex.n if ex is not None else None
        if not w.try_load(path):
            return
        ex = w.explorer
        if n_before == ex.n:        # the same objects in the same order (refine re-embeds every cutout)
            if keep_sel is not None and len(keep_sel):
                ex.select(keep_sel)
            if keep_cur is not None:
                ex.open(int(keep_cur))
        w.statusBar().showMessage(f"opened the refined store {Path(path).name}: the same objects and labels "
                                  "(labels given during the refine are in the previous store's journal)", 15000)
