"""The explorer as a process: killed with SIGKILL while scoring by key presses it loses no
acknowledged score; ``galexplorer open --screenshot`` renders and exits, or fails with one
line and exit code 2 on a bad store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from gui_stores import build_store

from galexplorer.active.session import LabellingSession, open_store
from galexplorer.labels import LabelJournal

pytestmark = pytest.mark.gui
TESTS = Path(__file__).parent

SCORER = textwrap.dedent("""
    import os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6 import QtCore, QtTest
    from galexplorer.gui.app import application, settle
    from galexplorer.gui.main_window import MainWindow
    from galexplorer.gui.settings import Settings

    app = application()
    w = MainWindow(Settings(), user="killer")
    w.resize(1200, 800)
    w.show()
    w.load(sys.argv[1])
    settle(w)
    # the acknowledgement: printed once the journal has committed the score
    w.explorer.scored.connect(lambda oid, s: print(f"ACK {oid} {s}", flush=True))
    keys = [getattr(QtCore.Qt.Key, f"Key_{s}") for s in range(6)]
    count = [0]

    def press():
        QtTest.QTest.keyClick(w, keys[count[0] % 6])
        count[0] += 1

    timer = QtCore.QTimer()
    timer.timeout.connect(press)
    timer.start(3)
    app.exec()
""")


def _env(tmp_path: Path) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", GALEXPLORER_SETTINGS_DIR=str(tmp_path / "settings"))
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    return env


def test_sigkill_while_scoring_loses_no_acknowledged_score(tmp_path):
    store = build_store(tmp_path / "store.h5", 300)
    proc = subprocess.Popen([sys.executable, "-c", SCORER, str(store)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=_env(tmp_path))
    acked: list[tuple[str, int]] = []
    t0 = time.monotonic()
    try:
        while len(acked) < 40 and time.monotonic() - t0 < 60:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("ACK "):
                _, oid, s = line.split()
                acked.append((oid, int(s)))
    finally:
        os.kill(proc.pid, signal.SIGKILL)   # mid-stream: the next key press is on its way
        proc.wait()
    assert len(acked) >= 25, f"the app did not get going ({len(acked)} scores acknowledged)"
    last = dict(acked)
    with LabelJournal.for_store(store, readonly=True) as j:
        cur = j.current("killer")
    for oid, s in last.items():
        assert cur.get(oid) == s, f"acknowledged score {oid}={s} lost (journal has {cur.get(oid)})"
    # reopening resumes: every acknowledged label is there, and the session continues after them
    session = LabellingSession(open_store(store), user="killer")
    try:
        labelled = {session.ids[i] for i in session.labelled_indices()}
        assert set(last) <= labelled
        assert session.current is not None and session.ids[session.current] not in last
    finally:
        session.close()


def test_screenshot_mode_renders_and_exits(tmp_path):
    store = build_store(tmp_path / "store.h5", 200)
    shot = tmp_path / "shot.png"
    run = subprocess.run([sys.executable, "-m", "galexplorer", "open", str(store), "--screenshot", str(shot)],
                         capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert run.returncode == 0, run.stderr
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    from PySide6 import QtGui

    img = QtGui.QImage(str(shot))
    assert (img.width(), img.height()) == (1600, 1000)


@pytest.mark.parametrize("content, words", [("not a store", "not an HDF5 file"), (None, "no such file")])
def test_screenshot_of_a_bad_store_is_one_line_and_exit_2(tmp_path, content, words):
    bad = tmp_path / "bad.h5"
    if content is not None:
        bad.write_text(content)
    run = subprocess.run([sys.executable, "-m", "galexplorer", "open", str(bad), "--screenshot",
                          str(tmp_path / "x.png")], capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in run.stderr
    assert not (tmp_path / "x.png").exists()
