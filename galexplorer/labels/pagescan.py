"""Rows read straight from an SQLite file's pages, for recovering a damaged journal.

SQLite finds a row by walking its table's b-tree from the root; when an interior page is
damaged, every row below it is out of reach although the leaf pages that hold them are intact.
:func:`scan_rows` reads every table-leaf page of the file (and the committed frames of its
``-wal``) in turn and decodes the cells on it, as SQLite's own ``.recover`` does, so those rows
come back. It knows nothing of tables: the caller keeps the rows that look like its own (here,
nine fields whose first, the ``INTEGER PRIMARY KEY``, is stored as NULL) and checks each field.

The format is https://www.sqlite.org/fileformat2.html; every offset is checked, so a damaged
page yields fewer rows, never an exception.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

TABLE_LEAF = 0x0D
WAL_MAGIC = (0x377F0682, 0x377F0683)


class _Bad(Exception):
    """A cell that does not decode (damaged bytes)."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    """SQLite's big-endian variable-length integer at ``buf[i]``: (value, next offset)."""
    value = 0
    for k in range(9):
        if i + k >= len(buf):
            raise _Bad("varint past the end")
        b = buf[i + k]
        if k == 8:
            return (value << 8) | b, i + 9
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, i + k + 1
    raise _Bad("unreachable")


_INT_SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}


def _record(payload: bytes) -> tuple:
    """The values of one record (a row), decoded from its header of serial types."""
    size, i = _varint(payload, 0)
    if size > len(payload) or size < 1:
        raise _Bad("record header past the end")
    types = []
    while i < size:
        t, i = _varint(payload, i)
        types.append(t)
    out: list = []
    j = size
    for t in types:
        if t == 0:
            out.append(None)
        elif t in _INT_SIZES:
            n = _INT_SIZES[t]
            if j + n > len(payload):
                raise _Bad("integer past the end")
            out.append(int.from_bytes(payload[j:j + n], "big", signed=True))
            j += n
        elif t == 7:
            if j + 8 > len(payload):
                raise _Bad("float past the end")
            out.append(struct.unpack(">d", payload[j:j + 8])[0])
            j += 8
        elif t in (8, 9):
            out.append(t - 8)
        elif t >= 12:
            n = (t - 12) // 2
            if j + n > len(payload):
                raise _Bad("text past the end")
            raw = payload[j:j + n]
            out.append(raw.decode("utf-8", "replace") if t % 2 else bytes(raw))
            j += n
        else:
            raise _Bad(f"serial type {t}")
    return tuple(out)


class _File:
    """Pages of one database image: the main file, with the newest committed WAL frames over it."""

    def __init__(self, data: bytes, wal: bytes | None):
        if len(data) < 100 or data[:16] != b"SQLite format 3\x00":
            raise _Bad("no SQLite header")
        size = int.from_bytes(data[16:18], "big")
        self.page_size = 65536 if size == 1 else size
        if self.page_size < 512 or self.page_size & (self.page_size - 1):
            raise _Bad(f"page size {self.page_size}")
        self.usable = self.page_size - data[20]
        self.data = data
        self.wal_pages: dict[int, bytes] = self._wal_pages(wal) if wal else {}

    def _wal_pages(self, wal: bytes) -> dict[int, bytes]:
        """Page number -> newest committed image in the ``-wal`` (frames after the last commit
        frame, or of another checkpoint generation, are not part of the database)."""
        if len(wal) < 32 or int.from_bytes(wal[0:4], "big") not in WAL_MAGIC:
            return {}
        if int.from_bytes(wal[8:12], "big") != self.page_size:
            return {}
        salt = wal[16:24]
        pages: dict[int, bytes] = {}
        pending: dict[int, bytes] = {}
        step = 24 + self.page_size
        for off in range(32, len(wal) - step + 1, step):
            head = wal[off:off + 24]
            if head[8:16] != salt:
                break
            pending[int.from_bytes(head[0:4], "big")] = wal[off + 24:off + step]
            if int.from_bytes(head[4:8], "big"):   # a commit frame: what came before it is committed
                pages.update(pending)
                pending.clear()
        return pages

    def page_numbers(self) -> list[int]:
        n = len(self.data) // self.page_size
        return sorted(set(range(1, n + 1)) | set(self.wal_pages))

    def page(self, number: int) -> bytes | None:
        if number in self.wal_pages:
            return self.wal_pages[number]
        start = (number - 1) * self.page_size
        if number < 1 or start + self.page_size > len(self.data):
            return None
        return self.data[start:start + self.page_size]

    def payload(self, page: bytes, i: int, size: int) -> bytes:
        """A cell's whole payload: the part on the page and its overflow chain."""
        u = self.usable
        max_local = u - 35
        if size <= max_local:
            if i + size > len(page):
                raise _Bad("payload past the page")
            return page[i:i + size]
        min_local = (u - 12) * 32 // 255 - 23
        local = min_local + (size - min_local) % (u - 4)
        local = local if local <= max_local else min_local
        if i + local + 4 > len(page):
            raise _Bad("payload past the page")
        parts = [page[i:i + local]]
        got, nxt, seen = local, int.from_bytes(page[i + local:i + local + 4], "big"), set()
        while got < size:
            if nxt in seen or nxt == 0:
                raise _Bad("broken overflow chain")
            seen.add(nxt)
            over = self.page(nxt)
            if over is None:
                raise _Bad("overflow page missing")
            take = min(size - got, u - 4)
            parts.append(over[4:4 + take])
            got += take
            nxt = int.from_bytes(over[0:4], "big")
        return b"".join(parts)

    def leaf_rows(self, number: int) -> Iterator[tuple[int, tuple]]:
        page = self.page(number)
        if page is None:
            return
        h = 100 if number == 1 else 0
        if len(page) < h + 8 or page[h] != TABLE_LEAF:
            return
        cells = int.from_bytes(page[h + 3:h + 5], "big")
        for c in range(cells):
            p = h + 8 + 2 * c
            if p + 2 > len(page):
                return
            at = int.from_bytes(page[p:p + 2], "big")
            try:
                size, i = _varint(page, at)
                rowid, i = _varint(page, i)
                if rowid >= 1 << 63:
                    rowid -= 1 << 64
                yield rowid, _record(self.payload(page, i, size))
            except _Bad:
                continue


def scan_rows(path: str | Path, wal: str | Path | None = None) -> Iterator[tuple[int, tuple]]:
    """Every row found on the table-leaf pages of the SQLite file ``path``: ``(rowid, values)``.

    Args:
        path: the database file (a copy: it is read whole into memory).
        wal: its ``-wal``, whose committed frames replace the pages they hold.

    Yields nothing for a file without a readable SQLite header (page size unknown).
    """
    try:
        data = Path(path).read_bytes()
        log_bytes = Path(wal).read_bytes() if wal is not None and Path(wal).is_file() else None
        image = _File(data, log_bytes)
    except (OSError, _Bad) as exc:
        log.info("%s: pages not scanned (%s)", path, exc)
        return
    for number in image.page_numbers():
        yield from image.leaf_rows(number)
