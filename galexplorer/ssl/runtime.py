"""Process-level settings for fast CPU tensor work.

PyTorch's CPU allocator asks the C library for every tensor. glibc serves allocations above its
mmap threshold (128 KiB to 32 MiB, adaptive) with fresh pages from the kernel and returns them
on free, so each large temporary — a 10 MiB batch of views, an activation map — costs a page
fault per 4 KiB page on first touch. Raising the thresholds keeps freed memory in the process
for reuse (what jemalloc or tcmalloc, the allocators PyTorch recommends for CPU work, do).
Measured here, one augmented view of 128 x 5 x 64 x 64 stamps: 39 ms -> 28 ms.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def retain_freed_memory(mmap_threshold: int = 1 << 30, trim_threshold: int = (1 << 31) - 1) -> bool:
    """Let glibc keep freed memory for reuse instead of unmapping it (idempotent).

    The process's resident memory then stays near its peak rather than shrinking between
    batches; it does not grow beyond what the job needs at once.

    Returns:
        True when the setting is in effect (glibc on Linux), False elsewhere (a no-op).
    """
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold))
    except (OSError, AttributeError):   # musl or another C library without mallopt
        return False
    _done = ok
    log.debug("glibc malloc keeps freed memory (mmap threshold %d, trim threshold %d): %s",
              mmap_threshold, trim_threshold, ok)
    return ok
