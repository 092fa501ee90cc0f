"""What the explorer remembers between sessions (QSettings, organisation "galexplorer"):
window layout, recent stores, the sky-viewer URL, the last stretch, loop options.

Labels and the session's place are not here: they live in the store's label journal.
Tests and scripts point the settings at a folder of their own with the environment variable
``GALEXPLORER_SETTINGS_DIR`` (or ``QSettings.setPath``), so the user's are never touched.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ..active.registry import COLD_STARTS, DEFAULT_ACQUISITION, DEFAULT_COLD_START, DEFAULT_SCORER

ORGANISATION = "galexplorer"
APPLICATION = "explorer"
MAX_RECENT = 10
DEFAULT_VIEWER_URL = ("https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:.6f}"
                      "&layer=ls-dr10&zoom=16&mark={ra:.6f},{dec:.6f}")
LAYOUT_VERSION = 2   # 2: the taller bottom row of #23 (a layout saved before it is not restored)


def viewer_url(template: str, ra: float, dec: float, object_id: str = "") -> str:
    """Fill a sky-viewer URL template with ``{ra}``, ``{dec}`` (deg, format specs allowed) and
    ``{id}``.

    Raises:
        ValueError: the template names another field or has a bad format spec.
    """
    try:
        return template.format(ra=ra, dec=dec, id=object_id)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"the viewer URL template {template!r} is not valid ({exc}); "
                         "use {ra}, {dec} and {id}") from None


class Settings:
    """Typed access to the explorer's QSettings."""

    def __init__(self, qsettings: QtCore.QSettings | None = None):
        if qsettings is None:
            folder = os.environ.get("GALEXPLORER_SETTINGS_DIR")
            if folder:
                QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                                         folder)
            qsettings = QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                                         ORGANISATION, APPLICATION)
        self.q = qsettings

    def _get(self, key: str, default, kind=None):
        value = self.q.value(key, default)
        if kind is None or value is None:
            return value
        try:
            if kind is bool:
                return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            return kind(value)
        except (TypeError, ValueError):
            return default

    # -- recent files --------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.q.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or []) if str(v)]

    def add_recent(self, path: str | Path) -> None:
        p = str(Path(path).resolve())
        files = [f for f in self.recent_files() if f != p]
        self.q.setValue("recent_files", ([p] + files)[:MAX_RECENT])

    def remove_recent(self, path: str | Path) -> None:
        p = str(path)
        self.q.setValue("recent_files", [f for f in self.recent_files() if f != p])

    # -- simple values -------------------------------------------------------------------------
    @property
    def viewer_url(self) -> str:
        return str(self._get("viewer_url", DEFAULT_VIEWER_URL))

    @viewer_url.setter
    def viewer_url(self, value: str) -> None:
        self.q.setValue("viewer_url", value)

    @property
    def stretch(self) -> str:
        return str(self._get("inspector/stretch", "asinh"))

    @stretch.setter
    def stretch(self, value: str) -> None:
        self.q.setValue("inspector/stretch", value)

    def stretch_for(self, store: str | Path) -> str:
        """The stretch last used on this store (else the last one used anywhere)."""
        key = "inspector/stretch_by_store/" + _store_key(store)
        return str(self._get(key, self.stretch))

    def set_stretch_for(self, store: str | Path, value: str) -> None:
        self.q.setValue("inspector/stretch_by_store/" + _store_key(store), value)
        self.stretch = value

    @property
    def batch_size(self) -> int:
        return max(1, self._get("loop/batch_size", 10, int))

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.q.setValue("loop/batch_size", int(value))

    @property
    def scorer(self) -> str:
        return str(self._get("loop/scorer", DEFAULT_SCORER))

    @scorer.setter
    def scorer(self, value: str) -> None:
        self.q.setValue("loop/scorer", value)

    @property
    def acquisition(self) -> str:
        return str(self._get("loop/acquisition", DEFAULT_ACQUISITION))

    @acquisition.setter
    def acquisition(self, value: str) -> None:
        self.q.setValue("loop/acquisition", value)

    @property
    def cold_start(self) -> str:
        """The loop's cold start (Model ▸ Random picks until the first find)."""
        value = str(self._get("loop/cold_start", DEFAULT_COLD_START))
        return value if value in COLD_STARTS else DEFAULT_COLD_START

    @cold_start.setter
    def cold_start(self, value: str) -> None:
        self.q.setValue("loop/cold_start", value)

    @property
    def widen_after(self) -> int | None:
        """Finds after which the loop widens its view (Model ▸ Widen the view after the first
        find: 1); None: never (the default)."""
        value = self._get("loop/widen_after", 0, int)
        return value if value >= 1 else None

    @widen_after.setter
    def widen_after(self, value: int | None) -> None:
        self.q.setValue("loop/widen_after", int(value or 0))

    @property
    def xi(self) -> float:
        return self._get("loop/xi", 0.5, float)

    @xi.setter
    def xi(self, value: float) -> None:
        self.q.setValue("loop/xi", float(value))

    @property
    def similar_k(self) -> int:
        return max(1, self._get("similar/k", 24, int))

    @similar_k.setter
    def similar_k(self, value: int) -> None:
        self.q.setValue("similar/k", int(value))

    # -- window layout -------------------------------------------------------------------------
    def save_window(self, window: QtWidgets.QMainWindow) -> None:
        self.q.setValue("window/geometry", window.saveGeometry())
        self.q.setValue("window/state", window.saveState(LAYOUT_VERSION))

    def restore_window(self, window: QtWidgets.QMainWindow) -> bool:
        """Restore size, position and the dock layout; False when nothing was saved."""
        geo = self.q.value("window/geometry")
        state = self.q.value("window/state")
        ok = False
        if isinstance(geo, QtCore.QByteArray) and not geo.isEmpty():
            ok = window.restoreGeometry(geo)
        if isinstance(state, QtCore.QByteArray) and not state.isEmpty():
            ok = window.restoreState(state, LAYOUT_VERSION) and ok
        return ok

    def sync(self) -> None:
        self.q.sync()


def _store_key(store: str | Path) -> str:
    """A settings key for a store: its resolved path, with the characters QSettings treats as
    separators replaced."""
    import hashlib

    p = str(Path(store).resolve())
    return hashlib.sha1(p.encode("utf-8")).hexdigest()[:16]
