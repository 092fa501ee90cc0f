"""The explorer's parts that need no window: density binning, picking, selections, colouring,
the labelling session, the worker runner, the Qt work-around, and the shortcut table against
the user guide."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gui_stores import build_store

from galexplorer.active.session import LabellingSession, open_store
from galexplorer.gui.colouring import spec_for
from galexplorer.gui.density import SortedPoints, ViewRect, bin_view, premultiplied_table, render_rgba
from galexplorer.gui.picking import NearestIndex
from galexplorer.gui.selection import SelectionMode, combine, in_polygon, in_rectangle

ROOT = Path(__file__).resolve().parents[1]


def test_bin_view_matches_histogram2d():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(20_000, 2)).astype(np.float32)
    pts = SortedPoints(xy)
    rect = ViewRect(-1.5, 2.0, -1.0, 1.25)
    w = rng.random(len(xy)).astype(np.float32)
    sel = rng.random(len(xy)) < 0.3
    b = bin_view(pts, rect, 70, 45, weights=pts.sorted_values(w)[None], selected=pts.sorted_values(sel))
    inside = (xy[:, 0] >= rect.x0) & (xy[:, 0] < rect.x1) & (xy[:, 1] >= rect.y0) & (xy[:, 1] < rect.y1)
    ref, _, _ = np.histogram2d(xy[inside, 1], xy[inside, 0], bins=(45, 70), range=((rect.y0, rect.y1),
                                                                                   (rect.x0, rect.x1)))
    # float32 bin edges may move a point on an edge by one bin; totals and almost every bin agree
    assert b.n_in_view == inside.sum() == b.count.sum()
    assert np.mean(b.count == ref) > 0.995
    refw, _, _ = np.histogram2d(xy[inside, 1], xy[inside, 0], bins=(45, 70), weights=w[inside],
                                range=((rect.y0, rect.y1), (rect.x0, rect.x1)))
    np.testing.assert_allclose(b.sums[0].sum(), refw.sum(), rtol=1e-5)
    assert b.selected.sum() == (inside & sel).sum()
    lut = np.zeros((256, 4), np.uint8)
    lut[:, 0] = np.arange(256)
    img = render_rgba(b, premultiplied_table(lut))
    assert img.shape == (45, 70, 4)
    assert ((img[..., 3] > 0) == (b.count > 0)).all()      # empty pixels are transparent


def test_nearest_index_picks_within_radius_in_pixels():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 10, (5000, 2))
    idx = NearestIndex(xy)
    for _ in range(50):
        q = rng.uniform(0, 10, 2)
        for px_x, px_y in ((40.0, 40.0), (40.0, 90.0)):
            d = np.hypot((xy[:, 0] - q[0]) * px_x, (xy[:, 1] - q[1]) * px_y)
            expect = int(np.argmin(d)) if d.min() <= 8 else -1
            assert idx.nearest(q[0], q[1], px_x, px_y, 8.0) == expect
    big = NearestIndex(rng.normal(size=(200_000, 2)), background=True)
    assert big.wait(30) and big.nearest(0, 0, 1000, 1000) >= 0


def test_selection_modes_and_shapes():
    a = np.array([1, 2, 3, 4])
    b = np.array([3, 4, 5])
    assert combine(a, b, SelectionMode.REPLACE).tolist() == [3, 4, 5]
    assert combine(a, b, SelectionMode.ADD).tolist() == [1, 2, 3, 4, 5]
    assert combine(a, b, SelectionMode.REMOVE).tolist() == [1, 2]
    assert combine(a, b, SelectionMode.INTERSECT).tolist() == [3, 4]
    xy = np.array([[0.2, 0.5], [1, 1.3], [2, 2.4], [0.9, 0.1], [5, 5]], float)
    assert in_rectangle(xy, 2.1, 2.1, -0.1, -0.1).tolist() == [0, 1, 3]
    tri = np.array([[-0.5, -0.5], [2.5, -0.5], [2.5, 2.5]])   # below the diagonal
    assert in_polygon(xy, tri).tolist() == [3]
    assert in_polygon(xy, tri[:2]).tolist() == []


def test_colour_specs():
    cats = spec_for("kind", np.array(["a", "b", "a", "c"], dtype=object))
    assert cats.kind == "categorical" and cats.categories == ["a", "b", "c"]
    assert cats.values.tolist() == [0, 1, 0, 2]
    assert cats.rgb_weights().shape == (3, 4)
    cont = spec_for("z", np.r_[np.linspace(0, 1, 98), np.nan, 100.0])
    assert cont.kind == "continuous" and cont.vrange[1] < 100   # 99th percentile, not the outlier
    idx = cont.colour_index(256)
    assert idx[98] == 256 and 0 <= idx[:98].min() and idx[:98].max() <= 255
    assert spec_for("c", np.arange(10) % 3).kind == "categorical"


def test_session_scores_navigates_and_resumes(tmp_path):
    path = build_store(tmp_path / "s.h5", 60, thumbnails=False)
    ses = LabellingSession(open_store(path), user="ann")
    ses.set_order(np.arange(60)[::-1])
    assert ses.start() == 59
    ses.score_current(4)
    assert ses.current == 58 and ses.labels[59] == 4 and ses.since_refit == 1
    ses.skip()
    assert ses.current == 57 and 58 in ses.skipped
    assert ses.back() == 58 and ses.back() == 59
    ses.score_current(2)                      # re-scoring in the past moves forward in the history
    assert ses.current == 58 and ses.labels[59] == 2
    ses.open(10, context=[10, 11, 12])        # from a gallery: scoring walks the gallery
    ses.score_current(5)
    assert ses.current == 11
    evs = ses.undo()
    assert evs[0].object_id == ses.ids[10] and ses.current == 10 and np.isnan(ses.labels[10])
    ses.redo()
    assert ses.labels[10] == 5
    ses.exclude([20, 21])
    assert ses.excluded[[20, 21]].all() and 20 not in ses.queue(100)
    where = ses.current
    ses.close()
    again = LabellingSession(open_store(path), user="ann")
    assert again.current == where and again.labels[10] == 5 and again.excluded[20]
    assert again.skipped == {58}
    again.close()


def test_runner_runs_only_the_latest_request(qapp):
    from galexplorer.gui.workers import LatestOnlyRunner

    runner = LatestOnlyRunner("test")
    done = []
    runner.finished.connect(lambda tag, result: done.append(result))

    def job(x):
        time.sleep(0.05)
        return x

    for x in range(5):
        runner.submit(job, x, tag=x)
    assert runner.wait(10)
    assert done == [0, 4] and runner.runs == 2
    failed = []
    runner.failed.connect(lambda tag, msg: failed.append(msg))

    def bad():
        from galexplorer.errors import StoreError

        raise StoreError("broken", "x.h5", "fix it")

    runner.submit(bad)
    assert runner.wait(10) and failed == ["x.h5: broken; fix it"]
    runner.shutdown()


def test_qt_reference_leak_guard(qapp):
    from PySide6 import QtCore

    from galexplorer.gui.qtcompat import _Probe, guard_singleton_refcounts

    guard_singleton_refcounts()
    probe = _Probe()
    for _ in range(20_000):    # more than True's reference count without the guard
        probe.fired.emit()
    for _ in range(2000):
        QtCore.QTimer.singleShot(0, probe.callback)
    qapp.processEvents()
    assert sys.getrefcount(True) > 1000 and sys.getrefcount(None) > 1000


def test_user_guide_lists_every_shortcut():
    from galexplorer.gui.actions import SHORTCUTS

    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    for s in SHORTCUTS:
        for k in s.keys:
            assert f"`{k}`" in guide, f"the user guide does not mention the shortcut {k} ({s.text})"


@pytest.mark.parametrize("name", ["lasso", "pan", "rectangle", "home", "similar", "refit", "export", "open"])
def test_icons_exist(name):
    assert (ROOT / "galexplorer" / "gui" / "resources" / "icons" / f"{name}.svg").exists()


def test_viewer_url_template():
    from galexplorer.gui.settings import DEFAULT_VIEWER_URL, viewer_url

    url = viewer_url(DEFAULT_VIEWER_URL, 53.1624, -27.7914, "XDF0001")
    assert "ra=53.162400" in url and "dec=-27.791400" in url and url.startswith("https://")
    assert viewer_url("https://x/?id={id}&r={ra:.2f}", 1.234, 5.0, "G7") == "https://x/?id=G7&r=1.23"
    with pytest.raises(ValueError, match="not valid"):
        viewer_url("https://x/?q={name}", 1.0, 2.0)


def test_inspector_ra_dec_under_the_cursor_from_an_ingested_wcs(qtbot, tmp_path):
    """A FITS stamp with a rotated TAN WCS, ingested (32 -> 16 px): the readout's ra/dec at
    each stored pixel is astropy's for the input pixel it came from."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from xdf import PIXEL_SCALE, XDF_CENTRE, xdf_stamps

    from galexplorer.data.ingest import IngestConfig, ingest
    from galexplorer.gui.inspector import Inspector
    from galexplorer.store import CutoutStore

    stamps, _ = xdf_stamps(1, 32)
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval, w.wcs.crpix = list(XDF_CENTRE), [1.0, 1.0]
    t = np.radians(35.0)
    w.wcs.cd = PIXEL_SCALE * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    (tmp_path / "in").mkdir()
    fits.PrimaryHDU(stamps[0], header=w.to_header()).writeto(tmp_path / "in" / "g1.fits")
    ingest([tmp_path / "in"], tmp_path / "c.h5", IngestConfig(size=16))
    ins = Inspector()
    qtbot.addWidget(ins)
    with CutoutStore(tmp_path / "c.h5") as cut:
        ins.set_sources(cut, None)
        ins.show_object(0, "g1", float(cut.objects.ra[0]), float(cut.objects.dec[0]))
        assert "0.12″/px" in ins.position.text()
        for x, y in [(0.5, 0.5), (15.5, 3.5), (8.0, 8.0), (2.25, 13.75)]:   # view coordinates, pixel i = [i, i+1)
            ra, dec = w.pixel_to_world_values((x - 0.5 + 0.5) * 2 - 0.5, (y - 0.5 + 0.5) * 2 - 0.5)
            text = ins.pixel_text(x, y)
            assert f"ra {float(ra):.6f}°  dec {float(dec):+.6f}°" in text, (text, ra, dec)
            got = ins.sky_at(x, y)
            assert got == pytest.approx((float(ra), float(dec)), abs=1e-9)
        ins._cutouts = None
