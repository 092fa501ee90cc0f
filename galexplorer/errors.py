"""Typed exceptions. Library code raises these; only ``cli.py`` turns them into exit codes and
only ``gui/`` turns them into dialogs.

Every message is one line that says what went wrong, which file, and what to do, e.g.::

    cut.h5: not a galexplorer cutouts file (no 'format' attribute); create one with `galexplorer ingest`
"""

from __future__ import annotations

from pathlib import Path


class GalexplorerError(Exception):
    """A problem the user can fix (bad input, bad option, wrong file). CLI exit code 2."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None, hint: str | None = None):
        self.path = str(path) if path is not None else None
        self.hint = hint
        parts = []
        if self.path:
            parts.append(f"{self.path}: ")
        parts.append(message)
        if hint:
            parts.append(f"; {hint}")
        super().__init__("".join(parts).replace("\n", " "))


class InputError(GalexplorerError):
    """An input file or folder cannot be read as what it should be."""


class StoreError(GalexplorerError):
    """A cutouts file or embedding store is missing, not ours, too new, truncated or inconsistent."""


class LabelError(GalexplorerError):
    """A label is invalid (score outside 0–5, unknown object) or the journal cannot be used."""


class ConfigError(GalexplorerError):
    """An option or configuration value is invalid."""


class CheckpointError(GalexplorerError):
    """A checkpoint or encoder does not fit the data or the requested model."""
