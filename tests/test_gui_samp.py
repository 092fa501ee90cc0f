"""The selection goes to TOPCAT/DS9/Aladin over SAMP: a hub and a listening client run in the
test; the explorer broadcasts the selection as a VOTable."""

from __future__ import annotations

import time

import gui_qt
import numpy as np
import pytest
from gui_qt import open_window
from gui_stores import build_store

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("no_leaks")]
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks


@pytest.fixture
def samp_hub(tmp_path, monkeypatch):
    from pyvo.samp import SAMPHubServer

    lock = tmp_path / "samp-hub"
    hub = SAMPHubServer(web_profile=False, lockfile=str(lock), pool_size=2)
    hub.start()
    monkeypatch.setenv("SAMP_HUB", "std-lockurl:" + lock.as_uri())
    yield hub
    hub.stop()


def test_selection_is_broadcast_as_votable(qtbot, tmp_path, gui_settings, samp_hub):
    from astropy.table import Table
    from pyvo.samp import SAMPIntegratedClient

    received = []
    listener = SAMPIntegratedClient(name="listener")
    listener.connect()

    def on_call(key, sender, msg_id, mtype, params, extra):   # a call: the explorer waits for the answer
        received.append(params)
        listener.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    listener.bind_receive_call("table.load.votable", on_call)
    try:
        store = build_store(tmp_path / "store.h5", 120)
        w = open_window(qtbot, store, gui_settings)
        ex = w.explorer
        ex.select(np.arange(5, 17))
        w.act["samp"].trigger()
        ex.wait_idle(30)
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            qtbot.wait(20)
        assert received, "no table arrived over SAMP"
        path = received[0]["url"].removeprefix("file://")
        t = Table.read(path, format="votable")
        assert sorted(t["id"]) == sorted(ex.session.ids[5:17].tolist())
        assert {"ra", "dec", "score_mean"} <= set(t.colnames)
        deadline = time.monotonic() + 10
        while "sent 12 objects over SAMP to listener" not in w.statusBar().currentMessage() \
                and time.monotonic() < deadline:
            qtbot.wait(20)
        assert w.statusBar().currentMessage() == "sent 12 objects over SAMP to listener"
        w.close()
    finally:
        listener.disconnect()


class TableViewer:
    """A pyvo client that plays TOPCAT's part: loads tables, keeps the selections it is sent,
    and can highlight a row (``table.highlight.row``, as TOPCAT does on a click)."""

    def __init__(self):
        from pyvo.samp import SAMPIntegratedClient

        self.tables, self.selections, self.images, self.points = [], [], [], []
        self.client = SAMPIntegratedClient(name="viewer")
        self.client.connect()
        self.client.bind_receive_call("table.load.votable", self._on_call)
        self.client.bind_receive_call("image.load.fits", self._on_call)
        self.client.bind_receive_notification("table.select.rowList", self._on_note)
        self.client.bind_receive_notification("coord.pointAt.sky", self._on_note)

    def _on_call(self, key, sender, msg_id, mtype, params, extra):
        (self.tables if mtype.startswith("table") else self.images).append(params)
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    def _on_note(self, key, sender, mtype, params, extra):
        (self.selections if mtype.startswith("table") else self.points).append(params)

    def highlight(self, row: int):
        t = self.tables[-1]
        self.client.notify_all({"samp.mtype": "table.highlight.row",
                                "samp.params": {"table-id": t["table-id"], "url": t["url"], "row": str(row)}})

    def close(self):
        self.client.disconnect()


def _wait_for(qtbot, cond, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        qtbot.wait(20)


def test_selection_and_highlight_go_both_ways(qtbot, tmp_path, gui_settings, samp_hub):
    """The table sent, then a selection in the window selects the same objects' rows in the
    viewer's table; a row the viewer highlights opens that object in the inspector."""
    from astropy.table import Table

    viewer = TableViewer()
    try:
        store = build_store(tmp_path / "store.h5", 120)
        w = open_window(qtbot, store, gui_settings)
        ex = w.explorer
        ex.select(np.arange(5, 17))
        w.act["samp"].trigger()
        _wait_for(qtbot, lambda: viewer.tables, "the table")
        sent = viewer.tables[0]
        assert sent["table-id"].startswith("galexplorer-table-")
        ids = list(Table.read(sent["url"].removeprefix("file://"), format="votable")["id"])

        ex.select(np.array([7, 11, 40]))     # 40 is not in the table: no row for it
        _wait_for(qtbot, lambda: viewer.selections, "the row selection")
        sel = viewer.selections[-1]
        assert sel["table-id"] == sent["table-id"] and sel["url"] == sent["url"]
        assert sorted(ids[int(r)] for r in sel["row-list"]) == sorted(ex.session.ids[[7, 11]].tolist())

        row = ids.index(ex.session.ids[13])
        viewer.highlight(row)
        _wait_for(qtbot, lambda: ex.current == 13, "the highlighted object in the inspector")
        assert w.inspector.index == 13
        assert w.statusBar().currentMessage() == f"{ex.object_id(13)}: highlighted in viewer over SAMP"
        w.close()
    finally:
        viewer.close()


def test_select_rows_before_any_table_says_so(tmp_path, samp_hub):
    from galexplorer.gui.samp import SampError, SampSender

    s = SampSender()
    with pytest.raises(SampError, match="no table was sent over SAMP yet"):
        s.select_rows(np.arange(3))
    s.close()


def test_highlight_of_a_row_not_ours_is_ignored():
    from galexplorer.gui.samp import SampSender

    s = SampSender()
    s._tables["galexplorer-table-1"] = ("file:///t.xml", np.array([30, 10, 20]))
    assert s.object_at({"table-id": "galexplorer-table-1", "row": "2"}) == 20
    assert s.object_at({"url": "file:///t.xml", "row": "0"}) == 30
    assert s.object_at({"table-id": "galexplorer-table-1", "row": "3"}) is None
    assert s.object_at({"table-id": "someone-else", "url": "file:///other.xml", "row": "0"}) is None
    assert s.object_at({"table-id": "galexplorer-table-1", "row": "x"}) is None


def _cutouts_with_wcs(path, n=4, size=32):
    from galexplorer.data.thumbnails import make_thumbnails
    from galexplorer.store import CutoutWriter

    rng = np.random.default_rng(1)
    images = rng.normal(0, 1, (n, 2, size, size)).astype(np.float32)
    scale = 0.06 / 3600
    cd = np.repeat((np.array([[-np.cos(0.3), np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]]) * scale)[None], n, 0)
    crpix = np.tile([15.5, 14.0], (n, 1))
    with CutoutWriter(path, bands=["f606w", "f814w"], size=size, thumb_size=16) as w:
        w.add(images, [f"obj{i}" for i in range(n)], ra=[53.1 + 0.01 * i for i in range(n)],
              dec=[-27.8] * n, thumbnails=make_thumbnails(images, ["f606w", "f814w"], 16))
        w.add_sky_geometry(cd, crpix)
    return path, images


def test_cutout_fits_has_the_pixels_and_the_inspectors_wcs(tmp_path):
    """astropy's WCS of the written file gives, at every pixel, the ra/dec that the stored local
    WCS gives (the inspector's, as ``Inspector.sky_at`` computes it)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from galexplorer.store import CutoutStore
    from galexplorer.store.cutout_fits import write_cutout_fits

    path, images = _cutouts_with_wcs(tmp_path / "c.h5")
    with CutoutStore(path) as cut:
        out = write_cutout_fits(cut, 2, tmp_path / "obj2.fits", 53.12, -27.8, "obj2", band=1)
        cd, crpix = cut.sky_geometry(2)
        with pytest.raises(ValueError, match=r"band 2 out of range: the cutouts have 2 bands \(f606w, f814w\)"):
            write_cutout_fits(cut, 2, tmp_path / "bad.fits", 53.12, -27.8, "obj2", band=2)
    with fits.open(out) as hdul:
        assert len(hdul) == 1       # one HDU: Aladin never answers a call for a multi-extension file
        assert hdul[0].header["FILTER"] == "f814w" and np.array_equal(hdul[0].data, images[2, 1])
        assert hdul[0].header["OBJECT"] == "obj2"
        wcs = WCS(hdul[0].header)
    ys, xs = np.mgrid[0:32:7, 0:32:5]
    ra, dec = wcs.all_pix2world(xs.ravel(), ys.ravel(), 0)
    # the inspector's gnomonic projection about (ra, dec) at crpix (0-based)
    xi, eta = np.radians(cd @ np.vstack([xs.ravel() - crpix[0], ys.ravel() - crpix[1]]))
    a0, d0 = np.radians(53.12), np.radians(-27.8)
    den = np.cos(d0) - eta * np.sin(d0)
    ra_ref = np.degrees(a0 + np.arctan2(xi, den))
    dec_ref = np.degrees(np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, den)))
    assert np.allclose(ra, ra_ref, atol=1e-9) and np.allclose(dec, dec_ref, atol=1e-9)
    assert wcs.all_world2pix([[53.12, -27.8]], 0)[0] == pytest.approx(crpix, abs=1e-6)


def test_cutout_goes_out_as_fits_then_the_position(qtbot, tmp_path, gui_settings, samp_hub):
    from astropy.io import fits

    viewer = TableViewer()
    try:
        cut, _ = _cutouts_with_wcs(tmp_path / "c.h5", n=40)
        store = build_store(tmp_path / "store.h5", 40, cutouts=cut)
        w = open_window(qtbot, store, gui_settings)
        ex = w.explorer
        ex.open(3)
        w.inspector.band.setCurrentIndex(2)          # the second band shown: that band is sent
        shown = []                                   # every status message (a later one may replace it)
        w.statusBar().messageChanged.connect(shown.append)
        w.act["samp_cutout"].trigger()
        _wait_for(qtbot, lambda: viewer.images and viewer.points, "the image and the position")
        img = viewer.images[0]
        with fits.open(img["url"].removeprefix("file://")) as hdul:
            assert hdul[0].header["OBJECT"] == ex.object_id(3)
            assert hdul[0].header["CTYPE1"] == "RA---TAN"
            assert hdul[0].header["FILTER"] == "f814w"
        ra, dec = ex.position(3)
        assert float(viewer.points[0]["ra"]) == pytest.approx(ra, abs=1e-8)
        assert float(viewer.points[0]["dec"]) == pytest.approx(dec, abs=1e-8)
        _wait_for(qtbot, lambda: f"sent cutout of {ex.object_id(3)} (f814w) over SAMP to viewer" in shown,
                  "the status line")
        w.close()
    finally:
        viewer.close()
