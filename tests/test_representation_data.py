"""The benchmark data: XDF stamps with injected rare classes, and per-stamp morphology."""

from __future__ import annotations

import numpy as np
import pytest

from galexplorer.data.inject import CLASSES, inject_pair, inject_ring, xdf_benchmark_set
from galexplorer.data.morphology import measure_morphology, stamp_morphology


def _gauss(size=41, sigma_major=4.0, q=1.0, angle=0.0, dx=0.0, amp=1.0):
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    u = (xx - dx) * np.cos(angle) + yy * np.sin(angle)
    v = -(xx - dx) * np.sin(angle) + yy * np.cos(angle)
    return amp * np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / (q * sigma_major)) ** 2))


def test_morphology_of_known_profiles():
    rng = np.random.default_rng(0)
    noise = lambda: 1e-3 * rng.normal(size=(41, 41))  # noqa: E731
    round_ = stamp_morphology(_gauss() + noise(), nsigma=3)
    # a circular Gaussian: r50 = 1.177 sigma, C = 5 log10(r80/r20) = 2.14, symmetric, round
    assert round_["size"] == pytest.approx(1.177 * 4, abs=0.6)
    assert round_["concentration"] == pytest.approx(2.14, abs=0.3)
    assert round_["asymmetry"] < 0.05 and round_["ellipticity"] < 0.05
    flat = stamp_morphology(_gauss(q=0.4, angle=0.7) + noise(), nsigma=3)
    assert flat["ellipticity"] == pytest.approx(0.6, abs=0.08)
    pair = stamp_morphology(_gauss(sigma_major=3) + _gauss(sigma_major=2, dx=7, amp=0.6) + noise(), nsigma=3)
    assert pair["asymmetry"] > 5 * round_["asymmetry"] + 0.1
    assert np.isnan(stamp_morphology(np.zeros((3, 20, 20)))["size"])
    m = measure_morphology(np.stack([_gauss(), _gauss(q=0.5)])[:, None])
    assert m["ellipticity"][1] > m["ellipticity"][0] + 0.3
    with pytest.raises(ValueError, match="stamps"):
        measure_morphology(np.zeros(5))


def test_injections_are_made_of_the_hosts_light():
    rng = np.random.default_rng(1)
    host = np.clip(np.stack([_gauss(sigma_major=3, amp=0.5)] * 3) + 0.05, 0, 1).astype(np.float32)
    comp = np.clip(np.stack([_gauss(sigma_major=2, amp=0.8)] * 3) + 0.05, 0, 1).astype(np.float32)
    p = inject_pair(host, comp, rng)
    assert p.shape == host.shape and p.dtype == np.float32 and 0 <= p.min() and p.max() <= 1
    added = (p - host).sum(axis=0)
    # the companion sits off-centre and carries at most its own flux
    yy, xx = np.unravel_index(np.argmax(added), added.shape)
    assert np.hypot(yy - 20, xx - 20) >= 2
    # light moved into the companion, the total kept: not findable by brightness
    assert (p - 0.05).sum() == pytest.approx((host - 0.05).sum(), rel=1e-3)
    assert added[20, 20] < 0 < added.max()
    r = inject_ring(host, rng) - host
    ring = r.sum(axis=0)
    yy, xx = np.mgrid[:41, :41] - 20
    rad = np.hypot(yy, xx)
    assert ring[(rad > 3) & (rad < 18)].sum() > 0 > ring[rad < 2].sum()


def test_benchmark_set_is_deterministic_and_labelled():
    a = xdf_benchmark_set(seed=3, size=32, per_class=3, limit=60)
    b = xdf_benchmark_set(seed=3, size=32, per_class=3, limit=60, morphology=False)
    c = xdf_benchmark_set(seed=4, size=32, per_class=3, limit=60, morphology=False)
    assert a.stamps.shape == (60 + 4 * 3, 3, 32, 32) and a.stamps.dtype == np.float32
    assert np.array_equal(a.stamps, b.stamps) and not np.array_equal(a.stamps[60:], c.stamps[60:])
    assert a.class_names == CLASSES and list(np.bincount(a.labels)) == [60, 3, 3, 3, 3]
    assert a.ids[0] == "XDF0000" and a.ids[60] == "INJ-pair-0000" and len(set(a.ids)) == len(a.ids)
    assert a.rare.sum() == 12 and b.morphology == {}
    # every injected stamp differs from the real stamp it was made from
    for i in np.where(a.rare)[0]:
        assert np.abs(a.stamps[i] - a.stamps[a.host[i]]).sum() > 1.0
    assert set(a.morphology) == {"size", "concentration", "asymmetry", "ellipticity", "flux"}
    assert np.isfinite(a.morphology["size"]).mean() > 0.9
