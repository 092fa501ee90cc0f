"""Acquisition functions, bounded batch selection and the spanning first batch."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.active.acquisition import (
    Acquisition,
    expected_improvement,
    select_batch,
    spanning_batch,
    top_k,
    upper_confidence_bound,
)
from galexplorer.errors import ConfigError


def test_expected_improvement_by_hand():
    # mu=3, sigma=1, best=4, xi=0.5: z = (3 - 4.5)/1 = -1.5
    # EI = -1.5 * Phi(-1.5) + 1 * phi(-1.5) = -1.5 * 0.0668072013 + 0.1295175957 = 0.0293067938
    ei = expected_improvement(np.array([3.0]), np.array([1.0]), best=4.0, xi=0.5)
    assert ei.dtype == np.float32
    assert ei[0] == pytest.approx(0.0293067938, abs=1e-6)
    # mu=5, sigma=0.5, best=4, xi=0.5: z = 1; EI = 0.5 * Phi(1) + 0.5 * phi(1)
    ei = expected_improvement(np.array([5.0]), np.array([0.5]), best=4.0, xi=0.5)
    assert ei[0] == pytest.approx(0.5 * 0.8413447461 + 0.5 * 0.2419707245, abs=1e-6)
    # no uncertainty: the plain improvement, never negative
    ei = expected_improvement(np.array([5.0, 3.0]), np.array([0.0, 0.0]), best=4.0, xi=0.5)
    np.testing.assert_allclose(ei, [0.5, 0.0])


def test_acquisitions_grow_with_std():
    mean = np.linspace(0, 5, 50)
    for name in ("ei", "ucb", "uncertainty"):
        acq = Acquisition(name, best=4.0)
        assert np.all(acq(mean, np.full(50, 1.0)) >= acq(mean, np.full(50, 0.5)))
    np.testing.assert_allclose(upper_confidence_bound(np.array([1.0]), np.array([0.5]), 2.0), [2.0])
    with pytest.raises(ConfigError):
        Acquisition("greedy")
    with pytest.raises(ConfigError):
        Acquisition("ei", xi=-1)


@pytest.mark.parametrize("name", ["ei", "ucb", "uncertainty"])
def test_bounded_selection_equals_brute_force(name):
    rng = np.random.default_rng(0)
    n = 20000
    mean = rng.normal(1, 1, n).astype(np.float32)
    std = rng.uniform(0.1, 1.0, n).astype(np.float32)
    bound = std + rng.uniform(0, 0.5, n).astype(np.float32)
    acq = Acquisition(name, best=3.0, xi=0.5)
    candidates = np.flatnonzero(rng.random(n) > 0.1)
    calls = []

    def exact(rows):
        calls.append(len(rows))
        return std[rows]

    sel = select_batch(mean, bound, exact, acq, 10, candidates, first_chunk=256)
    full = acq(mean, std)
    np.testing.assert_array_equal(sel.batch, top_k(full, 10, candidates))
    assert set(sel.batch) <= set(candidates)
    if name != "uncertainty":  # the bound prunes: far fewer exact evaluations than candidates
        assert sum(calls) < len(candidates) / 4


def test_top_k_ties_and_order():
    v = np.array([1.0, 3.0, 3.0, 2.0, 3.0])
    np.testing.assert_array_equal(top_k(v, 2), [1, 2])
    np.testing.assert_array_equal(top_k(v, 10, np.array([0, 3])), [3, 0])


def test_spanning_batch_is_deterministic_and_spans():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((1000, 5))
    a = spanning_batch(X, 10)
    b = spanning_batch(X.copy(), 10)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.int64 and len(a) == 10 and len(set(a)) == 10
    pc1 = X[a, 0]
    assert pc1[0] == X[:, 0].min() and pc1[-1] == X[:, 0].max()
    assert np.all(np.diff(pc1) > 0)
    # excluded rows are never chosen; small candidate sets give what there is
    cand = np.arange(0, 1000, 2)
    assert set(spanning_batch(X, 10, cand)) <= set(cand)
    assert len(spanning_batch(X, 10, np.array([3, 4]))) == 2


def test_spanning_batch_partition_equals_the_full_sort():
    """The O(N) partition of packed keys picks what sorting everything picks, ties and -0.0 included."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 3)).astype(np.float32)
    X[::7, 0] = np.round(X[::7, 0], 1)           # many ties
    X[5, 0], X[6, 0] = -0.0, 0.0
    cand = np.sort(rng.choice(5000, 3000, replace=False))
    for c in (None, cand):
        idx = np.arange(5000) if c is None else c
        order = idx[np.lexsort((idx, X[idx, 0].astype(np.float64)))]
        for k in (1, 10, 37):
            pos = np.unique(np.round(np.linspace(0, len(order) - 1, k)).astype(np.int64))
            np.testing.assert_array_equal(spanning_batch(X, k, c), order[pos])
            np.testing.assert_array_equal(spanning_batch(X.astype(np.float64), k, c), order[pos])
