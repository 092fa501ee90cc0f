"""Similarity search: the exact faiss index against a NumPy scan, low-rank and isotropic embeddings."""

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
    index = SimilarityIndex(E)
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
    index = SimilarityIndex(E)
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


def test_vectors_are_the_unit_rows_read_from_a_dataset_in_chunks(tmp_path, monkeypatch):
    import h5py

    import galexplorer.explore.similarity as sim

    monkeypatch.setattr(sim, "CHUNK_ROWS", 64)   # several chunks added to the index
    E = np.random.default_rng(3).standard_normal((300, 16)).astype(np.float32)
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["e"] = E
        index = SimilarityIndex(f["e"])
    np.testing.assert_allclose(index.vectors, E / np.linalg.norm(E, axis=1, keepdims=True), atol=1e-6)
    assert not index.vectors.flags.writeable
    for row in (0, 299):   # the index answers after the file is closed: it holds its own rows
        idx, sim_ = index.query(row, k=10)
        ref, ref_sim = _brute(E.astype(np.float64), E[row].astype(np.float64), 10, exclude=[row])
        np.testing.assert_allclose(sim_, ref_sim, atol=1e-5)
        assert np.mean(idx == ref) > 0.9
