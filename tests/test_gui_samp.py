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
