"""Why an object ranks where it does (issue #23 item 10): the split, the pulls, the export columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from active_synthetic import planted, planted_store, restore_cli_logging, write_store

from galexplorer.active.explain import EXPLAIN_COLUMNS, anomaly_percentiles, explain
from galexplorer.active.loop import ActiveLoop, LoopConfig
from galexplorer.cli import main
from galexplorer.errors import ConfigError
from galexplorer.export import export_store
from galexplorer.labels import LabelJournal
from galexplorer.store import EmbeddingStore

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture(scope="module")
def planted600(tmp_path_factory):
    return planted_store(tmp_path_factory.mktemp("ex") / "s.h5", 600, rare=0.05)


def _fit(path, rare, scorer):
    st = EmbeddingStore(path)
    loop = ActiveLoop(st, LoopConfig(scorer=scorer))
    rows = np.r_[loop.initial_batch(), np.flatnonzero(rare)[:3]]
    return st, loop, loop.fit(rows, np.where(rare[rows], 5.0, 0.0))


@pytest.mark.parametrize("scorer", ["gp", "gp-anomaly"])
def test_prior_plus_label_part_is_the_prediction(planted600, scorer):
    path, rare, _ = planted600
    st, loop, res = _fit(path, rare, scorer)
    with st:
        ex = explain(res, loop.X, loop.anomaly_prior(), np.arange(600))
        np.testing.assert_allclose(ex.prior + ex.from_labels, res.mean, atol=2e-4)
        # the pulls are the largest terms of the label part, strongest first, and each is weight × (label − prior)
        top = np.abs(ex.pull_contributions)
        assert (np.diff(top, axis=1) <= 1e-12).all()
        assert np.isin(ex.pulls, res.labelled).all()
        assert np.all(ex.prior_std > ex.std[np.argmax(res.mean)])    # labels shrink the ±
        # a rare object's top pull is a labelled rare object (score 5), pulling it up
        unl = np.setdiff1d(np.flatnonzero(rare), res.labelled)
        i = int(np.argmax(res.mean[unl]))
        e = explain(res, loop.X, loop.anomaly_prior(), unl[i:i + 1])
        assert e.pull_labels[0, 0] == 5 and e.pull_contributions[0, 0] > 0 and e.from_labels[0] > 0
        assert "from the labels" in e.describe(0)


def test_contributions_match_the_weights_by_hand(planted600):
    """weight_j = (K⁻¹k)_j computed directly from the fitted hyper-parameters."""
    from galexplorer.active.gp import GaussianProcessRegressor

    path, rare, _ = planted600
    st, loop, res = _fit(path, rare, "gp")
    with st:
        X = loop.X.astype(np.float64)
        Z = X[res.labelled]
        gp = GaussianProcessRegressor().fit(Z, res.labels, hyper=None)
        h = gp.hyper

        def kern(A, B):
            d = np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)) * np.sqrt(3) / h.length_scale
            return h.amplitude * (1 + d) * np.exp(-d)

        K = kern(Z, Z) + (h.noise + gp.jitter) * np.eye(len(Z))
        w = np.linalg.solve(K, kern(X[:5], Z).T).T
        np.testing.assert_allclose(gp.label_weights(loop.X, np.arange(5)), w, atol=1e-8)
        np.testing.assert_allclose(w @ gp.residual_labels + gp.prior_mean(5), gp.predict_mean(loop.X[:5]), atol=1e-4)


def test_percentile_neighbour_and_other_scorers(planted600):
    np.testing.assert_allclose(anomaly_percentiles(np.array([3.0, 1.0, 2.0, 2.0])), [100, 0, 50, 50])
    path, rare, _ = planted600
    st, loop, res = _fit(path, rare, "knn")
    with st:
        lab = res.labelled[:2]
        ex = explain(res, loop.X, loop.anomaly_prior(), lab)
        # a labelled object's nearest labelled neighbour is the closest *other* labelled object
        X = np.asarray(loop.X, np.float64)
        for i, row in enumerate(lab):
            others = res.labelled[res.labelled != row]
            d = np.linalg.norm(X[others] - X[row], axis=1)
            assert ex.nearest[i] == others[np.argmin(d)] and ex.nearest[i] != row
            assert ex.nearest_distance[i] == pytest.approx(d.min(), rel=1e-5, abs=1e-6)
            assert ex.nearest_label[i] == res.labels[res.labelled == ex.nearest[i]][0]
        assert np.isnan(ex.prior).all() and (ex.pulls == -1).all()
        assert "predicted" in ex.describe(0) and "nearest labelled" in ex.describe(0)
        with pytest.raises(ConfigError, match="rows to explain"):
            explain(res, loop.X, loop.anomaly_prior(), np.array([600]))


def test_the_only_label_has_no_labelled_neighbour_and_the_others_have_it():
    from types import SimpleNamespace

    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    res = SimpleNamespace(labelled=np.array([1]), labels=np.array([5.0]), mean=np.zeros(3),
                          std=np.ones(3), _model=None)
    ex = explain(res, X, np.array([0.1, 0.2, 0.3]), np.arange(3))
    assert list(ex.nearest) == [1, -1, 1]                   # the label itself has none: it is the only one
    assert np.isnan(ex.nearest_distance[1]) and np.isnan(ex.nearest_label[1])
    np.testing.assert_allclose(ex.nearest_distance[[0, 2]], [1.0, 4.0])
    assert "nearest labelled" not in ex.describe(1) and "nearest labelled" in ex.describe(0)


def test_export_explain_columns_and_cli(tmp_path, capsys):
    emb, rare, truth = planted(300)
    path = write_store(tmp_path / "s.h5", emb, {"truth": truth})
    r = np.flatnonzero(rare)
    with LabelJournal.for_store(path, user="u") as j:
        j.score("obj00000", 0)
        j.score(f"obj{r[0]:05d}", 5)
        j.score(f"obj{r[1]:05d}", 5)
    out, table = export_store(path, tmp_path / "x.csv", top=20, explain=True)
    df = pd.read_csv(out)
    assert list(df.columns[-len(EXPLAIN_COLUMNS):]) == list(EXPLAIN_COLUMNS) and len(df) == 20
    np.testing.assert_allclose(df["score_prior"] + df["score_from_labels"], df["score_mean"], atol=1e-3)
    assert set(df["pull_1_id"].dropna()) <= {"obj00000", f"obj{r[0]:05d}", f"obj{r[1]:05d}"}
    assert df["anomaly_percentile"].between(0, 100).all() and df["nearest_labelled_id"].notna().all()
    plain = pd.read_csv(export_store(path, tmp_path / "plain.csv", top=20)[0])
    assert "score_prior" not in plain.columns                   # optional: only with --explain
    assert main(["export", str(path), "-o", str(tmp_path / "c.csv"), "--top", "5", "--explain"]) == 0
    assert "pull_3_contribution" in pd.read_csv(tmp_path / "c.csv").columns


def test_explain_finds_the_nearest_labelled_in_the_features_the_fit_learned_on(tmp_path):
    """`export --explain` and the window's Why here name the same nearest labelled object: both
    search the representation the fit used (here morphology), not always the embedding."""
    import h5py

    emb, rare, truth = planted(300)
    path = write_store(tmp_path / "s.h5", emb, {"truth": truth})
    other = np.random.default_rng(5).standard_normal((300, 6)).astype(np.float32)   # unlike the embedding
    with h5py.File(path, "a") as f:
        f.create_dataset("features/morphology", data=other)
    r = np.flatnonzero(rare)
    with LabelJournal.for_store(path, user="u") as j:
        for i, s in ((0, 0), (1, 0), (2, 1), (r[0], 5), (r[1], 5)):
            j.score(f"obj{i:05d}", s)
    assert main(["rank", str(path), "--representation", "morphology"]) == 0
    df = pd.read_csv(export_store(path, tmp_path / "x.csv", explain=True)[0])
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(representation="morphology"))
        lab = np.array([0, 1, 2, r[0], r[1]])
        res = loop.fit(lab, np.array([0, 0, 1, 5, 5], float))
        assert res.representation == "morphology"
        rows = np.array([int(i[3:]) for i in df["id"]])
        want = explain(res, loop.learned_features(res), loop.anomaly_prior(), rows)
        in_embedding = explain(res, loop.X, loop.anomaly_prior(), rows)
    np.testing.assert_allclose(df["nearest_labelled_distance"], want.nearest_distance, rtol=1e-5)
    assert not np.allclose(want.nearest_distance, in_embedding.nearest_distance)
