"""Object ids and catalogue values read on demand, and the sorted id index.

At 10^7 objects the ids alone are ~0.7 GB of Python strings and take seconds to read; the
explorer needs only the rows it shows (the hover card, the table's visible rows, the
inspector) and a lookup from id to row (labels in the journal, search by id). So a store
written by this version carries ``objects/id_order`` — (N,) int64, the rows in the order of
their ids (code point order, which is UTF-8 byte order) — and readers:

* read the values of given rows with :func:`read_rows` (h5py slices of the covering blocks, or
  point reads when the rows are sparse);
* find rows by id with :class:`ObjectIds` (a binary search through ``id_order`` done for all
  queried ids at once: ~24 pairs of small reads, whatever the number of ids);
* list the ids that begin with a text (a contiguous range of ``id_order``).

Stores without ``objects/id_order`` (written before) are read as before: all ids in memory,
looked up through a dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import h5py
import numpy as np

ID_ORDER = "id_order"
BLOCK = 1 << 16           # rows read at a time
DENSE = BLOCK // 8       # wanted rows per block above which the whole block is read (point
                          # selections are faster below: 1000 ids in 4.5 ms, a block 45-60 ms)
POINTS = 1024             # rows per point selection
SORT_AS_TEXT_MAX = 64     # longest id sorted as a fixed-width NumPy array (faster than objects)


def id_order(ids: np.ndarray) -> np.ndarray | None:
    """(N,) int64 rows in the order of their ids (code point order), or None when ids repeat.

    Ids of up to :data:`SORT_AS_TEXT_MAX` characters are sorted as a fixed-width NumPy array
    (seconds at 10^7); longer ones as Python objects.
    """
    ids = np.asarray(ids, dtype=object)
    if len(ids) == 0:
        return np.empty(0, np.int64)
    longest = max(map(len, ids.tolist()))
    keys = ids.astype(str) if longest <= SORT_AS_TEXT_MAX else ids
    order = np.argsort(keys, kind="stable").astype(np.int64)
    s = keys[order]
    if len(s) > 1 and bool(np.any(s[1:] == s[:-1])):
        return None
    return order


def read_rows(dset: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """``dset[rows]`` for any (n,) row numbers (any order, repeats allowed), reading only the
    blocks that hold them: a block with many wanted rows in one slice, a few rows by point
    selection. Strings come back as an object array of str.

    Raises:
        IndexError: a row outside the dataset.
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    text = h5py.check_string_dtype(dset.dtype) is not None
    src = dset.asstr() if text else dset
    n = dset.shape[0]
    if len(rows) == 0:
        return np.empty((0,) + dset.shape[1:], dtype=object if text else dset.dtype)
    if rows.min() < 0 or rows.max() >= n:
        raise IndexError(f"row {int(rows.min() if rows.min() < 0 else rows.max())} is outside 0..{n - 1}")
    want, back = np.unique(rows, return_inverse=True)
    out = np.empty((len(want),) + dset.shape[1:], dtype=object if text else dset.dtype)
    blocks = want // BLOCK
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    ends = np.r_[starts[1:], len(want)]
    sparse = np.ones(len(want), bool)
    for a, b in zip(starts.tolist(), ends.tolist()):
        if b - a > DENSE:    # many rows of one block: one slice
            part = want[a:b]
            lo, hi = int(part[0]), int(part[-1]) + 1
            out[a:b] = np.asarray(src[lo:hi])[part - lo]
            sparse[a:b] = False
    at = np.flatnonzero(sparse)
    # the rest by point selection, POINTS at a time (one call per row costs ~1 ms each; h5py
    # slows down on very long selections)
    for a in range(0, len(at), POINTS):
        k = at[a:a + POINTS]
        out[k] = np.asarray(src[want[k]]) if len(k) > 1 else src[int(want[k[0]])]
    return out[back]


class ObjectIds:
    """The ids of a file's objects, read on demand (a sequence of N str).

    ``ids[i]`` and ``ids[rows]`` read those rows; ``get(id)`` / :meth:`rows_of` find rows by id
    through ``objects/id_order``; ``np.asarray(ids)`` reads them all (avoid at scale).

    Args:
        dset: the ``objects/id`` dataset.
        order: the ``objects/id_order`` dataset, or None (then every id is read once and looked
            up in a dict).
        guard: a context manager factory turning h5py errors into StoreError.
        loaded: every id, when the caller has already read them.
    """

    def __init__(self, dset: h5py.Dataset, order: h5py.Dataset | None, guard, loaded: np.ndarray | None = None):
        self._dset = dset
        self._order = order
        self._guard = guard
        self._all: np.ndarray | None = loaded
        self._pos: dict[str, int] | None = None

    dtype = np.dtype(object)

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def compact(self) -> np.ndarray:
        """Every id as a fixed-width UTF-8 bytes array (see :meth:`OnDiskColumn.compact`)."""
        return OnDiskColumn(self._dset, self._guard).compact()

    @property
    def indexed(self) -> bool:
        """True when lookups go through the on-disk sorted index (nothing held in memory)."""
        return self._order is not None

    def __len__(self) -> int:
        return int(self._dset.shape[0])

    def __getitem__(self, key):
        if self._all is not None:
            return self._all[key]
        with self._guard():
            if isinstance(key, (int, np.integer)):
                i = int(key)
                n = len(self)
                if not -n <= i < n:
                    raise IndexError(f"object {i} is outside 0..{n - 1}")
                return str(self._dset.asstr()[i % n])
            if isinstance(key, slice):
                return np.asarray(self._dset.asstr()[key], dtype=object)
            return read_rows(self._dset, np.asarray(key, dtype=np.int64))

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.load(), dtype=dtype)

    def __iter__(self):
        for a in range(0, len(self), BLOCK):
            yield from self[a:a + BLOCK].tolist()

    def load(self) -> np.ndarray:
        """Every id, (N,) object array (kept: later lookups use it)."""
        if self._all is None:
            with self._guard():
                self._all = np.asarray(self._dset.asstr()[:], dtype=object)
        return self._all

    @property
    def index(self) -> RowsById:
        """The same ids as a mapping id -> row (``index[id]``, ``id in index``)."""
        return RowsById(self)

    def get(self, object_id: str, default=None):
        """The row of ``object_id``, or ``default`` (like ``dict.get``)."""
        row = int(self.rows_of([object_id])[0])
        return default if row < 0 else row

    def __contains__(self, object_id) -> bool:
        return self.get(object_id) is not None

    def rows_of(self, object_ids: Iterable[str]) -> np.ndarray:
        """(k,) int64 the row of each id, -1 where it is not in the file."""
        q = np.asarray([str(o) for o in object_ids], dtype=object)
        if len(q) == 0:
            return np.empty(0, np.int64)
        if self._order is None:
            if self._pos is None:
                self._pos = {oid: i for i, oid in enumerate(self.load().tolist())}
            return np.array([self._pos.get(o, -1) for o in q.tolist()], dtype=np.int64)
        with self._guard():
            return self._search(q)

    def _search(self, q: np.ndarray) -> np.ndarray:
        """Binary search of every query at once: each step reads the middle entries of all
        queries' intervals (one read of ``id_order``, one of ``id``)."""
        n = len(self)
        lo = np.zeros(len(q), np.int64)
        hi = np.full(len(q), n, np.int64)
        while True:
            live = lo < hi
            if not live.any():
                break
            mid = (lo + hi) // 2
            m = mid[live]
            rows = read_rows(self._order, m).astype(np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise ValueError("objects/id_order holds rows outside the file")
            less = np.array([a < b for a, b in zip(read_rows(self._dset, rows).tolist(), q[live].tolist())],
                            dtype=bool)
            idx = np.flatnonzero(live)
            lo[idx[less]] = m[less] + 1
            hi[idx[~less]] = m[~less]
        found = np.full(len(q), -1, np.int64)
        inside = lo < n
        if inside.any():
            rows = read_rows(self._order, lo[inside]).astype(np.int64)
            if len(rows) and (rows.min() < 0 or rows.max() >= n):
                raise ValueError("objects/id_order holds rows outside the file")
            hit = read_rows(self._dset, rows) == q[inside]
            found[np.flatnonzero(inside)[hit]] = rows[hit]
        return found

    def starting_with(self, prefix: str, limit: int | None = None) -> np.ndarray:
        """Rows whose id begins with ``prefix`` (case-sensitive), in id order; at most ``limit``.

        With the index this is one contiguous range of ``id_order`` (two binary searches);
        without it, a scan of the ids in memory.
        """
        prefix = str(prefix)
        if self._order is None:
            ids = self.load()
            rows = np.flatnonzero(np.fromiter((s.startswith(prefix) for s in ids.tolist()), bool, len(ids)))
            rows = rows[np.argsort(ids[rows].astype(str), kind="stable")] if len(rows) else rows
            return rows[:limit] if limit is not None else rows
        with self._guard():
            a = self._lower_bound(prefix)
            b = self._lower_bound(prefix + "\U0010ffff") if prefix else len(self)
            if limit is not None:
                b = min(b, a + int(limit))
            return np.asarray(self._order[a:b], dtype=np.int64) if b > a else np.empty(0, np.int64)

    def _lower_bound(self, text: str) -> int:
        lo, hi = 0, len(self)
        while lo < hi:
            mid = (lo + hi) // 2
            if str(self._dset.asstr()[int(self._order[mid])]) < text:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def sort_key(self) -> np.ndarray:
        """(N,) int64 each row's position in id order (to sort a table by id without the ids)."""
        if self._order is None:
            ids = self.load()
            order = np.argsort(ids.astype(str), kind="stable")
        else:
            with self._guard():
                order = np.asarray(self._order[:], dtype=np.int64)
        key = np.empty(len(order), np.int64)
        key[order] = np.arange(len(order), dtype=np.int64)
        return key


def contains_text(ids: ObjectIds | Sequence[str], text: str, block: int = BLOCK) -> np.ndarray:
    """(N,) bool: ids that contain ``text`` (case-insensitive), scanned ``block`` ids at a time."""
    text = text.lower()
    n = len(ids)
    out = np.zeros(n, bool)
    for a in range(0, n, block):
        part = ids[a:a + block]
        out[a:a + len(part)] = np.fromiter((text in s.lower() for s in part.tolist()), bool, len(part))
    return out


class RowsById:
    """Id -> row, read-only, through :class:`ObjectIds` (nothing held in memory)."""

    def __init__(self, ids: ObjectIds):
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, object_id: str) -> int:
        row = self.ids.get(object_id)
        if row is None:
            raise KeyError(object_id)
        return row

    def __contains__(self, object_id) -> bool:
        return self.ids.get(object_id) is not None

    def get(self, object_id: str, default=None):
        return self.ids.get(object_id, default)

    def rows_of(self, object_ids: Iterable[str]) -> np.ndarray:
        return self.ids.rows_of(object_ids)


class OnDiskColumn:
    """One per-object dataset (``objects/ra``, ``objects/columns/<name>``, ``objects/id``) read on
    demand: ``col[i]``, ``col[rows]``, ``col[a:b]`` read only those rows; ``np.asarray(col)``
    reads it all. :meth:`compact` reads it all into the smallest array (text as UTF-8 bytes).

    Args:
        dset: the dataset, (N,).
        guard: a context manager factory turning h5py errors into StoreError.
    """

    def __init__(self, dset: h5py.Dataset, guard):
        self._dset = dset
        self._guard = guard
        self.text = h5py.check_string_dtype(dset.dtype) is not None
        self.dtype = np.dtype(object) if self.text else dset.dtype

    def __len__(self) -> int:
        return int(self._dset.shape[0])

    @property
    def shape(self) -> tuple[int]:
        return (len(self),)

    def __getitem__(self, key):
        with self._guard():
            if isinstance(key, (int, np.integer)):
                v = self._dset.asstr()[int(key)] if self.text else self._dset[int(key)]
                return str(v) if self.text else v
            if isinstance(key, slice):
                v = self._dset.asstr()[key] if self.text else self._dset[key]
                return np.asarray(v, dtype=self.dtype)
            key = np.asarray(key)
            if key.dtype == bool:
                key = np.flatnonzero(key)
            return read_rows(self._dset, key)

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[:], dtype=dtype)

    def compact(self, block: int = BLOCK) -> np.ndarray:
        """Every value in memory: numbers as they are; text as a fixed-width UTF-8 bytes array
        (~10 bytes per short id, against ~60 for a Python str), read ``block`` rows at a time."""
        if not self.text:
            with self._guard():
                return self._dset[:]
        parts = []
        with self._guard():
            for a in range(0, len(self), block):
                raw = self._dset[a:a + block]            # bytes objects
                parts.append(np.array(raw.tolist(), dtype=bytes))
        return np.concatenate(parts) if parts else np.empty(0, dtype="S1")


def as_text_value(value: object) -> object:
    """One value of a column for output: UTF-8 bytes (a :meth:`OnDiskColumn.compact` column's
    cell) decoded to str; anything else unchanged."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def as_text(values: np.ndarray) -> np.ndarray:
    """Values of a column for output: a UTF-8 bytes array (from :meth:`OnDiskColumn.compact`)
    decoded to an object array of str; anything else unchanged."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return np.array([v.decode("utf-8") for v in values.tolist()], dtype=object)
    return values
