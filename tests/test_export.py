"""Ranked CSV/VOTable export: round trips through astropy and pandas, formula neutralising."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from active_synthetic import planted, restore_cli_logging, write_store
from astropy.table import Table

from galexplorer.active.ranking import RankedTable
from galexplorer.cli import main
from galexplorer.errors import ConfigError
from galexplorer.export import export_store, neutralise, write_ranked
from galexplorer.labels import LabelJournal

_cli_logging = pytest.fixture(autouse=True)(restore_cli_logging)


def _table():
    return RankedTable({
        "id": np.array(["a,1", "=cmd|' /C calc'!A0", "plain", 'q"uote'], dtype=object),
        "ra": np.array([53.123456789012345, 0.1, 359.99999999999994, 1e-7]),
        "dec": np.array([-27.79, -0.000123, 89.5, np.nan]),
        "rank": np.array([1, 2, 3, 4]),
        "label": np.array([5.0, np.nan, 0.0, 2.5], np.float32),
        "excluded": np.array([False, True, False, False]),
        "score_mean": np.array([4.1, 0.1, -0.2, 1 / 3], np.float32),
        "note": np.array(["+1 merger", "-", "@home", "ok"], dtype=object),
    }, {"scorer": "gp"})


def test_csv_round_trip_astropy_and_pandas(tmp_path):
    t = _table()
    out = write_ranked(t, tmp_path / "ranked.csv")
    text = out.read_text()
    assert text.splitlines()[0] == "id,ra,dec,rank,label,excluded,score_mean,note"
    assert not text.startswith("#")
    df = pd.read_csv(out)
    at = Table.read(out, format="ascii.csv")
    for read in (df, at):
        np.testing.assert_array_equal(np.asarray(read["ra"], float), t.columns["ra"])   # exact floats
        np.testing.assert_array_equal(np.asarray(read["rank"]), t.columns["rank"])
        np.testing.assert_array_equal(np.asarray(read["score_mean"], float).astype(np.float32),
                                      t.columns["score_mean"])
    assert np.isnan(df["dec"][3]) and np.isnan(df["label"][1])
    assert at["dec"].mask[3] and at["label"].mask[1]
    assert list(df["dec"][:3]) == [-27.79, -0.000123, 89.5]
    # text cells: quoted where needed, exactly as stored by default (science tools)
    assert list(df["id"]) == ["a,1", "=cmd|' /C calc'!A0", "plain", 'q"uote']
    assert list(df["note"]) == ["+1 merger", "-", "@home", "ok"]
    assert list(at["note"]) == ["+1 merger", "-", "@home", "ok"]
    assert list(df["excluded"]) == [0, 1, 0, 0]
    meta = json.loads((tmp_path / "ranked.csv.json").read_text())
    assert meta["scorer"] == "gp" and meta["rows_written"] == 4 and "galexplorer_version" in meta


def test_exact_by_default_and_spreadsheet_safe_on_request(tmp_path):
    t = RankedTable({"id": np.array(["+J1234", "=1+1", "NGC 1300"], dtype=object),
                     "dec_sex": np.array(["-27:46:57", "+02:00:00", "@x"], dtype=object),
                     "note": np.array(["-ve", "\tx", "ok"], dtype=object),
                     "dec": np.array([-27.78, 2.0, -0.5])}, {"scorer": "gp"})
    exact = write_ranked(t, tmp_path / "exact.csv")
    safe = write_ranked(t, tmp_path / "safe.csv", spreadsheet_safe=True)
    at = Table.read(exact, format="ascii.csv")
    assert list(at["id"]) == ["+J1234", "=1+1", "NGC 1300"] and list(at["dec_sex"]) == ["-27:46:57", "+02:00:00", "@x"]
    df = pd.read_csv(exact, keep_default_na=False)
    assert list(df["note"]) == ["-ve", "\tx", "ok"]
    df = pd.read_csv(safe)
    assert list(df["id"]) == ["'+J1234", "'=1+1", "NGC 1300"] and list(df["note"]) == ["'-ve", "'\tx", "ok"]
    assert list(df["dec"]) == [-27.78, 2.0, -0.5]           # numbers never change
    assert json.loads((tmp_path / "safe.csv.json").read_text())["spreadsheet_safe"] is True
    with pytest.raises(ConfigError, match="CSV only"):
        write_ranked(t, tmp_path / "t.xml", spreadsheet_safe=True)


def test_neutralise():
    assert neutralise("=1+1") == "'=1+1" and neutralise("\tx") == "'\tx" and neutralise("\rx") == "'\rx"
    assert neutralise("NGC 1300") == "NGC 1300"


def test_votable_and_top(tmp_path):
    t = _table()
    out = write_ranked(t, tmp_path / "ranked.xml", top=2)
    back = Table.read(out, format="votable")
    assert len(back) == 2 and list(back["id"]) == ["a,1", "=cmd|' /C calc'!A0"]
    assert back["ra"].unit == "deg"
    np.testing.assert_array_equal(np.asarray(back["ra"]), t.columns["ra"][:2])
    with pytest.raises(ConfigError, match="extension"):
        write_ranked(t, tmp_path / "ranked.xlsx")
    with pytest.raises(ConfigError):
        write_ranked(t, tmp_path / "ranked.csv", top=0)


def test_export_store_and_cli(tmp_path, capsys):
    emb, rare, truth = planted(200)
    path = write_store(tmp_path / "s.h5", emb, {"truth": truth,
                                                "comment": np.array(["=HYPERLINK(x)"] * 200, dtype=object)})
    with LabelJournal.for_store(path, user="u") as j:
        j.score("obj00000", 4)
        j.score(f"obj{int(np.flatnonzero(rare)[0]):05d}", 5)
    out, table = export_store(path, tmp_path / "ranked.csv")
    assert len(table) == 200
    df = pd.read_csv(out)
    assert len(df) == 200 and df["label"].notna().sum() == 2
    assert df["label"][0] == 5 and (df["comment"] == "=HYPERLINK(x)").all()
    assert set(df["rank"]) == set(range(1, 201)) and list(df["rank"]) == sorted(df["rank"])
    assert main(["export", str(path), "-o", str(tmp_path / "top.csv"), "--top", "5"]) == 0
    assert len(pd.read_csv(tmp_path / "top.csv")) == 5
    assert "wrote 5 ranked objects" in capsys.readouterr().out
    assert main(["export", str(path), "-o", str(tmp_path / "sheet.csv"), "--top", "5", "--spreadsheet-safe"]) == 0
    assert (pd.read_csv(tmp_path / "sheet.csv")["comment"] == "'=HYPERLINK(x)").all()
    assert main(["export", str(path), "-o", str(tmp_path / "t.xml"), "--spreadsheet-safe"]) == 2
    assert "CSV only" in capsys.readouterr().err
