"""The one registry of input formats (data/registry.py, issue #24 item 2): recognition by suffix
and by first bytes, the error that lists what a purpose accepts, and the extensibility point."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits

from galexplorer.data import catalog, inputs, registry  # noqa: F401 - importing registers readers
from galexplorer.errors import InputError
from galexplorer.explore import external  # noqa: F401 - registers the embeddings readers


def _fits_image(path: Path) -> Path:
    fits.PrimaryHDU(np.arange(64, dtype=np.float32).reshape(8, 8)).writeto(path)
    return path


@pytest.mark.parametrize("name, purpose, expected", [
    ("a.fits", "ingest", "fits"), ("B.FITS.GZ", "ingest", "fits"), ("c.fz", "ingest", "fits"),
    ("d.png", "ingest", "image"), ("e.TIFF", "ingest", "image"), ("f.h5", "ingest", "hdf5"),
    ("g.npy", "embeddings", "npy"), ("h.pq", "embeddings", "parquet"), ("i.csv.gz", "embeddings", "csv"),
    ("j.xml", "embeddings", "votable"), ("k.fits", "embeddings", "fits"), ("l.tbl", "catalog", "ipac"),
    ("m.ecsv", "catalog", "ecsv"), ("n.csv", "catalog", "csv"),
])
def test_identify_by_suffix_without_opening(tmp_path, name, purpose, expected):
    # the files do not exist: a suffix decides without reading a byte
    assert registry.identify(tmp_path / name, purpose).name == expected


def test_the_longest_suffix_wins(tmp_path):
    assert registry.by_suffix(tmp_path / "x.csv.gz", "embeddings").name == "csv"
    assert inputs.file_stem(Path("q.FITS.fz")) == "q"


def test_a_fits_file_named_dat_is_found_by_its_first_bytes(tmp_path):
    path = _fits_image(tmp_path / "image.dat")
    assert registry.identify(path, "ingest").name == "fits"
    files, _ = inputs.find_inputs([path])
    assert [f.kind for f in files] == ["fits"]
    # ... and it is read: the reader registered for ingest opens it
    img = registry.get_reader("fits", "ingest")(path)
    assert img.data.shape[-2:] == (8, 8)


@pytest.mark.parametrize("write, purpose, expected", [
    (lambda p: h5py.File(p, "w").close(), "ingest", "hdf5"),
    (lambda p: np.save(open(p, "wb"), np.zeros((2, 3))), "embeddings", "npy"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20), "ingest", "image"),
    (lambda p: p.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 20), "ingest", "image"),
    (lambda p: p.write_bytes(b"PAR1" + b"\0" * 20), "embeddings", "parquet"),
    (lambda p: p.write_text("# %ECSV 1.0\n# ---\nid\n1\n"), "catalog", "ecsv"),
    (lambda p: p.write_text('<?xml version="1.0"?>\n<VOTABLE></VOTABLE>\n'), "catalog", "votable"),
], ids=["hdf5", "npy", "png", "jpeg", "parquet", "ecsv", "votable"])
def test_magic_bytes(tmp_path, write, purpose, expected):
    path = tmp_path / "file.bin"
    write(path)
    assert registry.identify(path, purpose).name == expected


def test_hdf5_signature_after_a_user_block(tmp_path):
    path = tmp_path / "cube.data"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["x"] = np.zeros(3)
    assert registry.identify(path, "ingest").name == "hdf5"


def test_unknown_format_lists_what_the_purpose_accepts(tmp_path):
    path = tmp_path / "notes.dat"
    path.write_text("just text\n")
    with pytest.raises(InputError) as err:
        registry.identify(path, "embeddings")
    msg = str(err.value)
    assert msg.startswith(f"{path}: unknown embeddings format '.dat'") and "\n" not in msg
    for fmt in registry.accepted("embeddings"):
        assert fmt.title in msg and all(s in msg for s in fmt.suffixes)
    assert "PNG" not in msg                 # ingest's images are not embeddings
    with pytest.raises(InputError, match=r"unknown file type '\.dat'.*give FITS .* or HDF5"):
        inputs.find_inputs([path])


def test_without_sniffing_a_folder_file_is_not_opened(tmp_path):
    _fits_image(tmp_path / "image.dat")
    assert inputs.kind_of(tmp_path / "image.dat") is None       # a folder's files: by name only
    assert inputs.kind_of(tmp_path / "image.dat", sniff=True) == "fits"
    with pytest.raises(InputError, match=r"unknown file type '\.dat' \(its name fits no format\); give FITS"):
        registry.identify(tmp_path / "image.dat", "ingest", sniff=False)
    with pytest.raises(InputError, match="no image files in this folder.*looked for .fits"):
        inputs.find_inputs([tmp_path])


def test_a_catalogue_falls_back_to_csv(tmp_path):
    path = tmp_path / "objects.list"
    path.write_text("id,ra,dec\na,1.0,2.0\n")
    assert registry.identify(path, "catalog", fallback="csv").name == "csv"
    assert list(catalog.read_catalog(path).ids) == ["a"]


def test_a_gzipped_csv_catalogue(tmp_path):
    import gzip

    path = tmp_path / "objects.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("id,ra,dec\na,1.0,2.0\nb,3.0,4.0\n")
    assert list(catalog.read_catalog(path).ids) == ["a", "b"]


def test_a_format_registered_in_a_test_is_then_accepted(tmp_path):
    """The extensibility point: declare a format, give it a reader and an identifier."""
    fmt = registry.register_format(registry.Format("npz-test", "NumPy archive", ("array",), (".npztest",),
                                                   magic=(b"PK\x03\x04",)))
    path = tmp_path / "emb.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 30)
    with pytest.raises(InputError, match="unknown embeddings format"):
        registry.identify(path, "embeddings")               # declared, but nothing reads it yet
    registry.register_reader(fmt.name, "embeddings", lambda p, src, staging: ("read", p))
    try:
        assert registry.identify(tmp_path / "e.npztest", "embeddings") is fmt          # suffix
        assert registry.identify(path, "embeddings") is fmt                            # magic
        assert "NumPy archive (.npztest)" in registry.describe("embeddings")
        assert registry.get_reader(fmt.name, "embeddings")(path, None, None) == ("read", path)
        registry.register_identifier(fmt.name, lambda p, head: head.startswith(b"ZZ"))
        other = tmp_path / "emb.other"
        other.write_bytes(b"ZZ")
        assert registry.identify(other, "embeddings") is fmt
        with pytest.raises(InputError):
            registry.identify(tmp_path / "e.npztest", "ingest")   # only where a reader is registered
    finally:
        registry.unregister_reader(fmt.name, "embeddings")
    assert "npztest" not in registry.describe("embeddings")
    registry.unregister_format(fmt.name)
    with pytest.raises(KeyError):
        registry.get_format(fmt.name)


def test_registering_a_clashing_format_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        registry.register_format(registry.Format("fits", "Other", ("images",), (".other",)))
    with pytest.raises(ValueError, match="lower case"):
        registry.register_format(registry.Format("upper-test", "Upper", ("images",), (".UP",)))
    with pytest.raises(KeyError, match="no input format"):
        registry.register_reader("no-such-format", "ingest", print)


def test_the_embeddings_command_reads_an_npy_file_named_otherwise(tmp_path):
    """embed --embeddings identifies through the registry: an .npy file under another name is read."""
    from galexplorer.explore.external import ExternalEmbeddings, embed_from_file
    from galexplorer.explore.pipeline import EmbedConfig
    from galexplorer.store import EmbeddingStore

    rng = np.random.default_rng(0)
    path = tmp_path / "features.bin"
    np.save(open(path, "wb"), rng.normal(size=(40, 6)).astype(np.float32))
    ids = [f"o{i}" for i in range(40)]
    cat = tmp_path / "cat.csv"
    cat.write_text("id,ra,dec\n" + "".join(f"{o},{10 + i * 0.01},{-5 + i * 0.01}\n" for i, o in enumerate(ids)))
    embed_from_file(None, ExternalEmbeddings(path, catalog=cat), tmp_path / "store.h5", EmbedConfig())
    with EmbeddingStore(tmp_path / "store.h5") as s:
        assert s.load_embeddings().shape == (40, 6) and list(s.ids) == ids
        assert s.dataset_attrs("embeddings")["source_format"] == "npy"


def test_ingest_reads_a_format_registered_in_a_test(tmp_path):
    """A new single-file format for ingest: its Format and a reader giving FileStamps, nothing else."""
    from galexplorer.data.ingest import IngestConfig, ingest
    from galexplorer.data.stamps import FileStamps
    from galexplorer.store.cutouts import CutoutStore

    fmt = registry.register_format(registry.Format("raw-test", "raw float32", ("images",), (".rawtest",),
                                                   magic=(b"RAWT",)))

    def read_raw(path, hdu=None, dataset=None, position=True):
        pixels = np.frombuffer(Path(path).read_bytes()[4:], np.float32).reshape(1, 1, 16, 16)
        return FileStamps(Path(path), pixels.copy(), ["r"], named=True, ra=10.0, dec=-5.0)

    rng = np.random.default_rng(1)
    for name in ("a.rawtest", "b.data"):           # b: recognised by its first bytes
        (tmp_path / name).write_bytes(b"RAWT" + rng.normal(size=(16, 16)).astype(np.float32).tobytes())
    registry.register_reader(fmt.name, "ingest", read_raw)
    try:
        ingest([tmp_path / "a.rawtest", tmp_path / "b.data"], tmp_path / "cut.h5", IngestConfig(size=16))
    finally:
        registry.unregister_format(fmt.name)
    with CutoutStore(tmp_path / "cut.h5") as cut:
        assert list(cut.ids) == ["a", "b"]
        assert cut.bands == ["r"]
        np.testing.assert_allclose(cut.objects.ra, [10.0, 10.0])
