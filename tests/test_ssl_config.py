"""TrainConfig: defaults, TOML/JSON files, precedence of command-line options, validation."""

from __future__ import annotations

import json

import pytest

from galexplorer.errors import ConfigError
from galexplorer.ssl.config import TrainConfig, config_from_options, load_config_file, resume_overrides


def test_defaults_are_valid_and_round_trip():
    cfg = TrainConfig()
    cfg.validate(3)
    # the defaults chosen by benchmarks/bench_representation.py (docs/training.md)
    assert cfg.method == "simclr" and cfg.temperature == 0.1 and cfg.tau_base == 0.99
    assert cfg.head_sizes() == (2048, 128, 0) and not cfg.augment.flux
    assert cfg.augment.noise_scale == (0.0, 5.0) and cfg.augment.jitter_px == 3 and cfg.augment.blur_sigma == (0.0, 0.3)
    assert TrainConfig(method="byol").head_sizes() == (4096, 256, 4096)
    assert TrainConfig(method="vicreg").head_sizes() == (2048, 2048, 0)
    again = TrainConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg


def test_toml_file_then_command_line(tmp_path):
    f = tmp_path / "run.toml"
    f.write_text('method = "simclr"\nbatch-size = 64\nepochs = 7\n[augment]\nnoise_scale = [0, 5]\n'
                 'extinction = [3.3, 2.3, 1.7]\n')
    cfg = config_from_options({"epochs": 3, "lr": None}, str(f))
    assert cfg.method == "simclr" and cfg.batch_size == 64 and cfg.epochs == 3
    assert cfg.augment.noise_scale == (0.0, 5.0) and cfg.augment.reddening_on
    assert cfg.head_sizes() == (2048, 128, 0)
    cfg.validate(3)
    with pytest.raises(ConfigError, match="3 values for 5 bands"):
        cfg.validate(5)


def test_json_file(tmp_path):
    f = tmp_path / "run.json"
    f.write_text(json.dumps({"backbone": "resnet34", "augment": {"blur": False}}))
    cfg = config_from_options(config_file=f)
    assert cfg.backbone == "resnet34" and cfg.augment.blur is False


@pytest.mark.parametrize("text, message", [
    ('bogus = 1\n', "unknown option 'bogus'"),
    ('[augment]\nrotation = true\n', "unknown augmentation option 'rotation'"),
    ('method = \n', "invalid TOML"),
    ('[augment]\nflip = 1\n', "must be true or false"),
])
def test_bad_files(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        config_from_options(config_file=str(f))


def test_options_without_a_file_and_resume_overrides(tmp_path):
    assert config_from_options() == TrainConfig()
    assert config_from_options({"method": "byol", "seed": None}).method == "byol"
    with pytest.raises(ConfigError, match="unknown option 'bogus'"):
        config_from_options({"bogus": 1})
    f = tmp_path / "run.toml"
    f.write_text('batch-size = 64\nepochs = 7\n')
    # on --resume: the file's options, then the options given, override the checkpoint's config
    assert resume_overrides({"epochs": 9, "lr": None}, f) == {"batch_size": 64, "epochs": 9}
    assert resume_overrides({"lr": None}) == {}


def test_missing_and_unknown_file_type(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config_file(tmp_path / "none.toml")
    (tmp_path / "x.yaml").write_text("a: 1")
    with pytest.raises(ConfigError, match="unknown config file type"):
        load_config_file(tmp_path / "x.yaml")


@pytest.mark.parametrize("kw, message", [
    ({"backbone": "resnet101"}, "unknown backbone 'resnet101'"),
    ({"method": "moco"}, "unknown method"),
    ({"batch_size": 1}, "at least 2"),
    ({"temperature": 0.0}, "temperature"),
    ({"lr": -1.0}, "lr must be"),
    ({"image_size": 4}, "image_size"),
    ({"tau_base": 1.0}, "tau_base"),
])
def test_validation(kw, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kw).validate()


def test_bad_augment_ranges():
    cfg = TrainConfig.from_dict({"augment": {"gain_range": [1.2, 0.8]}})
    with pytest.raises(ConfigError, match="gain_range"):
        cfg.validate()
    with pytest.raises(ConfigError, match="needs augment.extinction"):
        TrainConfig.from_dict({"augment": {"reddening": True}}).validate()
