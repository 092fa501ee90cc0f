"""rank_store, the ranking sidecar, ranked_table and `galexplorer rank`."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from active_synthetic import planted_store, restore_cli_logging

from galexplorer.active.loop import LoopConfig
from galexplorer.active.ranking import current_ranking, rank_store, ranked_table
from galexplorer.active.snapshot import label_snapshot
from galexplorer.cli import main
from galexplorer.errors import LabelError, StoreError
from galexplorer.labels import LabelJournal
from galexplorer.store import EmbeddingStore
from galexplorer.store.ranking import ranking_path, read_ranking

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture
def store(tmp_path):
    return planted_store(tmp_path / "store.h5", 300)


def test_rank_without_labels_writes_prior(store):
    path, rare, _ = store
    report = rank_store(path, LoopConfig(scorer="gp"))
    assert report.result.scorer == "prior:anomaly"
    assert "no labels yet" in report.summary()
    with EmbeddingStore(path) as st:
        r = read_ranking(path, st.uuid, st.n)
    assert r is not None and r.scorer == "prior:anomaly" and r.n_labels == 0
    assert sorted(r.rank) == list(range(1, 301))


def test_rank_with_labels_and_table(store):
    path, rare, _ = store
    ids = [f"obj{i:05d}" for i in range(300)]
    five = int(np.flatnonzero(rare)[0])
    with LabelJournal.for_store(path, user="ann") as j:
        j.score(ids[five], 5)
        for i in np.flatnonzero(~rare)[:15]:
            j.score(ids[i], 0)
        j.exclude([ids[int(np.flatnonzero(rare)[1])]])
    report = rank_store(path, LoopConfig(scorer="gp"))
    assert report.result.n_labels == 16 and report.sidecar == ranking_path(path)
    with EmbeddingStore(path) as st, LabelJournal.for_store(path, readonly=True) as j:
        ranking = read_ranking(path, st.uuid, st.n)
        assert np.isfinite(ranking.std).all()          # rank completes the std for export
        table = ranked_table(st, ranking, j)
    cols = table.columns
    assert table.names[:13] == ["id", "ra", "dec", "rank", "label", "n_labellers", "disputed", "excluded",
                                "score_mean", "score_std", "acquisition", "anomaly", "cluster"]
    assert "truth" in table.names and "kind" in table.names
    assert cols["id"][0] == ids[five] and cols["label"][0] == 5 and cols["rank"][0] == 1
    assert cols["excluded"][-1] and cols["id"][-1] == ids[int(np.flatnonzero(rare)[1])]
    # every rare object that is not excluded is at the top of the list
    top = [int(i[3:]) for i in cols["id"][:rare.sum() - 1]]
    assert rare[top].all()
    with h5py.File(ranking_path(path), "r") as f:
        assert f.attrs["format"] == "galexplorer-ranking" and f.attrs["scorer"] == "gp"


def test_stale_sidecar_is_ignored(store, caplog):
    path, _, _ = store
    rank_store(path, LoopConfig(scorer="iforest"))
    assert read_ranking(path, "another-uuid") is None
    assert "uuid differs" in caplog.text


def test_unknown_ids_are_an_error(store):
    path, _, _ = store
    with LabelJournal.for_store(path, user="ann") as j:
        j.score("not-in-store", 3)
    with pytest.raises(LabelError, match="not in the store"):
        rank_store(path)
    with EmbeddingStore(path) as st, LabelJournal.for_store(path, readonly=True) as j:
        with pytest.raises(LabelError):
            label_snapshot(st, j)


def test_current_ranking_without_sidecar(store):
    path, rare, _ = store
    with EmbeddingStore(path) as st:
        r = current_ranking(st)
    assert r.scorer == "prior:anomaly" and not ranking_path(path).exists()


def test_cli_rank(store, capsys, tmp_path):
    path, _, _ = store
    assert main(["rank", str(path), "--scorer", "knn"]) == 0
    assert "ranked 300 objects" in capsys.readouterr().out
    assert main(["rank", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(StoreError):
        rank_store(tmp_path / "missing.h5")


def test_cli_rank_pca_components_saved_with_the_ranking(store, capsys):
    path, rare, _ = store
    ids = [f"obj{i:05d}" for i in range(300)]
    with LabelJournal.for_store(path, user="ann") as j:
        for i in [*np.flatnonzero(rare)[:2], *np.flatnonzero(~rare)[:12]]:
            j.score(ids[int(i)], 5 if rare[i] else 0)
    assert main(["-q", "rank", str(path), "--scorer", "gp", "--pca-components", "5",
                 "--feature-scaling", "per-component"]) == 0
    with EmbeddingStore(path) as st:
        r = read_ranking(path, st.uuid, st.n)
        stored = st.pca.shape[1]
    assert r.config["pca_components"] == 5 and r.config["feature_scaling"] == "per-component"
    assert r.info["features"]["n_features"] == 5 and r.info["features"]["scaling"] == "per-component"
    assert main(["rank", str(path)]) == 0                 # the default: the store's components to 95%, one scale
    with EmbeddingStore(path) as st:
        r = read_ranking(path, st.uuid, st.n)
    assert r.config["pca_components"] is None and r.config["feature_scaling"] == "global"
    assert r.info["features"]["n_features"] == stored and r.info["features"]["source"] == "store pca"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["rank", str(path), "--pca-components", "0"])
    assert exc.value.code == 2 and "--pca-components: expected a positive integer" in capsys.readouterr().err


def test_damaged_sidecar_is_an_error_and_rank_replaces_it(store):
    path, _, _ = store
    ranking_path(path).write_text("not hdf5")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        read_ranking(path)
    rank_store(path, LoopConfig(scorer="iforest"))   # replaced atomically
    assert read_ranking(path).scorer == "iforest"


def test_cli_export_user_labels(store, tmp_path, capsys):
    import pandas as pd

    path, _, _ = store
    with LabelJournal.for_store(path, user="ann") as j:
        j.score("obj00003", 4)
    with LabelJournal.for_store(path, user="bob") as j:
        j.score("obj00003", 2)
    assert main(["rank", str(path), "--scorer", "knn", "--knn-k", "2"]) == 0
    assert main(["export", str(path), "-o", str(tmp_path / "ann.csv"), "--user", "ann"]) == 0
    assert main(["export", str(path), "-o", str(tmp_path / "all.csv")]) == 0
    ann = pd.read_csv(tmp_path / "ann.csv").set_index("id")
    both = pd.read_csv(tmp_path / "all.csv").set_index("id")
    assert ann.loc["obj00003", "label"] == 4 and both.loc["obj00003", "label"] == 3
    assert both.loc["obj00003", "n_labellers"] == 2


def test_ranked_table_from_loop_result(store):
    from galexplorer.active.loop import ActiveLoop

    path, rare, _ = store
    with EmbeddingStore(path) as st:
        loop = ActiveLoop(st, LoopConfig(scorer="gp", batch_size=5))
        labelled = np.unique(np.concatenate([loop.initial_batch(), np.flatnonzero(rare)[:1]]))
        result = loop.fit(labelled, np.where(rare[labelled], 5.0, 0.0))
        table = ranked_table(st, result, None, top=7)
    assert len(table) == 7 and table.meta["scorer"] == "gp" and table.meta["n_labels"] == len(labelled)
    assert list(table.columns["rank"]) == list(range(1, 8))
    assert np.isnan(table.columns["label"]).all()          # no journal given: no label columns
    np.testing.assert_array_equal(table.columns["score_mean"], result.mean[result.order[:7]])
