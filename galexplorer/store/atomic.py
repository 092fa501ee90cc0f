"""Write-once files: write to a temporary file beside the target, rename when complete.

A crash, Ctrl+C or an exception leaves either the old file or the new complete one, never a
half-written file under the final name. :func:`rename_into_place` is the one way every writer
(cutouts, stores, rankings, exports, checkpoints, journal exports) puts a file in place: the
temporary file is fsynced before the rename and its folder after, so the new file also
survives a power cut.

Temporary names carry the host and process id, ``.NAME.tmp-HOST-PID-RANDOM`` (and
``.NAME.staging-HOST-PID-RANDOM`` folders); the next write to ``NAME`` removes those left by
dead processes of this host (a SIGKILL or an OOM kill cannot clean up after itself), and
``galexplorer info`` lists any beside a store.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py

from ..errors import StoreError

log = logging.getLogger(__name__)


def _host() -> str:
    """This host's name as it appears in temporary names (no '-' or path separators)."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() or "host")[:64] or "host"


_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|staging)-(?P<host>[A-Za-z0-9._]+)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


def temporary_prefix(path: Path, kind: str = "tmp") -> str:
    """``.NAME.KIND-HOST-PID-``: the start of a temporary name for ``path`` (add a random tail)."""
    return f".{path.name}.{kind}-{_host()}-{os.getpid()}-"


def temporary_sibling(path: Path) -> Path:
    """A hidden temporary name in the same folder (same file system, so rename is atomic).

    Stale temporaries of ``path`` left by dead processes of this host are removed first.
    """
    path = Path(path)
    remove_stale_temporaries(path)
    return path.with_name(temporary_prefix(path) + uuid.uuid4().hex[:8])


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True   # exists (another user's), or we cannot tell: keep its files
    return True


def temporaries(folder: str | Path, name: str | None = None) -> list[dict]:
    """Temporary files and staging folders of galexplorer writers in ``folder``.

    Args:
        name: only those of this output file name.

    Returns:
        One dict per temporary: ``path``, ``output`` (the file it was to become), ``host``,
        ``pid``, ``bytes`` and ``stale`` (its process, on this host, is gone).
    """
    folder = Path(folder)
    found = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP.match(entry.name)
        if not m or (name is not None and m["name"] != name):
            continue
        p = Path(entry.path)
        try:
            size = entry.stat(follow_symlinks=False).st_size if not entry.is_dir(follow_symlinks=False) else \
                sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        except OSError:
            size = 0
        host, pid = m["host"], int(m["pid"])
        found.append({"path": str(p), "output": str(folder / m["name"]), "host": host, "pid": pid,
                      "bytes": int(size), "stale": host == _host() and not _pid_alive(pid)})
    return sorted(found, key=lambda t: t["path"])


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries of output ``path`` whose writer (on this host) is dead.

    Returns:
        The paths removed (logged at INFO). Files of live processes or other hosts stay.
    """
    path = Path(path)
    removed = []
    for t in temporaries(path.parent, path.name):
        if not t["stale"]:
            continue
        p = Path(t["path"])
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove the stale temporary %s (%s)", p, exc.strerror or exc)
            continue
        log.info("removed %s, left by process %d which is gone (%d bytes)", p, t["pid"], t["bytes"])
        removed.append(p)
    return removed


def fsync_folder(folder: str | Path) -> None:
    """Make a rename or a new entry in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:   # Windows, some network file systems
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def rename_into_place(tmp: str | Path, final: str | Path) -> None:
    """Durably replace ``final`` by the complete file ``tmp`` (same folder): fsync ``tmp``,
    rename it over ``final`` atomically, fsync the folder. The one rename every writer uses."""
    tmp, final = Path(tmp), Path(final)
    fd = os.open(tmp, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_folder(final.parent)


#: the advice when an output file's folder cannot be written
OUTPUT_FIX = "choose an output path in a folder you can write to"


def writable_folder(folder: str | Path, path: str | Path | None = None, fix: str = OUTPUT_FIX) -> Path:
    """Create ``folder`` (and its parents) if needed and check that it can be written in.

    Args:
        folder: the folder to write in.
        path: what the error names (default: ``folder``).
        fix: the advice of the error, one the command that writes can follow.

    Raises:
        StoreError: the folder cannot be created (a file is in the way, no permission) or is
            not writable.
    """
    folder = Path(folder)
    path = folder if path is None else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise StoreError(f"cannot create the folder {folder}: a file is in the way", path, fix) from None
    except OSError as exc:
        raise StoreError(f"cannot create the folder {folder} ({exc.strerror or exc})", path, fix) from None
    if not os.access(folder, os.W_OK):
        raise StoreError(f"the folder {folder} is not writable", path, fix)
    return folder


def check_output(path: str | Path, fix: str = OUTPUT_FIX) -> Path:
    """Check that the file ``path`` can be written (creating its folder), before any work.

    Raises:
        StoreError: ``path`` is a folder, its folder cannot be created or is not writable.
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError("is a folder; the output must be a file name", path, fix)
    writable_folder(path.parent, path, fix)
    return path


def prepare_output(path: str | Path, fix: str = OUTPUT_FIX) -> Path:
    """Check that ``path`` can be written (creating its folder) and return a temporary sibling.

    Raises:
        StoreError: ``path`` is a folder, its folder cannot be created or is not writable.
    """
    return temporary_sibling(check_output(path, fix))


def open_new_h5(tmp: Path, final: str | Path):
    """Create the temporary HDF5 file ``tmp`` for ``final``, with a one-line error if that fails."""
    try:
        return h5py.File(tmp, "w")
    except OSError as exc:
        tmp.unlink(missing_ok=True)   # h5py may have created it before failing (a full disk)
        raise _cannot_write(exc, final) from None


#: the advice when a disk fills while an output is written
DISK_FULL_FIX = "free some space on this disk (or choose another) and run it again; the old file, if any, is intact"


def is_disk_full(exc: BaseException) -> bool:
    """The disk (or the user's quota) is full: ``ENOSPC``/``EDQUOT``, or HDF5's wording of it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return "no space left on device" in str(exc).lower() or "disk quota exceeded" in str(exc).lower()


def disk_full(final: str | Path) -> StoreError:
    """The one-line error for an output that did not fit on its disk (the temporary file is removed)."""
    return StoreError("disk full: the file could not be written", final, DISK_FULL_FIX)


def _cannot_write(exc: OSError, final: str | Path):
    """A one-line StoreError for an OS error while creating the temporary output file."""
    if is_disk_full(exc):
        return disk_full(final)
    text = str(exc)
    found = re.search(r"error message = '([^']*)'", text)   # HDF5's wording of the OS error
    reason = found.group(1) if found else (exc.strerror if isinstance(exc.strerror, str) and
                                           len(exc.strerror) < 80 else text.splitlines()[0][:80])
    return StoreError(f"cannot write the file here ({reason})", final,
                      "choose a folder you can write to, or free some disk space")


def finish_output(tmp: Path, path: Path, ok: bool) -> None:
    """End a write begun with :func:`prepare_output`: put ``tmp`` in place when ``ok``, else remove it."""
    if not ok:
        tmp.unlink(missing_ok=True)
        return
    if path.exists():
        log.info("replacing existing %s", path)
    rename_into_place(tmp, path)


def end_h5_output(f: h5py.File, tmp: Path, final: str | Path, ok: bool, exc: BaseException | None = None) -> None:
    """End an HDF5 write begun with :func:`prepare_output` and :func:`open_new_h5`: close ``f``,
    then put ``tmp`` in place when ``ok``, else remove it.

    Args:
        exc: the exception that ended the write early, if any (from the writer's ``__exit__``).

    Raises:
        StoreError: the disk filled, while writing (``exc``) or in HDF5's last flush on close:
            ``disk full: …``; the temporary file is removed and an older ``final`` is untouched.
    """
    try:
        f.close()
    except Exception as close_exc:   # h5py's final flush failed (a full disk): the file is incomplete
        tmp.unlink(missing_ok=True)
        if exc is not None and not is_disk_full(exc):
            return                   # the first error is the one to report
        if is_disk_full(close_exc) or (exc is not None and is_disk_full(exc)):
            raise disk_full(final) from None
        if isinstance(close_exc, OSError):
            raise _cannot_write(close_exc, final) from None
        raise
    if exc is not None and is_disk_full(exc):
        tmp.unlink(missing_ok=True)
        raise disk_full(final) from None
    try:
        finish_output(tmp, Path(final), ok)
    except OSError as fin_exc:
        tmp.unlink(missing_ok=True)
        if is_disk_full(fin_exc):
            raise disk_full(final) from None
        raise


@contextmanager
def atomic_output(path: str | Path, fix: str = OUTPUT_FIX) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` if the block completes (``fix``:
    the advice when its folder cannot be written).

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and the
    exception propagates; an existing file at ``path`` is left untouched.

    Raises:
        StoreError: the disk filled while writing (``disk full: …``), or the temporary file
            could not be created.
    """
    path = Path(path)
    tmp = prepare_output(path, fix)
    try:
        try:
            yield tmp
        except OSError as exc:
            if is_disk_full(exc):   # from the writer's own file handle too, which names no file
                raise disk_full(path) from None
            if exc.filename is not None and Path(exc.filename) == tmp:   # the temporary file itself
                raise _cannot_write(exc, path) from None
            raise
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: nothing was written")
        try:
            finish_output(tmp, path, True)
        except OSError as exc:   # the fsync before the rename can be where a full disk shows
            if is_disk_full(exc):
                raise disk_full(path) from None
            raise
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
