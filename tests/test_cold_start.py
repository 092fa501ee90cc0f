"""The cold start (galexplorer.active.cold_start): with ``cold_start="random-share"``, until the
first find a growing share of each batch is drawn at random; the loop, the window's status line
and the CLI say so. The default is ``model`` (every pick by the acquisition)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from active_synthetic import planted_store

from galexplorer.active.cold_start import RAMP, mix_random, random_share
from galexplorer.active.config import LoopConfig, loop_config
from galexplorer.active.loop import ActiveLoop
from galexplorer.active.session import model_state
from galexplorer.errors import ConfigError
from galexplorer.store import EmbeddingStore


def test_the_share_grows_by_a_third_per_findless_batch_after_the_first():
    assert [random_share(n, 10) for n in (0, 10, 19, 20, 30, 40, 200)] == [0, 0, 0, 1 / RAMP, 2 / RAMP, 1, 1]
    assert random_share(40, 20) == 1 / RAMP          # paced by the batch size


def test_mix_keeps_the_models_first_picks_and_draws_the_rest_from_the_eligible():
    eligible = np.ones(200, bool)
    eligible[:30] = False                            # labelled or excluded
    batch = np.arange(30, 40)
    out, cold = mix_random(batch, np.zeros(20), eligible, "random-share", 3.0, 10, seed=0)
    assert cold is not None and len(cold.random) == 3 and cold.batch == 10 and cold.n_labels == 20
    assert list(out[:7]) == list(batch[:7]) and list(out[7:]) == list(cold.random)
    assert eligible[out].all() and len(set(out.tolist())) == 10
    again, _ = mix_random(batch, np.zeros(20), eligible, "random-share", 3.0, 10, seed=0)
    assert list(again) == list(out)                  # pure: the same labels give the same batch
    other, _ = mix_random(batch, np.zeros(20), eligible, "random-share", 3.0, 10, seed=1)
    assert list(other[7:]) != list(out[7:])
    whole, cold = mix_random(batch, np.zeros(40), eligible, "random-share", 3.0, 10, seed=0)
    assert len(cold.random) == 10 and "this batch is drawn at random" in cold.reason
    assert "3 of this batch at random, 7 by the model" in mix_random(batch, np.zeros(20), eligible,
                                                                      "random-share", 3.0, 10, 0)[1].reason


@pytest.mark.parametrize("labels, mode", [
    (np.zeros(0), "random-share"),                   # no labels: the spanning batch
    (np.zeros(10), "random-share"),                  # the first batch after the spanning one
    (np.r_[np.zeros(39), 4.0], "random-share"),      # a find: the model alone
    (np.zeros(40), "model"),                         # the model-only start
])
def test_the_batch_is_the_models_where_the_cold_start_does_not_apply(labels, mode):
    batch = np.arange(10)
    out, cold = mix_random(batch, labels, np.ones(100, bool), mode, 3.0, 10, seed=0)
    assert cold is None and list(out) == list(batch)


def test_the_loop_mixes_random_picks_until_the_first_find_and_says_which(tmp_path):
    path, is_rare, _ = planted_store(tmp_path / "p.h5", n=400, rare=0.02, seed=1)
    dull = np.flatnonzero(~is_rare)[:40]
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(seed=0, representation="embedding", cold_start="random-share"))
        model_only = ActiveLoop(st, LoopConfig(seed=0, representation="embedding"))
        r = loop.fit(dull, np.ones(40))
        m = model_only.fit(dull, np.ones(40))
        cold = r.cold_start
        assert cold is not None and len(cold.random) == 10 and m.cold_start is None
        assert list(r.next_batch) == list(cold.random) and list(r.next_batch) != list(m.next_batch)
        assert not np.isin(r.next_batch, dull).any()
        assert np.array_equal(r.order, m.order)       # the ranking is the model's either way
        json.dumps(r.info)                            # saved with rankings as JSON
        state = model_state(r)
        assert state.picked_at_random(int(cold.random[0])) and not state.picked_at_random(int(dull[0]))
        assert "no score ≥ 3 in 40 labels yet: this batch is drawn at random" in state.description
        part = loop.fit(dull[:20], np.ones(20))
        assert len(part.cold_start.random) == 3
        assert list(part.next_batch[:7]) == list(model_only.fit(dull[:20], np.ones(20)).next_batch[:7])
        found = loop.fit(np.r_[dull[:19], np.flatnonzero(is_rare)[:1]], np.r_[np.ones(19), 5.0])
        assert found.cold_start is None and "at random" not in model_state(found).description


def test_the_option_reaches_the_config_and_a_bad_one_is_refused():
    assert LoopConfig().cold_start == "model"
    assert loop_config({"cold_start": "random-share"}).cold_start == "random-share"
    assert LoopConfig.from_dict({"scorer": "gp"}).cold_start == "model"   # a config saved before it
    with pytest.raises(ConfigError, match="unknown cold start 'often'"):
        LoopConfig(cold_start="often")


def test_simulate_takes_the_option(tmp_path, capsys):
    from galexplorer.cli import main

    path, _, _ = planted_store(tmp_path / "p.h5", n=300, rare=0.02, seed=2)
    out = tmp_path / "curve.csv"
    assert main(["simulate", str(path), "--truth", "truth", "--budget", "40", "--cold-start", "random-share",
                 "--no-remaining", "-o", str(out)]) == 0
    assert out.exists()
    with pytest.raises(SystemExit) as e:
        main(["simulate", str(path), "--truth", "truth", "--cold-start", "often"])
    assert e.value.code == 2


def test_rank_says_which_of_the_next_batch_are_random(tmp_path):
    from galexplorer.active.ranking import RankReport

    path, is_rare, _ = planted_store(tmp_path / "p.h5", n=300, rare=0.02, seed=1)
    dull = np.flatnonzero(~is_rare)[:30]
    with EmbeddingStore(path) as st:
        r = ActiveLoop(st, LoopConfig(seed=0, representation="embedding", cold_start="random-share")).fit(
            dull, np.zeros(30))
    text = RankReport(path, None, r, 0.1).summary()
    assert "no score ≥ 3 in 30 labels yet: 7 of this batch at random, 3 by the model" in text
