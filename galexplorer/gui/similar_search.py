"""Find similar (F): the objects nearest the selection or the inspected object in the
embedding, searched in the model's process from a latest-only worker (a new search replaces
one that waits), shown in the gallery by similarity."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from .workers import LatestOnlyRunner


class SimilarSearch(QtCore.QObject):
    """The similarity searches of one :class:`~.controller.Explorer` (``explorer``).

    Attributes:
        runner: the worker (``busy``, ``wait`` for tests).
    """

    def __init__(self, explorer):
        super().__init__(explorer)
        self.ex = explorer
        self.runner = LatestOnlyRunner("similarity", self)
        self.runner.finished.connect(self._on_found)
        self.runner.failed.connect(lambda tag, msg: explorer.failed.emit(msg))

    def find(self, k: int = 24) -> None:
        """The ``k`` objects most similar to the selection (when there is one) or to the object
        in the inspector, shown in the gallery (computed in a worker)."""
        ex = self.ex
        if len(ex.selection):
            rows = ex.selection
        elif ex.current is not None:
            rows = np.array([ex.current], np.int64)
        else:
            ex.message.emit("nothing to search from: open an object or select some")
            return
        if not (ex.store.has("embeddings") or ex.store.has("pca")):
            ex.failed.emit(f"{ex.store.path}: the store has no embeddings to search; "
                           "build it with `galexplorer embed`")
            return
        ex.message.emit("searching for similar objects…")
        model = ex.model
        self.runner.submit(lambda: (rows, *model.similar(rows, int(k))), tag="similar")

    def _on_found(self, tag, answer) -> None:
        rows, idx, sim = answer
        ex = self.ex
        what = ex.object_id(rows[0]) if len(rows) == 1 else f"the {len(rows)} selected objects"
        ex.gallery.show(idx, f"Similar to {what} · {len(idx)}", sim, "similar")
        ex.message.emit(f"{len(idx)} objects similar to {what}")
