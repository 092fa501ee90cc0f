"""A round trip over SAMP with the real TOPCAT, DS9 and Aladin, under Xvfb.

For each program that is installed (Debian: ``apt-get install xvfb xdotool topcat saods9 aladin
xpa-tools x11-apps imagemagick``), the script starts it on a private X display (Xvfb) with a
private home folder, waits until it registers on the SAMP hub, drives galexplorer's own window
(offscreen Qt: the explorer's actions, controller and ``galexplorer.gui.samp.SampSender``, not a
re-implementation), checks the result **from the program's side, by the program's own means**,
stops what it started, and prints one line per client: sent, received, checked.

* **TOPCAT** (hub: ours, a pyvo ``SAMPHubServer``):
  - the selected candidates go out as ``table.load.votable``; TOPCAT's copy is read back with
    TOPCAT's own ``table.get.stil`` (TOPCAT writes the table it holds): every column, every value,
    the same as the VOTable galexplorer wrote (NaN = NaN);
  - a new selection in galexplorer goes out as ``table.select.rowList``; TOPCAT adds it as a row
    subset named after us; the script chooses that subset in TOPCAT's "Row Subset" box (xdotool),
    and ``table.get.stil`` then returns exactly the rows of the selected objects;
  - in TOPCAT, the "Send row index" activation action is switched on and a row is clicked in
    TOPCAT's table browser (xdotool): **TOPCAT itself** sends ``table.highlight.row``, and
    galexplorer's inspector opens that object.
* **DS9**: the inspected object's cutout (FITS, one HDU per band, its WCS) as
  ``image.load.fits``, then ``coord.pointAt.sky``; checked with DS9's own answers to SAMP
  ``ds9.get`` (``file``, ``pan wcs fk5 degrees``) and with XPA (``xpaget ds9 fits header``).
* **Aladin** (started with ``-local``: offline, as here): the same cutout and position; checked
  with Aladin's answer to ``coord.get.sky`` and its own ``status`` report (``script.aladin.send``;
  Aladin prints it on its console: the plane's name, file, size and pixel scale).
* **TOPCAT's hub**: TOPCAT alone, started with no hub running, starts its own; galexplorer joins
  it, sends the table, and TOPCAT's ``table.get.stil`` copy is checked as above.

With ``--screenshots DIR``, each program's window is saved as PNG (``xwd`` under Xvfb), and
galexplorer's window after TOPCAT's highlight.

The TOPCAT clicks are positions in TOPCAT 4.8's windows (Debian's ``topcat`` 4.8.7) on a
1280x1024 Xvfb screen without a window manager: another version may lay its windows out
differently; the check then fails and says which step.

Run:  python benchmarks/interop_samp.py [--quick] [--only topcat,ds9,aladin,topcat-hub]
      [--screenshots docs/images]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402

#: the SAMP names the programs register under
SAMP_NAMES = {"topcat": "topcat", "ds9": "SAOImageDS9", "aladin": "Aladin"}
#: the executables each needs
NEEDS = {"topcat": ("topcat", "xdotool"), "ds9": ("ds9", "xpaget"), "aladin": ("aladin",)}
CLIENTS = ("topcat", "ds9", "aladin", "topcat-hub")
SCREEN = (1280, 1024)


class InteropError(RuntimeError):
    """A step of the round trip failed: the message says which, and what was seen."""


def missing(client: str) -> list[str]:
    """The executables ``client`` (a name of :data:`CLIENTS`) needs that are not installed."""
    need = ("Xvfb", "xwd") + NEEDS["topcat" if client == "topcat-hub" else client]
    return [exe for exe in need if shutil.which(exe) is None]


# -- the desktop: Xvfb, a private home, the hub ---------------------------------------------------
class Desktop:
    """An Xvfb display and a home folder of its own; the programs started on it are stopped on
    :meth:`close` (each in its own process group)."""

    def __init__(self, work: Path):
        self.work = work
        self.home = work / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.lockfile = self.home / ".samp"
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        r, w = os.pipe()
        self.xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                                      "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            raise InteropError("Xvfb did not start")
        self.display = f":{number}"
        self.env = dict(os.environ, DISPLAY=self.display, HOME=str(self.home),
                        SAMP_HUB="std-lockurl:" + self.lockfile.as_uri())
        self.env.pop("QT_QPA_PLATFORM", None)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = self.work / f"{name}.log"
        self.logs[name] = log
        p = subprocess.Popen(argv, env=self.env, cwd=self.work, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace") if name in self.logs else ""

    def run(self, argv: list[str], timeout: float = 20) -> str:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=True).stdout

    def window(self, pattern: str, timeout: float = 30) -> str:
        """The X id of the first window whose name matches ``pattern`` (a regex)."""
        deadline = time.monotonic() + timeout
        while True:
            out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", pattern], env=self.env,
                                 capture_output=True, text=True).stdout.split()
            if out:
                return out[0]
            if time.monotonic() > deadline:
                raise InteropError(f"no window named {pattern!r} appeared in {timeout:g} s")
            time.sleep(0.3)

    def click(self, x: int, y: int, raise_window: str | None = None, pause: float = 0.8) -> None:
        """Click at screen position (x, y), after raising ``raise_window`` (no window manager
        here: the programs' windows overlap at the screen's corner)."""
        if raise_window is not None:
            self.run(["xdotool", "windowraise", raise_window])
            time.sleep(0.3)
        self.run(["xdotool", "mousemove", str(x), str(y), "click", "1"])
        time.sleep(pause)

    def keys(self, *keys: str, pause: float = 0.8) -> None:
        self.run(["xdotool", "key", *keys])
        time.sleep(pause)

    def screenshot(self, path: Path, window: str | None = None, crop: tuple[int, int, int, int] | None = None) -> Path:
        """The screen (or a window, raised first) as PNG: ``xwd`` piped to ImageMagick's ``convert``."""
        if window is not None:
            self.run(["xdotool", "windowraise", window])
            time.sleep(0.8)
        xwd = subprocess.run(["xwd", "-silent"] + (["-id", window] if window else ["-root"]), env=self.env,
                             capture_output=True, timeout=20, check=True).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        args = ["convert", "xwd:-"] + (["-crop", "{2}x{3}+{0}+{1}".format(*crop)] if crop else []) + [str(path)]
        subprocess.run(args, input=xwd, check=True, timeout=30)
        return path

    def close(self) -> None:
        for p in list(self.procs.values()) + [self.xvfb]:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for p in list(self.procs.values()) + [self.xvfb]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)


def start_program(desk: Desktop, client: str) -> None:
    home = f"-Duser.home={desk.home}"     # Java reads ~ from user.home, not $HOME
    if client in ("topcat", "topcat-hub"):
        desk.start("topcat", ["topcat", home])
    elif client == "ds9":
        desk.start("ds9", ["ds9"])
    elif client == "aladin":
        jar = Path("/usr/share/java/aladin.jar")
        argv = (["java", home, "-Xmx1024m", "-jar", str(jar)] if jar.exists() else ["aladin"])
        # -local: no Internet (here there is none: without it Aladin's SAMP handler fails)
        desk.start("aladin", argv + ["-local", "-noreleasetest", "-nolog", "-noplugin"])


class Probe:
    """A SAMP client of the script's own that asks the programs about their state (TOPCAT's
    ``table.get.stil``, DS9's ``ds9.get``, Aladin's ``coord.get.sky``): it only carries the
    questions, the answers are the programs'."""

    def __init__(self):
        from pyvo.samp import SAMPIntegratedClient

        self.client = SAMPIntegratedClient(name="interop-check")
        self.client.connect()

    def ids(self) -> dict[str, str]:
        out = {}
        for cid in self.client.get_registered_clients():
            try:
                out[str(self.client.get_metadata(cid).get("samp.name"))] = cid
            except Exception:   # a client that just left
                continue
        return out

    def wait_for(self, samp_name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            cid = self.ids().get(samp_name)
            if cid is not None:
                return cid
            if time.monotonic() > deadline:
                raise InteropError(f"{samp_name} did not register on the SAMP hub within {timeout:g} s")
            time.sleep(0.5)

    def call(self, cid: str, mtype: str, params: dict, timeout: int = 20) -> dict:
        r = self.client.call_and_wait(cid, {"samp.mtype": mtype, "samp.params": params}, str(int(timeout)))
        if r.get("samp.status") != "samp.ok":
            raise InteropError(f"{mtype}: {r.get('samp.error', {}).get('samp.errortxt', r)}")
        return r.get("samp.result", {})

    def notify(self, cid: str, mtype: str, params: dict) -> None:
        self.client.notify(cid, {"samp.mtype": mtype, "samp.params": params})

    def close(self) -> None:
        try:
            self.client.disconnect()
        except Exception:
            pass


# -- galexplorer's side: a store with real pixels and a WCS, the window ----------------------------
def build_store(work: Path, n: int) -> Path:
    """A store of ``n`` real XDF galaxies, 64 px, 3 bands, with ra/dec and each stamp's WCS."""
    from gui_stores import build_store as build
    from xdf import BANDS, PIXEL_SCALE, xdf_radec, xdf_sources, xdf_stamps

    from galexplorer.data.thumbnails import make_thumbnails
    from galexplorer.store import CutoutWriter

    size = 64
    stamps, ids = xdf_stamps(n, size)
    yx = xdf_sources()[:n]
    ra, dec = xdf_radec(yx[:, 0], yx[:, 1])
    peak = stamps[:, :, size // 2 - 3:size // 2 + 3, size // 2 - 3:size // 2 + 3].mean(axis=(1, 2, 3))
    cut = work / "xdf-cutouts.h5"
    with CutoutWriter(cut, bands=BANDS, size=size, thumb_size=32) as w:
        w.add(stamps, ids, ra=ra, dec=dec, columns={"peak": peak.astype(np.float32)},
              thumbnails=make_thumbnails(stamps, BANDS, 32))
        # xdf_radec: ra falls with x, dec falls with y (row): east left, north up in the stamp's rows
        w.add_sky_geometry(np.repeat(np.array([[[-PIXEL_SCALE, 0.0], [0.0, -PIXEL_SCALE]]]), n, 0),
                           np.tile([size // 2, size // 2], (n, 1)).astype(np.float64))
    return build(work / "xdf-store.h5", n, cutouts=cut)


@dataclass
class Explorer:
    """galexplorer's window (offscreen Qt) on a store, driven through its actions."""

    store: Path
    window: object = None
    highlighted: list = field(default_factory=list)

    def __post_init__(self):
        from PySide6 import QtCore

        from galexplorer.gui.app import application, settle
        from galexplorer.gui.main_window import MainWindow
        from galexplorer.gui.settings import Settings

        folder = os.environ["GALEXPLORER_SETTINGS_DIR"]     # never the user's settings
        QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, folder)
        self.app = application()
        self.window = MainWindow(Settings(), user="interop")
        self.window.resize(1400, 900)
        self.window.show()
        self.window.load(self.store)
        settle(self.window)
        self.window.sampHighlighted.connect(lambda i, who: self.highlighted.append((i, who)))

    @property
    def ex(self):
        return self.window.explorer

    def pump(self, cond, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise InteropError(f"timed out after {timeout:g} s waiting for {what}; status bar: "
                                   f"{self.status()!r}")
            self.app.processEvents()
            time.sleep(0.02)

    def status(self) -> str:
        return self.window.statusBar().currentMessage()

    def send_selection(self, indices: np.ndarray, timeout: float = 60) -> str:
        self.ex.select(np.asarray(indices, np.int64))
        self.window.act["samp"].trigger()
        self.pump(lambda: self.status().startswith(("sent ", "not sent")), "the SAMP send's report", timeout)
        return self.status()

    def send_cutout(self, i: int, timeout: float = 60) -> str:
        self.ex.open(int(i))
        self.pump(lambda: self.ex.current == int(i), "the object in the inspector")
        self.window.act["samp_cutout"].trigger()
        self.pump(lambda: self.status().startswith(("sent cutout", "not sent")), "the cutout's report", timeout)
        return self.status()

    def last_table(self) -> tuple[str, np.ndarray]:
        """(url, store index per row) of the last table galexplorer sent."""
        s = self.window.samp.sender
        with s._lock:
            url, order = s._tables[next(reversed(s._tables))]
        return url, order

    def grab(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.window.grab().save(str(path))
        return path

    def close(self) -> None:
        self.window.close()
        self.app.processEvents()


# -- checks -----------------------------------------------------------------------------------------
def _read_votable(url: str):
    from astropy.table import Table

    if url.startswith("file:"):
        return Table.read(urllib.request.url2pathname(url.removeprefix("file://")), format="votable")
    with urllib.request.urlopen(url, timeout=20) as r, tempfile.NamedTemporaryFile(suffix=".xml") as f:
        f.write(r.read())
        f.flush()
        return Table.read(f.name, format="votable")


def same_tables(ours, theirs) -> list[str]:
    """The differences between two astropy tables (column names, order, every value; NaN = NaN)."""
    if ours.colnames != theirs.colnames:
        return [f"columns differ: {ours.colnames} vs {theirs.colnames}"]
    if len(ours) != len(theirs):
        return [f"{len(ours)} rows vs {len(theirs)}"]
    bad = []
    for name in ours.colnames:
        a, b = np.asarray(ours[name]), np.asarray(theirs[name])
        a = a.filled() if hasattr(a, "filled") else a
        b = b.filled() if hasattr(b, "filled") else b
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            ok = (a.dtype == b.dtype) and np.array_equal(a64, b64, equal_nan=True)
        else:
            ok = a.dtype.kind == b.dtype.kind and np.array_equal(a.astype(str), b.astype(str))
        if not ok:
            bad.append(f"{name} ({a.dtype} vs {b.dtype}): {a[:3]} vs {b[:3]}")
    return bad


def loaded(line: str) -> list[str]:
    """The clients that galexplorer's status line says loaded what it sent."""
    head = line.split(";")[0]
    return head.split(" over SAMP to ", 1)[1].split(", ") if " over SAMP to " in head else []


def topcat_table(probe: Probe, cid: str, timeout: float = 30):
    """The table TOPCAT holds now (its current subset applied), as TOPCAT writes it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            url = probe.call(cid, "table.get.stil", {"format": "votable"})["url"]
            return _read_votable(url)
        except InteropError as exc:          # "No current table": TOPCAT still loading
            if time.monotonic() > deadline:
                raise InteropError(f"TOPCAT's table.get.stil: {exc}") from None
            time.sleep(0.5)


# TOPCAT 4.8 control window on a 1280x1024 screen, no window manager (see the module's note)
TOPCAT_SUBSET_BOX = (404, 217)      # "Row Subset" combo box
TOPCAT_ACTIVATION_BUTTON = (340, 40)  # toolbar: Activation Actions
TOPCAT_TABLE_BUTTON = (161, 40)       # toolbar: Table Data (the table browser)
TOPCAT_SEND_ROW_INDEX = (99, 361)    # Activation window: "Send row index" check box
TOPCAT_ACTIVATION_CLOSE = (515, 100)  # Activation window: close
TOPCAT_FIRST_ROW = (125, 172)        # table browser: the first row's id cell
TOPCAT_ROW_HEIGHT = 17


@dataclass
class Result:
    client: str
    sent: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    failed: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        head = f"{self.client:<11} {self.seconds:5.1f} s"
        if self.failed.startswith("skipped"):
            return f"{head}  {self.failed}"
        if self.failed:
            return f"{head}  FAILED: {self.failed}\n{'':19}sent: {'; '.join(self.sent) or '-'}"
        return (f"{head}  sent: {'; '.join(self.sent)}\n{'':19}received: {'; '.join(self.received) or '-'}\n"
                f"{'':19}checked: {'; '.join(self.checked)}")


def run_topcat(desk: Desktop, probe: Probe, gx: Explorer, res: Result, shots: Path | None, n_send: int) -> None:
    cid = probe.wait_for("topcat", 90)
    main = desk.window("^TOPCAT$", 60)
    ex = gx.ex
    sel = np.arange(n_send)
    line = gx.send_selection(sel)
    res.sent.append(f"table.load.votable ({n_send} rows) -> {line!r}")
    if "topcat" not in loaded(line):
        raise InteropError(f"TOPCAT did not answer the table: {line!r}")
    url, order = gx.last_table()
    ours = _read_votable(url)
    theirs = topcat_table(probe, cid)
    diff = same_tables(ours, theirs)
    if diff:
        raise InteropError("TOPCAT's table differs from ours: " + "; ".join(diff[:4]))
    res.checked.append(f"TOPCAT's table.get.stil copy = ours: {len(theirs)} rows x {len(theirs.colnames)} "
                       f"columns, every value")

    # a selection in galexplorer -> TOPCAT's row subset
    chosen = order[1::2][:4]                      # rows 1, 3, 5, 7 of the table
    ex.select(chosen)
    gx.pump(lambda: gx.status().startswith(("selected ", "not sent", "the selection")), "the row selection")
    res.sent.append(f"table.select.rowList ({len(chosen)} rows) -> {gx.status()!r}")
    desk.click(*TOPCAT_SUBSET_BOX, raise_window=main)
    desk.keys("End", "Return")                  # the last subset: the one just received
    sub = topcat_table(probe, cid)
    want = [str(v) for v in ours["id"][np.isin(order, chosen)]]
    got = [str(v) for v in sub["id"]]
    if got != want:
        raise InteropError(f"TOPCAT's subset holds {got}, not the selected {want}")
    res.checked.append(f"TOPCAT's subset 'galexplorer' applied, table.get.stil = the {len(got)} selected rows")

    # TOPCAT itself highlights a row: "Send row index" on, a click in its table browser
    desk.click(*TOPCAT_ACTIVATION_BUTTON, raise_window=main)
    activation = desk.window("Activation Actions", 20)
    desk.click(*TOPCAT_SEND_ROW_INDEX, raise_window=activation)
    if shots:
        desk.screenshot(shots / "samp-topcat-activation.png", crop=(0, 0, 720, 640))
    desk.click(*TOPCAT_ACTIVATION_CLOSE, raise_window=activation)
    desk.click(*TOPCAT_TABLE_BUTTON, raise_window=main)
    browser = desk.window("Table Browser", 20)
    k = min(2, len(got) - 1)
    desk.click(TOPCAT_FIRST_ROW[0], TOPCAT_FIRST_ROW[1] + k * TOPCAT_ROW_HEIGHT, raise_window=browser)
    expect = int(ex.index_of(got[k]))
    gx.pump(lambda: ex.current == expect, f"TOPCAT's highlight of row {k} ({got[k]}) in galexplorer's inspector", 20)
    gx.pump(lambda: gx.highlighted, "the highlight's sender")
    res.received.append(f"table.highlight.row from {gx.highlighted[-1][1]} (a click on {got[k]} in its table browser)")
    if gx.window.inspector.index != expect:
        raise InteropError(f"the inspector shows {gx.window.inspector.index}, not {expect}")
    res.checked.append(f"galexplorer's inspector opened {got[k]}")
    if shots:
        desk.screenshot(shots / "samp-topcat.png", crop=(0, 0, 820, 320))
        desk.screenshot(shots / "samp-topcat-browser.png", window=browser)
        gx.grab(shots / "samp-galexplorer-highlight.png")


def run_image_viewer(desk: Desktop, probe: Probe, gx: Explorer, res: Result, shots: Path | None, client: str,
                     obj: int) -> None:
    name = SAMP_NAMES[client]
    cid = probe.wait_for(name, 90)
    time.sleep(3 if client == "aladin" else 1)   # Aladin answers before its windows are ready
    ex = gx.ex
    oid = ex.object_id(obj)
    ra, dec = ex.position(obj)
    line = gx.send_cutout(obj)
    res.sent.append(f"image.load.fits (cutout of {oid}) + coord.pointAt.sky ({ra:.6f}, {dec:+.6f}) -> {line!r}")
    if name not in loaded(line):
        raise InteropError(f"{name} did not answer the image: {line!r}")
    if client == "ds9":
        time.sleep(1.5)
        path = probe.call(cid, "ds9.get", {"cmd": "file"})["value"].strip()
        if not re.search(rf"galexplorer-cutout-{obj}-\d+\.fits", path):
            raise InteropError(f"DS9 shows {path!r}, not the cutout galexplorer wrote")
        pan = [float(v) for v in probe.call(cid, "ds9.get", {"cmd": "pan wcs fk5 degrees"})["value"].split()]
        if abs(pan[0] - ra) * np.cos(np.radians(dec)) * 3600 > 0.01 or abs(pan[1] - dec) * 3600 > 0.01:
            raise InteropError(f"DS9 is panned to {pan}, not ({ra}, {dec})")
        header = desk.run(["xpaget", "ds9", "fits", "header"])
        ctype = re.search(r"CTYPE1\s*=\s*'([^']+)'", header)
        objcard = re.search(r"OBJECT\s*=\s*'([^']+?)\s*'", header)
        if not ctype or ctype.group(1).strip() != "RA---TAN" or not objcard or objcard.group(1) != oid:
            raise InteropError("DS9's FITS header lacks our WCS or OBJECT: " + header[:300])
        res.checked.append(f"DS9 ds9.get file = {Path(path).name}; pan wcs = {pan[0]:.7f} {pan[1]:+.7f} "
                           f"(within 0.01\"); xpaget fits header: OBJECT {oid}, CTYPE1 RA---TAN")
        if shots:        # the 64 px stamp fills DS9's frame (DS9's own zoom, over SAMP)
            probe.call(cid, "ds9.set", {"cmd": "zoom to fit"})
            desk.screenshot(shots / "samp-ds9.png", window=desk.window("SAOImage", 10))
    else:
        sky = probe.call(cid, "coord.get.sky", {})
        got = float(sky["ra"]), float(sky["dec"])
        if abs(got[0] - ra) * np.cos(np.radians(dec)) * 3600 > 0.5 or abs(got[1] - dec) * 3600 > 0.5:
            raise InteropError(f"Aladin's coord.get.sky is {got}, not ({ra}, {dec})")
        before = len(desk.log("aladin"))
        probe.notify(cid, "script.aladin.send", {"script": "status"})
        deadline = time.monotonic() + 15
        while "PixelRes" not in desk.log("aladin")[before:] and time.monotonic() < deadline:
            time.sleep(0.3)
        report = desk.log("aladin")[before:]
        # Aladin's status: one block per plane, "PlaneID <name>" then "Key value" lines
        block = next((b for b in re.split(r"\n(?=PlaneID )", report) if b.startswith(f'PlaneID "cutout of {oid} (')),
                     "")
        plane = re.search(r'PlaneID\s+"([^"]+)"', block)
        kind = re.search(r"Type\s+(\w+)", block)
        url = re.search(r"Url\s+(\S+)", block)
        width = re.search(r"Width\s+(\d+)", block)
        pixres = re.search(r"PixelRes\s+([\d.]+)mas", block)
        if not (plane and kind and kind.group(1) == "Image" and url and f"galexplorer-cutout-{obj}-" in url.group(1)
                and width and int(width.group(1)) == gx.window.cutouts.size and pixres):
            raise InteropError(f"Aladin's status shows no image plane of our cutout of {oid}: " + report[:600])
        res.checked.append(f"Aladin coord.get.sky = {got[0]:.5f} {got[1]:+.5f}; Aladin's status: plane "
                           f"\"{plane.group(1)}\", {width.group(1)} px, {pixres.group(1)} mas/px")
        if shots:
            desk.screenshot(shots / "samp-aladin.png", window=desk.window("Aladin", 10))


def run_topcat_hub(work: Path, res: Result, n_send: int, store: Path) -> None:
    """TOPCAT alone, no hub running: it starts one; galexplorer joins it."""
    desk = Desktop(work / "topcat-hub")
    gx = probe = None
    try:
        start_program(desk, "topcat")
        deadline = time.monotonic() + 90
        while not desk.lockfile.exists():
            if time.monotonic() > deadline:
                raise InteropError("TOPCAT started no hub within 90 s")
            time.sleep(0.5)
        if "hub.impl=org.astrogrid.samp" not in desk.lockfile.read_text():
            raise InteropError("the hub's lock file is not JSAMP's (TOPCAT's)")
        res.received.append("a hub started by TOPCAT (JSAMP, lock file in its home)")
        os.environ["SAMP_HUB"] = desk.env["SAMP_HUB"]
        probe = Probe()
        cid = probe.wait_for("topcat", 90)
        gx = Explorer(store)
        line = gx.send_selection(np.arange(n_send))
        res.sent.append(f"table.load.votable ({n_send} rows) through TOPCAT's hub -> {line!r}")
        if "topcat" not in loaded(line):
            raise InteropError(f"TOPCAT did not answer the table: {line!r}")
        url, _ = gx.last_table()
        diff = same_tables(_read_votable(url), theirs := topcat_table(probe, cid))
        if diff:
            raise InteropError("TOPCAT's table differs from ours: " + "; ".join(diff[:4]))
        res.checked.append(f"TOPCAT's table.get.stil copy = ours ({len(theirs)} rows x {len(theirs.colnames)} "
                           "columns)")
    finally:
        if gx is not None:
            gx.close()
        if probe is not None:
            probe.close()
        desk.close()


def run(clients: list[str], n: int = 48, n_send: int = 12, screenshots: Path | None = None,
        work: Path | None = None) -> list[Result]:
    """The round trips of ``clients`` (names of :data:`CLIENTS`); the programs not installed are
    reported as skipped. Returns one :class:`Result` per client."""
    from pyvo.samp import SAMPHubServer

    own = work is None
    work = Path(tempfile.mkdtemp(prefix="galexplorer-interop-")) if own else Path(work)
    os.environ.setdefault("GALEXPLORER_SETTINGS_DIR", str(work / "settings"))
    results = {c: Result(c) for c in clients}
    for c in clients:
        if missing(c):
            results[c].failed = f"skipped: not installed: {', '.join(missing(c))}"
    live = [c for c in clients if not results[c].failed]
    store = build_store(work, n)
    shared = [c for c in live if c != "topcat-hub"]
    if shared:
        desk = Desktop(work / "own-hub")
        hub = SAMPHubServer(web_profile=False, lockfile=str(desk.lockfile), pool_size=4)
        hub.start()
        os.environ["SAMP_HUB"] = desk.env["SAMP_HUB"]
        gx = probe = None
        try:
            for c in shared:
                start_program(desk, c)
            probe = Probe()
            gx = Explorer(store)
            for c in shared:
                res, t0 = results[c], time.monotonic()
                try:
                    if c == "topcat":
                        run_topcat(desk, probe, gx, res, screenshots, n_send)
                    else:
                        run_image_viewer(desk, probe, gx, res, screenshots, c, obj=5 if c == "ds9" else 7)
                except (InteropError, subprocess.SubprocessError, OSError) as exc:
                    res.failed = str(exc)
                    if screenshots:
                        desk.screenshot(screenshots / f"failed-{c}.png")
                res.seconds = time.monotonic() - t0
        finally:
            if gx is not None:
                gx.close()
            if probe is not None:
                probe.close()
            desk.close()
            hub.stop()
    if "topcat-hub" in live:
        res, t0 = results["topcat-hub"], time.monotonic()
        try:
            run_topcat_hub(work, res, n_send, store)
        except (InteropError, subprocess.SubprocessError, OSError) as exc:
            res.failed = str(exc)
        res.seconds = time.monotonic() - t0
    if own:
        shutil.rmtree(work, ignore_errors=True)
    return [results[c] for c in clients]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(CLIENTS), help=f"comma-separated, of {', '.join(CLIENTS)}")
    ap.add_argument("--screenshots", type=Path, default=None, help="save each program's window as PNG here")
    ap.add_argument("--quick", action="store_true", help="fewer objects (24, 8 sent)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (logs)")
    args = ap.parse_args()
    clients = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in clients if c not in CLIENTS]
    if unknown:
        print(f"unknown client(s) {unknown}; choose from {', '.join(CLIENTS)}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = run(clients, n=24 if args.quick else 48, n_send=8 if args.quick else 12,
                  screenshots=args.screenshots, work=args.keep)
    for r in results:
        print(r.line())
    ok = sum(not r.failed for r in results)
    skipped = sum(r.failed.startswith("skipped") for r in results)
    print(f"{ok}/{len(results)} round trips checked from the programs' side"
          + (f" ({skipped} skipped: not installed)" if skipped else "")
          + f" in {time.monotonic() - t0:.0f} s (target: <= 180 s)")
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    threading.current_thread().name = "interop"
    sys.exit(main())
