"""What both read-only files (cutouts file, embedding store) share: opening with validation,
attributes, the ``objects`` group, catalogue columns and the file's lifetime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import StoreError
from .ondemand import ID_ORDER, ObjectIds, OnDiskColumn
from .schema import (
    ObjectTable,
    check_duplicates,
    check_objects,
    damage_is_store_error,
    open_checked,
    read_attr,
    read_column,
    read_json_attr,
    read_objects,
)


class ObjectFile:
    """A validated, read-only galexplorer HDF5 file with an ``objects`` group.

    Subclasses set ``FORMAT``, ``WHAT`` (a noun for messages), ``FIX`` (the command that makes
    one) and ``COLUMN_FIX``, and check their own datasets in :meth:`_validate`.

    Raises:
        StoreError: missing, not HDF5, truncated, another format, a newer version, arrays of
            different lengths or duplicate ids.
    """

    FORMAT = ""
    WHAT = ""
    FIX = ""
    COLUMN_FIX = ""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._f = open_checked(self.path, self.FORMAT, self.WHAT, self.FIX)
        try:
            with self.damage():
                self._ids = check_objects(self._f, self.path, self._expected_rows(), self.WHAT, self.FIX)
                self.n = int(self._f["objects/id"].shape[0])
                order = self._f["objects"][ID_ORDER] if self._ids is None else None
                self._object_ids = ObjectIds(self._f["objects/id"], order, self.damage, loaded=self._ids)
                self.uuid: str = read_attr(self._f, "uuid", "")
                self._validate()
        except BaseException:
            self._f.close()
            raise
        self._objects: ObjectTable | None = None
        self._columns: dict[str, np.ndarray] = {}
        self._views: dict[str, OnDiskColumn] = {}

    def damage(self):
        """A context turning h5py's errors on a damaged file into a one-line StoreError."""
        return damage_is_store_error(self.path, self.WHAT, self.FIX)

    def _expected_rows(self) -> int | None:
        """The number of objects the file's main array says there are (None: no such array)."""
        return None

    def _validate(self) -> None:
        """Check the file's own datasets; raise StoreError."""

    def _inconsistent(self, what: str) -> StoreError:
        return StoreError(f"the {self.WHAT} is inconsistent: {what}", self.path, self.FIX)

    # -- metadata -------------------------------------------------------------------------------
    @property
    def file(self) -> h5py.File:
        """The open, read-only h5py file (for code that needs a dataset directly)."""
        return self._f

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: read_attr(self._f, k) for k in self._f.attrs}

    def json_attr(self, key: str, default: Any = None, dataset: str | None = None) -> Any:
        obj = self._f[dataset] if dataset else self._f
        return read_json_attr(obj, key, default)

    def dataset_attrs(self, name: str) -> dict[str, Any]:
        if name not in self._f:
            return {}
        return {k: read_json_attr(self._f[name], k) for k in self._f[name].attrs}

    @property
    def objects(self) -> ObjectTable:
        """Every object's id, ra, dec, source and catalogue columns, read into memory (at 10^7
        objects seconds and gigabytes: the explorer reads rows on demand instead, through
        :attr:`object_ids` and :meth:`values_at`)."""
        if self._objects is None:
            with self.damage():
                ids = self._ids if self._ids is not None else self._object_ids.load()
                if self._ids is None:
                    check_duplicates(ids, self.path, self.WHAT, self.FIX)
                self._objects = read_objects(self._f["objects"], ids)
        return self._objects

    @property
    def ids(self) -> np.ndarray:
        return self.objects.ids

    @property
    def object_ids(self) -> ObjectIds:
        """The ids read on demand: ``object_ids[rows]``, ``object_ids.get(id)``,
        ``object_ids.rows_of(ids)`` (through the sorted index ``objects/id_order`` when the file
        has one)."""
        return self._object_ids

    def column_view(self, name: str) -> np.ndarray | OnDiskColumn | ObjectIds:
        """``id``, ``ra``, ``dec`` or catalogue column ``name`` as an (N,) array-like that reads
        rows on demand (:class:`~.ondemand.OnDiskColumn`; for ``id`` the :attr:`object_ids`);
        the in-memory array once :attr:`objects` was read.

        Raises:
            StoreError: no such column.
        """
        if self._objects is not None:
            o = self._objects
            return {"id": o.ids, "ra": o.ra, "dec": o.dec}.get(name) if name in ("id", "ra", "dec") \
                else self.column(name)
        if name == "id":
            return self._object_ids
        if name not in self._views:   # one view per column: the table keeps what it read of it
            if name in ("ra", "dec"):
                self._views[name] = OnDiskColumn(self._f["objects"][name], self.damage)
            else:
                if name not in self.column_names:
                    self.column(name)   # raises, listing the columns there are
                self._views[name] = OnDiskColumn(self._f["objects/columns"][name], self.damage)
        return self._views[name]

    def values_at(self, name: str, rows: np.ndarray) -> np.ndarray:
        """``id``, ``ra``, ``dec`` or catalogue column ``name`` at ``rows`` ((k,) any order), read
        from the file (only the blocks holding those rows), or from memory once :attr:`objects`
        was read.

        Raises:
            StoreError: no such column, or the file is damaged.
        """
        return np.asarray(self.column_view(name)[np.asarray(rows, dtype=np.int64)])

    @property
    def column_names(self) -> list[str]:
        return list(self._f["objects/columns"]) if "objects/columns" in self._f else []

    def column(self, name: str) -> np.ndarray:
        """Catalogue column ``name``, (N,).

        Raises:
            StoreError: no such column (the message lists those there are).
        """
        if name not in self.column_names:
            raise StoreError(f"no catalogue column {name!r} (have: {', '.join(self.column_names) or 'none'})",
                             self.path, self.COLUMN_FIX)
        if self._objects is None and name not in self._columns:
            # one column, not the whole table (colour by a column at 10^7)
            with self.damage():
                self._columns[name] = read_column(self._f["objects/columns"][name])
        return self._objects.columns[name] if self._objects is not None else self._columns[name]

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        if self._f:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, n={self.n})"
