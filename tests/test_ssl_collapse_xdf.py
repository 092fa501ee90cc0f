"""The dimensional-collapse monitor on real XDF pixels: a collapsing run warns, a healthy one does not."""

from __future__ import annotations

import csv
import logging

import numpy as np
import pytest

from galexplorer.ssl.collapse import CollapseMonitor, pca_components
from galexplorer.ssl.config import TrainConfig
from galexplorer.ssl.trainer import train

TINY = dict(batch_size=16, image_size=16, device="cpu", proj_hidden=64, proj_dim=32, pred_hidden=64,
            monitor_objects=48, stats_objects=48, seed=0, warmup_epochs=0)


def _run(tmp_path, caplog, **kw):
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        rep = train(tmp_path["cut"], tmp_path["run"], TrainConfig.from_dict({**TINY, **kw}))
    with open(tmp_path["run"] / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return rep, rows, caplog.text


def _xdf_spectrum():
    """Real XDF pixels as 'embeddings' (64 stamps, centred) and their SVD (u, s)."""
    from xdf import xdf_stamps

    x = xdf_stamps(64, 16)[0].reshape(64, -1).astype(np.float64)
    x -= x.mean(axis=0)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    return x, u, s


@pytest.fixture
def where(tmp_path, xdf_cutouts):
    return {"cut": xdf_cutouts, "run": tmp_path / "run"}


def test_collapsing_configuration_warns(where, caplog):
    # BYOL with a learning rate 300x too high and no EMA: the stamps fall onto one direction
    rep, rows, text = _run(where, caplog, method="byol", lr=0.3, tau_base=0.0, epochs=1)
    assert "DIMENSIONAL COLLAPSE at epoch 1" in text and "--method vicreg" in text
    assert rep.dimensional_collapse and "WARNING" in rep.summary()
    assert float(rows[0]["effective_rank"]) < 3 and int(rows[0]["pca95"]) <= 2


def test_healthy_configuration_does_not_warn(where, caplog):
    rep, rows, text = _run(where, caplog, method="vicreg", lr=1e-3, epochs=2)
    assert "COLLAPSE" not in text and not rep.dimensional_collapse and not rep.collapsed
    # healthy tiny runs keep 4-10 components at epoch 1 (seeds 0-2, PSF 0-0.3 or 0-0.7 px) and
    # 9-23 at epoch 2; the collapsing one above has <= 2 and a rank below 3
    assert all(float(r["effective_rank"]) > 10 and int(r["pca95"]) >= 3 for r in rows)
    assert int(rows[-1]["pca95"]) > int(rows[0]["pca95"])


def test_monitor_compares_with_its_starting_value(caplog):
    """Real XDF pixels as the 'embeddings': all of them, then projected onto ever fewer directions."""
    x, u, s = _xdf_spectrum()
    mon = CollapseMonitor(reference=None)
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        first = mon.check(x, 1)
        mon.check(u[:, :40] * s[:40], 2)            # most of the variance kept: healthy
        assert caplog.text == "" and not mon.dimensional
        mon.check(u[:, :2] * s[:2], 3)              # two directions left
        assert "dip at epoch 3" in caplog.text and "!!!" not in caplog.text
        mon.finish(3)                               # ... and still at the last epoch
    assert "DIMENSIONAL COLLAPSE at epoch 3, the last epoch" in caplog.text and mon.dimensional
    assert mon.reference == (first.effective_rank, first.pca95) and first.pca95 == pca_components(x)
    with pytest.raises(ValueError, match="fraction"):
        CollapseMonitor(fraction=1.5)


def test_monitor_tells_learning_from_collapse(caplog):
    """A run that learns may lose half of the untrained network's rank (SimCLR with the default
    augmentations fell to 0.43 of it on the XDF benchmark while every probe rose); the warning is
    for runs that keep a tenth of it or less, or put 95% of the variance on one direction."""
    from galexplorer.ssl.collapse import PCA_COLLAPSE, RANK_FRACTION

    x, u, s = _xdf_spectrum()
    mon = CollapseMonitor(reference=None)
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        start = mon.check(x, 1)
        learnt = mon.check(u[:, :16] * s[:16], 2)          # ~0.37 of the rank, 9 components: learning
        assert 0.3 < learnt.effective_rank / start.effective_rank < 0.5 and learnt.pca95 > PCA_COLLAPSE
        assert caplog.text == "" and not mon.dimensional   # the old rule (half the rank) warned here
        lost = mon.check(u[:, :3] * s[:3], 3)              # 0.08 of the rank: collapse
        mon.finish(3)
    assert lost.effective_rank < RANK_FRACTION * start.effective_rank and lost.pca95 > PCA_COLLAPSE
    assert "DIMENSIONAL COLLAPSE at epoch 3" in caplog.text and mon.dimensional
    assert "augment.noise_scale" in caplog.text


def test_an_early_dip_on_one_direction_is_not_an_alarm(caplog):
    """95% of the variance on one direction with the rank holding: a note in the first epochs (the
    default CPU run passes through it at epochs 2-3), the loud warning after them."""
    from galexplorer.ssl.collapse import EARLY_EPOCHS, RANK_FRACTION

    x, u, s = _xdf_spectrum()
    spread = u[:, :40] * s[0]                    # the stamps' 40 main directions, whitened
    one_way = spread.copy()
    one_way[:, 0] *= 28.0                       # one of them holds 95% of the variance, the others remain
    mon = CollapseMonitor(reference=None)
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        start = mon.check(spread, 1)
        dip = mon.check(one_way, 2)
        assert dip.pca95 == 1 and dip.effective_rank > RANK_FRACTION * start.effective_rank
        assert "early dip at epoch 2" in caplog.text and "!!!" not in caplog.text
        assert mon.dimensional_now and mon.dimensional_epochs == [2]
        mon.check(one_way, EARLY_EPOCHS + 1)           # after the early epochs it is a dip to watch ...
        assert f"dip at epoch {EARLY_EPOCHS + 1}" in caplog.text and "!!!" not in caplog.text
        mon.check(one_way, EARLY_EPOCHS + 2)
        mon.check(one_way, EARLY_EPOCHS + 3)           # ... and an alarm once it has lasted 3 epochs
    assert f"!!! DIMENSIONAL COLLAPSE at epochs {EARLY_EPOCHS + 1}-{EARLY_EPOCHS + 3}" in caplog.text
    assert caplog.text.count("!!!") == 2               # one alarm (opening and closing marks)
    assert mon.dimensional_epochs == [2, EARLY_EPOCHS + 1, EARLY_EPOCHS + 2, EARLY_EPOCHS + 3]


def test_a_dip_that_recovers_is_reported_as_over(caplog, tmp_path):
    """SimCLR's rank can dip in the first epochs and come back (the demo: epochs 3-14): the log
    says when it is over, and the run's summary does not call the finished run collapsed."""
    from galexplorer.ssl.collapse import epoch_ranges
    from galexplorer.ssl.trainer import TrainReport

    x, u, s = _xdf_spectrum()
    mon = CollapseMonitor(reference=None)
    with caplog.at_level(logging.WARNING, logger="galexplorer.ssl.collapse"):
        mon.check(x, 1)
        mon.check(u[:, :2] * s[:2], 2)
        mon.check(u[:, :3] * s[:3], 3)
        assert mon.dimensional_now and "over" not in caplog.text
        mon.check(u[:, :30] * s[:30], 4)
        mon.finish(4)
    assert "dimensional collapse over at epoch 4" in caplog.text
    assert "!!!" not in caplog.text and "DIMENSIONAL COLLAPSE" not in caplog.text   # it printed at epoch 2
    assert mon.dimensional and not mon.dimensional_now and mon.dimensional_epochs == [2, 3]
    assert epoch_ranges([3, 4, 5, 7, 9, 10]) == "3-5, 7, 9-10"

    def summary(at_end):
        return TrainReport(tmp_path, 4, 4, 1.0, 10.0, None, dimensional_collapse=True,
                           dimensional_epochs=[2, 3], dimensional_at_end=at_end).summary()
    assert "over by the last epoch" in summary(False) and "WARNING" not in summary(False)
    assert "WARNING: dimensional collapse at epoch(s) 2-3, still at the last epoch" in summary(True)
