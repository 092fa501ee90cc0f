"""A scripted labelling session in the real explorer, under Xvfb (issue #23's acceptance).

``galexplorer open`` runs as its own process on a private X display (``xvfb-run``, a
1600x1000 screen, no window manager), and the script drives it as a user would, with xdotool:
it finds the window by its title, focuses it and

1. presses every key of the action table (``gui/actions.SHORTCUTS``) in a sensible order,
   closing every dialog a key opens with Esc (File ▸ Open, Export, Note, the large view, the
   shortcut help); Ctrl+Q comes last;
2. labels 30 objects with the number keys, then undoes the last one (Ctrl+Z);
3. zooms the inspector's image with the mouse wheel;
4. chooses every entry of the Colour box in turn (Down in the box);
5. starts a second labeller, ``galexplorer open --user bob`` on the same store, who labels 5,
   and then switches the first window to a third labeller through File ▸ Labeller… (carol,
   3 labels);
6. quits both windows with Ctrl+Q.

What it checks: the processes' stderr stays empty; after every step every control of the map's
tool bar is shown whole (the window writes where its widgets are to ``$GALEXPLORER_GEOMETRY``,
``gui/geometry_report.py``: X11 sees one window, not Qt's widgets); every dialog a key opened
closed on Esc; the journal holds the labels given (29, 5 and 3) and no exclusion (X was
undone); both processes exit with 0. It prints a summary and exits with 1 when a check fails.
Screenshots of the whole screen (ImageMagick ``import``) go to ``--screenshots``.

The store is built from the test suite's real XDF stamps (``tests/gui_stores.build_store``,
offline, a few seconds), or given with ``--store``.

Needs: ``apt-get install xvfb xdotool imagemagick`` and the libraries of Qt's xcb platform
plugin (Debian: ``libxcb-cursor0 libxcb-keysyms1 libxcb-icccm4 libxcb-image0 libxcb-render-util0
libxcb-xkb1 libxkbcommon-x11-0 libxcb-shape0``); ``$BROWSER`` is set to ``true`` for the
explorer, so V (the sky viewer) starts no browser.
Run:   python benchmarks/xvfb_session.py [--store STORE.h5] [--screenshots DIR] [--labels 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SCREEN = (1600, 1000)
NEEDS = ("xvfb-run", "Xvfb", "xdotool", "import")
#: Qt's key names (the action table's) as xdotool's keysyms
XKEYS = {"Left": "Left", "Right": "Right", "Space": "space", "Esc": "Escape", "Home": "Home", "?": "question",
         "F1": "F1", "F11": "F11"}
#: the keys that open a dialog or a second window (closed with Esc)
OPENS_WINDOW = ("open", "export", "note", "larger", "help")


class SessionError(RuntimeError):
    """A step of the session went wrong: the message says which, and what was seen."""


def xkey(qt_key: str) -> str:
    """A key of the action table ("Ctrl+Shift+Z", "?", "F11") as xdotool names it."""
    if qt_key in XKEYS:
        return XKEYS[qt_key]
    *mods, last = qt_key.split("+")
    return "+".join([m.lower() for m in mods] + [XKEYS.get(last, last.lower())])


def xdotool(*args: str, check: bool = True) -> str:
    run = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=60)
    if check and run.returncode != 0:
        raise SessionError(f"xdotool {' '.join(args)} failed: {run.stderr.strip()}")
    return run.stdout.strip()


@dataclass
class Explorer:
    """One ``galexplorer open`` process and its window."""

    store: Path
    user: str
    work: Path
    proc: subprocess.Popen | None = None
    wid: str = ""
    keys: int = 0
    dialogs: list[str] = field(default_factory=list)

    @property
    def stderr_path(self) -> Path:
        return self.work / f"stderr-{self.user}.txt"

    @property
    def geometry_path(self) -> Path:
        return self.work / f"geometry-{self.user}.json"

    def start(self) -> None:
        env = dict(os.environ, QT_QPA_PLATFORM="xcb", GALEXPLORER_GEOMETRY=str(self.geometry_path),
                   GALEXPLORER_SETTINGS_DIR=str(self.work / f"settings-{self.user}"),
                   PYTHONPATH=str(ROOT), BROWSER="true")   # V opens the sky viewer: no browser here
        env.pop("QT_SCALE_FACTOR", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "galexplorer", "open", str(self.store), "--user",
                                      self.user], stdout=subprocess.DEVNULL, stderr=self.stderr_path.open("wb"),
                                     env=env, cwd=self.work)
        self.wid = self.find_window(f"labels by {self.user}\\)")
        self.wait_idle(180)

    def find_window(self, title: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SessionError(f"{self.user}'s galexplorer exited with {self.proc.returncode}: "
                                   f"{self.stderr_path.read_text(errors='replace')[-2000:]}")
            out = xdotool("search", "--onlyvisible", "--name", title, check=False)
            if out:
                return out.split()[-1]
            time.sleep(0.3)
        raise SessionError(f"no window titled {title!r} after {timeout:.0f} s")

    # -- what the window says about itself ------------------------------------------------------
    def report(self) -> dict:
        for _ in range(50):
            try:
                return json.loads(self.geometry_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                time.sleep(0.1)
        raise SessionError(f"{self.user}'s window wrote no geometry report to {self.geometry_path}")

    def wait_idle(self, timeout: float = 60, quiet: float = 0.8) -> dict:
        """Wait until no job runs and the report has not changed for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            rep = self.report()
            text = json.dumps(rep, sort_keys=True)
            if text != last:
                last, since = text, time.monotonic()
            elif not rep["busy"] and time.monotonic() - since >= quiet:
                return rep
        raise SessionError(f"{self.user}'s window still busy after {timeout:.0f} s")

    def wait_for(self, what: str, test, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rep = self.report()
            if test(rep):
                return rep
            time.sleep(0.1)
        raise SessionError(f"{self.user}'s window: {what} did not happen within {timeout:.0f} s")

    # -- a user's hands ---------------------------------------------------------------------------
    def focus(self) -> None:
        xdotool("windowfocus", "--sync", self.wid)

    def press(self, qt_key: str, pause: float = 0.15) -> None:
        self.focus()
        xdotool("key", "--clearmodifiers", xkey(qt_key))
        self.keys += 1
        time.sleep(pause)

    def other_windows(self) -> list[str]:
        out = xdotool("search", "--onlyvisible", "--pid", str(self.proc.pid), check=False)
        return [w for w in out.split() if w != self.wid]

    def close_dialogs(self, key: str, timeout: float = 10) -> None:
        """Wait for the window a key opened, and close it with Esc."""
        deadline = time.monotonic() + timeout
        while not (opened := self.other_windows()):
            if time.monotonic() > deadline:
                raise SessionError(f"{key} opened no window")
            time.sleep(0.1)
        time.sleep(0.4)
        for wid in opened:
            self.dialogs.append(f"{key}: {xdotool('getwindowname', wid, check=False)!r}")
            xdotool("windowfocus", "--sync", wid)
            xdotool("key", "Escape")
            self.keys += 1
        deadline = time.monotonic() + timeout
        while self.other_windows():
            if time.monotonic() > deadline:
                raise SessionError(f"the window {key} opened did not close on Esc")
            time.sleep(0.1)

    def click(self, rect: list[int], button: int = 1, times: int = 1) -> None:
        x, y, w, h = rect
        xdotool("mousemove", "--sync", str(x + w // 2), str(y + h // 2))
        xdotool("click", "--repeat", str(times), "--delay", "60", str(button))
        time.sleep(0.2)

    def quit(self, timeout: float = 60) -> int:
        self.press("Ctrl+Q")
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise SessionError(f"{self.user}'s window did not close on Ctrl+Q within {timeout:.0f} s") from exc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stderr_bytes(self) -> int:
        return self.stderr_path.stat().st_size if self.stderr_path.exists() else 0


@dataclass
class Session:
    store: Path
    shots: Path
    work: Path
    n_labels: int = 30
    hidden: dict[str, list[str]] = field(default_factory=dict)
    colour_mismatch: dict[str, str] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)
    pressed: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))

    def screenshot(self, name: str) -> None:
        path = self.shots / f"xvfb-session-{len(self.screenshots) + 1:02d}-{name}.png"
        subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=60)
        self.screenshots.append(path)

    def toolbar(self, ex: Explorer, step: str) -> dict:
        """The tool bar's controls after ``step``: every one shown whole."""
        rep = ex.wait_idle()
        self.hidden[f"{ex.user}: {step}"] = rep["hidden"]
        c = rep["colour"]
        if c["map"] != c["current"]:
            self.colour_mismatch[f"{rep['user']}: {step}"] = f"box {c['current']!r}, map {c['map']!r}"
        return rep

    def press_all(self, ex: Explorer, keys: list[str], pause: float = 0.15) -> None:
        for k in keys:
            ex.press(k, pause)
            self.pressed.append(k)

    # -- the steps ---------------------------------------------------------------------------------
    def every_shortcut(self, ex: Explorer) -> None:
        """Every key of the action table but the score keys (step 2) and Ctrl+Q (the end)."""
        from galexplorer.gui.actions import BY_ACTION

        def keys(name):
            return list(BY_ACTION[name].keys)

        # moving about, the map's tools and views (L and R each ended by Esc, as a user would)
        self.press_all(ex, keys("next") + keys("previous") + keys("queue_head") + keys("centre")
                       + keys("stretch") * 4 + keys("band") * 3 + keys("reset_view") + keys("mosaic"))
        ex.wait_idle()
        self.screenshot("mosaic")
        self.press_all(ex, keys("mosaic") + keys("lasso") + keys("clear_selection") + keys("rectangle")
                       + keys("clear_selection") + keys("pan") + keys("show_selection") + keys("similar")
                       + keys("why"))
        ex.wait_idle()
        self.press_all(ex, keys("clear_selection"))
        self.toolbar(ex, "tools and views")
        # the keys that open a window: each closed with Esc
        for name in OPENS_WINDOW:
            for k in keys(name):
                ex.press(k)
                self.pressed.append(k)
                ex.close_dialogs(k)
        # the sky viewer ($BROWSER), skip, exclude and its undo/redo, refit
        self.press_all(ex, keys("viewer") + keys("skip") + keys("exclude") + keys("undo")[:1])
        self.press_all(ex, keys("redo")[:1] + keys("undo") + keys("redo")[1:] + keys("undo"), pause=0.4)
        self.press_all(ex, keys("refit"))
        self.toolbar(ex, "every shortcut")

    def label(self, ex: Explorer, n: int) -> None:
        """``n`` scores with the number keys, 0..5 in turn, each once the next object shows."""
        for k in range(n):
            before = ex.report()["current"]
            ex.press(str(k % 6), pause=0.05)
            self.pressed.append(str(k % 6))
            ex.wait_for(f"the object after score {k + 1}", lambda r, b=before: r["current"] != b, timeout=30)
        self.toolbar(ex, f"{n} labels")

    def zoom_inspector(self, ex: Explorer) -> None:
        rep = ex.wait_idle()
        before = rep["docks"]
        ex.click(rep["inspector_image"], button=4, times=8)      # the wheel, eight notches up
        rep = ex.wait_for("the inspector's zoom", lambda r: r["inspector_zoom"] > 4)
        rep = self.toolbar(ex, "zoom the inspector")
        self.check("the docks keep their widths when the inspector zooms", rep["docks"] == before,
                   f"{before} -> {rep['docks']}")
        self.screenshot("inspector-zoomed")

    def every_colour(self, ex: Explorer) -> list[str]:
        rep = ex.wait_idle()
        entries = rep["colour"]["entries"]
        ex.click(rep["colour"]["rect"])                   # opens the box's list
        time.sleep(0.5)
        xdotool("key", "Escape")                          # closes it; the box keeps the focus
        self.pressed.append("Esc")
        seen = [ex.wait_idle()["colour"]["current"]]
        for k in range(1, len(entries)):
            xdotool("key", "Down")
            self.pressed.append("Down")
            rep = ex.wait_for(f"colour entry {k}", lambda r, k=k: r["colour"]["index"] == k)
            seen.append(rep["colour"]["current"])
            self.toolbar(ex, f"colour by {rep['colour']['current']}")
            if rep["colour"]["current"] in ("model: predicted score", "disputes") or k == 1:
                self.screenshot("colour-" + rep["colour"]["current"].replace(":", "").replace(" ", "-"))
        self.check("every Colour entry chosen", seen == entries, f"{len(seen)} of {len(entries)}")
        return seen

    def switch_labeller(self, ex: Explorer, name: str) -> None:
        """File ▸ Labeller… from the keyboard (Alt+F, arrows, Return), then the name."""
        rep = ex.wait_idle()
        items = rep["menus"]["File"]
        target = next(i for i, t in enumerate(items) if t.startswith("Labeller"))
        ex.press("Alt+F", pause=0.5)
        for _ in range(target):
            xdotool("key", "Down")
        xdotool("key", "Return")
        dialog = None
        deadline = time.monotonic() + 10
        while not dialog:
            if time.monotonic() > deadline:
                raise SessionError("File ▸ Labeller… opened no dialog")
            dialog = ex.other_windows()
            time.sleep(0.2)
        xdotool("windowfocus", "--sync", dialog[0])
        xdotool("key", "ctrl+a")
        xdotool("type", "--delay", "40", name)
        xdotool("key", "Return")
        self.pressed += ["Alt+F", *["Down"] * target, "Return", "Ctrl+A", *name, "Return"]
        ex.wait_for(f"the window reopened as {name}", lambda r: r["user"] == name, timeout=120)
        self.toolbar(ex, f"File ▸ Labeller… {name}")


def labels_in_journal(store: Path) -> tuple[dict[str, int], int]:
    from galexplorer.labels import LabelJournal

    with LabelJournal.for_store(store, readonly=True) as j:
        per_user: dict[str, int] = {}
        for (_oid, user), _score in j.all_current().items():
            per_user[user] = per_user.get(user, 0) + 1
        return per_user, len(j.excluded())


def make_store(folder: Path) -> Path:
    from gui_stores import build_store

    return build_store(folder / "session.h5", 400)


def run(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="xvfb-session-"))
    shots = Path(args.screenshots)
    shots.mkdir(parents=True, exist_ok=True)
    store = Path(args.store).resolve() if args.store else make_store(work)
    s = Session(store, shots, work, args.labels)
    alice, bob = Explorer(store, "alice", work), Explorer(store, "bob", work)
    t0 = time.monotonic()
    error = ""
    try:
        alice.start()
        s.toolbar(alice, "start")
        s.screenshot("start")
        s.every_shortcut(alice)
        s.label(alice, args.labels)
        alice.press("Ctrl+Z", pause=1.0)
        s.pressed.append("Ctrl+Z")
        s.screenshot("labelled")
        s.zoom_inspector(alice)
        s.every_colour(alice)
        bob.start()
        s.label(bob, 5)
        s.screenshot("second-labeller")
        s.check("bob's window exits with 0 on Ctrl+Q", bob.quit() == 0)
        s.pressed.append("Ctrl+Q")
        s.switch_labeller(alice, "carol")
        s.label(alice, 3)
        s.screenshot("third-labeller")
        s.check("alice's window exits with 0 on Ctrl+Q", alice.quit() == 0)
        s.pressed.append("Ctrl+Q")
    except SessionError as exc:
        error = str(exc)
        try:
            s.screenshot("failed")
        except (subprocess.SubprocessError, OSError):
            pass
    finally:
        for ex in (alice, bob):
            ex.stop()
    labels, excluded = labels_in_journal(store)
    want = {"alice": args.labels - 1, "bob": 5, "carol": 3}
    s.check("the session ran to its end", not error, error)
    s.check("labels in the journal", labels == want, f"{labels}, expected {want}")
    s.check("no exclusion left (X, then undone)", excluded == 0, f"{excluded} excluded")
    errs = {ex.user: ex.stderr_bytes() for ex in (alice, bob)}
    s.check("stderr empty", not any(errs.values()),
            "; ".join(f"{u}: {ex.stderr_path.read_text(errors='replace')[:3000]}"
                      for u, ex in (("alice", alice), ("bob", bob)) if errs[u]))
    hidden = {step: h for step, h in s.hidden.items() if h}
    s.check("every tool-bar control visible after every step", not hidden, str(hidden))
    s.check("the map coloured as the Colour box says after every step", not s.colour_mismatch,
            str(s.colour_mismatch))
    from galexplorer.gui.actions import SHORTCUTS

    table_keys = {k for sc in SHORTCUTS for k in sc.keys}
    missed = sorted(table_keys - set(s.pressed))
    s.check("every key of the action table pressed", not missed, f"missed {missed}")
    print(f"xvfb session ({SCREEN[0]}x{SCREEN[1]}, store {store.name}, {time.monotonic() - t0:.0f} s)")
    print(f"  keys pressed: {alice.keys + bob.keys} ({len(table_keys) - len(missed)} of the action table's "
          f"{len(table_keys)} keys), dialogs opened and closed with Esc: {len(alice.dialogs)}")
    for d in alice.dialogs:
        print(f"    {d}")
    print(f"  labels in the journal: {labels} (expected {want}); excluded: {excluded}")
    print(f"  stderr bytes: {errs}")
    print(f"  tool-bar checks: {len(s.hidden)}, controls hidden: {sum(len(h) for h in s.hidden.values())}")
    print(f"  screenshots: {len(s.screenshots)} in {shots}")
    failed = [c for c in s.checks if not c[1]]
    for name, ok, detail in s.checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail and not ok else ""))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"  work folder kept: {work}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="the store to open (default: 400 objects of real XDF stamps, built here)")
    p.add_argument("--screenshots", default=str(Path(tempfile.gettempdir()) / "galexplorer-xvfb-session"),
                   help="folder for the screenshots (default: galexplorer-xvfb-session in the temporary folder)")
    p.add_argument("--labels", type=int, default=30, help="labels the first labeller gives (default 30)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (stderr files, geometry reports)")
    p.add_argument("--under-xvfb", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    missing = [exe for exe in NEEDS if shutil.which(exe) is None]
    if missing:
        print(f"xvfb_session: missing {', '.join(missing)}; apt-get install xvfb xdotool imagemagick",
              file=sys.stderr)
        return 2
    if not args.under_xvfb:      # run again inside a private X server of the session's size
        cmd = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24", sys.executable,
               str(Path(__file__).resolve()), *(argv if argv is not None else sys.argv[1:]), "--under-xvfb"]
        return subprocess.run(cmd).returncode
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
