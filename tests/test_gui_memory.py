"""The window's memory over a long session (issue #27 item 4): the thumbnail cache is bounded in
bytes, whatever the thumbnails' size, and refits do not pile up their results."""

from __future__ import annotations

import gc
import weakref

import gui_qt
import numpy as np
import pytest

from galexplorer.gui.thumbs import CACHE_BYTES, ThumbnailCache, pixmap_bytes

pytestmark = pytest.mark.gui
gui_settings = gui_qt.gui_settings
no_leaks = gui_qt.no_leaks


def _thumbs(n: int, side: int) -> np.ndarray:
    rng = np.random.default_rng(side)
    return rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)


@pytest.mark.parametrize("side", [32, 64])
def test_thumbnail_cache_stays_under_its_byte_budget(qapp, side):
    budget = 100 * 32 * 32 * 4            # 100 thumbnails of 32 pixels, 25 of 64
    cache = ThumbnailCache(_thumbs(600, side), max_bytes=budget)
    fits = budget // (side * side * 4)
    assert cache.capacity == fits
    for i in range(600):
        assert cache.full == (i >= fits)      # full once it holds its budget, and stays full
        cache.pixmap(i)
        assert cache.nbytes <= budget
    assert len(cache) == fits and cache.full
    assert cache.nbytes == sum(pixmap_bytes(cache.peek(i)) for i in range(600 - fits, 600))
    assert cache.peek(600 - fits - 1) is None and cache.peek(599) is not None   # the oldest went first
    cache.pixmap(600 - fits)                         # used again: now the newest, kept
    cache.pixmap(0)
    assert cache.peek(600 - fits) is not None and cache.peek(600 - fits + 1) is None
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0 and not cache.full


def test_the_default_budget_is_bytes_not_a_count(qapp):
    small, large = ThumbnailCache(_thumbs(1, 32)), ThumbnailCache(_thumbs(1, 64))
    assert small.max_bytes == large.max_bytes == CACHE_BYTES
    assert small.capacity == 4 * large.capacity == 4096      # 64-pixel stamps: 16 MiB, not 64


def test_a_budget_that_holds_nothing_is_refused():
    with pytest.raises(ValueError, match="must be positive"):
        ThumbnailCache(None, max_bytes=0)


def test_refits_keep_only_the_latest_result(qtbot, tmp_path, gui_settings, no_leaks):
    from gui_qt import open_window
    from gui_stores import build_store

    store = build_store(tmp_path / "s.h5", 300)
    w = open_window(qtbot, store, gui_settings)
    ex = w.explorer
    for s in (5, 0, 3):
        ex.score(s)
    states = []
    for _ in range(6):
        ex.request_refit(tag="manual")
        assert ex.wait_idle(60)
        qtbot.waitUntil(lambda: not ex.refitting, timeout=60000)
        assert not states or ex.state is not states[-1](), "the refit landed no new result"
        states.append(weakref.ref(ex.state))
    gc.collect()
    alive = [r() is not None for r in states]
    assert alive == [False] * 5 + [True], f"refit results kept: {alive}"
    w.close()
