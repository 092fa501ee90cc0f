"""The window's side of SAMP: what to send (the selection, a cutout), the checks that give a
status line instead of a send (no hub, no cutouts), and a row highlighted in TOPCAT opening
its object. The sends themselves run in the controller's I/O queue
(:mod:`.output_jobs`); the hub calls are in :mod:`.samp`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

NO_HUB = ("not sent over SAMP: no SAMP hub is running; start TOPCAT, DS9 or Aladin (they start one) "
          "and try again")


class SampLink:
    """The SAMP client of one window, made at the first send and kept until the window closes.

    Attributes:
        sender: the :class:`~.samp.SampSender` (None before the first send).
        folder: the temporary folder of the files sent (VOTables, FITS cutouts).
    """

    def __init__(self, window):
        self.window = window
        self.sender = None
        self._folder: tempfile.TemporaryDirectory | None = None

    @property
    def folder(self) -> Path:
        return Path(self._folder.name)

    def _status(self, text: str, ms: int = 10000) -> None:
        self.window.statusBar().showMessage(text, ms)

    def _connect(self):
        if self.sender is None:
            from .samp import SampSender

            self.sender = SampSender()
            self.sender.on_highlight(self.window.sampHighlighted.emit)
            self._folder = tempfile.TemporaryDirectory(prefix="galexplorer-samp-")
        return self.sender

    def send(self, indices: np.ndarray) -> None:
        """These objects as a VOTable to every SAMP client (TOPCAT, DS9, Aladin)."""
        ex = self.window.explorer
        if ex is None or len(indices) == 0:
            return
        from .samp import hub_running

        if not hub_running():   # one line in the status bar: a dialog would stop the labelling
            self._status(NO_HUB)
            return
        ex.outputs.send_samp(self._connect(), np.asarray(indices, np.int64), self.folder)

    def send_cutout(self) -> None:
        """The inspected object's cutout to DS9 and Aladin (``image.load.fits``, with its WCS),
        and its ra/dec (``coord.pointAt.sky``): the band the inspector shows, the first one
        for the colour composite."""
        w = self.window
        ex = w.explorer
        if ex is None or ex.current is None:
            return
        from .samp import hub_running

        if w.cutouts is None:
            self._status("not sent over SAMP: this store has no cutouts file (only thumbnails)")
            return
        if not hub_running():
            self._status(NO_HUB)
            return
        i = int(ex.current)
        rows = ex.store.cutouts_rows
        row = int(rows[i]) if rows is not None else i
        band = max(w.inspector.band.currentIndex() - 1, 0)     # 0 in the box: the composite
        ex.outputs.send_cutout_samp(self._connect(), i, w.cutouts, row, self.folder, band)

    def select(self, indices: np.ndarray) -> None:
        """The same rows selected in the table last sent (TOPCAT), when one was sent."""
        ex = self.window.explorer
        if ex is not None and self.sender is not None and self.sender.has_tables and len(indices):
            ex.outputs.select_samp(self.sender, indices)

    def on_highlight(self, i: int, client: str) -> None:
        """A row highlighted in TOPCAT (or another SAMP client): that object in the inspector."""
        ex = self.window.explorer
        if ex is None or not 0 <= i < ex.n:
            return
        ex.open(i)
        self._status(f"{ex.object_id(i)}: highlighted in {client} over SAMP", 5000)

    def forget_tables(self) -> None:
        """The store closes: the tables sent name its objects."""
        if self.sender is not None:
            self.sender.forget_tables()

    def close(self) -> None:
        if self.sender is not None:
            self.sender.close()
        if self._folder is not None:
            self._folder.cleanup()
