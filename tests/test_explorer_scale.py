"""Issue 14, items 4 and 5: ids and catalogue columns read on demand (the sorted id index), the
candidates table as a model over the ranking, the map's overview grid, and ``export --top N``
reading only its rows."""

from __future__ import annotations

import gui_qt
import h5py
import numpy as np
import pytest

from galexplorer.store import EmbeddingStore, EmbeddingStoreWriter, ObjectTable
from galexplorer.store.ondemand import ObjectIds, OnDiskColumn, id_order, read_rows

gui_settings = gui_qt.gui_settings   # fixtures shared by the GUI tests
no_leaks = gui_qt.no_leaks


def _store(path, n: int, seed: int = 0, ids=None):
    """A store of ``n`` objects: ids of varied lengths (and a non-ASCII one), ra/dec, a float and a
    text catalogue column, a 2-D map of clusters, PCA and an anomaly score."""
    rng = np.random.default_rng(seed)
    if ids is None:
        ids = np.array([f"J{rng.integers(0, 10**rng.integers(1, 9))}-{i}" for i in range(n)], dtype=object)
        ids[n // 3] = "Ωmega-ü"
    kinds = np.array(["ring", "spiral", "merger", ""], dtype=object)
    objects = ObjectTable(ids, rng.uniform(0, 360, n), rng.uniform(-60, 60, n),
                          {"mag": rng.uniform(17, 24, n), "kind": kinds[rng.integers(0, 4, n)]})
    centres = rng.normal(0, 5, (5, 2))
    xy = (centres[rng.integers(0, 5, n)] + rng.normal(0, 1, (n, 2))).astype(np.float32)
    with EmbeddingStoreWriter(path, objects) as w:
        w.write("projection", xy, attrs={"method": "synthetic"})
        w.write("pca", np.hstack([xy, rng.normal(0, 1, (n, 2))]).astype(np.float32),
                attrs={"explained_variance_ratio": [0.4, 0.3, 0.2, 0.1], "n_components": 4})
        w.write("embeddings", rng.normal(0, 1, (n, 8)).astype(np.float32))
        w.write("scores/anomaly", rng.random(n).astype(np.float32))
    return path, objects


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return _store(tmp_path_factory.mktemp("small") / "s.h5", 3000)


def test_on_demand_reads_equal_the_full_arrays(small):
    path, objects = small
    rng = np.random.default_rng(5)
    rows = np.concatenate([rng.integers(0, 3000, 500), [0, 2999, 7, 7]])   # unsorted, repeated
    with EmbeddingStore(path) as s:
        assert s.file["objects/id_order"].shape == (3000,)
        ids = s.object_ids
        assert ids.indexed and s._ids is None and s._objects is None   # nothing read on open
        np.testing.assert_array_equal(ids[rows], objects.ids[rows])
        assert ids[5] == objects.ids[5] and ids[-1] == objects.ids[-1]
        assert list(ids[10:20]) == list(objects.ids[10:20])
        np.testing.assert_array_equal(ids.rows_of(list(objects.ids[rows]) + ["no-such-id"]),
                                      np.r_[rows, -1])
        assert ids.get(objects.ids[1000]) == 1000 and ids.get("nope") is None
        assert ids.index["Ωmega-ü"] == 1000 and "Ωmega-ü" in ids.index and "x" not in ids.index
        prefix = objects.ids[42][:4]
        want = [i for i in range(3000) if objects.ids[i].startswith(prefix)]
        assert sorted(ids.starting_with(prefix).tolist()) == want
        assert len(ids.starting_with(prefix, limit=2)) == min(2, len(want))
        np.testing.assert_array_equal(np.argsort(ids.sort_key()), np.argsort(objects.ids.astype(str), kind="stable"))
        for name in ("ra", "dec", "mag", "kind"):
            full = {"ra": objects.ra, "dec": objects.dec}.get(name, objects.columns.get(name))
            np.testing.assert_array_equal(s.values_at(name, rows), full[rows])
            col = s.column_view(name)
            assert isinstance(col, OnDiskColumn) and len(col) == 3000
            np.testing.assert_array_equal(col[rows], full[rows])
            np.testing.assert_array_equal(np.asarray(col), full)
        kind = s.column_view("kind").compact()
        assert kind.dtype.kind == "S" and [k.decode() for k in kind] == list(objects.columns["kind"])
        assert [i.decode() for i in ids.compact()] == list(objects.ids)
        assert s._objects is None            # still nothing read in full
        assert list(s.ids) == list(objects.ids)   # and the full read still works
        with pytest.raises(Exception, match="no catalogue column"):
            s.values_at("nope", rows)


def test_stores_without_the_index_read_as_before(small, tmp_path):
    path, objects = small
    old = tmp_path / "old.h5"
    old.write_bytes(path.read_bytes())
    with h5py.File(old, "r+") as f:
        del f["objects/id_order"]
    with EmbeddingStore(old) as s:
        ids = s.object_ids
        assert not ids.indexed and s._ids is not None    # read and checked on open, as before
        rows = np.array([3, 2999, 3])
        np.testing.assert_array_equal(ids.rows_of(objects.ids[rows]), rows)
        assert ids.get("nope") is None
        np.testing.assert_array_equal(ids[rows], objects.ids[rows])
        prefix = objects.ids[42][:4]
        assert sorted(ids.starting_with(prefix).tolist()) == \
            [i for i in range(3000) if objects.ids[i].startswith(prefix)]


def test_repeated_ids_are_still_reported(tmp_path):
    from galexplorer.errors import StoreError

    # the writer gives repeated ids no index: the reader finds them on open, as before
    assert id_order(np.array(["a", "b", "a"], dtype=object)) is None
    path, _ = _store(tmp_path / "d.h5", 50, ids=np.array(["x"] + [f"o{i}" for i in range(48)] + ["x"], dtype=object))
    with h5py.File(path) as f:
        assert "id_order" not in f["objects"]
    with pytest.raises(StoreError, match="duplicate object ids"):
        EmbeddingStore(path)
    # an indexed store whose ids were changed afterwards: found when every id is read
    path, _ = _store(tmp_path / "e.h5", 50)
    with h5py.File(path, "r+") as f:
        f["objects/id"][1] = f["objects/id"][0]
    with EmbeddingStore(path) as s, pytest.raises(StoreError, match="duplicate object ids"):
        _ = s.ids
    # a damaged index: a one-line StoreError, not a wrong row
    with h5py.File(path, "r+") as f:
        f["objects/id_order"][:] = 10**9
    with EmbeddingStore(path) as s, pytest.raises(StoreError, match="damaged"):
        s.object_ids.rows_of(["o3"])


def test_read_rows_of_sparse_and_dense_blocks(tmp_path):
    data = np.arange(300_000, dtype=np.int64) * 3
    with h5py.File(tmp_path / "r.h5", "w") as f:
        d = f.create_dataset("x", data=data)
        rng = np.random.default_rng(0)
        dense = np.arange(70_000, 140_000)[::2]           # many rows of one block: one slice
        sparse = rng.integers(0, 300_000, 100)
        for rows in (dense, sparse, np.r_[dense, sparse][::-1], np.empty(0, np.int64)):
            np.testing.assert_array_equal(read_rows(d, rows), data[rows])
        with pytest.raises(IndexError):
            read_rows(d, [300_000])


@pytest.mark.gui
def test_window_and_table_never_read_every_id(tmp_path, qtbot, gui_settings, no_leaks, monkeypatch):
    """A store of 2·10^5 objects with every full read of ids or catalogue columns made to fail:
    the window opens, the candidates table has N rows, shows and sorts them, the hover card,
    the inspector and a search by id work."""
    from PySide6 import QtCore

    from galexplorer.store.base import ObjectFile

    n = 200_000
    path, objects = _store(tmp_path / "big.h5", n, seed=3)

    def refuse(*args, **kwargs):
        raise AssertionError("read every id or catalogue value")

    monkeypatch.setattr(ObjectIds, "load", refuse)
    monkeypatch.setattr(ObjectIds, "__array__", refuse)
    monkeypatch.setattr(ObjectIds, "__iter__", refuse)
    monkeypatch.setattr(ObjectFile, "objects", property(refuse))
    monkeypatch.setattr(OnDiskColumn, "__array__", refuse)

    w = gui_qt.open_window(qtbot, path, gui_settings)
    ex = w.explorer
    assert ex.n == n
    model = w.candidates.model
    assert model.rowCount() == n and model.n_objects == n
    names = model.column_names
    order = ex.session.ranking
    for row in (0, 1, n // 2, n - 1):                 # cells read from the store, page by page
        obj = int(order[row])
        assert model.data(model.index(row, names.index("id")), QtCore.Qt.ItemDataRole.ToolTipRole) == objects.ids[obj]
        assert model.data(model.index(row, names.index("kind"))) == objects.columns["kind"][obj]
        assert model.data(model.index(row, names.index("mag"))) == f"{objects.columns['mag'][obj]:.3f}"
    # sorted by id through the index, by a number through the column read once
    model.sort(names.index("id"))
    first = [model.data(model.index(r, names.index("id")), QtCore.Qt.ItemDataRole.ToolTipRole) for r in range(5)]
    assert first == sorted(objects.ids.tolist())[:5]
    model.sort(names.index("mag"), QtCore.Qt.SortOrder.DescendingOrder)
    assert int(model.visible_indices[0]) == int(np.argmax(objects.columns["mag"]))
    # the id filter past ID_SCAN_MAX: by prefix through the index
    monkeypatch.setattr("galexplorer.gui.candidates.ID_SCAN_MAX", 1000)
    w.candidates.text.setText(objects.ids[1234])
    w.candidates.apply_filter()
    assert 1234 in model.visible_indices.tolist()
    assert all(objects.ids[i].startswith(objects.ids[1234]) for i in model.visible_indices)
    # hover card, inspector, position, search by id
    assert ex.describe(777)[0] == objects.ids[777]
    details = dict(ex.details(777))
    assert details["kind"] == objects.columns["kind"][777] and details["mag"] == objects.columns["mag"][777]
    assert ex.position(777) == (objects.ra[777], objects.dec[777])
    assert ex.index_of(objects.ids[4321]) == 4321 and ex.index_of("no-such") is None
    # a score goes to the journal under the right id, and comes back as that row's label
    ex.open(4321)
    ex.score(4)
    assert ex.labels[4321] == 4 and ex.session.journal.label_of(objects.ids[4321], "tester") == 4
    w.close()


def test_top_n_reads_only_its_rows_and_equals_the_head_of_the_full_export(small, tmp_path, monkeypatch):
    from galexplorer.cli import main
    from galexplorer.labels import LabelJournal

    path, objects = small
    with LabelJournal.for_store(path, user="u") as j:
        j.score(objects.ids[10], 5)
        j.score(objects.ids[11], 0)
        j.exclude([objects.ids[12]])
    assert main(["rank", str(path)]) == 0
    assert main(["export", str(path), "-o", str(tmp_path / "all.csv")]) == 0
    full = (tmp_path / "all.csv").read_text(encoding="utf-8").splitlines()

    def refuse(*args, **kwargs):
        raise AssertionError("read every id or catalogue value")

    with monkeypatch.context() as m:          # --top 25 of 3000: only its rows are read
        for name in ("load", "__array__", "compact"):
            m.setattr(ObjectIds, name, refuse)
        for name in ("__array__", "compact"):
            m.setattr(OnDiskColumn, name, refuse)
        assert main(["export", str(path), "-o", str(tmp_path / "top.csv"), "--top", "25"]) == 0
        assert main(["export", str(path), "-o", str(tmp_path / "top.xml"), "--top", "25"]) == 0
    top = (tmp_path / "top.csv").read_text(encoding="utf-8").splitlines()
    assert top == full[:26]
    assert "Ωmega-ü" in "\n".join(full)
    from astropy.table import Table

    t = Table.read(tmp_path / "top.xml", format="votable")
    assert [str(v) for v in t["id"]] == [line.split(",")[0] for line in full[1:26]]


def test_ranking_top_is_the_head_of_the_order():
    from galexplorer.store.ranking import Ranking, Scores

    rng = np.random.default_rng(0)
    rank = rng.permutation(1000) + 1
    r = Ranking(Scores(*(np.zeros(1000, np.float32),) * 3, "s", "ei", 0), rank, 0.5, "", "u")
    for k in (0, 1, 17, 1000, 5000):
        np.testing.assert_array_equal(r.top(k), r.order[:k])
    r.rank[:2] = 1    # not a permutation (a damaged sidecar): still the head of the order
    np.testing.assert_array_equal(r.top(10), r.order[:10])


def test_overview_grid_bins_like_the_points():
    from galexplorer.gui.density import OverviewGrid, SortedPoints, ViewRect, bin_view

    rng = np.random.default_rng(2)
    xy = rng.normal(0, 3, (400_000, 2)).astype(np.float32)
    xy[:5] = np.nan
    pts = SortedPoints(xy)
    grid = OverviewGrid(pts, size=512)
    rect = ViewRect(-14.0, 14.0, -10.0, 10.0)
    w, h = 300, 200
    assert grid.covers(rect, w, h) and not grid.covers(ViewRect(-1.0, 1.0, -1.0, 1.0), w, h)
    assert grid.level(rect, w, h) == 1 and grid.level(ViewRect(-28.0, 28.0, -20.0, 20.0), w, h) == 2
    weights = np.stack([pts.sorted_values(np.nan_to_num(xy[:, 0])), np.ones(len(xy), np.float32)])
    sel = pts.sorted_values(np.arange(len(xy)) % 9 == 0)

    def blur(a, k=5):   # a k x k box: what a displacement of a pixel cannot change much
        p = np.pad(a, k // 2)
        return sum(p[i:i + a.shape[0], j:j + a.shape[1]] for i in range(k) for j in range(k))

    for view in (rect, ViewRect(-28.0, 28.0, -20.0, 20.0)):    # the grid, and its 2x2 level
        exact = bin_view(pts, view, w, h, weights, sel)
        approx = grid.bin(view, w, h, weights, sel)
        assert abs(approx.n_in_view - exact.n_in_view) <= 0.002 * exact.n_in_view
        for a, b in ((exact.count, approx.count), (exact.selected, approx.selected),
                     (exact.sums[1], approx.sums[1]), (exact.sums[0], approx.sums[0])):
            assert abs(a.sum() - b.sum()) <= 0.002 * np.abs(a).sum() + 1e-3
        dense = blur(exact.count) >= 400      # where Poisson noise is small
        assert dense.sum() > 1000
        np.testing.assert_allclose(blur(approx.count)[dense], blur(exact.count)[dense], rtol=0.12)
    # no stripes: on a uniform cloud the column and row totals vary as little as the exact ones
    # (a cell given whole to one pixel makes pixels of one or two cells' width in turn: +-50%)
    flat = SortedPoints(rng.uniform(0, 10, (600_000, 2)).astype(np.float32))
    g2 = OverviewGrid(flat, size=512)
    view = ViewRect(1.0, 9.0, 1.0, 9.0)
    for px in (300, 370):
        e, a = bin_view(flat, view, px, px).count, g2.bin(view, px, px).count
        for axis in (0, 1):
            ce, ca = e.sum(axis), a.sum(axis)
            assert ca.std() / ca.mean() <= 1.5 * ce.std() / ce.mean() + 0.005
    # the weights are gridded once per colouring, the selection once per selection
    assert grid.sums(weights) is grid.sums(weights)
