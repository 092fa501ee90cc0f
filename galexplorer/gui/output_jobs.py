"""Exports and SAMP sends of the explorer: each runs in order in a :class:`~.workers.QueuedRunner`
(the ranked list written by the model's process, so the window never waits), or is refused with
a message when too many wait. Their outcome is one status line (SAMP) or a dialog (an export that
failed)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6 import QtCore

from .workers import QueuedRunner


class OutputJobs(QtCore.QObject):
    """The output queue of one :class:`~.controller.Explorer` (``explorer``), whose ``message``
    and ``failed`` signals say how each job went.

    Attributes:
        io: the queue (its ``limit`` of waiting jobs; ``wait`` for tests).
    """

    def __init__(self, explorer):
        super().__init__(explorer)
        self.ex = explorer
        self.io = QueuedRunner("io", self)
        self.io.finished.connect(self._on_done)
        self.io.failed.connect(self._on_failed)
        self.io.progressed.connect(explorer.progressed)

    def export(self, path: str | Path, fmt: str | None = None, subset: np.ndarray | None = None) -> bool:
        """Write the ranked list (all objects, or ``subset``) on the current labels, as
        ``galexplorer export`` does; in the model's process."""
        labelled, labels, excluded = self.ex.session.fit_inputs(self.ex.config.scorer)
        config = self.ex.config
        ahead = self.io.waiting + (1 if self.io.busy else 0)
        model = self.ex.model
        if self.io.submit(lambda: model.export(config, labelled, labels, excluded, path, fmt, subset), tag="export") < 0:
            self.ex.failed.emit(f"{path}: not written: {self.io.limit} exports and sends are already waiting; "
                                "try again when they are done")
            return False
        self.ex.message.emit(f"writing {path}…" + (f" (after {ahead} waiting)" if ahead else ""))
        return True

    def send_samp(self, sender, indices: np.ndarray, folder: Path) -> None:
        """Broadcast objects as a VOTable over SAMP (written by the model's process, sent from a
        worker thread)."""
        labelled, labels, excluded = self.ex.session.fit_inputs(self.ex.config.scorer)
        indices = np.asarray(indices, np.int64)
        config = self.ex.config

        def job():
            path = folder / f"galexplorer-selection-{int(time.time() * 1000)}.xml"
            _, rows, order = self.ex.model.export(config, labelled, labels, excluded, path, "votable", indices,
                                                  with_order=True)
            return sender.send_votable(path, f"galexplorer: {rows} objects", rows=rows, order=order)

        if self.io.submit(job, tag="samp") < 0:
            self.ex.failed.emit(f"not sent over SAMP: {self.io.limit} exports and sends are already waiting; "
                                "try again when they are done")
        else:
            self.ex.message.emit(f"sending {len(indices)} objects over SAMP…")

    def send_cutout_samp(self, sender, i: int, cutouts, row: int, folder: Path, band: int = 0) -> None:
        """Send band ``band`` of object ``i``'s cutout (cutouts file row ``row``) as a FITS image
        with its WCS (``image.load.fits``), then its ra/dec (``coord.pointAt.sky``), from a
        worker thread."""
        from ..store.cutout_fits import write_cutout_fits

        i = int(i)
        oid = self.ex.object_id(i)
        ra, dec = self.ex.position(i)
        name = f"cutout of {oid} ({cutouts.bands[band]})"

        def job():
            path = folder / f"galexplorer-cutout-{i}-{int(time.time() * 1000)}.fits"
            write_cutout_fits(cutouts, row, path, ra, dec, oid, band=band)
            report = sender.send_image(path, name)
            if np.isfinite(ra) and np.isfinite(dec):
                sender.point_at(ra, dec)
            return report

        if self.io.submit(job, tag="samp") < 0:
            self.ex.failed.emit(f"not sent over SAMP: {self.io.limit} exports and sends are already waiting; "
                                "try again when they are done")
        else:
            self.ex.message.emit(f"sending the cutout of {oid} over SAMP…")

    def select_samp(self, sender, indices: np.ndarray) -> None:
        """Select these objects' rows in the table last sent over SAMP (``table.select.rowList``),
        from a worker thread; the status bar says how many rows were named."""
        indices = np.asarray(indices, np.int64)
        if self.io.submit(lambda: sender.select_rows(indices), tag="samp-select") < 0:
            self.ex.message.emit("selection not sent over SAMP: the sends before it are still waiting")

    def _on_done(self, tag, value) -> None:
        if tag == "export":
            path, rows = value
            self.ex.message.emit(f"wrote {rows:,} ranked objects to {path}")
        elif tag == "samp":
            self.ex.message.emit(value.summary())
        elif tag == "samp-select":
            self.ex.message.emit(f"selected {value:,} rows of the table sent over SAMP" if value else
                              "the selection is not in the table sent over SAMP: send it (the SAMP button)")

    def _on_failed(self, tag, message: str) -> None:
        if tag in ("samp", "samp-select"):   # a hub or client that misbehaves: one line in the status bar
            self.ex.message.emit(f"not sent over SAMP: {message}")
        else:
            self.ex.failed.emit(message)
