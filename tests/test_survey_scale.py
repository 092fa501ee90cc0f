"""Survey scale (issue 14): the analysis stages that stay cheap at 10^7 objects.

The figures at 10^6 and 10^7 come from ``benchmarks/bench_survey.py``; these tests check the
pieces on small data: the kNN extension of the projection, ...
"""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.errors import ConfigError
from galexplorer.explore.projection import knn_extend, project_2d


def clusters(n: int, d: int = 12, k: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (k, d))
    return (centres[np.arange(n) % k] + rng.normal(0, 1, (n, d))).astype(np.float32)


def test_knn_extension_reproduces_a_known_layout():
    # the layout of the sample is the features themselves: the extension must put every other
    # row close to where it is, far closer than the spread of the data
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, (30000, 2)).astype(np.float32)
    fit = np.arange(0, 30000, 3)
    rest = np.setdiff1d(np.arange(30000), fit)
    xy = knn_extend(x[fit], x[fit], x, rest, k=15, seed=0)
    err = np.linalg.norm(xy - x[rest], axis=1)
    assert np.median(err) < 0.1 and np.percentile(err, 99) < 0.3   # sample spacing ~0.1


def test_unknown_extension_is_a_config_error():
    with pytest.raises(ConfigError, match="projection extension"):
        project_2d(clusters(50), extend="magic")


def test_knn_extension_keeps_neighbourhoods_as_well_as_the_fitted_rows():
    # the placed rows keep their 15 nearest neighbours nearly as well as the rows UMAP fitted;
    # a wrong extension (each row dropped on a random fitted row) scores ~0.50 here. The
    # comparison with umap's own transform (whose numba compilation alone took ~50 s of this
    # test) is made at scale by benchmarks/bench_survey.py.
    from sklearn.manifold import trustworthiness

    x = clusters(2000)
    xy, info = project_2d(x, fit_sample=600, extend="knn", return_info=True)
    assert info["extend"] == "knn" and info["transformed_rows"] == 1400
    fit = np.sort(np.random.default_rng(0).choice(2000, 600, replace=False))
    rest = np.setdiff1d(np.arange(2000), fit)
    t_rest = trustworthiness(x[rest], xy[rest], n_neighbors=15)
    t_fit = trustworthiness(x[fit], xy[fit], n_neighbors=15)
    assert t_rest >= t_fit - 0.03, (t_rest, t_fit)


def _awkward_table():
    from galexplorer.active.ranking import RankedTable

    n = 10
    ids = np.array(["a", "b<&>", "a much longer id than the first", "=1+1", "e", "f", "g", "h", "i", "j"], dtype=object)
    f64 = np.linspace(-1, 1, n)
    f64[2], f64[5], f64[7] = np.nan, np.inf, -np.inf
    f32 = np.arange(n, dtype=np.float32) / 10
    f32[4] = np.nan
    return RankedTable({"id": ids, "ra": f64, "score_mean": f32, "rank": np.arange(1, n + 1),
                        "disputed": np.arange(n) % 3 == 0, "catalog_name": ids[::-1].copy()}, {"scorer": "gp"})


def test_streamed_csv_is_the_same_file_whatever_the_chunk(tmp_path):
    from galexplorer.export import _write_csv

    _write_csv(_awkward_table(), tmp_path / "one.csv", chunk=1000)
    _write_csv(_awkward_table(), tmp_path / "many.csv", chunk=3)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "many.csv").read_bytes()
    assert len((tmp_path / "many.csv").read_text().splitlines()) == 11


def test_streamed_votable_reads_back_as_astropy_writes_it(tmp_path):
    from astropy.table import Table

    from galexplorer.export import _astropy_table, _write_votable

    table = _awkward_table()
    _write_votable(table, tmp_path / "ours.xml", chunk=3)
    _astropy_table(table).write(tmp_path / "ref.xml", format="votable")
    ours, ref = Table.read(tmp_path / "ours.xml"), Table.read(tmp_path / "ref.xml")
    assert ours.colnames == ref.colnames and len(ours) == len(ref) == 10
    for name in ref.colnames:
        a, b = np.asarray(ours[name]), np.asarray(ref[name])
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)   # NaN == NaN here, inf too
            assert a.dtype == b.dtype
        else:
            assert a.tolist() == b.tolist(), name
    assert str(ours["ra"].unit) == "deg"


def _store(tmp_path, x, **config):
    from galexplorer.explore.pipeline import EmbedConfig, build_store
    from galexplorer.store.schema import ObjectTable

    n = len(x)
    objects = ObjectTable(np.array([f"o{i}" for i in range(n)], dtype=object), np.zeros(n), np.zeros(n))
    path = tmp_path / "s.h5"
    build_store(path, objects=objects, dim=x.shape[1], fill=x,
                config=EmbedConfig(projection="pca", iforest_trees=5, n_clusters=2, cluster_fit_sample=500, **config))
    return path


@pytest.mark.parametrize("kind", ["sq8", "sq4"])
def test_store_faiss_index_finds_the_exact_neighbours(tmp_path, kind):
    from galexplorer.explore.similarity import ApproximateIndex, SimilarityIndex, ann_path, index_for_store
    from galexplorer.store import EmbeddingStore

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(20000, 8)) @ rng.normal(size=(8, 64)) + 0.1 * rng.normal(size=(20000, 64)))
    path = _store(tmp_path, x.astype(np.float32), similarity_index=kind)
    assert ann_path(path).exists()
    with EmbeddingStore(path) as store:
        approx = index_for_store(store)
        assert isinstance(approx, ApproximateIndex) and approx.n == 20000
        exact = SimilarityIndex(store.embeddings)
        recall = []
        for q in rng.choice(20000, 20, replace=False):
            got, s_got = approx.query(int(q), k=20)
            want, s_want = exact.query(int(q), k=20)
            assert int(q) not in got and np.all(np.diff(s_got) <= 0)
            recall.append(len(set(got) & set(want)) / 20)
            # similarities are exact (re-ranked from the embeddings), not the codes' estimates
            np.testing.assert_allclose(s_got, normalise(x[got]) @ normalise(x[[q]])[0], atol=1e-5)
        assert np.mean(recall) >= 0.95, recall


def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_an_index_of_another_store_is_ignored_and_none_removes_it(tmp_path):
    import json

    from galexplorer.explore.similarity import SimilarityIndex, ann_path, index_for_store
    from galexplorer.store import EmbeddingStore

    x = clusters(25000, d=16)
    path = _store(tmp_path, x, similarity_index="sq8")
    meta_path = ann_path(path).with_name(ann_path(path).name + ".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "store_uuid": "another store"}))
    with EmbeddingStore(path) as store:
        assert isinstance(index_for_store(store), SimilarityIndex)
    _store(tmp_path, x[:1000], similarity_index="auto")     # small: no index, the old one removed
    assert not ann_path(path).exists() and not meta_path.exists()
