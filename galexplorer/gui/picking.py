"""Which object is under the mouse (no Qt): a KD-tree on the 2-D projection.

The tree is built once on data coordinates (about 0.3 s for 10^6 points, off the UI thread;
SciPy releases the GIL while building). A query asks for the nearest point within a radius
given in screen pixels: with the same scale on both axes (the explorer locks the aspect
ratio) the data-space nearest neighbour is the screen-space one; otherwise the few nearest
candidates are re-ranked by their distance in pixels.
"""

from __future__ import annotations

import threading

import numpy as np
from scipy.spatial import cKDTree

SYNC_BUILD_MAX = 100_000   # below this a build takes < 30 ms: do it at once


class NearestIndex:
    """Nearest-point lookups on (N, 2) coordinates.

    Args:
        xy: (N, 2) float coordinates; rows with NaN are never returned.
        background: build the tree in a thread (for large N); :attr:`ready` tells when done.
    """

    def __init__(self, xy: np.ndarray, background: bool | None = None):
        self._tree: cKDTree | None = None
        self._thread: threading.Thread | None = None
        self._empty = False
        self._xy = np.empty((0, 2), np.float64)
        self._rows = np.empty(0, np.int64)
        if background is None:
            background = len(xy) > SYNC_BUILD_MAX
        if background:   # the float64 copy too: at 10^7 points it alone takes seconds
            self._thread = threading.Thread(target=self._build, args=(xy,), name="galexplorer-kdtree", daemon=True)
            self._thread.start()
        else:
            self._build(xy)

    def _build(self, xy: np.ndarray) -> None:
        xy = np.asarray(xy, dtype=np.float64)
        finite = np.isfinite(xy).all(axis=1)
        self._rows = np.flatnonzero(finite)
        self._xy = xy[finite]
        self._empty = len(self._xy) == 0
        # unbalanced, non-compact trees build ~2x faster and query as fast for 2-D points
        self._tree = cKDTree(self._xy, balanced_tree=False, compact_nodes=False) if len(self._xy) else None

    @property
    def tree(self) -> cKDTree | None:
        """The tree on :attr:`points` (None until built, or with no finite point)."""
        return self._tree

    @property
    def points(self) -> np.ndarray:
        """(n, 2) float64 the finite points, in the tree's order."""
        return self._xy

    @property
    def rows(self) -> np.ndarray:
        """(n,) int64 the object index of each of :attr:`points`."""
        return self._rows

    @property
    def ready(self) -> bool:
        return self._tree is not None or self._empty

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the tree is built (tests, screenshots); True when ready."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.ready

    def nearest(self, x: float, y: float, px_x: float, px_y: float, radius_px: float = 8.0) -> int:
        """The object nearest to (x, y) on screen, within ``radius_px`` pixels.

        Args:
            x, y: the cursor in data coordinates.
            px_x, px_y: screen pixels per data unit along x and y (> 0).
            radius_px: search radius in pixels.

        Returns:
            The object's index in the input array, or -1 (nothing near, or the tree is not
            built yet).
        """
        tree = self._tree
        if tree is None or px_x <= 0 or px_y <= 0:
            return -1
        rx, ry = radius_px / px_x, radius_px / px_y
        if abs(rx - ry) <= 1e-6 * max(rx, ry):
            d, k = tree.query((x, y), k=1, distance_upper_bound=rx)
            return int(self._rows[k]) if np.isfinite(d) else -1
        d, k = tree.query((x, y), k=16, distance_upper_bound=max(rx, ry))
        k = k[np.isfinite(d)]
        if len(k) == 0:
            return -1
        p = self._xy[k]
        dist = ((p[:, 0] - x) * px_x) ** 2 + ((p[:, 1] - y) * px_y) ** 2
        j = int(np.argmin(dist))
        return int(self._rows[k[j]]) if dist[j] <= radius_px ** 2 else -1
