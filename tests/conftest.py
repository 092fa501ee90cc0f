"""Shared fixtures. Qt runs offscreen; real pixels come from the Hubble XDF in scikit-image."""

from __future__ import annotations

import os

# Under pytest-xdist (``-n 2``) every worker process would start one BLAS/OpenMP/numba thread per
# core: two workers on 2 cores then run four busy threads that preempt each other. One thread a
# worker, set before numpy, torch, faiss or numba load (a value the caller set is kept).
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))

from xdf import BANDS, xdf_stamps  # noqa: E402


@pytest.fixture(scope="session")
def xdf_cutouts(tmp_path_factory) -> Path:
    """A small cutouts file of 48 real 3-band XDF stamps of 32 px, with ra/dec and columns."""
    from galexplorer.data.thumbnails import make_thumbnails
    from galexplorer.store import CutoutWriter

    stamps, ids = xdf_stamps(48, 32)
    path = tmp_path_factory.mktemp("cutouts") / "xdf.h5"
    rng = np.random.default_rng(0)
    peak = stamps[:, :, 13:19, 13:19].mean(axis=(1, 2, 3))
    with CutoutWriter(path, bands=BANDS, size=32, thumb_size=32) as w:
        w.add(stamps, ids, ra=53.16 + rng.normal(0, 0.01, len(ids)), dec=-27.79 + rng.normal(0, 0.01, len(ids)),
              columns={"peak": peak, "kind": np.array(["bright" if p > np.median(peak) else "faint" for p in peak],
                                                      dtype=object)},
              thumbnails=make_thumbnails(stamps, BANDS, 32))
    return path


def pytest_collection_modifyitems(config, items):
    """``interop`` tests start real programs under Xvfb (TOPCAT, DS9, Aladin, the explorer): only
    when asked for (``-m interop``), never in the README's test command or CI."""
    if "interop" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="opt-in: runs real programs under Xvfb; python -m pytest -m interop")
    for item in items:
        if "interop" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_windows_left(request):
    """Every main window a Qt test made is closed and deleted, with its menus, popups and docks,
    when the test ends (pytest-qt closes them and calls deleteLater, yet they stayed alive; why
    was not traced). Left alive, earlier tests' ~760 top-level widgets cost a later test's event loop
    0.6–1 s of UI-thread CPU at a moment (measured: the refine's and SAMP's stall tests failed on
    it in the full suite and in tests/test_gui_*.py, never alone): a user has one window."""
    if "qtbot" not in request.fixturenames:
        yield
        return
    import shiboken6
    from PySide6 import QtCore, QtWidgets

    def alive() -> dict:
        app = QtWidgets.QApplication.instance()
        return {} if app is None else {shiboken6.getCppPointer(t)[0]: t for t in app.topLevelWidgets()}

    before = set(alive())
    yield
    from galexplorer.gui.main_window import MainWindow

    # the windows only: their menus, popups and docks go with them (deleting those apart crashed)
    made = [t for p, t in alive().items() if p not in before and isinstance(t, MainWindow)]
    for t in made:
        if shiboken6.isValid(t):
            t.close()
            t.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
