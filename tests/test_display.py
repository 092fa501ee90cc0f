"""The one display check (gui/app.has_display), used by `open`, `--screenshot` and `demo`; no Qt needed."""

from __future__ import annotations

import pytest

from galexplorer.errors import GalexplorerError
from galexplorer.gui import app


@pytest.mark.parametrize("env, platform, expect", [
    ({}, "linux", False),
    ({"DISPLAY": ":0"}, "linux", True),
    ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
    ({"DISPLAY": ""}, "linux", False),
    ({}, "darwin", True),
    ({}, "win32", True),
])
def test_has_display(monkeypatch, env, platform, expect):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(app.sys, "platform", platform)
    assert app.has_display() is expect


def test_no_display_is_a_one_line_error_and_screenshots_go_offscreen(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.setenv(name, "")  # recorded, so the offscreen setting below is undone after the test
        monkeypatch.delenv(name)
    monkeypatch.setattr(app.sys, "platform", "linux")
    with pytest.raises(GalexplorerError, match="no display") as info:
        app._check_display()
    assert "\n" not in str(info.value) and "--screenshot" in str(info.value)
    app._headless_platform()
    assert app.has_display() and app.os.environ["QT_QPA_PLATFORM"] == "offscreen"


@pytest.mark.parametrize("display", [False, True])
def test_demo_opens_the_explorer_only_with_a_display(monkeypatch, tmp_path, capsys, display):
    import galexplorer.demo as demo
    from galexplorer.cli import main

    class Built:
        store = tmp_path / "store.h5"

        def summary(self) -> str:
            return "demo built"

    opened = []
    monkeypatch.setattr(demo, "build_demo", lambda out, rebuild=False, quick=False: Built())
    monkeypatch.setattr(app, "run_app", lambda store, user=None, screenshot=None: opened.append(store) or 0)
    monkeypatch.setattr(app, "has_display", lambda: display)
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "demo built" in out and ("no display found" in out) is (not display)
    assert opened == ([str(Built.store)] if display else [])
    assert main(["demo", "--out", str(tmp_path), "--no-gui"]) == 0 and len(opened) == int(display)
