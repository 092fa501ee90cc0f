"""The first-run experience: a reduced `galexplorer demo` end to end, offline, then the loop on it."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.cli import main
from galexplorer.demo import build_demo, xdf_catalogue
from galexplorer.store import CutoutStore, EmbeddingStore


def test_xdf_catalogue_finds_real_sources():
    stamps, ids, ra, dec, cols = xdf_catalogue()
    assert 250 < len(ids) < 600                         # the XDF holds a few hundred bright sources
    assert stamps.shape[1:] == (3, 64, 64) and stamps.dtype == np.float32
    assert len(set(ids)) == len(ids)
    # sources are centred: the centre of each stamp is brighter than its border on average
    centre = stamps[:, :, 28:36, 28:36].mean()
    border = np.concatenate([stamps[:, :, :4].ravel(), stamps[:, :, -4:].ravel()]).mean()
    assert centre > 3 * border
    assert np.all(np.abs(dec + 27.79) < 0.01) and np.all(np.abs(ra - 53.16) < 0.02)
    assert (cols["saturated_px"] > 0).sum() > 10       # bright cores at the 8-bit ceiling exist
    # morphology of every stamp: finite for nearly all, and discs/bulges differ in concentration
    conc = cols["concentration"]
    assert np.isfinite(conc).mean() > 0.95 and np.isfinite(cols["asymmetry"]).mean() > 0.95
    assert np.nanpercentile(conc, 90) - np.nanpercentile(conc, 10) > 0.5


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path, capsys):
    res = build_demo(tmp_path / "demo", quick=True, limit=60)
    with EmbeddingStore(res.store) as store, CutoutStore(res.cutouts) as cut:
        assert store.n == 60 and store.has("projection") and store.has("thumbnails")
        emb = store.load_embeddings()
        assert np.isfinite(emb).all() and emb.std(axis=0).mean() > 1e-4
        # the column the loop will look for, derived here from the pixels themselves:
        # stamps whose core reaches the 8-bit ceiling (saturated stars and bright nuclei)
        images = cut.read(slice(0, cut.n))
        core = images[:, :, 28:36, 28:36]
        saturated = (core >= 254.5 / 255).any(axis=1).sum(axis=(1, 2))
        assert 3 <= (saturated > 0).sum() <= 30
        np.testing.assert_array_equal(saturated, store.column("core_saturated_px"))

    # a second run reuses every stage
    again = build_demo(tmp_path / "demo", quick=True, limit=60)
    assert again.reused == ["cutouts", "train", "embed"]

    curve = tmp_path / "curve.csv"
    code = main(["simulate", str(res.store), "--truth", "core_saturated_px", "--interesting-above", "1",
                 "--budget", "20", "--batch", "5", "--seeds", "5", "-o", str(curve)])
    out = capsys.readouterr().out
    assert code == 0 and curve.exists() and curve.with_suffix(".png").exists()
    import pandas as pd

    c = pd.read_csv(curve)
    k = 20
    found_loop = c["found_by_loop"].iloc[k - 1]
    found_random = c["found_random"].iloc[k - 1]
    assert found_loop > found_random, out
