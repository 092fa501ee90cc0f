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
