"""``export --hats FOLDER``: the ranked catalogue as a HATS catalogue that LSDB opens (issue #25)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from active_synthetic import planted, restore_cli_logging, write_store

from galexplorer.cli import main
from galexplorer.labels import LabelJournal

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


@pytest.fixture
def store(tmp_path):
    emb, rare, truth = planted(300)
    path = write_store(tmp_path / "s.h5", emb, {"truth": truth,
                                                "note": np.array(["a,b", "=x", ""] * 100, dtype=object)})
    with LabelJournal.for_store(path, user="u") as j:
        j.score("obj00000", 4)
        j.score(f"obj{int(np.flatnonzero(rare)[0]):05d}", 5)
    return path


@pytest.mark.slow
def test_hats_partitions_the_sky(tmp_path):
    lsdb = pytest.importorskip("lsdb")
    from galexplorer.active.ranking import RankedTable
    from galexplorer.export import write_hats

    rng = np.random.default_rng(0)
    n = 2000
    table = RankedTable({"id": np.array([f"o{i}" for i in range(n)], dtype=object),
                         "ra": rng.uniform(0, 360, n), "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, n))),
                         "rank": np.arange(1, n + 1)})
    write_hats(table, tmp_path / "sky", partition_rows=300)
    cat = lsdb.open_catalog(tmp_path / "sky")
    pixels = cat.get_healpix_pixels()
    assert len(pixels) >= 12                                      # HEALPix-ordered partitions
    back = cat.compute()
    assert sorted(back["rank"]) == list(range(1, n + 1))
    per = [len(cat.get_partition(p.order, p.pixel).compute()) for p in pixels]
    assert max(per) <= 300 and sum(per) == n


@pytest.mark.slow
def test_hats_catalogue_holds_the_ranked_table(store, tmp_path):
    lsdb = pytest.importorskip("lsdb")

    out = tmp_path / "ranked_hats"
    assert main(["-q", "export", str(store), "-o", str(tmp_path / "ranked.csv"), "--hats", str(out)]) == 0
    csv = pd.read_csv(tmp_path / "ranked.csv", keep_default_na=False, na_values=[""])
    cat = lsdb.open_catalog(out)
    back = cat.compute().sort_values("rank").reset_index(drop=True)
    assert list(back["id"]) == list(csv["id"]) and list(back["rank"]) == list(range(1, 301))
    np.testing.assert_array_equal(back["ra"].to_numpy(float), csv["ra"].to_numpy(float))
    np.testing.assert_array_equal(back["score_mean"].to_numpy(np.float32), csv["score_mean"].to_numpy(np.float32))
    assert list(back["note"]) == list(csv["note"].fillna(""))     # text exactly as stored
    assert back["label"].notna().sum() == 2
    meta = json.loads((tmp_path / "ranked_hats.json").read_text())
    assert meta["format"] == "hats" and meta["rows_written"] == 300
    # a cone search through LSDB finds the objects there
    near = cat.cone_search(ra=float(csv["ra"][0]), dec=float(csv["dec"][0]), radius_arcsec=1.0).compute()
    assert csv["id"][0] in set(near["id"])


def test_hats_errors_are_one_line(store, tmp_path, capsys):
    out = tmp_path / "exists"
    out.mkdir()
    assert main(["export", str(store), "--hats", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(store)]) == 2
    assert "needs -o ranked.csv, --hats FOLDER" in capsys.readouterr().err


def test_hats_without_lsdb_names_the_install(store, tmp_path, capsys, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_lsdb(name, *a, **k):
        if name == "lsdb" or name.startswith("lsdb."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_lsdb)
    assert main(["export", str(store), "--hats", str(tmp_path / "h")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'pip install "galexplorer[hats]"' in err
    assert not (tmp_path / "h").exists()
