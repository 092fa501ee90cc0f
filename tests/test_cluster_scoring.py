"""``rank``/``export``/``simulate --cluster``: the GP's mean and std of every object and the
export's text, in row blocks on a LocalCluster of two workers, equal the single-process ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from active_synthetic import planted, restore_cli_logging, write_store

pytest.importorskip("distributed")

from galexplorer import export as export_mod  # noqa: E402
from galexplorer.active import cluster_scoring  # noqa: E402
from galexplorer.active.features import standardise  # noqa: E402
from galexplorer.active.gp import GaussianProcessRegressor  # noqa: E402
from galexplorer.active.loop import ActiveLoop, LoopConfig  # noqa: E402
from galexplorer.cli import main  # noqa: E402
from galexplorer.explore import cluster  # noqa: E402
from galexplorer.labels import LabelJournal  # noqa: E402
from galexplorer.store import EmbeddingStore  # noqa: E402
from galexplorer.store.ranking import read_ranking  # noqa: E402

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture(scope="module")
def client():
    with cluster.connect("local:2") as c:
        yield c


@pytest.fixture
def small_blocks(monkeypatch):
    """Every pass on the cluster, in several blocks, however small the test store; returns the
    names of the block functions that ran on the workers."""
    monkeypatch.setattr(cluster_scoring, "CLUSTER_MIN_ROWS", 0)
    monkeypatch.setattr(cluster_scoring, "BLOCK_ROWS", 97)
    monkeypatch.setattr(export_mod, "CHUNK_ROWS", 53)
    ran: list[str] = []

    def spy(real):
        def map_blocks(client, func, *args, **kw):
            ran.append(func.__name__)
            yield from real(client, func, *args, **kw)
        return map_blocks

    monkeypatch.setattr(cluster_scoring, "map_blocks", spy(cluster_scoring.map_blocks))
    monkeypatch.setattr(export_mod, "map_blocks", spy(export_mod.map_blocks))
    return ran


@pytest.fixture
def labelled_store(tmp_path):
    emb, rare, truth = planted(400)
    path = write_store(tmp_path / "s.h5", emb, {"truth": truth,
                                                "note": np.array(["=x", "a,b"] * 200, dtype=object)})
    with LabelJournal.for_store(path, user="u") as j:
        for i in list(range(0, 400, 23)) + [int(r) for r in np.flatnonzero(rare)[:3]]:
            j.score(f"obj{i:05d}", int(round(5 * truth[i])))
    return path


def test_gp_mean_and_std_in_blocks_equal_one_process(client):
    rng = np.random.default_rng(0)
    X = standardise(rng.standard_normal((1000, 6)), "global")
    rows = rng.choice(1000, 40, replace=False)
    h = rng.uniform(0, 5, 1000).astype(np.float32)
    gp = GaussianProcessRegressor().fit(X[rows], rng.uniform(0, 5, 40), mean_covariate=h[rows])
    mean = cluster_scoring.predict_mean_on_cluster(client, gp, X, h, block_rows=128)
    np.testing.assert_allclose(mean, gp.predict_mean(X, mean_covariate=h), rtol=1e-6, atol=1e-6)
    some = rng.permutation(1000)[:700]
    std = cluster_scoring.predict_std_on_cluster(client, gp, X, some, block_rows=128)
    np.testing.assert_allclose(std, gp.predict_std(X, some), rtol=1e-6, atol=1e-7)
    every = cluster_scoring.predict_std_on_cluster(client, gp, X, block_rows=128)     # rows None: all
    np.testing.assert_allclose(every, gp.predict_std(X), rtol=1e-6, atol=1e-7)


def test_prefiltered_refit_completes_mean_and_std_on_the_cluster(client, labelled_store, small_blocks):
    def fit(on):
        with EmbeddingStore(labelled_store) as store, LabelJournal.for_store(labelled_store, readonly=True) as j:
            from galexplorer.active.snapshot import label_snapshot

            loop = ActiveLoop(store, LoopConfig(scorer="gp-anomaly"))
            loop.scorer.prefilter_min_rows = 0          # the low-rank mean: completed in blocks
            labelled, labels, excluded = label_snapshot(store, j).fit_inputs("gp-anomaly")
            with cluster.scoring_on(on) if on else _null():
                result = loop.fit(labelled, labels, excluded)
                assert not result.mean_complete
                return result.complete_std()

    one, two = fit(None), fit(client)
    np.testing.assert_allclose(two.mean, one.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(two.std, one.std, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(two.order, one.order)
    assert {"_mean_block", "_std_block"} <= set(small_blocks)


def _null():
    import contextlib

    return contextlib.nullcontext()


def test_rank_and_export_cli_on_a_cluster_equal_one_process(client, labelled_store, small_blocks, tmp_path):
    store = str(labelled_store)
    on = ["--cluster", client.scheduler.address]
    assert main(["-q", "rank", store, "--scorer", "gp"]) == 0
    with EmbeddingStore(store) as s:
        one = read_ranking(s.path, s.uuid, s.n)
    assert main(["-q", "export", store, "-o", str(tmp_path / "one.csv")]) == 0
    assert main(["-q", "export", store, "-o", str(tmp_path / "one.xml")]) == 0
    assert main(["-q", "rank", store, "--scorer", "gp"] + on) == 0
    with EmbeddingStore(store) as s:
        two = read_ranking(s.path, s.uuid, s.n)
    np.testing.assert_allclose(two.mean, one.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(two.std, one.std, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(two.rank, one.rank)
    assert two.info["cluster"].endswith("2 workers") and "cluster" not in one.info
    assert set(small_blocks) == {"_std_block"}   # below the pre-filter's size the refit's pass gives the mean
    small_blocks.clear()
    assert main(["-q", "export", store, "-o", str(tmp_path / "two.csv")] + on) == 0
    assert main(["-q", "export", store, "-o", str(tmp_path / "two.xml")] + on) == 0
    # the CSV text formatted on the workers is byte for byte the same (the mean/std columns may
    # differ in their last float32 digit between the two rankings: compare the same ranking)
    assert main(["-q", "export", store, "-o", str(tmp_path / "two-local.csv")]) == 0
    assert (tmp_path / "two.csv").read_bytes() == (tmp_path / "two-local.csv").read_bytes()
    assert main(["-q", "export", store, "-o", str(tmp_path / "two-local.xml")]) == 0
    assert (tmp_path / "two.xml").read_bytes() == (tmp_path / "two-local.xml").read_bytes()
    assert small_blocks == ["_csv_rows", "_votable_rows"]
    meta = json.loads((tmp_path / "two.csv.json").read_text())
    assert meta["scorer_info"]["cluster"].endswith("2 workers")


def test_simulate_cli_on_a_cluster_equals_one_process(client, labelled_store, small_blocks, tmp_path):
    common = ["-q", "simulate", str(labelled_store), "--truth", "truth", "--budget", "30", "--batch", "10",
              "--scorer", "gp"]
    assert main(common + ["-o", str(tmp_path / "one.csv")]) == 0
    assert main(common + ["-o", str(tmp_path / "two.csv"), "--cluster", client.scheduler.address]) == 0
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "two.csv").read_text()
    assert "_std_block" in small_blocks         # the remaining-count estimate's std of every object


def test_rank_on_an_unreachable_scheduler_is_one_line_exit_2(monkeypatch, labelled_store, capsys):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    code = main(["rank", str(labelled_store), "--cluster", "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot reach the Dask scheduler" in err and len(err.splitlines()) == 1


def _build(path, x, on, **options):
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store import ObjectTable

    n = len(x)
    objects = ObjectTable(np.array([f"o{i}" for i in range(n)], dtype=object), np.zeros(n), np.zeros(n), {})
    cfg = EmbedConfig(projection="umap", umap_fit_sample=600, n_clusters=6, cluster_fit_sample=500,
                      iforest_trees=50, similarity_index="none", features="none", **options)
    with cluster.scoring_on(on) if on else _null():
        build_store(path, objects=objects, dim=x.shape[1], fill=x, config=cfg)


@pytest.mark.slow     # two UMAP fits of 600 rows
def test_embed_analysis_on_a_cluster_equals_one_process(client, tmp_path, monkeypatch):
    from sklearn.manifold import trustworthiness

    from galexplorer.explore import anomaly, clustering, pipeline, projection

    monkeypatch.setattr(anomaly, "SCORE_CHUNK", 331)          # several blocks per stage
    monkeypatch.setattr(clustering, "PREDICT_CHUNK", 257)
    monkeypatch.setattr(projection, "TRANSFORM_CHUNK", 299)
    monkeypatch.setattr(pipeline, "PCA_BLOCK_ROWS", 313)
    ran = []
    real = cluster.map_blocks

    def spy(c, func, *a, **kw):
        ran.append(func.__name__)
        yield from real(c, func, *a, **kw)

    for mod in (anomaly, clustering, projection, pipeline):
        monkeypatch.setattr(mod, "map_blocks", spy)
    emb, _, _ = planted(2000, dim=12)
    _build(tmp_path / "one.h5", emb, None)
    assert ran == []

    def not_here(*a, **kw):
        raise AssertionError("the UMAP fit ran on the client")

    # the workers import their own projection module: only the client's copy refuses to fit
    monkeypatch.setattr(projection, "_fit_sample_layout", not_here)
    _build(tmp_path / "two.h5", emb, client)
    assert ran == ["_transform_stored_block", "_extend_block", "_score_block", "_predict_block"]
    with EmbeddingStore(tmp_path / "one.h5") as a, EmbeddingStore(tmp_path / "two.h5") as b:
        np.testing.assert_array_equal(b.score("anomaly"), a.score("anomaly"))      # exact
        np.testing.assert_array_equal(b.score("cluster"), a.score("cluster"))
        np.testing.assert_array_equal(b.pca, a.pca)
        xa, xb = a.file["projection"][:], b.file["projection"][:]
        feats = np.asarray(a.pca)
    ev = np.arange(0, 2000, 2)
    tw = [trustworthiness(feats[ev], xy[ev], n_neighbors=15) for xy in (xa, xb)]
    assert abs(tw[0] - tw[1]) <= 0.01, tw
    np.testing.assert_allclose(xb, xa, rtol=1e-5, atol=1e-5)      # in fact the same placement


@pytest.mark.parametrize("rows_from", ["workers read the store", "client sends the rows"])
def test_pca_transform_in_blocks_equals_one_process(client, tmp_path, monkeypatch, rows_from):
    """The PCA transform of a store still being written (open here for writing), in blocks on
    the workers: each reads its rows from the store, or (no shared filesystem) is sent them."""
    import h5py

    from galexplorer.explore import pipeline
    from galexplorer.explore.pca import CovarianceAccumulator

    monkeypatch.setattr(pipeline, "PCA_BLOCK_ROWS", 700)
    if rows_from == "client sends the rows":
        monkeypatch.setattr(pipeline, "shared_rows", lambda client, dataset: None)
    ran = []
    real = cluster.map_blocks

    def spy(c, func, *a, **kw):
        ran.append(func.__name__)
        yield from real(c, func, *a, **kw)

    monkeypatch.setattr(pipeline, "map_blocks", spy)
    x = np.random.default_rng(1).normal(size=(3001, 24)).astype(np.float32) * np.arange(1, 25, dtype=np.float32)
    acc = CovarianceAccumulator(24)
    acc.add(x)
    model = acc.fit(0.9, True, None)
    with h5py.File(tmp_path / "s.h5.tmp", "w") as f:
        emb = f.create_dataset("embeddings", data=x, chunks=(512, 24))
        one = pipeline.pca_transform(emb, model)
        with cluster.scoring_on(client):
            two = pipeline.pca_transform(emb, model)
        f.create_dataset("after", data=[1])         # the store is still writable after the workers read it
    assert ran == ["_transform_stored_block" if rows_from == "workers read the store" else "_transform_block"]
    assert one.shape == (3001, model.n_components) and one.dtype == np.float32
    np.testing.assert_array_equal(two, one)


def test_shared_rows_is_none_when_a_worker_reads_other_rows(client, tmp_path, monkeypatch):
    """A worker that cannot open the file, or sees other bytes there (a stale copy on its own
    disk), makes the client send the rows."""
    import h5py

    with h5py.File(tmp_path / "a.h5", "w") as f:
        dset = f.create_dataset("embeddings", data=np.arange(40, dtype=np.float32).reshape(10, 4))
        assert cluster.shared_rows(client, dset) == (str((tmp_path / "a.h5").resolve()), "/embeddings")
        monkeypatch.setattr(cluster, "_rows_digest", lambda path, name, at: "another file")
        assert cluster.shared_rows(client, dset) is None


def test_embed_embeddings_file_on_a_cluster_equals_one_process(client, xdf_cutouts, tmp_path, monkeypatch):
    from galexplorer.explore import anomaly, clustering
    from galexplorer.info import describe as describe_file

    monkeypatch.setattr(anomaly, "SCORE_CHUNK", 10)
    monkeypatch.setattr(clustering, "PREDICT_CHUNK", 7)
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(48, 16)).astype(np.float32))
    common = ["-q", "embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "emb.npy"), "--projection", "pca"]
    assert main(common + ["-o", str(tmp_path / "one.h5")]) == 0
    assert main(common + ["-o", str(tmp_path / "two.h5"), "--cluster", client.scheduler.address]) == 0
    with EmbeddingStore(tmp_path / "one.h5") as a, EmbeddingStore(tmp_path / "two.h5") as b:
        np.testing.assert_array_equal(b.score("anomaly"), a.score("anomaly"))
        np.testing.assert_array_equal(b.score("cluster"), a.score("cluster"))
    assert describe_file(tmp_path / "two.h5")["cluster"].endswith("2 workers")
    assert main(["-q", "embed", str(xdf_cutouts), "--run", "r", "-o", str(tmp_path / "x.h5"), "--shard", "0/2",
                 "--cluster", "local:1"]) == 2


def _slow_sum(shared, block):
    import time

    time.sleep(0.2)
    return float(np.sum(block) + shared)


@pytest.mark.slow
def test_blocks_survive_a_killed_worker():
    import os
    import signal

    x = np.arange(4000, dtype=np.float64)
    with cluster.connect("local:2") as c:
        victim = sorted(c.scheduler_info()["workers"])[0]
        pid = c.run(os.getpid, workers=[victim])[victim]
        got = []
        for a, b, s in cluster.map_blocks(c, _slow_sum, len(x), 250, lambda a, b: (x[a:b],), shared=(1.0,)):
            if not got:
                os.kill(pid, signal.SIGKILL)     # the other blocks in flight or queued
            got.append((a, b, s))
    assert [(a, b) for a, b, _ in got] == [(a, min(a + 250, 4000)) for a in range(0, 4000, 250)]
    assert [s for _, _, s in got] == [float(np.sum(x[a:b]) + 1.0) for a, b, _ in got]


@pytest.mark.slow
def test_blocks_survive_a_worker_lost_with_the_only_copy_of_the_shared_input():
    """Dask's memory manager may keep a broadcast input on one worker only: losing that worker
    cancels every block needing it ("already forgotten"). map_blocks sends the input again."""
    import os
    import signal

    x = np.arange(4000, dtype=np.float64)
    with cluster.connect("local:2") as c:
        victim = sorted(c.scheduler_info()["workers"])[0]
        pid = c.run(os.getpid, workers=[victim])[victim]
        real_scatter, sent = c.scatter, []

        def scatter_to_the_victim(obj, **kw):      # the first time, one copy, on the victim
            sent.append(obj)
            if len(sent) == 1:
                return real_scatter(obj, workers=[victim], hash=False)
            return real_scatter(obj, **kw)

        c.scatter = scatter_to_the_victim
        got = []
        for a, b, s in cluster.map_blocks(c, _slow_sum, len(x), 250, lambda a, b: (x[a:b],), shared=(1.0,)):
            if not got:
                os.kill(pid, signal.SIGKILL)
            got.append((a, b, s))
    assert len(sent) >= 2                         # it was sent again
    assert [(a, b) for a, b, _ in got] == [(a, min(a + 250, 4000)) for a in range(0, 4000, 250)]
    assert [s for _, _, s in got] == [float(np.sum(x[a:b]) + 1.0) for a, b, _ in got]


@pytest.mark.parametrize("rows_from", ["workers read the store", "client sends the rows"])
def test_similarity_index_encoded_on_workers_equals_one_process(client, tmp_path, monkeypatch, rows_from):
    """The IVF-SQ8 index trained here, its rows encoded in blocks on the workers and appended in
    order: the same index file, byte for byte, as one process's ``add``."""
    import faiss
    import h5py

    from galexplorer.explore import similarity
    from galexplorer.explore.ann import faiss_threads

    if rows_from == "client sends the rows":
        monkeypatch.setattr(similarity, "shared_rows", lambda client, dataset: None)
    ran = []
    real = cluster.map_blocks

    def spy(c, func, *a, **kw):
        ran.append(func.__name__)
        yield from real(c, func, *a, **kw)

    monkeypatch.setattr(similarity, "map_blocks", spy)
    emb, _, _ = planted(6000, dim=16)
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("embeddings", data=emb.astype(np.float32), chunks=(256, 16))
    blobs = []
    for on in (None, client):
        # one faiss thread here, as on each worker: a row within rounding of two cells goes to
        # the one that faiss's BLAS partition (threads x block) picks; the same partition, the same cell
        with h5py.File(tmp_path / "s.h5", "r") as f, cluster.scoring_on(on) if on else _null(), \
                faiss_threads(1):
            path = similarity.build_ann_index(f["embeddings"], tmp_path / f"{len(blobs)}.h5", "u", seed=3,
                                              chunk_rows=1009)
        blobs.append(path.read_bytes())
    assert ran == ["_encode_stored_block" if rows_from == "workers read the store" else "_encode_block"]
    index = faiss.read_index(str(path))
    assert index.ntotal == 6000 and faiss.extract_index_ivf(index).nlist == 77
    assert blobs[1] == blobs[0]
