"""Embedding with a trained encoder: load_encoder, the streaming filler, embed_with_encoder and
``galexplorer embed --run``, shards, and clear errors."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from galexplorer.cli import main
from galexplorer.errors import CheckpointError
from galexplorer.explore.pipeline import shard_rows
from galexplorer.ssl.collapse import collapse_stats
from galexplorer.ssl.config import TrainConfig
from galexplorer.ssl.embed import embed_array, encode_rows, load_encoder
from galexplorer.ssl.trainer import train
from galexplorer.store import CutoutStore, CutoutWriter, EmbeddingStore


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, xdf_cutouts):
    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("ssl") / "run"
    cfg = TrainConfig.from_dict(dict(method="byol", epochs=1, batch_size=16, image_size=24, device="cpu", proj_hidden=128,
                                     proj_dim=64, pred_hidden=128, monitor_objects=32))
    train(xdf_cutouts, run, cfg)
    return run


def test_load_encoder_gives_model_and_metadata(run_dir):
    enc, meta = load_encoder(run_dir)
    assert not enc.training and enc.dim == 512 and enc.image_size == 24
    assert meta["bands"] == ["b", "g", "r"] and meta["backbone"] == "resnet18" and meta["method"] == "byol"
    assert len(meta["sha256"]) == 64 and set(meta["normalization"]) >= {"median", "mad"}
    with torch.no_grad():
        z = enc(torch.zeros(2, 3, 32, 32))
    assert z.shape == (2, 512) and z.dtype == torch.float32


def test_filler_streams_into_a_dataset_and_matches_in_memory(run_dir, xdf_cutouts, tmp_path):
    enc, _ = load_encoder(run_dir)
    with CutoutStore(xdf_cutouts) as cut, h5py.File(tmp_path / "e.h5", "w") as f:
        d = f.create_dataset("e", (30, 512), np.float32)
        encode_rows(enc, cut, 10, 40, d, batch_size=7)
        got = d[:]
        ref = embed_array(enc, cut.read(slice(10, 40)))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    assert np.isfinite(got).all()


def test_eight_views_embed_a_stamp_its_rotations_and_its_mirror_image_alike(run_dir, xdf_cutouts):
    with CutoutStore(xdf_cutouts) as cut:
        x = cut.read(slice(0, 6)).astype(np.float32)
    assert x.shape[-1] == 32                       # a 24-px centre crop of 32: rotating commutes with it
    turned = [np.ascontiguousarray(np.rot90(x, k, axes=(2, 3))) for k in (1, 2, 3)]
    mirrored = [np.ascontiguousarray(t[..., ::-1]) for t in [x, *turned]]
    one, four, eight = (load_encoder(run_dir, views=v)[0] for v in (1, 4, 8))
    assert (one.views, four.views, eight.views) == (1, 4, 8)
    z8, z4, z1 = embed_array(eight, x), embed_array(four, x), embed_array(one, x)
    for t in turned + mirrored:
        np.testing.assert_allclose(embed_array(eight, t), z8, rtol=1e-4, atol=1e-5)
    for t in turned:
        np.testing.assert_allclose(embed_array(four, t), z4, rtol=1e-4, atol=1e-5)
    # the average is what makes it so: one view is not invariant, four are not under a mirror
    assert not np.allclose(embed_array(one, turned[0]), z1, rtol=1e-3, atol=1e-4)
    assert not np.allclose(embed_array(four, mirrored[0]), z4, rtol=1e-3, atol=1e-4)
    # and it is the mean of the single views
    views = [x, *turned, *mirrored]
    np.testing.assert_allclose(z8, np.mean([embed_array(one, v) for v in views], axis=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("views", [0, 3, 16, 2.0, True, "8"])
def test_views_other_than_1_4_8_are_a_clear_error(run_dir, views):
    from galexplorer.errors import ConfigError
    from galexplorer.explore.pipeline import EmbedConfig

    with pytest.raises(ConfigError, match="views must be one of 1, 4, 8"):
        load_encoder(run_dir, views=views)
    with pytest.raises(ConfigError, match="views must be one of 1, 4, 8"):
        EmbedConfig(views=views).validate()


def test_a_store_written_before_views_existed_reads_as_one_view():
    from galexplorer.explore.pipeline import EmbedConfig, config_from_store_attrs

    assert EmbedConfig().views == 8
    assert config_from_store_attrs(json.dumps({"seed": 3})).views == 1
    assert config_from_store_attrs({"seed": 3, "views": 4}).views == 4
    assert config_from_store_attrs("not json").views == 1


def test_shard_rows():
    assert [shard_rows(10, (i, 3)) for i in range(3)] == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert shard_rows(10, None) == slice(0, 10)


def test_embed_cli_writes_a_valid_store(run_dir, xdf_cutouts, tmp_path, capsys):
    out = tmp_path / "store.h5"
    code = main(["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(out), "--projection", "pca",
                 "--device", "cpu", "--batch-size", "16"])
    assert code == 0
    with EmbeddingStore(out) as s:
        emb = s.load_embeddings()
        attrs = s.dataset_attrs("embeddings")
        ids = list(s.ids)
    assert emb.shape == (48, 512) and np.isfinite(emb).all()
    stats = collapse_stats(emb)
    assert not stats.collapsed and stats.effective_rank > 2
    meta = json.loads((run_dir / "encoder.json").read_text())
    assert attrs["method"] == "byol" and attrs["backbone"] == "resnet18" and attrs["source"] == "encoder"
    assert attrs["checkpoint_sha256"] == meta["sha256"] and attrs["image_size"] == 24
    assert attrs["views"] == 8                   # the default: rotations and mirror images averaged
    assert main(["info", str(out)]) == 0 and "512-d (byol, resnet18, 8 views averaged)" in capsys.readouterr().out
    with CutoutStore(xdf_cutouts) as cut:
        assert ids == list(cut.ids)
        enc, _ = load_encoder(run_dir, views=8)
        np.testing.assert_allclose(emb, embed_array(enc, cut.read(slice(0, 48))), rtol=1e-4, atol=1e-5)


def test_embed_cli_one_view(run_dir, xdf_cutouts, tmp_path, capsys):
    out = tmp_path / "store1.h5"
    assert main(["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(out), "--projection", "pca",
                 "--device", "cpu", "--views", "1"]) == 0
    with EmbeddingStore(out) as s, CutoutStore(xdf_cutouts) as cut:
        assert s.dataset_attrs("embeddings")["views"] == 1
        from galexplorer.explore.pipeline import config_from_store_attrs

        assert config_from_store_attrs(s.attrs.get("config")).views == 1     # refine re-embeds with it
        np.testing.assert_allclose(s.load_embeddings(), embed_array(load_encoder(run_dir)[0], cut.read(slice(0, 48))),
                                   rtol=1e-4, atol=1e-5)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "(byol, resnet18, 1 view)" in capsys.readouterr().out          # info says how it was embedded
    with pytest.raises(SystemExit) as exc:
        main(["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(tmp_path / "x.h5"), "--views", "3"])
    assert exc.value.code == 2 and "--views" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_embed_shard(run_dir, xdf_cutouts, tmp_path):
    out = tmp_path / "shard1.h5"
    assert main(["-q", "embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(out), "--projection", "pca",
                 "--device", "cpu", "--shard", "1/2"]) == 0
    with EmbeddingStore(out) as s, CutoutStore(xdf_cutouts) as cut:
        assert list(s.ids) == list(cut.ids[24:48])
        enc, _ = load_encoder(run_dir, views=8)
        np.testing.assert_allclose(s.load_embeddings(), embed_array(enc, cut.read(slice(24, 48))),
                                   rtol=1e-4, atol=1e-5)


def test_embed_with_other_bands_is_a_clear_error(run_dir, xdf_cutouts, tmp_path, capsys):
    with CutoutStore(xdf_cutouts) as cut:
        x, ids = cut.read(slice(0, 8)), list(cut.ids[:8])
    five = tmp_path / "five.h5"
    with CutoutWriter(five, bands=["u", "g", "r", "i", "z"], size=32, thumb_size=32) as w:
        w.add(np.concatenate([x, x[:, :2]], axis=1), ids, thumbnails=np.zeros((len(ids), 32, 32, 3), np.uint8))
    out = tmp_path / "s.h5"
    code = main(["-q", "embed", str(five), "--run", str(run_dir), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "made for 3 bands (b, g, r) but the cutouts have 5" in err and not out.exists()


@pytest.mark.parametrize("damage, message", [
    ("no_dir", "no such run folder"),
    ("no_json", "no encoder.json"),
    ("garbage_pt", "the encoder cannot be read"),
    ("swapped", "sha256 differs"),
])
def test_broken_run_folders(run_dir, tmp_path, damage, message):
    bad = tmp_path / "bad"
    if damage != "no_dir":
        shutil.copytree(run_dir, bad)
    if damage == "no_json":
        (bad / "encoder.json").unlink()
    elif damage == "garbage_pt":
        (bad / "encoder.pt").write_bytes(b"not a zip file at all")
    elif damage == "swapped":
        meta = json.loads((bad / "encoder.json").read_text())
        meta["sha256"] = "0" * 64
        (bad / "encoder.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message) as info:
        load_encoder(bad)
    assert "\n" not in str(info.value)


def test_out_of_gpu_memory_while_embedding_suggests_a_smaller_batch(run_dir, xdf_cutouts, tmp_path, monkeypatch,
                                                                     capsys):
    from galexplorer.ssl.embed import Encoder

    def boom(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Encoder, "forward", boom)
    out = tmp_path / "store.h5"
    code = main(["embed", str(xdf_cutouts), "--run", str(run_dir), "-o", str(out), "--batch-size", "32"])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit in the GPU's memory" in err and "--batch-size, e.g. 16" in err
    assert "Traceback" not in err and not out.exists()
