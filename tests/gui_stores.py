"""Embedding stores for the explorer's tests, benchmarks and screenshots.

Real pixels (Hubble XDF stamps, :mod:`xdf`) on a synthetic map: objects fall in clusters in
the 2-D projection, and the features the model learns on (``pca``) carry the cluster, so a GP
has something to learn. Large stores reuse a few hundred real stamps as thumbnails (or have
none) to stay small and fast to build.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galexplorer.store import CutoutStore, EmbeddingStoreWriter, ObjectTable


def clustered(n: int, k: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) float32 points in ``k`` Gaussian clusters of different sizes, and (n,) int32 labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, k, endpoint=False)]) * 7.0
    centres += rng.normal(0, 1.0, centres.shape)
    weights = rng.dirichlet(np.full(k, 3.0))
    c = rng.choice(k, size=n, p=weights).astype(np.int32)
    spread = rng.uniform(0.6, 1.6, k)
    xy = centres[c] + rng.normal(0, 1.0, (n, 2)) * spread[c, None]
    return xy.astype(np.float32), c


def build_store(path: str | Path, n: int = 400, *, thumbnails: bool = True, thumb_size: int = 32,
                cutouts: str | Path | None = None, dim: int = 8, seed: int = 0,
                projection: bool = True, cutouts_rows: np.ndarray | None = None) -> Path:
    """Write a store of ``n`` objects.

    Args:
        cutouts: a cutouts file of exactly ``n`` objects to link (the inspector then shows its
            full-resolution bands) — its ids, ra/dec and thumbnails are used.
        cutouts_rows: with ``cutouts``, the store holds only these ``n`` rows of it, in this
            order (as ``embed --allow-missing`` writes, ``objects/cutouts_row``).
        thumbnails: store thumbnails (cycled real XDF stamps when there is no cutouts file).
        projection: write the 2-D projection (False makes a store the explorer must refuse).
    """
    from xdf import BANDS, xdf_stamps

    from galexplorer.data.thumbnails import make_thumbnails

    path = Path(path)
    rng = np.random.default_rng(seed)
    xy, c = clustered(n, seed=seed)
    attrs = {"bands": BANDS}
    if cutouts is not None:
        cut = CutoutStore(cutouts)
        rows = np.arange(cut.n) if cutouts_rows is None else np.asarray(cutouts_rows, np.int64)
        if len(rows) != n:
            raise ValueError(f"the store would hold {len(rows)} cutouts, not {n}")
        objects = cut.objects.subset(rows)
        attrs.update(cutouts_path=str(cutouts), cutouts_uuid=cut.uuid)
    else:
        cut = None
        ids = np.array([f"G{i:07d}" for i in range(n)], dtype=object)
        ra = 150.0 + rng.normal(0, 0.5, n)
        dec = 2.2 + rng.normal(0, 0.5, n)
        peak = rng.gamma(2.0, 1.0, n) + (c == 0) * 3.0
        kind = np.array(["ring", "spiral", "elliptical", "merger", "edge-on", "compact"], dtype=object)[c]
        objects = ObjectTable(ids, ra, dec, {"peak": peak, "kind": kind})
    # learning features that carry the cluster (so the map and the model agree)
    feats = np.hstack([xy / 3.0, rng.normal(0, 1, (n, dim - 2))]).astype(np.float32)
    feats[:, 2] += (c == 0) * 2.0
    var = np.sort(rng.uniform(0.2, 1.0, dim))[::-1]
    ratio = (var / var.sum()).tolist()
    emb = np.hstack([feats, rng.normal(0, 0.3, (n, 8))]).astype(np.float32)
    anomaly = (np.linalg.norm(feats, axis=1) / 5).astype(np.float32)
    with EmbeddingStoreWriter(path, objects, attrs=attrs) as w:
        if thumbnails:
            if cut is not None and cut.thumbnails is not None:
                w.write("thumbnails", cut.thumbnails[:][rows])
            else:
                stamps, _ = xdf_stamps(min(n, 300), 48)
                base = make_thumbnails(stamps, BANDS, thumb_size)
                dset = w.create("thumbnails", (n, thumb_size, thumb_size, 3), np.uint8,
                                chunks=(min(64, n), thumb_size, thumb_size, 3), compression="gzip")
                for a in range(0, n, 8192):
                    b = min(n, a + 8192)
                    dset[a:b] = base[np.arange(a, b) % len(base)]
        d = w.create("embeddings", emb.shape, np.float32, attrs={"method": "synthetic"})
        d[:] = emb
        w.write("pca", feats, attrs={"explained_variance_ratio": ratio, "n_components": dim})
        if projection:
            w.write("projection", xy, attrs={"method": "synthetic"})
        # marked as the isolation-forest score so the loop reuses it instead of fitting one
        w.write("scores/anomaly", anomaly, attrs={"method": "isolation_forest"})
        w.write("scores/cluster", c.astype(np.int32))
        if cut is not None and cutouts_rows is not None:
            w.file["objects"].create_dataset("cutouts_row", data=rows)
    if cut is not None:
        cut.close()
    return path
