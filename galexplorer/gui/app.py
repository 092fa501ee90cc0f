"""``galexplorer open``: start the Qt application and the main window.

With ``--screenshot FILE.png`` the window is rendered once everything has loaded (the first
fit included), saved, and the program exits: docs and tests use it, headless. A store that
cannot be opened is then an error (exit code 2, one line); interactively it is a dialog that
says what is wrong and which command fixes it, then exit code 2. Without a store the window
opens on its start page (recent stores, Open…), every action that needs a store disabled.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

SCREENSHOT_SIZE = (1600, 1000)


def has_display() -> bool:
    """Whether a window can be shown: Linux needs X11 or Wayland unless Qt is told a platform
    (``QT_QPA_PLATFORM``); other systems always have one. The one display check (``open``,
    ``--screenshot`` and ``demo`` use it); importing this module loads no Qt."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _check_display() -> None:
    """Refuse early, with the fix, when a window cannot be shown (Qt would abort the process)."""
    if not has_display():
        from ..errors import GalexplorerError

        raise GalexplorerError("there is no display to open the explorer's window on",
                               hint="run it in a desktop session (or over ssh -X), or render it with "
                                    "--screenshot FILE.png")


def _headless_platform() -> None:
    """Render offscreen when there is no display (``--screenshot`` on a server or in CI)."""
    if not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def application():
    """The QApplication, created once, with the explorer's theme."""
    import pyqtgraph as pg
    from PySide6 import QtWidgets

    from . import theme
    from .qtcompat import guard_singleton_refcounts, route_qt_messages

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication(sys.argv[:1])
        app.setOrganizationName("galexplorer")
        app.setApplicationName("galexplorer")
        app.setApplicationDisplayName("galexplorer")
        route_qt_messages()
    guard_singleton_refcounts()
    pg.setConfigOptions(antialias=False, background=theme.BG, foreground=theme.TEXT_DIM)
    theme.apply(app)
    return app


def settle(window, timeout: float = 120.0) -> None:
    """Wait until the window's jobs are done and its views drawn (screenshots, tests)."""
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout
    ex = window.explorer
    if ex is not None:
        ex.wait_idle(timeout)
        if window.scatter.picker is not None:
            window.scatter.picker.wait(max(0.0, deadline - time.monotonic()))
    for _ in range(5):
        app.processEvents()
    window.scatter.refresh()
    app.processEvents()


def save_screenshot(widget, path: str | Path) -> Path:
    """Grab ``widget`` and write it as PNG, atomically."""
    from ..store.atomic import atomic_output

    path = Path(path)
    pixmap = widget.grab()
    with atomic_output(path) as tmp:
        if not pixmap.save(str(tmp), "PNG"):
            raise OSError(f"{path}: could not write the screenshot")
    return path


def run_app(store: str | Path | None = None, user: str | None = None,
            screenshot: str | Path | None = None) -> int:
    """Entry point of ``galexplorer open [STORE] [--user NAME] [--screenshot FILE.png]``.

    Args:
        store: the embedding store to open, or None for the start page.
        user: the labeller's name (None: the login name).
        screenshot: render the window after loading, save it as this PNG, and return.

    Raises:
        StoreError, LabelError: with ``--screenshot``, when the store cannot be opened.
    """
    from .. import progress

    progress.configure(enabled=False)   # the window shows progress; no bars on the terminal
    shot = screenshot
    if shot:
        _headless_platform()
    else:
        _check_display()
    if shot:
        if store:
            # fail fast, before any window exists, with the one-line message and its fix
            from ..active.session import open_store

            open_store(store).close()
    app = application()
    from .main_window import MainWindow
    from .settings import Settings

    window = MainWindow(Settings(), user=user)
    if shot:
        window.resize(*SCREENSHOT_SIZE)
        if store:
            window.load(store)
        window.show()
        settle(window)
        path = save_screenshot(window, shot)
        window.close()
        log.info("wrote %s", path)
        return 0
    window.show()
    from .geometry_report import start_from_environment

    window.geometry_reporter = start_from_environment(window)   # $GALEXPLORER_GEOMETRY: scripted checks
    if store and not window.try_load(store):
        # the dialog said what is wrong and what fixes it; a dead window would only mislead
        window.close()
        return 2
    # the start-up objects (modules, widgets, the store's arrays' wrappers) live as long as the
    # window: freeze them so the collector's full passes, which run in the UI thread, skip them
    gc.collect()
    gc.freeze()
    return int(app.exec())
