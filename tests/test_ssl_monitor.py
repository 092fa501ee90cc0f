"""Collapse monitor and the kNN / linear-probe evaluation."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from galexplorer.errors import ConfigError
from galexplorer.ssl.collapse import CollapseMonitor, collapse_stats, effective_rank
from galexplorer.ssl.evaluate import evaluate, knn_accuracy, labelled_set


def test_effective_rank():
    rng = np.random.default_rng(0)
    assert effective_rank(np.ones((50, 8))) == 1.0
    line = rng.normal(size=(200, 1)) @ rng.normal(size=(1, 16))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-6)
    iso = rng.normal(size=(5000, 16))
    assert 14.5 < effective_rank(iso) <= 16


def test_collapse_is_flagged_loudly(caplog):
    rng = np.random.default_rng(1)
    healthy = rng.normal(size=(256, 64))
    stats = collapse_stats(healthy)
    assert stats.embedding_std == pytest.approx(1.0, abs=0.05) and not stats.collapsed
    collapsed = np.tile(rng.normal(size=(1, 64)), (256, 1)) + 1e-7 * rng.normal(size=(256, 64))
    mon = CollapseMonitor()
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        s = mon.check(collapsed, epoch=3)
    assert s.collapsed and s.embedding_std < 1e-4
    assert "REPRESENTATION COLLAPSE at epoch 3" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        mon.check(healthy, epoch=4)
    assert caplog.text == ""


def test_knn_and_linear_probe_on_separable_and_random_labels():
    rng = np.random.default_rng(2)
    y = np.repeat(["merger", "disc", "elliptical"], 60).astype(object)
    centres = rng.normal(size=(3, 32)) * 3
    x = centres[np.repeat(np.arange(3), 60)] + rng.normal(size=(180, 32))
    ls = labelled_set(y, "kind", seed=0)
    assert len(ls.test) == 54 and sorted(ls.classes) == ["disc", "elliptical", "merger"]
    knn, lin = evaluate(x[ls.rows], ls)
    assert knn > 0.95 and lin > 0.95
    shuffled = rng.permutation(ls.labels)
    chance = knn_accuracy(x[ls.train], shuffled[ls.train], x[ls.test], shuffled[ls.test])
    assert chance < 0.6


def test_labelled_set_skips_missing_and_rejects_continuous():
    vals = np.array([1.0, np.nan, 2.0, 1.0, 2.0, 1.0, 2.0, np.nan])
    ls = labelled_set(vals, "c")
    assert list(ls.rows) == [0, 2, 3, 4, 5, 6]
    with pytest.raises(ConfigError, match="looks continuous"):
        labelled_set(np.linspace(0, 1, 500), "peak")
    with pytest.raises(ConfigError, match="class"):
        labelled_set(np.array(["a"] * 10, dtype=object), "one")
