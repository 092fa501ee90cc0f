"""Work-arounds for defects of the Qt bindings, each detected at start-up, never assumed.

PySide6 6.12.0 drops references it does not own, to two singletons:

* ``SignalInstance.emit()`` returns ``True`` without taking a reference to it;
* when Qt calls a Python slot or timer callback that returns ``None``, the result is
  released twice.

On CPython before 3.12 (where these objects are not immortal) each emit and each callback
lowers the reference count of ``True`` or ``None`` by one. pyqtgraph emits signals and runs
callbacks on every repaint (over a hundred per pan step), so after minutes of panning the
count reaches zero and the interpreter aborts ("Fatal Python error: bool_dealloc" or
"none_dealloc"). :func:`guard_singleton_refcounts` measures both leaks with a probe and, only
when one is there, gives ``True``, ``False`` and ``None`` a reference count so large that no
session can exhaust it — which is what CPython 3.12 does for them by design.
"""

from __future__ import annotations

import ctypes
import logging
import sys

from PySide6 import QtCore

log = logging.getLogger(__name__)

_RESERVE = 1 << 40     # references added: 10^12 emits before the count could fall back to zero
_guarded = False


class _Probe(QtCore.QObject):
    fired = QtCore.Signal()

    def callback(self) -> None:
        return None


def emit_leaks_bool_reference(trials: int = 16) -> bool:
    """Whether ``Signal.emit()`` lowers ``True``'s reference count (the PySide6 6.12.0 defect)."""
    probe = _Probe()
    probe.fired.emit()
    before = sys.getrefcount(True)
    for _ in range(trials):
        probe.fired.emit()
    return sys.getrefcount(True) - before <= -trials // 2


def callback_leaks_none_reference(trials: int = 16) -> bool:
    """Whether a Python callback run by Qt lowers ``None``'s reference count (PySide6 6.12.0)."""
    from PySide6 import QtWidgets

    app = QtCore.QCoreApplication.instance()
    if app is None:
        app = QtWidgets.QApplication.instance()
    if app is None:
        return False   # measured again once an application exists
    probe = _Probe()
    QtCore.QTimer.singleShot(0, probe.callback)
    app.processEvents()
    before = sys.getrefcount(None)
    for _ in range(trials):
        QtCore.QTimer.singleShot(0, probe.callback)
    app.processEvents()
    return sys.getrefcount(None) - before <= -trials // 2


def guard_singleton_refcounts() -> bool:
    """Protect ``True``, ``False`` and ``None`` from PySide6's reference leaks when present.

    Call it once a QApplication exists. Returns:
        True when the guard was applied (now or before).
    """
    global _guarded
    if _guarded:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False   # the singletons are immortal there: the leaks are harmless
    if not (emit_leaks_bool_reference() or callback_leaks_none_reference()):
        return False
    for obj in (True, False, None):
        # ob_refcnt is the first field of every CPython object, at the object's address
        ctypes.c_ssize_t.from_address(id(obj)).value += _RESERVE
    _guarded = True
    log.debug("PySide6 %s leaks references to True/None per signal and callback; True, False and None "
              "made immortal", QtCore.__version__)
    return True


# Messages Qt's platform plugins print that say nothing to a user: the offscreen and minimal
# plugins (screenshots, tests) cannot resize or raise windows.
_HARMLESS = ("does not support propagateSizeHints", "does not support raise", "does not support setParent")
_qt_log = logging.getLogger("galexplorer.qt")


def _route_qt_message(mode, context, message: str) -> None:
    if any(text in message for text in _HARMLESS):
        return
    level = {QtCore.QtMsgType.QtDebugMsg: logging.DEBUG, QtCore.QtMsgType.QtInfoMsg: logging.INFO,
             QtCore.QtMsgType.QtWarningMsg: logging.WARNING}.get(mode, logging.ERROR)
    _qt_log.log(level, "%s", message)


def route_qt_messages() -> None:
    """Send Qt's own messages to the logging system (dropping the platform plugins' noise)."""
    QtCore.qInstallMessageHandler(_route_qt_message)
