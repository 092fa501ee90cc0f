"""The readers behind ``galexplorer ingest``: catalogue, FITS/WCS, images, HDF5, file patterns,
per-stamp preparation and mosaic placement, each on real XDF pixels or hand-checked values."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from xdf import PIXEL_SCALE, XDF_CENTRE, xdf_image, xdf_stamps

from galexplorer.data.catalog import read_catalog
from galexplorer.data.fits import header_bands, header_radec, read_fits
from galexplorer.data.hdf5 import open_cube
from galexplorer.data.images import read_image
from galexplorer.data.inputs import InputFile, file_stem, find_inputs, group_by_band
from galexplorer.data.mosaic import EDGE, NO_POSITION, OUTSIDE, PLACED, MosaicSet
from galexplorer.data.preprocess import central_source_crop, repair_bad_pixels, resample
from galexplorer.errors import ConfigError, InputError

# -- catalogue ---------------------------------------------------------------------------------


def test_catalogue_roles_types_and_case(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("\ufeff OBJID ; RA_deg ;DEC_DEG; z ;n; label;x/y\n"
                 "a1;53.1;-27.8;0.5;3;spiral;1\n"
                 "b2;53.2;-27.7;;4;;2\n", encoding="utf-8")
    cat = read_catalog(p)
    assert list(cat.ids) == ["a1", "b2"] and cat.names["id"] == "OBJID"
    np.testing.assert_array_equal(cat.ra, [53.1, 53.2])
    assert cat.columns["z"].dtype == np.float64 and np.isnan(cat.columns["z"][1])
    assert cat.columns["n"].dtype == np.int64 and list(cat.columns["label"]) == ["spiral", ""]
    assert "x_y" in cat.columns and not cat.has_xy           # '/' cannot be in an HDF5 name
    assert set(cat.columns) == {"z", "n", "label", "x_y"}


def test_catalogue_sexagesimal_and_forced_columns(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("name,alpha,delta,other_id\ng,03:32:39.0,-27:47:29.0,7\n")
    cat = read_catalog(p, id_column="OTHER_ID", ra_column="alpha", dec_column="delta")
    assert list(cat.ids) == ["7"] and "name" in cat.columns
    np.testing.assert_allclose(cat.ra, [(3 + 32 / 60 + 39 / 3600) * 15], atol=1e-9)
    np.testing.assert_allclose(cat.dec, [-(27 + 47 / 60 + 29 / 3600)], atol=1e-9)
    with pytest.raises(InputError, match="no column 'nope' for id"):
        read_catalog(p, id_column="nope")


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("id,ra\n1,2\n", "ra but no dec"),
    ("id,ra,dec\n1,2\n", "row 2 has 2 values"),
    ("id,ra,dec\n1,2,3\n1,4,5\n", "duplicate id"),
    ("id,ra,dec\n,2,3\n", "without an id"),
    ("id,ra,dec\na,500,3\n", "not a sky position"),
    ("id,ID\na,b\n", "duplicate column names id"),
])
def test_catalogue_errors(tmp_path, text, match):
    p = tmp_path / "c.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        read_catalog(p)
    assert "\n" not in str(info.value) and str(p) in str(info.value)


# -- FITS --------------------------------------------------------------------------------------

def _wcs_header(ctype=("RA---TAN", "DEC--TAN"), radesys: str | None = None) -> fits.Header:
    w = WCS(naxis=2)
    w.wcs.ctype = list(ctype)
    w.wcs.crval = [XDF_CENTRE[0], XDF_CENTRE[1]] if ctype[0].startswith("RA") else [223.6, -54.4]
    w.wcs.crpix = [3.0, 5.0]
    w.wcs.cd = PIXEL_SCALE * np.array([[-0.9, 0.3], [0.3, 0.9]])
    if radesys:
        w.wcs.radesys = radesys
        w.wcs.equinox = 1950.0 if radesys == "FK4" else 2000.0
    return w.to_header()


@pytest.mark.parametrize("case", ["icrs", "fk5", "fk4", "galactic", "sip"])
def test_header_radec_agrees_with_astropy(case):
    from astropy.coordinates import SkyCoord

    if case == "galactic":
        hdr = _wcs_header(("GLON-TAN", "GLAT-TAN"))
    elif case in ("fk5", "fk4"):
        hdr = _wcs_header(radesys=case.upper())
    else:
        hdr = _wcs_header()
    if case == "sip":
        hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        hdr["A_ORDER"], hdr["B_ORDER"], hdr["A_2_0"], hdr["B_0_2"] = 2, 2, 1e-3, -2e-3
    x, y = 17.5, 9.25
    ra, dec = header_radec(hdr, x, y, "test")
    sky = WCS(hdr).pixel_to_world(x, y).icrs
    assert isinstance(sky, SkyCoord)
    assert abs(ra - sky.ra.deg) < 1e-9 and abs(dec - sky.dec.deg) < 1e-9
    if case == "sip":   # the distortion matters, so the full WCS must have been used
        plain = _wcs_header()
        assert abs(header_radec(plain, x, y, "t")[0] - ra) > 1e-7
    assert np.isnan(header_radec(fits.Header(), x, y, "t")[0])


def test_read_fits_picks_first_image_hdu_and_bands(tmp_path):
    stamps, _ = xdf_stamps(2, 16)
    hdr = fits.Header()
    hdr["FILTER1"], hdr["FILTER2"], hdr["FILTER3"] = "g", "r", "i"
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])]),
                         fits.ImageHDU(stamps[0], header=hdr, name="SCI"), fits.ImageHDU(stamps[1], name="OTHER")])
    hdul.writeto(tmp_path / "m.fits")
    img = read_fits(tmp_path / "m.fits")
    assert img.data.shape == (1, 3, 16, 16) and img.bands == ["g", "r", "i"]
    np.testing.assert_array_equal(img.data[0], stamps[0])
    np.testing.assert_array_equal(read_fits(tmp_path / "m.fits", hdu="OTHER").data[0], stamps[1])
    np.testing.assert_array_equal(read_fits(tmp_path / "m.fits", hdu="3").data[0], stamps[1])
    with pytest.raises(InputError, match="HDU '1' holds no image"):
        read_fits(tmp_path / "m.fits", hdu="1")
    with pytest.raises(InputError, match="no HDU 'X'"):
        read_fits(tmp_path / "m.fits", hdu="X")
    assert header_bands(fits.Header([("FILTER", "F606W")]), 1) == ["F606W"]


def test_read_fits_scaled_integers_and_truncation(tmp_path):
    img = (xdf_image()[:20, :30, 1] * 1000).astype(np.int16)
    hdu = fits.PrimaryHDU(img)
    hdu.header["BSCALE"], hdu.header["BZERO"] = 0.5, 10.0
    hdu.writeto(tmp_path / "s.fits")
    np.testing.assert_allclose(read_fits(tmp_path / "s.fits").data[0, 0], img * 0.5 + 10.0)
    raw = (tmp_path / "s.fits").read_bytes()
    (tmp_path / "t.fits").write_bytes(raw[: 2880 + 300])
    with pytest.raises(InputError, match="truncated"):
        read_fits(tmp_path / "t.fits")


# -- images ------------------------------------------------------------------------------------

def test_read_image_jpeg_and_float_tiff(tmp_path):
    bgr = np.round(xdf_image()[:24, :36] * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    got = read_image(tmp_path / "a.jpg")
    assert got.shape == (3, 24, 36)
    assert np.abs(got - bgr.transpose(2, 0, 1) / 255).mean() < 0.01      # lossy, but close
    flt = xdf_image()[:10, :12, 0] * 7.5
    cv2.imwrite(str(tmp_path / "f.tif"), flt)
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[0], flt)
    (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="not a readable PNG"):
        read_image(tmp_path / "x.png")


# -- HDF5 --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, layout", [((5, 3, 16, 16), "NCHW"), ((5, 16, 16, 3), "NHWC"),
                                           ((5, 16, 16), "NHW"), ((5, 4, 4, 4), "NCHW")])
def test_open_cube_layouts(tmp_path, shape, layout):
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f.create_dataset("stuff/pixels", data=data)
        f["ids"] = np.arange(5) + 100
    cube = open_cube(tmp_path / "c.h5")
    assert cube.layout == layout and cube.n == 5 and list(cube.ids) == [str(i) for i in range(100, 105)]
    batches = list(cube.batches(2))
    assert [a for a, _ in batches] == [0, 2, 4]
    got = np.concatenate([b for _, b in batches])
    want = data.transpose(0, 3, 1, 2) if layout == "NHWC" else data[:, None] if layout == "NHW" else data
    np.testing.assert_array_equal(got, want)


def test_open_cube_choices_and_errors(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = np.zeros((2, 8, 8))
        f["b"] = np.zeros((2, 8, 8))
    with pytest.raises(InputError, match="2 image datasets"):
        open_cube(tmp_path / "two.h5")
    assert open_cube(tmp_path / "two.h5", dataset="b").dataset == "/b"
    with pytest.raises(InputError, match="no dataset 'c'"):
        open_cube(tmp_path / "two.h5", dataset="c")
    (tmp_path / "txt.h5").write_text("hello")
    with pytest.raises(InputError, match="not a readable HDF5"):
        open_cube(tmp_path / "txt.h5")


# -- inputs and patterns -------------------------------------------------------------------

def test_find_inputs_sorted_recursive_and_ignoring(tmp_path):
    for name in ["b/z.fits", "a.png", "b/c.FITS.GZ", "notes.md", ".hidden/x.fits", "b/y.fz"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    files, ignored = find_inputs([tmp_path], exclude={(tmp_path / "b" / "y.fz").resolve()})
    assert [f.path.relative_to(tmp_path).as_posix() for f in files] == ["a.png", "b/c.FITS.GZ", "b/z.fits"]
    assert [f.kind for f in files] == ["image", "fits", "fits"] and ignored == 1
    assert not any(f.explicit for f in files)
    assert file_stem(Path("q.fits.fz")) == "q" and file_stem(Path("r.v2.tif")) == "r.v2"


def test_group_by_band(tmp_path):
    files = [InputFile(tmp_path / n, "fits", True) for n in
             ["o1_g.fits", "o1_r.fits", "o_2_g.fits", "o_2_r.fits", "other.fits"]]
    groups, unmatched = group_by_band(files, "{id}_{band}.fits", ["g", "r"])
    assert [g.key for g in groups] == ["o1", "o_2"] and [f.path.name for f in unmatched] == ["other.fits"]
    assert groups[1].files["r"].path.name == "o_2_r.fits"
    with pytest.raises(InputError, match="object 'o1' has no file for band"):
        group_by_band(files[:1] + files[2:4], "{id}_{band}.fits", ["g", "r"])
    with pytest.raises(ConfigError, match="no {band}"):
        group_by_band(files, "{id}.fits", ["g"])
    with pytest.raises(ConfigError, match="unknown placeholder"):
        group_by_band(files, "{id}_{filter}.fits", ["g"])


# -- per-stamp preparation ---------------------------------------------------------------------

def test_repair_and_resample():
    stamps, _ = xdf_stamps(1, 32)
    s = stamps[0].copy()
    fixed, n, empty = repair_bad_pixels(s)
    assert fixed is s and n == 0 and not empty
    s[1, 3, 4] = -np.inf
    fixed, n, empty = repair_bad_pixels(s)
    assert n == 1 and not empty and fixed[1, 3, 4] == np.median(np.delete(s[1].ravel(), 3 * 32 + 4))
    assert np.isinf(s[1, 3, 4])                                   # the input is untouched
    wide = np.concatenate([stamps[0]] * 2, axis=2)                # (3, 32, 64): central square, then size
    np.testing.assert_array_equal(resample(wide, 32), wide[:, :, 16:48])
    np.testing.assert_allclose(resample(stamps[0][:1], 8)[0], stamps[0][0].reshape(8, 4, 8, 4).mean(axis=(1, 3)),
                               atol=1e-6)
    five = np.concatenate([stamps[0], stamps[0][:2]])             # more channels than OpenCV's 4
    assert resample(five, 16).shape == (5, 16, 16)


def test_central_source_crop_on_a_synthetic_source():
    yy, xx = np.mgrid[:64, :64]
    rng = np.random.default_rng(0)
    img = rng.normal(0, 0.1, (2, 64, 64)).astype(np.float32)
    img += 5 * np.exp(-((yy - 31.5) ** 2 + (xx - 31.5) ** 2) / (2 * 3.0 ** 2))
    out, found = central_source_crop(img)
    assert found and out.shape[0] == 2 and 16 <= out.shape[1] < 40 and out.shape[1] == out.shape[2]
    off = img.copy()
    off[:] = rng.normal(0, 0.1, (2, 64, 64))
    off += 5 * np.exp(-((yy - 8) ** 2 + (xx - 8) ** 2) / 8.0)   # a source, but not at the centre
    out, found = central_source_crop(off)
    assert not found and out is off


# -- mosaic placement --------------------------------------------------------------------------

def test_mosaic_placement_statuses_and_tiles(tmp_path):
    img = np.moveaxis(xdf_image()[:200, :300], -1, 0).copy()
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = list(XDF_CENTRE)
    w.wcs.crpix = [1.0, 1.0]
    w.wcs.cdelt = [-PIXEL_SCALE, PIXEL_SCALE]
    left, right = w.deepcopy(), w.deepcopy()
    right.wcs.crpix = [1.0 - 100, 1.0]                          # the right tile starts at x = 100
    fits.PrimaryHDU(img[:, :, :200], header=left.to_header()).writeto(tmp_path / "l.fits")
    fits.PrimaryHDU(img[:, :, 100:], header=right.to_header()).writeto(tmp_path / "r.fits")
    # left tile; crosses the left tile's edge but fits the right one; right tile; right edge; no position
    xy = np.array([[50.3, 100.3], [195.3, 100.3], [250.3, 100.3], [295.3, 100.3], [0.0, 0.0]])
    ra, dec = w.pixel_to_world_values(xy[:, 0], xy[:, 1])
    ra[-1] = np.nan
    p = tmp_path / "c.csv"
    p.write_text("id,ra,dec\n" + "".join(f"o{k},{'' if np.isnan(a) else repr(float(a))},{'' if np.isnan(a) else repr(float(b))}\n"
                                        for k, (a, b) in enumerate(zip(ra, dec))))
    cat = read_catalog(p)
    with MosaicSet([("l", [tmp_path / "l.fits"]), ("r", [tmp_path / "r.fits"])]) as ms:
        pl = ms.place(cat, 20)
        assert list(pl.status) == [PLACED, PLACED, PLACED, EDGE, NO_POSITION]
        assert list(pl.tile[:3]) == [0, 1, 1]
        assert (pl.x0[2], pl.y0[2]) == (141, 91)                  # ceil(x - size / 2) as Cutout2D
        np.testing.assert_array_equal(ms.cut(1, 141, 91, 20), img[:, 91:111, 241:261])
        ra2, dec2 = ms.radec(pl, np.array([0, 2]))
        np.testing.assert_allclose(ra2, ra[[0, 2]], atol=1e-9)
    far = tmp_path / "far.csv"
    far.write_text("id,ra,dec\nz,10.0,10.0\n")
    with MosaicSet([("l", [tmp_path / "l.fits"])]) as ms:
        assert list(ms.place(read_catalog(far), 20).status) == [OUTSIDE]
