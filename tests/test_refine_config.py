"""The options of an encoder refine and of a head refine share one base
(:class:`galexplorer.ssl.refine_config.FixMatchConfig`): the JSON written beside each output keeps
its keys and reads back to the same config, and each keeps its own defaults and checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from galexplorer.errors import ConfigError
from galexplorer.ssl.refine import RefineConfig
from galexplorer.ssl.refine_config import FixMatchConfig
from galexplorer.ssl.refine_head import FeatureHead, HeadRefineConfig, HeadRefineReport, load_head, save_head

SHARED = {"epochs", "fixed_epochs", "patience", "batch_size", "unlabelled_ratio", "confidence",
          "unlabelled_weight", "lr", "weight_decay", "holdout", "interesting_above", "seed", "device"}
# the keys of refine.json's and head.json's "config" before the shared base (issue #24)
ENCODER_KEYS = SHARED | {"head_lr"}
HEAD_KEYS = SHARED | {"hidden", "dim", "min_steps", "weak_noise", "strong_noise", "strong_dropout"}


def test_both_configs_are_the_shared_base_with_their_own_keys():
    assert issubclass(RefineConfig, FixMatchConfig) and issubclass(HeadRefineConfig, FixMatchConfig)
    assert set(RefineConfig().to_dict()) == ENCODER_KEYS
    assert set(HeadRefineConfig().to_dict()) == HEAD_KEYS


@pytest.mark.parametrize("cls, changed", [
    (RefineConfig, {"epochs": 7, "head_lr": 5e-4, "device": "cpu", "interesting_above": 4.0}),
    (HeadRefineConfig, {"dim": 16, "fixed_epochs": 0, "strong_dropout": 0.3, "seed": 3, "lr": 2e-3}),
])
def test_the_json_round_trips(cls, changed):
    cfg = cls(**changed).validate()
    back = cls.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and type(back) is cls
    assert all(getattr(back, k) == v for k, v in changed.items())


def test_head_json_keeps_its_config_keys_and_reads_back(tmp_path):
    cfg = HeadRefineConfig(hidden=8, dim=3, patience=2, device="cpu")
    save_head(tmp_path, FeatureHead(5, 8, 3), cfg, HeadRefineReport(tmp_path, 10, 2, 0, 0, in_dim=5), "key")
    _, meta = load_head(tmp_path)
    assert set(meta["config"]) == HEAD_KEYS
    assert HeadRefineConfig.from_dict(meta["config"]) == cfg


def test_each_keeps_its_defaults_and_its_own_checks():
    enc, head = RefineConfig(), HeadRefineConfig()
    assert (enc.epochs, enc.fixed_epochs, enc.batch_size, enc.lr) == (20, 6, 32, 1e-4)
    assert (head.epochs, head.fixed_epochs, head.batch_size, head.lr) == (100, 0, 64, 1e-3)
    with pytest.raises(ConfigError, match="^refine fixed_epochs must be >= 1"):
        RefineConfig(fixed_epochs=0).validate()
    head.fixed_epochs = 0
    head.validate()                                     # a head may skip training
    with pytest.raises(ConfigError, match="^head refine fixed_epochs must be >= 0"):
        HeadRefineConfig(fixed_epochs=-1).validate()
    with pytest.raises(ConfigError, match="^head refine dim must be >= 1"):
        HeadRefineConfig(dim=0).validate()
    with pytest.raises(ConfigError, match="^learning rates must be > 0"):
        RefineConfig(head_lr=0).validate()
    with pytest.raises(ConfigError, match="^the learning rate must be > 0"):
        HeadRefineConfig(lr=0).validate()
    with pytest.raises(ConfigError, match="noise levels"):
        HeadRefineConfig(strong_noise=-1).validate()
    for cls in (RefineConfig, HeadRefineConfig):     # the shared checks, in the same order
        with pytest.raises(ConfigError, match="^unlabelled_ratio"):
            cls(unlabelled_ratio=-1, confidence=2, holdout=0.9).validate()
        with pytest.raises(ConfigError, match="^confidence"):
            cls(confidence=0.5, holdout=0.9).validate()
        with pytest.raises(ConfigError, match="^holdout"):
            cls(holdout=0.5, lr=0).validate()


@pytest.mark.parametrize("cls", [RefineConfig, HeadRefineConfig])
def test_finds_are_the_labels_at_the_threshold_and_need_both_sides(cls):
    np.testing.assert_array_equal(cls(interesting_above=3).finds(np.array([5.0, 0, 3, 2.9])), [1, 0, 1, 0])
    for labels in ([5.0, 4.0], [0.0, 1.0, 2.0]):
        with pytest.raises(ConfigError, match="^refining needs labels on both sides of 3: "):
            cls().finds(np.array(labels))
