"""Ingest speed and memory: stamps cut from a FITS mosaic at catalogue ra/dec, written with thumbnails.

Builds a 3-band mosaic by tiling the Hubble XDF image (real pixels, from scikit-image), with a
TAN WCS, and a catalogue of N positions (a few near the edge, which must be skipped). Then:

1. ``galexplorer.data.ingest.ingest`` cuts, repairs, thumbnails and writes all N stamps;
2. reference A: the same cutting done the usual way, one object at a time with
   ``astropy.nddata.Cutout2D(data, SkyCoord, size, wcs=wcs)`` on the memory-mapped mosaic and
   appended to an HDF5 dataset (timed on min(N, 1000) objects; rates are per object);
3. reference B: the raw h5py write of N ready (N, 3, 64, 64) stamps (an upper bound);
4. peak Python/NumPy heap (tracemalloc) of the ingest at N/10 and at N objects: flat in N when
   the mosaic is memory-mapped and stamps are streamed;
5. thumbnails: the batched Lupton composite against astropy's ``make_lupton_rgb`` per stamp.

usage: python benchmarks/bench_ingest.py [--n 10000] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import logging
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 64


def build_inputs(folder: Path, n: int, tiles: tuple[int, int], seed: int = 0) -> tuple[Path, Path, int]:
    """A (3, 872*ty, 1000*tx) mosaic FITS with a WCS and a catalogue of n positions."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from galexplorer.data.xdf import xdf_image

    img = np.moveaxis(xdf_image(), -1, 0)
    ty, tx = tiles
    mosaic = np.tile(img, (1, ty, tx)).astype(np.float32)
    h, w = mosaic.shape[1:]
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [53.1624, -27.7914]
    wcs.wcs.crpix = [w / 2, h / 2]
    wcs.wcs.cdelt = [-0.06 / 3600, 0.06 / 3600]
    path = folder / "mosaic.fits"
    fits.PrimaryHDU(mosaic, header=wcs.to_header()).writeto(path)
    rng = np.random.default_rng(seed)
    x = rng.uniform(SIZE, w - SIZE, n)
    y = rng.uniform(SIZE, h - SIZE, n)
    n_edge = max(n // 100, 1)
    x[:n_edge] = rng.uniform(0, SIZE / 4, n_edge)        # these must be reported and skipped
    ra, dec = wcs.pixel_to_world_values(x, y)
    cat = folder / "catalog.csv"
    with open(cat, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["id", "ra", "dec", "mag"])
        for k in range(n):
            wr.writerow([f"obj{k:06d}", repr(float(ra[k])), repr(float(dec[k])), round(20 + k % 50 * 0.1, 2)])
    return path, cat, n_edge


def run_ingest(mosaic: Path, cat: Path, out: Path):
    from galexplorer.data.ingest import IngestConfig, ingest

    return ingest([mosaic], out, IngestConfig(size=SIZE, catalog=str(cat)))


def reference_cutout2d(mosaic: Path, cat: Path, out: Path, n: int) -> tuple[float, int]:
    """Seconds for n objects cut one at a time with Cutout2D(SkyCoord, wcs=...) and written to HDF5."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.nddata import Cutout2D
    from astropy.nddata.utils import NoOverlapError, PartialOverlapError
    from astropy.wcs import WCS

    rows = list(csv.DictReader(open(cat)))[:n]
    t0 = time.perf_counter()
    written = 0
    with fits.open(mosaic, memmap=True) as hdul, h5py.File(out, "w") as f:
        data = hdul[0].data
        wcs = WCS(hdul[0].header).celestial
        dset = f.create_dataset("images", shape=(0, 3, SIZE, SIZE), maxshape=(None, 3, SIZE, SIZE),
                                dtype=np.float32, chunks=(16, 3, SIZE, SIZE))
        for r in rows:
            pos = SkyCoord(float(r["ra"]) * u.deg, float(r["dec"]) * u.deg)
            try:
                stamp = np.stack([Cutout2D(data[c], pos, SIZE, wcs=wcs, mode="strict").data for c in range(3)])
            except (NoOverlapError, PartialOverlapError):
                continue
            dset.resize(written + 1, axis=0)
            dset[written] = stamp
            written += 1
    return time.perf_counter() - t0, written


def reference_h5_write(out: Path, n: int) -> float:
    stamps = np.random.default_rng(0).random((256, 3, SIZE, SIZE), dtype=np.float32)
    t0 = time.perf_counter()
    with h5py.File(out, "w") as f:
        dset = f.create_dataset("images", shape=(n, 3, SIZE, SIZE), dtype=np.float32, chunks=(16, 3, SIZE, SIZE))
        for a in range(0, n, 256):
            b = min(a + 256, n)
            dset[a:b] = stamps[: b - a]
    return time.perf_counter() - t0


def heap_peak_mb(mosaic: Path, cat_rows: int, cat: Path, folder: Path) -> float:
    sub = folder / f"cat_{cat_rows}.csv"
    with open(cat) as src, open(sub, "w") as dst:
        for k, line in enumerate(src):
            if k > cat_rows:
                break
            dst.write(line)
    tracemalloc.start()
    run_ingest(mosaic, sub, folder / f"heap_{cat_rows}.h5")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def thumbnails(n: int) -> tuple[float, float]:
    """(batched, per-stamp astropy) milliseconds per 64-px 3-band thumbnail."""
    from astropy.visualization import make_lupton_rgb

    from galexplorer.data.stretch import rgb_band_order
    from galexplorer.data.thumbnails import make_thumbnails
    from galexplorer.data.xdf import xdf_image

    img = np.moveaxis(xdf_image(), -1, 0)
    rng = np.random.default_rng(1)
    ys, xs = rng.integers(0, 872 - SIZE, n), rng.integers(0, 1000 - SIZE, n)
    stamps = np.stack([img[:, y:y + SIZE, x:x + SIZE] for y, x in zip(ys, xs)]).astype(np.float32)
    make_thumbnails(stamps[:8], ["b", "g", "r"], SIZE)
    t0 = time.perf_counter()
    for a in range(0, n, 256):
        make_thumbnails(stamps[a:a + 256], ["b", "g", "r"], SIZE)
    batched = (time.perf_counter() - t0) / n * 1e3
    m = min(n, 300)
    t0 = time.perf_counter()
    for s in stamps[:m]:
        chans = [s[i] - np.median(s[i]) for i in rgb_band_order(["b", "g", "r"])]
        scale = max(float(np.percentile(np.max(chans, axis=0), 99.5)), 1e-12)
        r, g, b = (np.clip(c / scale, 0, None) for c in chans)
        with np.errstate(invalid="ignore", divide="ignore"):
            make_lupton_rgb(r, g, b, minimum=0.0, stretch=0.5, Q=8)
    per_stamp = (time.perf_counter() - t0) / m * 1e3
    return batched, per_stamp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="catalogue objects (default 10^4)")
    ap.add_argument("--quick", action="store_true", help="small smoke run (~10 s)")
    args = ap.parse_args()
    logging.getLogger("galexplorer").setLevel(logging.ERROR)   # the edge objects are expected here
    n = 1500 if args.quick else args.n
    tiles = (1, 2) if args.quick else (2, 4)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        folder = Path(d)
        mosaic, cat, n_edge = build_inputs(folder, n, tiles)
        h, w = 872 * tiles[0], 1000 * tiles[1]
        print(f"mosaic: 3 x {h} x {w} float32 ({3 * h * w * 4 / 2**20:.0f} MiB), {n} catalogue rows, "
              f"{n_edge} near the edge, stamps {SIZE} px")

        t0 = time.perf_counter()
        report = run_ingest(mosaic, cat, folder / "cut.h5")
        t_ingest = time.perf_counter() - t0
        assert report.n_written == n - n_edge and report.skipped.get("edge") == n_edge, report.summary()
        rate = report.n_written / t_ingest
        print(f"galexplorer ingest:          {report.n_written} stamps in {t_ingest:.2f} s = {rate:,.0f} stamps/s "
              f"(cut, NaN check, Lupton thumbnails, write); {n_edge} edge objects reported")

        m = min(n, 200 if args.quick else 1000)
        t_ref, wrote = reference_cutout2d(mosaic, cat, folder / "ref.h5", m)
        ref_rate = wrote / t_ref
        with h5py.File(folder / "cut.h5") as a, h5py.File(folder / "ref.h5") as b:
            k = wrote - 1    # same stamp, same pixels: the last reference stamp (after the skipped edge ones)
            assert np.array_equal(a["images"][k], b["images"][k]), "ingest and Cutout2D disagree"
        print(f"reference Cutout2D loop:     {wrote} stamps in {t_ref:.2f} s = {ref_rate:,.0f} stamps/s "
              f"(no thumbnails) -> ingest is {rate / ref_rate:.1f}x faster")

        t_h5 = reference_h5_write(folder / "raw.h5", report.n_written)
        h5_rate = report.n_written / t_h5
        print(f"reference raw h5py write:    {report.n_written} stamps in {t_h5:.2f} s = {h5_rate:,.0f} stamps/s "
              f"-> ingest runs at {rate / h5_rate:.2f}x the bare write speed")

        small = max(n // 10, 512)     # at least two write batches of 256
        p_small = heap_peak_mb(mosaic, small, cat, folder)
        p_full = heap_peak_mb(mosaic, n, cat, folder)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak heap (tracemalloc):     {p_small:.1f} MiB at N={small}, {p_full:.1f} MiB at N={n} "
              f"-> ratio {p_full / p_small:.2f} for {n / small:.0f}x the objects; the stamps alone are "
              f"{n * 3 * SIZE * SIZE * 4 / 2**20:.0f} MiB (process max RSS {maxrss:.0f} MiB, includes mapped pages)")

        tb, tp = thumbnails(2048 if not args.quick else 512)
        print(f"thumbnails (64 px, 3 bands): batched {tb:.3f} ms/stamp, astropy make_lupton_rgb per stamp "
              f"{tp:.3f} ms/stamp -> {tp / tb:.1f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
