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


@pytest.mark.slow
def test_knn_extension_keeps_neighbourhoods_as_well_as_umap_transform():
    from sklearn.manifold import trustworthiness

    x = clusters(2000)
    knn_xy, info = project_2d(x, fit_sample=600, extend="knn", return_info=True)
    ref_xy = project_2d(x, fit_sample=600, extend="transform")
    assert info["extend"] == "knn" and info["transformed_rows"] == 1400
    rest = np.setdiff1d(np.arange(2000), np.sort(np.random.default_rng(0).choice(2000, 600, replace=False)))
    t_knn = trustworthiness(x[rest], knn_xy[rest], n_neighbors=15)
    t_ref = trustworthiness(x[rest], ref_xy[rest], n_neighbors=15)
    assert t_knn >= t_ref - 0.02, (t_knn, t_ref)


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
