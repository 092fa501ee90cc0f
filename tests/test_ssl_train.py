"""CPU smoke tests of training on real pixels (Hubble XDF stamps): both methods, exact resume,
the run folder, and clear errors for bad input."""

from __future__ import annotations

import csv
import json
import logging
import shutil

import h5py
import numpy as np
import pytest
import torch

from galexplorer.cli import main
from galexplorer.errors import CheckpointError, ConfigError, InputError
from galexplorer.ssl.augment import AstroAugment
from galexplorer.ssl.byol import BYOL
from galexplorer.ssl.checkpoint import load_checkpoint
from galexplorer.ssl.config import TrainConfig
from galexplorer.ssl.normalize import BandStats
from galexplorer.ssl.trainer import _build_model, _load_init, train
from galexplorer.store import CutoutStore, CutoutWriter

TINY = dict(method="byol", epochs=2, batch_size=16, image_size=16, device="cpu", proj_hidden=128, proj_dim=64,
            pred_hidden=128, monitor_objects=48, seed=0)


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _states_equal(a: dict, b: dict) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


def _further_steps(run_dir, cutouts, method: str, steps: int = 8) -> list[float]:
    """Keep training the saved model on one fixed pair of views: the loss must go down."""
    ckpt = load_checkpoint(run_dir / "checkpoint-latest.pt")
    cfg = TrainConfig.from_dict(json.loads(ckpt["config"]))
    model = _build_model(cfg, 3)
    model.load_state_dict(ckpt["model"])
    stats = BandStats.from_dict(ckpt["stats"])
    with CutoutStore(cutouts) as cut:
        x = torch.from_numpy(cut.read(slice(0, 16)))
    aug = AstroAugment(cfg.augment, cfg.image_size, stats.median, stats.mad)
    g = torch.Generator().manual_seed(0)
    v1, v2 = aug(x, g, normalise=True), aug(x, g, normalise=True)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(v1, v2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if isinstance(model, BYOL):
            model.update_target(0.99)
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("method", [pytest.param("byol", marks=pytest.mark.slow), "simclr"])
def test_two_epochs_on_real_stamps(tmp_path, xdf_cutouts, method):
    run = tmp_path / "run"
    report = train(xdf_cutouts, run, tiny(method=method))
    assert report.epochs_done == 2 and np.isfinite(report.loss) and report.images_per_s > 0
    rows = _rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["step"] for r in rows] == ["3", "6"]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (rows[0]["tau"] != "") == (method == "byol")
    assert float(rows[-1]["embedding_std"]) > 0.02 and float(rows[-1]["effective_rank"]) > 1.5
    for name in ("encoder.pt", "encoder.json", "checkpoint-latest.pt", "checkpoint-best.pt", "config.json"):
        assert (run / name).is_file(), name
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["bands"] == ["b", "g", "r"] and meta["image_size"] == 16 and meta["method"] == method
    assert meta["stem"] == "medium" and meta["dim"] == 512 and len(meta["normalization"]["mad"]) == 3
    saved = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.method == method and saved.stem == "medium"
    # only weights-only types inside
    ck = torch.load(run / "checkpoint-latest.pt", weights_only=True)
    assert ck["epoch"] == 2 and "optimizer" in ck and "augment" in ck["rng"]
    losses = _further_steps(run, xdf_cutouts, method)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize("method", [pytest.param("byol", marks=pytest.mark.slow), "simclr"])
def test_resume_after_one_epoch_equals_two_epochs(tmp_path, xdf_cutouts, method):
    cfg = tiny(method=method)
    train(xdf_cutouts, tmp_path / "full", cfg)
    train(xdf_cutouts, tmp_path / "split", cfg, stop_after=1)
    assert load_checkpoint(tmp_path / "split" / "checkpoint-latest.pt")["epoch"] == 1
    assert main(["-q", "train", str(xdf_cutouts), "-o", str(tmp_path / "split"), "--resume"]) == 0
    a = load_checkpoint(tmp_path / "full" / "checkpoint-latest.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint-latest.pt")
    assert b["epoch"] == 2 and b["step"] == a["step"]
    assert a["model"].keys() == b["model"].keys()
    assert _states_equal(a["model"], b["model"]) == []
    assert torch.equal(a["rng"]["augment"], b["rng"]["augment"])
    ea = torch.load(tmp_path / "full" / "encoder.pt", weights_only=True)["state_dict"]
    eb = torch.load(tmp_path / "split" / "encoder.pt", weights_only=True)["state_dict"]
    assert _states_equal(ea, eb) == []
    la = [r["loss"] for r in _rows(tmp_path / "full")]
    lb = [r["loss"] for r in _rows(tmp_path / "split")]
    assert la == lb


def test_worker_processes_do_not_change_the_result(tmp_path, xdf_cutouts):
    train(xdf_cutouts, tmp_path / "w0", tiny(epochs=1, method="simclr"))
    train(xdf_cutouts, tmp_path / "w2", tiny(epochs=1, method="simclr", workers=2))
    a = load_checkpoint(tmp_path / "w0" / "checkpoint-latest.pt")["model"]
    b = load_checkpoint(tmp_path / "w2" / "checkpoint-latest.pt")["model"]
    assert _states_equal(a, b) == []


def test_resume_refuses_changed_options_and_missing_checkpoint(tmp_path, xdf_cutouts):
    run = tmp_path / "run"
    with pytest.raises(CheckpointError, match="no training checkpoint"):
        train(xdf_cutouts, run, tiny(), resume=True)
    train(xdf_cutouts, run, tiny(epochs=1))
    with pytest.raises(ConfigError, match="trained with backbone = 'resnet18', not 'resnet34'"):
        train(xdf_cutouts, run, tiny(), resume=True, overrides={"backbone": "resnet34"})
    report = train(xdf_cutouts, run, tiny(), resume=True, overrides={"epochs": 1})
    assert report.epochs_done == 1 and "nothing to do" in report.summary()


def test_training_into_an_existing_run_starts_afresh(tmp_path, xdf_cutouts, caplog):
    run = tmp_path / "run"
    train(xdf_cutouts, run, tiny(epochs=2))
    with caplog.at_level(logging.INFO, logger="galexplorer"):
        report = train(xdf_cutouts, run, tiny(epochs=1, method="simclr"))
    assert "starting afresh" in caplog.text
    assert report.epochs_done == 1 and len(_rows(run)) == 1
    assert json.loads((run / "encoder.json").read_text())["method"] == "simclr"


def test_eval_column_reports_knn_and_linear_probe(tmp_path, xdf_cutouts):
    train(xdf_cutouts, tmp_path / "run", tiny(epochs=1, eval_column="kind"))
    row = _rows(tmp_path / "run")[0]
    assert 0 <= float(row["knn_acc"]) <= 1 and 0 <= float(row["linear_acc"]) <= 1
    with pytest.raises(ConfigError, match="looks continuous"):
        train(xdf_cutouts, tmp_path / "run2", tiny(epochs=1, eval_column="peak"))


def test_init_from_a_saved_encoder(tmp_path, xdf_cutouts):
    train(xdf_cutouts, tmp_path / "run", tiny(epochs=1, stem="standard"))
    enc = torch.load(tmp_path / "run" / "encoder.pt", weights_only=True)["state_dict"]
    model = _build_model(tiny(stem="standard"), 3)
    _load_init(model, tmp_path / "run" / "encoder.pt", tiny(stem="standard"), ["b", "g", "r"])
    assert _states_equal(enc, model.backbone.state_dict()) == []
    assert _states_equal(enc, model.target_backbone.state_dict()) == []
    with pytest.raises(CheckpointError, match="made for 3 bands"):
        _load_init(model, tmp_path / "run" / "encoder.pt", tiny(stem="standard"), ["g", "r", "i", "z", "y"])
    with pytest.raises(CheckpointError, match="made with backbone resnet18, not resnet34"):
        _load_init(_build_model(tiny(backbone="resnet34", stem="standard"), 3), tmp_path / "run" / "encoder.pt",
                   tiny(backbone="resnet34", stem="standard"), ["b", "g", "r"])
    # and through train(): the first epoch starts from those weights
    report = train(xdf_cutouts, tmp_path / "run2", tiny(epochs=1, stem="standard"), init=tmp_path / "run" / "encoder.pt")
    assert report.epochs_done == 1


# -- bad input ------------------------------------------------------------------------------------

def _one_band_copy(src, dst):
    with CutoutStore(src) as cut:
        x = cut.read(slice(0, cut.n))[:, :1]
        ids = list(cut.ids)
    with CutoutWriter(dst, bands=["r"], size=32, thumb_size=32) as w:
        w.add(x, ids, thumbnails=np.zeros((len(ids), 32, 32, 3), np.uint8))


def test_checkpoint_for_other_bands_is_a_clear_error(tmp_path, xdf_cutouts):
    run = tmp_path / "run"
    train(xdf_cutouts, run, tiny(epochs=1))
    one = tmp_path / "one.h5"
    _one_band_copy(xdf_cutouts, one)
    with pytest.raises(CheckpointError, match=r"made for 3 bands \(b, g, r\) but the cutouts have 1 \(r\)"):
        train(one, run, tiny(), resume=True)


def test_empty_cutouts_file(tmp_path, xdf_cutouts):
    empty = tmp_path / "empty.h5"
    shutil.copy(xdf_cutouts, empty)
    with h5py.File(empty, "r+") as f:
        for name in ("images", "thumbnails"):
            shape = f[name].shape
            del f[name]
            f.create_dataset(name, shape=(0,) + shape[1:], dtype=np.float32 if name == "images" else np.uint8)
        for name in list(f["objects"]):
            if isinstance(f["objects"][name], h5py.Dataset):
                f["objects"][name].resize(0, axis=0)
        for name in list(f["objects/columns"]):
            f["objects/columns"][name].resize(0, axis=0)
    with pytest.raises(InputError, match="holds no objects"):
        train(empty, tmp_path / "run", tiny())
    assert main(["-q", "train", str(empty), "-o", str(tmp_path / "run"), "--device", "cpu"]) == 2


@pytest.mark.parametrize("stats_objects", [48, 4])
def test_nan_pixels_name_the_object(tmp_path, xdf_cutouts, stats_objects):
    bad = tmp_path / "nan.h5"
    shutil.copy(xdf_cutouts, bad)
    with h5py.File(bad, "r+") as f:
        img = f["images"][7]
        img[1, 5, 5] = np.nan
        f["images"][7] = img
        oid = f["objects/id"].asstr()[7]
    # found when measuring the band statistics, or (with a small sample) in the training loop
    with pytest.raises(InputError, match=f"NaN or inf pixels in object.*{oid}"):
        train(bad, tmp_path / "run", tiny(stats_objects=stats_objects))


def test_unknown_backbone_from_a_config_file(tmp_path, xdf_cutouts, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('backbone = "resnet101"\n')
    code = main(["-q", "train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--config", str(cfg)])
    err = capsys.readouterr().err
    assert code == 2 and "unknown backbone 'resnet101'" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cuda_out_of_memory_suggests_a_smaller_batch(tmp_path, xdf_cutouts, monkeypatch):
    def boom(self, v1, v2):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(BYOL, "forward", boom)
    with pytest.raises(ConfigError, match=r"does not fit in the memory.*try --batch-size 8"):
        train(xdf_cutouts, tmp_path / "run", tiny())


def test_image_size_larger_than_stamps(tmp_path, xdf_cutouts):
    with pytest.raises(ConfigError, match="larger than the 32-px stamps"):
        train(xdf_cutouts, tmp_path / "run", tiny(image_size=48))


def test_cli_train_prints_a_summary(tmp_path, xdf_cutouts, capsys):
    cfg = tmp_path / "small.toml"
    cfg.write_text("proj_hidden = 64\nproj_dim = 32\nmonitor_objects = 16\n")
    code = main(["train", str(xdf_cutouts), "-o", str(tmp_path / "run"), "--method", "simclr", "--epochs", "1",
                 "--batch-size", "16", "--image-size", "16", "--device", "cpu", "--seed", "3",
                 "--config", str(cfg)])
    out = capsys.readouterr().out
    assert code == 0 and "trained 1/1 epochs" in out and "encoder" in out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["seed"] == 3 and saved["proj_hidden"] == 64 and saved["method"] == "simclr"


def test_no_weight_decay_on_biases_and_norms():
    from galexplorer.ssl.trainer import make_optimizer

    cfg = tiny(stem="standard")
    model = _build_model(cfg, 3)
    opt = make_optimizer(model, cfg)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == cfg.weight_decay and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    bn = model.backbone.net.bn1
    ids = {id(p) for p in no_decay["params"]}
    assert id(bn.weight) in ids and id(bn.bias) in ids
    # the target network is not optimised
    assert not ({id(p) for p in model.target_parameters()} & {id(p) for g in opt.param_groups for p in g["params"]})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu(tmp_path, xdf_cutouts):
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        train(xdf_cutouts, tmp_path / "run", tiny(device="cuda"))
