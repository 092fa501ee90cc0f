"""Survey scale (issue 14), the embed path: the fit sample's neighbour graph from faiss, numba's
on-disk cache for umap, and ``bench_survey.py --reuse``. The figures come from
benchmarks/bench_survey.py and benchmarks/bench_similarity.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from galexplorer.explore.ann import build_index
from galexplorer.explore.projection import sample_knn_graph

ROOT = Path(__file__).resolve().parents[1]


def _brute_knn(x: np.ndarray, k: int) -> np.ndarray:
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


def test_sample_graph_is_the_exact_knn_graph_below_the_ivf_size():
    x = np.random.default_rng(0).normal(size=(1500, 5)).astype(np.float32)
    ids, dist, search_index = sample_knn_graph(build_index(x, "l2"), x, 10)
    assert search_index is None and ids.dtype == np.int32 and dist.dtype == np.float32
    assert ids.shape == dist.shape == (1500, 10)
    np.testing.assert_array_equal(ids[:, 0], np.arange(1500))   # each row first, at distance 0
    assert np.all(dist[:, 0] == 0) and np.all(np.diff(dist, axis=1) >= -1e-6)
    ref = _brute_knn(x.astype(np.float64), 10)
    assert np.mean(ids == ref) > 0.99   # the same graph (float32 near-ties aside)
    np.testing.assert_allclose(dist[:, 1], np.linalg.norm(x - x[ids[:, 1]], axis=1), rtol=1e-4, atol=1e-5)


def test_sample_graph_from_the_ivf_index_has_each_row_once_and_first():
    x = np.random.default_rng(1).normal(size=(25000, 4)).astype(np.float32)
    x[1] = x[0]                      # a duplicate: row 0 must still be first for row 0 (distance 0 tie)
    index = build_index(x, "l2")
    assert hasattr(index, "nprobe")  # the IVF path, not the flat one
    ids, dist, _ = sample_knn_graph(index, x, 15)
    np.testing.assert_array_equal(ids[:, 0], np.arange(25000))
    assert ids[0, 1] == 1 and ids[1, 1] == 0 and dist[0, 1] == 0
    assert not np.any(ids[:, 1:] == np.arange(25000)[:, None])
    sample = np.arange(0, 25000, 250)
    brute = np.argsort(((x[sample, None, :] - x[None, :, :]) ** 2).sum(-1), axis=1, kind="stable")[:, :15]
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(ids[sample], brute)])
    assert recall > 0.95, recall


@pytest.mark.slow   # UMAP's 500 epochs on 4 500 rows (and numba's compilation on a first run)
def test_projection_uses_the_faiss_graph_and_keeps_neighbourhoods():
    from sklearn.manifold import trustworthiness

    from galexplorer.explore.projection import UMAP_EXACT_ROWS, project_2d

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (6, 8))
    x = (centres[np.arange(6000) % 6] + rng.normal(0, 1, (6000, 8))).astype(np.float32)
    xy, info = project_2d(x, fit_sample=4500, return_info=True)
    assert 4500 >= UMAP_EXACT_ROWS and info["knn_graph"] == "faiss" and info["extend"] == "knn"
    assert np.isfinite(xy).all() and xy.shape == (6000, 2)
    ev = np.arange(0, 6000, 3)
    # measured on this data: 0.8718 with the faiss graph, 0.8720 with UMAP's own NN-descent graph
    assert trustworthiness(x[ev], xy[ev], n_neighbors=15) > 0.86
    again = project_2d(x, fit_sample=4500)
    np.testing.assert_array_equal(xy, again)   # same seed, same layout


def test_umap_compilation_is_cached_on_disk():
    import umap.umap_ as u
    from numba.core.caching import NullCache

    from galexplorer.explore.projection import cache_umap_compilation

    cache_umap_compilation()
    assert cache_umap_compilation() == 0                 # once per process
    assert not isinstance(u.smooth_knn_dist._cache, NullCache)
    d = np.sort(np.random.default_rng(0).random((50, 5)).astype(np.float32), axis=1)
    u.smooth_knn_dist(d, 5.0)
    # the machine code is now on disk (umap/__pycache__, NUMBA_CACHE_DIR or numba's user folder)
    folder = Path(u.smooth_knn_dist._cache._cache_path)
    assert list(folder.glob("*smooth_knn_dist*.nbi")) and list(folder.glob("*smooth_knn_dist*.nbc"))


def test_bench_survey_reuse_reruns_only_the_chosen_stages(tmp_path, monkeypatch):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_survey

    calls: list[str] = []

    def fake_data(folder, n, seed=0):
        calls.append("data")
        np.save(folder / "emb.npy", np.zeros((n, bench_survey.DIM), np.float32))
        (folder / "cat.csv").write_text("id,ra,dec,mag,rare\n")
        return folder / "emb.npy", folder / "cat.csv"

    def fake_run(cmd, env=None, usage_out=None):
        calls.append(cmd[3])   # the galexplorer command
        if cmd[3] == "embed":
            Path(cmd[cmd.index("-o") + 1]).write_bytes(b"store")
            return 12.0, 1.5, "time: pca 1.0 s, projection 2.0 s"
        return 3.0, 0.5, ""

    monkeypatch.setattr(bench_survey, "make_data", fake_data)
    monkeypatch.setattr(bench_survey, "run_timed", fake_run)
    monkeypatch.setattr(bench_survey, "hover_latency", lambda store: calls.append("hover") or {"hover_ms": 1.0})
    first = bench_survey.run_size(100, tmp_path, keep=True, stages=("embed", "open"))
    assert calls == ["data", "embed", "open", "hover"] and first["stages"] == {"pca": 1.0, "projection": 2.0}
    calls.clear()
    again = bench_survey.run_size(100, tmp_path, keep=True, stages=("open",), reuse=True)
    assert calls == ["open", "hover"]                         # no new data, no embed
    assert again["embed"] == 12.0 and again["stages"]["projection"] == 2.0   # the earlier figures kept
    saved = json.loads((tmp_path / "n100" / "results.json").read_text())
    assert saved["open"] == 3.0 and saved["embed"] == 12.0
    calls.clear()
    bench_survey.run_size(100, tmp_path, keep=True, stages=("open",), reuse=False)
    assert calls == ["data", "embed", "open", "hover"]       # without --reuse everything is made again


def test_auto_index_is_sq8_and_the_explorer_maps_it(tmp_path, monkeypatch):
    import faiss

    import galexplorer.explore.similarity as sim
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store import EmbeddingStore
    from galexplorer.store.schema import ObjectTable

    monkeypatch.setattr(sim, "ANN_MIN_ROWS", 1000)   # "auto" builds the index from 1 000 objects here
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(6000, 6)) @ rng.normal(size=(6, 32)) + 0.1 * rng.normal(size=(6000, 32))).astype(np.float32)
    objects = ObjectTable(np.array([f"o{i}" for i in range(6000)], dtype=object), np.zeros(6000), np.zeros(6000))
    path = tmp_path / "s.h5"
    build_store(path, objects=objects, dim=32, fill=x, config=EmbedConfig(
        projection="pca", iforest_trees=5, n_clusters=2, cluster_fit_sample=500, similarity_index="auto"))
    meta = json.loads(Path(str(sim.ann_path(path)) + ".json").read_text())
    assert meta["factory"].endswith(",SQ8") and meta["factory"].startswith("IVF")
    with EmbeddingStore(path) as store:
        mapped = sim.index_for_store(store)
        assert isinstance(mapped, sim.ApproximateIndex)
        read = sim.ApproximateIndex(faiss.read_index(str(sim.ann_path(path))), store.embeddings)
        kind = type(faiss.downcast_InvertedLists(faiss.extract_index_ivf(mapped.index).invlists)).__name__
        assert kind == "OnDiskInvertedLists"   # the file is mapped, not copied in (read: ArrayInvertedLists)
        for q in (0, 123, 5999):
            a, sa = mapped.query(q, k=10)
            b, sb = read.query(q, k=10)
            np.testing.assert_array_equal(a, b)
            np.testing.assert_allclose(sa, sb)


@pytest.mark.parametrize("order", ["C", "F"])
def test_npy_rows_are_read_without_the_memory_map(tmp_path, order):
    from galexplorer.explore.external import ExternalEmbeddings, _open_npy

    x = np.asarray(np.random.default_rng(0).normal(size=(1000, 7)), dtype=np.float64, order=order)
    np.save(tmp_path / "e.npy", x)
    opened = _open_npy(tmp_path / "e.npy", ExternalEmbeddings(path=tmp_path / "e.npy"))
    try:
        for rows in (np.arange(0, 100), np.arange(990, 1000), np.array([5, 3, 999])):
            got = opened.read(rows)
            assert got.dtype == np.float32 and got.shape == (len(rows), 7)
            np.testing.assert_array_equal(got, x[rows].astype(np.float32))
    finally:
        opened.close()
