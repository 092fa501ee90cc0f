"""Write-once files: write to a temporary file beside the target, rename when complete.

A crash, Ctrl+C or an exception leaves either the old file or the new complete one, never a
half-written file under the final name.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from ..errors import StoreError

log = logging.getLogger(__name__)


def temporary_sibling(path: Path) -> Path:
    """A hidden temporary name in the same folder (same file system, so rename is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def prepare_output(path: str | Path) -> Path:
    """Check that ``path`` can be written (creating its folder) and return a temporary sibling.

    Raises:
        StoreError: ``path`` is a folder, its folder cannot be created or is not writable.
    """
    path = Path(path)
    fix = "choose an output path in a folder you can write to"
    if path.is_dir():
        raise StoreError("is a folder; the output must be a file name", path, fix)
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StoreError(f"cannot create the folder {parent}: a file is in the way", path, fix) from None
    except OSError as exc:
        raise StoreError(f"cannot create the folder {parent} ({exc.strerror or exc})", path, fix) from None
    if not os.access(parent, os.W_OK):
        raise StoreError(f"the folder {parent} is not writable", path, fix)
    return temporary_sibling(path)


def open_new_h5(tmp: Path, final: str | Path):
    """Create the temporary HDF5 file ``tmp`` for ``final``, with a one-line error if that fails."""
    try:
        return h5py.File(tmp, "w")
    except OSError as exc:
        raise _cannot_write(exc, final) from None


def _cannot_write(exc: OSError, final: str | Path):
    """A one-line StoreError for an OS error while creating the temporary output file."""
    text = str(exc)
    found = re.search(r"error message = '([^']*)'", text)   # HDF5's wording of the OS error
    reason = found.group(1) if found else (exc.strerror if isinstance(exc.strerror, str) and
                                           len(exc.strerror) < 80 else text.splitlines()[0][:80])
    return StoreError(f"cannot write the file here ({reason})", final,
                      "choose a folder you can write to, or free some disk space")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` if the block completes.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the
    exception propagates; an existing file at ``path`` is left untouched.
    """
    path = Path(path)
    tmp = prepare_output(path)
    try:
        try:
            yield tmp
        except OSError as exc:
            if exc.filename is not None and Path(exc.filename) == tmp:   # the temporary file itself
                raise _cannot_write(exc, path) from None
            raise
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
