"""Shipped presets and examples (galexplorer/resources/): `train --preset`, `galexplorer presets`,
the run's config fed back with --config, the example catalogues and settings, and the wheel."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from galexplorer import presets
from galexplorer.active.config import LoopConfig, loop_config
from galexplorer.cli import build_parser, main
from galexplorer.errors import ConfigError
from galexplorer.ssl.config import TrainConfig, config_from_options

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "galexplorer" / "resources"
EXAMPLES = RESOURCES / "examples"
NAMES = ["cpu", "cpu-quick", "gpu-survey", "optical-multiband", "radio-single-band"]
LOOP_NAMES = ["loop-default", "loop-hedge", "loop-known-targets"]
TRAIN_KEYS = ("method", "backbone", "stem", "epochs", "batch_size", "lr", "image_size", "device", "seed",
              "workers", "eval_column")


def test_the_presets_are_shipped():
    assert presets.preset_names("train") == NAMES
    assert presets.preset_names("loop") == LOOP_NAMES


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_says_what_it_is_for_and_resolves(name):
    text = presets.preset_text(name)
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line)
    assert comment and len(presets.preset_summary(name)) > 20
    # the figures behind it, or an honest "not yet measured"
    assert "Figures" in "\n".join(comment) or "figures" in "\n".join(comment).lower()
    assert re.search(r"\d", "\n".join(comment[1:])) or "not yet measured" in "\n".join(comment)
    cfg = config_from_options(preset=name)
    cfg.validate(n_bands={"optical-multiband": 3, "radio-single-band": 1}.get(name))
    assert cfg != TrainConfig(), "a preset that changes nothing"


def _readme_cpu_recipe() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    k = next(i for i, line in enumerate(lines) if "CPU recipe" in line)
    return lines[k + 1].split()[1:]          # drop "galexplorer"


def _resolve(argv: list[str]) -> TrainConfig:
    args = build_parser().parse_args(argv)
    return config_from_options({k: getattr(args, k) for k in TRAIN_KEYS}, args.config, args.preset)


def test_cpu_quick_is_the_readme_cpu_recipe():
    recipe = _readme_cpu_recipe()
    assert recipe[0] == "train" and "--device" in recipe
    assert _resolve(["train", "cut.h5", "-o", "run", "--preset", "cpu-quick"]) == _resolve(recipe)


def test_config_file_and_command_line_win_over_the_preset(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text("epochs = 7\nlr = 0.002\n[augment]\nnoise = false\n")
    cfg = _resolve(["train", "c.h5", "-o", "r", "--preset", "cpu-quick", "--config", str(f), "--lr", "0.003"])
    assert (cfg.epochs, cfg.lr, cfg.augment.noise) == (7, 0.003, False)
    assert (cfg.image_size, cfg.batch_size, cfg.device) == (48, 128, "cpu")        # from the preset
    # the preset's [augment] table merges with the defaults, and a file's with the preset's
    radio = _resolve(["train", "c.h5", "-o", "r", "--preset", "radio-single-band", "--config", str(f)])
    assert (radio.augment.gain, radio.augment.reddening, radio.augment.noise) == (False, False, False)
    assert radio.augment.rotate


def test_unknown_preset_is_one_line_naming_the_valid_ones(tmp_path, capsys, xdf_cutouts):
    for argv in (["train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--preset", "cpu-fast"],
                 ["presets", "cpu-fast"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "unknown preset 'cpu-fast'" in err
        assert all(n in err for n in NAMES)
    assert not (tmp_path / "run").exists()


def test_unknown_key_is_one_line_naming_the_valid_ones(tmp_path, capsys, xdf_cutouts, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch = 3\n")
    assert main(["train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown option 'epoch'" in err and "epochs" in err
    # the same check guards the shipped files: a preset with a misspelt key names the valid ones
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "typo.toml").write_text("# a typo\n[augment]\nrotation = false\n")
    monkeypatch.setattr(presets, "_folder", lambda kind: folder)
    with pytest.raises(ConfigError, match=r"preset typo: unknown augmentation option 'rotation'.*valid: .*rotate"):
        config_from_options(preset="typo")


def test_presets_command_lists_each_with_its_first_comment_line(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "train --preset:" and out[len(NAMES) + 1] == "rank/simulate --preset:"
    listed = [line.split()[0] for line in out if line.startswith("  ")]
    assert listed == NAMES + LOOP_NAMES
    for line in out:
        if line.startswith("  "):
            assert line.endswith(presets.preset_summary(line.split()[0]))
    for name in ("cpu-quick", "loop-hedge"):
        assert main(["presets", name]) == 0
        assert capsys.readouterr().out == presets.preset_text(name)


# --------------------------------------------------------------------------------------------
# loop presets (rank, simulate)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LOOP_NAMES)
def test_each_loop_preset_says_what_it_is_for_and_resolves(name):
    text = presets.preset_text(name, "loop")
    assert text.startswith("# ") and "Figures behind it" in text and re.search(r"\d", text)
    assert isinstance(loop_config(preset=name), LoopConfig)


def test_loop_default_is_the_default_loop():
    assert loop_config(preset="loop-default") == LoopConfig()


def _loop_args(argv):
    from galexplorer.cli import _loop_config

    args = build_parser().parse_args(argv)
    extra = {"knn_k": args.knn_k} if argv[0] == "rank" else {"batch_size": args.batch}
    return _loop_config(args, interesting_above=args.interesting_above, **extra)


def test_rank_and_simulate_take_a_loop_preset_and_options_win():
    assert _loop_args(["rank", "s.h5"]) == LoopConfig()
    hedge = _loop_args(["rank", "s.h5", "--preset", "loop-hedge", "--interesting-above", "4"])
    assert (hedge.scorer, hedge.interesting_above) == ("portfolio", 4.0)
    sim = _loop_args(["simulate", "s.h5", "--truth", "t", "--preset", "loop-known-targets", "--batch", "5"])
    assert (sim.scorer, sim.batch_size, sim.xi) == ("gp", 5, 0.5)


def test_a_training_preset_is_not_a_loop_preset(tmp_path, capsys, xdf_cutouts, monkeypatch):
    assert main(["rank", str(tmp_path / "s.h5"), "--preset", "cpu-quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown preset 'cpu-quick'" in err and "loop-hedge" in err
    assert main(["train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--preset", "loop-hedge"]) == 2
    assert "cpu-quick" in capsys.readouterr().err
    folder = tmp_path / "loop"
    folder.mkdir()
    (folder / "typo.toml").write_text("# a typo\nscorrer = 'gp'\n")
    monkeypatch.setattr(presets, "_folder", lambda kind: folder)
    with pytest.raises(ConfigError, match=r"preset typo: unknown loop option 'scorrer'; valid: .*scorer"):
        loop_config(preset="typo")


def test_the_runs_saved_config_loads_back_with_config(tmp_path, xdf_cutouts, capsys):
    small = tmp_path / "small.toml"
    small.write_text("proj_hidden = 64\nproj_dim = 32\nmonitor_objects = 16\nstats_objects = 48\n")
    argv = ["train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--preset", "optical-multiband",
            "--config", str(small), "--epochs", "1", "--batch-size", "16", "--image-size", "16",
            "--device", "cpu"]
    assert main(["-q", *argv]) == 0
    saved = tmp_path / "run" / "config.json"
    assert json.loads(saved.read_text())["augment"]["extinction"] == [3.303, 2.285, 1.698]
    again = config_from_options(config_file=saved)
    # the saved config is the resolved one: stem "auto" became the stem the run used
    assert again == dataclasses.replace(_resolve(argv), stem="medium")
    # ... and the printed preset, saved as a file, is the preset
    copy = tmp_path / "copy.toml"
    assert main(["presets", "optical-multiband"]) == 0
    copy.write_text(capsys.readouterr().out)
    assert config_from_options(config_file=copy) == config_from_options(preset="optical-multiband")


@pytest.mark.parametrize("catalogue", ["catalogue.csv", "catalogue.vot"])
def test_example_catalogues_ingest(tmp_path, catalogue):
    from galexplorer.store import CutoutStore

    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder)
    out = tmp_path / "cut.h5"
    assert main(["-q", "ingest", "--catalog", str(folder / catalogue), "-o", str(out), "--size", "32"]) == 0
    with CutoutStore(out) as cut:
        assert len(cut) == 6 and list(cut.bands) == ["b", "g", "r"]
        assert {"flux", "ellipticity"} <= set(cut.column_names)


def test_settings_example_is_what_the_explorer_reads():
    from PySide6 import QtCore

    from galexplorer.active.registry import ACQUISITIONS, SCORERS
    from galexplorer.data.stretch import STRETCHES
    from galexplorer.gui.settings import Settings, viewer_url

    q = QtCore.QSettings(str(EXAMPLES / "explorer.ini"), QtCore.QSettings.Format.IniFormat)
    assert q.status() == QtCore.QSettings.Status.NoError
    # every key is read from the file (none falls back to a default)
    assert set(q.allKeys()) == {"viewer_url", "loop/scorer", "loop/acquisition", "loop/xi", "loop/batch_size",
                                "loop/cold_start", "loop/widen_after", "similar/k", "inspector/stretch"}
    s = Settings(q)
    assert isinstance(q.value("viewer_url"), str)        # not split into a list at its comma
    assert viewer_url(s.viewer_url, 53.1, -27.8, "XDF001").count("53.100000") == 2
    assert s.scorer in SCORERS and s.acquisition in ACQUISITIONS and s.stretch in STRETCHES
    assert (s.xi, s.batch_size, s.similar_k) == (0.5, 10, 24)
    assert s.cold_start == "model" and s.widen_after is None            # the defaults, written out


def test_docs_name_every_preset_and_example():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    training = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    for name in NAMES:
        assert name in readme and name in training
    active = (ROOT / "docs" / "active-learning.md").read_text(encoding="utf-8")
    for name in LOOP_NAMES:
        assert name in readme and name in active
    for example in ("catalogue.csv", "catalogue.vot", "explorer.ini"):
        assert example in readme and example in training


@pytest.mark.slow
def test_presets_and_examples_install_with_the_wheel(tmp_path):
    """Build the wheel from a copy of the source, unzip it, and read the presets from there."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "galexplorer", src / "galexplorer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            str(src), "-w", str(wheels)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("galexplorer-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "site")
    for name in NAMES:
        assert f"galexplorer/resources/presets/{name}.toml" in names
    for name in LOOP_NAMES:
        assert f"galexplorer/resources/presets/loop/{name}.toml" in names
    for example in ("catalogue.csv", "catalogue.vot", "explorer.ini", "stamps/XDF001.png"):
        assert f"galexplorer/resources/examples/{example}" in names
    site = tmp_path / "site"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import galexplorer, pathlib\n"
            "from galexplorer.presets import preset_names, load_preset\n"
            "assert pathlib.Path(galexplorer.__file__).is_relative_to(sys.argv[1]), galexplorer.__file__\n"
            "print(','.join(preset_names() + preset_names('loop'))); print(load_preset('cpu-quick')['epochs'])\n"
            "from importlib import resources\n"
            "print(resources.files('galexplorer').joinpath('resources', 'examples', 'catalogue.csv').is_file())\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [",".join(NAMES + LOOP_NAMES), "30", "True"]
