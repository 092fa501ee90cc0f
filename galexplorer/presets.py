"""The shipped presets: TOML files in ``galexplorer/resources/presets/``.

Two kinds, one folder each:

* ``train`` (``presets/*.toml``): options of :class:`~galexplorer.ssl.config.TrainConfig`, for
  ``galexplorer train --preset NAME``, the same keys as a ``--config`` file;
* ``loop`` (``presets/loop/*.toml``): options of :class:`~galexplorer.active.config.LoopConfig`,
  for ``galexplorer rank`` and ``simulate --preset NAME``.

A preset sits above the defaults and below a ``--config`` file and the command line. Each file
begins with a comment block: its first line says what the preset is for (``galexplorer presets``
lists it), the rest gives the figures behind it, or says "not yet measured".

They are package data, read with :mod:`importlib.resources`, so they install with the wheel
(the design card's top-level ``resources/`` would not be installed). This module also holds the
one TOML reader (``tomllib``, or ``tomli`` on Python 3.10) that config files use.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".toml"
#: kind -> folder under galexplorer/resources/presets, and the commands that take it
KINDS = {"train": ((), "train --preset"), "loop": (("loop",), "rank/simulate --preset")}


def parse_toml(text: str, source: str | Path | None = None) -> dict[str, Any]:
    """Parse TOML text (``source`` names it in errors).

    Raises:
        ConfigError: a syntax error, or Python 3.10 without the tomli package.
    """
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ConfigError("reading TOML on Python 3.10 needs the tomli package", source,
                              "pip install tomli, or write the config as JSON") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source) from None


def _folder(kind: str) -> Traversable:
    return resources.files("galexplorer").joinpath("resources", "presets", *KINDS[kind][0])


def preset_names(kind: str = "train") -> list[str]:
    """The shipped presets of one kind (``train`` or ``loop``), sorted."""
    return sorted(p.name[:-len(SUFFIX)] for p in _folder(kind).iterdir() if p.name.endswith(SUFFIX))


def preset_kind(name: str) -> str:
    """``train`` or ``loop``: which kind of preset ``name`` is.

    Raises:
        ConfigError: no preset of that name (the message names them all).
    """
    for kind in KINDS:
        if name in preset_names(kind):
            return kind
    valid = "; ".join(f"{KINDS[k][1]}: {', '.join(preset_names(k))}" for k in KINDS)
    raise ConfigError(f"unknown preset {name!r}", hint=f"valid: {valid}")


def preset_text(name: str, kind: str | None = None) -> str:
    """The TOML text of preset ``name`` (of ``kind``, or of either kind when None).

    Raises:
        ConfigError: no preset of that name and kind (the message names the valid ones).
    """
    if kind is None:
        kind = preset_kind(name)
    names = preset_names(kind)
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}",
                          hint=f"valid: {', '.join(names)} (`galexplorer presets` says what each is for)")
    return _folder(kind).joinpath(name + SUFFIX).read_text(encoding="utf-8")


def preset_summary(name: str, kind: str | None = None) -> str:
    """The first line of the preset's leading comment: what it is for."""
    first = preset_text(name, kind).lstrip().splitlines()[0]
    return first.lstrip("#").strip()


def load_preset(name: str, kind: str = "train") -> dict[str, Any]:
    """The options of preset ``name`` of ``kind``, as a config file's table.

    Raises:
        ConfigError: an unknown preset, or a file that is not valid TOML.
    """
    return parse_toml(preset_text(name, kind), f"preset {name}")
