"""#22 item 2: `galexplorer refine` — the encoder learns from the labels; the new store keeps the
ids and the journal; resume; bad inputs; simulate --refine-every."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from galexplorer.cli import main
from galexplorer.errors import ConfigError, StoreError

TINY = "proj_hidden = 32\nproj_dim = 16\npred_hidden = 32\nmonitor_objects = 16\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory, xdf_cutouts):
    """A tiny run, its store (pca map: no UMAP compile), and 16 labels with 3 finds (too few for a
    held-out set: a fixed number of epochs, so the encoder surely changes)."""
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    d = tmp_path_factory.mktemp("refine")
    (d / "tiny.toml").write_text(TINY)
    assert main(["-q", "train", str(xdf_cutouts), "-o", str(d / "run"), "--epochs", "1", "--batch-size", "16",
                 "--image-size", "16", "--device", "cpu", "--config", str(d / "tiny.toml")]) == 0
    assert main(["-q", "embed", str(xdf_cutouts), "--run", str(d / "run"), "-o", str(d / "s.h5"), "--device", "cpu",
                 "--projection", "pca", "--views", "4"]) == 0
    with EmbeddingStore(d / "s.h5") as s:
        ids = [str(s.ids[i]) for i in range(s.n)]
        peak = np.asarray(s.column("peak"), float)
    order = np.argsort(-peak)
    with LabelJournal.for_store(d / "s.h5", user="ann") as j:
        for i in order[:3]:
            j.score(ids[i], 5)
        for i in order[-13:]:
            j.score(ids[i], 0)
    return d, ids


def _refine(d, out, *extra):
    return main(["-q", "refine", str(d / "s.h5"), "-o", str(out), "--device", "cpu", "--epochs", "2", *extra])


def test_refine_writes_a_store_with_the_same_ids_and_journal(built, xdf_cutouts):
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    d, ids = built
    out = d / "refined.h5"
    assert _refine(d, out) == 0
    with EmbeddingStore(out) as s, EmbeddingStore(d / "s.h5") as old:
        assert [str(s.ids[i]) for i in range(s.n)] == ids
        prov = json.loads(s.attrs["refined_from"]) if isinstance(s.attrs["refined_from"], str) else s.attrs["refined_from"]
        assert prov["uuid"] == old.uuid and prov["n_labels"] == 16
        emb_attrs = s.dataset_attrs("embeddings")
        assert emb_attrs["run_dir"].endswith("refined.h5.refine")
        assert emb_attrs["views"] == old.dataset_attrs("embeddings")["views"] == 4     # embedded as the store was
        assert not np.allclose(s.load_embeddings(), old.load_embeddings())    # the encoder changed
        assert s.feature_set_names == ["morphology", "pixels"]
    with LabelJournal.for_store(out, readonly=True) as j:
        assert len(j.consensus().ids) == 16
    run = d / "refined.h5.refine"
    meta = json.loads((run / "encoder.json").read_text())
    assert meta["refined_from"]["run"].endswith("run") and meta["bands"] and meta["normalization"]
    rep = json.loads((run / "refine.json").read_text())
    assert rep["report"]["n_finds"] == 3 and rep["report"]["epochs_run"] == 2
    assert "no held-out set" in rep["report"]["note"]
    assert (run / "refine-checkpoint.pt").is_file()


def test_resume_continues_from_the_last_epoch(built, xdf_cutouts):
    from galexplorer.ssl.refine import RefineConfig, refine_encoder
    from galexplorer.store import EmbeddingStore

    d, _ = built
    with EmbeddingStore(d / "s.h5") as s:
        rows = np.arange(16)
        labels = np.r_[np.full(4, 5.0), np.zeros(12)]
        cfg = RefineConfig(epochs=1, fixed_epochs=1, device="cpu", patience=5)
        out = d / "resumed"
        first = refine_encoder(xdf_cutouts, d / "run", out, rows, labels, cfg)
        assert first.epochs_run == 1 and first.resumed_from == 0
        cfg.epochs = 2
        again = refine_encoder(xdf_cutouts, d / "run", out, rows, labels, cfg, resume=True)
        assert again.resumed_from == 1 and again.epochs_run == 2
        with pytest.raises(ConfigError, match="other labels"):
            refine_encoder(xdf_cutouts, d / "run", out, rows, labels[::-1].copy(), cfg, resume=True)
        assert s.n == 48


def test_with_too_few_finds_the_epoch_line_says_so_not_nan(built, xdf_cutouts, caplog):
    import logging

    from galexplorer.ssl.refine import RefineConfig, refine_encoder

    d, _ = built
    labels = np.r_[np.full(3, 5.0), np.zeros(13)]
    with caplog.at_level(logging.INFO, logger="galexplorer"):
        refine_encoder(xdf_cutouts, d / "run", d / "few", np.arange(16), labels,
                       RefineConfig(epochs=1, fixed_epochs=1, device="cpu"))
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refine epoch")]
    assert epochs and all("no held-out finds to score" in m and "nan" not in m for m in epochs)


def test_labels_on_one_side_only_are_a_clear_error(built, xdf_cutouts):
    from galexplorer.ssl.refine import RefineConfig, refine_encoder

    d, _ = built
    with pytest.raises(ConfigError, match="both sides"):
        refine_encoder(xdf_cutouts, d / "run", d / "x", np.arange(5), np.zeros(5), RefineConfig(device="cpu"))


def test_bad_inputs_give_one_line_and_exit_2(built, tmp_path, xdf_cutouts, capsys):
    d, _ = built
    # no labels: the store without its journal (a sidecar file)
    shutil.copyfile(d / "s.h5", tmp_path / "nolab.h5")
    assert main(["refine", str(tmp_path / "nolab.h5"), "-o", str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no labels" in err and len(err.splitlines()) == 1
    # a store of your own embeddings with --run (it refines a head, see test_refine_head.py)
    np.save(tmp_path / "e.npy", np.random.default_rng(0).normal(size=(48, 4)).astype(np.float32))
    assert main(["embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "e.npy"), "-o", str(tmp_path / "ext.h5"),
                 "--projection", "pca", "--features", "none"]) == 0
    capsys.readouterr()
    assert main(["refine", str(tmp_path / "ext.h5"), "-o", str(tmp_path / "o.h5"), "--run", str(d / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "own embeddings" in err and len(err.splitlines()) == 1
    # a run that is not the store's
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["-q", "train", str(xdf_cutouts), "-o", str(tmp_path / "other"), "--epochs", "1", "--batch-size",
                 "16", "--image-size", "16", "--device", "cpu", "--seed", "7", "--config",
                 str(tmp_path / "tiny.toml")]) == 0
    capsys.readouterr()
    assert main(["refine", str(d / "s.h5"), "-o", str(tmp_path / "o.h5"), "--run", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip()
    assert "sha256 differs" in err and len(err.splitlines()) == 1
    # the output is the store itself
    assert main(["refine", str(d / "s.h5"), "-o", str(d / "s.h5")]) == 2
    assert "the store itself" in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()


def test_sources_refuses_a_subset_store(built, tmp_path, xdf_cutouts):
    from galexplorer.refining import sources
    from galexplorer.store import EmbeddingStore

    d, _ = built
    with EmbeddingStore(d / "s.h5") as s:
        cut, run = sources(s)
        assert cut.resolve() == xdf_cutouts.resolve() and run.resolve() == (d / "run").resolve()
        with pytest.raises(StoreError, match="cutouts file"):
            sources(s, cutouts=tmp_path / "missing.h5")


@pytest.mark.slow
def test_simulate_refine_every(built, capsys):
    d, _ = built
    assert main(["simulate", str(d / "s.h5"), "--truth", "peak", "--budget", "30", "--batch", "10",
                 "--refine-every", "20", "--device", "cpu", "--representation", "embedding"]) == 0
    out = capsys.readouterr().out
    assert "refined the encoder 1 times (at 20 labels" in out
    with h5py.File(d / "s.h5", "r") as f:      # the original store is untouched
        assert "refined_from" not in f.attrs


def test_simulate_waits_to_refine_until_labels_have_both_sides(tmp_path, caplog):
    """A refine point reached before any find is put off to the next batch, not an error:
    refining learns finds against the rest."""
    import logging

    from active_synthetic import planted_store

    from galexplorer.active.loop import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    path, _, _ = planted_store(tmp_path / "p.h5", n=600, rare=0.01, seed=3)
    calls = []

    def refine(store, rows, labels):
        y = np.asarray(labels) >= 3
        if y.all() or not y.any():          # what the real refine_encoder refuses
            raise ConfigError("refining needs labels on both sides of 3")
        calls.append(len(rows))
        return EmbeddingStore(store.path)

    # the model-only cold start: its first find on this store comes after the first refine point
    cfg = SimulateConfig(truth="truth", budget=80, batch=10, refine_every=10,
                         loop=LoopConfig(seed=0, representation="embedding", cold_start="model"))
    with EmbeddingStore(path) as s, caplog.at_level(logging.INFO, logger="galexplorer"):
        r = simulate(s, cfg, refine=refine)
    found = dict(r.history)
    assert found[10] == 0 and found[80] > 0, f"the test needs a first find after the first refine point: {found}"
    first_find = min(n for n, k in r.history if k > 0)
    assert "waits for labels on both sides" in caplog.text
    assert calls and calls[0] == first_find and [k for k, _ in r.refines] == calls


def test_simulate_refines_at_the_next_multiple_after_a_wait(tmp_path):
    from active_synthetic import planted_store

    from galexplorer.active.loop import LoopConfig
    from galexplorer.active.simulate import SimulateConfig, simulate
    from galexplorer.store import EmbeddingStore

    path, _, _ = planted_store(tmp_path / "p.h5", n=600, rare=0.01, seed=3)
    calls = []

    def refine(store, rows, labels):
        calls.append(len(rows))
        return EmbeddingStore(store.path)

    cfg = SimulateConfig(truth="truth", budget=100, batch=10, refine_every=25,   # first find past 25 labels
                         loop=LoopConfig(seed=0, representation="embedding", cold_start="model"))
    with EmbeddingStore(path) as s:
        r = simulate(s, cfg, refine=refine)
    first_find = min(n for n, k in r.history if k > 0)
    assert first_find > 25, r.history
    assert calls[0] == first_find
    expected, at = [first_find], first_find
    while True:   # then the first label count at or past the next multiple of 25 (labels come in tens)
        at = -(-((at // 25 + 1) * 25) // 10) * 10
        if at >= 100:
            break
        expected.append(at)
    assert calls == expected and len(calls) >= 2
