"""Progress reporting for long jobs, without printing from library code.

Library functions wrap their loops in :func:`track`. What a caller sees is configured once:

* the CLI calls ``configure(enabled=True)`` (or ``False`` for ``--quiet``) to draw tqdm bars on
  stderr;
* the GUI passes a ``callback(stage, done, total)`` that forwards to a Qt signal;
* by default (library use, tests) nothing is drawn.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
ProgressCallback = Callable[[str, int, "int | None"], None]

_state = threading.local()
_enabled = False


def configure(enabled: bool) -> None:
    """Draw tqdm progress bars on stderr (CLI) or not."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


@contextmanager
def reporting_to(callback: ProgressCallback | None):
    """Send progress of everything tracked in this thread, inside the block, to ``callback``."""
    old = getattr(_state, "callback", None)
    _state.callback = callback
    try:
        yield
    finally:
        _state.callback = old


class Bar:
    """A progress bar that can be advanced by hand (for work that is not a simple loop)."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "it"):
        self.desc, self.total, self.done = desc, total, 0
        self._callback: ProgressCallback | None = getattr(_state, "callback", None)
        self._last_cb = 0.0
        self._tqdm = None
        if _enabled:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr,
                              dynamic_ncols=True, leave=True, mininterval=0.3)
        self._emit(force=True)

    def _emit(self, force: bool = False) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if force or now - self._last_cb > 0.05 or (self.total is not None and self.done >= self.total):
            self._last_cb = now
            self._callback(self.desc, self.done, self.total)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
        self._emit()

    def set_postfix(self, **values) -> None:
        if self._tqdm is not None:
            self._tqdm.set_postfix(**values, refresh=False)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        self._emit(force=True)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate over ``iterable`` while reporting progress under the name ``desc``."""
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Bar(desc, total, unit) as bar:
        for item in iterable:
            yield item
            bar.update(1)
