"""#22 item 2, stores of your own embeddings: `galexplorer refine` refines a small head on the
features (there is no encoder), says so, and keeps the ids, order and journal; simulate
--refine-every does the same; bad inputs give one-line errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from active_synthetic import own_embeddings_store, planted_quiet, restore_cli_logging, write_store

from galexplorer.cli import main
from galexplorer.errors import ConfigError, StoreError

_restore_logging = pytest.fixture(autouse=True)(restore_cli_logging)


def _attr(value):
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A store of own embeddings where the rare class hides in quiet dimensions, and 200 labels
    (15 finds) in its journal."""
    from galexplorer.labels import LabelJournal

    d = tmp_path_factory.mktemp("head")
    x, rare = planted_quiet(1500, seed=0)
    store = own_embeddings_store(d / "own.h5", x, {"truth": np.where(rare, 5.0, 0.0)})
    rng = np.random.default_rng(1)
    labelled = np.sort(np.r_[rng.choice(np.flatnonzero(rare), 15, replace=False),
                             rng.choice(np.flatnonzero(~rare), 185, replace=False)])
    with LabelJournal.for_store(store, user="ann") as j:
        for i in labelled:
            j.score(f"obj{i:05d}", 5 if rare[i] else 0)
    return d, store, rare, labelled


def _probe_ap(store_path, rare, labelled) -> float:
    """Average precision, on the unlabelled objects, of a logistic probe fitted on the labelled
    ones in the store's ``pca`` (what the loop learns on)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(store_path) as s:
        X = np.asarray(s.pca, np.float64)
    rest = np.setdiff1d(np.arange(len(rare)), labelled)
    probe = LogisticRegression(class_weight="balanced", max_iter=5000).fit(X[labelled], rare[labelled])
    return float(average_precision_score(rare[rest], probe.decision_function(X[rest])))


def test_head_refine_separates_the_rare_class_and_keeps_ids_and_journal(planted, capsys):
    from galexplorer.labels import LabelJournal
    from galexplorer.ssl.refine_head import load_head
    from galexplorer.store import EmbeddingStore

    d, store, rare, labelled = planted
    out = d / "refined.h5"
    assert main(["refine", str(store), "-o", str(out), "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert "small head" in said and "not an encoder" in said
    before, after = _probe_ap(store, rare, labelled), _probe_ap(out, rare, labelled)
    # the store's PCA at 95% drops the quiet dimensions: before, the probe is near the base rate (0.03)
    assert before < 0.1 and after > before + 0.1, (before, after)
    with EmbeddingStore(out) as s, EmbeddingStore(store) as old:
        assert np.array_equal(s.ids, old.ids) and s.n == old.n
        prov = _attr(s.attrs["refined_from"])
        assert prov["kind"] == "head" and prov["uuid"] == old.uuid and prov["n_labels"] == 200
        emb = s.dataset_attrs("embeddings")
        assert emb["method"] == "head" and emb["base_uuid"] == old.uuid
        assert s.embeddings.shape == (1500, 64)
        assert s.has("pca") and s.has("projection") and "anomaly" in s.score_names
        assert np.array_equal(np.asarray(s.column("truth")), np.asarray(old.column("truth")))
    with LabelJournal.for_store(out, readonly=True) as j:
        assert len(j.consensus().ids) == 200
    head, meta = load_head(d / "refined.h5.refine")       # torch.load(weights_only=True), JSON config
    assert meta["in_dim"] == 32 and meta["dim"] == 64 and meta["report"]["n_finds"] == 15
    rep = meta["report"]
    assert rep["epochs_run"] == len(rep["holdout_ap"]) >= 1 and 0 <= rep["best_epoch"] <= rep["epochs_run"]


def test_refining_a_refined_store_starts_from_your_embeddings(planted):
    """A head-refined store refines again from the original embeddings (no compounding): with
    the same labels and seed, the same representation as refining the original."""
    from galexplorer.store import EmbeddingStore

    d, store, _, _ = planted
    first, again = d / "r1.h5", d / "r2.h5"
    assert main(["-q", "refine", str(store), "-o", str(first), "--device", "cpu"]) == 0
    assert main(["-q", "refine", str(first), "-o", str(again), "--device", "cpu"]) == 0
    with EmbeddingStore(first) as a, EmbeddingStore(again) as b:
        assert np.allclose(a.load_embeddings(), b.load_embeddings(), atol=1e-5)
        assert b.dataset_attrs("embeddings")["base_store"] == str(store.resolve())


def test_head_refine_with_cutouts_keeps_thumbnails_and_other_sets(tmp_path, xdf_cutouts):
    from galexplorer.labels import LabelJournal
    from galexplorer.store import EmbeddingStore

    x = np.random.default_rng(0).normal(size=(48, 8)).astype(np.float32)
    np.save(tmp_path / "e.npy", x)
    store = tmp_path / "ext.h5"
    assert main(["-q", "embed", str(xdf_cutouts), "--embeddings", str(tmp_path / "e.npy"), "-o", str(store),
                 "--projection", "pca"]) == 0
    with EmbeddingStore(store) as s:
        ids = [str(i) for i in s.ids]
    with LabelJournal.for_store(store, user="ann") as j:
        for i in range(4):
            j.score(ids[i], 5)
        for i in range(4, 20):
            j.score(ids[i], 1)
    out = tmp_path / "out.h5"
    assert main(["-q", "refine", str(store), "-o", str(out), "--device", "cpu", "--epochs", "3"]) == 0
    with EmbeddingStore(out) as s, EmbeddingStore(store) as old:
        assert [str(i) for i in s.ids] == ids
        assert s.thumbnails is not None and s.thumbnails.shape == old.thumbnails.shape
        assert s.feature_set_names == old.feature_set_names == ["morphology", "pixels"]
        assert s.cutouts_path.resolve() == xdf_cutouts.resolve()
        assert np.array_equal(s.cutouts_rows, old.cutouts_rows)


def test_bad_inputs_give_one_line_and_exit_2(planted, tmp_path, capsys):
    from galexplorer.labels import LabelJournal

    d, store, _, _ = planted

    def fails(args, *words):
        capsys.readouterr()
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and all(w in err for w in words), err

    # labels on one side only
    x, _ = planted_quiet(200, seed=2)
    one_side = own_embeddings_store(tmp_path / "one.h5", x)
    with LabelJournal.for_store(one_side, user="ann") as j:
        for i in range(10):
            j.score(f"obj{i:05d}", 0)
    fails(["refine", str(one_side), "-o", str(tmp_path / "o.h5")], "both sides")
    # no labels
    fails(["refine", str(own_embeddings_store(tmp_path / "nolab.h5", x)), "-o", str(tmp_path / "o.h5")], "no labels")
    # a store without an embeddings dataset
    bare = write_store(tmp_path / "bare.h5", x, with_embeddings=False)
    fails(["refine", str(bare), "-o", str(tmp_path / "o.h5")], "no embeddings dataset")
    # --run on a store of own embeddings
    fails(["refine", str(store), "-o", str(tmp_path / "o.h5"), "--run", str(tmp_path)], "own embeddings", "--run")
    # --cutouts for a store built without one
    fails(["refine", str(store), "-o", str(tmp_path / "o.h5"), "--cutouts", str(store)], "without a cutouts file")
    # a refined store whose original is gone
    assert main(["-q", "refine", str(store), "-o", str(tmp_path / "r.h5"), "--device", "cpu"]) == 0
    with h5py.File(tmp_path / "r.h5", "r+") as f:
        f["embeddings"].attrs["base_store"] = str(tmp_path / "gone.h5")
    fails(["refine", str(tmp_path / "r.h5"), "-o", str(tmp_path / "o.h5")], "gone")
    assert not (tmp_path / "o.h5").exists()


def test_library_errors_are_typed(planted, tmp_path):
    from galexplorer.ssl.refine_head import HeadRefineConfig, load_head, refine_head

    x, _ = planted_quiet(100, seed=3)
    with pytest.raises(ConfigError, match="both sides"):
        refine_head(x, np.arange(10), np.full(10, 5.0), tmp_path / "h")
    with pytest.raises(ConfigError, match="distinct rows"):
        refine_head(x, np.array([0, 1, 200]), np.array([5.0, 0, 0]), tmp_path / "h")
    with pytest.raises(ConfigError, match="dim"):
        HeadRefineConfig(dim=0).validate()
    from galexplorer.errors import CheckpointError

    with pytest.raises(CheckpointError, match="head.json"):
        load_head(tmp_path)
    with pytest.raises(StoreError):
        from galexplorer.refining import sources
        from galexplorer.store import EmbeddingStore

        with EmbeddingStore(planted[1]) as s:
            sources(s)


def test_the_head_starts_as_the_pca_of_the_standardised_features():
    """Before training the head is the principal axes of the standardised features (the MLP
    starts at zero): nothing of the embeddings is lost at the start."""
    import torch

    from galexplorer.ssl.refine_head import FeatureHead

    x, _ = planted_quiet(400, dim=12, seed=4)
    head = FeatureHead(12, hidden=16, dim=20)
    mean, scale = x.mean(0), x.std(0)
    head.start_at_pca(mean, scale, x)
    z = head.embed(x)
    xs = (x - mean) / scale
    assert z.shape == (400, 20) and np.allclose(z[:, 12:], 0)
    # an orthonormal rotation: distances of the standardised features are kept
    assert np.allclose(np.linalg.norm(z[:5] - z[5:10], axis=1), np.linalg.norm(xs[:5] - xs[5:10], axis=1),
                       rtol=1e-4)
    w = head.base.weight.detach()[:12]
    assert torch.allclose(w @ w.T, torch.eye(12), atol=1e-5)


def test_simulate_refine_every_on_own_embeddings(tmp_path, capsys):
    x, rare = planted_quiet(600, seed=5, rare=0.05)
    store = own_embeddings_store(tmp_path / "sim.h5", x, {"truth": np.where(rare, 5.0, 0.0)})
    capsys.readouterr()
    assert main(["simulate", str(store), "--truth", "truth", "--scale", "5", "--budget", "60", "--batch", "10",
                 "--refine-every", "20", "--device", "cpu", "--representation", "embedding", "--no-remaining"]) == 0
    out = capsys.readouterr().out
    assert "refined a small head on your embeddings (not an encoder)" in out and "refined the encoder" not in out
    with h5py.File(store, "r") as f:
        assert "refined_from" not in f.attrs



def test_with_fewer_than_four_finds_the_head_is_not_trained(tmp_path):
    """Nothing held out to stop on: the head keeps its start (the PCA of the standardised
    features) and the report says why."""
    from galexplorer.ssl.refine_head import load_head, refine_head

    x, rare = planted_quiet(300, dim=16, seed=6, rare=0.05)
    rows = np.r_[np.flatnonzero(rare)[:3], np.flatnonzero(~rare)[:30]]
    labels = np.where(rare[rows], 5.0, 0.0)
    rep = refine_head(x, rows, labels, tmp_path / "h")
    assert rep.epochs_run == 0 and rep.best_epoch == 0 and "too few" in rep.note and "3 finds" in rep.note
    head, _ = load_head(tmp_path / "h")
    assert np.allclose(head.mlp[-1].weight.detach().numpy(), 0)       # the MLP is still zero
    w = head.base.weight.detach().numpy()[:16]
    assert np.allclose(w @ w.T, np.eye(16), atol=1e-5)                  # P: the principal axes
