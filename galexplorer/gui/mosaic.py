"""The image mosaic's cells, without Qt: one representative object per cell of a grid over the
view (Hayat et al. 2021, Fig. 2).

The grid is a quadtree level: a cell's side in data units is a power of two, the smallest at
which a cell spans at least ``cell_px`` screen pixels (so between ``cell_px`` and twice that),
and cells sit at integer multiples of the side. Panning keeps every cell and its representative;
zooming within a level only rescales them, so the thumbnails on screen stay put and are read
once. Only the cells overlapping the view are considered (at most ``(W / cell_px + 2) *
(H / cell_px + 2)``, whatever N).

A cell's representative is the object nearest its centre among the objects inside it, found
with the KD-tree the hover index already builds (:class:`~.picking.NearestIndex`): the ``k``
nearest objects within the cell's half-diagonal, in order of distance; the first of them inside
the cell is the answer. When all ``k`` lie outside the cell (its centre is empty and its objects
sit in the corners), a ball query over the half-diagonal settles it exactly. The cost is
``O(cells * k log N)``: about a millisecond for 200 cells at 10^6 objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .density import ViewRect

CELL_PX = 64          # a cell spans 64-128 screen pixels
NEAREST_K = 16        # candidates per cell before the exact fallback
MAX_CELLS = 4096      # never more cells than this (a huge screen with a tiny cell_px)


@dataclass(frozen=True)
class MosaicCells:
    """The non-empty cells of one view.

    Attributes:
        side: a cell's side in data units (a power of two).
        ix, iy: (M,) int64 cell coordinates: the cell spans ``[ix * side, (ix + 1) * side)`` in
            x and the same in y.
        index: (M,) int64 the representative object of each cell (its row in the store).
    """

    side: float
    ix: np.ndarray
    iy: np.ndarray
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def lookup(self, x: float, y: float) -> int:
        """The representative of the cell holding data point (x, y), or -1 for none."""
        if not len(self.index) or not (math.isfinite(x) and math.isfinite(y)):
            return -1
        cx, cy = math.floor(x / self.side), math.floor(y / self.side)
        hit = np.flatnonzero((self.ix == cx) & (self.iy == cy))
        return int(self.index[hit[0]]) if len(hit) else -1


def cell_side(units_per_px: float, cell_px: float = CELL_PX) -> float:
    """The cell side in data units: the smallest power of two spanning ``cell_px`` pixels.

    Args:
        units_per_px: data units per screen pixel (> 0).
        cell_px: the smallest cell, in pixels (> 0).

    Raises:
        ValueError: a scale or size that is not a positive finite number.
    """
    want = float(units_per_px) * float(cell_px)
    if not (math.isfinite(want) and want > 0):
        raise ValueError(f"cell size needs positive finite scales, got {units_per_px} units/px x {cell_px} px")
    return 2.0 ** math.ceil(math.log2(want))


def grid_over(rect: ViewRect, side: float, max_cells: int = MAX_CELLS) -> tuple[np.ndarray, np.ndarray, float]:
    """The cells of side ``side`` overlapping ``rect`` (doubling the side while there would be
    more than ``max_cells``).

    Returns:
        ``(ix, iy, side)``: (M,) int64 cell coordinates and the side used.
    """
    while True:
        x0, x1 = math.floor(rect.x0 / side), math.floor(rect.x1 / side)
        y0, y1 = math.floor(rect.y0 / side), math.floor(rect.y1 / side)
        if (x1 - x0 + 1) * (y1 - y0 + 1) <= max_cells:
            break
        side *= 2.0
    gx, gy = np.meshgrid(np.arange(x0, x1 + 1, dtype=np.int64), np.arange(y0, y1 + 1, dtype=np.int64))
    return gx.ravel(), gy.ravel(), side


def choose_cells(tree, points: np.ndarray, rows: np.ndarray | None, rect: ViewRect, side: float,
                 k: int = NEAREST_K, max_cells: int = MAX_CELLS) -> MosaicCells:
    """One representative per non-empty cell over ``rect``: the object nearest the cell's centre
    among the objects inside the cell.

    Args:
        tree: a ``scipy.spatial.cKDTree`` on ``points``.
        points: (n, 2) float64 the tree's points (finite).
        rows: (n,) int64 each point's object index, or None when point ``j`` is object ``j``.
        rect: the view, in data coordinates.
        side: the cell side in data units (:func:`cell_side`).
        k: nearest candidates tried per cell before the exact fallback.

    Returns:
        The non-empty cells, row-major from the bottom-left.
    """
    ix, iy, side = grid_over(rect, side, max_cells)
    empty = np.empty(0, np.int64)
    if tree is None or len(points) == 0 or len(ix) == 0:
        return MosaicCells(side, empty, empty, empty)
    k = max(1, min(int(k), len(points)))
    left, bottom = ix * side, iy * side
    centres = np.column_stack([left + side / 2, bottom + side / 2])
    reach = side * math.sqrt(0.5) * (1 + 1e-9)          # the half-diagonal: every point of the cell
    d, j = tree.query(centres, k=k, distance_upper_bound=reach)
    d, j = d.reshape(len(ix), k), j.reshape(len(ix), k)
    found = np.isfinite(d)
    jj = np.where(found, j, 0)
    p = points[jj]                                        # (M, k, 2)
    inside = found & (p[..., 0] >= left[:, None]) & (p[..., 0] < (left + side)[:, None]) \
        & (p[..., 1] >= bottom[:, None]) & (p[..., 1] < (bottom + side)[:, None])
    has = inside.any(axis=1)
    pick = np.where(has, jj[np.arange(len(ix)), inside.argmax(axis=1)], -1)
    # k candidates, none inside: the cell's own points (if any) lie further out, in its corners
    for m in np.flatnonzero(~has & found.all(axis=1)):
        cand = np.asarray(tree.query_ball_point(centres[m], reach), np.int64)
        q = points[cand]
        ok = (q[:, 0] >= left[m]) & (q[:, 0] < left[m] + side) & (q[:, 1] >= bottom[m]) & (q[:, 1] < bottom[m] + side)
        if ok.any():
            cand, q = cand[ok], q[ok]
            pick[m] = cand[int(np.argmin(((q - centres[m]) ** 2).sum(axis=1)))]
    keep = pick >= 0
    index = pick[keep] if rows is None else np.asarray(rows)[pick[keep]]
    return MosaicCells(side, ix[keep], iy[keep], index.astype(np.int64))


def choose_cells_brute(xy: np.ndarray, rect: ViewRect, side: float, max_cells: int = MAX_CELLS) -> MosaicCells:
    """The same choice as :func:`choose_cells` by brute force over every point (tests, and the
    benchmark's reference): O(N log N)."""
    ix, iy, side = grid_over(rect, side, max_cells)
    xy = np.asarray(xy, np.float64)
    fin = np.flatnonzero(np.isfinite(xy).all(axis=1))
    p = xy[fin]
    cx, cy = np.floor(p[:, 0] / side).astype(np.int64), np.floor(p[:, 1] / side).astype(np.int64)
    # membership by the same comparisons choose_cells uses (floor can round at a cell's edge)
    cx += (p[:, 0] >= (cx + 1) * side).astype(np.int64) - (p[:, 0] < cx * side).astype(np.int64)
    cy += (p[:, 1] >= (cy + 1) * side).astype(np.int64) - (p[:, 1] < cy * side).astype(np.int64)
    wanted = {(int(a), int(b)): m for m, (a, b) in enumerate(zip(ix, iy))}
    d2 = (p[:, 0] - (cx + 0.5) * side) ** 2 + (p[:, 1] - (cy + 0.5) * side) ** 2
    best: dict[int, tuple[float, int]] = {}
    for a, b, dd, r in zip(cx.tolist(), cy.tolist(), d2.tolist(), fin.tolist()):
        m = wanted.get((a, b))
        if m is not None and (m not in best or dd < best[m][0]):
            best[m] = (dd, r)
    ms = np.array(sorted(best), np.int64)
    index = np.array([best[m][1] for m in ms.tolist()], np.int64)
    return MosaicCells(side, ix[ms] if len(ms) else ms, iy[ms] if len(ms) else ms, index)


def compose(cells: MosaicCells, rgb_of, thumb: int, background=(11, 13, 18), gap: int = 2) -> np.ndarray:
    """The mosaic as one image: each non-empty cell's thumbnail at its own resolution, on the grid
    (the top row is the cells of largest y, as on screen).

    Args:
        cells: the cells (:func:`choose_cells`).
        rgb_of: ``rgb_of(i)`` -> (T, T, 3) uint8 pixels of object ``i`` (or None: left empty).
        thumb: ``T``, the thumbnails' size in pixels.
        gap: pixels between cells.

    Returns:
        (rows * (T + gap) + gap, cols * (T + gap) + gap, 3) uint8.

    Raises:
        ValueError: no cells.
    """
    if len(cells) == 0:
        raise ValueError("the mosaic is empty: no objects in view")
    x0, y1 = int(cells.ix.min()), int(cells.iy.max())
    cols, rows = int(cells.ix.max()) - x0 + 1, y1 - int(cells.iy.min()) + 1
    step = thumb + gap
    out = np.empty((rows * step + gap, cols * step + gap, 3), np.uint8)
    out[:] = np.asarray(background, np.uint8)
    for a, b, i in zip(cells.ix.tolist(), cells.iy.tolist(), cells.index.tolist()):
        rgb = rgb_of(i)
        if rgb is None:
            continue
        rgb = np.asarray(rgb, np.uint8)
        if rgb.shape[:2] != (thumb, thumb):   # a full cutout (a store without thumbnails): resample
            rgb = rgb[np.linspace(0, rgb.shape[0] - 1, thumb).round().astype(int)][
                :, np.linspace(0, rgb.shape[1] - 1, thumb).round().astype(int)]
        r, c = (y1 - b) * step + gap, (a - x0) * step + gap
        out[r:r + rgb.shape[0], c:c + rgb.shape[1]] = rgb
    return out
