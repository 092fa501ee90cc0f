"""Synthetic benchmark domains (data/domains.py): deterministic, rare by shape, a valid cutouts file."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.data.domains import DOMAINS, make_domain, write_domain_cutouts
from galexplorer.label_scale import MAX_SCORE


@pytest.mark.parametrize("name", sorted(DOMAINS))
def test_domain_is_seeded_and_rare_by_shape(name):
    a, b, c = make_domain(name, 300, seed=3, size=32), make_domain(name, 300, seed=3, size=32), make_domain(name, 300, seed=4, size=32)
    assert np.array_equal(a.stamps, b.stamps) and not np.array_equal(a.stamps, c.stamps)
    assert a.stamps.dtype == np.float32 and a.stamps.shape[0] == 300 and np.isfinite(a.stamps).all()
    assert 5 <= a.rare.sum() <= 15 and (a.oracle[a.rare] == MAX_SCORE).all() and (a.oracle[~a.rare] <= 1).all()
    assert len(set(a.ids)) == 300 and set(np.unique(a.labels)) == set(range(len(a.class_names)))
    # brightness does not find the rare class: its total flux sits inside the common classes' range
    flux = a.stamps.sum(axis=(1, 2, 3))
    q10, q90 = np.quantile(flux[~a.rare], [0.1, 0.9])
    assert q10 < np.median(flux[a.rare]) < q90


def test_radio_sky_is_zero_and_sources_reach_the_edge():
    d = make_domain("radio", 200, seed=0)
    s = d.stamps[:, 0]
    med = np.median(s, axis=(1, 2))
    mad = np.median(np.abs(s - med[:, None, None]), axis=(1, 2))
    assert (mad == 0).mean() > 0.8 and (s == 0).mean() > 0.6   # big plumes may fill half a stamp
    edge = np.concatenate([s[:, 0], s[:, -1], s[:, :, 0], s[:, :, -1]], axis=1)
    assert (edge.max(axis=1) > 0).mean() > 0.2


def test_domain_writes_a_cutouts_file(tmp_path):
    from galexplorer.store import CutoutStore

    d = make_domain("optical", 40, seed=1, size=24)
    path = write_domain_cutouts(tmp_path / "opt.h5", d)
    st = CutoutStore(path)
    assert st.shape == (40, 3, 24, 24)
    assert np.allclose(st.read(np.arange(40)), d.stamps)
    with pytest.raises(ValueError, match="unknown domain"):
        make_domain("xray")


def test_lens_arcs_carry_no_more_light_off_centre_than_a_companion():
    """Lensed arcs and a pair's companion put the same share of light at the same distances, so
    what identifies a lens is the arcs' shape, not extra light off the centre."""
    d = make_domain("lens", 600, seed=2, size=40)
    s = d.stamps[:, 0]
    yy, xx = np.mgrid[0:40, 0:40]
    ring = (np.hypot(yy - 19.5, xx - 19.5) >= 3.5) & (np.hypot(yy - 19.5, xx - 19.5) <= 11)
    off = (s * ring).sum(axis=(1, 2)) / s.sum(axis=(1, 2))
    pair = off[d.labels == d.class_names.index("pair")]
    q10, q90 = np.quantile(pair, [0.1, 0.9])
    assert d.bands == ["i"] and d.class_names[-1] == "lens"
    assert q10 < np.median(off[d.rare]) < q90


@pytest.mark.parametrize("name", ["radio", "optical", "lens"])
def test_crowded_variant_adds_only_field_sources_to_the_same_objects(name):
    """The crowded variant is the clean domain, draw for draw (same classes, same targets, same
    noise), plus unrelated sources: it is never fainter anywhere, differs on most stamps, and its
    field sources are drawn alike for every class."""
    clean, crowded = make_domain(name, 300, seed=5, size=40), make_domain(f"{name}-crowded", 300, seed=5, size=40)
    assert np.array_equal(clean.labels, crowded.labels) and np.array_equal(clean.oracle, crowded.oracle)
    assert crowded.ids[0].startswith(name.upper() + "-CROWDED") and crowded.bands == clean.bands
    extra = (crowded.stamps - clean.stamps).sum(axis=(1, 2, 3))
    assert (crowded.stamps >= clean.stamps - 1e-4).all()
    touched = extra > 1.0
    assert 0.6 < touched.mean() < 0.95                      # Poisson(1.5): 78% of stamps have a source
    # the field does not tell the rare class: its share of touched stamps is that of the others
    assert abs(touched[clean.rare].mean() - touched[~clean.rare].mean()) < 0.3
    # the target stays the central source: the field keeps 3 px away from the centre
    c = 20
    centre = crowded.stamps[:, :, c - 1:c + 1, c - 1:c + 1].sum(axis=(1, 2, 3))
    base = clean.stamps[:, :, c - 1:c + 1, c - 1:c + 1].sum(axis=(1, 2, 3))
    assert np.median(centre - base) < 0.05 * np.median(np.abs(base) + 1)
