"""Similarity search: exact against a brute-force scan, low-rank and isotropic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.errors import InputError
from galexplorer.explore.similarity import SimilarityIndex, normalise_rows


def _brute(E, q, k, exclude=()):
    V = E / np.linalg.norm(E, axis=1, keepdims=True)
    s = V @ (q / np.linalg.norm(q))
    s[list(exclude)] = -np.inf
    order = np.lexsort((np.arange(len(s)), -s))[:k]
    return order, s[order]


@pytest.mark.parametrize("kind", ["low_rank", "isotropic"])
def test_matches_brute_force(kind):
    rng = np.random.default_rng(0)
    n, d = 5000, 64
    if kind == "low_rank":
        E = rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) + 0.05 * rng.standard_normal((n, d)) + 1
    else:
        E = rng.standard_normal((n, d))
    E = E.astype(np.float32)
    index = SimilarityIndex(E, min_rows_for_bound=0)
    assert (index.rank > 0) == (kind == "low_rank")
    for row in (0, 17, 4999):
        idx, sim = index.query(row, k=20)
        ref_idx, ref_sim = _brute(E.astype(np.float64), E[row].astype(np.float64), 20, exclude=[row])
        np.testing.assert_allclose(sim, ref_sim, atol=1e-5)
        assert np.mean(idx == ref_idx) > 0.9  # equal up to float32 near-ties
        assert row not in idx and idx.dtype == np.int64 and sim.dtype == np.float32
        assert np.all(np.diff(sim) <= 0)


def test_query_selection_mean_and_include_query():
    rng = np.random.default_rng(1)
    E = rng.standard_normal((500, 8)).astype(np.float32)
    index = SimilarityIndex(E, energy=0)
    idx, sim = index.query(3, k=1, exclude_query=False)
    assert idx[0] == 3 and sim[0] == pytest.approx(1.0, abs=1e-6)
    sel = [1, 2, 3]
    idx, _ = index.query(sel, k=5)
    q = normalise_rows(E)[sel].mean(0)
    ref, _ = _brute(E.astype(np.float64), q.astype(np.float64), 5, exclude=sel)
    np.testing.assert_array_equal(idx, ref)
    assert len(index.query(0, k=10_000)[0]) == 499


def test_bad_queries():
    E = np.random.default_rng(2).standard_normal((50, 4)).astype(np.float32)
    index = SimilarityIndex(E)
    with pytest.raises(InputError, match="out of range"):
        index.query(50)
    with pytest.raises(InputError, match="no objects"):
        index.query([])
    with pytest.raises(InputError, match="NaN"):
        SimilarityIndex(np.full((3, 2), np.nan))


def test_faiss_backend_matches_numpy():
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    E = rng.standard_normal((3000, 32)).astype(np.float32)
    a = SimilarityIndex(E, backend="faiss")
    b = SimilarityIndex(E)
    for rows in (5, [1, 2, 3]):
        ia, sa = a.query(rows, k=15)
        ib, sb = b.query(rows, k=15)
        np.testing.assert_allclose(sa, sb, atol=1e-5)
        assert np.mean(ia == ib) > 0.9 and not set(np.atleast_1d(rows)) & set(ia)


def test_faiss_backend_missing_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("no faiss")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    from galexplorer.errors import ConfigError

    with pytest.raises(ConfigError, match="faiss"):
        SimilarityIndex(np.ones((10, 3), np.float32), backend="faiss")
    assert SimilarityIndex(np.ones((10, 3), np.float32), backend="auto").query(0, k=3)[0].size == 3
