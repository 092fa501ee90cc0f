"""``galexplorer ingest`` on real pixels (Hubble XDF): every input kind, catalogues, mosaics, bad input.

Fixtures are written here from ``skimage.data.hubble_deep_field()`` (through tests/xdf.py): FITS
cubes with a WCS, per-band FITS files, PNGs, HDF5 cubes and a FITS mosaic.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from xdf import PIXEL_SCALE, XDF_CENTRE, xdf_image, xdf_sources, xdf_stamps

from galexplorer.cli import main
from galexplorer.data.ingest import IngestConfig, ingest
from galexplorer.errors import GalexplorerError, InputError, StoreError
from galexplorer.store import CutoutStore

S = 32   # stamp side of the fixtures


# -- fixture writers ---------------------------------------------------------------------------

def inner_sources(n: int, margin: int = 40) -> np.ndarray:
    """(n, 2) (y, x) of bright XDF sources at least ``margin`` pixels from the image edge."""
    h, w = xdf_image().shape[:2]
    yx = xdf_sources()
    keep = (yx[:, 0] >= margin) & (yx[:, 0] < h - margin) & (yx[:, 1] >= margin) & (yx[:, 1] < w - margin)
    return yx[keep][:n]


def stamp_wcs(ra: float, dec: float, rotate_deg: float = 20.0) -> WCS:
    """A TAN WCS with a rotated CD matrix whose reference pixel is the stamp's corner (not its centre)."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [1.0, 1.0]
    t = np.radians(rotate_deg)
    w.wcs.cd = PIXEL_SCALE * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    return w


def write_cubes(folder: Path, n: int, size: int = S, filters: list[str] | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """n (3, size, size) FITS cubes with a WCS; returns stamps, ids and the centre ra/dec (n, 2)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamps, ids = xdf_stamps(n, size)
    centres = []
    for k, (stamp, oid) in enumerate(zip(stamps, ids)):
        w = stamp_wcs(XDF_CENTRE[0] + 0.001 * k, XDF_CENTRE[1] - 0.0007 * k)
        hdr = w.to_header()
        if filters:
            for i, f in enumerate(filters):
                hdr[f"FILTER{i + 1}"] = f
        fits.PrimaryHDU(stamp, header=hdr).writeto(folder / f"{oid}.fits")
        # the expected centre, computed independently with astropy's full WCS
        centres.append(w.pixel_to_world_values((size - 1) / 2, (size - 1) / 2))
    return stamps, ids, np.array(centres, dtype=np.float64)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(header)
        wr.writerows(rows)
    return path


def mosaic_wcs() -> WCS:
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(XDF_CENTRE)
    w.wcs.crpix = [501.0, 437.0]
    w.wcs.cdelt = [-PIXEL_SCALE, PIXEL_SCALE]
    return w


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory) -> tuple[Path, np.ndarray, WCS]:
    """The whole XDF as one (3, 872, 1000) FITS cube with a TAN WCS."""
    path = tmp_path_factory.mktemp("mosaic") / "xdf.fits"
    data = np.ascontiguousarray(np.moveaxis(xdf_image(), -1, 0))
    hdr = mosaic_wcs().to_header()
    hdr["FILTER1"], hdr["FILTER2"], hdr["FILTER3"] = "F435W", "F606W", "F850LP"
    fits.PrimaryHDU(data, header=hdr).writeto(path)
    return path, data, mosaic_wcs()


def run_cli(args: list, capsys, quiet: bool = True) -> tuple[int, str, str]:
    """Run ``galexplorer ingest ARGS``; quiet (-q) drops the progress bar and the summary."""
    code = main(["ingest", *map(str, args)] + (["-q"] if quiet else []))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clean_failure(code: int, err: str, out_dir: Path, match: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("galexplorer ingest: error:") and match in lines[0], lines[0]
    leftovers = [p.name for p in out_dir.iterdir() if p.suffix == ".h5" or ".tmp-" in p.name]
    assert leftovers == [], leftovers


# -- FITS cubes + catalogue ------------------------------------------------------------------

def test_fits_cubes_with_catalogue_and_wcs(tmp_path, capsys):
    stamps, ids, centres = write_cubes(tmp_path / "fits", 8)
    (tmp_path / "fits" / "notes.txt").write_text("ignored")
    (tmp_path / "fits" / ".hidden.fits").write_text("hidden files are skipped")
    # rows 0-3 give ra/dec; rows 4-7 leave them empty, so ra/dec must come from the WCS;
    # XDF0007 has no row (skipped, reported) and ZZZ has no file (reported)
    rows = [[oid, f"{53.0 + k:.6f}" if k < 4 else "", f"{-27.0 - k:.6f}" if k < 4 else "", 0.5 * k, f"kind{k}", k]
            for k, oid in enumerate(ids[:7])] + [["ZZZ", "1", "2", 0.0, "none", 9]]
    cat = write_csv(tmp_path / "cat.csv", ["ObjID", "RA", "Dec", "z", "Kind", "count"], rows)
    code, out, err = run_cli([tmp_path / "fits", "--catalog", cat, "-o", tmp_path / "cut.h5", "--size", S], capsys,
                             quiet=False)
    assert code == 0, err
    assert "Wrote 7 object(s)" in out and "1 file(s) without a catalogue row (XDF0007)" in out
    assert "1 catalogue row(s) without an image (ZZZ)" in out and "Ignored 1 file" in out
    with CutoutStore(tmp_path / "cut.h5") as cut:
        assert list(cut.ids) == ids[:7]
        assert cut.bands == ["b0", "b1", "b2"] and cut.size == S
        np.testing.assert_array_equal(cut.read(slice(0, 7)), stamps[:7])
        ra, dec = cut.objects.ra, cut.objects.dec
        np.testing.assert_allclose(ra[:4], 53.0 + np.arange(4), atol=1e-9)
        np.testing.assert_allclose(dec[:4], -27.0 - np.arange(4), atol=1e-9)
        np.testing.assert_allclose(ra[4:], centres[4:7, 0], atol=1e-6)
        np.testing.assert_allclose(dec[4:], centres[4:7, 1], atol=1e-6)
        assert cut.column("z").dtype == np.float64 and cut.column("count").dtype == np.int64
        np.testing.assert_array_equal(cut.column("z"), 0.5 * np.arange(7))
        assert list(cut.column("Kind")) == [f"kind{k}" for k in range(7)]
        np.testing.assert_array_equal(cut.column("n_bad_pixels"), np.zeros(7))
        assert cut.thumbnails.shape == (7, 64, 64, 3)
        assert cut.thumbnails[:].std() > 10           # a real picture, not a constant
        meta = cut.json_attr("ingest")
        assert meta["config"]["size"] == S and meta["report"]["n_written"] == 7
        assert meta["report"]["skipped"] == {"no_row": 1, "no_file": 1}


def test_fits_without_catalogue_ids_from_names_and_header_bands(tmp_path):
    stamps, ids, centres = write_cubes(tmp_path / "in", 3, filters=["F435W", "F606W", "F850LP"])
    # a gzipped and a tile-compressed copy are read the same way
    with fits.open(tmp_path / "in" / f"{ids[0]}.fits") as h:
        h.writeto(tmp_path / "in" / "copy_gz.fits.gz")
        fits.CompImageHDU(h[0].data, header=h[0].header, compression_type="GZIP_2", quantize_level=0.0).writeto(
            tmp_path / "in" / "copy_fz.fits.fz")
    report = ingest([tmp_path / "in"], tmp_path / "o.h5", IngestConfig(size=S))
    assert report.n_written == 5 and report.bands == ["F435W", "F606W", "F850LP"]
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert list(cut.ids) == sorted(ids + ["copy_gz", "copy_fz"])
        order = {k: i for i, k in enumerate(cut.ids)}
        np.testing.assert_array_equal(cut.read(order["copy_gz"]), stamps[0])
        np.testing.assert_array_equal(cut.read(order["copy_fz"]), stamps[0])   # lossless
        np.testing.assert_allclose(cut.objects.ra[order[ids[2]]], centres[2, 0], atol=1e-6)
        assert cut.column_names == ["n_bad_pixels"]
        assert list(cut.objects.source)[order[ids[1]]].endswith(f"{ids[1]}.fits")


def test_fits_stack_of_objects(tmp_path):
    stamps, _ = xdf_stamps(4, S)
    fits.PrimaryHDU(stamps).writeto(tmp_path / "stack.fits")        # (N, C, H, W)
    fits.PrimaryHDU(stamps[0, 0][None, None]).writeto(tmp_path / "single.fits")   # (1, 1, H, W) = one band
    report = ingest([tmp_path / "stack.fits"], tmp_path / "o.h5", IngestConfig(size=S))
    assert report.n_written == 4
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert list(cut.ids) == [f"stack_{i}" for i in range(4)]
        np.testing.assert_array_equal(cut.read(slice(0, 4)), stamps)
    ingest([tmp_path / "single.fits"], tmp_path / "s.h5", IngestConfig(size=S))
    with CutoutStore(tmp_path / "s.h5") as cut:
        assert cut.shape == (1, 1, S, S) and list(cut.ids) == ["single"]


def test_band_selection_by_header_names(tmp_path):
    stamps, ids, _ = write_cubes(tmp_path / "in", 2, filters=["g", "r", "i"])
    ingest([tmp_path / "in"], tmp_path / "o.h5", IngestConfig(size=S, bands=["i", "g"]))
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert cut.bands == ["i", "g"]
        np.testing.assert_array_equal(cut.read(slice(0, 2)), stamps[:2][:, [2, 0]])


def test_resampling_down_is_area_average_and_up_is_bilinear(tmp_path):
    stamps, ids, _ = write_cubes(tmp_path / "in", 2)
    ingest([tmp_path / "in"], tmp_path / "small.h5", IngestConfig(size=S // 2, thumb_size=16))
    with CutoutStore(tmp_path / "small.h5") as cut:
        expect = stamps[:2].reshape(2, 3, S // 2, 2, S // 2, 2).mean(axis=(3, 5))
        np.testing.assert_allclose(cut.read(slice(0, 2)), expect, atol=1e-6)
        assert cut.thumbnails.shape == (2, 16, 16, 3)
    ingest([tmp_path / "in"], tmp_path / "big.h5", IngestConfig(size=2 * S))
    with CutoutStore(tmp_path / "big.h5") as cut:
        big = cut.read(0)
        assert big.shape == (3, 2 * S, 2 * S)
        # bilinear: the mean is kept and neighbouring output pixels interpolate the input
        np.testing.assert_allclose(big.mean(axis=(1, 2)), stamps[0].mean(axis=(1, 2)), rtol=0.02)


def test_nan_pixels_replaced_and_counted_all_nan_skipped(tmp_path):
    stamps, ids, _ = write_cubes(tmp_path / "in", 3)
    bad = stamps[1].copy()
    bad[0, :2, :3] = np.nan
    bad[2, 5, 5] = np.inf
    fits.PrimaryHDU(bad).writeto(tmp_path / "in" / f"{ids[1]}.fits", overwrite=True)
    empty = stamps[2].copy()
    empty[1] = np.nan          # one band without any finite pixel: unusable
    fits.PrimaryHDU(empty).writeto(tmp_path / "in" / f"{ids[2]}.fits", overwrite=True)
    report = ingest([tmp_path / "in"], tmp_path / "o.h5", IngestConfig(size=S))
    assert report.n_written == 2 and report.skipped == {"empty": 1} and report.examples["empty"] == [ids[2]]
    assert report.n_bad_pixels == 7 and report.n_objects_bad_pixels == 1
    assert "Replaced 7 NaN/inf pixel(s) in 1 object(s)" in report.summary()
    with CutoutStore(tmp_path / "o.h5") as cut:
        np.testing.assert_array_equal(cut.column("n_bad_pixels"), [0, 7])
        fixed = cut.read(1)
        np.testing.assert_array_equal(fixed[0, :2, :3], np.median(stamps[1][0][np.isfinite(bad[0])]))
        assert fixed[2, 5, 5] == np.median(np.delete(stamps[1][2].ravel(), 5 * S + 5))
        np.testing.assert_array_equal(fixed[1], stamps[1][1])


# -- per-band files ----------------------------------------------------------------------------

def write_band_files(folder: Path, n: int, bands=("g", "r", "i")) -> tuple[np.ndarray, list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    stamps, ids = xdf_stamps(n, S)
    for stamp, oid in zip(stamps, ids):
        for c, b in enumerate(bands):
            hdr = stamp_wcs(XDF_CENTRE[0], XDF_CENTRE[1]).to_header()
            hdr["FILTER"] = b
            fits.PrimaryHDU(stamp[c], header=hdr).writeto(folder / f"{oid}_{b}.fits")
    return stamps, ids


def test_per_band_files(tmp_path):
    stamps, ids = write_band_files(tmp_path / "bands", 4)
    report = ingest([tmp_path / "bands"], tmp_path / "o.h5",
                    IngestConfig(size=S, bands=["g", "r", "i"], band_pattern="{id}_{band}.fits"))
    assert report.n_written == 4 and report.n_files == 12
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert list(cut.ids) == ids and cut.bands == ["g", "r", "i"]
        np.testing.assert_array_equal(cut.read(slice(0, 4)), stamps)
        centre = stamp_wcs(*XDF_CENTRE).pixel_to_world_values((S - 1) / 2, (S - 1) / 2)
        np.testing.assert_allclose(cut.objects.ra, centre[0], atol=1e-6)
        # the first band's WCS gives the stamp's sky geometry: a corner pixel lands where it should
        got = stored_wcs(cut, 0).pixel_to_world_values(0.0, S - 1.0)
        np.testing.assert_allclose(got, stamp_wcs(*XDF_CENTRE).pixel_to_world_values(0.0, S - 1.0), atol=1e-9)


# -- PNG / JPEG / TIFF -------------------------------------------------------------------------

def test_png_colour_grey_and_16bit(tmp_path):
    img8 = np.round(xdf_image() * 255).astype(np.uint8)        # (H, W, 3) blue, green, red
    (tmp_path / "rgb").mkdir()
    for k, (y, x) in enumerate(inner_sources(3)):
        cut = img8[y - 20:y + 20, x - 20:x + 20]
        cv2.imwrite(str(tmp_path / "rgb" / f"gal{k}.png"), cut)    # OpenCV writes BGR arrays
    report = ingest([tmp_path / "rgb"], tmp_path / "rgb.h5", IngestConfig(size=40))
    with CutoutStore(tmp_path / "rgb.h5") as cut:
        assert cut.sky_geometry(0) is None          # no WCS: no ra/dec under the cursor
        assert report.bands == ["b", "g", "r"] and cut.bands == ["b", "g", "r"]
        assert list(cut.ids) == ["gal0", "gal1", "gal2"]
        y, x = inner_sources(1)[0]
        want = img8[y - 20:y + 20, x - 20:x + 20].transpose(2, 0, 1) / np.float32(255)
        np.testing.assert_allclose(cut.read(0), want, atol=1e-6)
        assert np.isnan(cut.objects.ra).all()
    grey = (xdf_image().mean(axis=2) * 65535).astype(np.uint16)[:48, :48]
    cv2.imwrite(str(tmp_path / "grey16.png"), grey)
    ingest([tmp_path / "grey16.png"], tmp_path / "grey.h5", IngestConfig(size=48))
    with CutoutStore(tmp_path / "grey.h5") as cut:
        assert cut.bands == ["b0"]
        np.testing.assert_allclose(cut.read(0)[0], grey / 65535.0, atol=1e-6)


# -- HDF5 cubes --------------------------------------------------------------------------------

def test_hdf5_nchw_with_ids_and_nhwc_without(tmp_path):
    stamps, ids = xdf_stamps(6, S)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["images"] = stamps
        f["id"] = np.array([f"obj{i}" for i in range(6)], dtype=h5py.string_dtype())
        f["ra"], f["dec"] = np.arange(6.0), -np.arange(6.0)
    with h5py.File(tmp_path / "b.hdf5", "w") as f:
        f["cube"] = stamps.transpose(0, 2, 3, 1)           # (N, H, W, C)
    report = ingest([tmp_path / "a.h5", tmp_path / "b.hdf5"], tmp_path / "o.h5", IngestConfig(size=S))
    assert report.n_written == 12
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert list(cut.ids) == [f"obj{i}" for i in range(6)] + [f"b_{i}" for i in range(6)]
        np.testing.assert_array_equal(cut.read(slice(0, 6)), stamps)
        np.testing.assert_array_equal(cut.read(slice(6, 12)), stamps)
        np.testing.assert_array_equal(cut.objects.ra[:6], np.arange(6.0))
        assert np.isnan(cut.objects.ra[6:]).all()


def test_hdf5_catalogue_by_row_order_and_reingest_keeps_columns(tmp_path):
    stamps, _ = xdf_stamps(5, S)
    with h5py.File(tmp_path / "cube.h5", "w") as f:
        f["images"] = stamps
    cat = write_csv(tmp_path / "cat.csv", ["name", "mag"], [[f"g{i}", 20 + i] for i in range(5)])
    ingest([tmp_path / "cube.h5"], tmp_path / "one.h5", IngestConfig(size=S, catalog=str(cat)))
    with CutoutStore(tmp_path / "one.h5") as cut:
        assert list(cut.ids) == [f"g{i}" for i in range(5)]
        np.testing.assert_array_equal(cut.column("mag"), 20 + np.arange(5))
    # a cutouts file is itself an HDF5 cube: re-ingesting it at another size keeps ids and columns
    ingest([tmp_path / "one.h5"], tmp_path / "two.h5", IngestConfig(size=S // 2))
    with CutoutStore(tmp_path / "two.h5") as cut:
        assert list(cut.ids) == [f"g{i}" for i in range(5)] and cut.size == S // 2
        np.testing.assert_array_equal(cut.column("mag"), 20 + np.arange(5))


def test_catalogue_path_column_without_inputs(tmp_path):
    stamps, ids, _ = write_cubes(tmp_path / "deep" / "er", 3)
    cat = write_csv(tmp_path / "cat.csv", ["file", "objname", "flag"],
                    [[f"deep/er/{oid}.fits", f"name,{k}\"q", k % 2] for k, oid in enumerate(ids)])
    report = ingest([], tmp_path / "o.h5", IngestConfig(size=S, catalog=str(cat)))
    assert report.n_written == 3
    with CutoutStore(tmp_path / "o.h5") as cut:
        assert list(cut.ids) == ['name,0"q', 'name,1"q', 'name,2"q']
        np.testing.assert_array_equal(cut.read(slice(0, 3)), stamps)
        assert list(cut.column("file")) == [f"deep/er/{oid}.fits" for oid in ids]


# -- mosaics -----------------------------------------------------------------------------------

def test_mosaic_cut_at_ra_dec_matches_cutout2d(tmp_path, mosaic, capsys):
    path, data, w = mosaic
    ys, xs = inner_sources(12).T
    pos = [(float(x) + 0.3, float(y) - 0.2) for y, x in zip(ys, xs)]
    pos += [(5.0, 400.0), (990.0, 300.0), (-50.0, 200.0)]       # 2 near the edge, 1 off the image
    sky = [w.pixel_to_world_values(x, y) for x, y in pos]
    ids = [f"src{k:02d}" for k in range(len(pos))]
    cat = write_csv(tmp_path / "cat.csv", ["id", "ra", "dec", "mag"],
                    [[oid, f"{ra:.10f}", f"{dec:.10f}", 20 + 0.1 * k] for k, (oid, (ra, dec)) in enumerate(zip(ids, sky))])
    code, out, err = run_cli([path, "--catalog", cat, "-o", tmp_path / "m.h5", "--size", S], capsys,
                             quiet=False)
    assert code == 0, err
    assert "2 too close to the mosaic edge (src12, src13)" in out and "1 outside the mosaic (src14)" in out
    with CutoutStore(tmp_path / "m.h5") as cut:
        assert list(cut.ids) == ids[:12] and cut.bands == ["F435W", "F606W", "F850LP"]
        for k in range(12):
            ref = np.stack([Cutout2D(data[c], pos[k], S, mode="strict").data for c in range(3)])
            np.testing.assert_array_equal(cut.read(k), ref)
        np.testing.assert_allclose(cut.objects.ra, [s[0] for s in sky[:12]], atol=1e-9)
        np.testing.assert_allclose(cut.column("mag"), 20 + 0.1 * np.arange(12))
        assert cut.json_attr("ingest")["report"]["mode"] == "mosaic"


def test_mosaic_per_band_files_with_xy_origin_1_and_cut_size(tmp_path, mosaic):
    _, data, w = mosaic
    (tmp_path / "m").mkdir()
    for c, b in enumerate(["u", "v", "w"]):
        fits.PrimaryHDU(data[c], header=w.to_header()).writeto(tmp_path / "m" / f"field_{b}.fits")
    fits.PrimaryHDU(data[0, :100, :100]).writeto(tmp_path / "m" / "small_x.fits")   # does not fit the pattern
    ys, xs = inner_sources(4).T
    cat = write_csv(tmp_path / "cat.csv", ["id", "x", "y"],
                    [[f"o{k}", x + 1, y + 1] for k, (y, x) in enumerate(zip(ys, xs))])    # 1-based pixels
    cfg = IngestConfig(size=S // 2, cut_size=S, catalog=str(cat), bands=["u", "v", "w"],
                       band_pattern="field_{band}.fits", mosaic=True, xy_origin=1)
    report = ingest([tmp_path / "m"], tmp_path / "m.h5", cfg)
    assert report.n_written == 4 and report.n_ignored == 1
    with CutoutStore(tmp_path / "m.h5") as cut:
        assert cut.bands == ["u", "v", "w"] and cut.size == S // 2
        ref = np.stack([Cutout2D(data[c], (xs[2], ys[2]), S).data for c in range(3)])
        np.testing.assert_allclose(cut.read(2), ref.reshape(3, S // 2, 2, S // 2, 2).mean(axis=(2, 4)), atol=1e-6)
        ra, dec = w.pixel_to_world_values(xs, ys)
        np.testing.assert_allclose(cut.objects.ra, ra, atol=1e-6)   # from the WCS at x/y
        np.testing.assert_allclose(cut.objects.dec, dec, atol=1e-6)


def stored_wcs(cut: CutoutStore, k: int) -> WCS:
    """Object k's stored local WCS (wcs_cd, wcs_crpix at its ra/dec) as an astropy TAN WCS."""
    cd, crpix = cut.sky_geometry(k)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [cut.objects.ra[k], cut.objects.dec[k]]
    w.wcs.crpix = crpix + 1.0
    w.wcs.cd = cd
    return w


def test_sky_geometry_of_fits_files_and_mosaic_stamps(tmp_path, mosaic):
    # per-object FITS with a rotated CD matrix, resampled 32 -> 16 px: every stored pixel's sky
    # position from the stored geometry is the input WCS's at the pixel it came from
    write_cubes(tmp_path / "fits", 3)
    ingest([tmp_path / "fits"], tmp_path / "f.h5", IngestConfig(size=S // 2))
    pix = np.array([[0.0, 0.0], [15.0, 15.0], [3.0, 12.0], [7.5, 7.5]])
    with CutoutStore(tmp_path / "f.h5") as cut:
        for k in range(3):
            src = WCS(fits.getheader(cut.objects.source[k])).celestial
            got = np.array(stored_wcs(cut, k).pixel_to_world_values(pix[:, 0], pix[:, 1])).T
            ref = np.array(src.pixel_to_world_values((pix[:, 0] + 0.5) * 2 - 0.5, (pix[:, 1] + 0.5) * 2 - 0.5)).T
            np.testing.assert_allclose(got, ref, atol=1e-9)    # 1e-9 deg = 4 micro-arcsec
            scale = np.sqrt(abs(np.linalg.det(cut.sky_geometry(k)[0])))
            assert scale == pytest.approx(2 * PIXEL_SCALE, rel=1e-6)
    # mosaic stamps: the object's own position (off the stamp centre) is the reference pixel
    path, data, w = mosaic
    ys, xs = inner_sources(3).T
    pos = [(float(x) + 0.3, float(y) - 0.2) for y, x in zip(ys, xs)]
    sky = [w.pixel_to_world_values(x, y) for x, y in pos]
    cat = write_csv(tmp_path / "cat.csv", ["id", "ra", "dec"],
                    [[f"s{k}", f"{ra:.10f}", f"{dec:.10f}"] for k, (ra, dec) in enumerate(sky)])
    ingest([path], tmp_path / "m.h5", IngestConfig(size=S, catalog=str(cat)))
    with CutoutStore(tmp_path / "m.h5") as cut:
        for k in range(3):
            x0, y0 = Cutout2D(data[0], pos[k], S, mode="strict").origin_original
            got = np.array(stored_wcs(cut, k).pixel_to_world_values(pix[:, 0], pix[:, 1])).T
            ref = np.array(w.pixel_to_world_values(pix[:, 0] + x0, pix[:, 1] + y0)).T
            np.testing.assert_allclose(got, ref, atol=1e-9)
    # a row without a WCS (NaN) or out of range: no geometry
    ingest([tmp_path / "fits"], tmp_path / "f2.h5", IngestConfig(size=S // 2))
    with h5py.File(tmp_path / "f2.h5", "r+") as f:
        f["objects/wcs_cd"][0] = np.nan
    with CutoutStore(tmp_path / "f2.h5") as cut:
        assert cut.sky_geometry(0) is None and cut.sky_geometry(1) is not None and cut.sky_geometry(99) is None


# -- preprocessing ---------------------------------------------------------------------------

def test_preprocess_crops_to_central_source(tmp_path):
    # 64-px stamps around compact XDF galaxies (the brightest ones fill the stamp): the crop is
    # smaller than the stamp, then resized
    (tmp_path / "in").mkdir()
    stamps, ids = xdf_stamps(29, 64)
    for k in (20, 23, 28):
        fits.PrimaryHDU(stamps[k]).writeto(tmp_path / "in" / f"{ids[k]}.fits")
    rng = np.random.default_rng(1)
    fits.PrimaryHDU(rng.normal(0, 1, (3, 64, 64)).astype(np.float32)).writeto(tmp_path / "in" / "noise.fits")
    report = ingest([tmp_path / "in"], tmp_path / "p.h5", IngestConfig(size=32, preprocess=True))
    assert report.n_cropped == 3 and report.n_no_source == 1
    assert "central source" in report.summary()
    plain = ingest([tmp_path / "in"], tmp_path / "q.h5", IngestConfig(size=32))
    assert plain.n_cropped == 0
    with CutoutStore(tmp_path / "p.h5") as p, CutoutStore(tmp_path / "q.h5") as q:
        assert p.shape == q.shape == (4, 3, 32, 32)
        # zooming in on each galaxy puts more of the stamp on it: the central pixels get brighter
        centre = slice(12, 20)
        for i in range(3):
            assert p.read(i)[:, centre, centre].mean() > q.read(i)[:, centre, centre].mean()
        # pure noise has no central source: kept whole (only resampled)
        np.testing.assert_array_equal(p.read(3), q.read(3))


# -- interruption and bad input ----------------------------------------------------------------

def test_interrupt_leaves_nothing(tmp_path, monkeypatch, capsys):
    write_cubes(tmp_path / "in", 6)
    from galexplorer.data import registry

    real = registry.get_reader("fits", "ingest")
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setitem(registry._READERS, ("fits", "ingest"), flaky)   # ingest reads through the registry
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path / "in"], out / "o.h5", IngestConfig(size=S, batch_size=1))   # 3 already written
    assert list(out.iterdir()) == []
    calls.clear()
    code = main(["ingest", str(tmp_path / "in"), "-o", str(out / "o.h5"), "--size", str(S), "-q"])
    assert code == 130 and list(out.iterdir()) == []
    assert "interrupted" in capsys.readouterr().err


def _truncated_h5(d: Path) -> Path:
    p = d / "cube.h5"
    stamps, _ = xdf_stamps(8, S)
    with h5py.File(p, "w") as f:
        f["images"] = stamps
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    return p


def _all_nan(d: Path) -> Path:
    p = d / "nan.fits"
    fits.PrimaryHDU(np.full((3, S, S), np.nan, np.float32)).writeto(p)
    return p


def _mismatched_bands(d: Path) -> list:
    write_band_files(d / "b", 2)
    stamps, _ = xdf_stamps(1, 40)
    fits.PrimaryHDU(stamps[0, 1]).writeto(d / "b" / "XDF0001_r.fits", overwrite=True)
    return [d / "b", "--bands", "g,r,i", "--band-pattern", "{id}_{band}.fits"]


def _unknown_band(d: Path) -> list:
    write_band_files(d / "b", 2)
    return [d / "b", "--bands", "g,r,z", "--band-pattern", "{id}_{band}.fits"]


def _duplicate_names(d: Path) -> list:
    write_cubes(d / "x", 2)
    write_cubes(d / "y", 1)
    return [d / "x", d / "y"]


def _duplicate_catalogue_ids(d: Path) -> list:
    _, ids, _ = write_cubes(d / "x", 2)
    cat = write_csv(d / "cat.csv", ["id", "ra", "dec"], [[ids[0], 1, 2], [ids[0], 3, 4]])
    return [d / "x", "--catalog", cat]


def _duplicate_hdf5_ids(d: Path) -> list:
    stamps, _ = xdf_stamps(3, S)
    with h5py.File(d / "c.h5", "w") as f:
        f["images"] = stamps
        f["id"] = np.array(["a", "b", "a"], dtype=h5py.string_dtype())
    return [d / "c.h5"]


@pytest.mark.parametrize("make, match", [
    (lambda d: [(d / "empty").mkdir() or d / "empty"], "no image files in this folder"),
    (lambda d: [(d / "bad.fits").write_text("not a FITS file\n") and d / "bad.fits"], "not a readable FITS file"),
    (lambda d: [_truncated_h5(d)], "truncated"),
    (lambda d: [_all_nan(d)], "nothing to write: skipped 1 with a band that is all NaN/inf (nan)"),
    (_mismatched_bands, "band images differ in size: 40x40 here, 32x32"),
    (_unknown_band, "no file for band 'z'"),
    (_duplicate_names, "two inputs give the same object id 'XDF0000'"),
    (_duplicate_catalogue_ids, "1 duplicate id(s) in column 'id' (first: 'XDF0000')"),
    (_duplicate_hdf5_ids, "duplicate object id 'a'"),
    (lambda d: [d / "missing.fits"], "no such file or folder"),
    (lambda d: [(d / "table.csv").write_text("a,b\n") and d / "table.csv"], "unknown file type"),
], ids=["empty-folder", "text-as-fits", "truncated-hdf5", "all-nan", "mismatched-band-sizes", "unknown-band",
        "duplicate-file-ids", "duplicate-catalogue-ids", "duplicate-hdf5-ids", "missing", "unknown-type"])
def test_bad_input_exit_2_one_line_no_output(tmp_path, capsys, make, match):
    args = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = run_cli([*args, "-o", out_dir / "cut.h5", "--size", S], capsys)
    assert_clean_failure(code, err, out_dir, match)


def test_unreadable_file_inside_folder_is_skipped_and_reported(tmp_path):
    write_cubes(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.fits").write_text("not a FITS file\n")
    report = ingest([tmp_path / "in"], tmp_path / "o.h5", IngestConfig(size=S))
    assert report.n_written == 2 and report.skipped == {"unreadable": 1}
    assert "1 unreadable file(s) (broken.fits)" in report.summary()


def test_errors_are_typed_and_one_line(tmp_path):
    with pytest.raises(GalexplorerError):
        ingest([tmp_path / "nothing"], tmp_path / "o.h5")
    write_cubes(tmp_path / "in", 1)
    with pytest.raises(InputError, match="--bands lists 2 band") as info:
        ingest([tmp_path / "in"], tmp_path / "o.h5", IngestConfig(size=S, bands=["a", "b"]))
    assert "\n" not in str(info.value)
    with pytest.raises(StoreError):
        with h5py.File(tmp_path / "d.h5", "w") as f:
            f["images"] = xdf_stamps(2, S)[0]
            f["ids"] = np.array(["same", "same"], dtype=h5py.string_dtype())
        ingest([tmp_path / "d.h5"], tmp_path / "o.h5", IngestConfig(size=S))
    assert not (tmp_path / "o.h5").exists()


# -- round trip of arbitrary ids and columns ----------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)
_id = _text.filter(lambda s: s == s.strip())


_row = st.tuples(_id, st.floats(allow_infinity=False, width=64), st.integers(-2**62, 2**62),
                _text.map(lambda s: "t" + s).filter(lambda s: s == s.strip()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_row, min_size=1, max_size=6, unique_by=lambda r: r[0]))
@example(rows=[("a,b", 1.5, 2, 't,"x"'), ('"q"', float("nan"), -1, "tü\n2"), ("Ω 1", -0.0, 0, "t'")])
def test_round_trip_arbitrary_ids_and_columns(rows):
    ids, floats, ints, texts = (list(c) for c in zip(*rows))
    n = len(ids)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        img = np.moveaxis(xdf_image()[:40, :60], -1, 0).copy()
        fits.PrimaryHDU(img).writeto(d / "m.fits")
        xs = [8 + 6 * k for k in range(n)]
        write_csv(d / "cat.csv", ["id", "x", "y", "Flüx,1", "count", "note \"q\""],
                  [[oid, x, 20, f, i, t] for oid, x, f, i, t in zip(ids, xs, floats, ints, texts)])
        ingest([d / "m.fits"], d / "o.h5", IngestConfig(size=8, thumb_size=8, catalog=str(d / "cat.csv"),
                                                    mosaic=True))
        with CutoutStore(d / "o.h5") as cut:
            assert list(cut.ids) == ids
            np.testing.assert_array_equal(cut.column("Flüx,1"), np.array(floats))
            np.testing.assert_array_equal(cut.column("count"), np.array(ints))
            assert list(cut.column('note "q"')) == texts
            for k in range(n):
                np.testing.assert_array_equal(cut.read(k), img[:, 16:24, xs[k] - 4:xs[k] + 4])
            assert cut.json_attr("ingest")["report"]["n_written"] == n
