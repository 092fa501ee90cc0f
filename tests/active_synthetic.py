"""Synthetic embedding stores for the active-learning tests: a broad population with a planted
rare cluster (2% by default) whose catalogue column ``truth`` is high."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galexplorer.store import EmbeddingStoreWriter, ObjectTable


def planted(n: int = 1000, dim: int = 16, rare: float = 0.02, seed: int = 0, offset: float = 36.0):
    """(embeddings (n, dim) float32, is_rare (n,) bool, truth (n,) float64)."""
    rng = np.random.default_rng(seed)
    n_rare = max(1, int(round(rare * n)))
    # the population: a few broad groups in a low-dimensional subspace, plus noise
    basis = rng.standard_normal((6, dim))
    z = rng.standard_normal((n, 6)) * np.array([3, 2, 1.5, 1, 0.7, 0.5])
    x = z @ basis + 0.3 * rng.standard_normal((n, dim))
    is_rare = np.zeros(n, bool)
    is_rare[rng.choice(n, n_rare, replace=False)] = True
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    x[is_rare] = 0.5 * rng.standard_normal((n_rare, dim)) + offset * direction
    x += 10.0  # embeddings are not centred
    # the truth varies smoothly over the population (as vote fractions do with morphology),
    # and is high for the rare class
    smooth = 0.45 / (1 + np.exp(-z[:, 0] / 2))
    truth = np.where(is_rare, rng.uniform(0.7, 1.0, n), np.clip(smooth + rng.normal(0, 0.02, n), 0, 0.45))
    return x.astype(np.float32), is_rare, truth


def write_store(path: Path, emb: np.ndarray, columns: dict | None = None, ids=None, with_pca: bool = True,
                with_embeddings: bool = True, anomaly: bool = True) -> Path:
    """An embedding store with embeddings, pca (+ ratios), projection, scores/anomaly and cluster."""
    from galexplorer.explore.anomaly import isolation_forest_scores
    from galexplorer.explore.pca import fit_pca

    n = len(emb)
    ids = np.array([f"obj{i:05d}" for i in range(n)], dtype=object) if ids is None else ids
    rng = np.random.default_rng(1)
    objects = ObjectTable(ids, 53.16 + rng.normal(0, 0.01, n), -27.79 + rng.normal(0, 0.01, n), columns or {})
    coords, info = fit_pca(emb, variance=0.95)
    with EmbeddingStoreWriter(path, objects) as w:
        if with_embeddings:
            w.write("embeddings", emb)
        if with_pca:
            w.write("pca", coords, attrs={"explained_variance_ratio": np.asarray(info["explained_variance_ratio"])})
        w.write("projection", coords[:, :2])
        if anomaly:
            w.write("scores/anomaly", isolation_forest_scores(coords, n_trees=50, seed=0),
                    attrs={"method": "isolation_forest"})
        w.write("scores/cluster", (coords[:, 0] > 0).astype(np.int32))
    return path


def planted_store(path: Path, n: int = 1000, **kw) -> tuple[Path, np.ndarray, np.ndarray]:
    emb, is_rare, truth = planted(n, **kw)
    kind = np.array(["rare" if r else "common" for r in is_rare], dtype=object)
    write_store(path, emb, {"truth": truth, "kind": kind})
    return path, is_rare, truth


def planted_quiet(n: int = 1500, dim: int = 32, rare: float = 0.03, seed: int = 0, shift: float = 0.3):
    """(features (n, dim) float32, is_rare (n,) bool): loud nuisance in 6 dimensions (over 95% of
    the variance) and quiet noise in the rest, where the rare class is shifted along one direction
    (2 standard deviations of the quiet noise). The PCA at 95% that a store keeps drops the quiet
    dimensions, so the loop cannot see the rare class there; labels can teach a head to."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)) * 0.15
    x[:, :6] = rng.standard_normal((n, 6)) * np.array([4, 3, 3, 2, 2, 1.5])
    n_rare = max(1, int(round(rare * n)))
    is_rare = np.zeros(n, bool)
    is_rare[rng.choice(n, n_rare, replace=False)] = True
    direction = np.zeros(dim)
    direction[6:12] = rng.standard_normal(6)
    x[is_rare] += shift * direction / np.linalg.norm(direction)
    return (x + 3).astype(np.float32), is_rare


def own_embeddings_store(path: Path, emb: np.ndarray, columns: dict | None = None, *extra: str) -> Path:
    """A store of "your own embeddings" as `galexplorer embed --no-cutouts --catalog --embeddings`
    builds it (a PCA map, no UMAP compile)."""
    import csv

    from galexplorer.cli import main

    n = len(emb)
    np.save(path.with_suffix(".npy"), emb)
    cols = columns or {}
    with open(path.with_suffix(".csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "ra", "dec", *cols])
        for i in range(n):
            w.writerow([f"obj{i:05d}", 53.16 + i * 1e-5, -27.79, *(cols[c][i] for c in cols)])
    assert main(["-q", "embed", "--no-cutouts", "--catalog", str(path.with_suffix(".csv")), "--embeddings",
                 str(path.with_suffix(".npy")), "-o", str(path), "--projection", "pca", *extra]) == 0
    return path


def restore_cli_logging():
    """Generator for a fixture: `galexplorer.cli.main` points the package logger at the stderr of
    the moment (pytest's capture, closed after the test); put the logger back afterwards."""
    import logging

    log = logging.getLogger("galexplorer")
    saved = (list(log.handlers), log.level, log.propagate)
    yield
    log.handlers[:], log.level, log.propagate = saved[0], saved[1], saved[2]
