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
