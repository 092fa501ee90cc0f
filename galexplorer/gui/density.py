"""Screen-resolution density images of a 2-D point cloud, without Qt (NumPy; SciPy's sparse
matrices for the overview grid).

The explorer draws up to ~10^6 points. Drawing a marker per point costs seconds, so when many
points are in view it shows an image instead: the points in view are binned at the resolution
of the screen (one bin per device pixel) with ``np.bincount`` on integer pixel indices, and the
counts (log-scaled) or the mean of a colour column per pixel become an RGBA image.

:class:`SortedPoints` keeps the points ordered by x (in 65,536 buckets), so the points in a view
are one contiguous slice plus a mask: the work is proportional to the points in the vertical
strip of the view, not to N.

Past :data:`GRID_MIN_POINTS` points (10^7: a view of everything bins 10^7 points, 1–2 s),
:class:`OverviewGrid` counts every point once on a fixed :data:`GRID` x :data:`GRID` grid over
the data; a view whose pixels span at least :data:`GRID_PER_PIXEL` grid cells is binned from the
grid's cells, at the coarsest level of its pyramid that still has cells no larger than a pixel
(~10^6 cells for a 1000-pixel view, whatever N), instead of from the points. Zoomed in further,
the points in view are binned exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

X_BUCKETS = 1 << 16


@dataclass(frozen=True)
class ViewRect:
    """A rectangle in data coordinates: x0 <= x < x1, y0 <= y < y1."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0


class SortedPoints:
    """Points ordered by x for fast culling to a rectangle: sorted into :data:`X_BUCKETS`
    buckets of equal width in x (a radix sort of 16-bit keys: 0.7 s at 10^7 points, a sort of
    the float x 3 s), so the points of a view are one contiguous slice (the buckets it
    overlaps) plus a mask.

    Args:
        xy: (N, 2) float coordinates (any float dtype; kept as float32).

    Attributes:
        order: (N,) int64, ``order[k]`` is the original index of the k-th point in bucket order.
        x, y: (N,) float32 coordinates in bucket order (non-finite points last, as +inf).
    """

    def __init__(self, xy: np.ndarray):
        xy = np.asarray(xy)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"expected (N, 2) coordinates, got shape {xy.shape}")
        finite = np.isfinite(xy).all(axis=1)
        # non-finite points (failed projections) are kept out of every view: they go to the
        # last bucket and carry +inf, so no rectangle with finite bounds contains them
        x = np.where(finite, xy[:, 0], np.inf).astype(np.float32)
        fx = x[finite]
        self._x0 = float(fx.min()) if len(fx) else 0.0
        width = (float(fx.max()) - self._x0) if len(fx) else 1.0
        self._scale = (X_BUCKETS - 2) / width if width > 0 else 0.0
        key = np.full(len(x), X_BUCKETS - 1, np.uint16)
        key[finite] = self._bucket(fx)
        self.order = np.argsort(key, kind="stable")      # radix sort of uint16 keys
        self._starts = np.zeros(X_BUCKETS + 1, np.int64)
        np.cumsum(np.bincount(key, minlength=X_BUCKETS), out=self._starts[1:])
        self.x = np.ascontiguousarray(x[self.order])
        self.y = np.ascontiguousarray(np.where(finite, xy[:, 1], np.inf).astype(np.float32)[self.order])
        self.n = len(self.x)

    def _bucket(self, x) -> np.ndarray:
        b = (np.asarray(x, np.float64) - self._x0) * self._scale
        return np.clip(b, 0, X_BUCKETS - 2).astype(np.uint16)

    def sorted_values(self, values: np.ndarray) -> np.ndarray:
        """``values`` (N,) in original order -> the same values in bucket order."""
        return np.asarray(values)[self.order]

    def bounds(self) -> ViewRect:
        """The data's bounding rectangle (finite points), or a unit square when there are none."""
        fin = np.isfinite(self.x)
        if not fin.any():
            return ViewRect(0.0, 1.0, 0.0, 1.0)
        x, y = self.x[fin], self.y[fin]
        return ViewRect(float(x.min()), float(x.max()), float(y.min()), float(y.max()))

    def strip(self, rect: ViewRect) -> slice:
        """A slice (in bucket order) holding every point with x0 <= x < x1 (and the other points
        of the two edge buckets: :meth:`cull` masks them)."""
        b0, b1 = (int(v) for v in self._bucket([rect.x0, rect.x1]))
        return slice(int(self._starts[b0]), int(self._starts[b1 + 1]))

    def cull(self, rect: ViewRect) -> tuple[slice, np.ndarray]:
        """Points inside ``rect``: ``(strip, mask)`` with ``mask`` a bool array over the strip."""
        s = self.strip(rect)
        x, y = self.x[s], self.y[s]
        return s, (x >= np.float32(rect.x0)) & (x < np.float32(rect.x1)) & \
            (y >= np.float32(rect.y0)) & (y < np.float32(rect.y1))

    def count_in(self, rect: ViewRect) -> int:
        _, mask = self.cull(rect)
        return int(np.count_nonzero(mask))


@dataclass
class Binned:
    """Per-pixel aggregates of the points in one view.

    Attributes:
        count: (H, W) float32 number of points per pixel (row 0 is the bottom, y0).
        sums: (K, H, W) float32 per-pixel sums of K weight arrays (e.g. a score, or R, G, B).
        selected: (H, W) float32 number of selected points per pixel, or None.
        n_in_view: points inside the rectangle.
    """

    count: np.ndarray
    sums: np.ndarray | None
    selected: np.ndarray | None
    n_in_view: int


def bin_view(points: SortedPoints, rect: ViewRect, width: int, height: int,
             weights: np.ndarray | None = None, selected: np.ndarray | None = None) -> Binned:
    """Bin the points inside ``rect`` on a ``width`` x ``height`` pixel grid.

    Args:
        points: the point cloud.
        rect: the view in data coordinates.
        width, height: the grid in pixels (the view's size in device pixels).
        weights: (K, N) float32 values in x order (see :meth:`SortedPoints.sorted_values`),
            summed per pixel; NaN values are treated as 0 and should be masked by the caller.
        selected: (N,) bool in x order; when given, also count the selected points per pixel.

    Returns:
        The per-pixel aggregates.
    """
    width, height = max(int(width), 1), max(int(height), 1)
    s, mask = points.cull(rect)
    xs = points.x[s][mask]
    ys = points.y[s][mask]
    n = len(xs)
    ix = ((xs - np.float32(rect.x0)) * np.float32(width / rect.width)).astype(np.int32)
    iy = ((ys - np.float32(rect.y0)) * np.float32(height / rect.height)).astype(np.int32)
    # float32 rounding can land exactly on the far edge
    np.clip(ix, 0, width - 1, out=ix)
    np.clip(iy, 0, height - 1, out=iy)
    key = iy
    key *= width
    key += ix
    size = width * height
    count = np.bincount(key, minlength=size).astype(np.float32).reshape(height, width)
    sums = None
    if weights is not None:
        w = np.atleast_2d(weights)
        sums = np.empty((len(w), height, width), np.float32)
        for k, wk in enumerate(w):
            sums[k] = np.bincount(key, weights=wk[s][mask], minlength=size).reshape(height, width)
    sel = None
    if selected is not None:
        sk = key[selected[s][mask]]
        sel = np.bincount(sk, minlength=size).astype(np.float32).reshape(height, width)
    return Binned(count, sums, sel, n)


def _levels(count: np.ndarray) -> np.ndarray:
    """Log-scaled density in [0, 1] per pixel (0 where empty)."""
    peak = float(count.max()) if count.size else 0.0
    if peak <= 0:
        return np.zeros_like(count)
    lev = np.log1p(count)
    lev *= np.float32(1.0 / np.log1p(peak))
    return lev


ALPHA_LEVELS = 32


def premultiplied_table(lut: np.ndarray) -> np.ndarray:
    """(256, 3 or 4) uint8 colour map -> (256 * ALPHA_LEVELS,) uint32 premultiplied RGBA8888
    pixels: entry ``c * ALPHA_LEVELS + a`` is colour ``c`` at opacity ``a / (ALPHA_LEVELS - 1)``."""
    rgb = np.asarray(lut, dtype=np.float32)[:, :3]
    a = np.linspace(0.0, 1.0, ALPHA_LEVELS, dtype=np.float32)
    px = np.empty((len(rgb), ALPHA_LEVELS, 4), np.uint8)
    px[..., :3] = np.round(rgb[:, None, :] * a[None, :, None])
    px[..., 3] = np.round(255 * a)[None, :]
    return px.reshape(-1, 4).view("<u4").reshape(-1)   # RGBA bytes in memory order


def render_rgba(binned: Binned, table: np.ndarray, values: np.ndarray | None = None,
                vrange: tuple[float, float] = (0.0, 1.0), rgb: np.ndarray | None = None,
                floor: float = 0.3, dim: float = 0.2) -> np.ndarray:
    """Turn per-pixel aggregates into a premultiplied RGBA8888 image.

    Three colourings:

    * density (``values`` and ``rgb`` None): the log count picks the colour (from ``floor`` so
      single points stay visible on a dark background), fully opaque;
    * a continuous column (``values`` = per-pixel mean, (H, W)): its place within ``vrange``
      picks the colour, and the log count the opacity (from ``floor``);
    * categories (``rgb`` = per-pixel mean colour, (3, H, W), 0..255): opacity from the log count.

    Where ``binned.selected`` is given, pixels without a selected point are dimmed to ``dim``
    of their opacity, and pixels with one are at least 85 % opaque.

    Args:
        table: the colour map as built by :func:`premultiplied_table`.

    Returns:
        (H, W, 4) uint8, premultiplied alpha, row 0 at the bottom of the view.
    """
    count = binned.count
    h, w = count.shape
    lev = _levels(count)
    occupied = count > 0
    if values is None and rgb is None:
        t = lev * np.float32(1.0 - floor)
        t += np.float32(floor)
        alpha = occupied.astype(np.float32)
    else:
        alpha = lev * np.float32(1.0 - floor)
        alpha += np.float32(floor)
        alpha *= occupied
        if rgb is None:
            lo, hi = vrange
            t = (values - np.float32(lo)) * np.float32(1.0 / (hi - lo if hi > lo else 1.0))
            np.nan_to_num(t, copy=False, nan=0.0)
            np.clip(t, 0.0, 1.0, out=t)
    if binned.selected is not None:
        picked = binned.selected > 0
        alpha = np.where(picked, np.maximum(alpha, np.float32(0.85)), alpha * np.float32(dim))
    if rgb is not None:
        col = np.moveaxis(rgb, 0, -1) * alpha[..., None]
        out = np.empty((h, w, 4), np.uint8)
        out[..., :3] = np.clip(col, 0, 255).astype(np.uint8)
        out[..., 3] = (alpha * 255.0 + 0.5).astype(np.uint8)
        return out
    ci = (t * np.float32(255.0) + np.float32(0.5)).astype(np.int32)
    ci *= ALPHA_LEVELS
    ci += (alpha * np.float32(ALPHA_LEVELS - 1) + np.float32(0.5)).astype(np.int32)
    return table[ci].view(np.uint8).reshape(h, w, 4)


GRID = 2048
GRID_MIN_POINTS = 2_000_000
GRID_PER_PIXEL = 1.0
GRID_LEVEL_MIN = 256   # the coarsest level of the grid's pyramid


class OverviewGrid:
    """Every point counted once on a ``size`` x ``size`` grid over the data's bounds, so that a
    zoomed-out view is binned from grid cells, not from the points.

    A cell's count is shared among the (at most 2 x 2) pixels it overlaps; with cells no larger
    than a pixel (:data:`GRID_PER_PIXEL`) a point shows in its own pixel or a neighbour. A view uses the
    coarsest level of a pyramid (the grid summed over 2 x 2, 4 x 4 ... blocks, made when first
    needed) whose cells are still no larger than its pixels, so its cost follows the screen, not
    the grid. Weight sums (colours) and selected counts are gridded once per colouring /
    selection (one pass over the points) and reused by every view until they change.

    Args:
        points: the point cloud (non-finite points are left out, as in every view).
        size: cells along each axis.
    """

    def __init__(self, points: SortedPoints, size: int = GRID):
        self.size = int(size)
        b = points.bounds()
        pad_x = (b.width or 1.0) * 1e-6
        pad_y = (b.height or 1.0) * 1e-6
        self.rect = ViewRect(b.x0 - pad_x, b.x1 + pad_x, b.y0 - pad_y, b.y1 + pad_y)
        self.n_finite = int(np.count_nonzero(np.isfinite(points.x)))   # they come first
        x, y = points.x[:self.n_finite], points.y[:self.n_finite]
        ix = ((x - np.float32(self.rect.x0)) * np.float32(self.size / self.rect.width)).astype(np.int32)
        iy = ((y - np.float32(self.rect.y0)) * np.float32(self.size / self.rect.height)).astype(np.int32)
        np.clip(ix, 0, self.size - 1, out=ix)
        np.clip(iy, 0, self.size - 1, out=iy)
        iy *= self.size
        iy += ix
        self.key = iy          # (n_finite,) int32 cell of each point, in x order
        self.count = self._grid(None)
        self._pyramid: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._sums: tuple[object, np.ndarray] | None = None
        self._selected: tuple[object, np.ndarray] | None = None

    def _grid(self, weights: np.ndarray | None) -> np.ndarray:
        w = None if weights is None else weights[:self.n_finite]
        return np.bincount(self.key, weights=w, minlength=self.size ** 2).astype(np.float32)

    def covers(self, rect: ViewRect, width: int, height: int) -> bool:
        """Whether a view of ``width`` x ``height`` pixels is coarse enough to bin from the grid."""
        cw, ch = self.rect.width / self.size, self.rect.height / self.size
        return rect.width / max(width, 1) >= GRID_PER_PIXEL * cw and \
            rect.height / max(height, 1) >= GRID_PER_PIXEL * ch

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """(K, size²) per-cell sums of (K, N) weights in x order (kept until the weights change)."""
        if self._sums is None or self._sums[0] is not weights:
            self._sums = (weights, np.stack([self._grid(wk) for wk in np.atleast_2d(weights)]))
        return self._sums[1]

    def selected(self, selected: np.ndarray) -> np.ndarray:
        """(size²,) per-cell counts of selected points ((N,) bool in x order; kept while the same)."""
        if self._selected is None or self._selected[0] is not selected:
            keys = self.key[selected[:self.n_finite]]
            self._selected = (selected, np.bincount(keys, minlength=self.size ** 2).astype(np.float32))
        return self._selected[1]

    def level(self, rect: ViewRect, width: int, height: int) -> int:
        """The coarsest pyramid factor f (cells of f x f grid cells, f a power of 2, at most
        size / :data:`GRID_LEVEL_MIN`) whose cells are still no larger than a pixel of the view:
        a whole-map view of ~1000 pixels bins a quarter of the grid's cells."""
        cw, ch = self.rect.width / self.size, self.rect.height / self.size
        pw, ph = rect.width / max(width, 1) / GRID_PER_PIXEL, rect.height / max(height, 1) / GRID_PER_PIXEL
        f = 1
        while self.size // (2 * f) >= GRID_LEVEL_MIN and 2 * f * cw <= pw and 2 * f * ch <= ph:
            f *= 2
        return f

    def _down(self, name: str, grid: np.ndarray, f: int) -> np.ndarray:
        """(size² / f²,) ``grid`` summed over f x f blocks (kept while ``grid`` is the same)."""
        if f == 1:
            return grid
        got = self._pyramid.get((name, f))
        if got is None or got[0] is not grid:
            s = self.size
            got = (grid, grid.reshape(s // f, f, s // f, f).sum(axis=(1, 3), dtype=np.float32).ravel())
            self._pyramid[(name, f)] = got
        return got[1]

    def bin(self, rect: ViewRect, width: int, height: int, weights: np.ndarray | None = None,
            selected: np.ndarray | None = None) -> Binned:
        """:func:`bin_view` of the view from the grid's cells (same arguments and result), at
        the pyramid level :meth:`level` picks. Each cell's count is shared among the (at most
        2 x 2) pixels it overlaps in proportion to the overlap: giving each cell whole to one
        pixel would give pixels one or two cells' width in turn, stripes of double counts."""
        from scipy import sparse

        width, height = max(int(width), 1), max(int(height), 1)
        f = self.level(rect, width, height)
        size_f = self.size // f

        def spread(lo: float, extent: float, v0: float, v_extent: float, pixels: int):
            """(pixels, size_f) sparse: the share of each cell column (row) in each pixel."""
            scale = pixels / v_extent
            a = (lo + np.arange(size_f) * (extent / size_f) - v0) * scale     # cell edges, in pixels
            w = extent / size_f * scale                                        # cell width, <= 1 pixel
            p = np.floor(a)
            first = np.clip((p + 1 - a) / w, 0.0, 1.0)
            pix = np.concatenate([p, p + 1]).astype(np.int64)
            share = np.concatenate([first, 1.0 - first])
            cell = np.concatenate([np.arange(size_f)] * 2)
            keep = (pix >= 0) & (pix < pixels) & (share > 0)
            return sparse.csr_matrix((share[keep], (pix[keep], cell[keep])), shape=(pixels, size_f))

        rx = spread(self.rect.x0, self.rect.width, rect.x0, rect.width, width)
        ry = spread(self.rect.y0, self.rect.height, rect.y0, rect.height, height)

        def gather(name: str, grid: np.ndarray) -> np.ndarray:
            g = self._down(name, grid, f).reshape(size_f, size_f).astype(np.float64)   # [y, x]
            return np.ascontiguousarray((rx @ (ry @ g).T).T, dtype=np.float32)

        count = gather("count", self.count)
        sums = None
        if weights is not None:
            sums = np.stack([gather(f"sum{k}", g) for k, g in enumerate(self.sums(weights))])
        sel = gather("selected", self.selected(selected)) if selected is not None else None
        # shares of a count below one pixel's worth are rounding, not points
        for img in [count, sel] + ([] if sums is None else list(sums)):
            if img is not None:
                img[np.abs(count) < 1e-3] = 0.0
        return Binned(count, sums, sel, int(round(float(count.sum()))))
