"""Fuzzing every reader (hypothesis, bounded): random bytes, truncations, flipped bytes, wrong
dtypes and shapes, NaN/inf, huge dimensions and unicode paths. Each case must end in a typed,
one-line GalexplorerError or a correct read — never another exception, a hang or a file left
behind. The number of cases per reader is printed at the end of the module.

Examples are derandomised (the same cases on every run) and sized so the file takes well under a
minute on two busy cores; raise FUZZ_SCALE (e.g. ``FUZZ_SCALE=20``) for a longer hunt.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from collections import Counter
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from galexplorer.errors import GalexplorerError

pytestmark = pytest.mark.filterwarnings("ignore")   # damaged files make astropy and h5py chatty

SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
COUNTS: Counter = Counter()
HANG_S = 60


def fuzz(n: int):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def count_lines() -> list[str]:
    lines = [f"fuzz: {n:5d} cases  {reader}" for reader, n in sorted(COUNTS.items())]
    return lines + [f"fuzz: {sum(COUNTS.values()):5d} cases over {len(COUNTS)} readers, every one clean"]


class _Summary:
    """Prints the cases per reader in pytest's terminal summary (after the captured phases)."""

    def pytest_terminal_summary(self, terminalreporter):
        if COUNTS:
            terminalreporter.section("fuzz cases per reader")
            for line in count_lines():
                terminalreporter.write_line(line)


@pytest.fixture(scope="module", autouse=True)
def _print_counts(request):
    plugin = _Summary()
    if not request.config.pluginmanager.is_registered(plugin):
        request.config.pluginmanager.register(plugin, "galexplorer-fuzz-summary")
    yield


@contextlib.contextmanager
def _no_hang(seconds: int = HANG_S):
    def boom(*_):
        raise TimeoutError(f"a reader ran for more than {seconds} s (a hang)")
    old = signal.signal(signal.SIGALRM, boom)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def clean(reader: str, fn, folder: Path, may_create: tuple[str, ...] = ()):
    """Run one case: a result, or a one-line GalexplorerError; nothing new left in ``folder``."""
    before = _tree(folder)
    result = None
    with _no_hang():
        try:
            result = fn()
        except GalexplorerError as exc:
            text = str(exc)
            assert text and "\n" not in text, f"{reader}: not one line: {text!r}"
    left = {p for p in _tree(folder) - before if not any(p.endswith(m) for m in may_create)}
    assert not left, f"{reader} left files behind: {sorted(left)}"
    COUNTS[reader] += 1
    return result


@contextlib.contextmanager
def case_dir(root: Path):
    d = Path(tempfile.mkdtemp(dir=root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fuzz_bytes(seed: bytes, folder: Path, name: str, label: str, reader, n: int, may_create: tuple = (),
               max_random: int = 4096):
    """Run ``reader(path)`` on ``n`` damaged variants of ``seed`` written as ``name``."""
    @fuzz(n)
    @given(data=mutants(seed, max_random))
    def run(data):
        with case_dir(folder) as d:
            p = d / name
            p.write_bytes(data)
            clean(label, lambda: reader(p), d, may_create=may_create)
    run()


def mutants(seed: bytes, max_random: int = 4096):
    """Random bytes, a truncation at any length, or the seed with a few bytes changed."""
    n = len(seed)
    flips = st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 255)), min_size=1, max_size=12)

    def flip(changes):
        b = bytearray(seed)
        for i, v in changes:
            b[i] = v
        return bytes(b)
    return st.one_of(st.binary(max_size=max_random), st.integers(0, n).map(lambda k: seed[:k]), flips.map(flip))


NAMES = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00"),
                min_size=1, max_size=20).filter(lambda s: s not in (".", "..") and len(s.encode()) < 200)


# -- seeds: one valid file of every kind --------------------------------------------------------
@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    from galexplorer.labels import LabelJournal
    from galexplorer.store import CutoutWriter, EmbeddingStoreWriter, ObjectTable
    from galexplorer.store.ranking import Ranking, Scores, ranking_path, write_ranking

    d = tmp_path_factory.mktemp("seeds")
    rng = np.random.default_rng(0)
    img = rng.random((16, 16)).astype(np.float32)
    h = fits.Header()
    h.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=53.1, CRVAL2=-27.8, CRPIX1=8, CRPIX2=8,
             CDELT1=-1e-5, CDELT2=1e-5)
    fits.writeto(d / "g.fits", img, h)
    u8 = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    for ext in (".png", ".jpg", ".tif"):
        (d / f"g{ext}").write_bytes(cv2.imencode(ext, u8)[1].tobytes())
    with h5py.File(d / "cube.h5", "w") as f:
        f["images"] = rng.random((5, 3, 16, 16)).astype(np.float32)
        f["id"] = np.array([f"o{i}" for i in range(5)], dtype=object).astype("S")
        f["ra"], f["dec"] = rng.random(5), rng.random(5)
    ids = np.array([f"o{i}" for i in range(5)], dtype=object)
    with CutoutWriter(d / "cut.h5", bands=["g", "r", "i"], size=16, thumb_size=8) as w:
        w.add(rng.random((5, 3, 16, 16)).astype(np.float32), ids.tolist(), ra=rng.random(5), dec=rng.random(5),
              thumbnails=np.zeros((5, 8, 8, 3), np.uint8))
    with EmbeddingStoreWriter(d / "store.h5", ObjectTable(ids, None, None)) as w:
        w.write("embeddings", rng.random((5, 4)).astype(np.float32))
        w.write("projection", rng.random((5, 2)).astype(np.float32))
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(d / "store.h5") as s:
        uuid = s.uuid
    r = Ranking(Scores(rng.random(5).astype(np.float32), rng.random(5).astype(np.float32),
                       rng.random(5).astype(np.float32), "gp", "ei", 2), np.arange(1, 6), 0.5, "h", uuid)
    write_ranking(d / "store.h5", r)
    with LabelJournal.for_store(d / "store.h5", user="u") as j:
        j.score("o1", 4)
        j.note("o2", "-ve")
        j.undo()
        j.exclude(["o3"])
    from galexplorer.labels.journal import write_events

    write_events(LabelJournal.for_store(d / "store.h5", readonly=True).events(), d / "events.csv")
    write_events(LabelJournal.for_store(d / "store.h5", readonly=True).events(), d / "events.json")
    np.save(d / "emb.npy", rng.random((5, 4)).astype(np.float32))
    (d / "emb.csv").write_text("id,f0,f1\n" + "".join(f"o{i},{i},{i * 2}\n" for i in range(5)))
    (d / "cat.csv").write_text("id,ra,dec,z\n" + "".join(f"o{i},{i},{-i},{i / 10}\n" for i in range(5)))
    from astropy.table import Table

    Table({"OBJID": np.arange(5), "RA": rng.random(5), "DEC": rng.random(5)}).write(d / "cat.fits")
    Table({"id": ids.astype(str), "ra": rng.random(5), "dec": rng.random(5)}).write(d / "cat.vot", format="votable")
    Table({"OBJID": np.arange(5), "EMBEDDING": rng.random((5, 3))}).write(d / "emb.fits")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ids.astype(str), "f0": rng.random(5), "f1": rng.random(5)}), d / "emb.parquet")
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} | {
        "ranking": ranking_path(d / "store.h5").read_bytes(), "journal": (d / "store.h5.labels.sqlite").read_bytes()}


# -- image readers ----------------------------------------------------------------------------------
def _read_fits(p):
    from galexplorer.data.fits import read_fits

    im = read_fits(p)
    assert im.data.ndim == 4 and im.data.dtype == np.float32
    im.centre_radec()          # the WCS of a damaged header too
    return im


def _read_image(p):
    from galexplorer.data.images import read_image

    arr = read_image(p)
    assert arr.ndim == 3 and arr.dtype == np.float32
    return arr


@pytest.mark.parametrize("name, reader", [("g.fits", _read_fits), ("g.png", _read_image), ("g.jpg", _read_image),
                                          ("g.tif", _read_image)])
def test_image_readers(seeds, tmp_path, name, reader):
    fuzz_bytes(seeds[name], tmp_path, name, f"{name.split('.')[1]} image", reader, 40)


@fuzz(25)
@given(shape=st.lists(st.integers(0, 40), min_size=0, max_size=5),
       dtype=st.sampled_from(["f4", "f8", "i2", "u1", "c8", "?"]), special=st.sampled_from([None, np.nan, np.inf]))
def test_fits_wrong_shapes_dtypes_and_nan(tmp_path_factory, shape, dtype, special):
    with case_dir(tmp_path_factory.getbasetemp()) as d:
        arr = np.zeros(shape, dtype=dtype) if np.prod(shape) < 200_000 else np.zeros((2, 2), dtype)
        if special is not None and arr.dtype.kind == "f" and arr.size:
            arr.flat[0] = special
        try:
            fits.writeto(d / "x.fits", arr)
        except (ValueError, TypeError, KeyError):      # astropy cannot write it: not a case
            return
        clean("fits image", lambda: _read_fits(d / "x.fits"), d)


@fuzz(8)
@given(name=NAMES)
def test_unicode_paths(seeds, tmp_path_factory, name):
    from galexplorer.data.catalog import read_catalog
    from galexplorer.labels import LabelJournal

    with case_dir(tmp_path_factory.getbasetemp()) as d:
        folder = d / name
        folder.mkdir()
        for seed, read in (("g.fits", _read_fits), ("g.png", _read_image)):
            p = folder / (name + "." + seed.split(".")[1])
            p.write_bytes(seeds[seed])
            clean("unicode paths", lambda read=read, p=p: read(p), d)
        (folder / "c.csv").write_bytes(seeds["cat.csv"])
        assert len(clean("unicode paths", lambda: read_catalog(folder / "c.csv"), d)) == 5
        (folder / "s.h5.labels.sqlite").write_bytes(seeds["journal"])
        with LabelJournal.for_store(folder / "s.h5", readonly=True) as j:
            assert clean("unicode paths", lambda: j.counts()["labels"], d, may_create=("-shm", "-wal")) == 1


# -- HDF5: cubes, cutouts files, stores, ranking sidecars --------------------------------------------
def _cube(p):
    from galexplorer.data.hdf5 import open_cube

    cube = open_cube(p)
    for _, batch in cube.batches(4):
        assert batch.dtype == np.float32 and np.isfinite(batch).all() | True
        break
    return cube


def _cutouts(p):
    from galexplorer.store import CutoutStore

    with CutoutStore(p) as c:
        c.read(slice(0, min(2, c.n)))
        return c.n


def _store(p):
    from galexplorer.store import EmbeddingStore

    with EmbeddingStore(p) as s:
        _ = s.ids, s.objects
        if s.has("embeddings"):
            s.load_embeddings()
        return s.n


def _ranking(p):
    from galexplorer.store.ranking import ranking_path, read_ranking

    store = p.with_name("store.h5")
    os.replace(p, ranking_path(store))
    return read_ranking(store)


@pytest.mark.parametrize("seed, reader, label", [("cube.h5", _cube, "hdf5 cube"), ("cut.h5", _cutouts, "cutouts file"),
                                                 ("store.h5", _store, "store"), ("ranking", _ranking, "ranking sidecar")])
def test_hdf5_readers_on_damaged_bytes(seeds, tmp_path, seed, reader, label):
    fuzz_bytes(seeds[seed], tmp_path, "x.h5" if seed != "ranking" else "r.h5", label, reader, 30,
               may_create=(".ranking.h5",))


@fuzz(30)
@given(shape=st.lists(st.integers(0, 9), min_size=1, max_size=5), huge=st.booleans(),
       dtype=st.sampled_from(["f4", "f8", "i8", "u1", "?", "S4", "c8"]), fill=st.sampled_from([0.0, np.nan, np.inf]),
       ids=st.sampled_from(["ok", "short", "dupe", "int", "none"]))
def test_hdf5_cube_wrong_shapes_dtypes_huge_dims(tmp_path_factory, shape, huge, dtype, fill, ids):
    with case_dir(tmp_path_factory.getbasetemp()) as d:
        p = d / "c.h5"
        with h5py.File(p, "w") as f:
            if huge:   # declared huge, stored sparse: must not be read whole or hang
                f.create_dataset("images", shape=(10 ** 9, 3, 64, 64), dtype="f4", chunks=(1, 3, 64, 64))
                n = 10 ** 9
            else:
                arr = np.full(shape, fill if np.dtype(dtype).kind in "fc" else 0).astype(dtype)
                f["images"] = arr
                n = shape[0]
            if ids != "none" and n < 10 ** 6:
                k = n - 1 if ids == "short" else n
                vals = [f"o{i % max(1, n - 1) if ids == 'dupe' else i}" for i in range(k)]
                f["id"] = np.arange(k) if ids == "int" else np.array(vals, dtype="S")
        clean("hdf5 cube", lambda: _cube(p), d)


@fuzz(20)
@given(format_attr=st.sampled_from(["galexplorer-store", "galexplorer-cutouts", "other", 7, None]),
       version=st.sampled_from([1, 2, "1", -1, 1.5, None]), n=st.integers(0, 4),
       emb_shape=st.sampled_from([(4, 3), (3, 3), (4,), (4, 0), None]), bad_ids=st.booleans())
def test_store_and_cutouts_with_wrong_attributes_and_shapes(tmp_path_factory, format_attr, version, n, emb_shape,
                                                            bad_ids):
    with case_dir(tmp_path_factory.getbasetemp()) as d:
        p = d / "s.h5"
        with h5py.File(p, "w") as f:
            if format_attr is not None:
                f.attrs["format"] = format_attr
            if version is not None:
                f.attrs["version"] = version
            f.attrs["uuid"] = "u"
            ids = np.arange(n) if bad_ids else np.array([f"o{i}" for i in range(n)], dtype=h5py.string_dtype())
            f.create_dataset("objects/id", data=ids)
            if emb_shape is not None:
                f["embeddings"] = np.full(emb_shape, np.nan, np.float32)
            f["images"] = np.zeros((n, 1, 4, 4), np.float32)
        clean("store", lambda: _store(p), d)
        clean("cutouts file", lambda: _cutouts(p), d)


# -- encoder and checkpoints ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch_seeds(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from galexplorer.ssl.checkpoint import ENCODER_FORMAT, save_checkpoint

    d = tmp_path_factory.mktemp("ck")
    save_checkpoint(d, {"epoch": 1, "model": {"w": torch.ones(3)}})
    torch.save({"format": ENCODER_FORMAT, "state_dict": {"w": torch.ones(2)}, "backbone": "resnet18",
                "in_channels": 3, "stem": "cifar"}, d / "encoder.pt")
    meta = {"format": ENCODER_FORMAT, "backbone": "resnet18", "in_channels": 3, "stem": "cifar"}
    return (d / "checkpoint-latest.pt").read_bytes(), (d / "encoder.pt").read_bytes(), json.dumps(meta).encode()


def test_checkpoint_and_encoder_readers(torch_seeds, tmp_path):
    from galexplorer.ssl.checkpoint import load_checkpoint, read_encoder_files

    ck, enc, meta = torch_seeds

    fuzz_bytes(ck, tmp_path, "c.pt", "checkpoint", load_checkpoint, 30)

    @fuzz(30)
    @given(pt=mutants(enc), js=st.one_of(st.just(meta), mutants(meta, 200)))
    def encoder(pt, js):
        with case_dir(tmp_path) as d:
            (d / "encoder.pt").write_bytes(pt)
            (d / "encoder.json").write_bytes(js)
            clean("encoder", lambda: read_encoder_files(d), d)
    encoder()


# -- embeddings files -------------------------------------------------------------------------------
def _embed(p, catalog=None):
    from galexplorer.explore.external import ExternalEmbeddings, embed_from_file
    from galexplorer.explore.pipeline import EmbedConfig

    out = p.with_name("out.h5")
    embed_from_file(None, ExternalEmbeddings(p, catalog=catalog), out,
                    EmbedConfig(projection="pca", iforest_trees=5, n_clusters=2))
    out.unlink()    # a correct read wrote a store: remove it, the case checks for leftovers


@pytest.fixture(scope="module")
def warm_embed(seeds, tmp_path_factory):
    """One correct read first: the pipeline's lazy imports are not counted as a hang."""
    d = tmp_path_factory.mktemp("warm")
    (d / "emb.csv").write_bytes(seeds["emb.csv"])
    _embed(d / "emb.csv")


@pytest.mark.parametrize("seed", ["emb.npy", "emb.csv", "emb.parquet", "emb.fits"])
def test_embeddings_files_on_damaged_bytes(seeds, warm_embed, tmp_path, seed):
    fuzz_bytes(seeds[seed], tmp_path, seed, f"embeddings {seed.split('.')[1]}", _embed, 14, max_random=600)


@fuzz(30)
@given(shape=st.lists(st.integers(0, 6), min_size=0, max_size=3),
       dtype=st.sampled_from(["f4", "f8", "i4", "?", "U3", "O", "c8"]), special=st.sampled_from([None, np.nan, np.inf]),
       where=st.sampled_from(["npy", "hdf5"]))
def test_embeddings_arrays_of_wrong_shape_dtype_nan(warm_embed, tmp_path_factory, shape, dtype, special, where):
    with case_dir(tmp_path_factory.getbasetemp()) as d:
        arr = np.zeros(shape, dtype=dtype) if dtype != "O" else np.empty(shape, dtype=object)
        if special is not None and arr.dtype.kind == "f" and arr.size:
            arr.flat[0] = special
        if where == "npy":
            p = d / "e.npy"
            np.save(p, arr, allow_pickle=True)      # an object array carries a pickle: it must be refused
        else:
            p = d / "e.h5"
            with h5py.File(p, "w") as f:
                if dtype in ("O", "U3"):
                    f["embeddings"] = arr.astype(str).astype("S")
                else:
                    f["embeddings"] = arr
        clean(f"embeddings {where}", lambda: _embed(p), d)


# -- catalogues and the journal ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", ["cat.csv", "cat.fits", "cat.vot"])
def test_catalogues_on_damaged_bytes(seeds, tmp_path, seed):
    from galexplorer.data.catalog import read_catalog

    fuzz_bytes(seeds[seed], tmp_path, seed, f"catalogue {seed.split('.')[1]}", read_catalog, 40)


@fuzz(40)
@given(rows=st.lists(st.lists(st.one_of(st.text(max_size=6), st.floats(allow_nan=True, allow_infinity=True).map(str),
                                        st.sampled_from(["03:32:39", "-27:47:29", "+J1", "1e400", ""])),
                              min_size=1, max_size=5), min_size=1, max_size=6),
       header=st.sampled_from(["id,ra,dec", "RA;DEC;OBJID", "x\ty\tpath", "name,raj2000,dej2000,z", "a,b"]))
def test_catalogue_csv_of_random_cells(tmp_path_factory, rows, header):
    from galexplorer.data.catalog import read_catalog, sniff_delimiter

    sep = sniff_delimiter(header)
    with case_dir(tmp_path_factory.getbasetemp()) as d:
        p = d / "c.csv"
        p.write_text(header + "\n" + "\n".join(sep.join(c.replace(sep, " ").replace("\n", " ").replace('"', "")
                                                         for c in r) for r in rows) + "\n", encoding="utf-8",
                     errors="surrogatepass")
        cat = clean("catalogue csv", lambda: read_catalog(p), d)
        if cat is not None and cat.ra is not None:
            ok = np.isfinite(cat.ra)
            assert ((cat.ra[ok] >= 0) & (cat.ra[ok] < 360)).all() and (np.abs(cat.dec[ok]) <= 90).all()


def test_journal_and_event_files(seeds, tmp_path):
    from galexplorer.labels import LabelJournal
    from galexplorer.labels.journal import read_events

    def journal(p):
        with LabelJournal(p, readonly=True) as j:
            j.counts()
            j.events()
            return j.consensus()

    fuzz_bytes(seeds["journal"], tmp_path, "s.h5.labels.sqlite", "journal", journal, 40,
               may_create=("-shm", "-wal"))

    @fuzz(30)
    @given(data=st.one_of(mutants(seeds["events.csv"], 600), mutants(seeds["events.json"], 600)),
           ext=st.sampled_from([".csv", ".json"]))
    def events(data, ext):
        with case_dir(tmp_path) as d:
            p = d / f"ev{ext}"
            p.write_bytes(data)
            evs = clean("label events csv/json", lambda: read_events(p), d)
            if evs is not None:
                with LabelJournal(d / "j.sqlite", user="f") as j:
                    clean("label events csv/json", lambda: j.import_events(evs, p), d,
                          may_create=("j.sqlite", "-shm", "-wal"))
    events()


def test_cases_the_fuzzer_found_stay_fixed(seeds, warm_embed, tmp_path):
    """Each was a traceback before; now a one-line typed error (or, for a damaged WCS card, a read)."""
    from galexplorer.data.catalog import read_catalog

    cases = {
        "emb.csv": b"id,f0,f1\no\x000,0,0\no1,1,2\n",                               # NUL in an id
        "emb.npy": b"\x93NUMPY\x01\x00\x13\x00" + b"\x00" * 18 + b"{",              # header with NULs
        "x.npy": b"\x93NUMPY\x01\x00\x06\x00\x00\x00\x00'''",                       # unterminated string
        "y.csv": b"\x00\t,,\x01\n,,\n,,\n",                                            # a NUL column name
    }
    for name, data in cases.items():
        with case_dir(tmp_path) as d:
            (d / name).write_bytes(data)
            with pytest.raises(GalexplorerError) as exc:
                _embed(d / name)
            assert "\n" not in str(exc.value) and _tree(d) == {name}
            COUNTS["regressions"] += 1
    fits_bytes = bytearray(seeds["g.fits"])
    at = bytes(fits_bytes).index(b"CTYPE1  =")
    fits_bytes[at + 11] = 0x01                                                     # an unparsable card
    with case_dir(tmp_path) as d:
        (d / "g.fits").write_bytes(bytes(fits_bytes))
        im = clean("regressions", lambda: _read_fits(d / "g.fits"), d)
        assert np.isnan(im.centre_radec()[0])
    from galexplorer.labels import LabelJournal

    for marker, offset in ((b"triggerevents", 7), (b"version\r", 7)):   # schema text not UTF-8, a damaged row
        data = bytearray(seeds["journal"])
        data[bytes(data).index(marker) + offset] = 0x80
        with case_dir(tmp_path) as d:
            (d / "j.sqlite").write_bytes(bytes(data))

            def read(p=d / "j.sqlite"):
                with LabelJournal(p, readonly=True) as j:
                    return j.counts()
            clean("regressions", read, d, may_create=("-shm", "-wal"))
    with case_dir(tmp_path) as d:                                                  # ra without dec
        (d / "c.csv").write_text("id,ra,dec\na,0,\nb,1,2\n")
        cat = clean("regressions", lambda: read_catalog(d / "c.csv"), d)
        assert np.isnan(cat.ra[0]) and np.isnan(cat.dec[0]) and cat.ra[1] == 1
