"""Bring your own embeddings (issue 7): every format, id matching, missing objects, bad input."""

from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_pipeline import blobs

from galexplorer.cli import main
from galexplorer.errors import ConfigError, InputError
from galexplorer.explore.external import ExternalEmbeddings, embed_from_file
from galexplorer.explore.pipeline import EmbedConfig
from galexplorer.store import CutoutStore, EmbeddingStore

EMB = blobs()                                   # (48, 32), row i belongs to XDF{i:04d}
IDS = np.array([f"XDF{i:04d}" for i in range(48)], dtype=object)
PERM = np.random.default_rng(5).permutation(48)


def write_parquet(path, ids, emb, **extra):
    cols = {"id": pa.array(list(ids))}
    cols.update({k: pa.array(v) for k, v in extra.items()})
    cols.update({f"feat_{j}": pa.array(emb[:, j]) for j in range(emb.shape[1])})
    pq.write_table(pa.table(cols), path)


def write_csv(path, ids, emb, id_name="object_id", extra=None):
    extra = extra or {}
    head = [id_name] + list(extra) + [f"f{j}" for j in range(emb.shape[1])]
    lines = [",".join(head)]
    for k, (i, row) in enumerate(zip(ids, emb)):
        lines.append(",".join([str(i)] + [str(v[k]) for v in extra.values()] + [repr(float(v)) for v in row]))
    path.write_text("\n".join(lines) + "\n")


def build(tmp_path, xdf_cutouts, src, name="s.h5", cutouts=True, **cfg):
    out = tmp_path / name
    report = embed_from_file(xdf_cutouts if cutouts else None, src, out, EmbedConfig(**cfg))
    return out, report


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, xdf_cutouts):
    """The store built from an in-order .npy: the others must equal it."""
    folder = tmp_path_factory.mktemp("ref")
    np.save(folder / "emb.npy", EMB)
    out, report = build(folder, xdf_cutouts, ExternalEmbeddings(folder / "emb.npy"))
    return out


def assert_same_store(a, b, names=("embeddings", "pca", "projection", "scores/anomaly", "scores/cluster",
                                   "thumbnails")):
    with EmbeddingStore(a) as x, EmbeddingStore(b) as y:
        assert list(x.ids) == list(y.ids)
        for name in names:
            np.testing.assert_array_equal(x.file[name][...], y.file[name][...], err_msg=name)


def test_npy_in_order_records_its_source(reference, xdf_cutouts):
    npy = reference.parent / "emb.npy"
    with EmbeddingStore(reference) as s, CutoutStore(xdf_cutouts) as cut:
        np.testing.assert_array_equal(s.load_embeddings(), EMB)
        np.testing.assert_array_equal(s.thumbnails[:], cut.thumbnails[:])
        a = s.dataset_attrs("embeddings")
        assert a["method"] == "external" and a["source_format"] == "npy"
        assert a["source_sha256"] == hashlib.sha256(npy.read_bytes()).hexdigest()
        assert a["source"]["path"] == str(npy.resolve()) and a["source"]["match"] == "row order"
        assert s.json_attr("embeddings_source")["sha256"] == a["source_sha256"]
        assert s.has("pca") and s.has("projection") and s.score_names == ["anomaly", "cluster"]
        assert s.attrs["cutouts_uuid"] == cut.uuid


def test_zoobot_style_hdf5_shuffled_with_paths_as_ids(tmp_path, xdf_cutouts, reference):
    path = tmp_path / "zoobot.hdf5"
    with h5py.File(path, "w") as f:        # Zoobot's predictions_to_hdf5 layout
        f["predictions"] = EMB[PERM][:, :, None]
        f.create_dataset("id_str", data=[f"/data/stamps/{i}.png" for i in IDS[PERM]],
                         dtype=h5py.string_dtype())
        f.create_dataset("label_cols", data=[f"feat_{j}" for j in range(32)], dtype=h5py.string_dtype())
    out, report = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path))
    assert_same_store(out, reference)
    with EmbeddingStore(out) as s:
        src = s.dataset_attrs("embeddings")["source"]
        assert src["dataset"] == "predictions" and src["id_dataset"] == "id_str"
        assert src["match"] == "id (file-name stem)" and src["n_matched"] == 48


def test_hdf5_with_several_candidates_needs_dataset(tmp_path, xdf_cutouts, reference):
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as f:
        f["run1/z"] = EMB[PERM]
        f["run2/z"] = EMB[PERM] * 2
        f["names"] = np.array([i.encode() for i in IDS[PERM]])
    with pytest.raises(InputError, match=r"several datasets could be the embeddings \(run1/z, run2/z\).*--dataset"):
        build(tmp_path, xdf_cutouts, ExternalEmbeddings(path))
    out, _ = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path, dataset="run1/z", id_dataset="names"))
    assert_same_store(out, reference)


def test_galexplorer_store_as_input(tmp_path, xdf_cutouts, reference):
    # a store is HDF5 with embeddings + objects/id: re-embedding it gives the same store
    out, _ = build(tmp_path, xdf_cutouts, ExternalEmbeddings(reference))
    assert_same_store(out, reference)


def test_parquet_shuffled_with_extra_columns(tmp_path, xdf_cutouts, reference):
    path = tmp_path / "emb.parquet"
    write_parquet(path, IDS[PERM], EMB[PERM], redshift=np.linspace(0, 1, 48), label=["x"] * 48)
    out, _ = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path))
    assert_same_store(out, reference)
    with EmbeddingStore(out) as s:
        src = s.dataset_attrs("embeddings")["source"]
        assert src["id_column"] == "id" and src["n_features"] == 32 and src["first_feature"] == "feat_0"


def test_csv_shuffled_with_feature_glob(tmp_path, xdf_cutouts, reference):
    path = tmp_path / "emb.csv"
    write_csv(path, IDS[PERM], EMB[PERM], extra={"note": ["a"] * 48, "mag": np.arange(48.0)})
    out, _ = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path, feature_columns="f*"))
    assert_same_store(out, reference)
    # without a glob every numeric column but the id would be a feature: mag too
    out2, report = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path), name="t.h5")
    assert report.dim == 33


def test_missing_ids_refused_then_allowed(tmp_path, xdf_cutouts):
    keep = np.setdiff1d(np.arange(48), [3, 10, 11, 40, 41])
    ids = np.concatenate([IDS[keep], ["GHOST1", "GHOST2"]])
    emb = np.concatenate([EMB[keep], EMB[:2] + 1])[::-1]
    path = tmp_path / "part.parquet"
    write_parquet(path, ids[::-1], emb)
    with pytest.raises(InputError) as info:
        build(tmp_path, xdf_cutouts, ExternalEmbeddings(path))
    msg = str(info.value)
    assert "5 of the 48 objects in the cutouts file have no embedding (e.g. 'XDF0003'" in msg
    assert "2 of the 45 embeddings match no object" in msg and "--allow-missing" in msg and "\n" not in msg
    assert not (tmp_path / "s.h5").exists() and leftovers(tmp_path) == []

    out, report = build(tmp_path, xdf_cutouts, ExternalEmbeddings(path, allow_missing=True))
    with EmbeddingStore(out) as s, CutoutStore(xdf_cutouts) as cut:
        assert list(s.ids) == list(IDS[keep])
        np.testing.assert_array_equal(s.load_embeddings(), EMB[keep])
        np.testing.assert_array_equal(s.thumbnails[:], cut.thumbnails[:][keep])
        assert s.file["objects/cutouts_row"][:].tolist() == keep.tolist()
        src = s.dataset_attrs("embeddings")["source"]
        assert (src["n_missing_in_file"], src["n_unmatched_in_file"]) == (5, 2)
    assert any("43 objects kept; 5" in n for n in report.notes)


def _nan_npy(p):
    e = EMB.copy()
    e[17, 4] = np.nan
    np.save(p, e)


def _dup_parquet(p):
    ids = IDS.copy()
    ids[9] = ids[8]
    write_parquet(p, ids, EMB)


def _text_feature_parquet(p):
    t = pa.table({"id": list(IDS), "feat_0": EMB[:, 0], "feat_1": [str(v) for v in EMB[:, 1]]})
    pq.write_table(t, p)


def _text_feature_csv(p):
    write_csv(p, IDS, EMB[:, :3], extra={"colour": ["red"] * 48})


@pytest.mark.parametrize("name, make, kwargs, error, match", [
    ("nan.npy", _nan_npy, {}, InputError, r"object 'XDF0017' \(row 17\) contains NaN"),
    ("flat.npy", lambda p: np.save(p, EMB[:, 0]), {}, InputError, r"shape \(48,\).*must be 2-D"),
    ("cube.h5", lambda p: h5py.File(p, "w").create_dataset("x", data=np.zeros((48, 4, 3))).file.close(),
     {"dataset": "x"}, InputError, r"shape \(48, 4, 3\)"),
    ("rows.npy", lambda p: np.save(p, EMB[:40]), {}, InputError, r"40 embeddings without ids but 48 objects"),
    ("dup.parquet", _dup_parquet, {}, InputError, r"1 duplicate id\(s\).*'XDF0008'"),
    ("named.h5", lambda p: h5py.File(p, "w").create_dataset("emb", data=EMB).file.close(),
     {"dataset": "embedding"}, InputError, r"no dataset 'embedding' \(datasets: emb\)"),
    ("ids.h5", lambda p: h5py.File(p, "w").create_dataset("emb", data=EMB).file.close(),
     {"dataset": "emb", "id_dataset": "ids"}, InputError, r"no id dataset 'ids'"),
    ("text.parquet", _text_feature_parquet, {"feature_columns": "feat_*"}, InputError,
     r"feature column 'feat_1' is not numeric"),
    ("text.csv", _text_feature_csv, {"feature_columns": "f*,colour"}, InputError,
     r"feature column 'colour' is not numeric"),
    ("glob.parquet", lambda p: write_parquet(p, IDS, EMB), {"feature_columns": "z_*"}, InputError,
     r"no column matches --feature-columns 'z_\*'"),
    ("emb.txtx", lambda p: p.write_text("x"), {}, InputError, r"unknown embeddings format"),
    ("opt.npy", lambda p: np.save(p, EMB), {"dataset": "x"}, ConfigError, r"--dataset does not apply"),
    ("other.parquet", lambda p: write_parquet(p, [f"Z{i}" for i in range(48)], EMB), {}, InputError,
     r"none of the 48 ids in the embeddings file"),
    ("same.npy", lambda p: np.save(p, np.ones((48, 5))), {}, InputError, r"identical"),
])
def test_bad_input_is_a_clear_error_and_leaves_nothing(tmp_path, xdf_cutouts, name, make, kwargs, error, match):
    path = tmp_path / name
    make(path)
    with pytest.raises(error, match=match) as info:
        build(tmp_path, xdf_cutouts, ExternalEmbeddings(path, **kwargs))
    assert "\n" not in str(info.value)
    assert not (tmp_path / "s.h5").exists() and leftovers(tmp_path) == []


def test_no_cutouts_with_ids_and_radec_from_the_file(tmp_path):
    path = tmp_path / "emb.parquet"
    ra = np.linspace(150, 151, 48)
    write_parquet(path, IDS, EMB, ra=ra, dec=np.full(48, 2.0))
    out, report = build(tmp_path, None, ExternalEmbeddings(path), cutouts=False)
    with EmbeddingStore(out) as s:
        assert s.thumbnails is None and s.cutouts_path is None and list(s.ids) == list(IDS)
        np.testing.assert_allclose(s.objects.ra, ra)
        np.testing.assert_array_equal(s.load_embeddings(), EMB)
        assert s.projection.shape == (48, 2)


def test_no_cutouts_npy_with_catalog(tmp_path):
    np.save(tmp_path / "emb.npy", EMB)
    cat = tmp_path / "cat.csv"
    cat.write_text("name,ra,dec,z\n" + "\n".join(f"G{i},{10 + i / 100},{-5},{i / 48}" for i in range(48)) + "\n")
    out, _ = build(tmp_path, None, ExternalEmbeddings(tmp_path / "emb.npy", catalog=cat), cutouts=False)
    with EmbeddingStore(out) as s:
        assert list(s.ids) == [f"G{i}" for i in range(48)] and "z" in s.column_names
        assert s.objects.dec[0] == -5
    np.save(tmp_path / "short.npy", EMB[:10])
    with pytest.raises(InputError, match="10 embeddings without ids but 48 objects in the catalogue"):
        build(tmp_path, None, ExternalEmbeddings(tmp_path / "short.npy", catalog=cat), name="x.h5", cutouts=False)
    with pytest.raises(InputError, match="needs a cutouts file or --catalog"):
        build(tmp_path, None, ExternalEmbeddings(tmp_path / "short.npy"), name="y.h5", cutouts=False)


def test_cli(tmp_path, xdf_cutouts, capsys):
    np.save(tmp_path / "emb.npy", EMB)
    out = tmp_path / "s.h5"
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "emb.npy"), "-o", str(out),
                 "--projection", "pca", "-q"]) == 0
    with EmbeddingStore(out) as s:
        assert s.dataset_attrs("projection")["method"] == "pca"
    # UMAP's parameters from the command line reach the projection (and are recorded with it)
    umap_out = tmp_path / "u.h5"
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "emb.npy"), "-o", str(umap_out),
                 "--umap-neighbors", "7", "--umap-min-dist", "0.3", "-q"]) == 0
    with EmbeddingStore(umap_out) as s:
        params = s.dataset_attrs("projection")["params"]
        params = json.loads(params) if isinstance(params, str) else params
        assert params["n_neighbors"] == 7 and params["min_dist"] == 0.3
    code = main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "emb.npy"), "-o",
                 str(tmp_path / "v.h5"), "--umap-neighbors", "1", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "umap_neighbors must be at least 2" in err and err.count("\n") == 0
    np.save(tmp_path / "bad.npy", EMB[:3])
    code = main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "bad.npy"), "-o",
                 str(tmp_path / "t.h5"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "3 embeddings without ids but 48 objects" in err
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.slow
def test_given_embeddings_give_the_same_store_as_the_encoder(tmp_path, xdf_cutouts):
    """Issue 7: the same vectors from a file and from an encoder -> identical embeddings, PCA and
    projection (same seed)."""
    torch = pytest.importorskip("torch")
    from galexplorer.ssl.config import TrainConfig
    from galexplorer.ssl.embed import embed_with_encoder
    from galexplorer.ssl.trainer import train

    torch.set_num_threads(1)
    run = tmp_path / "run"
    train(xdf_cutouts, run, TrainConfig.from_dict(dict(epochs=1, batch_size=16, image_size=24, device="cpu",
                                                       proj_hidden=128, proj_dim=64, pred_hidden=128,
                                                       monitor_objects=32)))
    encoded = tmp_path / "encoder.h5"
    embed_with_encoder(xdf_cutouts, run, encoded, EmbedConfig(device="cpu"))
    with EmbeddingStore(encoded) as s:
        vectors = s.load_embeddings()
        assert s.dataset_attrs("embeddings")["method"] == "simclr"   # the default method
    np.save(tmp_path / "vectors.npy", vectors)
    write_parquet(tmp_path / "vectors.parquet", IDS[PERM], vectors[PERM])
    for name in ("vectors.npy", "vectors.parquet"):
        out, _ = build(tmp_path, xdf_cutouts, ExternalEmbeddings(tmp_path / name), name=f"{name}.h5")
        assert_same_store(out, encoded)
