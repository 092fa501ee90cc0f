"""Write-once files: write to a temporary file beside the target, rename when complete.

A crash, Ctrl+C or an exception leaves either the old file or the new complete one, never a
half-written file under the final name.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def temporary_sibling(path: Path) -> Path:
    """A hidden temporary name in the same folder (same file system, so rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` if the block completes.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the
    exception propagates; an existing file at ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written")
        if path.exists():
            log.info("replacing existing %s", path)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
