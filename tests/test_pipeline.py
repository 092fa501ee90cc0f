"""build_store: the embedding store after the encoder (PCA, projection, anomaly, clusters)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from galexplorer.errors import ConfigError, InputError
from galexplorer.explore.pipeline import EmbedConfig, build_store, shard_rows
from galexplorer.store import CutoutStore, EmbeddingStore


def blobs(n: int = 48, d: int = 32, seed: int = 0, outlier: int | None = 7) -> np.ndarray:
    """(n, d) float32: three well-separated Gaussian blobs (rows cycle 0,1,2), one far outlier."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (3, d))
    x = centres[np.arange(n) % 3] + rng.normal(0, 1, (n, d))
    if outlier is not None:
        x[outlier] = 40.0
    return x.astype(np.float32)


def folder_is_clean(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def built(tmp_path_factory, xdf_cutouts):
    out = tmp_path_factory.mktemp("store") / "store.h5"
    emb = blobs()
    with CutoutStore(xdf_cutouts) as cut:
        report = build_store(out, objects=cut.objects, dim=emb.shape[1], fill=emb, config=EmbedConfig(),
                             cutouts=cut, embedding_attrs={"method": "synthetic"})
    return out, emb, report


def test_store_has_every_dataset(built, xdf_cutouts):
    out, emb, report = built
    with EmbeddingStore(out) as s, CutoutStore(xdf_cutouts) as cut:
        assert s.n == 48 and list(s.ids) == list(cut.ids)
        np.testing.assert_array_equal(s.load_embeddings(), emb)
        np.testing.assert_array_equal(s.thumbnails[:], cut.thumbnails[:])
        assert s.file["objects/cutouts_row"][:].tolist() == list(range(48))
        assert s.pca.dtype == np.float32 and s.pca.shape == (48, report.n_pca)
        pa = s.dataset_attrs("pca")
        assert sum(pa["explained_variance_ratio"]) >= 0.95 > sum(pa["explained_variance_ratio"][:-1])
        assert pa["standardised"] in (False, 0) and pa["n_components"] == report.n_pca
        assert s.projection.shape == (48, 2) and np.isfinite(s.projection).all()
        assert s.dataset_attrs("projection")["method"] == "umap"
        assert s.dataset_attrs("projection")["params"]["n_neighbors"] == 15
        assert s.score("anomaly").dtype == np.float32 and s.score("cluster").dtype == np.int32
        assert s.dataset_attrs("embeddings")["method"] == "synthetic"
        assert s.json_attr("config")["pca_variance"] == 0.95
        linked = s.open_cutouts()
        assert linked is not None and linked.uuid == cut.uuid
        linked.close()
    assert "PCA:" in report.summary() and str(out) in report.summary()


def test_scores_find_the_structure(built):
    out, emb, _ = built
    with EmbeddingStore(out) as s:
        anomaly = s.score("anomaly")
        assert int(np.argmax(anomaly)) == 7          # the planted outlier
        labels = s.score("cluster")
        normal = np.array([i for i in range(48) if i != 7])
        # the three blobs are three clusters: each blob has one label, different between blobs
        blob_labels = [set(labels[normal[normal % 3 == b]]) for b in range(3)]
        assert all(len(bl) == 1 for bl in blob_labels) and len(set.union(*blob_labels)) == 3
        # the projection keeps blobs apart: every object's nearest 2-D neighbour is in its blob
        xy = s.projection[normal]
        dist = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(normal)) * 1e9
        assert np.all(normal[np.argmin(dist, axis=1)] % 3 == normal % 3)


def test_pca_matches_sklearn(built):
    from sklearn.decomposition import PCA

    out, emb, report = built
    with EmbeddingStore(out) as s:
        ref = PCA(n_components=report.n_pca).fit(emb.astype(np.float64))
        got = s.pca
        np.testing.assert_allclose(s.dataset_attrs("pca")["explained_variance_ratio"],
                                   ref.explained_variance_ratio_, rtol=1e-5)
        expect = ref.transform(emb.astype(np.float64))
        np.testing.assert_allclose(np.abs(got), np.abs(expect), atol=2e-3 * np.abs(expect).max())
        # the stored model reproduces the stored coordinates
        m = s.file["pca_model"]
        again = ((emb - m["mean"][:]) / m["scale"][:]) @ m["components"][:].T
        np.testing.assert_allclose(again, got, atol=1e-4 * np.abs(got).max())


def test_same_seed_same_store_other_seed_differs(built, tmp_path, xdf_cutouts):
    out, emb, _ = built
    with CutoutStore(xdf_cutouts) as cut:
        build_store(tmp_path / "a.h5", objects=cut.objects, dim=32, fill=emb, config=EmbedConfig(), cutouts=cut)
        build_store(tmp_path / "b.h5", objects=cut.objects, dim=32, fill=emb, config=EmbedConfig(seed=3),
                    cutouts=cut)
    with EmbeddingStore(out) as s, EmbeddingStore(tmp_path / "a.h5") as a, EmbeddingStore(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a.pca, s.pca)
        np.testing.assert_array_equal(a.projection, s.projection)
        np.testing.assert_array_equal(a.score("anomaly"), s.score("anomaly"))
        np.testing.assert_array_equal(a.score("cluster"), s.score("cluster"))
        assert not np.array_equal(b.projection, s.projection)


def test_filler_callable_and_pca_projection(tmp_path, xdf_cutouts):
    emb = blobs(seed=1)
    calls = []

    def fill(dset: h5py.Dataset) -> None:
        for a in range(0, dset.shape[0], 10):
            dset[a:a + 10] = emb[a:a + 10]
            calls.append(a)

    with CutoutStore(xdf_cutouts) as cut:
        report = build_store(tmp_path / "s.h5", objects=cut.objects, dim=32, fill=fill,
                             config=EmbedConfig(projection="pca", pca_variance=0.5), cutouts=cut)
    assert calls == [0, 10, 20, 30, 40]
    with EmbeddingStore(tmp_path / "s.h5") as s:
        np.testing.assert_array_equal(s.load_embeddings(), emb)
        assert s.dataset_attrs("projection")["method"] == "pca"
        np.testing.assert_allclose(s.projection, s.pca[:, :2], atol=1e-5)
    assert report.projection == "pca" and report.n_pca >= 2


def test_subset_rows_copy_the_right_thumbnails(tmp_path, xdf_cutouts):
    rows = np.array([1, 2, 5, 30, 47])
    with CutoutStore(xdf_cutouts) as cut:
        build_store(tmp_path / "s.h5", objects=cut.objects, dim=32, fill=blobs(5, outlier=None),
                    config=EmbedConfig(), cutouts=cut, rows=rows)
        with EmbeddingStore(tmp_path / "s.h5") as s:
            assert list(s.ids) == list(cut.ids[rows])
            np.testing.assert_array_equal(s.thumbnails[:], cut.thumbnails[:][rows])
            assert s.file["objects/cutouts_row"][:].tolist() == rows.tolist()
            assert s.cutouts_rows.tolist() == rows.tolist()
            assert s.dataset_attrs("projection")["method"] == "pca"   # 5 objects: too few for UMAP


def test_nan_row_is_a_clear_error_and_leaves_nothing(tmp_path, xdf_cutouts):
    emb = blobs()
    emb[12, 3] = np.nan
    emb[20] = np.inf
    out = tmp_path / "s.h5"
    with CutoutStore(xdf_cutouts) as cut, pytest.raises(InputError) as info:
        build_store(out, objects=cut.objects, dim=32, fill=emb, config=EmbedConfig(), cutouts=cut)
    msg = str(info.value)
    assert "'XDF0012'" in msg and "row 12" in msg and "2 such rows" in msg and "\n" not in msg
    assert folder_is_clean(tmp_path) == []


@pytest.mark.parametrize("bad, error, match", [
    (dict(fill=np.zeros((47, 32), np.float32)), InputError, "do not fit 48 objects"),
    (dict(fill=np.full((48, 32), 3.0, np.float32)), InputError, "identical"),
    (dict(config=EmbedConfig(pca_variance=1.5)), ConfigError, "variance"),
    (dict(config=EmbedConfig(projection="tsne")), ConfigError, "projection"),
    (dict(config=EmbedConfig(n_clusters=0)), ConfigError, "n_clusters"),
])
def test_bad_arguments(tmp_path, xdf_cutouts, bad, error, match):
    args = dict(fill=blobs(), config=EmbedConfig())
    args.update(bad)
    with CutoutStore(xdf_cutouts) as cut, pytest.raises(error, match=match):
        build_store(tmp_path / "s.h5", objects=cut.objects, dim=32, cutouts=cut, **args)
    assert folder_is_clean(tmp_path) == []


def test_shard_writes_only_the_block(tmp_path, xdf_cutouts):
    emb = blobs()
    with CutoutStore(xdf_cutouts) as cut:
        rows = shard_rows(cut.n, (1, 3))
        report = build_store(tmp_path / "s1.h5", objects=cut.objects, dim=32, fill=emb[rows],
                             config=EmbedConfig(), cutouts=cut, rows=rows, shard=(1, 3))
        with EmbeddingStore(tmp_path / "s1.h5") as s:
            assert s.n == 16 and list(s.ids) == list(cut.ids[16:32])
            assert s.attrs["shard"] == "1/3" and s.json_attr("shard_rows") == [16, 32]
            assert s.attrs["cutouts_uuid"] == cut.uuid
            assert not s.has("pca") and not s.has("projection") and s.score_names == []
            np.testing.assert_array_equal(s.thumbnails[:], cut.thumbnails[16:32])
    assert report.shard == "1/3" and "merge" in report.summary()
    assert [shard_rows(10, (i, 3)) for i in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert shard_rows(10, None) == slice(0, 10)


def test_store_without_cutouts(tmp_path):
    from galexplorer.store import ObjectTable

    objects = ObjectTable(np.array([f"o{i}" for i in range(48)], dtype=object), None, None)
    build_store(tmp_path / "s.h5", objects=objects, dim=32, fill=blobs(), config=EmbedConfig())
    with EmbeddingStore(tmp_path / "s.h5") as s:
        assert s.thumbnails is None and s.cutouts_path is None and s.projection.shape == (48, 2)
        assert "objects/cutouts_row" not in s.file


def test_cutouts_link_is_relative_beside_the_store(tmp_path, xdf_cutouts):
    import shutil

    (tmp_path / "data").mkdir()
    cut_copy = tmp_path / "data" / "cut.h5"
    shutil.copy(xdf_cutouts, cut_copy)
    with CutoutStore(cut_copy) as cut:
        build_store(tmp_path / "store.h5", objects=cut.objects, dim=32, fill=blobs(),
                    config=EmbedConfig(projection="pca"), cutouts=cut)
        build_store(tmp_path / "data" / "sub" / "store.h5", objects=cut.objects, dim=32, fill=blobs(),
                    config=EmbedConfig(projection="pca"), cutouts=cut)
    with EmbeddingStore(tmp_path / "store.h5") as s:
        assert s.attrs["cutouts_path"] == "data/cut.h5"
    # the pair moves together: the link still works
    shutil.move(tmp_path, tmp_path.parent / (tmp_path.name + "-moved"))
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    with EmbeddingStore(moved / "store.h5") as s:
        linked = s.open_cutouts()
        assert linked is not None
        linked.close()
    with EmbeddingStore(moved / "data" / "sub" / "store.h5") as s:
        assert s.attrs["cutouts_path"] == str(cut_copy.resolve())   # not below the store: absolute
