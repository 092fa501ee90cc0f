"""#22 item 3: the morphology feature set, the representations ``embed`` writes, and the loop's
choice among them by cross-validation on the labels."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from galexplorer.active.config import LoopConfig
from galexplorer.active.representation import MARGIN, MIN_LABELS, choose, load_sets
from galexplorer.data.morphfeatures import feature_names, morphology_features, stamp_features
from galexplorer.errors import ConfigError, StoreError


def _blob(size=40, cy=20.0, cx=20.0, sy=2.0, sx=2.0, flux=1.0):
    yy, xx = np.indices((size, size), dtype=np.float64)
    return flux * np.exp(-0.5 * (((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2))


def _col(name: str) -> int:
    return feature_names(1).index(name)


def test_feature_vector_shape_names_and_determinism():
    rng = np.random.default_rng(0)
    stamps = (rng.normal(0, 0.01, (5, 3, 40, 40)) + _blob()).astype(np.float32)
    f = morphology_features(stamps)
    # 53 + C as before issue #22, then 7 rotation-residual / multimode numbers, C band asymmetries
    # and the colour dispersion, then the 11 residual-arc numbers
    assert f.shape == (5, len(feature_names(3))) == (5, 53 + 3 + 7 + 3 + 1 + 11)
    assert np.isfinite(f).all() and np.array_equal(f, morphology_features(stamps))
    assert morphology_features(stamps[:, 0]).shape == (5, 71)          # (N, S, S) is one band
    names = feature_names(3)
    assert names[53:56] == ["band0_log_share", "band1_log_share", "band2_log_share"]   # the old columns stay
    assert names[56:67] == ["shape_asymmetry10", "shape_asymmetry3", "outer_asymmetry", "outer_residual",
                            "multimode", "intensity", "deviation", "band0_asymmetry", "band1_asymmetry",
                            "band2_asymmetry", "colour_dispersion"]
    assert names[67:] == feature_names(1)[60:] == ["resid_share", "resid_coverage", "resid_log_tangential",
                                                   "resid_radius", "piece_tangential", "piece_radial_spread",
                                                   "arc_span", "arc_log_snr", "ring_log_snr", "resid_log_peak_snr",
                                                   "arc_span_radius"]
    assert feature_names(1)[53:60] == names[56:63] and len(set(names)) == len(names)
    with pytest.raises(ValueError, match="stamps"):
        morphology_features(np.zeros((40, 40)))


def test_features_measure_shape_not_brightness():
    one = _blob()
    double = _blob(cx=10) + _blob(cx=30)
    long = _blob(sy=1.5, sx=8.0)
    f1, f2, fl = stamp_features(one), stamp_features(double), stamp_features(long)
    assert f1[_col("iso50_n_components")] == 1 and f2[_col("iso50_n_components")] == 2
    assert f2[_col("iso50_separation")] == pytest.approx(20 / 40, abs=0.03) and f1[_col("iso50_separation")] == 0
    assert fl[_col("iso25_elongation")] > 0.6 > f1[_col("iso25_elongation")] + 0.5
    # brighter by 100x: the same shape numbers (only a flux would change, and there is none)
    assert np.allclose(stamp_features(100 * long), fl, atol=1e-6)
    # turned by 90 degrees: the orientation flips sign, elongation and Hu moments stay
    ft = stamp_features(long.T)
    assert ft[_col("iso25_orient_cos")] == pytest.approx(-fl[_col("iso25_orient_cos")], abs=1e-6)
    assert ft[_col("hu1")] == pytest.approx(fl[_col("hu1")], abs=1e-6)


def _tail(noise=0.0, seed=0):
    """A round host with a one-sided curved tail of faint knots (a tidal tail, a head-tail jet)."""
    img = _blob(sy=3, sx=3) + sum(0.1 * _blob(cy=20 + 0.02 * k * k, cx=22 + k, sy=1.2, sx=1.2) for k in range(1, 16))
    return img + np.random.default_rng(seed).normal(0, noise, img.shape)


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_rotation_residual_numbers_see_a_one_sided_tail(noise):
    rng = np.random.default_rng(3)
    sym = _blob(sy=1.5, sx=8.0) + rng.normal(0, noise, (40, 40))        # elongated but symmetric
    off = _blob(cy=13, cx=26) + rng.normal(0, noise, (40, 40))           # symmetric about a point off the centre
    f_sym, f_off, f_tail = stamp_features(sym), stamp_features(off), stamp_features(_tail(noise))
    for name in ("shape_asymmetry10", "shape_asymmetry3", "outer_asymmetry"):
        # (noise ragged the edge of a small source's 3% isophote: ~0.1 on the 3-sigma level)
        assert f_sym[_col(name)] < 0.12 and f_off[_col(name)] < 0.12, name
        assert f_tail[_col(name)] > max(0.15, 2 * f_sym[_col(name)], 2 * f_off[_col(name)]), name
    assert f_tail[_col("outer_residual")] > 0.1 > 0.01 > f_sym[_col("outer_residual")]
    # without noise a symmetric source is exactly symmetric about its (half-pixel) asymmetry centre
    if noise == 0:
        assert f_sym[_col("shape_asymmetry10")] == 0 and f_off[_col("outer_asymmetry")] == 0


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_multimode_intensity_and_deviation(noise):
    rng = np.random.default_rng(4)
    one = stamp_features(_blob() + rng.normal(0, noise, (40, 40)))
    # the blobs touch above the noise (detached ones on a noisy sky would be a neighbour, masked)
    two = stamp_features(_blob(cx=14) + _blob(cx=26) + rng.normal(0, noise, (40, 40)))
    weak = stamp_features(_blob(cx=14) + 0.3 * _blob(cx=26) + rng.normal(0, noise, (40, 40)))
    assert one[_col("multimode")] < 0.05 and one[_col("intensity")] < 0.05 and one[_col("deviation")] < 0.05
    assert two[_col("multimode")] > 0.9 and two[_col("intensity")] > 0.9
    assert 0.2 < weak[_col("intensity")] < 0.4 and weak[_col("multimode")] < two[_col("multimode")]
    # D: the brightest peak sits on one blob, far from the pair's centroid (half the separation,
    # 6 px, over sqrt(area / pi))
    assert two[_col("deviation")] > 0.5 > one[_col("deviation")]


def test_band_asymmetry_and_colour_dispersion():
    names = feature_names(2)
    host = _blob(sy=3, sx=3)
    grey = np.stack([host, host])                                        # one colour everywhere
    tail = _tail() - host                                                # the tail alone
    blue_tail = np.stack([host + tail, host])                            # the tail only in band 0
    fg, fb = stamp_features(grey), stamp_features(blue_tail)
    assert fg[names.index("colour_dispersion")] == pytest.approx(0, abs=1e-9)
    assert fb[names.index("colour_dispersion")] > 0.05
    assert fg[names.index("band0_asymmetry")] == pytest.approx(0, abs=1e-9)
    assert fb[names.index("band0_asymmetry")] > 0.1 > fb[names.index("band1_asymmetry")]


def _host_with(extra: str, noise: float, seed: int = 5, size: int = 48) -> np.ndarray:
    """An elongated host (sigma 2.5 x 1.6 px) with, at 8 px from its centre and 40% of its light:
    an ``arc`` (a third of a circle), a ``ring`` (a full circle, uneven), a compact ``companion``
    or nothing; plus Gaussian noise."""
    c = (size - 1) / 2
    host = _blob(size, c, c, 2.5, 1.6)
    out = host.copy()
    if extra != "none":
        span = {"arc": 2 * np.pi / 3, "ring": 2 * np.pi, "companion": 0.0}[extra]
        knots = [_blob(size, c + 8 * np.sin(t), c + 8 * np.cos(t), 1.2, 1.2, 1.0 + 0.5 * np.sin(3 * t))
                 for t in (np.linspace(0.3, 0.3 + span, 24, endpoint=False) if span else [0.3])]
        light = np.sum(knots, axis=0)
        out += 0.4 * host.sum() * light / light.sum()
    return out + np.random.default_rng(seed).normal(0, noise, out.shape)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_residual_arc_numbers_tell_an_arc_or_ring_from_a_companion(seed):
    """Light the host does not explain, at the same radius and share: along a circle (arc, ring)
    or compact (a companion). The arc numbers must tell them apart (each number alone is noisy:
    the asserted margins hold on every noise draw tried); a plain host leaves little."""
    names = ("resid_share", "resid_coverage", "resid_log_tangential", "piece_tangential", "arc_span")
    v = {(k, noise): dict(zip(names, stamp_features(_host_with(k, noise, seed))[[_col(n) for n in names]]))
         for k in ("none", "companion", "arc", "ring") for noise in (0.02, 0.05)}
    for noise in (0.02, 0.05):
        arc, comp = v["arc", noise], v["companion", noise]
        assert arc["piece_tangential"] > 0.5 > 0.3 > comp["piece_tangential"], noise      # long axis along the circle
        assert arc["resid_log_tangential"] > comp["resid_log_tangential"] + 0.15, noise
        assert arc["resid_coverage"] > 1.5 * comp["resid_coverage"] and arc["arc_span"] > comp["arc_span"], noise
    ring, arc, comp, none = v["ring", 0.02], v["arc", 0.02], v["companion", 0.02], v["none", 0.02]
    # a full ring, which the median of its own annulus would absorb, stays in the residual
    assert ring["resid_coverage"] > 2.5 * comp["resid_coverage"] and ring["arc_span"] > arc["arc_span"]
    assert none["resid_share"] < 0.1 < arc["resid_share"] < comp["resid_share"]


def test_unrelated_sources_are_masked_and_the_targets_own_pieces_kept():
    """A compact neighbour detached from the target (a field galaxy) is masked before measuring,
    so the numbers are those of the target alone; a companion that touches it, a ring around it,
    and on a clipped radio sky the detached lobes of a double are the target's and stay."""
    from galexplorer.data.morphfeatures import target_mask

    noise = np.random.default_rng(3).normal(0, 0.01, (40, 40))
    host = _blob(sy=2.5, sx=1.6)
    alone = stamp_features(host + noise)
    crowded = stamp_features(host + _blob(cy=8, cx=31, flux=0.6) + _blob(cy=33, cx=6, sy=1.5, sx=3, flux=0.4) + noise)
    assert crowded[_col("iso3_n_components")] == alone[_col("iso3_n_components")] == 1
    shape = [_col(c) for c in ("iso10_log_area", "r80", "asymmetry", "outer_asymmetry", "concentration", "resid_share")]
    assert np.allclose(crowded[shape], alone[shape], rtol=0.02, atol=0.01)
    # the same neighbours unmasked would change the picture (what the vector did before)
    from galexplorer.data import morphfeatures
    orig = morphfeatures.target_mask
    try:
        morphfeatures.target_mask = lambda *a, **k: None
        unmasked = stamp_features(host + _blob(cy=8, cx=31, flux=0.6) + _blob(cy=33, cx=6, sy=1.5, sx=3, flux=0.4) + noise)
    finally:
        morphfeatures.target_mask = orig
    assert unmasked[_col("iso3_n_components")] == 3 and unmasked[_col("r80")] > 1.5 * alone[_col("r80")]

    # a touching companion is not separated: the pair stays a pair
    pair_img = host + _blob(cy=20, cx=26, flux=0.5) + noise
    keep = target_mask(pair_img - np.median(pair_img[0]), 0.01)
    assert keep is None or keep[20, 26]
    pair = stamp_features(pair_img)
    assert pair[_col("multimode")] > alone[_col("multimode")] and pair[_col("r80")] > 1.3 * alone[_col("r80")]

    # a ring detached from its host surrounds the centre: kept
    yy, xx = np.indices((40, 40), dtype=np.float64)
    ring = 0.15 * np.exp(-0.5 * ((np.hypot(yy - 19.5, xx - 19.5) - 11) / 1.0) ** 2)
    img = _blob(cy=19.5, cx=19.5, sy=1.5, sx=1.5) + ring + noise
    assert target_mask(img, 0.01) is None or target_mask(img, 0.01)[np.hypot(yy - 19.5, xx - 19.5).round() == 11].all()

    # a radio double on a clipped sky (border exactly 0): faint core, bright detached lobes, and a
    # faint detached point source - only the point source goes
    dbl = _blob(cx=20, sy=0.8, sx=0.8, flux=4) + _blob(cx=5, sy=2.5, sx=2, flux=20) + _blob(cx=35, sy=2.5, sx=2, flux=15)
    dbl += _blob(cy=36, cx=14, sy=1, sx=1, flux=6)
    dbl = np.where(dbl > 3, dbl, 0.0)
    keep = target_mask(dbl, 0.0, 0.25)
    assert keep[20, 5] and keep[20, 35] and keep[20, 20] and not keep[36, 14]
    f = stamp_features(dbl)
    assert f[_col("iso3_n_components")] == 2       # both lobes (the 1-px core is under the 2-px floor), not the point


def test_empty_and_bad_stamps_give_zeros_not_nan():
    assert not stamp_features(np.zeros((40, 40))).any()
    assert not stamp_features(np.zeros((3, 40, 40))).any() and len(stamp_features(np.zeros((3, 40, 40)))) == 78
    assert not stamp_features(np.full((2, 40, 40), 7.0)).any()          # a flat sky: no light above it
    bad = _blob()
    bad[3, 3], bad[5, 7] = np.nan, np.inf
    assert np.isfinite(stamp_features(bad)).all()
    # an empty radio sky: MAD of the border is 0; a source touching the edge still measures
    edge = _blob(cx=1.0, sx=6.0)
    f = stamp_features(edge)
    assert f[_col("edge_light")] > 0.1 and np.isfinite(f).all()


# -- choosing -----------------------------------------------------------------------------------
def _sets(n=400, seed=0):
    """embedding = noise; morphology = the class (+ noise)."""
    rng = np.random.default_rng(seed)
    rare = np.zeros(n, bool)
    rare[rng.choice(n, 40, replace=False)] = True
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    morph = rng.normal(size=(n, 6)).astype(np.float32)
    morph[:, 0] += 4 * rare
    return {"embedding": emb, "morphology": morph}, rare


def test_choose_prefers_the_set_that_separates_the_finds():
    sets, rare = _sets()
    rows = np.arange(120)
    labels = np.where(rare[rows], 5.0, 0.0)
    assert rare[rows].sum() >= 3
    c = choose(sets, rows, labels, 3.0)
    assert c.used == "morphology" and c.scores["morphology"] > c.scores["embedding"] + 0.3
    assert "cross-validated AP" in c.reason and json.dumps(c.to_dict())


def test_choose_keeps_the_embedding_with_too_few_labels_or_a_tie():
    sets, rare = _sets()
    c = choose(sets, np.arange(MIN_LABELS - 1), np.zeros(MIN_LABELS - 1), 3.0)
    assert c.used == "embedding" and "too few labels" in c.reason and not c.scores
    same = {"embedding": sets["morphology"], "morphology": sets["morphology"].copy()}
    rows = np.arange(200)
    assert choose(same, rows, np.where(rare[rows], 5.0, 0.0), 3.0).used == "embedding"   # ties keep the default
    only = choose({"embedding": sets["embedding"]}, rows, np.where(rare[rows], 5.0, 0.0), 3.0)
    assert only.used == "embedding" and "no other representation" in only.reason


def test_before_three_finds_the_default_is_kept_whatever_predicts_the_common_scores():
    """#22: before the finds can be compared, the common classes' 0-1 scores used to pick the set
    (a ridge's rank correlation) - on a raw-pixel-PCA radio store that moved the loop to morphology,
    where it found 1 rare object of 60. Now the default stays: combined where the store has it."""
    rng = np.random.default_rng(1)
    n = 200
    cls = rng.integers(0, 2, n)
    emb = rng.normal(size=(n, 5))
    morph = rng.normal(size=(n, 5)) + 3 * cls[:, None]        # predicts the 0/1 scores perfectly
    rows, labels = np.arange(60), cls[:60].astype(float)      # scores 0 and 1 only, no find
    c = choose({"embedding": emb, "morphology": morph}, rows, labels, 3.0)
    assert c.used == "embedding" and "too few labels" in c.reason and not c.scores
    with_combined = {"embedding": emb, "morphology": morph, "combined": np.hstack([emb, morph])}
    c = choose(with_combined, rows, labels, 3.0)
    assert c.used == "combined" and "combined (too few labels" in c.reason
    labels[:2] = 5.0                                          # two finds: still too few
    assert choose(with_combined, rows, labels, 3.0).used == "combined"


def test_with_finds_another_set_must_beat_combined_by_the_margin():
    sets, rare = _sets()
    rows = np.arange(120)
    labels = np.where(rare[rows], 5.0, 0.0)
    # morphology separates the finds: it beats combined (which carries the noise embedding too)?
    # Only by more than MARGIN; a combined that equals morphology is kept (ties keep the default).
    same = {**sets, "combined": sets["morphology"].copy()}
    c = choose(same, rows, labels, 3.0)
    assert c.used == "combined" and c.scores["combined"] == pytest.approx(c.scores["morphology"])
    noise = {**sets, "combined": sets["embedding"].copy()}
    c = choose(noise, rows, labels, 3.0)
    assert c.used == "morphology" and c.scores["morphology"] > c.scores["combined"] + MARGIN


def test_bad_representation_names():
    with pytest.raises(ConfigError, match="unknown representation"):
        LoopConfig(representation="wavelets")


# -- the store and the loop ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def store_with_features(tmp_path_factory, xdf_cutouts):
    from galexplorer.cli import main

    d = tmp_path_factory.mktemp("rep")
    path = d / "s.h5"
    rng = np.random.default_rng(0)
    np.save(d / "emb.npy", rng.normal(size=(48, 6)).astype(np.float32))
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(d / "emb.npy"), "-o", str(path),
                 "--projection", "pca"]) == 0
    return path


def test_embed_writes_morphology_and_pixel_features(store_with_features, xdf_cutouts, tmp_path):
    from galexplorer.cli import main
    from galexplorer.store import EmbeddingStore

    with h5py.File(store_with_features, "r") as f:
        m, p = f["features/morphology"], f["features/pixels"]
        assert m.shape == (48, len(feature_names(3))) == (48, 78) and p.shape[0] == 48 and 1 <= p.shape[1] <= 32
        assert np.isfinite(m[:]).all() and np.isfinite(p[:]).all() and m[:].std(axis=0).max() > 0
        assert list(m.attrs["columns"].astype(str))[:2] == feature_names(3)[:2]
    with EmbeddingStore(store_with_features) as s:
        assert s.feature_set_names == ["morphology", "pixels"]
    none = tmp_path / "none.h5"
    rng = np.random.default_rng(0)
    np.save(tmp_path / "emb.npy", rng.normal(size=(48, 6)).astype(np.float32))
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "emb.npy"), "-o", str(none),
                 "--projection", "pca", "--features", "none"]) == 0
    with h5py.File(none, "r") as f:
        assert "features" not in f


def test_the_loop_reports_and_uses_its_representation(store_with_features):
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_with_features) as s:
        peak = np.asarray(s.column("peak"), float)
        rows = np.arange(40)
        labels = np.where(peak[rows] > np.quantile(peak, 0.8), 5.0, 0.0)
        auto = ActiveLoop(s, LoopConfig()).fit(rows, labels)
        sets = ActiveLoop(s, LoopConfig()).representations()
        base = {"embedding", "morphology", "pixels", "combined"}
        assert set(sets) == base | ({"wide", "combined-wide"} if LoopConfig().auto_wide else set())
        assert set(ActiveLoop(s, LoopConfig(auto_wide=False)).representations()) == base
        info = auto.info["representation"]
        assert info["used"] == auto.representation and info["used"] in sets and info["reason"]
        assert set(info["cv_average_precision"]) == set(sets)
        fixed = ActiveLoop(s, LoopConfig(representation="morphology")).fit(rows, labels)
        assert fixed.representation == "morphology"
        emb = ActiveLoop(s, LoopConfig(representation="embedding")).fit(rows, labels)
        assert not np.allclose(fixed.mean, emb.mean)      # it did learn on something else
    assert load_sets(type("S", (), {})(), np.zeros((3, 2), np.float32)).keys() == {"embedding"}


def test_a_store_written_before_the_arc_numbers_still_serves_the_loop(store_with_features, tmp_path):
    """Stores keep the morphology vector they were written with: one from before the residual-arc
    numbers (the first 67 columns for 3 bands) is used as it is, and its columns mean what they did."""
    import shutil

    from galexplorer.active.loop import ActiveLoop
    from galexplorer.store import EmbeddingStore

    old = tmp_path / "old.h5"
    shutil.copyfile(store_with_features, old)
    with h5py.File(old, "r+") as f:
        full = f["features/morphology"][:]
        attrs = dict(f["features/morphology"].attrs)
        del f["features/morphology"]
        ds = f["features"].create_dataset("morphology", data=full[:, :67])
        for k, v in attrs.items():
            ds.attrs[k] = v
        ds.attrs["columns"] = feature_names(3)[:67]
    with EmbeddingStore(old) as s:
        sets = ActiveLoop(s, LoopConfig(representation="morphology")).representations()
        assert sets["morphology"].shape == (48, 67)
        peak = np.asarray(s.column("peak"), float)
        rows = np.arange(40)
        labels = np.where(peak[rows] > np.quantile(peak, 0.8), 5.0, 0.0)
        fit = ActiveLoop(s, LoopConfig(representation="morphology")).fit(rows, labels)
        assert fit.representation == "morphology" and np.isfinite(fit.mean).all()
    with EmbeddingStore(store_with_features) as s:
        new = ActiveLoop(s, LoopConfig(representation="morphology")).representations()["morphology"]
        assert new.shape == (48, 78)


def test_the_wide_view_as_a_candidate_and_as_a_fixed_representation(store_with_features):
    from galexplorer.active.features import learning_features
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_with_features) as s:
        wide = learning_features(s, 0.95, "per-component", 32).X
        sets = ActiveLoop(s, LoopConfig(auto_wide=True)).representations()
        np.testing.assert_array_equal(sets["wide"], wide)
        assert sets["wide"].shape[1] == sets["embedding"].shape[1] == 6  # 6 flat directions: all kept by both
        assert sets["combined-wide"].shape[1] == wide.shape[1] + sets["morphology"].shape[1]
        peak = np.asarray(s.column("peak"), float)
        rows = np.arange(40)
        labels = np.where(peak[rows] > np.quantile(peak, 0.8), 5.0, 0.0)
        fixed = ActiveLoop(s, LoopConfig(representation="wide", auto_wide=False)).fit(rows, labels)
        assert fixed.representation == "wide" and fixed.info["representation"]["reason"] == "wide (fixed)"
        # a loop whose own features are already the wide view uses them for "wide"
        same = ActiveLoop(s, LoopConfig(representation="wide", pca_components=32, feature_scaling="per-component"))
        assert same.representations()["wide"] is same.X


def test_widen_after_moves_the_default_to_the_wide_view_at_the_finds():
    """LoopConfig.widen_after: the default view until that many finds (the cold start is the
    default's), then combined-wide (or wide without morphology) is the set kept by default."""
    from galexplorer.active.representation import candidates

    rng = np.random.default_rng(3)
    n = 200
    sets = {k: rng.normal(size=(n, 4)) for k in ("embedding", "morphology", "combined", "wide", "combined-wide")}
    rows, labels = np.arange(40), np.zeros(40)
    labels[:1] = 5.0                                                 # one find
    assert choose(candidates(sets, labels, 3.0), rows, labels, 3.0).used == "combined"
    narrow = candidates(sets, labels, 3.0, widen_after=2)
    assert "wide" not in narrow and "combined-wide" not in narrow   # not yet: the wide sets are not candidates
    assert choose(narrow, rows, labels, 3.0, widen_after=2).used == "combined"
    c = choose(candidates(sets, labels, 3.0, widen_after=1), rows, labels, 3.0, widen_after=1)
    assert c.used == "combined-wide" and "the wide view after 1 find;" in c.reason and not c.scores
    no_morph = {"embedding": sets["embedding"], "wide": sets["wide"]}
    assert choose(no_morph, rows, labels, 3.0, widen_after=1).used == "wide"
    assert choose({"embedding": sets["embedding"]}, rows, labels, 3.0, widen_after=1).used == "embedding"
    labels[:6] = 5.0                                                 # enough finds to compare: wide sets compete
    c = choose(candidates(sets, labels, 3.0, widen_after=3), rows, labels, 3.0, widen_after=3)
    assert {"wide", "combined-wide"} <= set(c.scores)
    assert c.used == "combined-wide" or c.scores[c.used] > c.scores["combined-wide"] + MARGIN
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="widen_after must be a whole number"):
            LoopConfig(widen_after=bad)
    with pytest.raises(ConfigError, match="widen_after applies to the representation auto, not 'combined'"):
        LoopConfig(widen_after=1, representation="combined")


def test_the_loop_widens_after_its_first_find(store_with_features):
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_with_features) as s:
        loop = ActiveLoop(s, LoopConfig(widen_after=1))
        rows = np.arange(30)
        before = loop.fit(rows, np.zeros(30))
        assert before.representation == "combined"
        assert set(before.info["representation"]["cv_average_precision"]) == set()
        after = loop.fit(rows, np.r_[np.zeros(29), 5.0])
        assert after.representation == "combined-wide" and "wide view after 1 find" in after.info["representation"]["reason"]
        assert not np.allclose(before.mean, after.mean)
        assert LoopConfig.from_dict(LoopConfig(widen_after=1).to_dict()).widen_after == 1


def test_a_fixed_representation_the_store_lacks_is_a_clear_error(tmp_path, xdf_cutouts):
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.cli import main
    from galexplorer.store import EmbeddingStore

    path = tmp_path / "plain.h5"
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(48, 4)).astype(np.float32))
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "e.npy"), "-o", str(path),
                 "--projection", "pca", "--features", "none"]) == 0
    with EmbeddingStore(path) as s:
        with pytest.raises(StoreError, match="no morphology representation"):
            ActiveLoop(s, LoopConfig(representation="morphology")).fit(np.arange(30), np.r_[np.zeros(25), np.full(5, 5.0)])
        with pytest.raises(StoreError, match="no combined-wide representation.*needs the store's embeddings"):
            ActiveLoop(s, LoopConfig(representation="combined-wide")).fit(np.arange(30),
                                                                         np.r_[np.zeros(25), np.full(5, 5.0)])
        r = ActiveLoop(s, LoopConfig(auto_wide=False)).fit(np.arange(30), np.r_[np.zeros(25), np.full(5, 5.0)])
        assert r.representation == "embedding" and "no other representation" in r.info["representation"]["reason"]
        r = ActiveLoop(s, LoopConfig(auto_wide=True)).fit(np.arange(30), np.r_[np.zeros(25), np.full(5, 5.0)])
        assert set(r.info["representation"]["cv_average_precision"]) == {"embedding", "wide"}


def test_rank_and_simulate_take_the_option(store_with_features, capsys):
    from galexplorer.cli import main

    assert main(["simulate", str(store_with_features), "--truth", "peak", "--budget", "30", "--batch", "10",
                 "--representation", "pixels"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["rank", str(store_with_features), "--representation", "wavelets"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["rank", str(store_with_features), "--widen-after", "0"])
    assert exc.value.code == 2 and "--widen-after: expected a positive integer" in capsys.readouterr().err


def test_rank_saves_widen_after_with_the_ranking(store_with_features, tmp_path):
    import shutil

    from galexplorer.cli import main
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore
    from galexplorer.store.ranking import read_ranking

    path = tmp_path / "w.h5"
    shutil.copy(store_with_features, path)
    with EmbeddingStore(path) as st:
        ids, peak = list(st.ids), np.asarray(st.column("peak"), float)
    with LabelJournal.for_store(path, user="ann") as j:
        for i in range(30):
            j.score(str(ids[i]), 5 if peak[i] == peak[:30].max() else 0)
    assert main(["-q", "rank", str(path), "--widen-after", "1"]) == 0
    with EmbeddingStore(path) as st:
        r = read_ranking(path, st.uuid, st.n)
    assert r.config["widen_after"] == 1
    assert r.info["representation"]["used"] == "combined-wide"


def test_the_window_state_says_what_it_learns_on(store_with_features):
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.active.session import model_state
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_with_features) as s:
        rows = np.arange(30)
        r = ActiveLoop(s, LoopConfig(representation="morphology")).fit(rows, np.r_[np.zeros(25), np.full(5, 5.0)])
        state = model_state(r)
    assert state.representation == "morphology" and state.description.endswith("learns on morphology")
    assert state.representation_reason == "morphology (fixed)"
