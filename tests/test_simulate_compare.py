"""``simulate --compare``: every scorer on the same store and seeds, one table, one plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from active_synthetic import planted_store, restore_cli_logging

from galexplorer.active.loop import LoopConfig
from galexplorer.active.registry import DEFAULT_SCORER, SCORERS
from galexplorer.active.simulate import SimulateConfig, compare, simulate, write_compare
from galexplorer.cli import main
from galexplorer.errors import ConfigError
from galexplorer.store import EmbeddingStore

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return planted_store(tmp_path_factory.mktemp("cmp") / "store.h5", 1500, rare=0.02)


def test_compare_rows_match_single_runs(store, tmp_path):
    path, rare, _ = store
    cfg = SimulateConfig(truth="truth", budget=40, batch=10)
    with EmbeddingStore(path) as st:
        report = compare(st, cfg, scorers=["gp", "iforest", "portfolio"], seeds=2)
        single = simulate(st, SimulateConfig(truth="truth", budget=40, batch=10,
                                             loop=LoopConfig(scorer="gp", seed=1)))
    assert [r.scorer for r in report.rows] == ["gp", "iforest", "portfolio"]
    gp = report.row("gp")
    # seed 1 of the comparison is the single run with seed 1
    assert gp.found[50] is None and len(gp.curve) == 40
    expect = np.cumsum(rare[single.label_order])
    assert gp.curve[-1] == pytest.approx((np.cumsum(rare[report_labels(st_path=path, seed=0)])[-1] + expect[-1]) / 2)
    assert report.row("portfolio").default == (DEFAULT_SCORER == "portfolio")
    text = report.summary()
    for name in ("gp", "iforest", "portfolio", "random", "recall@10", "RWS(40)", "found@50", "refit s"):
        assert name in text
    csv, png = write_compare(report, tmp_path / "cmp.csv")
    df = pd.read_csv(csv)
    assert list(df.columns) == ["labels", "gp", "iforest", "portfolio"] and len(df) == 40
    assert df["iforest"].iloc[-1] == report.row("iforest").curve[-1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def report_labels(st_path, seed):
    with EmbeddingStore(st_path) as st:
        return simulate(st, SimulateConfig(truth="truth", budget=40, batch=10,
                                           loop=LoopConfig(scorer="gp", seed=seed))).label_order


def test_compare_bad_input(store):
    path, _, _ = store
    with EmbeddingStore(path) as st:
        with pytest.raises(ConfigError, match="unknown scorer"):
            compare(st, SimulateConfig(truth="truth", budget=20), scorers=["gp", "magic"])


def test_cli_compare(store, tmp_path, capsys):
    path, _, _ = store
    out = tmp_path / "c.csv"
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "20", "--batch", "10", "--compare",
                 "--scorers", "iforest,aad", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "iforest" in text and "aad" in text and out.exists() and out.with_suffix(".png").exists()
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "20", "--compare",
                 "--scorers", "nope"]) == 2
    assert "unknown scorer" in capsys.readouterr().err
    # every registered scorer is a --scorer choice
    for name in SCORERS:
        assert main(["simulate", str(path), "--truth", "truth", "--budget", "10", "--scorer", name]) == 0
