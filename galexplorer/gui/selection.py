"""Selections as data (no Qt): a region of interest applied to the points, combined by mode.

As in glue, a selection is the result of applying a shape (a lasso polygon or a rectangle, in
data coordinates) to the 2-D projection, combined with the previous selection by an explicit
mode: replace, add, remove or intersect. The explorer draws the shapes; this module decides
which objects they contain.
"""

from __future__ import annotations

import enum

import numpy as np


class SelectionMode(enum.Enum):
    """How a new region combines with the current selection."""

    REPLACE = "replace"
    ADD = "add"
    REMOVE = "remove"
    INTERSECT = "intersect"


def combine(current: np.ndarray, new: np.ndarray, mode: SelectionMode) -> np.ndarray:
    """Combine two selections given as sorted unique int64 index arrays.

    Returns:
        The combined selection, sorted unique int64 indices.
    """
    new = np.unique(np.asarray(new, dtype=np.int64))
    current = np.asarray(current, dtype=np.int64)
    if mode is SelectionMode.REPLACE:
        return new
    if mode is SelectionMode.ADD:
        return np.union1d(current, new)
    if mode is SelectionMode.REMOVE:
        return np.setdiff1d(current, new, assume_unique=True)
    if mode is SelectionMode.INTERSECT:
        return np.intersect1d(current, new, assume_unique=True)
    raise ValueError(f"unknown selection mode {mode!r}")


def in_rectangle(xy: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Indices of the points inside the rectangle spanned by two corners (any order).

    Args:
        xy: (N, 2) coordinates.

    Returns:
        Sorted int64 indices.
    """
    xa, xb = sorted((x0, x1))
    ya, yb = sorted((y0, y1))
    x, y = xy[:, 0], xy[:, 1]
    return np.flatnonzero((x >= xa) & (x <= xb) & (y >= ya) & (y <= yb)).astype(np.int64)


def in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Indices of the points inside a closed polygon (a lasso), in data coordinates.

    The bounding box filters first, so the exact test (matplotlib's ``Path.contains_points``,
    compiled) runs only on the points near the lasso.

    Args:
        xy: (N, 2) coordinates.
        polygon: (V, 2) vertices; it is closed implicitly. Fewer than 3 vertices select nothing.

    Returns:
        Sorted int64 indices.
    """
    poly = np.asarray(polygon, dtype=np.float64)
    if len(poly) < 3:
        return np.empty(0, np.int64)
    cand = in_rectangle(xy, poly[:, 0].min(), poly[:, 1].min(), poly[:, 0].max(), poly[:, 1].max())
    if len(cand) == 0:
        return cand
    from matplotlib.path import Path

    inside = Path(np.vstack([poly, poly[:1]]), closed=True).contains_points(
        np.asarray(xy[cand], dtype=np.float64))
    return cand[inside]
