"""What both read-only files (cutouts file, embedding store) share: opening with validation,
attributes, the ``objects`` group, catalogue columns and the file's lifetime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..errors import StoreError
from .schema import (
    ObjectTable,
    check_objects,
    damage_is_store_error,
    open_checked,
    read_attr,
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
                self.n = len(self._ids)
                self.uuid: str = read_attr(self._f, "uuid", "")
                self._validate()
        except BaseException:
            self._f.close()
            raise
        self._objects: ObjectTable | None = None

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
        if self._objects is None:
            with self.damage():
                self._objects = read_objects(self._f["objects"], self._ids)
        return self._objects

    @property
    def ids(self) -> np.ndarray:
        return self.objects.ids

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
        return self.objects.columns[name]

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
