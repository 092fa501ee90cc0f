"""Stamps for training: random-access batches from a cutouts file, in memory when they fit.

The training loop asks for whole batches (a list of row numbers from a ``BatchSampler``), so
HDF5 is read once per batch, and the DataLoader's worker processes (``--workers``) only read:
all randomness lives in the samplers (seeded by epoch) and the augmentation generator, so the
data order does not depend on the number of workers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from .. import progress
from ..store import CutoutStore

log = logging.getLogger(__name__)

IN_MEMORY_BYTES = 2 << 30   # load the whole file when it is at most 2 GiB


class StampSource:
    """Row access to the images of a cutouts file, from memory when they fit.

    Args:
        path: the cutouts file.
        in_memory: load all images now (None: when they take at most 2 GiB).

    Pickles without the open HDF5 handle, so it can go to DataLoader worker processes.
    """

    def __init__(self, path: str | Path, in_memory: bool | None = None):
        self.path = Path(path)
        with CutoutStore(self.path) as cut:
            self.n, self.shape = cut.n, cut.shape
            nbytes = int(np.prod(cut.shape)) * 4
            if in_memory is None:
                in_memory = nbytes <= IN_MEMORY_BYTES
            self.images: np.ndarray | None = None
            if in_memory and self.n:
                self.images = np.empty(cut.shape, np.float32)
                step = max(1, (64 << 20) // max(1, nbytes // max(self.n, 1)))
                for a, x in progress.track(cut.iter_batches(step), "reading stamps",
                                           total=-(-self.n // step), unit="batch"):
                    self.images[a:a + len(x)] = x
                log.debug("%d stamps (%.0f MB) held in memory", self.n, nbytes / 1e6)
        self._store: CutoutStore | None = None

    def read(self, rows) -> np.ndarray:
        """(len(rows), C, S, S) float32 images of ``rows`` (any order)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.images is not None:
            return self.images[rows]
        if self._store is None:
            self._store = CutoutStore(self.path)
        return self._store.read(rows)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_store"] = None
        return state

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class BatchDataset(torch.utils.data.Dataset):
    """``dataset[list_of_rows]`` -> (images (B, C, S, S) float32 tensor, rows (B,) int64, bad (B,) bool).

    ``bad`` marks stamps with NaN or inf pixels; the trainer turns them into a clear error in
    the main process (an exception raised inside a worker would arrive wrapped in a traceback).
    """

    def __init__(self, source: StampSource):
        self.source = source

    def __len__(self) -> int:
        return self.source.n

    def __getitem__(self, rows):
        x = self.source.read(rows)
        bad = ~np.isfinite(x).reshape(len(x), -1).all(axis=1)
        return torch.from_numpy(x), torch.as_tensor(np.asarray(rows, dtype=np.int64)), torch.from_numpy(bad)
