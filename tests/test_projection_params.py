"""The rule that would choose UMAP's parameters by sample size (benchmarks/bench_projection_params.py):
a point replaces the default in a size class only when it beats it on every domain of the class
by more than the seed-to-seed noise."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_projection_params as bpp  # noqa: E402


def _results(table: dict[tuple[str, int], dict[tuple[int, float], float]]) -> list[dict]:
    return [{"domain": d, "n": n, "n_neighbors": p[0], "min_dist": p[1], "T": s, "C": s}
            for (d, n), row in table.items() for p, s in row.items()]


def test_a_point_that_beats_the_default_everywhere_becomes_the_rule():
    table = {("a", 300): {(15, 0.01): 0.90, (30, 0.1): 0.92, (50, 0.3): 0.95},
             ("b", 374): {(15, 0.01): 0.80, (30, 0.1): 0.81, (50, 0.3): 0.79},
             ("a", 1000): {(15, 0.01): 0.90, (30, 0.1): 0.95}}
    rule = bpp.derive_rule(_results(table))
    # (50, 0.3) is the best on "a" but loses on "b": the worst-case gain picks (30, 0.1)
    assert rule[500][0] == (30, 0.1) and rule[500][1] == pytest.approx(0.01)
    assert rule[1500][0] == (30, 0.1)


def test_gains_within_the_noise_or_a_loss_on_one_domain_keep_the_default():
    table = {("a", 300): {(15, 0.01): 0.90, (30, 0.1): 0.90 + bpp.NOISE / 2},
             ("b", 300): {(15, 0.01): 0.80, (30, 0.1): 0.85},
             ("a", 3000): {(15, 0.01): 0.90, (30, 0.1): 0.95},
             ("b", 3000): {(15, 0.01): 0.90, (30, 0.1): 0.89}}
    rule = bpp.derive_rule(_results(table))
    assert rule[500][0] == bpp.OLD_DEFAULT and rule[5000][0] == bpp.OLD_DEFAULT
    assert rule[5000][1] == 0.0    # no point does better than the default itself


def test_size_classes():
    assert [bpp.bucket_of(n) for n in (2, 374, 500, 501, 3000, 10_000)] == [500, 500, 500, 1500, 5000, 20_000]


def test_quality_is_trustworthiness_and_continuity():
    from sklearn.manifold import trustworthiness

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    xy = x[:, :2] + rng.normal(0, 0.1, (200, 2))
    t, c = bpp.quality(x, xy, ks=(10,))
    assert t == pytest.approx(trustworthiness(x, xy, n_neighbors=10))
    assert c == pytest.approx(trustworthiness(xy, x, n_neighbors=10))
    # a map that keeps the features' neighbourhoods scores higher than a shuffled one
    t2, c2 = bpp.quality(x, rng.permutation(xy), ks=(10,))
    assert t > t2 and c > c2
