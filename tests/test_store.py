"""The cutouts file and the embedding store: round trips, atomic writing, validation on open."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from xdf import BANDS, xdf_stamps

from galexplorer.data.thumbnails import make_thumbnails
from galexplorer.errors import StoreError
from galexplorer.store import CutoutStore, CutoutWriter, EmbeddingStore, EmbeddingStoreWriter, ObjectTable
from galexplorer.store.schema import SCHEMA_VERSION


def test_cutouts_round_trip(xdf_cutouts):
    stamps, ids = xdf_stamps(48, 32)
    with CutoutStore(xdf_cutouts) as cut:
        assert cut.n == 48 and cut.bands == BANDS and cut.size == 32
        assert list(cut.ids) == ids
        np.testing.assert_array_equal(cut.read(slice(0, 48)), stamps)
        np.testing.assert_array_equal(cut.read(np.array([5, 1, 3])), stamps[[5, 1, 3]])
        np.testing.assert_array_equal(cut.read([4, 4, 0]), stamps[[4, 4, 0]])
        assert cut.read([]).shape == (0, 3, 32, 32)
        assert cut.thumbnails.shape == (48, 32, 32, 3) and cut.thumbnails.dtype == np.uint8
        assert set(cut.column_names) == {"peak", "kind"}
        assert cut.column("kind").dtype == object
        assert np.all(np.abs(cut.objects.ra - 53.16) < 0.1)
        batches = list(cut.iter_batches(20))
        assert [a for a, _ in batches] == [0, 20, 40] and sum(len(b) for _, b in batches) == 48
    # readable with plain h5py as documented
    with h5py.File(xdf_cutouts, "r") as f:
        assert f.attrs["format"] == "galexplorer-cutouts" and f.attrs["version"] == SCHEMA_VERSION
        assert f["objects/id"].asstr()[0] == "XDF0000"
        assert f["images"].shape == (48, 3, 32, 32)


def _blank(n: int, t: int = 64) -> np.ndarray:
    return np.zeros((n, t, t, 3), np.uint8)


def test_writer_rejects_duplicates_and_leaves_nothing(tmp_path):
    stamps, _ = xdf_stamps(4, 32)
    out = tmp_path / "dup.h5"
    with pytest.raises(StoreError, match="duplicate object id 'a'"):
        with CutoutWriter(out, BANDS, 32) as w:
            w.add(stamps[:2], ["a", "b"], thumbnails=_blank(2))
            w.add(stamps[2:], ["c", "a"], thumbnails=_blank(2))
    assert list(tmp_path.iterdir()) == []


def test_writer_interrupted_leaves_old_file(tmp_path, xdf_cutouts):
    out = tmp_path / "x.h5"
    out.write_bytes(xdf_cutouts.read_bytes())
    before = out.read_bytes()
    stamps, ids = xdf_stamps(4, 32)
    with pytest.raises(KeyboardInterrupt):
        with CutoutWriter(out, BANDS, 32) as w:
            w.add(stamps, ids, thumbnails=make_thumbnails(stamps, BANDS, w.thumb_size))
            raise KeyboardInterrupt
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5"]


def test_writer_empty_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="no objects"):
        with CutoutWriter(tmp_path / "e.h5", BANDS, 32):
            pass
    assert not (tmp_path / "e.h5").exists()


def test_writer_rejects_nan_and_wrong_shape(tmp_path):
    stamps, ids = xdf_stamps(2, 32)
    bad = stamps.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(StoreError, match="NaN"):
        with CutoutWriter(tmp_path / "n.h5", BANDS, 32) as w:
            w.add(bad, ids, thumbnails=_blank(2))
    with pytest.raises(StoreError, match="do not fit"):
        with CutoutWriter(tmp_path / "s.h5", ["r"], 32) as w:
            w.add(stamps, ids, thumbnails=_blank(len(ids)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    ("missing", "no such file"),
    ("text", "not an HDF5 file"),
    ("truncated", "truncated|not an HDF5"),
    ("future", "newer than this galexplorer"),
    ("foreign", "not a galexplorer cutouts file"),
    ("store", "this is an embedding store"),
    ("lengths", "inconsistent"),
    ("dupids", "duplicate object ids"),
])
def test_open_validation(tmp_path, xdf_cutouts, damage, message):
    path = tmp_path / "c.h5"
    if damage == "text":
        path.write_text("hello")
    elif damage == "truncated":
        data = xdf_cutouts.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif damage == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif damage == "store":
        objects = ObjectTable(np.array(["a", "b"], dtype=object), None, None)
        with EmbeddingStoreWriter(path, objects) as w:
            w.write("embeddings", np.zeros((2, 4), np.float32))
    elif damage != "missing":
        path.write_bytes(xdf_cutouts.read_bytes())
        with h5py.File(path, "r+") as f:
            if damage == "future":
                f.attrs["version"] = SCHEMA_VERSION + 1
            elif damage == "lengths":
                f["objects/ra"].resize(10, axis=0)
            elif damage == "dupids":
                f["objects/id"][1] = f["objects/id"][0]
    with pytest.raises(StoreError, match=message) as info:
        CutoutStore(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_embedding_store_round_trip(tmp_path, xdf_cutouts):
    with CutoutStore(xdf_cutouts) as cut:
        objects = cut.objects
        out = tmp_path / "store.h5"
        emb = np.random.default_rng(1).normal(size=(cut.n, 8)).astype(np.float32)
        with EmbeddingStoreWriter(out, objects, attrs={"cutouts_path": str(xdf_cutouts),
                                                       "cutouts_uuid": cut.uuid, "bands": cut.bands}) as w:
            w.copy_thumbnails(cut.thumbnails, batch=10)
            d = w.create("embeddings", emb.shape, np.float32, attrs={"method": "byol", "config": {"a": 1}})
            d[:] = emb
            w.write("projection", emb[:, :2], attrs={"method": "umap"})
            w.write("scores/anomaly", emb[:, 0])
    with EmbeddingStore(out) as s:
        assert s.n == 48 and list(s.ids) == list(objects.ids)
        np.testing.assert_array_equal(s.load_embeddings(), emb)
        assert s.dataset_attrs("embeddings")["config"] == {"a": 1}
        assert s.score_names == ["anomaly"] and s.projection.shape == (48, 2)
        assert s.has("thumbnails") and not s.has("pca")
        with pytest.raises(StoreError, match="no pca"):
            _ = s.pca
        cut2 = s.open_cutouts()
        assert cut2 is not None and cut2.uuid == s.attrs["cutouts_uuid"]
        cut2.close()


def test_embedding_store_wrong_rows_is_refused(tmp_path):
    objects = ObjectTable(np.array(["a", "b", "c"], dtype=object), None, None)
    with pytest.raises(StoreError, match="rows"):
        with EmbeddingStoreWriter(tmp_path / "s.h5", objects) as w:
            w.write("pca", np.zeros((2, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where, message", [
    ("under_a_file", "a file is in the way"),
    ("folder", "is a folder"),
    ("unwritable", "cannot write the file here"),
])
def test_unwritable_outputs_are_one_line_errors(tmp_path, where, message):
    from galexplorer.store.atomic import atomic_output

    (tmp_path / "afile").write_text("x")
    out = {"under_a_file": tmp_path / "afile" / "c.h5", "folder": tmp_path,
           "unwritable": Path("/proc/galexplorer-test.h5")}[where]
    if where == "unwritable" and not Path("/proc").is_dir():
        pytest.skip("needs Linux /proc")
    stamps, ids = xdf_stamps(2, 32)
    with pytest.raises(StoreError, match=message) as info:
        with CutoutWriter(out, BANDS, 32) as w:
            w.add(stamps, ids, thumbnails=_blank(len(ids)))
    assert "\n" not in str(info.value) and ".tmp-" not in str(info.value)
    with pytest.raises(StoreError, match=message):
        with atomic_output(out) as tmp:
            tmp.write_text("x")
