"""embed --merge: joining shard stores gives the same store as embedding everything at once."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from test_pipeline import blobs

from galexplorer.errors import ConfigError, StoreError
from galexplorer.explore.merge import merge_shards
from galexplorer.explore.pipeline import EmbedConfig, build_store, shard_rows
from galexplorer.store import CutoutStore, EmbeddingStore


@pytest.fixture(scope="module")
def shards(tmp_path_factory, xdf_cutouts):
    folder = tmp_path_factory.mktemp("shards")
    emb = blobs()
    paths = []
    with CutoutStore(xdf_cutouts) as cut:
        whole = folder / "whole.h5"
        build_store(whole, objects=cut.objects, dim=32, fill=emb, config=EmbedConfig(), cutouts=cut,
                    embedding_attrs={"method": "byol", "checkpoint_sha256": "abc"})
        for i in range(3):
            rows = shard_rows(cut.n, (i, 3))
            p = folder / f"part{i}.h5"
            build_store(p, objects=cut.objects, dim=32, fill=emb[rows], config=EmbedConfig(), cutouts=cut,
                        rows=rows, shard=(i, 3), embedding_attrs={"method": "byol", "checkpoint_sha256": "abc"})
            paths.append(p)
    return folder, whole, paths


@pytest.mark.parametrize("virtual", [False, True])
def test_merge_equals_whole(shards, tmp_path, virtual):
    folder, whole, paths = shards
    out = tmp_path / "merged.h5"
    report = merge_shards(list(reversed(paths)), out, virtual=virtual)   # any order
    assert report.n == 48 and report.n_pca is not None
    with EmbeddingStore(out) as m, EmbeddingStore(whole) as w:
        assert list(m.ids) == list(w.ids)
        for name in ("embeddings", "thumbnails", "pca", "projection", "scores/anomaly", "scores/cluster",
                     "objects/cutouts_row", "objects/columns/kind"):
            np.testing.assert_array_equal(m.file[name][...], w.file[name][...], err_msg=name)
        assert m.file["embeddings"].is_virtual == virtual
        assert m.dataset_attrs("embeddings")["checkpoint_sha256"] == "abc"
        assert m.attrs["cutouts_uuid"] == w.attrs["cutouts_uuid"] and "shard" not in m.attrs
        assert m.open_cutouts() is not None


def _copy(src, dst, **attrs):
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as f:
        for k, v in attrs.items():
            if k == "embeddings.checkpoint_sha256":
                f["embeddings"].attrs["checkpoint_sha256"] = v
            else:
                f.attrs[k] = v
    return dst


@pytest.mark.parametrize("case, match", [
    ("missing", r"shard 1/3 missing"),
    ("twice", r"given twice"),
    ("uuid", r"different cutouts file"),
    ("encoder", r"embeddings made differently"),
    ("whole", r"not a shard store"),
    ("overlap", r"overlap"),
    ("split", r"split into 4"),
])
def test_merge_refuses_shards_that_do_not_fit(shards, tmp_path, case, match):
    folder, whole, (p0, p1, p2) = shards
    given = {
        "missing": [p0, p2],
        "twice": [p0, p1, _copy(p1, tmp_path / "again.h5"), p2],
        "uuid": [p0, _copy(p1, tmp_path / "u.h5", cutouts_uuid="0" * 32), p2],
        "encoder": [p0, _copy(p1, tmp_path / "e.h5", **{"embeddings.checkpoint_sha256": "def"}), p2],
        "whole": [whole],
        "overlap": [p0, _copy(p1, tmp_path / "o.h5", shard_rows="[15, 31]"), p2],
        "split": [p0, _copy(p1, tmp_path / "s.h5", shard="1/4"), p2],
    }[case]
    out = tmp_path / "merged.h5"
    with pytest.raises(StoreError, match=match) as info:
        merge_shards(given, out)
    assert "\n" not in str(info.value)
    assert not out.exists() and not any(p.name.startswith(".merged") for p in tmp_path.iterdir())


def test_merge_output_must_be_new(shards):
    _, _, paths = shards
    with pytest.raises(ConfigError, match="one of the shards"):
        merge_shards(paths, paths[0])


def test_cli_merge(shards, tmp_path, capsys):
    from galexplorer.cli import main

    folder, whole, paths = shards
    out = tmp_path / "cli.h5"
    assert main(["embed", "--merge", *map(str, paths), "-o", str(out), "--virtual", "-q"]) == 0
    with EmbeddingStore(out) as m, EmbeddingStore(whole) as w:
        assert m.file["embeddings"].is_virtual and m.attrs["merge_mode"] == "virtual"
        np.testing.assert_array_equal(m.projection, w.projection)
    assert main(["embed", "--merge", str(paths[0]), "-o", str(tmp_path / "x.h5"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "shards 1/3, 2/3 missing" in err and err.count("\n") == 1
