"""Simulated labelling with a catalogue column as the oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from active_synthetic import planted_store, restore_cli_logging

from galexplorer.active.loop import LoopConfig
from galexplorer.active.metrics import precision_at_k, rank_weighted_score, recall_at_k
from galexplorer.active.oracle import ColumnOracle
from galexplorer.active.simulate import REMAINING_COLUMNS, SimulateConfig, simulate, write_curve
from galexplorer.cli import main
from galexplorer.errors import ConfigError, StoreError
from galexplorer.store import EmbeddingStore

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return planted_store(tmp_path_factory.mktemp("sim") / "store.h5", 2000, rare=0.02)


def test_metrics_by_hand():
    order = np.array([3, 1, 0, 2, 4])
    interesting = np.array([False, True, False, True, False])
    assert recall_at_k(order, interesting, 2) == 1.0
    assert precision_at_k(order, interesting, 3) == pytest.approx(2 / 3)
    # RWS(3): weights 3, 2, 1 on hits at positions 0, 1 -> (3 + 2) / 6
    assert rank_weighted_score(order, interesting, 3) == pytest.approx(5 / 6)
    assert rank_weighted_score(np.array([0, 1, 3]), interesting, 3) == pytest.approx(3 / 6)


def test_oracle_maps_and_rounds():
    o = ColumnOracle(np.array([0.0, 0.1, 0.5, 0.95, 1.0, np.nan]), scale=5)
    np.testing.assert_array_equal(o.scores, [0, 1, 3, 5, 5, 0])  # 0.5 -> 2.5 -> 3 (half up)
    with pytest.raises(ConfigError, match="not numeric"):
        ColumnOracle(np.array(["a", "b"], dtype=object))
    with pytest.raises(ConfigError, match="constant"):
        ColumnOracle(np.ones(4))
    with pytest.raises(ConfigError, match="scale"):
        ColumnOracle(np.arange(4.0), scale=10)


def test_simulate_finds_rare_class(store, tmp_path):
    path, rare, _ = store
    with EmbeddingStore(path) as st:
        report = simulate(st, SimulateConfig(truth="truth", budget=60, batch=10, seeds=3,
                                             loop=LoopConfig(scorer="gp")))
    assert report.n_interesting == rare.sum() == 40 and report.n_labels == 60
    loop_top100 = report.loop.curve[99]
    random_top100 = report.random.curve[99]
    assert loop_top100 >= 5 * random_top100, (loop_top100, random_top100)
    assert report.loop.rws[60] > 5 * report.random.rws[60]
    text = report.summary()
    assert "recall@100" in text and "RWS(60)" in text
    csv, png = write_curve(report, tmp_path / "curve.csv")
    df = pd.read_csv(csv)
    assert list(df.columns) == ["position", "found_by_loop", "found_random", "found_anomaly", *REMAINING_COLUMNS]
    assert len(df) == 2000 and df["found_by_loop"].iloc[-1] == 40
    assert png.read_bytes()[:4] == b"\x89PNG"
    # the remaining-count estimate at every refit (10, 20, ..., 60 labels), beside the truth
    assert [r.labels for r in report.remaining] == [10, 20, 30, 40, 50, 60]
    at = df.dropna(subset=["remaining_estimate"])
    assert at["position"].tolist() == [10, 20, 30, 40, 50, 60]
    for r, (_, row) in zip(report.remaining, at.iterrows()):
        assert r.found + r.true == 40 == row["found_by_labelling"] + row["remaining_true"]
        assert row["remaining_low"] <= row["remaining_estimate"] <= row["remaining_high"]
        assert row["remaining_rel_error"] == pytest.approx((r.estimate.expected - r.true) / r.true, abs=1e-3)
    assert "interesting objects left" in text and "true" in text


def test_remaining_estimate_tracks_the_truth(store):
    """On the planted set the GP's estimate after 60 labels is within a factor of 2 of the truth."""
    path, _, _ = store
    with EmbeddingStore(path) as st:
        report = simulate(st, SimulateConfig(truth="truth", budget=60, batch=20, loop=LoopConfig(scorer="gp")))
    last = report.remaining[-1]
    assert last.true > 0 and 0.5 <= last.estimate.expected / last.true <= 2.0, (last.estimate, last.true)


def test_bad_input(store, tmp_path):
    path, _, _ = store
    with EmbeddingStore(path) as st:
        with pytest.raises(StoreError, match="no catalogue column 'nope'"):
            simulate(st, SimulateConfig(truth="nope"))
        with pytest.raises(ConfigError, match="not numeric"):
            simulate(st, SimulateConfig(truth="kind"))
        with pytest.raises(ConfigError, match="larger than the 2000"):
            simulate(st, SimulateConfig(truth="truth", budget=5000))
        with pytest.raises(ConfigError, match="no object has an oracle score"):
            simulate(st, SimulateConfig(truth="truth", interesting_above=6))


def test_cli_simulate(store, tmp_path, capsys):
    path, _, _ = store
    out = tmp_path / "c.csv"
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "30", "--batch", "10",
                 "--scorer", "knn", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "recall@10" in text and out.exists() and out.with_suffix(".png").exists()
    assert "no remaining-count estimate" not in text and "interesting objects left" in text
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "20", "--scorer", "iforest"]) == 0
    assert "no remaining-count estimate: the iforest scorer has no uncertainty" in capsys.readouterr().out
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "20", "--no-remaining", "-o", str(out)]) == 0
    assert "interesting objects left" not in capsys.readouterr().out
    assert pd.read_csv(out)["remaining_estimate"].isna().all()
    assert main(["simulate", str(path), "--truth", "kind", "--budget", "30"]) == 2
    err = capsys.readouterr().err
    assert "not numeric" in err and "Traceback" not in err


def test_the_anomaly_baseline_is_ordered_by_the_ranking_rule(store):
    """#24: the anomaly baseline's order comes from the one ranking rule, and is the order the
    simulation's own ``np.lexsort`` gave (decreasing prior, ties by row), ties and -0.0 included."""
    from galexplorer.active.loop import ActiveLoop
    from galexplorer.active.simulate import anomaly_order

    rng = np.random.default_rng(0)
    tied = rng.choice(np.float32([0.0, -0.0, 1.25, 2.5, 5.0]), 5000)
    tied[::7] = rng.uniform(0, 5, len(tied[::7])).astype(np.float32)
    with EmbeddingStore(store[0]) as s:
        prior = ActiveLoop(s, LoopConfig(seed=3)).anomaly_prior()
    for p in (tied, prior, np.zeros(50, np.float32)):
        before = np.lexsort((np.arange(len(p)), -p.astype(np.float64)))
        np.testing.assert_array_equal(anomaly_order(p), before)
    assert anomaly_order(tied).dtype == np.int64
