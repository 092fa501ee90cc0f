"""Real catalogues: FITS binary tables, VOTable, ECSV, IPAC and CSV; one table of column names;
sexagesimal positions and units (data/catalog.py)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Column, MaskedColumn, Table

from galexplorer.data.catalog import COLUMN_NAMES, find_column, read_catalog, sniff_delimiter
from galexplorer.errors import InputError

RA = np.array([53.1624, 53.17, 189.2])
DEC = np.array([-27.7914, -27.8, 62.2])
OBJID = np.array([1237648720693755918, 1237648720693755919, 7], dtype=np.int64)


def _check(cat, ids=None):
    assert list(cat.ids) == (ids or [str(v) for v in OBJID])
    np.testing.assert_allclose(cat.ra, RA, atol=1e-6)
    np.testing.assert_allclose(cat.dec, DEC, atol=1e-6)


def test_fits_binary_table_written_by_astropy(tmp_path):
    t = Table({"OBJID": OBJID, "RA": RA * u.deg, "DEC": DEC * u.deg, "Z": [0.1, 0.2, 0.3],
               "CLASS": ["GALAXY", "QSO", "GALAXY"], "FLAG": np.array([True, False, True]),
               "FLUX": np.ones((3, 5))})                 # a vector column is left out
    t["MAG"] = MaskedColumn([20.1, 21.0, 0.0], mask=[False, False, True])
    t.write(tmp_path / "cat.fits")
    cat = read_catalog(tmp_path / "cat.fits")
    _check(cat)
    assert cat.names == {"id": "OBJID", "ra": "RA", "dec": "DEC"}
    assert list(cat.columns) == ["Z", "CLASS", "FLAG", "MAG"]
    assert list(cat.columns["CLASS"]) == ["GALAXY", "QSO", "GALAXY"]
    assert cat.columns["FLAG"].dtype == np.int64 and list(cat.columns["FLAG"]) == [1, 0, 1]
    assert np.isnan(cat.columns["MAG"][2]) and cat.columns["MAG"][0] == 20.1


def test_fits_plus_as_written_by_stilts_and_topcat(tmp_path):
    # STILTS/TOPCAT "fits-plus": a primary HDU carrying the VOTable metadata as bytes, the table in HDU 1,
    # upper-case names, TUNIT 'deg', trailing blanks in text cells
    meta = np.frombuffer(b"<?xml version='1.0'?><VOTABLE version='1.3'></VOTABLE>", dtype=np.uint8)
    primary = fits.PrimaryHDU(meta)
    primary.header["VOTMETA"] = True
    cols = fits.ColDefs([fits.Column("objID", "K", array=OBJID),
                         fits.Column("RAJ2000", "D", unit="deg", array=RA),
                         fits.Column("DEJ2000", "D", unit="deg", array=DEC),
                         fits.Column("Name", "12A", array=np.array(["a  ", "b", "c "]))])
    fits.HDUList([primary, fits.BinTableHDU.from_columns(cols)]).writeto(tmp_path / "stilts.fits")
    cat = read_catalog(tmp_path / "stilts.fits")
    _check(cat)
    assert cat.names["ra"] == "RAJ2000" and list(cat.columns["Name"]) == ["a", "b", "c"]


def test_votable_written_by_astropy_in_radians(tmp_path):
    t = Table({"objid": OBJID.astype(str), "ra": np.radians(RA) * u.rad, "dec": np.radians(DEC) * u.rad})
    t.write(tmp_path / "cat.vot", format="votable")
    _check(read_catalog(tmp_path / "cat.vot"))


VIZIER = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE><TABLE name="J/other">
<FIELD name="ID" datatype="char" arraysize="*" ucd="meta.id;meta.main"/>
<FIELD name="RAJ2000" datatype="char" arraysize="11" unit="&quot;h:m:s&quot;" ucd="pos.eq.ra;meta.main"/>
<FIELD name="DEJ2000" datatype="char" arraysize="11" unit="&quot;d:m:s&quot;" ucd="pos.eq.dec;meta.main"/>
<FIELD name="Vmag" datatype="float" unit="mag"/>
<DATA><TABLEDATA>
<TR><TD>+J0332</TD><TD>03 32 39.0</TD><TD>-27 47 29</TD><TD>21.5</TD></TR>
<TR><TD>-27:46:57</TD><TD>12:36:48.0</TD><TD>+62:12:00</TD><TD></TD></TR>
</TABLEDATA></DATA>
</TABLE></RESOURCE></VOTABLE>
"""


def test_vizier_style_sexagesimal_votable(tmp_path):
    (tmp_path / "viz.xml").write_text(VIZIER)
    cat = read_catalog(tmp_path / "viz.xml")
    assert list(cat.ids) == ["+J0332", "-27:46:57"]          # ids exactly as written
    np.testing.assert_allclose(cat.ra, [53.1625, 189.2], atol=1e-6)
    np.testing.assert_allclose(cat.dec, [-27.791389, 62.2], atol=1e-6)
    assert cat.columns["Vmag"][0] == pytest.approx(21.5) and np.isnan(cat.columns["Vmag"][1])


def test_ecsv_hourangle_and_ipac(tmp_path):
    t = Table({"ra_deg": RA / 15 * u.hourangle, "dec_deg": DEC * u.deg, "OBJID": OBJID})
    t.write(tmp_path / "cat.ecsv")
    _check(read_catalog(tmp_path / "cat.ecsv"))
    t2 = Table({"id": ["x1", "x2", "x3"], "ra": RA, "dec": DEC})
    t2["ra"].unit = u.deg
    t2.write(tmp_path / "cat.tbl", format="ascii.ipac")
    _check(read_catalog(tmp_path / "cat.tbl"), ids=["x1", "x2", "x3"])


def test_csv_sexagesimal_and_sniffed_delimiters(tmp_path):
    rows = ["03:32:39.0;-27:47:29;a", "12:36:48.0;+62:12:00;b"]
    (tmp_path / "semi.csv").write_text("RA;DEC;OBJID\n" + "\n".join(rows) + "\n")
    cat = read_catalog(tmp_path / "semi.csv")
    np.testing.assert_allclose(cat.ra, [53.1625, 189.2], atol=1e-6)
    assert list(cat.ids) == ["a", "b"]
    assert sniff_delimiter("a\tb\tc") == "\t" and sniff_delimiter("a,b;c", "x.tsv") == "\t"
    assert sniff_delimiter("a,b,c;d") == "," and sniff_delimiter("") == ","


def test_one_table_of_names_everywhere():
    from galexplorer.data import hdf5
    from galexplorer.explore import external

    for name in ("RA", "DEC", "RAJ2000", "DEJ2000", "ra_deg", "objid", "OBJID"):
        assert any(name.lower() in v for v in COLUMN_NAMES.values())
    assert set(COLUMN_NAMES["id"]) <= set(hdf5.ID_NAMES)
    assert external.ID_NAMES is COLUMN_NAMES["id"] and external.RA_NAMES is COLUMN_NAMES["ra"]
    assert find_column(["z", "DEJ2000", "RAJ2000", "OBJID"], "ra") == "RAJ2000"
    assert find_column(["z"], "dec") is None


def test_bad_tables_are_one_line_input_errors(tmp_path):
    Table({"id": ["a"], "ra": [1.0] * u.s, "dec": [2.0] * u.deg}).write(tmp_path / "t.fits")
    with pytest.raises(InputError, match="not an angle"):
        read_catalog(tmp_path / "t.fits")
    (tmp_path / "bad.fits").write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    with pytest.raises(InputError, match="cannot be read as a FITS table"):
        read_catalog(tmp_path / "bad.fits")
    (tmp_path / "bad.vot").write_text("<VOTABLE><RESOURCE><TABLE><FIELD")
    with pytest.raises(InputError, match="VOTable"):
        read_catalog(tmp_path / "bad.vot")
    Table({"id": Column([], dtype=str), "ra": Column([], dtype=float)}).write(tmp_path / "empty.ecsv")
    with pytest.raises(InputError, match="empty"):
        read_catalog(tmp_path / "empty.ecsv")
    Table({"id": ["a", "a"], "ra": [1.0, 2.0], "dec": [0.0, 0.0]}).write(tmp_path / "dup.vot", format="votable")
    with pytest.raises(InputError, match="duplicate id"):
        read_catalog(tmp_path / "dup.vot")


def test_ingest_and_embed_take_a_fits_catalogue(tmp_path):
    from galexplorer.data.ingest import IngestConfig, ingest
    from galexplorer.explore.external import ExternalEmbeddings, embed_from_file
    from galexplorer.explore.pipeline import EmbedConfig
    from galexplorer.store import CutoutStore, EmbeddingStore

    (tmp_path / "img").mkdir()
    for k in range(3):
        fits.writeto(tmp_path / "img" / f"g{k}.fits", np.full((12, 12), k + 1.0, np.float32))
    Table({"FILE": [f"img/g{k}.fits" for k in range(3)], "OBJID": OBJID, "RA": RA * u.deg,
           "DEC": DEC * u.deg, "Z": [0.1, 0.2, 0.3]}).write(tmp_path / "cat.fits")
    ingest([], tmp_path / "cut.h5", IngestConfig(size=8, thumb_size=8, catalog=str(tmp_path / "cat.fits")))
    with CutoutStore(tmp_path / "cut.h5") as cut:
        assert list(cut.ids) == [str(v) for v in OBJID]
        np.testing.assert_allclose(cut.objects.ra, RA)
        np.testing.assert_allclose(cut.column("Z"), [0.1, 0.2, 0.3])
    np.save(tmp_path / "emb.npy", np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    embed_from_file(None, ExternalEmbeddings(tmp_path / "emb.npy", catalog=tmp_path / "cat.fits"), tmp_path / "s.h5",
                    EmbedConfig(projection="pca", iforest_trees=5))
    with EmbeddingStore(tmp_path / "s.h5") as s:
        assert list(s.ids) == [str(v) for v in OBJID]
        np.testing.assert_allclose(s.objects.dec, DEC)


@pytest.mark.parametrize("name", ["emb.fits", "emb.vot"])
def test_embeddings_tables_in_fits_and_votable(tmp_path, name):
    from galexplorer.explore.external import ExternalEmbeddings, embed_from_file
    from galexplorer.explore.pipeline import EmbedConfig
    from galexplorer.store import EmbeddingStore

    emb = np.random.default_rng(1).normal(size=(3, 6)).astype(np.float32)
    t = Table({"OBJID": OBJID, "RAJ2000": RA * u.deg, "DEJ2000": DEC * u.deg, "EMBEDDING": emb,
               "CLASS": ["a", "b", "c"]})
    if name.endswith(".vot"):
        t.remove_column("EMBEDDING")
        for k in range(6):
            t[f"feat_{k}"] = emb[:, k]
    t.write(tmp_path / name, format="votable" if name.endswith(".vot") else None)
    embed_from_file(None, ExternalEmbeddings(tmp_path / name), tmp_path / "s.h5",
                    EmbedConfig(projection="pca", iforest_trees=5, n_clusters=2))
    with EmbeddingStore(tmp_path / "s.h5") as s:
        assert list(s.ids) == [str(v) for v in OBJID]
        np.testing.assert_allclose(s.objects.ra, RA)
        np.testing.assert_array_equal(s.load_embeddings(), emb)
