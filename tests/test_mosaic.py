"""The image mosaic's cell choice (no Qt): one object per cell, the one nearest the cell's centre."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.spatial import cKDTree

from galexplorer.gui.density import ViewRect
from galexplorer.gui.mosaic import cell_side, choose_cells, choose_cells_brute, compose, grid_over


def _choose(xy, rect, side, k=16):
    fin = np.flatnonzero(np.isfinite(xy).all(axis=1))
    pts = np.asarray(xy, np.float64)[fin]
    return choose_cells(cKDTree(pts), pts, fin, rect, side, k=k)


def _as_dict(cells):
    return {(int(a), int(b)): int(i) for a, b, i in zip(cells.ix, cells.iy, cells.index)}


@pytest.mark.parametrize("k", [1, 4, 16])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choice_matches_brute_force(seed, k):
    rng = np.random.default_rng(seed)
    # clusters, a sparse halo (empty cells, cells with objects only in their corners), NaNs
    xy = np.vstack([rng.normal(0, 0.5, (3000, 2)), rng.normal(3, 0.2, (500, 2)), rng.uniform(-6, 6, (60, 2))])
    xy[rng.choice(len(xy), 20, replace=False)] = np.nan
    rect = ViewRect(-4.3, 4.9, -3.1, 4.2)
    for side in (0.25, 0.5, 2.0):
        fast, ref = _choose(xy, rect, side, k), choose_cells_brute(xy, rect, side)
        assert _as_dict(fast) == _as_dict(ref)
        assert len(fast) > 0


def test_the_representative_is_inside_its_cell_and_nearest_the_centre():
    # cell [0, 1) x [0, 1): the nearest object to the centre overall (just outside, at x = 1.01)
    # is not the cell's; the cell's own objects sit in its corners, 0.636, 0.566 and 0.541 from
    # the centre (k=1: the exact fallback decides)
    xy = np.array([[1.01, 0.5], [0.05, 0.05], [0.9, 0.9], [0.2, 0.95]], np.float64)
    cells = _choose(xy, ViewRect(0.0, 0.99, 0.0, 0.99), 1.0, k=1)
    assert _as_dict(cells) == {(0, 0): 3}
    assert cells.lookup(0.5, 0.5) == 3 and cells.lookup(5.0, 5.0) == -1


def test_objects_on_a_cell_edge_belong_to_the_cell_on_their_right():
    xy = np.array([[1.0, 0.5], [0.6, 0.5]], np.float64)
    cells = _choose(xy, ViewRect(0.0, 1.9, 0.0, 0.9), 1.0)
    assert _as_dict(cells) == {(0, 0): 1, (1, 0): 0}


def test_empty_view_and_no_points():
    xy = np.random.default_rng(0).normal(0, 1, (100, 2))
    assert len(_choose(xy, ViewRect(50, 60, 50, 60), 1.0)) == 0
    cells = choose_cells(None, np.empty((0, 2)), None, ViewRect(0, 1, 0, 1), 0.5)
    assert len(cells) == 0


def test_cell_side_is_a_power_of_two_spanning_the_minimum_pixels():
    for upp in (1e-4, 0.003, 0.5, 7.0):
        s = cell_side(upp, 64)
        assert s / upp >= 64 and s / upp < 128
        assert np.log2(s) == round(np.log2(s))
    with pytest.raises(ValueError, match="positive"):
        cell_side(0.0, 64)


def test_cells_are_anchored_so_a_pan_keeps_their_representatives():
    xy = np.random.default_rng(3).normal(0, 1, (20000, 2))
    a = _as_dict(_choose(xy, ViewRect(-2, 1, -2, 1), 0.25))
    b = _as_dict(_choose(xy, ViewRect(-1.3, 1.7, -1.6, 1.4), 0.25))
    shared = set(a) & set(b)
    assert len(shared) > 50 and all(a[c] == b[c] for c in shared)


def test_grid_is_capped():
    ix, iy, side = grid_over(ViewRect(0, 1000, 0, 1000), 1.0, max_cells=4096)
    assert len(ix) <= 4096 and side > 1.0


def test_compose_places_each_thumbnail_in_its_cell():
    xy = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5]], np.float64)
    cells = _choose(xy, ViewRect(0, 1.9, 0, 1.9), 1.0)
    colours = {0: 50, 1: 100, 2: 200}
    img = compose(cells, lambda i: np.full((4, 4, 3), colours[i], np.uint8), 4, background=(0, 0, 0), gap=1)
    assert img.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert img[1, 1, 0] == 200        # top-left: the cell of larger y
    assert img[6, 1, 0] == 50 and img[6, 6, 0] == 100
    assert img[1, 6, 0] == 0          # the empty cell stays background
    with pytest.raises(ValueError, match="empty"):
        compose(_choose(xy, ViewRect(9, 10, 9, 10), 1.0), lambda i: None, 4)


def test_choice_at_a_million_objects_is_fast():
    rng = np.random.default_rng(0)
    xy = np.vstack([rng.normal(c, s, (125_000, 2)) for c, s in zip(rng.normal(0, 6, 8), rng.uniform(0.4, 2, 8))])
    tree = cKDTree(xy, balanced_tree=False, compact_nodes=False)
    times = []
    for rect, upp in [(ViewRect(-12, 12, -9, 9), 24 / 1000), (ViewRect(-1, 1, -0.75, 0.75), 2 / 1000)]:
        for _ in range(3):
            t0 = time.perf_counter()
            cells = choose_cells(tree, xy, None, rect, cell_side(upp))
            times.append(time.perf_counter() - t0)
        assert 20 < len(cells) <= 300
    # ~1-3 ms on two cores; loose, for a busy machine
    assert np.median(times) < 0.05
